/*
 * shim_large.c - big blocks (1 MiB and more) the shim serves itself once a
 * scope opens, and its bounded cache of freed ones (src/shim/large.c).
 *
 *   shim_large reuse     a freed block is reused by the next big
 *                        allocation: same address, no new mapping; counts
 *                        exact; malloc_usable_size agrees with them
 *   shim_large calloc    a reused block given to calloc is zeroed
 *   shim_large realloc   across the line both ways, and a big growth
 *                        that moves the mapping: contents kept, counts exact
 *   shim_large aligned   posix_memalign, aligned_alloc, memalign, valloc
 *   shim_large bound     what the cache keeps is bounded in bytes and count,
 *                        and a block past half the bound is never kept
 *   shim_large release   a mapping the kernel refuses (RLIMIT_DATA) with
 *                        blocks cached: they are released and it succeeds
 *   shim_large refused   an allocation the pressure policy would refuse
 *                        only because of the cached blocks: they are
 *                        released, it is decided again and succeeds
 *   shim_large fork      parent and child each reuse their own copy
 *   shim_large threads   threads allocating and freeing big blocks: the
 *                        counts end where they started
 *   shim_large user      a threshold the program sets wins: new big blocks
 *                        are glibc's, the shim's older ones still free well
 *   shim_large env       MALLOC_MMAP_THRESHOLD_ set: glibc's blocks only
 *
 * Run under ulimit -d 512 MiB (pressure lines on: soft 384 MiB, so the
 * cache holds at most 48 MiB). The shim's blocks start 128 bytes into
 * their mapping, glibc's 16: that offset tells them apart here.
 */
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shimtest.h"

#define MIB (1ul << 20)

/* In the brk heap ([heap] in /proc/self/maps): glibc's, whatever its
 * address within a page. Read without stdio, which would allocate between
 * the counters a check compares. */
static int in_heap(const void *p)
{
	static char maps[1 << 16];
	ssize_t n = 0, r;
	int fd = open("/proc/self/maps", O_RDONLY);

	while (fd >= 0 && n < (ssize_t)sizeof(maps) - 1 &&
	       (r = read(fd, maps + n, sizeof(maps) - 1 - (size_t)n)) > 0)
		n += r;
	if (fd >= 0)
		close(fd);
	maps[n] = '\0';
	for (char *l = maps, *eol; l != NULL && *l; l = eol != NULL ? eol + 1 : NULL) {
		unsigned long lo, hi;

		if ((eol = strchr(l, '\n')) != NULL)
			*eol = '\0';
		if (strstr(l, "[heap]") != NULL && sscanf(l, "%lx-%lx", &lo, &hi) == 2)
			return (uintptr_t)p >= lo && (uintptr_t)p < hi;
	}
	return 0;
}

/* A block of the shim's own mappings starts 128 bytes into a page; a heap
 * block may too, by chance of the heap's layout. */
static int shims(const void *p)
{
	return ((uintptr_t)p & 4095) == 128 && !in_heap(p);
}

/* Private writable bytes of the process (statm's data field), as
 * RLIMIT_DATA counts them. */
static uint64_t data_bytes(void)
{
	unsigned long size, res, shr, text, lib, data;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL || fscanf(f, "%lu %lu %lu %lu %lu %lu", &size, &res, &shr, &text, &lib,
				&data) != 6) {
		fprintf(stderr, "cannot read /proc/self/statm\n");
		exit(2);
	}
	fclose(f);
	return (uint64_t)data * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void *big(size_t n)
{
	void *p = malloc(n);

	if (p == NULL) {
		fprintf(stderr, "malloc(%zu) failed\n", n);
		exit(2);
	}
	memset(p, 0xab, n);
	return p;
}

static void reuse(void)
{
	struct memfence_process_stats a, b, c;
	void *p, *q;
	size_t u;

	a = ps();
	p = big(2 * MIB);
	CHECK(shims(p));
	u = malloc_usable_size(p);
	CHECK(u >= 2 * MIB && u < 2 * MIB + 4096);
	b = ps();
	CHECK(b.live - a.live == u);
	CHECK(cur().net == (int64_t)u);
	free(p);
	c = ps();
	CHECK(c.live == a.live);
	CHECK(c.freed - a.freed == u);
	/* A slightly smaller block fits the cached one: same mapping. */
	q = big(2 * MIB - 10000);
	CHECK(q == p);
	CHECK(malloc_usable_size(q) <= u);
	free(q);
	CHECK(ps().live == a.live);
}

static void zeroed(void)
{
	unsigned char *p = big(3 * MIB), *q;
	size_t u = malloc_usable_size(p);

	free(p);
	q = calloc(1, 3 * MIB);
	CHECK(q == p);
	for (size_t i = 0; i < u; i++)
		if (q[i] != 0) {
			fprintf(stderr, "byte %zu of a reused calloc block is %u\n", i, q[i]);
			exit(1);
		}
	free(q);
}

static int holds(const unsigned char *p, size_t n, unsigned char v)
{
	for (size_t i = 0; i < n; i += 997)
		if (p[i] != v)
			return 0;
	return p[n - 1] == v;
}

static void resize(void)
{
	struct memfence_process_stats a = ps();
	unsigned char *p = malloc(512 << 10), *q;

	memset(p, 7, 512 << 10);
	q = realloc(p, 3 * MIB);
	CHECK(q != NULL && shims(q));
	CHECK(holds(q, 512 << 10, 7));
	CHECK(ps().live - a.live == malloc_usable_size(q));
	memset(q, 9, 3 * MIB);
	/* Past its mapping: moved by mremap, no copy. */
	p = realloc(q, 40 * MIB);
	CHECK(p != NULL && shims(p));
	CHECK(holds(p, 3 * MIB, 9));
	CHECK(ps().live - a.live == malloc_usable_size(p));
	/* Within it: in place. */
	q = realloc(p, 39 * MIB);
	CHECK(q == p);
	CHECK(ps().live - a.live == malloc_usable_size(q));
	p = realloc(q, 100 << 10);
	CHECK(p != NULL && !shims(p));
	CHECK(holds(p, 100 << 10, 9));
	CHECK(ps().live - a.live == malloc_usable_size(p));
	CHECK(realloc(p, 0) == NULL);
	CHECK(ps().live == a.live);
}

static void aligned(void)
{
	struct memfence_process_stats a = ps();
	void *p = NULL, *q, *r, *v;

	CHECK(posix_memalign(&p, 4096, 2 * MIB) == 0);
	q = aligned_alloc(256, 2 * MIB);
	r = memalign(64, 2 * MIB);
	v = valloc(2 * MIB);
	CHECK(p != NULL && q != NULL && r != NULL && v != NULL);
	CHECK(((uintptr_t)p & 4095) == 0 && ((uintptr_t)q & 255) == 0 && ((uintptr_t)r & 63) == 0 &&
	      ((uintptr_t)v & 4095) == 0);
	CHECK(malloc_usable_size(p) >= 2 * MIB && malloc_usable_size(q) >= 2 * MIB);
	memset(p, 1, 2 * MIB);
	memset(q, 1, 2 * MIB);
	memset(r, 1, 2 * MIB);
	memset(v, 1, 2 * MIB);
	CHECK(ps().live - a.live == malloc_usable_size(p) + malloc_usable_size(q) +
					    malloc_usable_size(r) + malloc_usable_size(v));
	free(p);
	free(q);
	free(r);
	free(v);
	CHECK(ps().live == a.live);
}

static void bound(void)
{
	void *v[40];
	uint64_t before = data_bytes(), after;

	for (int i = 0; i < 40; i++)
		v[i] = big(2 * MIB);
	for (int i = 0; i < 40; i++)
		free(v[i]);
	after = data_bytes();
	/* At most 48 MiB (an eighth of the soft line) stays mapped. */
	CHECK(after <= before + 48 * MIB);
	CHECK(after >= before + 20 * MIB); /* and some did: it is a cache */
	/* Past half the bound: never kept. */
	before = data_bytes();
	free(big(30 * MIB));
	CHECK(data_bytes() <= before);
}

static void release(void)
{
	void *v[20], *p;

	for (int i = 0; i < 20; i++)
		v[i] = big(2 * MIB);
	for (int i = 0; i < 20; i++)
		free(v[i]);
	/* Outside a scope (never refused by the policy), a block that fits
	 * under the 512 MiB RLIMIT_DATA only once 20 of the 40 MiB cached are
	 * given back. */
	CHECK(memfence_scope_end(NULL) == MEMFENCE_OK);
	p = malloc(512 * MIB - data_bytes() + 20 * MIB);
	CHECK(p != NULL);
	CHECK(ps().failed_alloc == 0);
	free(p);
	CHECK(memfence_scope_begin("request", "r-2", 0) == MEMFENCE_OK);
}

static void refused(void)
{
	void *v[20], *m, *p;
	size_t n;

	for (int i = 0; i < 20; i++)
		v[i] = big(2 * MIB);
	for (int i = 0; i < 20; i++)
		free(v[i]);
	/* The process grows to 50 MiB under the soft line (384 MiB), 40 MiB
	 * of it cached: the next 60 MiB would pass the line by 10, and be
	 * refused as the largest scope's, unless the cache goes first. */
	n = 384 * MIB - 50 * MIB - data_bytes();
	m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED);
	/* The shim measures the process at most every 2 ms and adds only the
	 * live growth since, which the cached bytes (freed, still mapped) hide:
	 * a pause makes the next decision measure. */
	usleep(5000);
	p = malloc(60 * MIB);
	CHECK(p != NULL);
	CHECK(ps().failed_budget == 0);
	free(p);
	CHECK(munmap(m, n) == 0);
}

static void forked(void)
{
	void *p = big(2 * MIB), *q;
	int status;
	pid_t pid;

	free(p);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct memfence_process_stats a = ps();
		q = big(2 * MIB);
		if (q != p || ps().live - a.live != malloc_usable_size(q))
			_exit(1);
		free(q);
		_exit(ps().live == a.live ? 0 : 1);
	}
	q = big(2 * MIB);
	CHECK(q == p);
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	free(q);
}

static void *churn(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;

	CHECK(memfence_scope_begin("worker", "w", 0) == MEMFENCE_OK);
	for (int i = 0; i < 500; i++) {
		size_t n = MIB + (size_t)(rand_r(&seed) % (3 * MIB));
		unsigned char *p = malloc(n);
		CHECK(p != NULL);
		p[0] = p[n - 1] = 1;
		if (i % 3 == 0) {
			p = realloc(p, n + MIB);
			CHECK(p != NULL && p[0] == 1);
		}
		free(p);
	}
	CHECK(cur().net == 0);
	CHECK(memfence_scope_end(NULL) == MEMFENCE_OK);
	return NULL;
}

static void threads(void)
{
	struct memfence_process_stats a = ps();
	pthread_t th[4];

	for (uintptr_t i = 0; i < 4; i++)
		CHECK(pthread_create(&th[i], NULL, churn, (void *)(i + 1)) == 0);
	for (int i = 0; i < 4; i++)
		CHECK(pthread_join(th[i], NULL) == 0);
	/* Each scope ended at net 0 (checked in the threads); what glibc keeps
	 * per thread after a join (its thread-local storage) is small. */
	CHECK((int64_t)(ps().live - a.live) < (64 << 10));
}

static void user(void)
{
	void *old = big(2 * MIB), *p;

	CHECK(shims(old));
	CHECK(mallopt(M_MMAP_THRESHOLD, 64 * MIB) == 1);
	p = big(2 * MIB);
	CHECK(!shims(p));
	free(p);
	free(old);
	p = big(3 * MIB);
	CHECK(!shims(p));
	free(p);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	need_active();
	CHECK(memfence_scope_begin("request", "r-1", 0) == MEMFENCE_OK);
	if (strcmp(mode, "reuse") == 0)
		reuse();
	else if (strcmp(mode, "calloc") == 0)
		zeroed();
	else if (strcmp(mode, "realloc") == 0)
		resize();
	else if (strcmp(mode, "aligned") == 0)
		aligned();
	else if (strcmp(mode, "bound") == 0)
		bound();
	else if (strcmp(mode, "release") == 0)
		release();
	else if (strcmp(mode, "refused") == 0)
		refused();
	else if (strcmp(mode, "fork") == 0)
		forked();
	else if (strcmp(mode, "threads") == 0)
		threads();
	else if (strcmp(mode, "user") == 0)
		user();
	else if (strcmp(mode, "env") == 0) {
		void *p = big(2 * MIB);
		CHECK(!shims(p));
		free(p);
	} else {
		fprintf(stderr, "usage: shim_large reuse|calloc|realloc|aligned|bound|release|"
				"refused|fork|threads|user|env\n");
		return 2;
	}
	CHECK(memfence_scope_end(NULL) == MEMFENCE_OK);
	return unit_done("shim_large");
}
