/*
 * large.h - big blocks the shim maps itself, and its bounded cache of
 * freed ones (large.c; docs/accounting.md, "Big blocks").
 *
 * Once the pressure policy protects scopes (policy.c,
 * mf_policy_big_blocks), every block of at least MF_BIG bytes is served
 * here instead of by glibc: freed, it goes to a small cache (bounded in
 * bytes and count, emptied near the process's or the container's line)
 * and the next big allocation reuses its pages without faulting them in
 * again. Blocks are laid out as glibc's mmapped chunks, so glibc's
 * malloc_usable_size and free work on them too.
 *
 * Nothing here counts: the hooks count what these functions return.
 */
#ifndef MF_SHIM_LARGE_H
#define MF_SHIM_LARGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shim/policy.h"
#include "shim/util.h"

/* Requests of at least this many bytes are the shim's while it serves
 * big blocks: glibc's mmap threshold is fixed at the same size, so glibc
 * never maps (nor, in a heap, keeps) a block this large. */
#define MF_BIG (1u << 20)

/* At start-up: the key that marks the shim's mappings. */
void mf_big_init(void) MF_HIDDEN;
/* Whether new big blocks are the shim's now (policy.c decides). */
static inline bool mf_big_serving(void)
{
	return mf_policy_big_blocks();
}
/* Whether p, a block with glibc's mmapped bit set in its header, is one
 * of the shim's (a keyed mark at the start of its mapping). */
bool mf_big_own(const void *p) MF_HIDDEN;
/* A block of at least n bytes aligned to align (a power of two, at most a
 * page), zeroed when zero is set, from the cache or a new mapping. NULL
 * when the kernel refuses the memory even with the cache released. */
void *mf_big_alloc(size_t n, size_t align, bool zero) MF_HIDDEN;
/* Give a block back: to the cache when there is room, else to the kernel. */
void mf_big_free(void *p) MF_HIDDEN;
/* Resize block p to n >= MF_BIG bytes, in place or by moving its mapping
 * (mremap: no copy). NULL when that fails; p is then unchanged. */
void *mf_big_resize(void *p, size_t n) MF_HIDDEN;
/* Unmap every cached block; the bytes released. */
uint64_t mf_big_release(void) MF_HIDDEN;
/* Unmap the cached blocks that waited longer than MF_BIG_AGE_NS, so that a
 * quiet process returns them. One relaxed load when the cache is empty. */
void mf_big_tick(void) MF_HIDDEN;

void mf_big_atfork_prepare(void) MF_HIDDEN;
void mf_big_atfork_parent(void) MF_HIDDEN;
void mf_big_atfork_child(void) MF_HIDDEN;

#endif
