/*
 * memfence.h - per-request memory accounting and budgets.
 *
 * The functions below live in libmemfence.so, the library that `memfence run`
 * and `memfence exec --account` preload into a program. Link with -lmemfence
 * (pkg-config memfence). A program that calls them runs unchanged when the
 * library is linked but accounting is not active (it was not preloaded, or
 * MEMFENCE_ACCOUNT=0): every call then returns MEMFENCE_EOFF and touches
 * nothing.
 *
 * A scope is one unit of work (a request, a task) on one thread. Figures of a
 * scope count the allocations and frees made by the thread that opened it,
 * while the scope is open. A block freed by another thread than the one that
 * allocated it is counted as freed in the freeing thread's open scopes (and
 * in the process totals), not in the allocating scope: the allocating scope
 * keeps it as retained. See docs/accounting.md.
 */
#ifndef MEMFENCE_H
#define MEMFENCE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MEMFENCE_API_VERSION 1

/* Return codes. */
enum {
	MEMFENCE_OK = 0,
	MEMFENCE_EOFF = -1,    /* accounting is not active in this process */
	MEMFENCE_EDEPTH = -2,  /* too many nested scopes on this thread */
	MEMFENCE_ENOSCOPE = -3, /* memfence_scope_end() with no scope open */
	MEMFENCE_EWAIT = -4,    /* the gate: not admitted yet, still queued */
	MEMFENCE_ETOOBIG = -5   /* the gate: the need exceeds the whole budget */
};

/* Scope outcome, as recorded in the finished-scope ring. */
enum memfence_outcome {
	MEMFENCE_OUTCOME_OK = 0,
	MEMFENCE_OUTCOME_FAILED_ALLOC = 1 /* at least one allocation was refused */
};

struct memfence_scope_stats {
	uint64_t allocated; /* A: bytes allocated in the scope */
	uint64_t freed;     /* B: bytes freed in the scope */
	int64_t net;        /* allocated - freed: retained at the end */
	uint64_t peak;      /* highest net during the scope */
	uint64_t failed;    /* allocations refused (budget, limits, allocator) */
	uint64_t calls;     /* allocation calls */
	uint64_t duration_ns;
};

struct memfence_process_stats {
	uint64_t live;            /* bytes currently allocated */
	uint64_t peak;            /* highest live */
	uint64_t allocated;       /* bytes ever allocated */
	uint64_t freed;           /* bytes ever freed */
	uint64_t alloc_calls;
	uint64_t free_calls;
	uint64_t failed_alloc;    /* NULL from the real allocator (rlimit, ENOMEM) */
	uint64_t failed_budget;   /* refused by a scope budget */
	uint64_t failed_heap;     /* refused by the process heap limit */
	uint64_t failed_container;/* refused for container-wide headroom */
	uint64_t failed_fault;    /* refused by fault injection */
	uint64_t thread_failed;   /* pthread_create failures */
	int thread_last_errno;    /* errno of the last pthread_create failure */
	int scopes_open;          /* scopes in flight in this process */
};

/* 1 when the shim is preloaded and counting, 0 otherwise. */
int memfence_active(void);

/*
 * Open a scope on the calling thread. name: endpoint or task name; id: the
 * request or task id (may be NULL). Both are copied (truncated to 63 bytes).
 * budget: bytes of net growth allowed in this scope, 0 for none; an
 * allocation that would raise the scope's net bytes above it returns NULL
 * with errno ENOMEM in this thread only. Scopes nest: an allocation counts
 * in every open scope of the thread and must fit every budget.
 */
int memfence_scope_begin(const char *name, const char *id, size_t budget);

/* Close the innermost scope of the calling thread; out may be NULL. */
int memfence_scope_end(struct memfence_scope_stats *out);

/* Figures of the innermost open scope, without closing it. */
int memfence_scope_current(struct memfence_scope_stats *out);

/*
 * Storage for a scope taken off its thread by memfence_scope_suspend(), owned
 * by the caller (e.g. next to an asyncio task). Its contents are private.
 */
struct memfence_saved_scope {
	uint64_t opaque[40];
};

/*
 * Take the innermost scope off the calling thread without closing it: while
 * suspended it counts nothing and its budget does not apply, but it stays
 * listed as in flight and its duration runs on. For a request that waits
 * (an await, a queue) and continues later, possibly on another thread, as
 * one scope. MEMFENCE_ENOSCOPE when no scope is open.
 */
int memfence_scope_suspend(struct memfence_saved_scope *saved);

/*
 * Put a suspended scope back, as the innermost scope of the calling thread
 * (any thread). MEMFENCE_ENOSCOPE when saved holds no suspended scope (it is
 * emptied by a resume), MEMFENCE_EDEPTH when the thread has no room. A
 * suspended scope must be resumed and ended: one that never is stays listed
 * as in flight.
 */
int memfence_scope_resume(struct memfence_saved_scope *saved);

/*
 * Report an allocation failure the shim could not see (an allocator of its
 * own, such as PyTorch's, that raised instead of returning NULL): counted
 * like a failed allocation in the process (failed_alloc) and in every open
 * scope of the thread, whose outcome becomes failed, as the supervisor's
 * liveness rule counts them.
 */
int memfence_scope_mark_failed(void);

/* What memfence_scope_refusal() tells of the innermost open scope. */
enum memfence_refusal {
	MEMFENCE_REFUSAL_NONE = 0,      /* nothing refused in it so far */
	MEMFENCE_REFUSAL_TRANSIENT = 1, /* refused for the memory others held:
					 * the same request may pass later */
	MEMFENCE_REFUSAL_PERMANENT = 2  /* it asked for more than it could ever
					 * get: over its own budget, or over the
					 * whole line of the process or container */
};

/*
 * Whether the innermost open scope of the calling thread was refused an
 * allocation, and whether a retry could ever succeed (the first refusal
 * decides): an enum memfence_refusal, or MEMFENCE_EOFF / MEMFENCE_ENOSCOPE.
 * For servers that tell clients whether to retry.
 */
int memfence_scope_refusal(void);

/* Process-wide figures. */
int memfence_process_stats(struct memfence_process_stats *out);

/* errno of the last pthread_create failure in this thread, 0 if none. */
int memfence_thread_errno(void);

/*
 * The admission gate (docs/gate.md). Before a request starts its work it
 * asks for the memory it is expected to need; it is admitted when the
 * usable headroom (the least of the process's and the container's, every
 * process of the container sharing one gate through the stats segment)
 * covers what the requests already admitted still need plus this one.
 * Otherwise it waits, in arrival order, until memory frees up or its
 * timeout passes. The gate never refuses an allocation: a request that
 * uses more than it asked for is governed by its budget and the pressure
 * policy as before. The gate is on under `memfence run` (--gate off turns
 * it off); elsewhere every call returns MEMFENCE_EOFF and admits nothing.
 *
 * Storage for one request's place at the gate, owned by the caller (on
 * the stack, or next to an asyncio task). Its contents are private.
 */
struct memfence_gate {
	uint64_t opaque[4];
};

/*
 * Ask for need bytes for a request of kind name (a scope name). need 0:
 * the configured or learned need of that name (a high percentile of the
 * peaks of its scopes, published by the supervisor), else the innermost
 * open scope's budget, else a bounded default. Waits at most timeout_ms
 * (0: do not wait; negative: the gate's configured maximum wait).
 * Returns MEMFENCE_OK when admitted; MEMFENCE_EWAIT when the time ran out
 * first (the place in the queue is kept: memfence_gate_wait() waits on,
 * memfence_gate_leave() gives up); MEMFENCE_ETOOBIG when need exceeds the
 * whole budget (not queued: such a request could never be admitted);
 * MEMFENCE_EOFF when the gate is off. Call memfence_gate_leave(g) after
 * every memfence_gate_enter(g, ...), whatever it returned. A handle holds
 * one admission: entered again, it leaves the first. In the child of a
 * fork, a handle the parent entered holds nothing (leaving it there
 * changes no count; the parent leaves it).
 */
int memfence_gate_enter(struct memfence_gate *g, const char *name, size_t need, int timeout_ms);

/* Wait on (timeout_ms as for memfence_gate_enter) for a request that got
 * MEMFENCE_EWAIT. MEMFENCE_OK when admitted (at once if it was already). */
int memfence_gate_wait(struct memfence_gate *g, int timeout_ms);

/* The request is done, or gives up its place in the queue (counted as
 * timed out). Safe to call on a gate that was never admitted or is off. */
int memfence_gate_leave(struct memfence_gate *g);

/* The gate's configured maximum wait in milliseconds, or MEMFENCE_EOFF
 * when the gate is off. */
int memfence_gate_max_wait(void);

#ifdef __cplusplus
}
#endif
#endif
