/*
 * shim_basic.c - exact counts for known allocation sequences, one thread.
 *
 *   shim_basic        under the shim: every check below
 *   shim_basic off    without it: the API says accounting is off
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shimtest.h"

/* Opaque to the compiler, so that overflowing requests reach the hooks. */
static volatile size_t big = SIZE_MAX / 2;

static void test_off(void)
{
	struct memfence_scope_stats s;
	struct memfence_process_stats p;
	void *x;

	CHECK(memfence_active() == 0);
	CHECK(memfence_scope_begin("x", "1", 0) == MEMFENCE_EOFF);
	CHECK(memfence_scope_current(&s) == MEMFENCE_EOFF);
	CHECK(memfence_scope_end(&s) == MEMFENCE_EOFF);
	CHECK(memfence_process_stats(&p) == MEMFENCE_EOFF);
	CHECK(memfence_thread_errno() == MEMFENCE_EOFF);
	/* The hooks still work when they do not count. */
	x = malloc(100);
	CHECK(x != NULL);
	x = realloc(x, 100000);
	CHECK(x != NULL);
	free(x);
}

/* malloc/free of many sizes: scope and process counts are the usable sizes. */
static void test_sizes(void)
{
	static void *blocks[4096];
	size_t sizes[] = {0, 1, 8, 24, 25, 100, 1000, 4096, 65536, 131072, 1 << 20, 3 << 20};
	uint64_t sum = 0;
	int n = 0;
	struct memfence_process_stats p0, p1, p2;
	struct memfence_scope_stats s;

	p0 = ps();
	CHECK(memfence_scope_begin("sizes", "1", 0) == MEMFENCE_OK);
	for (int r = 0; r < 40; r++)
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			size_t sz = sizes[i] + (size_t)r * 7;
			blocks[n] = malloc(sz);
			CHECK(blocks[n] != NULL);
			sum += malloc_usable_size(blocks[n]);
			n++;
		}
	s = cur();
	CHECK_EQ_U64(s.allocated, sum);
	CHECK_EQ_U64(s.freed, 0);
	CHECK_EQ_U64(s.net, sum);
	CHECK_EQ_U64(s.peak, sum);
	CHECK_EQ_U64(s.calls, (uint64_t)n);
	p1 = ps();
	CHECK_EQ_U64(p1.live - p0.live, sum);
	CHECK_EQ_U64(p1.allocated - p0.allocated, sum);
	CHECK_EQ_U64(p1.alloc_calls - p0.alloc_calls, (uint64_t)n);
	CHECK(p1.peak >= p1.live);
	for (int i = 0; i < n; i++)
		free(blocks[i]);
	free(NULL);
	CHECK(memfence_scope_end(&s) == MEMFENCE_OK);
	CHECK_EQ_U64(s.allocated, sum);
	CHECK_EQ_U64(s.freed, sum);
	CHECK_EQ_U64(s.net, 0);
	CHECK_EQ_U64(s.peak, sum);
	CHECK_EQ_U64(s.failed, 0);
	p2 = ps();
	CHECK_EQ_U64(p2.live, p0.live);
	CHECK_EQ_U64(p2.freed - p0.freed, sum);
	CHECK_EQ_U64(p2.free_calls - p0.free_calls, (uint64_t)n);
	CHECK(memfence_scope_end(&s) == MEMFENCE_ENOSCOPE);
}

static void test_realloc(void)
{
	struct memfence_scope_stats s;
	char *p, *q, *fence;
	size_t u0, u1, u2;

	CHECK(memfence_scope_begin("realloc", NULL, 0) == MEMFENCE_OK);
	p = malloc(100);
	u0 = malloc_usable_size(p);
	memset(p, 'x', 100);
	/* grow */
	q = realloc(p, 5000);
	CHECK(q != NULL && q[99] == 'x');
	u1 = malloc_usable_size(q);
	s = cur();
	CHECK_EQ_U64(s.allocated, u1);
	CHECK_EQ_U64(s.net, u1);
	CHECK_EQ_U64(s.calls, 2);
	/* shrink */
	p = realloc(q, 40);
	CHECK(p != NULL && p[39] == 'x');
	u2 = malloc_usable_size(p);
	s = cur();
	CHECK_EQ_U64(s.allocated, u1);
	CHECK_EQ_U64(s.freed, u1 - u2);
	CHECK_EQ_U64(s.net, u2);
	CHECK_EQ_U64(s.peak, u1);
	/* move: a neighbour stops growth in place */
	fence = malloc(64);
	q = realloc(p, 200000);
	CHECK(q != NULL && q[39] == 'x');
	s = cur();
	CHECK_EQ_U64(s.net, malloc_usable_size(q) + malloc_usable_size(fence));
	/* realloc(NULL, n) and realloc(p, 0) */
	p = realloc(NULL, 300);
	CHECK(p != NULL);
	free(realloc(q, 0));
	free(p);
	free(fence);
	p = reallocarray(NULL, 10, 30);
	CHECK(p != NULL);
	errno = 0;
	q = reallocarray(p, big, 3);
	CHECK(q == NULL && errno == ENOMEM);
	free(q != NULL ? q : p);
	CHECK(memfence_scope_end(&s) == MEMFENCE_OK);
	CHECK_EQ_U64(s.net, 0);
	CHECK_EQ_U64(s.allocated, s.freed);
	(void)u0;
}

static void test_calloc(void)
{
	struct memfence_process_stats p0, p1;
	struct memfence_scope_stats s;
	unsigned char *p;
	int zero = 1;

	p0 = ps();
	CHECK(memfence_scope_begin("calloc", NULL, 0) == MEMFENCE_OK);
	errno = 0;
	CHECK(calloc(big, 3) == NULL);
	CHECK(errno == ENOMEM);
	p = calloc(1000, 7);
	CHECK(p != NULL);
	for (int i = 0; i < 7000; i++)
		zero &= p[i] == 0;
	CHECK(zero);
	s = cur();
	CHECK_EQ_U64(s.allocated, malloc_usable_size(p));
	CHECK_EQ_U64(s.failed, 1);
	CHECK_EQ_U64(s.calls, 2);
	free(p);
	CHECK(memfence_scope_end(&s) == MEMFENCE_OK);
	CHECK_EQ_U64(s.net, 0);
	p1 = ps();
	CHECK_EQ_U64(p1.failed_alloc - p0.failed_alloc, 1);
	CHECK_EQ_U64(p1.live, p0.live);
}

static void test_aligned(void)
{
	struct memfence_scope_stats s;
	uint64_t sum = 0;
	void *p;

	CHECK(memfence_scope_begin("aligned", NULL, 0) == MEMFENCE_OK);
	for (size_t a = sizeof(void *); a <= (1u << 16); a <<= 1) {
		for (size_t n = 1; n < 100000; n = n * 5 + 3) {
			uint64_t before = (uint64_t)cur().net;
			size_t rounded = (n + a - 1) / a * a;

			CHECK(posix_memalign(&p, a, n) == 0);
			CHECK(((uintptr_t)p & (a - 1)) == 0);
			sum = malloc_usable_size(p);
			CHECK_EQ_U64((uint64_t)cur().net - before, sum);
			free(p);
			p = aligned_alloc(a, rounded);
			CHECK(p != NULL && ((uintptr_t)p & (a - 1)) == 0);
			CHECK_EQ_U64((uint64_t)cur().net - before, malloc_usable_size(p));
			free(p);
			p = memalign(a, n);
			CHECK(p != NULL && ((uintptr_t)p & (a - 1)) == 0);
			CHECK_EQ_U64((uint64_t)cur().net - before, malloc_usable_size(p));
			free(p);
			CHECK_EQ_U64((uint64_t)cur().net, before);
		}
	}
	CHECK(posix_memalign(&p, 3, 10) == EINVAL);
	p = valloc(5000);
	CHECK(p != NULL && ((uintptr_t)p & 4095) == 0);
	CHECK_EQ_U64((uint64_t)cur().net, malloc_usable_size(p));
	free(p);
	p = pvalloc(5000);
	CHECK(p != NULL && ((uintptr_t)p & 4095) == 0);
	CHECK_EQ_U64((uint64_t)cur().net, malloc_usable_size(p));
	free(p);
	CHECK(memfence_scope_end(&s) == MEMFENCE_OK);
	CHECK_EQ_U64(s.net, 0);
	CHECK_EQ_U64(s.failed, 0);
}

static void test_mmap(void)
{
	struct memfence_process_stats p0, p1;
	struct memfence_scope_stats s;
	long pg = sysconf(_SC_PAGESIZE);
	char *m, *r;
	int fd;

	p0 = ps();
	CHECK(memfence_scope_begin("mmap", NULL, 0) == MEMFENCE_OK);
	m = mmap(NULL, 10 * pg + 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED);
	CHECK_EQ_U64(cur().net, 11 * pg);
	/* partial munmap: a page in the middle, then the tail */
	CHECK(munmap(m + 3 * pg, pg) == 0);
	CHECK_EQ_U64(cur().net, 10 * pg);
	CHECK(munmap(m + 8 * pg, 3 * pg) == 0);
	CHECK_EQ_U64(cur().net, 7 * pg);
	/* an unmap across the hole covers only tracked pages */
	CHECK(munmap(m + 2 * pg, 3 * pg) == 0);
	CHECK_EQ_U64(cur().net, 5 * pg);
	/* mremap grow (may move) and shrink */
	r = mremap(m + 5 * pg, 3 * pg, 20 * pg, MREMAP_MAYMOVE);
	CHECK(r != MAP_FAILED);
	CHECK_EQ_U64(cur().net, 22 * pg);
	s = cur();
	CHECK_EQ_U64(s.allocated, 11 * pg + 17 * pg);
	r = mremap(r, 20 * pg, 4 * pg, 0);
	CHECK(r != MAP_FAILED);
	CHECK_EQ_U64(cur().net, 6 * pg);
	CHECK(munmap(r, 4 * pg) == 0);
	CHECK(munmap(m, 2 * pg) == 0);
	CHECK_EQ_U64(cur().net, 0);
	/* MAP_FIXED over a tracked mapping replaces it */
	m = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(mmap(m + pg, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == m + pg);
	CHECK_EQ_U64(cur().net, 4 * pg);
	CHECK(munmap(m, 4 * pg) == 0);
	CHECK_EQ_U64(cur().net, 0);
	/* not counted: read-only, shared, file mappings */
	m = mmap(NULL, 4 * pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(munmap(m, 4 * pg) == 0);
	m = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(munmap(m, 4 * pg) == 0);
	fd = open("/proc/self/exe", 0);
	m = mmap(NULL, pg, PROT_READ, MAP_PRIVATE, fd, 0);
	CHECK(m != MAP_FAILED);
	CHECK(munmap(m, pg) == 0);
	close(fd);
	CHECK(memfence_scope_end(&s) == MEMFENCE_OK);
	CHECK_EQ_U64(s.net, 0);
	/* the MAP_FIXED page was allocated again */
	CHECK_EQ_U64(s.allocated, 11 * pg + 17 * pg + 4 * pg + pg);
	CHECK_EQ_U64(s.freed, s.allocated);
	p1 = ps();
	CHECK_EQ_U64(p1.live, p0.live);
}

static void test_nesting(void)
{
	struct memfence_scope_stats outer, inner;
	void *a, *b, *c;

	CHECK(memfence_scope_begin("outer", "o", 0) == MEMFENCE_OK);
	a = malloc(1000);
	CHECK(memfence_scope_begin("inner", "i", 0) == MEMFENCE_OK);
	b = malloc(2000);
	free(a); /* allocated outside the inner scope: its net goes negative */
	CHECK(memfence_scope_end(&inner) == MEMFENCE_OK);
	CHECK_EQ_U64(inner.allocated, malloc_usable_size(b));
	CHECK(inner.net == (int64_t)malloc_usable_size(b) - (int64_t)inner.freed);
	c = malloc(10);
	free(b);
	free(c);
	CHECK(memfence_scope_end(&outer) == MEMFENCE_OK);
	CHECK_EQ_U64(outer.net, 0);
	CHECK_EQ_U64(outer.calls, 3);
	for (int i = 0; i < 16; i++)
		CHECK(memfence_scope_begin("deep", NULL, 0) == MEMFENCE_OK);
	CHECK(memfence_scope_begin("too deep", NULL, 0) == MEMFENCE_EDEPTH);
	for (int i = 0; i < 16; i++)
		CHECK(memfence_scope_end(NULL) == MEMFENCE_OK);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "off") == 0) {
		test_off();
		return unit_done("shim_basic off");
	}
	need_active();
	test_sizes();
	test_realloc();
	test_calloc();
	test_aligned();
	test_mmap();
	test_nesting();
	return unit_done("shim_basic");
}
