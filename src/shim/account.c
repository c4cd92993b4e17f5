/*
 * account.c - per-thread counters, scopes, and the heap-limit ledger.
 *
 * Hot path: an allocation or a free changes only its own thread's state
 * (struct mf_thread, reached through one initial-exec TLS pointer). A thread
 * hands its pending counts to the process slot every MF_FLUSH_CALLS calls or
 * MF_FLUSH_BYTES of net change, with a handful of relaxed atomic adds; the
 * slot's peak is raised at those flushes, so the process peak is exact to
 * within MF_FLUSH_BYTES per running thread. Scope figures are exact at every
 * call (they are the thread's own); the copies published in the segment for
 * readers are refreshed at flushes and at scope begin/end.
 *
 * Signals: a handler may reenter the shim (free, munmap) while its thread is
 * in the middle of changing its counters. The thread marks that section with
 * `busy`; a reentering call then adds to deferred atomics which the thread
 * drains when it leaves the section, so no count is lost or torn.
 *
 * Heap limit (MEMFENCE_HEAP_LIMIT): process live bytes may not pass it. This
 * file keeps the ledger, policy.c refuses what it cannot cover. A shared
 * pool holds the bytes not yet handed out; each thread takes credit from it
 * in chunks and allocates against its credit without touching the pool.
 * live + all credits + pool = limit at every instant, so the limit is
 * never passed; a single-threaded program fails exactly at the crossing
 * allocation. With many threads, up to 2 chunks of credit per thread can sit
 * unused in other threads when one thread is refused (documented).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim/config.h"
#include "shim/segw.h"
#include "shim/thread.h"

int mf_state;
int mf_gchecks;

__thread struct mf_thread *mf_tls_self;

static pthread_key_t exit_key;
static int exit_key_ok;
static pthread_mutex_t threads_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct mf_thread *free_threads;
static struct mf_thread *all_threads;
static struct mf_thread *carve, *carve_end; /* the batch's states never taken */

static int64_t heap_pool;          /* atomic */

static void thread_exit(void *arg);

void mf_account_init(void)
{
	exit_key_ok = pthread_key_create(&exit_key, thread_exit) == 0;
	__atomic_store_n(&heap_pool, (int64_t)mf_cfg.heap_limit, __ATOMIC_RELAXED);
	mf_gchecks = mf_cfg.heap_limit != 0 || mf_cfg.fault.alloc_on;
}

static struct mf_thread *thread_new(void)
{
	struct mf_thread *t;
	sigset_t all, saved;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &saved);
	pthread_mutex_lock(&threads_mutex);
	t = free_threads;
	if (t != NULL) {
		free_threads = t->next_free;
	} else {
		/* States come from batches of 16, never returned to the kernel,
		 * reused by later threads. A state is about a page: one is
		 * touched when a thread takes it, not the whole batch at the
		 * first allocation of every process. */
		enum { BATCH = 16 };

		if (carve == carve_end) {
			carve = mf_os_alloc(sizeof(*carve) * BATCH);
			carve_end = carve != NULL ? carve + BATCH : NULL;
		}
		if (carve != NULL) {
			t = carve++;
			t->next_all = all_threads;
			all_threads = t;
		}
	}
	pthread_mutex_unlock(&threads_mutex);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (t == NULL)
		return NULL;
	struct mf_thread *keep = t->next_all;
	memset(t, 0, sizeof(*t));
	t->next_all = keep;
	t->tid = (int)syscall(SYS_gettid);
	return t;
}

struct mf_thread *mf_thread_get(void)
{
	struct mf_thread *t = mf_tls_self;

	if (MF_LIKELY(t > MF_EXITED))
		return t;
	if (t == MF_EXITED)
		return NULL;
	t = thread_new();
	if (t == NULL)
		return NULL;
	/* Set first: pthread_setspecific may allocate (keys past the first
	 * 32), and that allocation is then counted like any other. */
	mf_tls_self = t;
	if (exit_key_ok)
		pthread_setspecific(exit_key, t);
	return t;
}

static void add_to_slot(uint64_t add, uint64_t sub, uint64_t acalls, uint64_t fcalls)
{
	struct mf_seg_slot *s = mf_slot;
	uint64_t live, peak;

	if (s == NULL)
		return;
	if (add != 0)
		__atomic_fetch_add(&s->allocated, add, __ATOMIC_RELAXED);
	if (sub != 0)
		__atomic_fetch_add(&s->freed, sub, __ATOMIC_RELAXED);
	if (acalls != 0)
		__atomic_fetch_add(&s->alloc_calls, acalls, __ATOMIC_RELAXED);
	if (fcalls != 0)
		__atomic_fetch_add(&s->free_calls, fcalls, __ATOMIC_RELAXED);
	if (add == sub)
		return;
	live = __atomic_add_fetch(&s->live, add - sub, __ATOMIC_RELAXED);
	if (add < sub)
		return;
	peak = __atomic_load_n(&s->peak, __ATOMIC_RELAXED);
	/* live is unsigned in the slot; a value past 2^63 is a small negative
	 * drift (frees of blocks allocated before counting began). */
	while ((int64_t)live > 0 && live > peak &&
	       !__atomic_compare_exchange_n(&s->peak, &peak, live, 1, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED))
		;
}

void mf_flush(struct mf_thread *t)
{
	add_to_slot(t->pend_alloc, t->pend_freed, t->pend_acalls, t->pend_fcalls);
	t->pend_alloc = t->pend_freed = t->pend_acalls = t->pend_fcalls = 0;
	for (int i = 0; i < t->depth; i++)
		mf_segw_scope_publish(t->tid, &t->scopes[i], i);
	if (mf_slot != NULL)
		__atomic_store_n(&mf_slot->updated_ns, mf_now_mono(), __ATOMIC_RELAXED);
}

static void heap_give(int64_t n)
{
	__atomic_fetch_add(&heap_pool, n, __ATOMIC_RELAXED);
}

/* Take n bytes from the pool, all or nothing. */
static int heap_take_pool(int64_t n)
{
	int64_t avail = __atomic_load_n(&heap_pool, __ATOMIC_RELAXED);

	do {
		if (avail < n)
			return -1;
	} while (!__atomic_compare_exchange_n(&heap_pool, &avail, avail - n, 1,
					      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return 0;
}

/* Every open scope of t gets add bytes allocated and sub freed. */
static void scopes_add(struct mf_thread *t, uint64_t add, uint64_t sub, uint64_t acalls)
{
	int64_t d = (int64_t)(add - sub);

	for (int i = 0; i < t->depth; i++) {
		struct mf_scope *s = &t->scopes[i];
		s->fig.allocated += add;
		s->fig.freed += sub;
		s->fig.net += d;
		s->calls += acalls;
		/* peak starts at 0 and only follows net up: never negative */
		if (s->fig.net > (int64_t)s->fig.peak)
			s->fig.peak = (uint64_t)s->fig.net;
	}
}

static void apply(struct mf_thread *t, uint64_t add, uint64_t sub, unsigned acall, unsigned fcall)
{
	scopes_add(t, add, sub, acall);
	if (mf_cfg.heap_limit != 0 && sub > add) {
		/* Allocation credit was taken by mf_heap_take; frees return
		 * credit here, and a surplus goes back to the pool. */
		t->credit += (int64_t)(sub - add);
		if (t->credit > 2 * MF_CREDIT_CHUNK) {
			heap_give(t->credit - MF_CREDIT_CHUNK);
			t->credit = MF_CREDIT_CHUNK;
		}
	}
	t->pend_alloc += add;
	t->pend_freed += sub;
	t->pend_acalls += acall;
	t->pend_fcalls += fcall;
}

/* The one place the busy marks are set by hand: mf_busy_leave() drains,
 * and a handler may defer again while this loop applies. */
void mf_drain(struct mf_thread *t)
{
	while (__atomic_exchange_n(&t->d_any, 0, __ATOMIC_ACQ_REL) != 0) {
		uint64_t add = __atomic_exchange_n(&t->d_alloc, 0, __ATOMIC_ACQ_REL);
		uint64_t sub = __atomic_exchange_n(&t->d_freed, 0, __ATOMIC_ACQ_REL);
		uint64_t ac = __atomic_exchange_n(&t->d_acalls, 0, __ATOMIC_ACQ_REL);
		uint64_t fc = __atomic_exchange_n(&t->d_fcalls, 0, __ATOMIC_ACQ_REL);

		mf_busy_enter(t);
		scopes_add(t, add, sub, ac);
		t->pend_alloc += add;
		t->pend_freed += sub;
		t->pend_acalls += ac;
		t->pend_fcalls += fc;
		mf_busy_clear(t);
	}
}

void mf_count(struct mf_thread *t, uint64_t add, uint64_t sub, unsigned acall, unsigned fcall)
{
	if (MF_UNLIKELY(t == NULL)) {
		/* After this thread's exit handler: straight to the slot. */
		add_to_slot(add, sub, acall, fcall);
		if (mf_cfg.heap_limit != 0 && sub > add)
			heap_give((int64_t)(sub - add));
		return;
	}
	if (MF_UNLIKELY(t->busy)) {
		/* A signal handler interrupted this thread's own counting. */
		__atomic_fetch_add(&t->d_alloc, add, __ATOMIC_RELAXED);
		__atomic_fetch_add(&t->d_freed, sub, __ATOMIC_RELAXED);
		__atomic_fetch_add(&t->d_acalls, acall, __ATOMIC_RELAXED);
		__atomic_fetch_add(&t->d_fcalls, fcall, __ATOMIC_RELAXED);
		__atomic_store_n(&t->d_any, 1, __ATOMIC_RELEASE);
		if (mf_cfg.heap_limit != 0 && sub > add)
			heap_give((int64_t)(sub - add));
		return;
	}
	mf_busy_enter(t);
	apply(t, add, sub, acall, fcall);
	mf_busy_clear(t);
	if (MF_UNLIKELY(mf_flush_due(t)))
		mf_count_post(t);
}

void mf_count_post(struct mf_thread *t)
{
	if (__atomic_load_n(&t->d_any, __ATOMIC_RELAXED))
		mf_drain(t);
	if (t->pend_acalls + t->pend_fcalls >= MF_FLUSH_CALLS ||
	    t->pend_alloc - t->pend_freed + MF_FLUSH_BYTES > 2u * MF_FLUSH_BYTES) {
		mf_busy_enter(t);
		mf_flush(t);
		mf_busy_leave(t);
	}
}

void mf_count_fail(struct mf_thread *t, int cause)
{
	static const uint32_t rule_of[MF_FAIL_NCAUSES] = {
		[MF_FAIL_ALLOC] = MF_RULE_ALLOC,         [MF_FAIL_BUDGET] = MF_RULE_BUDGET,
		[MF_FAIL_HEAP] = MF_RULE_HEAP,           [MF_FAIL_CONTAINER] = MF_RULE_CONTAINER,
		[MF_FAIL_FAULT] = MF_RULE_FAULT,
	};

	mf_count_refusal(t, cause, rule_of[cause], 0);
}

void mf_count_refusal(struct mf_thread *t, int cause, uint32_t rule, uint64_t size)
{
	if (mf_slot != NULL)
		__atomic_fetch_add(&mf_slot->failed[cause], 1, __ATOMIC_RELAXED);
	if (t == NULL || t->busy)
		return;
	mf_busy_enter(t);
	for (int i = 0; i < t->depth; i++) {
		struct mf_scope *s = &t->scopes[i];

		s->fig.failed++;
		s->calls++;
		/* The first refusal says why the scope stopped: the later ones
		 * follow from it (a caller that retries smaller, say). */
		if (s->fig.refused_rule == MF_RULE_NONE) {
			s->fig.refused_rule = rule;
			s->fig.refused_size = size;
			s->fig.refused_net = s->fig.net > 0 ? (uint64_t)s->fig.net : 0;
			s->fig.refused_need = s->gate_need;
		}
	}
	/* Readers should see a refusal promptly: publish now. */
	for (int i = 0; i < t->depth; i++)
		mf_segw_scope_publish(t->tid, &t->scopes[i], i);
	mf_busy_leave(t);
}

void mf_count_thread(struct mf_thread *t, int err)
{
	if (err == 0) {
		if (mf_slot != NULL)
			__atomic_fetch_add(&mf_slot->thread_started, 1, __ATOMIC_RELAXED);
		return;
	}
	if (t != NULL)
		t->last_errno = err;
	if (mf_slot != NULL) {
		__atomic_fetch_add(&mf_slot->thread_failed, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&mf_slot->thread_last_errno, err, __ATOMIC_RELAXED);
	}
}

/* ---- heap-limit ledger ---- */

int mf_heap_take(struct mf_thread *t, uint64_t u)
{
	int64_t need, extra = 0;

	if (t == NULL || t->busy)
		return heap_take_pool((int64_t)u);
	if (t->credit >= (int64_t)u) {
		mf_busy_enter(t);
		t->credit -= (int64_t)u;
		mf_busy_leave(t);
		return 0;
	}
	need = (int64_t)u - t->credit;
	/* Whole chunks while the pool is large; only what is needed near the
	 * limit, so that credit is not stranded in this thread when another
	 * needs it. */
	if (heap_take_pool(need + MF_CREDIT_CHUNK) == 0)
		extra = MF_CREDIT_CHUNK;
	else if (heap_take_pool(need) != 0)
		return -1;
	mf_busy_enter(t);
	t->credit += need + extra - (int64_t)u;
	mf_busy_leave(t);
	return 0;
}

void mf_heap_untake(struct mf_thread *t, uint64_t u)
{
	if (t == NULL || t->busy)
		heap_give((int64_t)u);
	else
		t->credit += (int64_t)u;
}

/* ---- scopes ---- */

/* Make s (filled in at t->scopes[t->depth]) the thread's innermost scope,
 * list it in the segment, and end the busy section begin or resume opened. */
static int scope_push(struct mf_thread *t, struct mf_scope *s)
{
	t->depth++;
	if (s->fig.budget != 0)
		t->nbudget++;
	mf_segw_scope_publish(t->tid, s, t->depth - 1);
	mf_busy_leave(t);
	return MEMFENCE_OK;
}

int mf_scope_begin(struct mf_thread *t, const char *name, const char *id, uint64_t budget)
{
	struct mf_scope *s;

	if (t->depth >= MF_MAX_DEPTH)
		return MEMFENCE_EDEPTH;
	mf_busy_enter(t);
	s = &t->scopes[t->depth];
	memset(s, 0, offsetof(struct mf_scope, name));
	mf_strlcpy(s->name, name != NULL ? name : "", sizeof(s->name));
	mf_strlcpy(s->id, id != NULL ? id : "", sizeof(s->id));
	s->fig.budget = budget;
	s->start_mono = mf_now_mono();
	s->start_real = mf_now_real();
	s->entry = mf_segw_scope_claim();
	if (mf_slot != NULL)
		__atomic_fetch_add(&mf_slot->scopes_open, 1, __ATOMIC_RELAXED);
	return scope_push(t, s);
}

void mf_scope_figures(struct mf_thread *t, const struct mf_scope *s,
		      struct memfence_scope_stats *out)
{
	(void)t;
	/* The public struct keeps its own layout (include/memfence.h). */
	out->allocated = s->fig.allocated;
	out->freed = s->fig.freed;
	out->net = s->fig.net;
	out->peak = s->fig.peak;
	out->failed = s->fig.failed;
	out->calls = s->calls;
	out->duration_ns = mf_now_mono() - s->start_mono;
}

static void scope_close(struct mf_thread *t, struct memfence_scope_stats *out)
{
	struct mf_scope *s = &t->scopes[t->depth - 1];
	uint64_t now = mf_now_mono();

	if (out != NULL) {
		mf_scope_figures(t, s, out);
		out->duration_ns = now - s->start_mono;
	}
	mf_segw_record(t->tid, s, now);
	mf_segw_scope_release(s->entry);
	if (s->fig.budget != 0)
		t->nbudget--;
	t->depth--;
	if (mf_slot != NULL) {
		__atomic_fetch_sub(&mf_slot->scopes_open, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&mf_slot->scopes_ended, 1, __ATOMIC_RELAXED);
	}
}

int mf_scope_end(struct mf_thread *t, struct memfence_scope_stats *out)
{
	if (t->depth == 0)
		return MEMFENCE_ENOSCOPE;
	mf_busy_enter(t);
	scope_close(t, out);
	mf_busy_leave(t);
	return MEMFENCE_OK;
}

/* What a struct memfence_saved_scope holds. */
struct saved {
	uint64_t magic; /* SAVED_MAGIC while it holds a suspended scope */
	struct mf_scope scope;
};

#define SAVED_MAGIC 0x4456534d454d454dULL

_Static_assert(sizeof(struct saved) <= sizeof(struct memfence_saved_scope),
	       "struct memfence_saved_scope is too small");

int mf_scope_suspend(struct mf_thread *t, struct memfence_saved_scope *out)
{
	struct saved *sv = (struct saved *)out;
	struct mf_scope *s;

	if (t->depth == 0)
		return MEMFENCE_ENOSCOPE;
	mf_busy_enter(t);
	s = &t->scopes[t->depth - 1];
	/* Readers keep seeing it, with its figures as they are now. */
	mf_segw_scope_publish(t->tid, s, t->depth - 1);
	memcpy(&sv->scope, s, sizeof(*s));
	sv->magic = SAVED_MAGIC;
	if (s->fig.budget != 0)
		t->nbudget--;
	t->depth--;
	mf_busy_leave(t);
	return MEMFENCE_OK;
}

int mf_scope_resume(struct mf_thread *t, struct memfence_saved_scope *in)
{
	struct saved *sv = (struct saved *)in;
	struct mf_scope *s;

	if (sv->magic != SAVED_MAGIC)
		return MEMFENCE_ENOSCOPE;
	if (t->depth >= MF_MAX_DEPTH)
		return MEMFENCE_EDEPTH;
	mf_busy_enter(t);
	s = &t->scopes[t->depth];
	memcpy(s, &sv->scope, sizeof(*s));
	sv->magic = 0;
	return scope_push(t, s);
}

/* ---- thread and process lifetime ---- */

static void thread_retire(struct mf_thread *t)
{
	while (t->depth > 0)
		scope_close(t, NULL);
	mf_flush(t);
	if (t->credit != 0) {
		heap_give(t->credit);
		t->credit = 0;
	}
}

static void thread_exit(void *arg)
{
	struct mf_thread *t = arg;
	sigset_t all, saved;

	mf_drain(t);
	mf_busy_enter(t); /* for good: the thread is leaving */
	thread_retire(t);
	mf_tls_self = MF_EXITED;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &saved);
	pthread_mutex_lock(&threads_mutex);
	t->next_free = free_threads;
	free_threads = t;
	pthread_mutex_unlock(&threads_mutex);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

void mf_flush_now(struct mf_thread *t)
{
	mf_drain(t);
	mf_busy_enter(t);
	mf_flush(t);
	mf_busy_leave(t);
}

/* At exit the main thread's counts are flushed; later calls (other
 * destructors) still count, straight away. */
void mf_account_exit(void)
{
	struct mf_thread *t = mf_tls_self;

	if (t > MF_EXITED)
		mf_flush_now(t);
}

void mf_account_atfork_prepare(void)
{
	struct mf_thread *t = mf_tls_self;

	if (t > MF_EXITED && !t->busy)
		mf_flush(t);
	pthread_mutex_lock(&threads_mutex);
}

void mf_account_atfork_parent(void)
{
	pthread_mutex_unlock(&threads_mutex);
}

/*
 * The child continues with a copy of the parent's heap: its slot starts
 * with live = the parent's live at the fork (at flush granularity), and
 * allocated/freed/calls from zero. The forking thread keeps its open scopes
 * (republished in the child's slot); the other threads do not exist in the
 * child, so their states go back to the free list and their heap credit
 * back to the pool.
 */
void mf_account_atfork_child(void)
{
	struct mf_thread *self = mf_tls_self;
	uint64_t live = mf_slot != NULL ? __atomic_load_n(&mf_slot->live, __ATOMIC_RELAXED) : 0;

	pthread_mutex_init(&threads_mutex, NULL);
	free_threads = NULL;
	for (struct mf_thread *t = all_threads; t != NULL; t = t->next_all) {
		if (t == self)
			continue;
		t->depth = 0;
		t->next_free = free_threads;
		free_threads = t;
	}
	mf_segw_child(live);
	if (self > MF_EXITED) {
		self->tid = (int)syscall(SYS_gettid);
		self->pend_alloc = self->pend_freed = self->pend_acalls = self->pend_fcalls = 0;
		for (int i = 0; i < self->depth; i++) {
			self->scopes[i].entry = mf_segw_scope_claim();
			mf_segw_scope_publish(self->tid, &self->scopes[i], i);
		}
		if (mf_slot != NULL)
			mf_slot->scopes_open = (uint32_t)self->depth;
	}
	if (mf_cfg.heap_limit != 0) {
		int64_t credit = self > MF_EXITED ? self->credit : 0;
		int64_t pool = (int64_t)mf_cfg.heap_limit - (int64_t)live - credit;
		__atomic_store_n(&heap_pool, pool > 0 ? pool : 0, __ATOMIC_RELAXED);
	}
}
