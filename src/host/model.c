/*
 * model.c - per-name distributions and the live heap's floor (model.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/model.h"

/* ---- distributions ---- */

static unsigned dist_bucket(uint64_t v)
{
	if (v < 4096)
		return 0;
	unsigned lg = 63u - (unsigned)__builtin_clzll(v);  /* 12 .. 63 */
	unsigned o = lg - 12;
	if (o > 27)
		return MF_DIST_BUCKETS - 1;
	unsigned q = (unsigned)((v >> (lg - 2)) & 3);       /* two bits below the top */
	return 1 + o * 4 + q;
}

static uint64_t dist_upper(unsigned i)
{
	if (i == 0)
		return 4096;
	unsigned o = (i - 1) / 4, q = (i - 1) % 4;
	return (1ull << (o + 12)) / 4 * (5 + q);
}

void mf_dist_add(struct mf_dist *d, uint64_t v)
{
	d->count++;
	d->sum += v;
	if (v > d->max)
		d->max = v;
	d->b[dist_bucket(v)]++;
}

uint64_t mf_dist_quantile(const struct mf_dist *d, double q)
{
	if (d->count == 0)
		return 0;
	if (!(q > 0))
		q = 1e-9;
	if (q > 1)
		q = 1;
	uint64_t rank = (uint64_t)ceil(q * (double)d->count), seen = 0;
	if (rank == 0)
		rank = 1;
	for (unsigned i = 0; i < MF_DIST_BUCKETS; i++) {
		seen += d->b[i];
		if (seen >= rank) {
			/* The last bucket is open-ended: its edge is the max. */
			uint64_t up = i == MF_DIST_BUCKETS - 1 ? d->max : dist_upper(i);
			return up < d->max ? up : d->max;
		}
	}
	return d->max;
}

/* ---- names ---- */

void mf_model_init_zeroed(struct mf_model *m, uint64_t window_s)
{
	m->version = MF_MODEL_VERSION;
	m->window_s = window_s ? window_s : MF_MODEL_WINDOW_S;
}

void mf_model_init(struct mf_model *m, uint64_t window_s)
{
	memset(m, 0, sizeof(*m));
	mf_model_init_zeroed(m, window_s);
}

const struct mf_model_name *mf_model_find(const struct mf_model *m, const char *name)
{
	for (uint32_t i = 0; i < m->nnames; i++)
		if (strncmp(m->names[i].name, name, MF_MODEL_NAME_LEN) == 0)
			return &m->names[i];
	return NULL;
}

static struct mf_model_name *name_get(struct mf_model *m, const char *name)
{
	struct mf_model_name *n = (struct mf_model_name *)mf_model_find(m, name);

	if (n || m->nnames >= MF_MODEL_NAMES)
		return n;
	n = &m->names[m->nnames++];
	memset(n, 0, sizeof(*n));
	strncpy(n->name, name, MF_MODEL_NAME_LEN - 1);
	return n;
}

static void copy_name(char *dst, const char *src)
{
	size_t n = src ? strnlen(src, MF_MODEL_NAME_LEN - 1) : 0;

	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

/* A candidate refused by a rule that says it outgrew its kind (the gate's,
 * its own budget) ranks before the others: it was stopped early, and its
 * peak may be smaller than that of ordinary scopes refused under load. */
static int big_rank(uint32_t rule)
{
	return rule == MF_RULE_GATE || rule == MF_RULE_BUDGET;
}

/* Keep the MF_MODEL_BIG strongest candidates: by rank, then largest peak
 * first. */
static void big_add(struct mf_model *m, const char *name, const char *id, uint64_t peak,
		    int64_t net, int failed, uint64_t t_s, uint64_t typical,
		    const struct mf_model_why *why)
{
	uint32_t at = m->nbig;
	int rank = big_rank(why ? why->rule : 0);

	while (at > 0 && (big_rank(m->big[at - 1].rule) < rank ||
			  (big_rank(m->big[at - 1].rule) == rank && m->big[at - 1].peak < peak)))
		at--;
	if (at >= MF_MODEL_BIG)
		return;
	if (m->nbig < MF_MODEL_BIG)
		m->nbig++;
	memmove(&m->big[at + 1], &m->big[at], (m->nbig - 1 - at) * sizeof(m->big[0]));
	struct mf_model_big *b = &m->big[at];
	copy_name(b->name, name);
	copy_name(b->id, id);
	b->peak = peak;
	b->net = net;
	b->t_s = t_s;
	b->failed = failed != 0;
	b->typical = typical;
	b->rule = why ? why->rule : 0;
	b->asked = why ? why->asked : 0;
	b->need = why ? why->need : 0;
}

static const char *const rule_names[MF_RULE_N] = {
	"", "budget", "gate", "pressure", "heap-limit", "allocator", "container", "fault",
};

const char *mf_model_rule_name(uint32_t rule)
{
	return rule < MF_RULE_N ? rule_names[rule] : "";
}

uint32_t mf_model_rule_of(const char *name)
{
	for (uint32_t r = 1; name && r < MF_RULE_N; r++)
		if (strcmp(name, rule_names[r]) == 0)
			return r;
	return 0;
}

void mf_model_scope(struct mf_model *m, const char *name, const char *id, uint64_t peak,
		    int64_t net, int failed, uint64_t t_s)
{
	mf_model_scope_why(m, name, id, peak, net, failed, t_s, NULL);
}

void mf_model_scope_why(struct mf_model *m, const char *name, const char *id, uint64_t peak,
			int64_t net, int failed, uint64_t t_s, const struct mf_model_why *why)
{
	struct mf_model_name *n = name_get(m, name && *name ? name : "(unnamed)");
	uint64_t typical;

	if (failed)
		mf_model_event(m, t_s, MF_EV_REFUSED, n ? n->name : name, id, peak);
	if (!n) {
		m->dropped++;
		return;
	}
	/* Judged against the peaks before this one, so that a burst of
	 * oversized requests does not hide itself by raising the p95. */
	typical = n->peak.count >= 8 ? mf_dist_quantile(&n->peak, 0.95) : 0;
	if (failed || (typical && peak >= 2 * typical && peak >= 64 * 1024))
		big_add(m, n->name, id, peak, net, failed, t_s, typical, failed ? why : NULL);
	if (n->count == 0)
		n->first_s = t_s;
	n->last_s = t_s;
	n->count++;
	if (failed)
		n->failed++;
	/* A refused scope stopped short of what it needed: its peak says
	 * nothing of the need of its name (it is counted in failed, and kept
	 * as an event and a candidate). */
	if (!failed)
		mf_dist_add(&n->peak, peak);
	mf_dist_add(&n->retained, net > 0 ? (uint64_t)net : 0);
	n->retained_sum += net;
	/* A refused call freed what it had: with many refusals, their zeros
	 * would make the median of a leaking name 0. */
	if (!failed) {
		n->recent[n->recent_pos] = net;
		n->recent_pos = (n->recent_pos + 1) % MF_MODEL_RECENT;
		if (n->nrecent < MF_MODEL_RECENT)
			n->nrecent++;
	}
	if (peak >= n->max_peak) {
		n->max_peak = peak;
		n->max_at_s = t_s;
		n->max_failed = failed != 0;
		n->max_id[0] = '\0';
		if (id)
			strncpy(n->max_id, id, MF_MODEL_NAME_LEN - 1);
		n->max_id[MF_MODEL_NAME_LEN - 1] = '\0';
	}
}

uint64_t mf_model_need(const struct mf_model *m, const char *name, double q,
		       uint64_t min_count)
{
	if (name) {
		const struct mf_model_name *n = mf_model_find(m, name);
		return n && n->peak.count >= min_count && n->peak.count > 0
			       ? mf_dist_quantile(&n->peak, q)
			       : 0;
	}
	struct mf_dist all;
	memset(&all, 0, sizeof(all));
	for (uint32_t i = 0; i < m->nnames; i++) {
		const struct mf_dist *d = &m->names[i].peak;
		all.count += d->count;
		all.sum += d->sum;
		if (d->max > all.max)
			all.max = d->max;
		for (unsigned b = 0; b < MF_DIST_BUCKETS; b++)
			all.b[b] += d->b[b];
	}
	return all.count >= min_count && all.count > 0 ? mf_dist_quantile(&all, q) : 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

int64_t mf_model_recent_retained(const struct mf_model_name *n)
{
	int64_t v[MF_MODEL_RECENT];

	if (n->nrecent == 0)
		return 0;
	memcpy(v, n->recent, n->nrecent * sizeof(v[0]));
	qsort(v, n->nrecent, sizeof(v[0]), cmp_i64);
	return v[(n->nrecent - 1) / 2];
}

int mf_model_name_retains(const struct mf_model_name *n, uint64_t min_bytes)
{
	if (n->nrecent < 16)
		return 0;
	int64_t med = mf_model_recent_retained(n);
	uint64_t level = mf_dist_quantile(&n->peak, 0.5) / 100;

	if (level < min_bytes)
		level = min_bytes;
	return med > 0 && (uint64_t)med > level;
}

/* ---- the floor of the live heap ---- */

static void floor_close(struct mf_model *m)
{
	if (!m->cur_open)
		return;
	m->floors[m->floor_pos] = m->cur;
	m->floor_pos = (m->floor_pos + 1) % MF_MODEL_FLOORS;
	if (m->nfloors < MF_MODEL_FLOORS)
		m->nfloors++;
	m->cur_open = 0;
}

void mf_model_sample(struct mf_model *m, const struct mf_model_sample *s)
{
	struct mf_model_floor *c = &m->cur;

	if (m->cur_open && s->t_s >= c->t_s + m->window_s)
		floor_close(m);
	if (!m->cur_open) {
		memset(c, 0, sizeof(*c));
		c->t_s = s->t_s - s->t_s % m->window_s;
		c->floor = s->live;
		c->floor_load = s->load;
		m->cur_open = 1;
	}
	if (s->live < c->floor) {
		c->floor = s->live;
		c->floor_load = s->load;
	}
	if (s->live > c->high)
		c->high = s->live;
	if (s->in_flight > c->max_in_flight)
		c->max_in_flight = s->in_flight;
	if (s->load > c->load) {
		c->load = s->load;
		c->load_n = s->in_flight;
		c->load_top = s->load_top;
	}
	if (s->working_set > c->ws_high)
		c->ws_high = s->working_set;
	c->gate_waited += s->gate_waited;
	c->gate_timed_out += s->gate_timed_out;
	if (s->gate_queue > c->gate_queue ||
	    (s->gate_queue != 0 && s->gate_queue == c->gate_queue &&
	     s->gate_admitted > c->gate_full_n)) {
		c->gate_queue = s->gate_queue;
		c->gate_full_n = s->gate_admitted;
	}
	m->gate.waited += s->gate_waited;
	m->gate.timed_out += s->gate_timed_out;
	for (unsigned b = 0; b < MF_MODEL_GATE_HIST; b++)
		m->gate.hist[b] += s->gate_hist[b];
}

uint64_t mf_model_gate_wait_ms(const uint64_t *hist, double q)
{
	static const uint64_t bound[MF_SEG_GATE_HIST] = MF_SEG_GATE_HIST_MS;
	uint64_t total = 0, rank, seen = 0;

	for (unsigned b = 0; b < MF_MODEL_GATE_HIST; b++)
		total += hist[b];
	if (total == 0)
		return 0;
	if (!(q > 0))
		q = 1e-9;
	rank = (uint64_t)ceil((q > 1 ? 1 : q) * (double)total);
	if (rank == 0)
		rank = 1;
	for (unsigned b = 0; b < MF_SEG_GATE_HIST; b++) {
		seen += hist[b];
		if (seen >= rank)
			return bound[b];
	}
	return UINT64_MAX;
}

void mf_model_heap(struct mf_model *m, uint64_t t_s, uint64_t live, uint32_t in_flight)
{
	struct mf_model_sample s = {.t_s = t_s, .live = live, .in_flight = in_flight};

	mf_model_sample(m, &s);
}

/* ---- events ---- */

static const char *const event_names[MF_EV_NKINDS] = {
	"refused", "oom-kill", "exit", "restart", "recycle",
};

const char *mf_model_event_name(enum mf_model_event_kind kind)
{
	return (unsigned)kind < MF_EV_NKINDS ? event_names[kind] : "unknown";
}

const struct mf_model_event *mf_model_event_at(const struct mf_model *m, uint32_t i)
{
	uint32_t start = (m->event_pos + MF_MODEL_EVENTS - m->nevents) % MF_MODEL_EVENTS;

	return &m->events[(start + i) % MF_MODEL_EVENTS];
}

void mf_model_event(struct mf_model *m, uint64_t t_s, enum mf_model_event_kind kind,
		    const char *name, const char *id, uint64_t bytes)
{
	struct mf_model_event *e;

	if ((unsigned)kind >= MF_EV_NKINDS)
		return;
	m->event_total[kind]++;
	/* A storm of refusals in one second is one mark on a timeline, not
	 * the whole ring. */
	if (m->nevents) {
		e = &m->events[(m->event_pos + MF_MODEL_EVENTS - 1) % MF_MODEL_EVENTS];
		if (e->t_s == t_s && e->kind == (uint32_t)kind &&
		    strncmp(e->name, name ? name : "", MF_MODEL_NAME_LEN - 1) == 0) {
			e->count++;
			if (bytes > e->bytes) {
				e->bytes = bytes;
				copy_name(e->id, id);
			}
			return;
		}
	}
	e = &m->events[m->event_pos];
	m->event_pos = (m->event_pos + 1) % MF_MODEL_EVENTS;
	if (m->nevents < MF_MODEL_EVENTS)
		m->nevents++;
	memset(e, 0, sizeof(*e));
	e->t_s = t_s;
	e->kind = (uint32_t)kind;
	e->count = 1;
	e->bytes = bytes;
	copy_name(e->name, name);
	copy_name(e->id, id);
}

const struct mf_model_floor *mf_model_floor_at(const struct mf_model *m, uint32_t i)
{
	uint32_t start = (m->floor_pos + MF_MODEL_FLOORS - m->nfloors) % MF_MODEL_FLOORS;

	return &m->floors[(start + i) % MF_MODEL_FLOORS];
}

void mf_model_epoch(struct mf_model *m, uint64_t t_s)
{
	/* The window being filled mixes the old run and the new: the first
	 * window of the new run is the next one. */
	m->epoch_s = t_s - t_s % m->window_s + m->window_s;
}

/* A window's floor net of the load in flight when it was set. */
static uint64_t floor_net(const struct mf_model_floor *f)
{
	return f->floor > f->floor_load ? f->floor - f->floor_load : 0;
}

/* Least-squares slope of floor against time over windows [from, n). */
static double slope_of(const struct mf_model *m, uint32_t from, uint32_t n)
{
	double st = 0, sf = 0, stt = 0, stf = 0, k = n - from;

	if (k < 2)
		return 0;
	double t0 = (double)mf_model_floor_at(m, from)->t_s;
	for (uint32_t i = from; i < n; i++) {
		const struct mf_model_floor *f = mf_model_floor_at(m, i);
		double t = (double)f->t_s - t0, y = (double)floor_net(f);
		st += t;
		sf += y;
		stt += t * t;
		stf += t * y;
	}
	double den = k * stt - st * st;
	return den > 0 ? (k * stf - st * sf) / den : 0;
}

/* The slope over windows [from, n) with their largest rise from one window
 * to the next taken out (every later window lowered by it). */
static double steady_slope(const struct mf_model *m, uint32_t from, uint32_t n)
{
	double st = 0, sf = 0, stt = 0, stf = 0, k = n - from, jump = 0;
	uint32_t at = n;

	if (k < 2)
		return 0;
	for (uint32_t i = from + 1; i < n; i++) {
		double d = (double)floor_net(mf_model_floor_at(m, i)) -
			   (double)floor_net(mf_model_floor_at(m, i - 1));
		if (d > jump) {
			jump = d;
			at = i;
		}
	}
	double t0 = (double)mf_model_floor_at(m, from)->t_s;
	for (uint32_t i = from; i < n; i++) {
		const struct mf_model_floor *f = mf_model_floor_at(m, i);
		double t = (double)f->t_s - t0, y = (double)floor_net(f) - (i >= at ? jump : 0);
		st += t;
		sf += y;
		stt += t * t;
		stf += t * y;
	}
	double den = k * stt - st * st;
	return den > 0 ? (k * stf - st * sf) / den : 0;
}

void mf_model_leak(const struct mf_model *m, uint64_t budget, uint32_t min_windows,
		   uint64_t min_rise, struct mf_leak *out)
{
	uint32_t n = m->nfloors, from = 0;

	memset(out, 0, sizeof(*out));
	out->forecast_s = -1;
	while (from < n && mf_model_floor_at(m, from)->t_s < m->epoch_s)
		from++;
	out->windows = n - from;
	if (n - from < 2)
		return;
	out->floor_first = floor_net(mf_model_floor_at(m, from));
	out->floor_last = floor_net(mf_model_floor_at(m, n - 1));
	out->slope = slope_of(m, from, n);
	out->recent_slope = slope_of(m, from + (n - from) / 2, n);
	if (n - from < (min_windows < 3 ? 3 : min_windows))
		return;
	if (out->floor_last <= out->floor_first + min_rise)
		return;
	/* A fill-then-flat cache has its rise in the old half only; noise has
	 * no sustained rise in either. */
	if (out->slope <= 0 || out->recent_slope <= 0)
		return;
	/* The recent half must carry a real share of the rise, not a wobble:
	 * at least a quarter of the overall rate. */
	if (out->recent_slope < out->slope / 4)
		return;
	/* ...and not in one step: a cache that fills at once, late in the
	 * run, puts a single jump in the recent half, which would read as a
	 * steep rise for as long as the run had lasted before it. A leak
	 * still rises with its largest step taken out. */
	double steady = steady_slope(m, from + (n - from) / 2, n);
	if (steady <= 0 || steady < out->slope / 8)
		return;
	out->leaking = 1;
	if (budget > out->floor_last) {
		double s = (double)(budget - out->floor_last) / out->recent_slope;
		out->forecast_s = s > 1e9 ? -1 : (int64_t)s;
	} else if (budget) {
		out->forecast_s = 0;
	}
}
