/*
 * shim_fault.c - MEMFENCE_FAULT modes. Run as `shim_fault MODE` with the
 * matching MEMFENCE_FAULT (see tests/integration/shim_fault.sh).
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "shimtest.h"

static void *nothing(void *arg)
{
	return arg;
}

/* MEMFENCE_FAULT=nth=3,scope=req* : the 3rd allocation inside a matching scope */
static void mode_nth_scope(void)
{
	struct memfence_process_stats p0 = ps(), p1;
	struct memfence_scope_stats s;
	void *p[6];

	for (int i = 0; i < 6; i++)
		p[i] = malloc(10);
	for (int i = 0; i < 6; i++) {
		CHECK(p[i] != NULL);
		free(p[i]);
	}
	CHECK(memfence_scope_begin("other", NULL, 0) == MEMFENCE_OK);
	for (int i = 0; i < 6; i++) {
		p[i] = malloc(10);
		CHECK(p[i] != NULL);
		free(p[i]);
	}
	CHECK(memfence_scope_end(NULL) == MEMFENCE_OK);
	CHECK(memfence_scope_begin("request", "r1", 0) == MEMFENCE_OK);
	for (int i = 0; i < 6; i++) {
		errno = 0;
		p[i] = malloc(10);
		CHECK((p[i] == NULL) == (i == 2));
		if (i == 2)
			CHECK(errno == ENOMEM);
	}
	for (int i = 0; i < 6; i++)
		free(p[i]);
	CHECK(memfence_scope_end(&s) == MEMFENCE_OK);
	CHECK_EQ_U64(s.failed, 1);
	p1 = ps();
	CHECK_EQ_U64(p1.failed_fault - p0.failed_fault, 1);
}

/* MEMFENCE_FAULT=size>=1M : big ones fail, small ones do not, mmap too */
static void mode_size(void)
{
	void *a = malloc(1000), *b = malloc((1 << 20) - 100), *c = malloc(1 << 20);
	CHECK(a != NULL && b != NULL && c == NULL);
	CHECK(calloc(1, 2 << 20) == NULL);
	CHECK(realloc(a, 3 << 20) == NULL);
	CHECK(mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED);
	void *m = mmap(NULL, 1 << 19, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED);
	munmap(m, 1 << 19);
	free(a);
	free(b);
	CHECK(ps().failed_fault == 4);
}

/* MEMFENCE_FAULT=after=1M,scope=job : inside "job", requests fail once
 * they would pass 1 MiB in total */
static void mode_after(void)
{
	void *p[20];
	int n = 0;

	CHECK(memfence_scope_begin("job", NULL, 0) == MEMFENCE_OK);
	for (int i = 0; i < 20; i++) {
		p[i] = malloc(100000);
		if (p[i] != NULL)
			n++;
	}
	CHECK_EQ_U64(n, 10); /* 10 x 100000 <= 1048576 < 11 x 100000 */
	for (int i = 0; i < 20; i++)
		free(p[i]);
	CHECK(memfence_scope_end(NULL) == MEMFENCE_OK);
}

/* MEMFENCE_FAULT=every=4,scope=s : 4th, 8th, ... */
static void mode_every(void)
{
	CHECK(memfence_scope_begin("s", NULL, 0) == MEMFENCE_OK);
	for (int i = 1; i <= 12; i++) {
		void *p = malloc(8);
		CHECK((p == NULL) == (i % 4 == 0));
		free(p);
	}
	CHECK(memfence_scope_end(NULL) == MEMFENCE_OK);
}

/* MEMFENCE_FAULT=thread=ERR,scope=spawn : pthread_create fails with ERR
 * inside "spawn" only; argv[2] is the expected errno number */
static void mode_thread(int err)
{
	pthread_t th;
	struct memfence_process_stats p0 = ps(), p1;

	CHECK(pthread_create(&th, NULL, nothing, NULL) == 0);
	pthread_join(th, NULL);
	CHECK(memfence_thread_errno() == 0);
	CHECK(memfence_scope_begin("spawn", NULL, 0) == MEMFENCE_OK);
	CHECK(pthread_create(&th, NULL, nothing, NULL) == err);
	CHECK(memfence_thread_errno() == err);
	CHECK(memfence_scope_end(NULL) == MEMFENCE_OK);
	p1 = ps();
	CHECK_EQ_U64(p1.thread_failed - p0.thread_failed, 1);
	CHECK(p1.thread_last_errno == err);
}

int main(int argc, char **argv)
{
	need_active();
	if (argc < 2)
		return 2;
	if (strcmp(argv[1], "nth-scope") == 0)
		mode_nth_scope();
	else if (strcmp(argv[1], "size") == 0)
		mode_size();
	else if (strcmp(argv[1], "after") == 0)
		mode_after();
	else if (strcmp(argv[1], "every") == 0)
		mode_every();
	else if (strcmp(argv[1], "thread") == 0 && argc > 2)
		mode_thread(atoi(argv[2]));
	else
		return 2;
	return unit_done(argv[1]);
}
