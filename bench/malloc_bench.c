/*
 * malloc_bench.c - a malloc/free microbenchmark with mixed sizes.
 *
 *   malloc_bench THREADS OPS_PER_THREAD
 *
 * Each thread keeps 4096 slots and, at random, frees a slot's block or
 * allocates a new one of a size drawn from a mix that looks like a server's:
 * mostly small objects, some pages, a few large buffers. Deterministic: the
 * same arguments do the same work, so runs with and without the shim compare.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 4096

struct worker {
	pthread_t thread;
	unsigned id;
	long ops;
	uint64_t checksum;
};

static uint64_t next(uint64_t *s)
{
	/* xorshift64*: cheap and good enough to pick sizes. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static size_t pick_size(uint64_t r)
{
	unsigned p = (unsigned)(r % 1000);

	if (p < 850)
		return 16 + (r >> 10) % 496;     /* small objects */
	if (p < 990)
		return 512 + (r >> 10) % 7680;   /* up to 8 KiB */
	return 65536 + (r >> 10) % 458752;   /* large buffers, up to 512 KiB */
}

static void *run(void *arg)
{
	struct worker *w = arg;
	void **slot = calloc(SLOTS, sizeof(void *));
	uint64_t s = 0x9e3779b97f4a7c15ull * (w->id + 1);

	if (slot == NULL)
		return NULL;
	for (long i = 0; i < w->ops; i++) {
		uint64_t r = next(&s);
		unsigned k = (unsigned)(r >> 40) % SLOTS;
		if (slot[k] != NULL) {
			free(slot[k]);
			slot[k] = NULL;
		} else {
			size_t n = pick_size(r);
			char *p = malloc(n);
			if (p == NULL)
				continue;
			p[0] = (char)i;        /* touch it, as a real caller would */
			w->checksum += (uint64_t)(uintptr_t)p & 0xff;
			slot[k] = p;
		}
	}
	for (unsigned k = 0; k < SLOTS; k++)
		free(slot[k]);
	free(slot);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: malloc_bench THREADS OPS_PER_THREAD\n");
		return 2;
	}
	int n = atoi(argv[1]);
	long ops = atol(argv[2]);
	if (n < 1 || n > 256 || ops < 1) {
		fprintf(stderr, "malloc_bench: THREADS must be 1..256 and OPS positive\n");
		return 2;
	}
	struct worker *w = calloc((size_t)n, sizeof(*w));
	uint64_t sum = 0;

	if (w == NULL)
		return 1;
	for (int i = 0; i < n; i++) {
		w[i].id = (unsigned)i;
		w[i].ops = ops;
		if (pthread_create(&w[i].thread, NULL, run, &w[i]) != 0) {
			fprintf(stderr, "malloc_bench: cannot start thread %d\n", i);
			return 1;
		}
	}
	for (int i = 0; i < n; i++) {
		pthread_join(w[i].thread, NULL);
		sum += w[i].checksum;
	}
	printf("%llu\n", (unsigned long long)sum);
	free(w);
	return 0;
}
