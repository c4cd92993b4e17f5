/*
 * shim.h - internals of libmemfence.so, the accounting shim.
 *
 * Layers (docs/accounting.md tells the whole story):
 *   hooks.c    the interposed libc functions: bootstrap, guard, real call,
 *              then report (ptr, size) to the accounting below
 *   account.c  per-thread state, counters, scopes, budgets, heap limit
 *   segw.c     the writer side of the shared stats segment
 *   mmaps.c    sizes of the program's anonymous mappings
 *   config.c   MEMFENCE_* variables and the fault-injection spec
 *   api.c      the public memfence_* functions
 *
 * Everything here runs inside arbitrary programs, possibly inside their
 * malloc: libc calls that allocate or lock (stdio, getenv before libc is up,
 * snprintf) are not used on any path a hook can reach.
 */
#ifndef MF_SHIM_H
#define MF_SHIM_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/env.h"
#include "base/segment.h"
#include "memfence.h"

#define MF_LIKELY(x) __builtin_expect(!!(x), 1)
#define MF_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MF_HIDDEN __attribute__((visibility("hidden")))

#define MF_MAX_DEPTH 16 /* nested scopes per thread */
/* A thread hands its counts to the process slot after this many calls or
 * this much net change, whichever comes first: the only shared writes. */
#define MF_FLUSH_CALLS 256
#define MF_FLUSH_BYTES (256 << 10)
/* Heap-limit credit a thread takes from the shared pool at a time. */
#define MF_CREDIT_CHUNK (64 << 10)

/* ---- real functions (hooks.c) ---- */

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
};

extern struct mf_real mf_real MF_HIDDEN;

/* ---- configuration (config.c) ---- */

struct mf_fault {
	int alloc_on;        /* some allocation fault is configured */
	uint64_t nth;        /* fail the nth matching allocation (1-based) */
	uint64_t every;      /* fail every nth matching allocation */
	uint64_t after;      /* fail once matching bytes would pass this */
	int after_set;
	uint64_t min_size;   /* only allocations of at least this */
	int thread_errno;    /* pthread_create fails with this, 0 = off */
	char scope[64];      /* glob on open scope names, "" = any */
};

struct mf_config {
	int account;         /* 1 count, 0 forward only */
	uint64_t heap_limit; /* 0 = none */
	/* Zero-collateral policy (pressure.c): 0 soft = off. */
	uint64_t press_limit; /* the limit it protects, 0 = unknown */
	uint64_t press_soft;  /* above: only the largest scope is refused */
	uint64_t press_hard;  /* above: every scope's large allocations */
	int press_measure_size; /* measure VmSize (RLIMIT_AS), not VmData */
	int press_mmap;       /* set glibc's mmap threshold (none given by the user) */
	int press_trim;       /* and its trim threshold (likewise) */
	const char *segment; /* MEMFENCE_SEGMENT, NULL = own */
	struct mf_fault fault;
};

extern struct mf_config mf_cfg MF_HIDDEN;

/* Read MEMFENCE_* from envp (not the libc environment: this may run before
 * libc has set it up). Problems are reported on stderr, one line each. */
void mf_config_read(char **envp) MF_HIDDEN;
/* Raw write of a one-line message "memfence: ...\n" to stderr. */
void mf_say(const char *a, const char *b, const char *c) MF_HIDDEN;
int mf_glob(const char *pat, const char *s) MF_HIDDEN;
/* Copy at most n-1 bytes and NUL-terminate. */
void mf_strlcpy(char *dst, const char *src, size_t n) MF_HIDDEN;

/* ---- per-thread state (account.c) ---- */

struct mf_scope {
	uint64_t allocated;
	uint64_t freed;
	int64_t net;
	int64_t peak;
	uint64_t budget;
	uint64_t failed;
	uint64_t calls;
	uint64_t start_mono;
	uint64_t start_real;
	int32_t entry;        /* in-flight entry in the slot, -1 none */
	char name[MF_SEG_NAME_LEN];
	char id[MF_SEG_NAME_LEN];
};

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

/* Admission of an allocation of req bytes before the real call: fault
 * injection, scope budgets, container headroom. Returns 0, or a
 * MF_FAIL_* cause (already counted; errno is the caller's to set). */
int mf_admit_pre(struct mf_thread *t, uint64_t req) MF_HIDDEN;
/* After the real call produced usable bytes u (delta for a realloc):
 * exact budget and heap-limit check. 0, or the cause (counted). The
 * caller undoes the allocation on refusal. */
int mf_admit_post(struct mf_thread *t, uint64_t u) MF_HIDDEN;
/* Give back heap credit taken by mf_admit_post for an allocation that
 * then failed or was undone. */
void mf_admit_undo(struct mf_thread *t, uint64_t u) MF_HIDDEN;
/* Record a failed allocation (cause MF_FAIL_ALLOC etc.). */
void mf_count_fail(struct mf_thread *t, int cause) MF_HIDDEN;
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
/* Fault injection for pthread_create: errno to fail with, or 0. */
int mf_fault_thread(struct mf_thread *t) MF_HIDDEN;
void mf_count_thread(struct mf_thread *t, int err) MF_HIDDEN;

/* Scopes (account.c), used by api.c. */
int mf_scope_begin(struct mf_thread *t, const char *name, const char *id, uint64_t budget) MF_HIDDEN;
int mf_scope_end(struct mf_thread *t, struct memfence_scope_stats *out) MF_HIDDEN;
int mf_scope_suspend(struct mf_thread *t, struct memfence_saved_scope *saved) MF_HIDDEN;
int mf_scope_resume(struct mf_thread *t, struct memfence_saved_scope *saved) MF_HIDDEN;
void mf_scope_figures(struct mf_thread *t, const struct mf_scope *s,
		      struct memfence_scope_stats *out) MF_HIDDEN;

/* ---- zero collateral (pressure.c) ---- */

/* Allocations at least this large take the checked path; the pressure
 * policy and container headroom look at these only. */
#define MF_LARGE (64u << 10)
/* A scope holding less than this is never refused for pressure. */
#define MF_PRESS_MIN_NET (1u << 20)

/* 1 if the large allocation of req bytes by t must be refused because the
 * process is near its limit (counted by the caller). */
int mf_pressure_refuse(struct mf_thread *t, uint64_t req) MF_HIDDEN;
/* The process's measured size (VmData, or VmSize) plus live growth since
 * the last measurement: rate-limited, never blocks. */
uint64_t mf_pressure_estimate(void) MF_HIDDEN;
/* 1 if in-flight entry `entry` of our slot is one of t's open scopes. */
int mf_scope_is_own(const struct mf_thread *t, uint32_t entry) MF_HIDDEN;
/* Largest net of t's open scopes (0 if none is positive). */
int64_t mf_scope_own_net(const struct mf_thread *t) MF_HIDDEN;
/* At start-up, with the real allocator known to be glibc's. */
void mf_pressure_init(int glibc) MF_HIDDEN;

/* ---- segment writer (segw.c) ---- */

extern struct mf_seg_header *mf_seg MF_HIDDEN;
extern struct mf_seg_slot *mf_slot MF_HIDDEN;

/* Map MEMFENCE_SEGMENT or create our own; claim a slot. Never fails:
 * without a usable segment the slot is private memory. */
void mf_segw_attach(void) MF_HIDDEN;
/* After fork, in the child: a slot of its own. */
void mf_segw_child(uint64_t inherited_live) MF_HIDDEN;
/* Process end: slot EXITED; our own segment file removed. */
void mf_segw_exit(void) MF_HIDDEN;
int32_t mf_segw_scope_claim(void) MF_HIDDEN;
void mf_segw_scope_publish(struct mf_thread *t, const struct mf_scope *s, int depth) MF_HIDDEN;
void mf_segw_scope_release(int32_t entry) MF_HIDDEN;
void mf_segw_record(struct mf_thread *t, const struct mf_scope *s, uint64_t end_mono) MF_HIDDEN;
/* Container headroom published by the supervisor: 1 if an allocation of
 * size bytes must be refused. */
int mf_segw_container_refuse(struct mf_thread *t, uint64_t size) MF_HIDDEN;

uint64_t mf_now_mono(void) MF_HIDDEN;
uint64_t mf_now_real(void) MF_HIDDEN;
/* Anonymous private memory for the shim itself, straight from the kernel
 * (never through the mmap hook, never counted). */
void *mf_os_alloc(size_t len) MF_HIDDEN;

/* ---- anonymous mappings (mmaps.c) ---- */

/* Track [addr, addr+len); 0, or -1 when the table is full (not counted). */
int mf_maps_add(uintptr_t addr, uint64_t len) MF_HIDDEN;
/* Forget every tracked byte in [addr, addr+len); returns how many. */
uint64_t mf_maps_remove(uintptr_t addr, uint64_t len) MF_HIDDEN;
/* Tracked bytes in [addr, addr+len). */
uint64_t mf_maps_tracked(uintptr_t addr, uint64_t len) MF_HIDDEN;
int mf_maps_any(void) MF_HIDDEN;
/* The table lock: held around the real munmap/mremap so that an address
 * is never reused between the syscall and the table update. Blocks
 * signals while held (a handler may call munmap). */
void mf_maps_lock(sigset_t *saved) MF_HIDDEN;
void mf_maps_unlock(const sigset_t *saved) MF_HIDDEN;
void mf_maps_atfork_prepare(void) MF_HIDDEN;
void mf_maps_atfork_parent(void) MF_HIDDEN;
void mf_maps_atfork_child(void) MF_HIDDEN;

#endif
