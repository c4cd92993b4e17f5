/*
 * page_touch.c - what the first touch of a page costs on this machine.
 *
 *   page_touch [PAGES]     (default 400)
 *
 * Maps PAGES anonymous pages and writes one byte to each: a page fault and
 * a zeroed page apiece. Then maps as many again, populates them in one
 * call (MADV_POPULATE_WRITE, Linux 5.14) and writes to each: what a first
 * touch costs when the kernel has already made the page. Five rounds; the
 * median of each, in µs per page. docs/performance.md uses it to say why a
 * process's start costs what it does on a virtual machine, where the
 * second figure is far from zero.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define ROUNDS 5

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* µs per page to write one byte of each of n pages at p. */
static double touch(volatile char *p, long n, long page)
{
	double t0 = now_us();

	for (long i = 0; i < n; i++)
		p[i * page] = 1;
	return (now_us() - t0) / (double)n;
}

int main(int argc, char **argv)
{
	long page = sysconf(_SC_PAGESIZE), n = argc > 1 ? atol(argv[1]) : 400;
	double fault[ROUNDS], populate[ROUNDS], after[ROUNDS];
	int populated = 1;

	if (n <= 0 || n > (1L << 20)) {
		fprintf(stderr, "page_touch: PAGES must be 1 to %ld\n", 1L << 20);
		return 2;
	}
	for (int r = 0; r < ROUNDS; r++) {
		size_t len = (size_t)n * (size_t)page;
		char *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		char *b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		double t0;

		if (a == MAP_FAILED || b == MAP_FAILED) {
			perror("page_touch: mmap");
			return 1;
		}
		fault[r] = touch(a, n, page);
		t0 = now_us();
		if (madvise(b, len, MADV_POPULATE_WRITE) != 0)
			populated = 0;
		populate[r] = (now_us() - t0) / (double)n;
		after[r] = touch(b, n, page);
		munmap(a, len);
		munmap(b, len);
	}
	qsort(fault, ROUNDS, sizeof(double), cmp);
	qsort(populate, ROUNDS, sizeof(double), cmp);
	qsort(after, ROUNDS, sizeof(double), cmp);
	printf("| %ld pages, median of %d rounds | µs per page |\n|---|---|\n", n, ROUNDS);
	printf("| first write, page faulted and zeroed | %.2f |\n", fault[ROUNDS / 2]);
	if (populated) {
		printf("| MADV_POPULATE_WRITE, per page | %.2f |\n", populate[ROUNDS / 2]);
		printf("| first write after it | %.2f |\n", after[ROUNDS / 2]);
	} else {
		printf("| MADV_POPULATE_WRITE | not supported here |\n");
	}
	return 0;
}
