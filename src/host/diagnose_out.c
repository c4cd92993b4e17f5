/*
 * diagnose_out.c - a diagnosis for a person (text) and for programs (JSON).
 *
 * The sentences are the evidence: each names a figure a service owner can
 * check elsewhere (/status, /metrics, `memfence stat`, a post-mortem).
 */
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "base/size.h"
#include "host/diagnose.h"

#define SZ(v, b) mf_size_format((v), (b), sizeof(b))

static char *dur(int64_t s, char *buf, size_t len)
{
	if (s < 0)
		snprintf(buf, len, "never");
	else if (s < 120)
		snprintf(buf, len, "%llds", (long long)s);
	else if (s < 7200)
		snprintf(buf, len, "%.1f min", (double)s / 60);
	else if (s < 172800)
		snprintf(buf, len, "%.1f h", (double)s / 3600);
	else
		snprintf(buf, len, "%.1f days", (double)s / 86400);
	return buf;
}

static char *clock_of(uint64_t t_s, char *buf, size_t len)
{
	time_t t = (time_t)t_s;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%H:%M:%S UTC", &tm);
	return buf;
}

struct lines {
	char (*l)[MF_DIAG_LINE];
	unsigned n, max;
};

__attribute__((format(printf, 2, 3))) static void say(struct lines *o, const char *fmt, ...)
{
	va_list ap;

	if (o->n >= o->max)
		return;
	va_start(ap, fmt);
	vsnprintf(o->l[o->n++], MF_DIAG_LINE, fmt, ap);
	va_end(ap);
}

static unsigned pct(uint64_t a, uint64_t b)
{
	return b ? (unsigned)((double)a * 100 / (double)b + 0.5) : 0;
}

static void ev_leak(const struct mf_diag *d, struct lines *o)
{
	const struct mf_leak *lk = &d->leak;
	char a[32], b[32], c[32], t[32];

	if (lk->windows >= 2)
		say(o, "the live heap's floor (the least it held, less what the requests in flight "
		       "then held) went from %s to %s over %u windows, %s/s (%s/s in the recent half)",
		    SZ(lk->floor_first, a), SZ(lk->floor_last, b), lk->windows,
		    SZ(lk->slope > 0 ? (uint64_t)lk->slope : 0, c),
		    SZ(lk->recent_slope > 0 ? (uint64_t)lk->recent_slope : 0, t));
	if (lk->leaking && lk->forecast_s == 0)
		say(o, "the floor is already at the budget (%s): every request now competes with the leak",
		    SZ(d->budget, a));
	else if (lk->leaking && lk->forecast_s > 0)
		say(o, "at this rate the floor reaches the budget (%s) in about %s", SZ(d->budget, a),
		    dur(lk->forecast_s, t, sizeof(t)));
	else if (!lk->leaking)
		say(o, "the floor's rise is not yet steady enough to forecast (%u windows)", lk->windows);
	for (uint32_t i = 0; i < d->nretainers; i++) {
		const struct mf_diag_retainer *r = &d->retainers[i];

		if (r->slow)
			say(o, "%s keeps %s per call (the mean over its calls: less than one call's "
			       "noise, but it adds up; its median peak is %s) over %llu calls: %s "
			       "retained in all",
			    r->name, SZ((uint64_t)r->mean_retained, a), SZ(r->p50_peak, b),
			    (unsigned long long)r->calls, SZ((uint64_t)r->retained_sum, c));
		else
			say(o, "%s keeps %s per call (median of its recent calls; its median peak is "
			       "%s) over %llu calls: %s retained in all",
			    r->name, SZ((uint64_t)r->median_retained, a), SZ(r->p50_peak, b),
			    (unsigned long long)r->calls,
			    SZ(r->retained_sum > 0 ? (uint64_t)r->retained_sum : 0, c));
	}
	if (d->nretainers == 0)
		say(o, "no scope name keeps memory per call: the growth is outside named scopes "
		       "(module state, caches, threads) — a profile's live view shows where");
}

double mf_diag_big_ratio(const struct mf_diag_big *x)
{
	return x->p95 ? (double)(x->asked > x->peak ? x->asked : x->peak) / (double)x->p95 : 0.0;
}

const char *mf_diag_rule_clause(uint32_t rule)
{
	switch (rule) {
	case MF_RULE_BUDGET: return "at its own budget";
	case MF_RULE_GATE: return "by the admission gate, past its need while the memory was "
				  "promised to others";
	case MF_RULE_PRESSURE: return "under memory pressure, as the largest in flight";
	case MF_RULE_HEAP: return "at the process heap limit";
	case MF_RULE_ALLOC: return "by the allocator (the process rlimit)";
	case MF_RULE_CONTAINER: return "at the container's line";
	case MF_RULE_FAULT: return "by fault injection";
	default: return "";
	}
}

static void ev_oversized(const struct mf_diag *d, struct lines *o)
{
	char a[32], b[32], c[32], e[32], t[32];

	for (uint32_t i = 0; i < d->noversized && o->n + 2 < o->max; i++) {
		const struct mf_diag_big *x = &d->big[i];
		char ratio[48] = "", why[200] = "";

		if (x->p95) {
			double r = mf_diag_big_ratio(x);

			snprintf(ratio, sizeof(ratio), ", %.*fx the p95 of its name", r < 10 ? 1 : 0, r);
		}
		if (x->rule && x->need)
			snprintf(why, sizeof(why), "; refused %s (its need %s), asking for %s",
				 mf_diag_rule_clause(x->rule), SZ(x->need, e), SZ(x->asked, a));
		else if (x->rule)
			snprintf(why, sizeof(why), "; refused %s, asking for %s", mf_diag_rule_clause(x->rule),
				 SZ(x->asked, a));
		say(o, "%s id %s at %s: %s %s%s (typical of its name: p50 %s, p95 %s)%s%s%s",
		    x->name, x->id[0] ? x->id : "-", clock_of(x->t_s, t, sizeof(t)),
		    x->refused ? "refused after reaching" : "needed", SZ(x->peak, c), ratio, SZ(x->p50, b),
		    SZ(x->p95, e), why, x->over_budget ? "; more than the whole budget" : "",
		    x->at_death ? "; in flight when the program died" : "");
	}
	if (d->refused_ordinary)
		say(o, "besides, %llu allocation refusal(s) hit scopes of an ordinary size",
		    (unsigned long long)d->refused_ordinary);
	else
		say(o, "no scope of an ordinary size was refused: the others were served");
}

static char *wait_ms(uint64_t ms, char *buf, size_t len)
{
	if (ms == UINT64_MAX)
		snprintf(buf, len, "over 10 s");
	else
		snprintf(buf, len, "under %llu ms", (unsigned long long)ms);
	return buf;
}

/* The admission gate's part: what the load became instead of failures. */
static void ev_gate(const struct mf_diag *d, struct lines *o)
{
	char a[32], b[32], t[32];

	if (d->gate_waited + d->gate_timed_out == 0)
		return;
	say(o, "%llu request(s) waited at the admission gate for memory (p50 %s, p99 %s); %llu "
	       "gave up waiting (timed out: RESOURCE_EXHAUSTED, 503 or a task retried)",
	    (unsigned long long)d->gate_waited, wait_ms(d->gate_p50_ms, a, sizeof(a)),
	    wait_ms(d->gate_p99_ms, b, sizeof(b)), (unsigned long long)d->gate_timed_out);
	if (d->gate_full_n)
		say(o, "while requests waited, %u were admitted at once (up to %u waiting, at %s): "
		       "the room the gate has for requests holds about %u of them",
		    d->gate_full_n, d->gate_queue_max, clock_of(d->gate_queue_t_s, t, sizeof(t)),
		    d->gate_full_n);
	if (d->gate_now)
		say(o, "now: %u request(s) waiting at the gate, %u admitted", d->gate_queue_now,
		    d->gate_admitted_now);
}

static void ev_aggregate(const struct mf_diag *d, struct lines *o)
{
	char a[32], b[32], c[32], t[32];

	if (d->agg_n)
		say(o, "%s: %u scopes were in flight%s, holding %s together, %u%% of the budget (%s); "
		       "the largest held %s: none was abnormal",
		    clock_of(d->agg_t_s, t, sizeof(t)), d->agg_n,
		    d->agg_at_death ? " when the program died" : "", SZ(d->agg_load, a),
		    pct(d->agg_load, d->budget), SZ(d->budget, b), SZ(d->agg_top, c));
	/* Under the gate, what it admitted at once is what fitted: the
	 * budget's quotient ignores what the program holds besides requests
	 * (and the gate's own line), and would contradict it. */
	if (d->need_p95 && d->gate_full_n && d->gate_full_n < d->fit)
		say(o, "a typical scope needs %s (p95; p50 %s): the budget alone would hold about "
		       "%llu, but with what the program holds besides requests the gate fitted "
		       "about %u at once; cap the workers or concurrency near %u, or give the "
		       "container more memory",
		    SZ(d->need_p95, a), SZ(d->need_p50, b), (unsigned long long)d->fit,
		    d->gate_full_n, d->gate_full_n);
	else if (d->need_p95)
		say(o, "a typical scope needs %s (p95; p50 %s): the budget holds about %llu at once — "
		       "more concurrent requests than that run out of memory; cap the workers or "
		       "concurrency near %llu, or give the container more memory",
		    SZ(d->need_p95, a), SZ(d->need_p50, b), (unsigned long long)d->fit,
		    (unsigned long long)(d->fit ? d->fit : 1));
	ev_gate(d, o);
	if (d->refused_ordinary)
		say(o, "%llu allocation refusal(s) hit scopes of an ordinary size",
		    (unsigned long long)d->refused_ordinary);
	if (d->oom_kills)
		say(o, "the kernel OOM-killed the program %llu time(s)", (unsigned long long)d->oom_kills);
	if (d->weak[MF_VERDICT_AGGREGATE])
		say(o, "memory ran out with no leak, no oversized scope and no outside memory found: "
		       "the evidence is thin (short history, or scopes not named)");
}

static void ev_outside(const struct mf_diag *d, struct lines *o)
{
	char a[32], b[32], c[32], e[32], t[32];

	say(o, "%s: the container's working set was %s (%u%% of the %s limit) while the live heap "
	       "was %s: %s outside the heap%s",
	    clock_of(d->outside_t_s, t, sizeof(t)), SZ(d->outside_ws, a), pct(d->outside_ws, d->limit),
	    SZ(d->limit, b), SZ(d->outside_heap, c), SZ(d->outside, e),
	    d->outside_at_death ? ", just before the program died" : "");
	say(o, "memfence accounts the heap only: shared memory (/dev/shm, memfd, SysV), tmpfs files, "
	       "page cache that cannot be reclaimed and other processes in the container are "
	       "invisible to it, and no budget can refuse them");
	say(o, "this is not a heap leak: the live heap's floor %s",
	    d->holds[MF_VERDICT_LEAK] ? "rose too (see leak)" : "did not keep rising");
	if (d->oom_kills)
		say(o, "the kernel OOM-killed the program %llu time(s)", (unsigned long long)d->oom_kills);
}

static void ev_healthy(const struct mf_diag *d, struct lines *o)
{
	char a[32], b[32], c[32], t[32];

	/* A crash is a death too, only not one of memory: never "no death"
	 * beside its post-mortem. */
	if (d->deaths)
		say(o, "%llu scopes of %llu name(s) over %s: no allocation refused, no OOM kill; "
		       "%llu death(s) not of memory (see the post-mortems)",
		    (unsigned long long)d->scopes, (unsigned long long)d->names,
		    dur((int64_t)(d->to_s - d->from_s), t, sizeof(t)), (unsigned long long)d->deaths);
	else
		say(o, "%llu scopes of %llu name(s) over %s: no allocation refused, no OOM kill, no death",
		    (unsigned long long)d->scopes, (unsigned long long)d->names,
		    dur((int64_t)(d->to_s - d->from_s), t, sizeof(t)));
	say(o, "the live heap peaked at %s (%u%% of the %s budget); the working set at %s",
	    SZ(d->heap_high, a), pct(d->heap_high, d->budget), SZ(d->budget, b), SZ(d->ws_high, c));
	if (d->leak.windows >= 2)
		say(o, "the live heap's floor went from %s to %s over %u windows: no steady rise",
		    SZ(d->leak.floor_first, a), SZ(d->leak.floor_last, b), d->leak.windows);
	if (d->need_p95)
		say(o, "a typical scope needs %s (p95): the budget holds about %llu at once",
		    SZ(d->need_p95, a), (unsigned long long)d->fit);
	ev_gate(d, o);
}

unsigned mf_diag_evidence(const struct mf_diag *d, enum mf_verdict v, char lines[][MF_DIAG_LINE],
			  unsigned max)
{
	struct lines o = {lines, 0, max};

	switch (v) {
	case MF_VERDICT_LEAK: ev_leak(d, &o); break;
	case MF_VERDICT_OVERSIZED: ev_oversized(d, &o); break;
	case MF_VERDICT_AGGREGATE: ev_aggregate(d, &o); break;
	case MF_VERDICT_OUTSIDE: ev_outside(d, &o); break;
	case MF_VERDICT_HEALTHY: ev_healthy(d, &o); break;
	default: break;
	}
	return o.n;
}

static const char *const headline[MF_VERDICT_N] = {
	"a leak: memory is kept call after call and the heap's floor rises",
	"aggregate load: many ordinary requests at once need more than the container has",
	"oversized requests: single requests need far more than the others",
	"memory outside the heap filled the container (not a heap leak)",
	"healthy: nothing points at a memory problem",
};

void mf_diag_print(FILE *f, const struct mf_diag *d)
{
	char lines[MF_DIAG_LINES][MF_DIAG_LINE], a[32], b[32], t[32];

	fprintf(f, "verdict:");
	for (uint32_t i = 0; i < d->nverdicts; i++)
		fprintf(f, "%s %s", i ? "," : "", mf_verdict_name(d->verdict[i]));
	fprintf(f, "\n");
	for (uint32_t i = 0; i < d->nverdicts; i++) {
		enum mf_verdict v = d->verdict[i];
		unsigned n = mf_diag_evidence(d, v, lines, MF_DIAG_LINES);

		fprintf(f, "\n%s%s\n", headline[v], d->weak[v] ? " (weak evidence)" : "");
		for (unsigned k = 0; k < n; k++)
			fprintf(f, "  - %s\n", lines[k]);
	}
	fprintf(f, "\nbased on %llu scopes of %llu name(s) over %s; limit %s, budget %s; "
		   "%llu refusal(s), %llu OOM kill(s), %llu post-mortem(s)\n",
		(unsigned long long)d->scopes, (unsigned long long)d->names,
		dur((int64_t)(d->to_s - d->from_s), t, sizeof(t)), SZ(d->limit, a), SZ(d->budget, b),
		(unsigned long long)d->refused, (unsigned long long)d->oom_kills,
		(unsigned long long)d->deaths);
}

static json_t *summary(const struct mf_diag *d, enum mf_verdict v)
{
	char lines[MF_DIAG_LINES][MF_DIAG_LINE];
	unsigned n = mf_diag_evidence(d, v, lines, MF_DIAG_LINES);
	json_t *a = json_array();

	for (unsigned k = 0; k < n; k++)
		json_array_append_new(a, json_string(lines[k]));
	return a;
}

static json_t *big_json(const struct mf_diag_big *x)
{
	return json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:b,s:b,s:b,s:s,s:I,s:I,s:b}", "name", x->name,
			 "id", x->id, "peak", (json_int_t)x->peak, "p50", (json_int_t)x->p50, "p95",
			 (json_int_t)x->p95, "t", (json_int_t)x->t_s, "refused", x->refused,
			 "at_death", x->at_death, "over_budget", x->over_budget, "rule",
			 mf_model_rule_name(x->rule), "asked", (json_int_t)x->asked, "need",
			 (json_int_t)x->need, "outgrew", x->outgrew);
}

json_t *mf_diag_json(const struct mf_diag *d)
{
	json_t *root = json_object(), *verdict = json_array(), *ev = json_object(), *o, *a;

	for (uint32_t i = 0; i < d->nverdicts; i++)
		json_array_append_new(verdict, json_string(mf_verdict_name(d->verdict[i])));
	for (uint32_t i = 0; i < d->nverdicts; i++) {
		enum mf_verdict v = d->verdict[i];

		o = json_object();
		json_object_set_new(o, "summary", summary(d, v));
		json_object_set_new(o, "weak", json_boolean(d->weak[v]));
		switch (v) {
		case MF_VERDICT_LEAK:
			a = json_array();
			for (uint32_t k = 0; k < d->nretainers; k++) {
				const struct mf_diag_retainer *r = &d->retainers[k];
				json_array_append_new(
					a, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:b}", "name", r->name,
						     "calls", (json_int_t)r->calls, "median_retained",
						     (json_int_t)r->median_retained, "retained_total",
						     (json_int_t)r->retained_sum, "p50_peak",
						     (json_int_t)r->p50_peak, "mean_retained",
						     (json_int_t)r->mean_retained, "slow", r->slow));
			}
			json_object_set_new(o, "names", a);
			json_object_set_new(o, "floor",
					    json_pack("{s:b,s:i,s:I,s:I,s:f,s:f,s:I}", "rising",
						      d->leak.leaking, "windows", (int)d->leak.windows,
						      "first", (json_int_t)d->leak.floor_first, "last",
						      (json_int_t)d->leak.floor_last, "slope",
						      d->leak.slope, "recent_slope", d->leak.recent_slope,
						      "forecast_s", (json_int_t)d->leak.forecast_s));
			break;
		case MF_VERDICT_OVERSIZED:
			a = json_array();
			for (uint32_t k = 0; k < d->noversized; k++)
				json_array_append_new(a, big_json(&d->big[k]));
			json_object_set_new(o, "scopes", a);
			json_object_set_new(o, "refused_ordinary",
					    json_integer((json_int_t)d->refused_ordinary));
			break;
		case MF_VERDICT_AGGREGATE:
			a = json_array();
			for (uint32_t k = d->noversized; k < d->nbig; k++)
				json_array_append_new(a, big_json(&d->big[k]));
			json_object_set_new(o, "peak",
					    json_pack("{s:I,s:i,s:I,s:I,s:b}", "t", (json_int_t)d->agg_t_s,
						      "in_flight", (int)d->agg_n, "bytes",
						      (json_int_t)d->agg_load, "largest",
						      (json_int_t)d->agg_top, "at_death",
						      d->agg_at_death));
			json_object_set_new(o, "need_p50", json_integer((json_int_t)d->need_p50));
			json_object_set_new(o, "need_p95", json_integer((json_int_t)d->need_p95));
			json_object_set_new(o, "fit", json_integer((json_int_t)d->fit));
			json_object_set_new(o, "refused_ordinary",
					    json_integer((json_int_t)d->refused_ordinary));
			json_object_set_new(o, "refused_scopes", a);
			json_object_set_new(
				o, "gate",
				json_pack("{s:I,s:I,s:o,s:o,s:i,s:i,s:I,s:o,s:o}", "waited",
					  (json_int_t)d->gate_waited, "timed_out",
					  (json_int_t)d->gate_timed_out, "wait_p50_ms",
					  d->gate_p50_ms == UINT64_MAX ? json_null()
								       : json_integer((json_int_t)d->gate_p50_ms),
					  "wait_p99_ms",
					  d->gate_p99_ms == UINT64_MAX ? json_null()
								       : json_integer((json_int_t)d->gate_p99_ms),
					  "concurrency", (int)d->gate_full_n, "queue_max",
					  (int)d->gate_queue_max, "queue_t", (json_int_t)d->gate_queue_t_s,
					  "queue_now",
					  d->gate_now ? json_integer(d->gate_queue_now) : json_null(),
					  "admitted_now",
					  d->gate_now ? json_integer(d->gate_admitted_now) : json_null()));
			break;
		case MF_VERDICT_OUTSIDE:
			json_object_set_new(o, "t", json_integer((json_int_t)d->outside_t_s));
			json_object_set_new(o, "working_set", json_integer((json_int_t)d->outside_ws));
			json_object_set_new(o, "heap_live", json_integer((json_int_t)d->outside_heap));
			json_object_set_new(o, "outside", json_integer((json_int_t)d->outside));
			json_object_set_new(o, "at_death", json_boolean(d->outside_at_death));
			break;
		default:
			break;
		}
		json_object_set_new(ev, mf_verdict_name(v), o);
	}
	json_object_set_new(root, "memfence_diagnose", json_integer(1));
	json_object_set_new(root, "verdict", verdict);
	json_object_set_new(root, "problem", json_boolean(mf_diag_problem(d)));
	json_object_set_new(root, "evidence", ev);
	json_object_set_new(
		root, "context",
		json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
			  "limit",
			  (json_int_t)d->limit, "budget", (json_int_t)d->budget, "from",
			  (json_int_t)d->from_s, "to", (json_int_t)d->to_s, "scopes",
			  (json_int_t)d->scopes, "names", (json_int_t)d->names, "refused",
			  (json_int_t)d->refused, "oom_kills", (json_int_t)d->oom_kills, "deaths",
			  (json_int_t)d->deaths, "restarts", (json_int_t)d->restarts, "heap_high",
			  (json_int_t)d->heap_high, "working_set_high", (json_int_t)d->ws_high,
			  "need_p50", (json_int_t)d->need_p50, "need_p95", (json_int_t)d->need_p95,
			  "outside_high", (json_int_t)d->outside, "gate_waited",
			  (json_int_t)d->gate_waited, "gate_timed_out", (json_int_t)d->gate_timed_out));
	return root;
}
