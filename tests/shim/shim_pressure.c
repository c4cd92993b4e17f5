/*
 * shim_pressure.c - zero collateral: near the limit the largest scope is
 * refused first, the others go on.
 *
 *   shim_pressure policy SOFT_MIB  run with MEMFENCE_PRESSURE=SOFT_MIB M and
 *                                  no limit (hard line: SOFT + SOFT/16)
 *   shim_pressure default SOFT_MIB run under an RLIMIT_DATA whose default
 *                                  soft line is SOFT_MIB
 *   shim_pressure below CAP_MIB    the line is far away: nothing refused
 *   shim_pressure off              MEMFENCE_PRESSURE=off under an rlimit:
 *                                  the rlimit refuses, the policy does not
 *   shim_pressure container        MEMFENCE_PRESSURE=off, MEMFENCE_SEGMENT
 *                                  set: the program publishes container
 *                                  figures itself, as the supervisor would
 *
 * Two threads, each in a scope, in fixed phases: "small" takes 4 MiB; then
 * "big" takes 1 MiB at a time until refused; then, while big still holds
 * its memory, small takes 16 MiB more (must all succeed: it is not the
 * largest); then small goes on past the hard line (big, refused, holds more
 * than the excess over soft) until the last line refuses it too. Blocks of
 * 1 MiB are mapped by glibc and left untouched: address space, not memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/segment.h"
#include "shimtest.h"

#define MIB (1ul << 20)
#define CAP 4096

static sem_t go_big, big_done, go_small, small_done, go_end;
static void *big_blocks[CAP], *small_blocks[CAP];
static size_t big_n, small_extra_ok, small_extra_failed, small_n;
static int big_errno;
static struct memfence_scope_stats big_st, small_st;
static size_t extra_mib = 16, cap_mib = CAP;
static int small_hard = 1; /* small goes on to the last line */
static uint64_t small_refused_data; /* VmData when small was refused */

/* The process's VmData (data + stack, what RLIMIT_DATA counts), bytes. */
static uint64_t statm_data(void)
{
	unsigned long f[6] = {0};
	FILE *fp = fopen("/proc/self/statm", "r");

	if (fp == NULL)
		return 0;
	if (fscanf(fp, "%lu %lu %lu %lu %lu %lu", &f[0], &f[1], &f[2], &f[3], &f[4], &f[5]) != 6)
		f[5] = 0;
	fclose(fp);
	return (uint64_t)f[5] * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void *small_main(void *arg)
{
	(void)arg;
	CHECK(memfence_scope_begin("small", "s-1", 0) == MEMFENCE_OK);
	for (int i = 0; i < 4; i++) {
		small_blocks[small_n] = malloc(MIB);
		CHECK(small_blocks[small_n] != NULL);
		small_n++;
	}
	sem_post(&go_big);
	sem_wait(&big_done);
	for (size_t i = 0; i < extra_mib; i++) {
		void *p = malloc(MIB);
		if (p == NULL) {
			small_extra_failed++;
			continue;
		}
		small_blocks[small_n++] = p;
		small_extra_ok++;
	}
	sem_post(&small_done);
	sem_wait(&go_small);
	/* On to the last line. */
	while (small_hard && small_n < CAP && (small_blocks[small_n] = malloc(MIB)) != NULL)
		small_n++;
	small_refused_data = statm_data();
	CHECK(memfence_scope_current(&small_st) == MEMFENCE_OK);
	sem_post(&small_done);
	sem_wait(&go_end);
	for (size_t i = 0; i < small_n; i++)
		free(small_blocks[i]);
	memfence_scope_end(NULL);
	return NULL;
}

static void *big_main(void *arg)
{
	(void)arg;
	sem_wait(&go_big);
	CHECK(memfence_scope_begin("big", "b-1", 0) == MEMFENCE_OK);
	errno = 0;
	while (big_n < cap_mib && (big_blocks[big_n] = malloc(MIB)) != NULL)
		big_n++;
	big_errno = errno;
	CHECK(memfence_scope_current(&big_st) == MEMFENCE_OK);
	sem_post(&big_done);
	sem_wait(&go_end);
	for (size_t i = 0; i < big_n; i++)
		free(big_blocks[i]);
	memfence_scope_end(NULL);
	return NULL;
}

/* Publish container figures in our own segment, as the supervisor does. */
static void publish_container(uint64_t limit, uint64_t ws, uint64_t reserve, uint64_t min_size)
{
	const char *path = getenv("MEMFENCE_SEGMENT");
	struct mf_seg_header *h;
	struct stat st;
	int fd;

	if (path == NULL || (fd = open(path, O_RDWR)) < 0 || fstat(fd, &st) != 0) {
		fprintf(stderr, "container mode needs MEMFENCE_SEGMENT\n");
		exit(2);
	}
	h = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (h == MAP_FAILED) {
		fprintf(stderr, "cannot map %s\n", path);
		exit(2);
	}
	struct mf_seg_container *c = &h->container;
	__atomic_store_n(&c->seq, c->seq + 1, __ATOMIC_RELEASE);
	c->limit = limit;
	c->working_set = ws;
	c->reserve = reserve;
	c->min_size = min_size;
	c->updated_ns = c->updated_ns + 1;
	__atomic_store_n(&c->seq, c->seq + 1, __ATOMIC_RELEASE);
}

static void run_phases(pthread_t *a, pthread_t *b)
{
	sem_init(&go_big, 0, 0);
	sem_init(&big_done, 0, 0);
	sem_init(&go_small, 0, 0);
	sem_init(&small_done, 0, 0);
	sem_init(&go_end, 0, 0);
	pthread_create(a, NULL, small_main, NULL);
	pthread_create(b, NULL, big_main, NULL);
	sem_wait(&small_done); /* big refused, small's extra done */
}

static void finish(pthread_t a, pthread_t b)
{
	sem_post(&go_end);
	sem_post(&go_end);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	uint64_t soft = argc > 2 ? strtoull(argv[2], NULL, 10) * MIB : 0;
	struct memfence_process_stats p;
	pthread_t a, b;

	need_active();
	if (strcmp(mode, "policy") == 0 || strcmp(mode, "default") == 0) {
		run_phases(&a, &b);
		/* big was refused by the policy, not by the allocator... */
		CHECK(big_n < CAP);
		CHECK(big_errno == ENOMEM);
		CHECK_EQ_U64(big_st.failed, 1);
		/* ...just below the soft line (the rest of the process, stacks
		 * and libraries, is what is left between the two) */
		CHECK(big_st.net <= (int64_t)soft);
		CHECK(big_st.net + (int64_t)(64 * MIB) >= (int64_t)soft);
		/* and small, above the soft line but not the largest, went on */
		CHECK_EQ_U64(small_extra_failed, 0);
		CHECK_EQ_U64(small_extra_ok, extra_mib);
		sem_post(&go_small);
		sem_wait(&small_done);
		/* past the hard line small went on, big being larger than the
		 * excess over soft; past the last line every scope is refused,
		 * small too (the lines: policy 256, 272, 280 MiB; default under
		 * 512 MiB: 384, 448, 480) */
		CHECK(small_n < CAP);
		CHECK_EQ_U64(small_st.failed, 1);
		uint64_t hard = strcmp(mode, "default") == 0 ? soft + soft / 6 : soft + soft / 16;
		uint64_t last = hard + (hard - soft) / 2;
		CHECK(small_refused_data > hard + (last - hard) / 2);
		CHECK((uint64_t)(big_st.net + small_st.net) < last);
		p = ps();
		CHECK_EQ_U64(p.failed_budget, 2);
		CHECK_EQ_U64(p.failed_alloc, 0);
		finish(a, b);
	} else if (strcmp(mode, "below") == 0) {
		cap_mib = soft / MIB;
		run_phases(&a, &b);
		CHECK_EQ_U64(big_n, cap_mib);
		CHECK_EQ_U64(big_st.failed, 0);
		CHECK_EQ_U64(small_extra_failed, 0);
		p = ps();
		CHECK_EQ_U64(p.failed_budget, 0);
		CHECK_EQ_U64(p.failed_alloc, 0);
		small_hard = 0;
		sem_post(&go_small);
		sem_wait(&small_done);
		finish(a, b);
	} else if (strcmp(mode, "off") == 0) {
		run_phases(&a, &b);
		/* refused by the real allocator at the rlimit, not the policy */
		CHECK(big_n < CAP);
		p = ps();
		CHECK_EQ_U64(p.failed_budget, 0);
		CHECK(p.failed_alloc >= 1);
		sem_post(&go_small);
		sem_wait(&small_done);
		finish(a, b);
	} else if (strcmp(mode, "container") == 0) {
		/* limit 1 GiB, reserve 64 MiB: soft line at 960 MiB, hard at
		 * 992, last at 1008; the working set, 896 MiB, leaves 64 MiB to
		 * the soft line. */
		publish_container(1024 * MIB, 896 * MIB, 64 * MIB, MIB);
		run_phases(&a, &b);
		CHECK(big_n < CAP);
		CHECK(big_errno == ENOMEM);
		CHECK_EQ_U64(big_st.failed, 1);
		/* this process's growth since the sample is what counts: 4 MiB
		 * of small's, then big's up to the soft line */
		CHECK(big_st.net / MIB >= 58 && big_st.net / MIB <= 60);
		CHECK_EQ_U64(small_extra_failed, 0);
		/* unscoped, while a larger scope is in flight: passes */
		void *u = malloc(MIB);
		CHECK(u != NULL);
		free(u);
		/* below min_size: never checked */
		u = malloc(512 << 10);
		CHECK(u != NULL);
		free(u);
		sem_post(&go_small);
		sem_wait(&small_done);
		CHECK_EQ_U64(small_st.failed, 1);
		/* past the hard line small went on, big being larger than the
		 * excess over soft; refused past the last line (limit -
		 * reserve / 4, 1008 MiB): 1008 - 896 = 112 MiB of growth */
		CHECK((big_st.net + small_st.net) / MIB <= 112);
		CHECK((big_st.net + small_st.net) / MIB >= 110);
		p = ps();
		CHECK_EQ_U64(p.failed_container, 2);
		CHECK_EQ_U64(p.failed_budget, 0);
		finish(a, b);
	} else {
		fprintf(stderr, "usage: shim_pressure policy|default|below|off|container [MIB]\n");
		return 2;
	}
	return unit_done("shim_pressure");
}
