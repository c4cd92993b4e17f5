/*
 * threadstack.c - print the stack size of the main thread and of a new
 * thread created with default attributes, as the tests of --stack need.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

static void *report(void *arg)
{
	pthread_attr_t attr;
	size_t size = 0;

	(void)arg;
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		pthread_attr_getstacksize(&attr, &size);
		pthread_attr_destroy(&attr);
	}
	printf("thread %zu\n", size);
	return NULL;
}

int main(void)
{
	struct rlimit rl;
	pthread_t t;
	int rc;

	getrlimit(RLIMIT_STACK, &rl);
	if (rl.rlim_cur == RLIM_INFINITY)
		printf("main unlimited\n");
	else
		printf("main %llu\n", (unsigned long long)rl.rlim_cur);
	rc = pthread_create(&t, NULL, report, NULL);
	if (rc != 0) {
		printf("pthread_create %d\n", rc);
		return 1;
	}
	pthread_join(t, NULL);
	return 0;
}
