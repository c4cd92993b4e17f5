/*
 * admit.c - the admission glue of the hooks: whether an allocation may be
 * had, asked of the policy (policy.c: faults, budgets, heap limit,
 * pressure, container headroom) and of the gate (gate.c), and a refusal
 * or a failure counted with its cause, rule and size (account.c) and
 * reported to the profiler. The hooks call it only under checks or for
 * a large request (hooks_int.h).
 */
#include <errno.h>
#include <stdint.h>

#include "shim/gate.h"
#include "shim/hooks_int.h"

/* An allocation the real allocator failed (MF_FAIL_ALLOC): counted, and
 * the profiler takes its snapshot at the first. The policy's refusals go
 * through refused(), which also records why. */
void mf_hook_failed(struct mf_thread *t, int cause)
{
	mf_count_fail(t, cause);
	mf_prof_on_fail();
}

/* A refusal by the policy, with its rule and the bytes asked for. */
static void refused(struct mf_thread *t, int cause, uint32_t rule, uint64_t size)
{
	mf_count_refusal(t, cause, rule ? rule : mf_admit_rule(t, cause, size), size);
	mf_prof_on_fail();
}

/* mf_admit_pre, and a large allocation of a scope far past the need the
 * gate admitted it with is refused like the pressure policy's (gate.c);
 * *rule then names the gate. */
static int decide_pre(struct mf_thread *t, uint64_t req, uint32_t *rule)
{
	int cause = mf_admit_pre(t, req);

	if (cause == 0 && req >= MF_LARGE && MF_UNLIKELY(mf_gate_refuse(t, req))) {
		cause = MF_FAIL_BUDGET;
		*rule = MF_RULE_GATE;
	}
	return cause;
}

/* decide_pre, and below mf_admit_post, with a refusal counted. */
int mf_hook_admit_pre(struct mf_thread *t, uint64_t req)
{
	uint32_t rule = MF_RULE_NONE;
	int cause = decide_pre(t, req, &rule);

	if (MF_UNLIKELY(cause != 0))
		refused(t, cause, rule, req);
	return cause;
}

int mf_hook_admit_post(struct mf_thread *t, uint64_t u)
{
	int cause = mf_admit_post(t, u);

	if (MF_UNLIKELY(cause != 0))
		refused(t, cause, MF_RULE_NONE, u);
	return cause;
}

int mf_hook_refuse(struct mf_thread *t, uint64_t req)
{
	if (mf_hook_admit_pre(t, req) != 0) {
		errno = ENOMEM;
		return 1;
	}
	return 0;
}

/*
 * mf_hook_refuse for a big block: a refusal (other than an injected fault,
 * which counts its calls) first gives the cached blocks back and is
 * decided again, since what they hold is what the lines see.
 */
int mf_hook_big_pre(struct mf_thread *t, uint64_t req)
{
	uint32_t rule = MF_RULE_NONE;
	int cause = decide_pre(t, req, &rule);

	if (MF_UNLIKELY(cause != 0) && cause != MF_FAIL_FAULT && mf_big_release() != 0) {
		rule = MF_RULE_NONE;
		cause = decide_pre(t, req, &rule);
	}
	if (MF_UNLIKELY(cause != 0)) {
		refused(t, cause, rule, req);
		errno = ENOMEM;
		return 1;
	}
	return 0;
}
