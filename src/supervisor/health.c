/*
 * health.c - readiness and liveness from memory (the seed's two leak
 * detectors).
 *
 * Readiness: the usable headroom (limit - reserve - working set) stays below
 * what a typical request needs for longer than a grace period. The need is
 * configured, or learned from the one model of the program's memory
 * (model.c, host/model.h) as the p95 of the peaks of every scope name, once
 * LEARN_MIN scopes ended without a refusal: the same peaks the admission
 * gate takes its needs from, and kept across runs with --state-dir. Ready
 * again only above need * (1 + hysteresis), so a service hovering at the
 * threshold does not flap.
 *
 * Readiness also fails (cgroup v2) while memory.pressure's full avg10 -- the
 * share of the last 10 s in which every task of the container was stalled
 * on memory -- stays at or above pressure_pct for the same grace period.
 * That is a program thrashing on reclaim while headroom looks fine, as when
 * shared memory or page cache that cannot be dropped fills the cgroup: the
 * working set leaves out inactive file pages, but the program is stalled.
 * Ready again once full avg10 falls below the threshold (the average itself
 * decays over about 10 s, which is the hysteresis). Liveness does not use
 * it: a stalled program still progresses, and restarting it would not free
 * what fills the cgroup.
 *
 * Readiness, at once: a process has less than a request's need left under
 * its rlimit (what the kernel counts against RLIMIT_DATA: VmData), or
 * allocations are being refused and it has less than twice that left. No
 * grace: the next request would fail, and the rlimit is the process's own
 * figure, not a cgroup's that page cache makes noisy. Ready again above the
 * need plus the hysteresis.
 *
 * Stuck: not ready for memory (at the budget, or headroom) for stuck_after
 * with no scope in flight, or for live_after whatever is in flight. Once
 * readiness has cut its traffic, a leaking process stops growing, so no
 * forecast comes and nothing else would replace it: it stays out of
 * rotation for good while liveness calls it healthy, and with every
 * replica leaking the whole service is down. Memory it could give back
 * (a burst that ends, a collection) comes back within seconds, not tens of
 * seconds. A stuck process is recycled (recycle.c) when the supervisor
 * recycles, else liveness fails so that the orchestrator replaces it.
 *
 * Liveness: not ready (for headroom) for longer than live_after; or, for any
 * program, with or without scopes, allocations refused again and again while
 * a process stays at its budget for live_refused (the first refusal that
 * long ago, another within that time, the budget never left); or, within
 * the last fail_window seconds, at least fail_min scopes ended and at least
 * fail_pct percent of them had an allocation refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/health.h"
#include "supervisor/model.h"
#include "supervisor/seg.h"
#include "supervisor/state.h"
#include "base/size.h"

#define LEARN_MIN 20 /* scopes ended without a refusal before the learned need is used */

void sup_health_init(struct sup_health *h, const struct sup_health_cfg *cfg)
{
	memset(h, 0, sizeof(*h));
	h->cfg = *cfg;
	if (h->cfg.fail_window_s == 0)
		h->cfg.fail_window_s = 1;
	if (h->cfg.fail_window_s > SUP_WINDOW_MAX)
		h->cfg.fail_window_s = SUP_WINDOW_MAX;
	h->ready = 1;
}

void sup_health_record(struct sup_health *h, const struct sup_record *r)
{
	uint64_t sec = r->end_ns / 1000000000u;
	unsigned i = (unsigned)(sec % SUP_WINDOW_MAX);

	if (h->win_sec[i] != sec) {
		h->win_sec[i] = sec;
		h->win_ended[i] = 0;
		h->win_failed[i] = 0;
	}
	h->win_ended[i]++;
	if (r->failed)
		h->win_failed[i]++;
}

uint64_t sup_health_need(const struct sup_health *h, int *learned)
{
	uint64_t need;

	*learned = 0;
	if (h->cfg.need)
		return h->cfg.need;
	need = sup_model_need(NULL, 0.95, LEARN_MIN);
	if (!need)
		return h->cfg.need_default;
	*learned = 1;
	return need;
}

static uint64_t refusals_total(const struct sup_state *st)
{
	uint64_t n = st->threads_failed;

	for (int c = 0; c < MF_FAIL_NCAUSES; c++)
		n += st->failed[c];
	return n;
}

/* The at-budget state and the refusals seen while it lasts. */
static void budget_eval(struct sup_health *h, struct sup_state *st, uint64_t need,
			uint64_t upper, uint64_t now_ms)
{
	uint64_t total = refusals_total(st), left;

	st->health.refusals_new =
		h->refused_primed && total > h->refused_prev ? total - h->refused_prev : 0;
	h->refused_prev = total;
	h->refused_primed = 1;
	if (st->rlimit_used == 0 || st->budget == 0 || !st->child_up) {
		h->at_budget = 0;
		h->refused_since_ms = 0;
		return;
	}
	left = st->budget > st->rlimit_used ? st->budget - st->rlimit_used : 0;
	if (left < need || (st->health.refusals_new && left < 2 * need))
		h->at_budget = 1;
	else if (left >= upper)
		h->at_budget = 0;
	if (!h->at_budget) {
		h->refused_since_ms = 0;
		return;
	}
	if (st->health.refusals_new) {
		if (!h->refused_since_ms)
			h->refused_since_ms = now_ms;
		h->last_refused_ms = now_ms;
	}
}

/* Written after readiness: the stuck rule and the process it names. */
static void stuck_eval(struct sup_health *h, struct sup_state *st, uint64_t need,
		       uint64_t now_ms)
{
	uint64_t since, idle;
	char a[32], b[32];

	st->health.stuck = 0;
	st->health.stuck_pid = 0;
	if (!st->child_up || st->child_stopped || (h->ready && !h->at_budget) ||
	    !h->cfg.stuck_after_ms) {
		h->mem_unready_since_ms = h->idle_since_ms = 0;
		return;
	}
	/* Another process at its budget (the last one was replaced): its own
	 * time starts now. */
	if (h->at_budget && st->rlimit_pid != h->unready_pid) {
		h->unready_pid = st->rlimit_pid;
		h->mem_unready_since_ms = h->idle_since_ms = 0;
	}
	if (!h->mem_unready_since_ms)
		h->mem_unready_since_ms = now_ms;
	if (st->scopes_in_flight)
		h->idle_since_ms = 0;
	else if (!h->idle_since_ms)
		h->idle_since_ms = now_ms;
	since = now_ms - h->mem_unready_since_ms;
	idle = h->idle_since_ms ? now_ms - h->idle_since_ms : 0;
	if (!(since >= h->cfg.stuck_after_ms && idle >= h->cfg.stuck_after_ms) &&
	    since < h->cfg.live_after_ms)
		return;
	st->health.stuck = 1;
	if (h->at_budget) {
		st->health.stuck_pid = st->rlimit_pid;
		snprintf(st->health.stuck_reason, sizeof(st->health.stuck_reason),
			 "not ready for %.1fs, %u scopes in flight, process %d at its budget "
			 "(%s of %s used)",
			 (double)since / 1000.0, st->scopes_in_flight, (int)st->rlimit_pid,
			 mf_size_format(st->rlimit_used, a, sizeof(a)),
			 mf_size_format(st->budget, b, sizeof(b)));
	} else {
		snprintf(st->health.stuck_reason, sizeof(st->health.stuck_reason),
			 "not ready for %.1fs, %u scopes in flight, headroom %s below a request's "
			 "need %s",
			 (double)since / 1000.0, st->scopes_in_flight,
			 mf_size_format(st->usable, a, sizeof(a)), mf_size_format(need, b, sizeof(b)));
	}
}

/* One evaluation: what the rules below read. */
struct eval {
	const struct sup_health *h;
	const struct sup_state *st;
	uint64_t need, now_ms;
	int stalled;                 /* full pressure past the grace */
	uint32_t ended, failed;      /* scopes of the failure window */
};

/* A rule: whether it fails now, and what it says when it does. The first
 * failing rule of a table gives the reason. */
struct rule {
	int (*fails)(const struct eval *e);
	void (*say)(const struct eval *e, char *out, size_t len);
};

static int not_running(const struct eval *e)
{
	return !e->st->child_up;
}

static void say_not_running(const struct eval *e, char *out, size_t len)
{
	(void)e;
	snprintf(out, len, "not ready: the program is not running");
}

static int at_budget(const struct eval *e)
{
	return e->h->at_budget;
}

static void say_at_budget(const struct eval *e, char *out, size_t len)
{
	const struct sup_state *st = e->st;
	char a[32], b[32], c[32];

	snprintf(out, len,
		 "not ready: process %d at its budget: %s of %s used, less than a request's need %s%s left%s",
		 (int)st->rlimit_pid, mf_size_format(st->rlimit_used, a, sizeof(a)),
		 mf_size_format(st->budget, b, sizeof(b)), mf_size_format(e->need, c, sizeof(c)),
		 st->health.need_learned ? " (learned p95)" : "",
		 st->health.refusals_new ? ", allocations refused" : "");
}

static int low_headroom(const struct eval *e)
{
	return !e->h->ready;
}

static void say_low_headroom(const struct eval *e, char *out, size_t len)
{
	char a[32], b[32];

	snprintf(out, len, "not ready: headroom %s below a request's need %s%s for %.1fs",
		 mf_size_format(e->st->usable, a, sizeof(a)), mf_size_format(e->need, b, sizeof(b)),
		 e->st->health.need_learned ? " (learned p95)" : "",
		 (double)(e->now_ms - e->h->low_since_ms) / 1000.0);
}

static int stalled(const struct eval *e)
{
	return e->stalled;
}

static void say_stalled(const struct eval *e, char *out, size_t len)
{
	char a[32];

	snprintf(out, len,
		 "not ready: memory pressure full avg10 %.2f%% at or above %u%% for %.1fs "
		 "(stalled on reclaim; headroom %s)",
		 e->st->psi.full.avg10, e->h->cfg.pressure_pct,
		 (double)(e->now_ms - e->h->stall_since_ms) / 1000.0,
		 mf_size_format(e->st->usable, a, sizeof(a)));
}

/* Readiness, in the order of the reason given. */
static const struct rule ready_rules[] = {
	{not_running, say_not_running},
	{at_budget, say_at_budget},
	{low_headroom, say_low_headroom},
	{stalled, say_stalled},
};

static int unready_too_long(const struct eval *e)
{
	return !e->h->ready && e->st->child_up &&
	       e->now_ms - e->h->unready_since_ms >= e->h->cfg.live_after_ms;
}

static void say_unready_too_long(const struct eval *e, char *out, size_t len)
{
	char a[32], b[32];

	snprintf(out, len, "not live: not ready for %.1fs (headroom %s below %s)",
		 (double)(e->now_ms - e->h->low_since_ms) / 1000.0,
		 mf_size_format(e->st->usable, a, sizeof(a)), mf_size_format(e->need, b, sizeof(b)));
}

/* With recycling on, the recycle replaces a stuck process instead. */
static int stuck(const struct eval *e)
{
	return e->st->health.stuck && !e->st->recycle.on;
}

static void say_stuck(const struct eval *e, char *out, size_t len)
{
	snprintf(out, len, "not live: stuck: %.140s", e->st->health.stuck_reason);
}

static int refused_at_budget(const struct eval *e)
{
	const struct sup_health *h = e->h;

	return h->at_budget && e->st->child_up && h->refused_since_ms &&
	       e->now_ms - h->refused_since_ms >= h->cfg.live_refused_ms &&
	       e->now_ms - h->last_refused_ms <= h->cfg.live_refused_ms;
}

static void say_refused_at_budget(const struct eval *e, char *out, size_t len)
{
	const struct sup_state *st = e->st;
	char a[32], b[32];

	snprintf(out, len,
		 "not live: allocations refused for %.1fs with process %d at its budget (%s of %s used)",
		 (double)(e->now_ms - e->h->refused_since_ms) / 1000.0, (int)st->rlimit_pid,
		 mf_size_format(st->rlimit_used, a, sizeof(a)), mf_size_format(st->budget, b, sizeof(b)));
}

static int failing_share(const struct eval *e)
{
	return e->ended >= e->h->cfg.fail_min && e->ended > 0 &&
	       (uint64_t)e->failed * 100 >= (uint64_t)e->h->cfg.fail_pct * e->ended;
}

static void say_failing_share(const struct eval *e, char *out, size_t len)
{
	snprintf(out, len, "not live: %u of %u scopes failed on allocation in the last %us",
		 e->failed, e->ended, e->h->cfg.fail_window_s);
}

/* Liveness, in the order of the reason given. */
static const struct rule live_rules[] = {
	{unready_too_long, say_unready_too_long},
	{stuck, say_stuck},
	{refused_at_budget, say_refused_at_budget},
	{failing_share, say_failing_share},
};

/* The first failing rule of a table writes its reason: 0; else 1. */
static int apply(const struct rule *rules, size_t n, const struct eval *e, char *out,
		 size_t len)
{
	for (size_t i = 0; i < n; i++) {
		if (rules[i].fails(e)) {
			rules[i].say(e, out, len);
			return 0;
		}
	}
	return 1;
}

void sup_health_eval(struct sup_health *h, struct sup_state *st, uint64_t now_ms,
		     uint64_t now_real_s)
{
	uint64_t need = sup_health_need(h, &st->health.need_learned);
	uint64_t upper = need + need / 100 * h->cfg.hysteresis_pct;
	struct eval e = {.h = h, .st = st, .need = need, .now_ms = now_ms};
	char a[32], b[32];

	st->health.need = need;
	budget_eval(h, st, need, upper, now_ms);
	if (h->cfg.pressure_pct && st->psi_ok && st->psi.has_full &&
	    st->psi.full.avg10 >= (double)h->cfg.pressure_pct) {
		if (!h->stall_since_ms)
			h->stall_since_ms = now_ms;
	} else {
		h->stall_since_ms = 0;
	}
	e.stalled = h->stall_since_ms && now_ms - h->stall_since_ms >= h->cfg.grace_ms;
	if (st->usable < need) {
		if (!h->low_since_ms)
			h->low_since_ms = now_ms;
	} else if (st->usable >= upper || h->ready) {
		h->low_since_ms = 0;
	}
	if (h->low_since_ms && now_ms - h->low_since_ms >= h->cfg.grace_ms) {
		if (h->ready)
			h->unready_since_ms = now_ms;
		h->ready = 0;
	} else {
		h->ready = 1;
		h->unready_since_ms = 0;
	}

	for (unsigned k = 0; k < h->cfg.fail_window_s; k++) {
		uint64_t sec = now_real_s - k;
		unsigned i = (unsigned)(sec % SUP_WINDOW_MAX);

		if (h->win_sec[i] == sec) {
			e.ended += h->win_ended[i];
			e.failed += h->win_failed[i];
		}
	}
	st->health.window_ended = e.ended;
	st->health.window_failed = e.failed;

	st->health.ready = apply(ready_rules, sizeof(ready_rules) / sizeof(ready_rules[0]), &e,
			  st->health.ready_reason, sizeof(st->health.ready_reason));
	if (st->health.ready)
		snprintf(st->health.ready_reason, sizeof(st->health.ready_reason),
			 "ready: headroom %s, a request needs %s",
			 mf_size_format(st->usable, a, sizeof(a)), mf_size_format(need, b, sizeof(b)));

	/* Written after readiness, read by the liveness rules. */
	stuck_eval(h, st, need, now_ms);
	st->health.live = apply(live_rules, sizeof(live_rules) / sizeof(live_rules[0]), &e,
			 st->health.live_reason, sizeof(st->health.live_reason));
	if (st->health.live)
		snprintf(st->health.live_reason, sizeof(st->health.live_reason),
			 "live: %u of %u scopes failed in the last %us",
			 e.failed, e.ended, h->cfg.fail_window_s);
}
