/*
 * prof.h - the sampling heap profiler inside the shim (docs/profiler.md).
 *
 * Byte-interval sampling: each thread counts down the bytes it allocates
 * from an exponentially distributed interval of mean R (the rate); the
 * allocation that takes the countdown below zero is sampled, and a fresh
 * interval drawn. The hooks only subtract (one TLS word); everything else
 * runs for sampled allocations, about one per R bytes.
 *
 * The free path must not pay a lookup per free: a table of 2^15 one-byte
 * counters indexed by address bits (a counting filter) says whether a block
 * may be a sampled one; only then is the live-sample table searched. A
 * counter that reaches 255 stays there (a few extra lookups, never a miss).
 */
#ifndef MF_PROF_H
#define MF_PROF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shim/util.h"

/* Control bits in the segment header the supervisor may set (next to
 * MF_CTL_PROFILE of base/segment.h, which switches sampling on and off
 * when MEMFENCE_PROFILE_CTL=1). */
#define MF_PROF_CTL_SNAPSHOT 2u

/* 2^15 one-byte counters: 32 KiB, small enough to stay in the L1/L2
 * cache of a program that frees all the time. */
#define MF_PROF_FILTER_BITS 15

/* Bytes this thread may still allocate before the next sample. Starts at
 * 0, so a thread's first allocation takes the slow path and draws. */
extern __thread int64_t mf_prof_left MF_HIDDEN;
/* The counting filter; NULL while the profiler is off. */
extern uint8_t *mf_prof_filter MF_HIDDEN;

void mf_prof_sample(void *p, size_t size) MF_HIDDEN;
void mf_prof_free_slow(void *p) MF_HIDDEN;
/* An allocation failed or was refused: the first one takes a snapshot. */
void mf_prof_on_fail(void) MF_HIDDEN;
/* Write a snapshot now (reason: "request", "signal", "exit", ...).
 * Returns 0 or -errno. Safe from any thread outside a signal handler. */
int mf_prof_snapshot(const char *reason) MF_HIDDEN;
void mf_prof_atfork_prepare(void) MF_HIDDEN;
void mf_prof_atfork_parent(void) MF_HIDDEN;
void mf_prof_atfork_child(void) MF_HIDDEN;

static inline unsigned mf_prof_hash(const void *p)
{
	uintptr_t a = (uintptr_t)p >> 4;

	return (unsigned)((a ^ (a >> MF_PROF_FILTER_BITS)) & ((1u << MF_PROF_FILTER_BITS) - 1));
}

/* Count size bytes down; true when they complete an interval, and the
 * allocation they belong to is to be sampled. One TLS subtraction and a
 * branch: all that an allocation that is not sampled pays. */
static inline bool mf_prof_due(size_t size)
{
	mf_prof_left -= (int64_t)size;
	return MF_UNLIKELY(mf_prof_left < 0);
}

/* Called with each new block and its usable size. */
static inline void mf_prof_alloc(void *p, size_t size)
{
	if (mf_prof_due(size))
		mf_prof_sample(p, size);
}

/* May p be a sampled block still live? false for every block that never
 * was one, but a few that share its filter counter. */
static inline bool mf_prof_maybe_live(const void *p)
{
	const uint8_t *f = mf_prof_filter;

	return MF_UNLIKELY(f != NULL) && MF_UNLIKELY(f[mf_prof_hash(p)] != 0);
}

/* Called with each block about to be freed (or moved by realloc). */
static inline void mf_prof_free(void *p)
{
	if (mf_prof_maybe_live(p))
		mf_prof_free_slow(p);
}

#endif
