/*
 * hooks_int.h - what the hooks (hooks.c), the admission glue (admit.c)
 * and the big-block entry points (large_entry.c) share. Inline here:
 * what the hooks' common path runs, so that it stays one function.
 */
#ifndef MF_SHIM_HOOKS_INT_H
#define MF_SHIM_HOOKS_INT_H

#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shim/large.h"
#include "shim/policy.h"
#include "shim/prof.h"
#include "shim/thread.h"
#include "shim/util.h"

/* The functions hooks.c interposes, as found next in the link order
 * (hooks.c resolves them). */
struct mf_real {
	void *(*malloc)(size_t);
	void (*free)(void *);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	int (*posix_memalign)(void **, size_t, size_t);
	void *(*aligned_alloc)(size_t, size_t);
	void *(*memalign)(size_t, size_t);
	void *(*valloc)(size_t);
	void *(*pvalloc)(size_t);
	size_t (*usable)(void *);
	void *(*mmap)(void *, size_t, int, int, int, off_t);
	int (*munmap)(void *, size_t);
	void *(*mremap)(void *, size_t, size_t, int, ...);
	int (*pthread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
	int (*mallopt)(int, int);
};
extern struct mf_real mf_real MF_HIDDEN;

/*
 * malloc_usable_size() through a pointer costs a call and, in glibc, a look
 * at the next chunk's header (another cache line) to check that the block
 * is in use, which a block just allocated or being freed always is. When
 * the real allocator is glibc's, the size is read from the block's own
 * header instead, as glibc's musable() computes it (malloc/malloc.c:
 * chunksize minus the header, 2 words for mmapped chunks, 1 otherwise).
 * A self-test at start-up compares both ways on blocks of every kind and
 * keeps the library call if they ever differ (another allocator, a debug
 * malloc, a future layout).
 */
extern int mf_glibc_sizes MF_HIDDEN;

static inline size_t mf_header_usable(const void *p)
{
	size_t h = ((const size_t *)p)[-1];

	return (h & ~(size_t)7) - ((h & 2) ? 2 * sizeof(size_t) : sizeof(size_t));
}

static inline size_t mf_usable_of(void *p)
{
	if (MF_LIKELY(mf_glibc_sizes))
		return mf_header_usable(p);
	return mf_real.usable(p);
}

/* The page size (hooks.c): no system call, no allocation. */
size_t mf_page_size(void) MF_HIDDEN;

/* Whether an allocation of this thread needs the admission checks: a
 * process-wide check is on (heap limit, fault injection) or a budget is
 * open. */
static inline int mf_need_checks(struct mf_thread *t)
{
	return mf_gchecks | (t != NULL ? t->nbudget : 0);
}

/* ---- admission (admit.c) ---- */

/* An allocation the real allocator failed (MF_FAIL_ALLOC): counted, and
 * the profiler takes its snapshot at the first. */
void mf_hook_failed(struct mf_thread *t, int cause) MF_HIDDEN;
/* Before the real call: the policy's and the gate's decision on req
 * bytes; a refusal is counted with its cause and rule. 0 or the cause. */
int mf_hook_admit_pre(struct mf_thread *t, uint64_t req) MF_HIDDEN;
/* After it: the decision on the block's usable size u. 0 or the cause. */
int mf_hook_admit_post(struct mf_thread *t, uint64_t u) MF_HIDDEN;
/* mf_hook_admit_pre with errno set on a refusal: 1 refused, 0 admitted. */
int mf_hook_refuse(struct mf_thread *t, uint64_t req) MF_HIDDEN;
/* mf_hook_refuse for a big block (see admit.c). */
int mf_hook_big_pre(struct mf_thread *t, uint64_t req) MF_HIDDEN;

/* 1 when a request of req bytes is refused (errno set): checked only
 * under checks or for a large request. */
static inline int mf_hook_refuse_pre(struct mf_thread *t, uint64_t req)
{
	if (MF_LIKELY(!mf_need_checks(t)) && req < MF_LARGE)
		return 0;
	return mf_hook_refuse(t, req);
}

/* ---- big blocks (large_entry.c, over large.c) ---- */

/* Whether p (not a bootstrap block) is one of the shim's big blocks. Only
 * with glibc's layout, whose header the test reads. */
static inline int mf_own_big(const void *p)
{
	return MF_UNLIKELY(mf_glibc_sizes && (((const size_t *)p)[-1] & 2)) && mf_big_own(p);
}

/* Whether a request of n bytes aligned to align is a big block the shim
 * serves now. */
static inline int mf_serve_big(size_t n, size_t align)
{
	return n >= MF_BIG && align <= mf_page_size() && (align & (align - 1)) == 0 &&
	       mf_big_serving();
}

/* realloc's net effect: growth as bytes allocated, shrinking as freed. */
static inline void mf_count_resize(struct mf_thread *t, size_t old, size_t u)
{
	if (u >= old)
		mf_count(t, u - old, 0, 1, 0);
	else
		mf_count(t, 0, old - u, 1, 0);
}

/* A big block for the hooks: admitted, served by large.c, counted and
 * offered to the profiler. NULL (errno ENOMEM) when refused or failed. */
void *mf_big_hook_alloc(struct mf_thread *t, size_t n, size_t align, bool zero) MF_HIDDEN;
/* Free one of the shim's big blocks, counted. */
void mf_big_hook_free(struct mf_thread *t, void *p) MF_HIDDEN;
/* realloc of a big block, or to a big size (old: p's usable size). */
void *mf_big_hook_realloc(struct mf_thread *t, void *p, size_t n, size_t old) MF_HIDDEN;

#endif
