/*
 * shim_threads.c - many threads: exact totals with cross-thread frees,
 * thousands of short threads, pthread_create failures.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <string.h>

#include "shimtest.h"

#define NTHREADS 16
#define ROUNDS 20000
#define SLOTS 256

/* Blocks handed between threads: a thread frees what another made. */
static void *shared[SLOTS];
static pthread_mutex_t shared_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t start, stop;

struct work {
	int id;
	uint64_t alloc_bytes, free_bytes;
	struct memfence_scope_stats scope;
	int ok;
};

static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void *worker(void *arg)
{
	struct work *w = arg;
	uint32_t seed = (uint32_t)w->id * 2654435761u + 1;
	void *mine[64] = {0};

	memfence_process_stats(NULL); /* flush whatever thread start made */
	pthread_barrier_wait(&start);
	pthread_barrier_wait(&start);
	w->ok = memfence_scope_begin("worker", NULL, 0) == MEMFENCE_OK;
	for (int r = 0; r < ROUNDS; r++) {
		uint32_t x = rnd(&seed);
		size_t sz = (x >> 8) % 4 == 0 ? (x >> 12) % 200000 : (x >> 12) % 512;
		int k = (int)(x % 64);
		if (mine[k] != NULL) {
			w->free_bytes += malloc_usable_size(mine[k]);
			free(mine[k]);
		}
		mine[k] = malloc(sz);
		w->alloc_bytes += malloc_usable_size(mine[k]);
		if (x % 5 == 0) {
			/* swap one of ours with the shared pool */
			int j = (int)((x >> 16) % SLOTS);
			pthread_mutex_lock(&shared_mu);
			void *t = shared[j];
			shared[j] = mine[k];
			pthread_mutex_unlock(&shared_mu);
			mine[k] = t;
		}
	}
	for (int k = 0; k < 64; k++)
		if (mine[k] != NULL) {
			w->free_bytes += malloc_usable_size(mine[k]);
			free(mine[k]);
		}
	if (memfence_scope_end(&w->scope) != MEMFENCE_OK)
		w->ok = 0;
	memfence_process_stats(NULL);
	pthread_barrier_wait(&stop);
	pthread_barrier_wait(&stop);
	return NULL;
}

static void test_many(void)
{
	static struct work w[NTHREADS];
	pthread_t th[NTHREADS];
	struct memfence_process_stats p0, p1;
	uint64_t a = 0, f = 0;

	pthread_barrier_init(&start, NULL, NTHREADS + 1);
	pthread_barrier_init(&stop, NULL, NTHREADS + 1);
	for (int i = 0; i < NTHREADS; i++) {
		w[i].id = i;
		CHECK(pthread_create(&th[i], NULL, worker, &w[i]) == 0);
	}
	pthread_barrier_wait(&start);
	p0 = ps();
	pthread_barrier_wait(&start);
	pthread_barrier_wait(&stop);
	/* what is left in the shared pool is freed here, by main */
	for (int j = 0; j < SLOTS; j++)
		if (shared[j] != NULL) {
			f += malloc_usable_size(shared[j]);
			free(shared[j]);
			shared[j] = NULL;
		}
	p1 = ps();
	pthread_barrier_wait(&stop);
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		CHECK(w[i].ok);
		CHECK_EQ_U64(w[i].scope.allocated, w[i].alloc_bytes);
		CHECK_EQ_U64(w[i].scope.freed, w[i].free_bytes);
		CHECK(w[i].scope.net == (int64_t)(w[i].alloc_bytes - w[i].free_bytes));
		a += w[i].alloc_bytes;
		f += w[i].free_bytes;
	}
	CHECK_EQ_U64(a, f);
	CHECK_EQ_U64(p1.allocated - p0.allocated, a);
	CHECK_EQ_U64(p1.freed - p0.freed, f);
	CHECK_EQ_U64(p1.live, p0.live);
	CHECK_EQ_U64(p1.alloc_calls - p0.alloc_calls, (uint64_t)NTHREADS * ROUNDS);
}

/* Short threads: their last counts arrive through the exit flush. */
static void *short_thread(void *arg)
{
	void *keep;

	(void)arg;
	memfence_scope_begin("short", "x", 0);
	free(malloc(1000));
	keep = malloc(1000);
	memfence_scope_end(NULL);
	return keep;
}

static void test_short_threads(void)
{
	struct memfence_process_stats p0, p1;
	uint64_t kept = 0, ublock;
	void *b = malloc(1000);
	enum { TOTAL = 3000, BATCH = 50 };

	ublock = malloc_usable_size(b);
	free(b);
	p0 = ps();
	for (int done = 0; done < TOTAL; done += BATCH) {
		pthread_t th[BATCH];
		for (int i = 0; i < BATCH; i++)
			CHECK(pthread_create(&th[i], NULL, short_thread, NULL) == 0);
		for (int i = 0; i < BATCH; i++) {
			void *r;
			pthread_join(th[i], &r);
			kept += malloc_usable_size(r);
			free(r);
		}
	}
	p1 = ps();
	/* glibc may hand out a chunk a little larger than asked (it does not
	 * split off remainders too small to be chunks), so kept is measured */
	CHECK(kept >= (uint64_t)TOTAL * ublock);
	/* Each thread made 2 blocks; pthread_create itself allocates too
	 * (thread control blocks), hence >=. Without the exit flush the
	 * threads' 2 calls each would never arrive. */
	CHECK(p1.allocated - p0.allocated >= kept + (uint64_t)TOTAL * ublock);
	CHECK(p1.alloc_calls - p0.alloc_calls >= 2 * (uint64_t)TOTAL);
	CHECK(p1.freed - p0.freed >= kept + (uint64_t)TOTAL * ublock);
	CHECK_EQ_U64(p1.thread_failed, p0.thread_failed);
	CHECK_EQ_U64(p1.scopes_open, 0);
	/* cached thread stacks keep a few control blocks: bounded */
	CHECK((int64_t)(p1.live - p0.live) < (1 << 20));
}

static void *nothing(void *arg)
{
	return arg;
}

static void test_create_fails(void)
{
	struct memfence_process_stats p0, p1;
	pthread_attr_t attr;
	pthread_t th;
	int r;

	p0 = ps();
	CHECK(memfence_thread_errno() == 0);
	pthread_attr_init(&attr);
	/* a stack no machine can map */
	CHECK(pthread_attr_setstacksize(&attr, (size_t)1 << 46) == 0);
	r = pthread_create(&th, &attr, nothing, NULL);
	CHECK(r == EAGAIN || r == ENOMEM);
	CHECK(memfence_thread_errno() == r);
	p1 = ps();
	CHECK_EQ_U64(p1.thread_failed - p0.thread_failed, 1);
	CHECK(p1.thread_last_errno == r);
	pthread_attr_destroy(&attr);
	CHECK(pthread_create(&th, NULL, nothing, NULL) == 0);
	pthread_join(th, NULL);
}

int main(void)
{
	need_active();
	test_many();
	test_short_threads();
	test_create_fails();
	return unit_done("shim_threads");
}
