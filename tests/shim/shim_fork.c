/*
 * shim_fork.c - after fork, parent and child count separately, each exact.
 *
 * The child starts with the parent's live bytes (it inherited the heap),
 * allocated/freed from zero, and keeps the scope that was open; its
 * figures go to a slot of its own.
 */
#include <malloc.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shimtest.h"

static void *spin(void *arg)
{
	/* another thread allocating while the fork happens */
	int *stop = arg;
	while (!__atomic_load_n(stop, __ATOMIC_RELAXED))
		free(malloc(64));
	return NULL;
}

int main(void)
{
	struct memfence_process_stats p0, p1;
	struct memfence_scope_stats s;
	int stop = 0;
	pthread_t th;
	void *inherited, *x;
	int status;
	pid_t pid;

	need_active();
	CHECK(pthread_create(&th, NULL, spin, &stop) == 0);
	inherited = malloc(50000);
	CHECK(memfence_scope_begin("forking", "f", 0) == MEMFENCE_OK);
	x = malloc(1000);
	p0 = ps();
	pid = fork();
	if (pid == 0) {
		/* child: one thread, its own counts */
		struct memfence_process_stats c0, c1;
		uint64_t ux, ui, un;
		void *n;

		c0 = ps();
		CHECK(c0.allocated < 1000000); /* not the parent's totals */
		CHECK(c0.live >= malloc_usable_size(inherited));
		n = malloc(300000);
		un = malloc_usable_size(n);
		ux = malloc_usable_size(x);
		ui = malloc_usable_size(inherited);
		free(x);
		free(inherited);
		c1 = ps();
		CHECK_EQ_U64(c1.allocated - c0.allocated, un);
		CHECK_EQ_U64(c1.freed - c0.freed, ux + ui);
		CHECK_EQ_U64(c1.live - c0.live, un - ux - ui);
		s = cur();
		CHECK(s.net == (int64_t)ux + (int64_t)un - (int64_t)ux - (int64_t)ui);
		CHECK(memfence_scope_end(&s) == MEMFENCE_OK);
		free(n);
		int rc = unit_done("shim_fork child");
		fflush(stdout);
		_exit(rc);
	}
	CHECK(pid > 0);
	/* parent: its counts are unaffected by the child's */
	void *y = malloc(7000);
	free(x);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	p1 = ps();
	CHECK_EQ_U64(p1.allocated - p0.allocated >= malloc_usable_size(y), 1);
	s = cur();
	CHECK_EQ_U64(s.net, malloc_usable_size(y));
	uint64_t ui = malloc_usable_size(inherited);
	free(y);
	free(inherited);
	CHECK(memfence_scope_end(&s) == MEMFENCE_OK);
	/* inherited was allocated before the scope opened */
	CHECK(s.net == -(int64_t)ui);
	/* a few forks in a row, each child exact */
	for (int i = 0; i < 20; i++) {
		pid = fork();
		if (pid == 0) {
			struct memfence_process_stats a = ps(), b;
			void *z = malloc(12345);
			b = ps();
			_exit(b.allocated - a.allocated == malloc_usable_size(z) ? 0 : 1);
		}
		waitpid(pid, &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	return unit_done("shim_fork");
}
