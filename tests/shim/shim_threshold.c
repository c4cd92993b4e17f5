/*
 * shim_threshold.c - glibc's mmap threshold is fixed only for a program
 * with scopes to protect, and never against the program's own choice.
 *
 *   shim_threshold dynamic   no scope opens: glibc's dynamic threshold
 *                            stays, untouched by the shim's start-up (a
 *                            256 KiB block is mapped, as glibc's default
 *                            128 KiB has it; a freed 8 MiB mapping raises
 *                            it, and the next 2 MiB block comes from the heap)
 *   shim_threshold scope     the first scope fixes it at 1 MiB: a 2 MiB
 *                            block is a mapping of its own again
 *   shim_threshold user      the program called mallopt(M_MMAP_THRESHOLD)
 *                            before its first scope: its 16 MiB stays
 *   shim_threshold env       run with MALLOC_MMAP_THRESHOLD_ set to 16 MiB:
 *                            the scope leaves it alone
 *
 * Run under an RLIMIT_DATA, so that the pressure policy is on. Whether a
 * block was mapped on its own is glibc's IS_MMAPPED bit in the chunk's
 * size field (malloc/malloc.c), the word before the block.
 */
#include <malloc.h>
#include <stdint.h>
#include <string.h>

#include "shimtest.h"

#define MIB (1ul << 20)

static int mapped_alone(size_t n)
{
	void *p = malloc(n);
	int m;

	if (p == NULL) {
		fprintf(stderr, "malloc(%zu) failed\n", n);
		exit(2);
	}
	m = (*(const size_t *)((uintptr_t)p - sizeof(size_t)) & 2) != 0;
	free(p);
	return m;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	int open_scope = strcmp(mode, "dynamic") != 0;

	need_active();
	/* The shim's start-up left glibc's default (128 KiB) as it was. */
	if (strcmp(mode, "dynamic") == 0 || strcmp(mode, "scope") == 0)
		CHECK(mapped_alone(256 << 10));
	if (strcmp(mode, "user") == 0)
		CHECK(mallopt(M_MMAP_THRESHOLD, 16 * MIB) == 1);
	/* A freed mapping of 8 MiB raises the dynamic threshold past 2 MiB.
	 * glibc maps a block on its own only when the heap's top cannot hold
	 * it, so each check asks for more than the one before. */
	free(malloc(8 * MIB));
	if (strcmp(mode, "dynamic") == 0 || strcmp(mode, "scope") == 0)
		CHECK(!mapped_alone(2 * MIB));
	if (open_scope)
		CHECK(memfence_scope_begin("request", "r-1", 0) == MEMFENCE_OK);
	if (strcmp(mode, "scope") == 0) {
		CHECK(mapped_alone(3 * MIB));
		/* Fixed: freeing a larger mapping raises it no more. */
		free(malloc(8 * MIB));
		CHECK(mapped_alone(4 * MIB));
	} else if (strcmp(mode, "dynamic") == 0 || strcmp(mode, "user") == 0 ||
		   strcmp(mode, "env") == 0) {
		CHECK(!mapped_alone(3 * MIB));
	} else {
		fprintf(stderr, "usage: shim_threshold dynamic|scope|user|env\n");
		return 2;
	}
	if (open_scope)
		CHECK(memfence_scope_end(NULL) == MEMFENCE_OK);
	return unit_done("shim_threshold");
}
