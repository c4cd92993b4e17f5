/*
 * prof_scopes.c - the profiler's snapshots and scopes
 * (tests/integration/profile_snapshots.sh).
 *
 *   prof_scopes scopes   site_big in scope "req-big" (32 MiB), site_small in
 *                        "req-small" (4 MiB), all freed
 *   prof_scopes fail     site_fill keeps 16 MiB, then site_over allocates in
 *                        a scope with a 1 MiB budget until refused
 *   prof_scopes hold     site_hold keeps 64 MiB, prints "ready", then keeps
 *                        allocating small blocks (freed) until killed
 *   prof_scopes many N   N allocations from ever different stacks (more
 *                        sites than the profiler's table holds)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memfence.h"

static void *volatile sink;
static volatile long depth_calls;

/* Bodies differ by their fill byte, so that gcc's identical code folding
 * cannot merge two sites into one function. */
#define SITE(name, fill)                                             \
	__attribute__((noinline)) static void *name(size_t n)       \
	{                                                            \
		void *p = malloc(n);                                 \
		if (p != NULL)                                       \
			memset(p, fill, n < 4096 ? n : 4096);        \
		sink = p;                                            \
		return p;                                            \
	}
SITE(site_big, 1)
SITE(site_small, 2)
SITE(site_fill, 3)
SITE(site_over, 4)
SITE(site_hold, 5)
SITE(site_deep, 6)

/* A different stack for every value of bits: rec_0/rec_1 chosen bit by bit. */
__attribute__((noinline)) static void rec_1(unsigned bits, int d);
__attribute__((noinline)) static void rec_0(unsigned bits, int d)
{
	if (d == 0) {
		free(site_deep(64));
		return;
	}
	(bits & 1 ? rec_1 : rec_0)(bits >> 1, d - 1);
	depth_calls++; /* not a tail call: each level keeps its frame */
}
__attribute__((noinline)) static void rec_1(unsigned bits, int d)
{
	if (d == 0) {
		free(site_deep(64));
		return;
	}
	(bits & 1 ? rec_1 : rec_0)(bits >> 1, d - 1);
	depth_calls++; /* not a tail call: each level keeps its frame */
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";

	if (strcmp(mode, "scopes") == 0) {
		for (int r = 0; r < 64; r++) {
			memfence_scope_begin("req-big", "1", 0);
			free(site_big(512 << 10));
			memfence_scope_end(NULL);
			memfence_scope_begin("req-small", "2", 0);
			free(site_small(64 << 10));
			memfence_scope_end(NULL);
		}
	} else if (strcmp(mode, "fail") == 0) {
		for (int i = 0; i < 16; i++)
			(void)site_fill(1 << 20);
		memfence_scope_begin("req-over", "3", 1 << 20);
		while (site_over(64 << 10) != NULL)
			;
		memfence_scope_end(NULL);
	} else if (strcmp(mode, "hold") == 0) {
		for (int i = 0; i < 64; i++)
			(void)site_hold(1 << 20);
		printf("ready\n");
		fflush(stdout);
		for (;;) {
			free(malloc(32 << 10));
			usleep(1000);
		}
	} else if (strcmp(mode, "many") == 0) {
		long n = argc > 2 ? atol(argv[2]) : 100000;
		for (long i = 0; i < n; i++)
			rec_0((unsigned)(i * 2654435761u), 14);
	} else {
		fprintf(stderr, "usage: prof_scopes scopes|fail|hold|many [N]\n");
		return 2;
	}
	return 0;
}
