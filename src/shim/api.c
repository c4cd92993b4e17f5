/*
 * api.c - the public functions of include/memfence.h.
 *
 * When accounting is off (library linked but not preloaded, MEMFENCE_ACCOUNT=0,
 * a setuid program) every function returns MEMFENCE_EOFF and touches nothing.
 */
#include <string.h>

#include "shim/gate.h"
#include "shim/large.h"
#include "shim/policy.h"
#include "shim/prof.h"
#include "shim/segw.h"
#include "shim/thread.h"

#define EXPORT __attribute__((visibility("default")))

static struct mf_thread *api_thread(void)
{
	if (__atomic_load_n(&mf_state, __ATOMIC_ACQUIRE) != MF_STATE_ON)
		return NULL;
	return mf_self();
}

EXPORT int memfence_active(void)
{
	return __atomic_load_n(&mf_state, __ATOMIC_ACQUIRE) == MF_STATE_ON;
}

EXPORT int memfence_scope_begin(const char *name, const char *id, size_t budget)
{
	struct mf_thread *t = api_thread();

	if (t == NULL)
		return MEMFENCE_EOFF;
	mf_policy_scope_opens();
	return mf_scope_begin(t, name, id, budget);
}

EXPORT int memfence_scope_end(struct memfence_scope_stats *out)
{
	struct mf_thread *t = api_thread();

	if (t == NULL)
		return MEMFENCE_EOFF;
	mf_big_tick();
	return mf_scope_end(t, out);
}

EXPORT int memfence_scope_current(struct memfence_scope_stats *out)
{
	struct mf_thread *t = api_thread();

	if (t == NULL)
		return MEMFENCE_EOFF;
	if (t->depth == 0)
		return MEMFENCE_ENOSCOPE;
	if (out != NULL)
		mf_scope_figures(t, &t->scopes[t->depth - 1], out);
	return MEMFENCE_OK;
}

EXPORT int memfence_scope_refusal(void)
{
	struct mf_thread *t = api_thread();

	if (t == NULL)
		return MEMFENCE_EOFF;
	if (t->depth == 0)
		return MEMFENCE_ENOSCOPE;
	return mf_gate_refusal_kind(&t->scopes[t->depth - 1].fig);
}

EXPORT int memfence_scope_suspend(struct memfence_saved_scope *saved)
{
	struct mf_thread *t = api_thread();

	if (t == NULL)
		return MEMFENCE_EOFF;
	if (saved == NULL)
		return MEMFENCE_ENOSCOPE;
	return mf_scope_suspend(t, saved);
}

EXPORT int memfence_scope_resume(struct memfence_saved_scope *saved)
{
	struct mf_thread *t = api_thread();

	if (t == NULL)
		return MEMFENCE_EOFF;
	if (saved == NULL)
		return MEMFENCE_ENOSCOPE;
	return mf_scope_resume(t, saved);
}

EXPORT int memfence_scope_mark_failed(void)
{
	struct mf_thread *t = api_thread();

	if (__atomic_load_n(&mf_state, __ATOMIC_ACQUIRE) != MF_STATE_ON)
		return MEMFENCE_EOFF;
	mf_count_fail(t, MF_FAIL_ALLOC);
	mf_prof_on_fail();
	return MEMFENCE_OK;
}

/* Flushes the caller's own pending counts first (what its signal handlers
 * deferred included), so that a single-threaded program sees exact figures; other running threads' last batches (less
 * than MF_FLUSH_CALLS calls each) are not in yet. */
EXPORT int memfence_process_stats(struct memfence_process_stats *out)
{
	struct mf_thread *t = api_thread();
	struct mf_seg_slot *s = mf_slot;

	if (__atomic_load_n(&mf_state, __ATOMIC_ACQUIRE) != MF_STATE_ON)
		return MEMFENCE_EOFF;
	if (t != NULL && !t->busy)
		mf_flush_now(t);
	if (out == NULL)
		return MEMFENCE_OK;
	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return MEMFENCE_OK;
	out->live = __atomic_load_n(&s->live, __ATOMIC_RELAXED);
	out->peak = __atomic_load_n(&s->peak, __ATOMIC_RELAXED);
	out->allocated = __atomic_load_n(&s->allocated, __ATOMIC_RELAXED);
	out->freed = __atomic_load_n(&s->freed, __ATOMIC_RELAXED);
	out->alloc_calls = __atomic_load_n(&s->alloc_calls, __ATOMIC_RELAXED);
	out->free_calls = __atomic_load_n(&s->free_calls, __ATOMIC_RELAXED);
	out->failed_alloc = __atomic_load_n(&s->failed[MF_FAIL_ALLOC], __ATOMIC_RELAXED);
	out->failed_budget = __atomic_load_n(&s->failed[MF_FAIL_BUDGET], __ATOMIC_RELAXED);
	out->failed_heap = __atomic_load_n(&s->failed[MF_FAIL_HEAP], __ATOMIC_RELAXED);
	out->failed_container = __atomic_load_n(&s->failed[MF_FAIL_CONTAINER], __ATOMIC_RELAXED);
	out->failed_fault = __atomic_load_n(&s->failed[MF_FAIL_FAULT], __ATOMIC_RELAXED);
	out->thread_failed = __atomic_load_n(&s->thread_failed, __ATOMIC_RELAXED);
	out->thread_last_errno = __atomic_load_n(&s->thread_last_errno, __ATOMIC_RELAXED);
	out->scopes_open = (int)__atomic_load_n(&s->scopes_open, __ATOMIC_RELAXED);
	return MEMFENCE_OK;
}

EXPORT int memfence_thread_errno(void)
{
	struct mf_thread *t = api_thread();

	if (__atomic_load_n(&mf_state, __ATOMIC_ACQUIRE) != MF_STATE_ON)
		return MEMFENCE_EOFF;
	return t != NULL ? t->last_errno : 0;
}

EXPORT int memfence_gate_enter(struct memfence_gate *g, const char *name, size_t need,
			       int timeout_ms)
{
	struct mf_thread *t = api_thread();

	if (g == NULL)
		return MEMFENCE_EOFF;
	if (t == NULL) {
		memset(g, 0, sizeof(*g));
		return MEMFENCE_EOFF;
	}
	return mf_gate_enter(t, g, name, need, timeout_ms);
}

EXPORT int memfence_gate_wait(struct memfence_gate *g, int timeout_ms)
{
	struct mf_thread *t = api_thread();

	if (g == NULL || t == NULL)
		return MEMFENCE_EOFF;
	return mf_gate_wait(t, g, timeout_ms);
}

EXPORT int memfence_gate_leave(struct memfence_gate *g)
{
	if (g == NULL || __atomic_load_n(&mf_state, __ATOMIC_ACQUIRE) != MF_STATE_ON)
		return MEMFENCE_EOFF;
	return mf_gate_leave(g);
}

EXPORT int memfence_gate_max_wait(void)
{
	if (api_thread() == NULL)
		return MEMFENCE_EOFF;
	return mf_gate_max_wait();
}
