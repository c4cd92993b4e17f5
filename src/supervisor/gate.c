/*
 * gate.c - the supervisor's side of the admission gate (src/shim/gate.c):
 * configure it in a new segment, publish what each kind of request needs,
 * publish what the admitted requests held at each sample, free what dead
 * processes left at the gate, and read its counters for /metrics and
 * /status. Its scans of the entries stop at the high-water mark the shims
 * keep (mf_seg_gate_entries_used): a short run reads none of the 32 KiB.
 *
 * Needs come from the one model of the program's memory (model.c,
 * host/model.h), which every finished scope feeds and which leaves refused
 * scopes out of the peaks (a refused scope stopped where it was refused, so
 * its peak says nothing of what its kind needs). For each name the shims
 * asked the gate about, its need is the configured quantile of those peaks
 * once min_count of them are known; the shim uses a default until then.
 * The model is kept in the state directory, so a restarted program's
 * requests are admitted with what the previous run learned.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "supervisor/gate.h"
#include "supervisor/model.h"
#include "supervisor/seg.h"
#include "supervisor/state.h"

static struct sup_gate_cfg gate_cfg;

#define RELAXED(p) __atomic_load_n((p), __ATOMIC_RELAXED)

static struct mf_seg_gate *gate_of(struct sup_seg *s)
{
	struct mf_seg_header *h;

	if (!s->open)
		return NULL;
	h = (struct mf_seg_header *)s->r.mem;
	return h->gate_offset != 0 ? mf_seg_gate_of(h) : NULL;
}

void sup_gate_start(struct sup_seg *s, const struct sup_gate_cfg *cfg)
{
	struct mf_seg_gate *g = gate_of(s);

	gate_cfg = *cfg;
	if (g == NULL)
		return;
	g->min_count = cfg->min_count;
	g->default_need = cfg->default_need;
	g->max_wait_ms = cfg->max_wait_ms;
	g->starve_ms = cfg->starve_ms;
	__atomic_store_n(&g->on, (uint32_t)(cfg->on != 0), __ATOMIC_RELEASE);
}

uint64_t sup_gate_need(const char *name)
{
	return sup_model_need(name, gate_cfg.quantile, gate_cfg.min_count ? gate_cfg.min_count : 1);
}

/* The names are the shims' (each claims its name's entry when a request
 * of it first comes to the gate), so a need goes where the shim looks. */
static void publish_needs(struct mf_seg_gate *g)
{
	for (uint32_t i = 0; i < MF_SEG_GATE_NAMES; i++) {
		struct mf_seg_gate_name *n = &g->names[i];
		char name[MF_SEG_NAME_LEN];
		uint64_t need;

		if (!__atomic_load_n(&n->ready, __ATOMIC_ACQUIRE))
			continue;
		memcpy(name, n->name, sizeof(name));
		name[sizeof(name) - 1] = '\0';
		need = sup_gate_need(name);
		if (need != 0)
			__atomic_store_n(&n->need, need, __ATOMIC_RELAXED);
	}
}

/* A process that died while waiting or admitted never leaves the gate by
 * itself. */
static void free_dead(struct mf_seg_gate *g, struct sup_gate_stats *gs)
{
	uint32_t used = mf_seg_gate_entries_used(g);

	for (uint32_t i = 0; i < used; i++) {
		struct mf_seg_gate_entry *e = &g->entries[i];
		uint32_t st = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE);
		pid_t pid = RELAXED(&e->pid);

		if (st != MF_GATE_WAITING && st != MF_GATE_ADMITTED)
			continue;
		if (pid <= 0 || kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		if (!__atomic_compare_exchange_n(&e->state, &st, MF_GATE_CLAIMED, 0,
						 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			continue;
		if (st == MF_GATE_ADMITTED)
			__atomic_fetch_sub(&g->admitted_need, RELAXED(&e->need), __ATOMIC_ACQ_REL);
		else
			__atomic_fetch_sub(&g->waiting, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&e->state, MF_GATE_FREE, __ATOMIC_RELEASE);
		gs->freed_dead++;
	}
}

/* Bytes the admitted requests hold, each up to its need: the part of the
 * working set the shim must not count twice. Read before the cgroup, so
 * that growth between the two reads is seen in the working set only. */
static uint64_t covered(struct sup_seg *s, struct mf_seg_gate *g)
{
	const struct mf_seg_header *h = s->r.hdr;
	uint32_t used = mf_seg_gate_entries_used(g);
	uint64_t sum = 0;

	for (uint32_t i = 0; i < used; i++) {
		const struct mf_seg_gate_entry *e = &g->entries[i];
		const struct mf_seg_scope *se;
		int32_t slot, scope;
		uint64_t need;
		int64_t net;

		if (__atomic_load_n(&e->state, __ATOMIC_ACQUIRE) != MF_GATE_ADMITTED)
			continue;
		slot = RELAXED(&e->slot);
		scope = RELAXED(&e->scope);
		need = RELAXED(&e->need);
		if (slot < 0 || scope < 0 || (uint32_t)slot >= h->nslots ||
		    (uint32_t)scope >= h->scopes_per_slot)
			continue;
		se = &mf_seg_slot_at(h, (uint32_t)slot)->scopes[scope];
		if (!RELAXED(&se->in_use) || RELAXED(&se->start_ns) != RELAXED(&e->scope_start))
			continue;
		net = RELAXED(&se->net);
		if (net > 0)
			sum += (uint64_t)net < need ? (uint64_t)net : need;
	}
	return sum;
}

void sup_gate_before_sample(struct sup_seg *s, struct sup_state *st)
{
	struct mf_seg_gate *g = gate_of(s);

	s->gate_covered = 0;
	if (g == NULL || !RELAXED(&g->on))
		return;
	free_dead(g, &st->gate);
	s->gate_covered = covered(s, g);
}

void sup_gate_after_sample(struct sup_seg *s, struct sup_state *st)
{
	struct mf_seg_gate *g = gate_of(s);
	struct sup_gate_stats *gs = &st->gate;
	uint64_t now = sup_now_ms() * 1000000u;

	gs->on = g != NULL && RELAXED(&g->on);
	if (!gs->on)
		return;
	publish_needs(g);
	gs->max_wait_ms = RELAXED(&g->max_wait_ms);
	gs->starve_ms = RELAXED(&g->starve_ms);
	gs->admitted_need = RELAXED(&g->admitted_need);
	gs->untracked = RELAXED(&g->untracked);
	gs->covered = s->gate_covered;
	for (int b = 0; b <= MF_SEG_GATE_HIST; b++)
		gs->hist[b] = RELAXED(&g->hist[b]);
	gs->nnames = 0;
	for (uint32_t i = 0; i < MF_SEG_GATE_NAMES; i++) {
		const struct mf_seg_gate_name *n = &g->names[i];
		struct sup_gate_name *d;

		if (!__atomic_load_n(&n->ready, __ATOMIC_ACQUIRE))
			continue;
		d = &gs->names[gs->nnames++];
		memcpy(d->name, n->name, sizeof(d->name));
		d->name[sizeof(d->name) - 1] = '\0';
		d->need = RELAXED(&n->need);
		d->admitted = RELAXED(&n->admitted);
		d->waited = RELAXED(&n->waited);
		d->timed_out = RELAXED(&n->timed_out);
		d->too_big = RELAXED(&n->too_big);
		d->wait_ns = RELAXED(&n->wait_ns);
		d->queued = 0;
	}
	gs->queued = 0;
	gs->admitted_now = 0;
	for (uint32_t i = 0, used = mf_seg_gate_entries_used(g); i < used; i++) {
		const struct mf_seg_gate_entry *e = &g->entries[i];
		uint32_t state = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE);
		uint32_t ni = RELAXED(&e->name_idx);
		struct sup_gate_waiter *w;

		if (state == MF_GATE_ADMITTED)
			gs->admitted_now++;
		if (state != MF_GATE_WAITING)
			continue;
		gs->queued++;
		for (uint32_t k = 0; ni < MF_SEG_GATE_NAMES && k < gs->nnames; k++)
			if (strncmp(gs->names[k].name, g->names[ni].name, MF_SEG_NAME_LEN) == 0)
				gs->names[k].queued++;
		if (gs->queued > SUP_GATE_QUEUE_SHOWN)
			continue;
		w = &gs->queue[gs->queued - 1];
		w->pid = RELAXED(&e->pid);
		w->ticket = RELAXED(&e->ticket);
		w->need = RELAXED(&e->need);
		w->waited_ms = now > RELAXED(&e->since_ns) ? (now - RELAXED(&e->since_ns)) / 1000000u : 0;
		snprintf(w->name, sizeof(w->name), "%s",
			 ni < MF_SEG_GATE_NAMES ? g->names[ni].name : "");
	}
}
