/*
 * prof_sites.c - allocation sites in known proportions, for the profiler's
 * tests (tests/integration/profile_sites.sh).
 *
 * Usage: prof_sites ROUNDS THREADS
 * Each round allocates and frees, in every thread: site_a 3 x 8000 bytes,
 * site_b 6 x 2000, site_c 4 x 1000 (60/30/10 of the bytes); site_leak keeps
 * one 4000-byte block every round. A forked child then allocates 16 MiB at
 * site_child and exits. Prints the exact usable bytes of each site, from
 * malloc_usable_size, as "site BYTES COUNT SUMSQ" lines.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void *volatile sink;

/* noinline and a store after the call: each site keeps its own frame. */
#define SITE(name, size)                                   \
	__attribute__((noinline)) static void *name(void) \
	{                                                  \
		void *p = malloc(size);                    \
		sink = p;                                  \
		return p;                                  \
	}
SITE(site_a, 8000)
SITE(site_b, 2000)
SITE(site_c, 1000)
SITE(site_leak, 4000)
SITE(site_child, 1 << 16)

static long rounds;

static void *worker(void *arg)
{
	(void)arg;
	for (long r = 0; r < rounds; r++) {
		for (int i = 0; i < 3; i++)
			free(site_a());
		for (int i = 0; i < 6; i++)
			free(site_b());
		for (int i = 0; i < 4; i++)
			free(site_c());
		(void)site_leak(); /* kept on purpose: the leak */
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = argc > 2 ? atoi(argv[2]) : 1;
	pthread_t th[64];
	double n;
	pid_t pid;

	rounds = argc > 1 ? atol(argv[1]) : 10000;
	if (threads < 1 || threads > 64 || rounds < 1) {
		fprintf(stderr, "usage: prof_sites ROUNDS THREADS(1-64)\n");
		return 2;
	}
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, worker, NULL);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	n = (double)rounds * threads;
	{
		void *a = malloc(8000), *b = malloc(2000), *c = malloc(1000), *l = malloc(4000);
		double ua = malloc_usable_size(a), ub = malloc_usable_size(b), uc = malloc_usable_size(c),
		       ul = malloc_usable_size(l);
		printf("site_a %.0f %.0f %.0f\n", 3 * n * ua, 3 * n, 3 * n * ua * ua);
		printf("site_b %.0f %.0f %.0f\n", 6 * n * ub, 6 * n, 6 * n * ub * ub);
		printf("site_c %.0f %.0f %.0f\n", 4 * n * uc, 4 * n, 4 * n * uc * uc);
		printf("site_leak %.0f %.0f %.0f\n", n * ul, n, n * ul * ul);
		free(a), free(b), free(c), free(l);
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		for (int i = 0; i < 256; i++)
			(void)site_child();
		exit(0);
	}
	waitpid(pid, NULL, 0);
	printf("child %ld\n", (long)pid);
	return 0;
}
