/*
 * thread.h - per-thread state: counters, scopes, the busy section, the
 * heap-limit ledger (account.c).
 *
 * Hot path: an allocation or a free changes only its own thread's state,
 * reached through one initial-exec TLS pointer; counts reach the process
 * slot in batches (mf_flush).
 */
#ifndef MF_SHIM_THREAD_H
#define MF_SHIM_THREAD_H

#include <stdint.h>

#include "memfence.h"
#include "shim/scope.h"
#include "shim/util.h"

#define MF_MAX_DEPTH 16 /* nested scopes per thread */
/* A thread hands its counts to the process slot after this many calls or
 * this much net change, whichever comes first: the only shared writes. */
#define MF_FLUSH_CALLS 256
#define MF_FLUSH_BYTES (256 << 10)
/* Heap-limit credit a thread takes from the shared pool at a time. */
#define MF_CREDIT_CHUNK (64 << 10)

struct mf_thread {
	/* 1 while this thread changes its own counters: a signal handler that
	 * reenters the shim then adds to the deferred counters instead. */
	volatile int busy;
	int depth;
	int nbudget;          /* open scopes that carry a budget */
	int tid;
	int last_errno;       /* last pthread_create failure */
	/* Pending counts, not yet in the slot; net change and call count
	 * are derived from them. */
	uint64_t pend_alloc, pend_freed, pend_acalls, pend_fcalls;
	int64_t credit;       /* heap-limit bytes reserved by this thread */
	/* Deferred counts from signal handlers: atomics, drained by the thread. */
	uint64_t d_alloc, d_freed, d_acalls, d_fcalls;
	uint32_t d_any;
	struct mf_thread *next_free;
	struct mf_thread *next_all;
	struct mf_scope scopes[MF_MAX_DEPTH];
};

/* Process-wide state. */
enum { MF_STATE_UNINIT = 0, MF_STATE_INITING, MF_STATE_OFF, MF_STATE_ON };
extern int mf_state MF_HIDDEN;
/* Nonzero when some check beyond scope budgets applies to allocations
 * (heap limit, fault injection, container headroom). */
extern int mf_gchecks MF_HIDDEN;

/* "this thread's exit handler already ran" */
#define MF_EXITED ((struct mf_thread *)1)
extern __thread struct mf_thread *mf_tls_self MF_HIDDEN;

/* Slow path of mf_self(): first call of a thread. */
struct mf_thread *mf_thread_get(void) MF_HIDDEN;

/* The calling thread's state; NULL after its exit handler ran (the rare
 * allocations after that are counted straight into the slot). */
static inline struct mf_thread *mf_self(void)
{
	struct mf_thread *t = mf_tls_self;

	if (MF_LIKELY(t > MF_EXITED))
		return t;
	return mf_thread_get();
}

void mf_account_init(void) MF_HIDDEN;
void mf_account_atfork_prepare(void) MF_HIDDEN;
void mf_account_atfork_parent(void) MF_HIDDEN;
void mf_account_atfork_child(void) MF_HIDDEN;
void mf_account_exit(void) MF_HIDDEN;

/* Record a failed allocation (cause MF_FAIL_ALLOC etc.). */
void mf_count_fail(struct mf_thread *t, int cause) MF_HIDDEN;
/* The same, with the rule that refused it (enum mf_refusal_rule) and the
 * bytes asked for, kept in each open scope of t (its first refusal). */
void mf_count_refusal(struct mf_thread *t, int cause, uint32_t rule, uint64_t size) MF_HIDDEN;
/* Count add bytes allocated and sub freed, with the call counts. */
void mf_count(struct mf_thread *t, uint64_t add, uint64_t sub, unsigned acall,
	      unsigned fcall) MF_HIDDEN;
void mf_flush(struct mf_thread *t) MF_HIDDEN;
/* Hand everything the thread counted to the slot now, what signal
 * handlers deferred included (exact figures for the caller). */
void mf_flush_now(struct mf_thread *t) MF_HIDDEN;
/* After a fast-path count: flush when due, drain signal-time counts. */
void mf_count_post(struct mf_thread *t) MF_HIDDEN;

#define mf_signal_fence() __atomic_signal_fence(__ATOMIC_SEQ_CST)

/* Move what signal handlers deferred into the thread's own counters. */
void mf_drain(struct mf_thread *t) MF_HIDDEN;

/*
 * The busy section. A thread changing its own counters marks it, so that a
 * signal handler reentering the shim meanwhile adds to the deferred
 * counters instead (account.c); leaving drains what was deferred:
 *
 *   mf_busy_enter(t);  ...change t's counters or scopes...  mf_busy_leave(t);
 *
 * The compiler fences keep the changes inside the marks (a handler runs on
 * the same thread: no CPU fence is needed).
 */
static inline void mf_busy_enter(struct mf_thread *t)
{
	t->busy = 1;
	mf_signal_fence();
}

/* Leave without draining: for the counting paths, whose flush test that
 * follows includes the drain (mf_flush_due), and for mf_drain itself. */
static inline void mf_busy_clear(struct mf_thread *t)
{
	mf_signal_fence();
	t->busy = 0;
	mf_signal_fence();
}

static inline void mf_busy_leave(struct mf_thread *t)
{
	mf_busy_clear(t);
	if (MF_UNLIKELY(__atomic_load_n(&t->d_any, __ATOMIC_RELAXED) != 0))
		mf_drain(t);
}

static inline int mf_flush_due(const struct mf_thread *t)
{
	/* net change outside [-MF_FLUSH_BYTES, MF_FLUSH_BYTES], in one test */
	uint64_t net = t->pend_alloc - t->pend_freed + MF_FLUSH_BYTES;

	return t->pend_acalls + t->pend_fcalls >= MF_FLUSH_CALLS || net > 2u * MF_FLUSH_BYTES ||
	       t->d_any != 0;
}

/* mf_flush_due() from values the caller just computed, so that nothing it
 * has just stored is loaded again (a store-to-load stall per call). */
static inline int mf_flush_due_at(const struct mf_thread *t, uint64_t net, uint64_t calls)
{
	return (calls >= MF_FLUSH_CALLS) | (net + MF_FLUSH_BYTES > 2u * MF_FLUSH_BYTES) |
	       (t->d_any != 0);
}

/*
 * The hot path: a thread with no scope open and no heap limit only adds to
 * its own two pending counters. Everything else goes through mf_count().
 * The counters are read after `busy` is set (a handler that came before
 * has finished its own update by then) and written back before it is
 * cleared; the flush test works on the values in registers.
 */
static inline void mf_count_alloc(struct mf_thread *t, uint64_t u)
{
	if (MF_LIKELY(t != NULL && (t->busy | t->depth) == 0)) {
		uint64_t a, c;

		mf_busy_enter(t);
		a = t->pend_alloc + u;
		c = t->pend_acalls + 1;
		t->pend_alloc = a;
		t->pend_acalls = c;
		mf_busy_clear(t);
		if (MF_UNLIKELY(mf_flush_due_at(t, a - t->pend_freed, c + t->pend_fcalls)))
			mf_count_post(t);
		return;
	}
	mf_count(t, u, 0, 1, 0);
}

static inline void mf_count_free(struct mf_thread *t, uint64_t u)
{
	if (MF_LIKELY(t != NULL && (t->busy | t->depth | mf_gchecks) == 0)) {
		uint64_t f, c;

		mf_busy_enter(t);
		f = t->pend_freed + u;
		c = t->pend_fcalls + 1;
		t->pend_freed = f;
		t->pend_fcalls = c;
		mf_busy_clear(t);
		if (MF_UNLIKELY(mf_flush_due_at(t, t->pend_alloc - f, c + t->pend_acalls)))
			mf_count_post(t);
		return;
	}
	mf_count(t, 0, u, 0, 1);
}
/* Count a thread start (err 0) or its failure with err. */
void mf_count_thread(struct mf_thread *t, int err) MF_HIDDEN;

/* Scopes (account.c), used by api.c. */
int mf_scope_begin(struct mf_thread *t, const char *name, const char *id, uint64_t budget) MF_HIDDEN;
int mf_scope_end(struct mf_thread *t, struct memfence_scope_stats *out) MF_HIDDEN;
int mf_scope_suspend(struct mf_thread *t, struct memfence_saved_scope *saved) MF_HIDDEN;
int mf_scope_resume(struct mf_thread *t, struct memfence_saved_scope *saved) MF_HIDDEN;
void mf_scope_figures(struct mf_thread *t, const struct mf_scope *s,
		      struct memfence_scope_stats *out) MF_HIDDEN;


/* ---- heap-limit ledger (MEMFENCE_HEAP_LIMIT) ----
 * live + every thread's credit + the shared pool = the limit, at every
 * instant (account.c). Whether an allocation may pass is policy.c's. */

/* Take u bytes of credit for t: from its own credit, else from the pool
 * (whole chunks while it is large). 0, or -1 when the pool cannot cover
 * them (nothing taken). */
int mf_heap_take(struct mf_thread *t, uint64_t u) MF_HIDDEN;
/* Give back u bytes taken for an allocation that then failed or was
 * undone. */
void mf_heap_untake(struct mf_thread *t, uint64_t u) MF_HIDDEN;

#endif
