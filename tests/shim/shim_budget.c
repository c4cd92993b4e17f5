/*
 * shim_budget.c - budgets and the heap limit refuse exactly the crossing
 * allocation.
 *
 *   shim_budget budget       scope budgets (no heap limit set)
 *   shim_budget heap LIMIT   run with MEMFENCE_HEAP_LIMIT=LIMIT (bytes)
 *
 * Requests are chosen so that glibc's usable size equals the request
 * (n = 16k + 8, k >= 1), which the test checks before relying on it: then
 * "fits" and "one byte more" are exact byte counts.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shimtest.h"

static void test_budget_exact(void)
{
	struct memfence_process_stats p0, p1;
	struct memfence_scope_stats s;
	void *a, *b, *c;

	void *probe = malloc(4097);
	int rounds_up = malloc_usable_size(probe) > 4097;

	free(probe);
	p0 = ps();
	/* budget 4104: a block of exactly 4104 fits, then not one byte more */
	CHECK(memfence_scope_begin("exact", "1", 4104) == MEMFENCE_OK);
	a = malloc(4104);
	CHECK(a != NULL);
	CHECK_EQ_U64(malloc_usable_size(a), 4104);
	errno = 0;
	b = malloc(1);
	CHECK(b == NULL && errno == ENOMEM);
	s = cur();
	CHECK_EQ_U64(s.net, 4104);
	CHECK_EQ_U64(s.failed, 1);
	free(a);
	/* after the free it fits again */
	b = malloc(24);
	CHECK(b != NULL);
	free(b);
	CHECK(memfence_scope_end(&s) == MEMFENCE_OK);
	CHECK_EQ_U64(s.peak, 4104);
	CHECK_EQ_U64(s.failed, 1);

	/* budget one byte short: the same request is refused */
	CHECK(memfence_scope_begin("short", "2", 4103) == MEMFENCE_OK);
	errno = 0;
	a = malloc(4104);
	CHECK(a == NULL && errno == ENOMEM);
	/* a request whose usable size is larger than itself (glibc: 4097 ->
	 * 4104; sanitizer allocators give exactly what is asked) */
	errno = 0;
	a = malloc(4097);
	if (rounds_up) {
		CHECK(a == NULL && errno == ENOMEM);
	} else {
		CHECK(a != NULL);
		free(a);
	}
	a = malloc(4088);
	CHECK(a != NULL && malloc_usable_size(a) == 4088);
	free(a);
	CHECK(memfence_scope_end(&s) == MEMFENCE_OK);
	CHECK_EQ_U64(s.failed, rounds_up ? 2 : 1);
	CHECK_EQ_U64(s.net, 0);

	/* many small blocks up to the edge */
	CHECK(memfence_scope_begin("fill", "3", 100 * 1000) == MEMFENCE_OK);
	static void *blocks[200];
	int n = 0;
	for (; n < 200; n++) {
		blocks[n] = malloc(984);
		if (blocks[n] == NULL)
			break;
	}
	s = cur();
	CHECK(n >= 90 && n <= 100 * 1000 / 984);
	CHECK(s.net <= 100 * 1000 && s.net + 984 > 100 * 1000);
	for (int i = 0; i < n; i++)
		free(blocks[i]);
	CHECK(memfence_scope_end(NULL) == MEMFENCE_OK);

	/* nested: the inner budget and the outer one both apply */
	CHECK(memfence_scope_begin("outer", NULL, 10000) == MEMFENCE_OK);
	a = malloc(8008);
	CHECK(a != NULL);
	CHECK(memfence_scope_begin("inner", NULL, 1 << 20) == MEMFENCE_OK);
	b = malloc(1992);
	CHECK(b != NULL && malloc_usable_size(b) == 1992);
	c = malloc(24);
	CHECK(c == NULL); /* outer would pass 10000 */
	CHECK(memfence_scope_end(&s) == MEMFENCE_OK);
	CHECK_EQ_U64(s.failed, 1);
	free(b);
	free(a);
	CHECK(memfence_scope_end(&s) == MEMFENCE_OK);
	CHECK_EQ_U64(s.failed, 1);

	/* realloc growth and mmap are checked too; a refused realloc keeps
	 * the old block */
	CHECK(memfence_scope_begin("realloc", NULL, 8200) == MEMFENCE_OK);
	a = malloc(4104);
	memset(a, 7, 4104);
	b = realloc(a, 8200);
	CHECK(b != NULL && malloc_usable_size(b) == 8200 && ((char *)b)[4103] == 7);
	errno = 0;
	c = realloc(b, 8216);
	CHECK(c == NULL && errno == ENOMEM && ((char *)b)[4103] == 7);
	CHECK_EQ_U64(cur().net, 8200);
	free(b);
	c = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(c != MAP_FAILED);
	errno = 0;
	CHECK(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED &&
	      errno == ENOMEM);
	munmap(c, 8192);
	/* a huge request is refused before it reaches the allocator */
	CHECK(malloc((size_t)1 << 60) == NULL);
	CHECK(memfence_scope_end(&s) == MEMFENCE_OK);
	CHECK_EQ_U64(s.failed, 3);
	CHECK_EQ_U64(s.net, 0);

	p1 = ps();
	CHECK_EQ_U64(p1.failed_budget - p0.failed_budget, 1 + (rounds_up ? 2 : 1) + 1 + 1 + 3);
	CHECK_EQ_U64(p1.failed_alloc, p0.failed_alloc);
}

/* A budget refuses in its own thread only. */
static pthread_barrier_t barrier;

static void *other_thread(void *arg)
{
	void *p;

	if (arg != NULL)
		pthread_barrier_wait(&barrier);
	p = malloc(1 << 20);
	free(p);
	return p;
}

static void test_budget_thread_only(void)
{
	pthread_t th;
	void *res;

	/* pthread_create allocates in the creating thread: start the other
	 * thread before the tight scope opens. */
	pthread_barrier_init(&barrier, NULL, 2);
	CHECK(pthread_create(&th, NULL, other_thread, &barrier) == 0);
	CHECK(memfence_scope_begin("tight", NULL, 100) == MEMFENCE_OK);
	CHECK(malloc(1 << 20) == NULL);
	pthread_barrier_wait(&barrier);
	pthread_join(th, &res);
	CHECK(res != NULL);
	CHECK(memfence_scope_end(NULL) == MEMFENCE_OK);
}

static void test_heap(uint64_t limit)
{
	struct memfence_process_stats p0, p1;
	uint64_t room;
	void *a, *b;

	p0 = ps();
	CHECK(p0.live < limit);
	room = limit - p0.live;
	/* fill to exactly the limit with blocks whose usable size is known */
	static void *blocks[100000];
	int n = 0;
	while (room >= 4104 + 4104 + 64) {
		blocks[n] = malloc(4104);
		CHECK(blocks[n] != NULL);
		room -= malloc_usable_size(blocks[n]);
		n++;
	}
	/* room is now in [4104, 8208): one block of exactly room bytes, if
	 * room is 16k + 8, else the largest such below it */
	uint64_t last = room >= 24 ? ((room - 8) & ~(uint64_t)15) + 8 : 0;
	if (last > room)
		last -= 16;
	a = malloc(last);
	CHECK(a != NULL && malloc_usable_size(a) == last);
	room -= last;
	p1 = ps();
	CHECK_EQ_U64(limit - p1.live, room);
	/* the next block that does not fit fails, exactly */
	errno = 0;
	b = malloc(room + 1 > 24 ? room + 1 : 24);
	CHECK(b == NULL && errno == ENOMEM);
	if (room >= 24) {
		uint64_t fit = ((room - 8) & ~(uint64_t)15) + 8;
		if (fit > room)
			fit -= 16;
		b = malloc(fit);
		CHECK(b != NULL);
		free(b);
	}
	p1 = ps();
	CHECK_EQ_U64(p1.failed_heap - p0.failed_heap, 1);
	CHECK(p1.live <= limit);
	free(a);
	for (int i = 0; i < n; i++)
		free(blocks[i]);
	p1 = ps();
	CHECK_EQ_U64(p1.live, p0.live);
	/* a thread can use the room again */
	pthread_t th;
	void *res;
	CHECK(pthread_create(&th, NULL, other_thread, NULL) == 0);
	pthread_join(th, &res);
	CHECK(res != NULL);
}

int main(int argc, char **argv)
{
	need_active();
	if (argc > 2 && strcmp(argv[1], "heap") == 0) {
		test_heap(strtoull(argv[2], NULL, 10));
		return unit_done("shim_budget heap");
	}
	test_budget_exact();
	test_budget_thread_only();
	return unit_done("shim_budget");
}
