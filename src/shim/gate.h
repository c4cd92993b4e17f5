/*
 * gate.h - the admission gate (gate.c): requests ask for the memory their
 * kind needs before they start, and wait in arrival order while it is not
 * there. Container-wide through the stats segment (struct mf_seg_gate).
 */
#ifndef MF_SHIM_GATE_H
#define MF_SHIM_GATE_H

#include <stdbool.h>
#include <stdint.h>

#include "memfence.h"
#include "shim/thread.h"
#include "shim/util.h"

/* A request waiting ahead of the one deciding, as it sees it. */
struct mf_gate_waiter {
	uint64_t ticket;
	uint64_t need;
	bool urgent; /* has waited past starve_ms: no one may pass it */
	bool own;    /* in this process: it needs the process's room too */
};

/*
 * The policy, as a function of what one poll saw. room_c and room_p: what
 * the container and this process can still give (line minus usage minus
 * what the admitted requests still need; INT64_MAX when there is no such
 * line). ahead: the earlier waiters, in ticket order. A waiter ahead that
 * fits (after those before it), or that is urgent, keeps its need: it
 * goes first. One that does not fit and is not urgent is passed. A
 * request first in the queue while nothing at all is admitted goes in
 * whatever its need: it cannot wait for memory that nobody holds.
 */
bool mf_gate_decide(uint64_t need, int64_t room_c, int64_t room_p,
		    const struct mf_gate_waiter *ahead, uint32_t nahead, bool any_admitted) MF_HIDDEN;

int mf_gate_enter(struct mf_thread *t, struct memfence_gate *g, const char *name,
		  uint64_t need, int timeout_ms) MF_HIDDEN;
int mf_gate_wait(struct mf_thread *t, struct memfence_gate *g, int timeout_ms) MF_HIDDEN;
int mf_gate_leave(struct memfence_gate *g) MF_HIDDEN;
int mf_gate_max_wait(void) MF_HIDDEN;
/* In the child of a fork (hooks.c): no admission is inherited. */
void mf_gate_atfork_child(struct mf_thread *self) MF_HIDDEN;

/* For an allocation of req bytes by t (policy.c): 1 when its scope is far
 * past the need it was admitted with and the allocation would take memory
 * the gate promised to other requests. */
int mf_gate_refuse(struct mf_thread *t, uint64_t req) MF_HIDDEN;

/* Whether the first refusal of a scope (its figures) was transient or
 * permanent: an enum memfence_refusal. */
int mf_gate_refusal_kind(const struct mf_seg_figures *f) MF_HIDDEN;

#endif
