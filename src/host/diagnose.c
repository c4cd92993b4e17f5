/*
 * diagnose.c - verdicts and their evidence from the model, the scopes in
 * flight and the post-mortems (diagnose.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/lines.h"
#include "host/diagnose.h"

#define MiB (1ull << 20)
#define LEAK_MIN_WINDOWS 6
#define RETAIN_MIN (64ull << 10)   /* retained per call below this is noise */
#define OVERSIZED_RATIO 4          /* x the p95 of its name */
#define ORDINARY_RATIO 2           /* a refused scope below this is ordinary */
/* Waits at the gate that say memory ran short: at least this many, and
 * this share of the scopes (one in a hundred): a few requests wait at a
 * start, while the gate still asks its default need of every kind. */
#define GATE_MIN_WAITS 3
#define GATE_MIN_SHARE 20 /* one in twenty: a few wait behind one oversized request */
/* Retention per call is trusted after this many calls that were not
 * refused, in a run too short for the floor's windows to say. */
#define RETAIN_MIN_CALLS 64
/* A slow leak keeps less per call than the noise of one call (RETAIN_MIN),
 * but its calls' total grows past this while the floor rises with it. */
#define SLOW_MIN_TOTAL (4 * MiB)

static const char *const verdict_names[MF_VERDICT_N] = {
	"leak", "aggregate", "oversized", "outside-heap", "healthy",
};

const char *mf_verdict_name(enum mf_verdict v)
{
	return (unsigned)v < MF_VERDICT_N ? verdict_names[v] : "unknown";
}

int mf_diag_problem(const struct mf_diag *d)
{
	return d->nverdicts > 0 && !(d->nverdicts == 1 && d->verdict[0] == MF_VERDICT_HEALTHY);
}

/* ---- post-mortem reports ---- */

static uint64_t u64(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static void copy_str(char *dst, size_t len, const char *src)
{
	size_t n = src ? strnlen(src, len - 1) : 0;

	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

int mf_diag_death_from_report(json_t *r, struct mf_diag_death *d)
{
	json_t *mem = json_object_get(r, "memory"), *heap = json_object_get(r, "heap");
	json_t *tl = json_object_get(r, "timeline"), *inf = json_object_get(r, "in_flight"), *v;
	size_t i;

	memset(d, 0, sizeof(*d));
	if (!json_is_object(r) || !json_is_integer(json_object_get(r, "memfence_report")))
		return -1;
	d->t_s = u64(r, "time_unix");
	d->sup_pid = (int32_t)u64(json_object_get(r, "supervisor"), "pid");
	copy_str(d->cause, sizeof(d->cause), json_string_value(json_object_get(r, "cause")));
	d->limit = u64(mem, "limit");
	d->usage = u64(mem, "usage");
	d->working_set = u64(mem, "working_set");
	d->heap_live = u64(heap, "live");
	d->ws_before = d->working_set;
	d->heap_before = d->heap_live;
	json_array_foreach(tl, i, v) {
		uint64_t t = u64(v, "t"), ws = u64(v, "working_set");

		if (t + 10 >= d->t_s && ws > d->ws_before) {
			d->ws_before = ws;
			d->heap_before = u64(v, "heap_live");
		}
	}
	d->in_flight = (uint32_t)u64(r, "in_flight_total");
	json_array_foreach(inf, i, v) {
		struct mf_diag_scope s;
		json_t *net = json_object_get(v, "net");
		uint32_t at;

		memset(&s, 0, sizeof(s));
		copy_str(s.name, sizeof(s.name), json_string_value(json_object_get(v, "name")));
		copy_str(s.id, sizeof(s.id), json_string_value(json_object_get(v, "id")));
		s.peak = u64(v, "peak");
		s.net = json_is_integer(net) ? json_integer_value(net) : 0;
		s.failed = u64(v, "failed");
		/* Absent in reports written before refusals said why. */
		s.rule = mf_model_rule_of(json_string_value(json_object_get(v, "refused_by")));
		s.asked = u64(v, "asked");
		s.need = u64(v, "need");
		if (s.net > 0)
			d->in_flight_sum += (uint64_t)s.net;
		/* Keep the largest MF_DIAG_LISTED, largest first. */
		for (at = d->nlisted; at > 0 && d->listed[at - 1].peak < s.peak; at--)
			;
		if (at >= MF_DIAG_LISTED)
			continue;
		if (d->nlisted < MF_DIAG_LISTED)
			d->nlisted++;
		memmove(&d->listed[at + 1], &d->listed[at],
			(d->nlisted - 1 - at) * sizeof(d->listed[0]));
		d->listed[at] = s;
	}
	if (d->in_flight < d->nlisted)
		d->in_flight = d->nlisted;
	return 0;
}

static int death_is_kill(const struct mf_diag_death *d)
{
	return strcmp(d->cause, "oom-kill") == 0 || strcmp(d->cause, "lost") == 0;
}

static int death_is_bad(const struct mf_diag_death *d)
{
	return death_is_kill(d) || strcmp(d->cause, "sigkill") == 0 || strcmp(d->cause, "exit") == 0;
}

/* ---- the analysis ---- */

/* The model with only the windows at or after since. */
static struct mf_model *since_copy(const struct mf_model *m, uint64_t since)
{
	struct mf_model *f = malloc(sizeof(*f));

	if (!f)
		return NULL;
	*f = *m;
	if (!since)
		return f;
	f->nfloors = f->floor_pos = 0;
	for (uint32_t i = 0; i < m->nfloors; i++) {
		const struct mf_model_floor *w = mf_model_floor_at(m, i);

		if (w->t_s + m->window_s <= since)
			continue;
		f->floors[f->floor_pos] = *w;
		f->floor_pos = (f->floor_pos + 1) % MF_MODEL_FLOORS;
		f->nfloors++;
	}
	return f;
}

static void name_typical(const struct mf_model *m, const struct mf_diag *d, const char *name,
			 uint64_t *p50, uint64_t *p95)
{
	const struct mf_model_name *n = mf_model_find(m, name);

	if (n && n->peak.count >= 8) {
		*p50 = mf_dist_quantile(&n->peak, 0.5);
		*p95 = mf_dist_quantile(&n->peak, 0.95);
	} else {
		/* Too few of its own: the program's typical scope. */
		*p50 = d->need_p50;
		*p95 = d->need_p95;
	}
}

/*
 * A refused scope outgrew its kind when the rule that refused it says so
 * (the gate refuses only a scope past its need while the room is promised
 * to others; a budget is what the owner said a scope may take), or when
 * what it asked for was at least twice the p95 of its name: the pressure
 * and container lines refuse the largest in flight, which under aggregate
 * load is an ordinary one, but not one twice the size of its kind. Its
 * peak alone says little: it stopped where it was refused.
 */
static int outgrew(const struct mf_diag_big *b)
{
	if (!b->refused || !b->rule)
		return 0;
	if (b->rule == MF_RULE_GATE || b->rule == MF_RULE_BUDGET)
		return 1;
	return b->p95 && b->asked >= MiB && b->asked >= ORDINARY_RATIO * b->p95;
}

static void add_candidate(struct mf_diag *d, const struct mf_model *m, const char *name,
			  const char *id, uint64_t peak, uint64_t t_s, int refused, int at_death,
			  uint32_t rule, uint64_t asked, uint64_t need)
{
	struct mf_diag_big *b;
	const uint32_t cap = sizeof(d->big) / sizeof(d->big[0]);

	/* The same scope seen twice (an id is unique while it runs). */
	for (uint32_t i = 0; i < d->nbig; i++) {
		b = &d->big[i];
		if (id && *id && strcmp(b->id, id) == 0 && strcmp(b->name, name) == 0 &&
		    (b->t_s == t_s || at_death || b->at_death)) {
			b->refused |= refused;
			b->at_death |= at_death;
			if (peak > b->peak)
				b->peak = peak;
			if (!b->rule && rule) {
				b->rule = rule;
				b->asked = asked;
				b->need = need;
				b->outgrew = outgrew(b);
			}
			return;
		}
	}
	if (d->nbig >= cap)
		return;
	b = &d->big[d->nbig++];
	memset(b, 0, sizeof(*b));
	copy_str(b->name, sizeof(b->name), name);
	copy_str(b->id, sizeof(b->id), id);
	b->peak = peak;
	b->t_s = t_s;
	b->refused = refused;
	b->at_death = at_death;
	name_typical(m, d, name, &b->p50, &b->p95);
	b->rule = refused ? rule : 0;
	b->asked = refused ? asked : 0;
	b->need = refused ? need : 0;
	b->over_budget = d->budget && (peak > d->budget || b->asked > d->budget);
	b->outgrew = outgrew(b);
}

static int is_oversized(const struct mf_diag_big *b)
{
	return b->over_budget || b->outgrew ||
	       (b->p95 && b->peak >= MiB && b->peak >= OVERSIZED_RATIO * b->p95);
}

static int cmp_big(const void *x, const void *y)
{
	const struct mf_diag_big *a = x, *b = y;
	int oa = is_oversized(a), ob = is_oversized(b);

	if (oa != ob)
		return ob - oa;
	return a->peak < b->peak ? 1 : a->peak > b->peak ? -1 : 0;
}

static void consider_load(struct mf_diag *d, uint64_t load, uint64_t top, uint32_t n,
			  uint64_t t_s, int at_death)
{
	/* Many together, none dominating: a single large scope among small
	 * ones is the oversized question, not this one. */
	if (n < 3 || top * 2 >= load || load <= d->agg_load)
		return;
	d->agg_load = load;
	d->agg_top = top;
	d->agg_n = n;
	d->agg_t_s = t_s;
	d->agg_at_death = at_death;
}

static void consider_outside(struct mf_diag *d, uint64_t ws, uint64_t heap, uint64_t t_s,
			     int at_death)
{
	if (ws <= heap || ws - heap <= d->outside)
		return;
	d->outside = ws - heap;
	d->outside_ws = ws;
	d->outside_heap = heap;
	d->outside_t_s = t_s;
	d->outside_at_death = at_death;
}

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

/* The admission gate: from the windows (since counts), else the model's
 * totals, and the segment's counters when they are ahead (the model is
 * saved every few seconds). */
static void gate_analysis(struct mf_diag *d, const struct mf_model *f,
			  const struct mf_diag_input *in)
{
	uint32_t full[MF_MODEL_FLOORS + 2];
	const uint64_t *hist = f->gate.hist;
	uint64_t waited = 0, timed_out = 0, seg = 0, mod = 0;
	uint32_t nfull = 0;

	for (uint32_t i = 0; i <= f->nfloors; i++) {
		const struct mf_model_floor *w = i < f->nfloors ? mf_model_floor_at(f, i) : &f->cur;

		if (i == f->nfloors && (!f->cur_open || w->t_s + f->window_s <= in->since_s))
			break;
		waited += w->gate_waited;
		timed_out += w->gate_timed_out;
		if (w->gate_queue == 0)
			continue;
		full[nfull++] = w->gate_full_n;
		if (w->gate_queue > d->gate_queue_max) {
			d->gate_queue_max = w->gate_queue;
			d->gate_queue_t_s = w->t_s;
		}
	}
	if (!in->since_s) {
		if (f->gate.waited > waited)
			waited = f->gate.waited;
		if (f->gate.timed_out > timed_out)
			timed_out = f->gate.timed_out;
		if (in->gate && in->gate->waited > waited)
			waited = in->gate->waited;
		if (in->gate && in->gate->timed_out > timed_out)
			timed_out = in->gate->timed_out;
	}
	if (in->gate) {
		for (unsigned b = 0; b < MF_MODEL_GATE_HIST; b++) {
			seg += in->gate->hist[b];
			mod += f->gate.hist[b];
		}
		if (seg > mod)
			hist = in->gate->hist;
	}
	if (in->have_now && in->gate) {
		d->gate_now = 1;
		d->gate_queue_now = in->gate->queue;
		d->gate_admitted_now = in->gate->admitted;
		if (in->gate->queue) {
			full[nfull++] = in->gate->admitted;
			if (in->gate->queue > d->gate_queue_max) {
				d->gate_queue_max = in->gate->queue;
				d->gate_queue_t_s = in->now_s;
			}
		}
	}
	d->gate_waited = waited;
	d->gate_timed_out = timed_out;
	/* Percentiles over the whole history, as the distributions of names. */
	d->gate_p50_ms = mf_model_gate_wait_ms(hist, 0.5);
	d->gate_p99_ms = mf_model_gate_wait_ms(hist, 0.99);
	if (nfull) {
		qsort(full, nfull, sizeof(full[0]), cmp_u32);
		d->gate_full_n = full[(nfull - 1) / 2];
	}
}

static int cmp_retainer(const void *x, const void *y)
{
	const struct mf_diag_retainer *a = x, *b = y;

	return a->median_retained < b->median_retained ? 1
	       : a->median_retained > b->median_retained ? -1 : 0;
}

/*
 * A slow leak (1 MiB a minute over a few calls a second: some KiB per call)
 * keeps less per call than one call's noise, so the median of recent calls
 * does not name it. Its calls' total does: after enough calls it has kept
 * SLOW_MIN_TOTAL, and the floor rose by at least half of that over enough
 * windows, at a steady rate (its recent half at least half the slope of
 * all: a cache that filled has flattened). Noise sums to about nothing.
 */
static int slow_retainer(const struct mf_diag *d, const struct mf_model_name *n)
{
	const struct mf_leak *lk = &d->leak;

	return n->count >= RETAIN_MIN_CALLS && n->retained_sum >= (int64_t)SLOW_MIN_TOTAL &&
	       lk->windows >= LEAK_MIN_WINDOWS && lk->slope > 0 &&
	       lk->recent_slope * 2 >= lk->slope &&
	       lk->floor_last >= lk->floor_first + (uint64_t)n->retained_sum / 2;
}

static void leak_analysis(struct mf_diag *d, struct mf_model *f)
{
	/* The floor net of what the requests in flight held at that moment:
	 * under sustained load the floor rises with the load, and falls with
	 * it; what no request accounts for is what a leak leaves. */
	for (uint32_t i = 0; i < f->nfloors; i++) {
		struct mf_model_floor *w = (struct mf_model_floor *)mf_model_floor_at(f, i);

		w->floor = w->floor > w->floor_load ? w->floor - w->floor_load : 0;
		w->floor_load = 0;    /* taken off once: mf_model_leak takes it off too */
	}
	d->leak_min_rise = d->budget / 50 > 4 * MiB ? d->budget / 50 : 4 * MiB;
	mf_model_leak(f, d->budget, LEAK_MIN_WINDOWS, d->leak_min_rise, &d->leak);
	for (uint32_t i = 0; i < f->nnames; i++) {
		const struct mf_model_name *n = &f->names[i];
		struct mf_diag_retainer *r;
		int slow = 0;

		if (!mf_model_name_retains(n, RETAIN_MIN)) {
			if (!slow_retainer(d, n))
				continue;
			slow = 1;
		}
		if (d->nretainers >= MF_DIAG_RETAINERS) {
			/* Full: replace the weakest if this one keeps more. */
			qsort(d->retainers, d->nretainers, sizeof(d->retainers[0]), cmp_retainer);
			if (mf_model_recent_retained(n) <= d->retainers[d->nretainers - 1].median_retained)
				continue;
			d->nretainers--;
		}
		r = &d->retainers[d->nretainers++];
		copy_str(r->name, sizeof(r->name), n->name);
		r->calls = n->count;
		r->median_retained = mf_model_recent_retained(n);
		r->retained_sum = n->retained_sum;
		r->mean_retained = n->count ? n->retained_sum / (int64_t)n->count : 0;
		r->p50_peak = mf_dist_quantile(&n->peak, 0.5);
		r->slow = slow;
	}
	qsort(d->retainers, d->nretainers, sizeof(d->retainers[0]), cmp_retainer);
	/* A floor that keeps rising is a leak on its own; names that keep
	 * memory per call are one when the floor rose with them (a cache that
	 * fills also keeps memory per call until it is full; then its recent
	 * calls keep nothing, and its floor flattens). The per-call evidence
	 * grows with calls, not with windows: two windows whose floor rose by
	 * what those calls kept are enough, and a run too short for two
	 * windows needs enough calls keeping more than the noise in all. */
	{
		int floor_rose = d->leak.windows >= 2 && d->leak.slope > 0 &&
				 (d->leak.windows < 4 || d->leak.recent_slope > 0) &&
				 d->leak.floor_last > d->leak.floor_first + d->leak_min_rise;
		int calls_only = 0;

		for (uint32_t i = 0; i < d->nretainers && d->leak.windows < 2; i++)
			calls_only |= d->retainers[i].calls >= RETAIN_MIN_CALLS &&
				      d->retainers[i].retained_sum > (int64_t)d->leak_min_rise;
		int slow = 0;

		for (uint32_t i = 0; i < d->nretainers; i++)
			slow |= d->retainers[i].slow;
		d->holds[MF_VERDICT_LEAK] =
			d->leak.leaking || slow || (d->nretainers > 0 && (floor_rose || calls_only));
	}
}

/* Windows from since on: the closed ones, then the open one; &SKIP for
 * one before since, NULL past the last. */
static const struct mf_model_floor SKIP;

static const struct mf_model_floor *window_at(const struct mf_model *f, uint32_t i,
					      uint64_t since)
{
	const struct mf_model_floor *w = i < f->nfloors ? mf_model_floor_at(f, i) : &f->cur;

	if (i > f->nfloors || (i == f->nfloors && !f->cur_open))
		return NULL;
	return w->t_s + f->window_s <= since ? &SKIP : w;
}

/* Was a scope that outgrew its kind in flight in window w: did it end
 * there or in the next one? Then what the scopes in flight held, and the
 * waits at the gate, were its doing: it took the room promised to the
 * others. */
static int oversized_near(const struct mf_diag *d, const struct mf_model *f,
			  const struct mf_model_floor *w)
{
	for (uint32_t k = 0; k < d->noversized; k++)
		if (d->big[k].t_s >= w->t_s && d->big[k].t_s < w->t_s + 2 * f->window_s)
			return 1;
	return 0;
}

/*
 * The waits at the gate that say the load was too much: those of windows
 * where the requests admitted at once while others waited, at what their
 * kind needs (p95), or the scopes in flight at the busiest moment, held at
 * least 30 % of the budget. Not the others:
 *  - waits while the gate still asks its default need of a kind it has
 *    not learned (a quarter of its line: four at once) at the start;
 *  - waits of windows where a scope that outgrew its kind ended (in that
 *    window or the next: it was in flight then): it took the room the
 *    gate promised to the others, and they waited for it; the waits are
 *    its doing, not the load's. So is a leak's floor taking the room.
 * Without windows (a model rebuilt from a bare segment), the totals with
 * the figures of the whole run.
 */
static uint64_t load_waits(const struct mf_diag *d, const struct mf_model *f,
			   const struct mf_diag_input *in)
{
	const struct mf_model_floor *w;
	uint64_t n = 0, line = d->budget / 10 * 3;
	uint32_t seen = 0;

	for (uint32_t i = 0; (w = window_at(f, i, in->since_s)) != NULL; i++) {
		if (w == &SKIP)
			continue;
		seen++;
		if (!oversized_near(d, f, w) &&
		    (w->load >= line || (uint64_t)w->gate_full_n * d->need_p95 >= line))
			n += w->gate_waited + w->gate_timed_out;
	}
	if (!seen && (d->agg_load >= line || (uint64_t)d->gate_full_n * d->need_p95 >= line))
		n = d->gate_waited + d->gate_timed_out;
	return n;
}

int mf_diagnose(const struct mf_diag_input *in, struct mf_diag *d)
{
	const struct mf_model *m = in->model;
	struct mf_model *f = since_copy(m, in->since_s);
	uint64_t since = in->since_s, refused_big = 0;
	int died = 0, trouble, waits;

	memset(d, 0, sizeof(*d));
	if (!f)
		return -ENOMEM;
	d->budget = in->budget ? in->budget : in->limit;
	d->limit = in->limit ? in->limit : d->budget;
	d->names = f->nnames;
	d->from_s = UINT64_MAX;
	for (uint32_t i = 0; i < f->nnames; i++) {
		d->scopes += f->names[i].count;
		if (f->names[i].first_s && f->names[i].first_s < d->from_s)
			d->from_s = f->names[i].first_s;
		if (f->names[i].last_s > d->to_s)
			d->to_s = f->names[i].last_s;
	}
	d->need_p50 = mf_model_need(f, NULL, 0.5, 1);
	d->need_p95 = mf_model_need(f, NULL, 0.95, 1);

	/* Events: refusals, kills, restarts. */
	for (uint32_t i = 0; i < m->nevents; i++) {
		const struct mf_model_event *e = mf_model_event_at(m, i);

		if (e->t_s < since)
			continue;
		if (since && e->kind == MF_EV_REFUSED)
			d->refused += e->count;
		if (since && e->kind == MF_EV_OOM_KILL)
			d->oom_kills += e->count;
		if (since && e->kind == MF_EV_RESTART)
			d->restarts += e->count;
	}
	if (!since) {
		d->refused = m->event_total[MF_EV_REFUSED];
		d->oom_kills = m->event_total[MF_EV_OOM_KILL];
		d->restarts = m->event_total[MF_EV_RESTART];
	}

	/* Windows: the highs, the load, memory outside the heap. */
	for (uint32_t i = 0; i <= f->nfloors; i++) {
		const struct mf_model_floor *w = i < f->nfloors ? mf_model_floor_at(f, i) : &f->cur;

		if (i == f->nfloors && (!f->cur_open || w->t_s + f->window_s <= since))
			break;
		if (w->t_s < d->from_s)
			d->from_s = w->t_s;
		if (w->t_s + f->window_s > d->to_s)
			d->to_s = w->t_s + f->window_s;
		if (w->high > d->heap_high)
			d->heap_high = w->high;
		if (w->ws_high > d->ws_high)
			d->ws_high = w->ws_high;
		/* The heap at the working set's high was at most the window's
		 * high: ws_high - high is a lower bound of what lay outside. */
		if (w->ws_high)
			consider_outside(d, w->ws_high, w->high, w->t_s, 0);
	}

	/* Deaths. */
	{
		uint64_t oom_deaths = 0;

		for (uint32_t i = 0; i < in->ndeaths; i++) {
			const struct mf_diag_death *x = &in->deaths[i];
			uint64_t top = 0;

			if (x->t_s < since)
				continue;
			d->deaths++;
			oom_deaths += death_is_kill(x);
			died |= death_is_bad(x);
			if (x->ws_before > d->ws_high)
				d->ws_high = x->ws_before;
			if (x->heap_before > d->heap_high)
				d->heap_high = x->heap_before;
			if (!d->limit && x->limit)
				d->limit = x->limit;
			if (x->ws_before)
				consider_outside(d, x->ws_before, x->heap_before, x->t_s, 1);
			for (uint32_t k = 0; k < x->nlisted; k++) {
				uint64_t net = x->listed[k].net > 0 ? (uint64_t)x->listed[k].net : 0;
				if (net > top)
					top = net;
			}
			consider_load(d, x->in_flight_sum, top, x->in_flight, x->t_s, 1);
		}
		if (oom_deaths > d->oom_kills)
			d->oom_kills = oom_deaths;
		died |= d->oom_kills > 0;
		if (!d->budget)
			d->budget = d->limit;
	}
	if (in->have_now) {
		uint64_t load = 0, top = 0;

		if (in->heap_live > d->heap_high)
			d->heap_high = in->heap_live;
		if (in->working_set > d->ws_high)
			d->ws_high = in->working_set;
		if (in->working_set)
			consider_outside(d, in->working_set, in->heap_live, in->now_s, 0);
		for (uint32_t i = 0; i < in->nin_flight; i++) {
			uint64_t net = in->in_flight[i].net > 0 ? (uint64_t)in->in_flight[i].net : 0;
			load += net;
			if (net > top)
				top = net;
		}
		consider_load(d, load, top, in->nin_flight, in->now_s, 0);
		if (in->now_s > d->to_s)
			d->to_s = in->now_s;
	}
	if (d->from_s == UINT64_MAX)
		d->from_s = d->to_s;

	leak_analysis(d, f);
	gate_analysis(d, f, in);

	/* Oversized: the model's candidates, the scopes in flight at deaths
	 * and now. */
	for (uint32_t i = 0; i < m->nbig; i++)
		if (m->big[i].t_s >= since)
			add_candidate(d, f, m->big[i].name, m->big[i].id, m->big[i].peak,
				      m->big[i].t_s, m->big[i].failed != 0, 0, m->big[i].rule,
				      m->big[i].asked, m->big[i].need);
	for (uint32_t i = 0; i < in->ndeaths; i++)
		if (in->deaths[i].t_s >= since)
			for (uint32_t k = 0; k < in->deaths[i].nlisted; k++)
				add_candidate(d, f, in->deaths[i].listed[k].name,
					      in->deaths[i].listed[k].id, in->deaths[i].listed[k].peak,
					      in->deaths[i].t_s, in->deaths[i].listed[k].failed > 0,
					      death_is_bad(&in->deaths[i]), in->deaths[i].listed[k].rule,
					      in->deaths[i].listed[k].asked,
					      in->deaths[i].listed[k].need);
	if (in->have_now)
		for (uint32_t i = 0; i < in->nin_flight; i++)
			add_candidate(d, f, in->in_flight[i].name, in->in_flight[i].id,
				      in->in_flight[i].peak, in->now_s, in->in_flight[i].failed > 0, 0,
				      in->in_flight[i].rule, in->in_flight[i].asked,
				      in->in_flight[i].need);
	qsort(d->big, d->nbig, sizeof(d->big[0]), cmp_big);
	for (uint32_t i = 0; i < d->nbig; i++) {
		if (!is_oversized(&d->big[i]))
			break;
		d->noversized++;
		refused_big += d->big[i].refused;
	}
	/* Keep only the oversized, and the largest few ordinary ones that
	 * were refused or in flight at a death (evidence for aggregate). */
	{
		uint32_t keep = d->noversized;

		for (uint32_t i = d->noversized; i < d->nbig; i++)
			if ((d->big[i].refused || d->big[i].at_death) && keep < d->noversized + 4)
				d->big[keep++] = d->big[i];
		d->nbig = keep;
	}
	d->refused_ordinary = d->refused > refused_big ? d->refused - refused_big : 0;
	d->holds[MF_VERDICT_OVERSIZED] = d->noversized > 0;
	/* The busiest moment of each window, unless a scope that outgrew its
	 * kind was in flight then: many together, none dominating, is a
	 * question of load only without it (two oversized requests at once
	 * among ordinary ones look like load). */
	{
		const struct mf_model_floor *w;

		for (uint32_t i = 0; (w = window_at(f, i, since)) != NULL; i++)
			if (w != &SKIP && !oversized_near(d, f, w))
				consider_load(d, w->load, w->load_top, w->load_n, w->t_s, 0);
	}
	/* What the admission gate lets in at once (one computation for both):
	 * under the line it admits against, the live heap's floor held
	 * outside requests. The whole budget over the need counted neither,
	 * and said several times as many as the gate admitted. */
	d->fit = mf_gate_fit(mf_gate_line(d->budget), d->leak.floor_last, d->need_p95);

	/* Aggregate: memory ran short while many ordinary scopes held it. With
	 * the admission gate it runs short without a refusal: requests wait
	 * for it, and the gate keeps the load in flight below the budget. */
	trouble = d->refused > 0 || died || (d->budget && d->heap_high >= d->budget / 10 * 9) ||
		  (d->limit && d->ws_high >= d->limit / 100 * 95);
	{
		uint64_t load = load_waits(d, f, in);

		waits = load >= GATE_MIN_WAITS && load * GATE_MIN_SHARE >= d->scopes;
	}
	/* The gate admits only what fits: under it the load in flight may
	 * stay small (one or two large requests at once) while the others
	 * wait. A share of the requests waiting is the load, named. */
	d->holds[MF_VERDICT_AGGREGATE] =
		d->budget &&
		((trouble && (d->agg_load * 2 >= d->budget ||
			      (d->refused_ordinary > 0 && d->agg_n >= 3 &&
			       d->agg_load * 10 >= d->budget * 3))) ||
		 waits);

	/* Outside the heap: it is what filled the container. */
	d->holds[MF_VERDICT_OUTSIDE] =
		d->limit && d->outside * 2 >= d->limit &&
		(died || d->outside_ws >= d->limit / 100 * 90);

	/* How strong: what it caused (a death, refusals, nothing yet), then
	 * how much of the budget it explains. */
	{
		double b = d->budget ? (double)d->budget : 1.0, l = d->limit ? (double)d->limit : 1.0;
		double rise = d->leak.floor_last > d->leak.floor_first
				      ? (double)(d->leak.floor_last - d->leak.floor_first) : 0;
		int high_floor = d->leak.floor_last * 2 >= d->budget;
		int big_death = 0, big_refused = 0;
		double ratio = 0;

		for (uint32_t i = 0; i < d->noversized; i++) {
			big_death |= d->big[i].at_death;
			big_refused |= d->big[i].refused;
			if (d->big[i].p95 && (double)d->big[i].peak / (double)d->big[i].p95 > ratio)
				ratio = (double)d->big[i].peak / (double)d->big[i].p95;
		}
		d->score[MF_VERDICT_LEAK] = (died && high_floor ? 30 : d->refused && high_floor ? 20 : 10) +
					    (rise / b > 1 ? 1 : rise / b);
		d->score[MF_VERDICT_OVERSIZED] = (big_death ? 30 : big_refused ? 20 : 10) +
						 (ratio / 100 > 1 ? 1 : ratio / 100);
		/* Refusals of scopes that outgrew their kind are the oversized
		 * verdict's doing, not the load's: beside them, load the gate
		 * absorbed (waits) ranks below. */
		int agg_trouble = d->refused_ordinary > 0 || died ||
				  (d->budget && d->heap_high >= d->budget / 10 * 9) ||
				  (d->limit && d->ws_high >= d->limit / 100 * 95);

		d->score[MF_VERDICT_AGGREGATE] = (died && d->agg_at_death ? 30 : agg_trouble ? 20
										     : waits ? 15
											     : 10) +
						 ((double)d->agg_load / b > 1 ? 1 : (double)d->agg_load / b);
		d->score[MF_VERDICT_OUTSIDE] = (died ? 30 : 20) +
					       ((double)d->outside / l > 1 ? 1 : (double)d->outside / l);
	}
	for (int v = 0; v < MF_VERDICT_HEALTHY; v++)
		if (d->holds[v])
			d->verdict[d->nverdicts++] = (enum mf_verdict)v;
	if (d->nverdicts == 0 && trouble) {
		/* Memory ran out and no shape stands out: most likely many
		 * ordinary scopes (or the program's own baseline) together,
		 * unless most of what filled the container was not heap. */
		enum mf_verdict v = d->limit && d->outside * 4 >= d->limit && d->outside > d->heap_high
					    ? MF_VERDICT_OUTSIDE
					    : MF_VERDICT_AGGREGATE;
		d->holds[v] = 1;
		d->weak[v] = 1;
		d->verdict[d->nverdicts++] = v;
	}
	/* Strongest first (insertion sort: at most four). */
	for (uint32_t i = 1; i < d->nverdicts; i++)
		for (uint32_t k = i; k > 0 && d->score[d->verdict[k]] > d->score[d->verdict[k - 1]]; k--) {
			enum mf_verdict t = d->verdict[k];
			d->verdict[k] = d->verdict[k - 1];
			d->verdict[k - 1] = t;
		}
	if (d->nverdicts == 0) {
		d->holds[MF_VERDICT_HEALTHY] = 1;
		d->verdict[d->nverdicts++] = MF_VERDICT_HEALTHY;
	}
	free(f);
	return 0;
}
