/*
 * metrics.c - what the supervisor shows: per-name histograms of finished
 * scopes, the Prometheus text exposition (/metrics) and the JSON status
 * (/status).
 *
 * Exposition format: https://prometheus.io/docs/instrumenting/exposition_formats/
 * Histograms are cumulative since the supervisor started (Prometheus takes
 * rates); a restart of the program does not reset them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "supervisor/metrics.h"
#include "supervisor/model.h"
#include "supervisor/quar.h"
#include "supervisor/state.h"

const uint64_t sup_hist_bounds[SUP_HIST_BUCKETS] = {
	4ull << 10,   16ull << 10,  64ull << 10,  256ull << 10,
	1ull << 20,   4ull << 20,   16ull << 20,  64ull << 20,
	256ull << 20, 1ull << 30,   4ull << 30,   16ull << 30,
};

struct sup_hist *sup_hist_get(struct sup_state *st, const char *name)
{
	char clean[MF_SEG_NAME_LEN];

	sup_clean(clean, sizeof(clean), name[0] ? name : "(unnamed)");
	for (uint32_t i = 0; i < st->nhist; i++)
		if (strcmp(st->hist[i].name, clean) == 0)
			return &st->hist[i];
	if (st->nhist >= SUP_MAX_NAMES)
		return NULL;
	memset(&st->hist[st->nhist], 0, sizeof(st->hist[0]));
	memcpy(st->hist[st->nhist].name, clean, sizeof(clean));
	return &st->hist[st->nhist++];
}

static void bucket(uint64_t *b, uint64_t v)
{
	for (int i = 0; i < SUP_HIST_BUCKETS; i++)
		if (v <= sup_hist_bounds[i]) {
			b[i]++;
			return;
		}
}

void sup_hist_add(struct sup_state *st, const struct sup_record *r)
{
	struct sup_hist *hh = sup_hist_get(st, r->name);
	uint64_t ret = r->net > 0 ? (uint64_t)r->net : 0;

	if (!hh) {
		st->hist_dropped++;
		return;
	}
	hh->count++;
	hh->failed += r->failed != 0;
	hh->alloc_sum += r->allocated;
	hh->ret_sum += ret;
	hh->peak_sum += r->peak;
	bucket(hh->alloc_b, r->allocated);
	bucket(hh->ret_b, ret);
	bucket(hh->peak_b, r->peak);
}

struct out {
	char *buf;
	size_t len, pos;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->pos >= o->len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->pos, o->len - o->pos, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	o->pos += (size_t)n;
	if (o->pos > o->len)
		o->pos = o->len;
}

static void gauge(struct out *o, const char *name, const char *type, const char *help,
		  uint64_t v)
{
	put(o, "# HELP memfence_%s %s\n# TYPE memfence_%s %s\nmemfence_%s %llu\n", name, help,
	    name, type, name, (unsigned long long)v);
}

/* Label values: printable ASCII already (sup_clean); escape \ and ". */
static const char *esc(const char *s, char *buf, size_t len)
{
	size_t i = 0;

	for (; *s && i + 2 < len; s++) {
		if (*s == '\\' || *s == '"')
			buf[i++] = '\\';
		buf[i++] = *s;
	}
	buf[i] = '\0';
	return buf;
}

/* memory.pressure (cgroup v2 with PSI only): the kernel's averages as
 * ratios (it prints percent; Prometheus' convention is 0-1, named _ratio),
 * and its stall totals as counters in seconds. */
static void pressure(struct out *o, const struct mf_psi *p)
{
	static const char *const kind[] = {"some", "full"};

	for (int k = 0; k < 2; k++) {
		const struct mf_psi_line *l = k ? &p->full : &p->some;

		if (k && !p->has_full)
			break;
		for (int w = 0; w < 2; w++)
			put(o,
			    "# HELP memfence_memory_pressure_%s_avg%d_ratio Share (0-1) of the last %d s "
			    "in which %s stalled on memory (memory.pressure).\n"
			    "# TYPE memfence_memory_pressure_%s_avg%d_ratio gauge\n"
			    "memfence_memory_pressure_%s_avg%d_ratio %.4f\n",
			    kind[k], w ? 60 : 10, w ? 60 : 10,
			    k ? "every task of the cgroup" : "some task of the cgroup", kind[k],
			    w ? 60 : 10, kind[k], w ? 60 : 10, (w ? l->avg60 : l->avg10) / 100.0);
		put(o,
		    "# HELP memfence_memory_pressure_%s_seconds_total Time %s stalled on memory.\n"
		    "# TYPE memfence_memory_pressure_%s_seconds_total counter\n"
		    "memfence_memory_pressure_%s_seconds_total %.6f\n",
		    kind[k], k ? "every task of the cgroup" : "some task of the cgroup", kind[k],
		    kind[k], (double)l->total_us / 1e6);
	}
}

json_t *sup_psi_json(const struct mf_psi *p)
{
	json_t *o = json_object();

	for (int k = 0; k < 2; k++) {
		const struct mf_psi_line *l = k ? &p->full : &p->some;

		if (k && !p->has_full)
			break;
		json_object_set_new(o, k ? "full" : "some",
				    json_pack("{s:f,s:f,s:f,s:I}", "avg10", l->avg10, "avg60", l->avg60,
					      "avg300", l->avg300, "total_us", (json_int_t)l->total_us));
	}
	return o;
}

enum hist_kind { HIST_ALLOCATED, HIST_RETAINED, HIST_PEAK };

static void histogram(struct out *o, const struct sup_state *st, enum hist_kind kind)
{
	static const char *const names[] = {"scope_allocated_bytes", "scope_retained_bytes",
					    "scope_peak_bytes"};
	static const char *const helps[] = {
		"Bytes a finished scope allocated (A), by scope name.",
		"Bytes a finished scope left allocated (net), by scope name.",
		"Highest net bytes a finished scope held at once (its peak), by scope name."};
	const char *m = names[kind];
	char e[2 * MF_SEG_NAME_LEN];

	put(o, "# HELP memfence_%s %s\n# TYPE memfence_%s histogram\n", m, helps[kind], m);
	for (uint32_t i = 0; i < st->nhist; i++) {
		const struct sup_hist *h = &st->hist[i];
		const uint64_t *b = kind == HIST_PEAK ? h->peak_b
				    : kind == HIST_RETAINED ? h->ret_b : h->alloc_b;
		const uint64_t sum = kind == HIST_PEAK ? h->peak_sum
				     : kind == HIST_RETAINED ? h->ret_sum : h->alloc_sum;
		uint64_t cum = 0;

		esc(h->name, e, sizeof(e));
		for (int k = 0; k < SUP_HIST_BUCKETS; k++) {
			cum += b[k];
			put(o, "memfence_%s_bucket{name=\"%s\",le=\"%llu\"} %llu\n", m, e,
			    (unsigned long long)sup_hist_bounds[k], (unsigned long long)cum);
		}
		put(o, "memfence_%s_bucket{name=\"%s\",le=\"+Inf\"} %llu\n", m, e,
		    (unsigned long long)h->count);
		put(o, "memfence_%s_sum{name=\"%s\"} %llu\n", m, e, (unsigned long long)sum);
		put(o, "memfence_%s_count{name=\"%s\"} %llu\n", m, e, (unsigned long long)h->count);
	}
}

/* The model's leak figures (model.c): the heap floor's slope and forecast,
 * and what each scope name leaves behind per call. */
static void leak_metrics(struct out *o, const struct sup_state *st)
{
	const struct sup_model_status *m = &st->model;
	char e[2 * MF_SEG_NAME_LEN];

	put(o, "# HELP memfence_leak_floor_slope_bytes_per_second Slope of the live heap's floor "
	       "(least heap per window, net of the scopes in flight) since the program's start.\n"
	       "# TYPE memfence_leak_floor_slope_bytes_per_second gauge\n"
	       "memfence_leak_floor_slope_bytes_per_second %.1f\n",
	    m->floor_slope);
	gauge(o, "leak_floor_bytes", "gauge", "The live heap's floor in the last closed window.",
	      m->floor);
	gauge(o, "leak_detected", "gauge",
	      "1 when the floor keeps rising (over all windows and their recent half).",
	      (uint64_t)m->leaking);
	/* No series without a leak: a sentinel such as -1 would make an alert
	 * on "forecast < 600" fire on every healthy program. */
	put(o, "# HELP memfence_leak_forecast_seconds Seconds until the floor reaches the budget "
	       "at its recent slope; absent when no leak is detected.\n"
	       "# TYPE memfence_leak_forecast_seconds gauge\n");
	if (m->forecast_s >= 0)
		put(o, "memfence_leak_forecast_seconds %lld\n", (long long)m->forecast_s);
	put(o, "# HELP memfence_scope_retained_per_call_bytes Median net bytes the recent calls "
	       "of a scope name left behind.\n"
	       "# TYPE memfence_scope_retained_per_call_bytes gauge\n");
	for (uint32_t i = 0; i < m->nshown; i++)
		put(o, "memfence_scope_retained_per_call_bytes{name=\"%s\"} %lld\n",
		    esc(m->shown[i].name, e, sizeof(e)), (long long)m->shown[i].retained);
	put(o, "# HELP memfence_scope_leaking 1 when a scope name leaves memory behind call "
	       "after call.\n# TYPE memfence_scope_leaking gauge\n");
	for (uint32_t i = 0; i < m->nshown; i++)
		put(o, "memfence_scope_leaking{name=\"%s\"} %d\n", esc(m->shown[i].name, e, sizeof(e)),
		    m->shown[i].retains);
	put(o, "# HELP memfence_recycles_total Processes drained and replaced on purpose, by "
	       "reason.\n# TYPE memfence_recycles_total counter\n");
	for (int r = 0; r < SUP_RECYCLE_NREASONS; r++)
		put(o, "memfence_recycles_total{reason=\"%s\"} %llu\n", sup_recycle_reason_name(r),
		    (unsigned long long)st->recycle.count[r]);
	gauge(o, "recycling", "gauge", "1 while a process is being drained and replaced.",
	      (uint64_t)st->recycle.under_way);
}

/* The admission gate (gate.c): per scope name, and its wait times. */
static void gate_metrics(struct out *o, const struct sup_gate_stats *g)
{
	static const uint64_t bounds[MF_SEG_GATE_HIST] = MF_SEG_GATE_HIST_MS;
	static const struct {
		const char *name, *help;
		size_t off;
	} per[] = {
		{"gate_admitted_total", "Requests the gate admitted, by scope name.",
		 offsetof(struct sup_gate_name, admitted)},
		{"gate_waited_total", "Of those, requests admitted after waiting.",
		 offsetof(struct sup_gate_name, waited)},
		{"gate_timed_out_total", "Requests that left the queue unadmitted (deadline).",
		 offsetof(struct sup_gate_name, timed_out)},
		{"gate_too_big_total", "Requests refused at once: need above the whole budget.",
		 offsetof(struct sup_gate_name, too_big)},
		{"gate_need_bytes", "Learned need of a kind of request (0: not yet).",
		 offsetof(struct sup_gate_name, need)},
	};
	char e[2 * MF_SEG_NAME_LEN];
	uint64_t cum = 0, total = 0;

	if (!g->on)
		return;
	for (size_t k = 0; k < sizeof(per) / sizeof(per[0]); k++) {
		put(o, "# HELP memfence_%s %s\n# TYPE memfence_%s %s\n", per[k].name, per[k].help,
		    per[k].name, k == 4 ? "gauge" : "counter");
		for (uint32_t i = 0; i < g->nnames; i++)
			put(o, "memfence_%s{name=\"%s\"} %llu\n", per[k].name,
			    esc(g->names[i].name, e, sizeof(e)),
			    (unsigned long long)*(const uint64_t *)((const char *)&g->names[i] +
								   per[k].off));
	}
	put(o, "# HELP memfence_gate_queue Requests waiting at the gate now, by scope name.\n"
	       "# TYPE memfence_gate_queue gauge\n");
	for (uint32_t i = 0; i < g->nnames; i++)
		put(o, "memfence_gate_queue{name=\"%s\"} %u\n", esc(g->names[i].name, e, sizeof(e)),
		    g->names[i].queued);
	gauge(o, "gate_queue_length", "gauge", "Requests waiting at the gate now.", g->queued);
	gauge(o, "gate_admitted_bytes", "gauge", "Sum of the needs of the admitted requests.",
	      g->admitted_need);
	put(o, "# HELP memfence_gate_wait_seconds Time admitted requests waited at the gate.\n"
	       "# TYPE memfence_gate_wait_seconds histogram\n");
	for (int b = 0; b <= MF_SEG_GATE_HIST; b++)
		total += g->hist[b];
	for (int b = 0; b < MF_SEG_GATE_HIST; b++) {
		cum += g->hist[b];
		put(o, "memfence_gate_wait_seconds_bucket{le=\"%g\"} %llu\n", bounds[b] / 1000.0,
		    (unsigned long long)cum);
	}
	put(o, "memfence_gate_wait_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)total);
	{
		uint64_t ns = 0;

		for (uint32_t i = 0; i < g->nnames; i++)
			ns += g->names[i].wait_ns;
		put(o, "memfence_gate_wait_seconds_sum %.6f\nmemfence_gate_wait_seconds_count %llu\n",
		    ns / 1e9, (unsigned long long)total);
	}
}

static json_t *gate_json(const struct sup_gate_stats *g)
{
	json_t *q = json_array(), *names = json_array();

	for (uint32_t i = 0; i < g->queued && i < SUP_GATE_QUEUE_SHOWN; i++)
		json_array_append_new(q, json_pack("{s:i,s:s,s:I,s:I,s:I}", "pid", (int)g->queue[i].pid,
						   "name", g->queue[i].name, "ticket",
						   (json_int_t)g->queue[i].ticket, "need_bytes",
						   (json_int_t)g->queue[i].need, "waited_ms",
						   (json_int_t)g->queue[i].waited_ms));
	for (uint32_t i = 0; i < g->nnames; i++) {
		const struct sup_gate_name *n = &g->names[i];

		json_array_append_new(names, json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:i}", "name", n->name,
						       "need_bytes", (json_int_t)n->need, "admitted",
						       (json_int_t)n->admitted, "waited",
						       (json_int_t)n->waited, "timed_out",
						       (json_int_t)n->timed_out, "too_big",
						       (json_int_t)n->too_big, "queued", (int)n->queued));
	}
	return json_pack("{s:b,s:I,s:I,s:i,s:i,s:I,s:I,s:o,s:o}", "on", g->on, "max_wait_ms",
			 (json_int_t)g->max_wait_ms, "starve_ms", (json_int_t)g->starve_ms,
			 "queue_length", (int)g->queued, "admitted", (int)g->admitted_now,
			 "admitted_need_bytes", (json_int_t)g->admitted_need, "covered_bytes",
			 (json_int_t)g->covered, "queue", q, "names", names);
}

size_t sup_metrics_render(const struct sup_state *st, char *buf, size_t len)
{
	struct out o = {buf, len, 0};
	char e[2 * MF_SEG_NAME_LEN];

	put(&o, "# HELP memfence_build_info The memfence version serving these metrics (always 1).\n"
		"# TYPE memfence_build_info gauge\nmemfence_build_info{version=\"%s\"} 1\n",
	    MF_VERSION);
	gauge(&o, "limit_bytes", "gauge", "Effective memory limit.", st->limit);
	gauge(&o, "reserve_bytes", "gauge", "Memory kept free below the limit.", st->reserve);
	gauge(&o, "usage_bytes", "gauge", "Memory cgroup usage.", st->usage);
	gauge(&o, "working_set_bytes", "gauge", "Usage minus inactive file pages.", st->working_set);
	gauge(&o, "headroom_bytes", "gauge", "Limit minus working set.", st->headroom);
	gauge(&o, "usable_headroom_bytes", "gauge", "Limit minus reserve minus working set.",
	      st->usable);
	gauge(&o, "request_need_bytes", "gauge",
	      "Headroom a typical request needs (configured or learned p95).", st->health.need);
	if (st->psi_ok)
		pressure(&o, &st->psi);
	gauge(&o, "heap_live_bytes", "gauge", "Bytes allocated and not freed, all processes.",
	      st->heap_live);
	gauge(&o, "heap_peak_bytes", "gauge", "Highest heap_live seen.", st->heap_peak);
	gauge(&o, "allocated_bytes_total", "counter", "Bytes ever allocated.", st->allocated);
	gauge(&o, "freed_bytes_total", "counter", "Bytes ever freed.", st->freed);
	put(&o, "# HELP memfence_allocation_failures_total Allocations refused, by cause.\n"
		"# TYPE memfence_allocation_failures_total counter\n");
	for (int c = 0; c < MF_FAIL_NCAUSES; c++)
		put(&o, "memfence_allocation_failures_total{cause=\"%s\"} %llu\n", sup_fail_name(c),
		    (unsigned long long)st->failed[c]);
	gauge(&o, "thread_start_failures_total", "counter", "pthread_create failures.",
	      st->threads_failed);
	gauge(&o, "scopes_in_flight", "gauge", "Scopes (requests, tasks) open now.",
	      st->scopes_in_flight);
	gauge(&o, "scopes_ended_total", "counter", "Scopes finished.", st->scopes_ended);
	histogram(&o, st, HIST_ALLOCATED);
	histogram(&o, st, HIST_RETAINED);
	histogram(&o, st, HIST_PEAK);
	leak_metrics(&o, st);
	gate_metrics(&o, &st->gate);
	gauge(&o, "scope_names_dropped_total", "counter",
	      "Finished scopes not in the histograms (too many names).", st->hist_dropped);
	gauge(&o, "oom_kills_total", "counter", "OOM kills in the cgroup since memfence started.",
	      st->oom_kill - st->oom_kill_at_start);
	gauge(&o, "restarts_total", "counter", "Times the program was restarted.", st->restarts);
	put(&o, "# HELP memfence_child_exits_total Ends of the program, by cause.\n"
		"# TYPE memfence_child_exits_total counter\n");
	for (int c = SUP_CAUSE_EXIT; c < SUP_CAUSE_LOST; c++)
		put(&o, "memfence_child_exits_total{cause=\"%s\"} %llu\n", sup_cause_name(c),
		    (unsigned long long)st->exits[c]);
	gauge(&o, "child_up", "gauge", "1 while the program runs (not stopped).",
	      (uint64_t)(st->child_up && !st->child_stopped));
	gauge(&o, "ready", "gauge", "1 when /readyz answers 200.", (uint64_t)st->health.ready);
	gauge(&o, "live", "gauge", "1 when /livez answers 200.", (uint64_t)st->health.live);
	gauge(&o, "window_scopes_ended", "gauge", "Scopes ended in the liveness window.",
	      st->health.window_ended);
	gauge(&o, "window_scopes_failed", "gauge",
	      "Scopes ended with a refused allocation in the liveness window.", st->health.window_failed);
	gauge(&o, "reports_written_total", "counter", "Post-mortem reports written.",
	      st->reports_written);
	if (st->quarantine_on) {
		gauge(&o, "quarantine_recorded_total", "counter",
		      "Deaths of scopes with an id recorded in the quarantine by the supervisor.",
		      st->quarantine_recorded);
		gauge(&o, "quarantine_errors_total", "counter",
		      "Deaths the supervisor could not record (store errors).",
		      st->quarantine_errors + st->quarantine_dropped);
	}
	gauge(&o, "supervisor_resident_bytes", "gauge", "Resident memory of the supervisor.",
	      st->sup_rss);
	gauge(&o, "supervisor_oom_protected", "gauge",
	      "1 when the supervisor's oom_score_adj -1000 held.", (uint64_t)(st->oom_adj_held > 0));
	put(&o, "# HELP memfence_process_heap_live_bytes Heap of each process of the program.\n"
		"# TYPE memfence_process_heap_live_bytes gauge\n");
	for (uint32_t i = 0; i < st->nprocs; i++)
		if (st->procs[i].alive)
			put(&o, "memfence_process_heap_live_bytes{pid=\"%d\",comm=\"%s\"} %llu\n",
			    st->procs[i].pid, esc(st->procs[i].comm, e, sizeof(e)),
			    (unsigned long long)st->procs[i].live);
	return o.pos;
}

json_t *sup_status_json(const struct sup_state *st)
{
	json_t *root = json_object(), *a, *o;
	uint64_t now = sup_real_ns();

	json_object_set_new(root, "ready", json_boolean(st->health.ready));
	json_object_set_new(root, "ready_reason", json_string(st->health.ready_reason));
	json_object_set_new(root, "serving", json_boolean(st->serving));
	json_object_set_new(root, "serving_said", json_string(st->serving_said));
	json_object_set_new(root, "live", json_boolean(st->health.live));
	json_object_set_new(root, "live_reason", json_string(st->health.live_reason));
	json_object_set_new(root, "memory",
			    json_pack("{s:I,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:i,s:I}", "limit",
				      (json_int_t)st->limit, "limit_from", st->limit_from,
				      "reserve", (json_int_t)st->reserve, "usage",
				      (json_int_t)st->usage, "working_set",
				      (json_int_t)st->working_set, "headroom",
				      (json_int_t)st->headroom, "usable_headroom",
				      (json_int_t)st->usable, "request_need", (json_int_t)st->health.need,
				      "cgroup", st->cgroup, "cgroup_version", st->cgroup_version,
				      "oom_kills", (json_int_t)(st->oom_kill - st->oom_kill_at_start)));
	json_object_set_new(json_object_get(root, "memory"), "container_check",
			    json_integer((json_int_t)st->container_min));
	json_object_set_new(root, "request_need_learned", json_boolean(st->health.need_learned));
	json_object_set_new(json_object_get(root, "memory"), "pressure",
			    st->psi_ok ? sup_psi_json(&st->psi) : json_null());
	o = json_object();
	for (int c = 0; c < MF_FAIL_NCAUSES; c++)
		json_object_set_new(o, sup_fail_name(c), json_integer((json_int_t)st->failed[c]));
	json_object_set_new(o, "thread_start", json_integer((json_int_t)st->threads_failed));
	json_object_set_new(root, "heap",
			    json_pack("{s:b,s:s,s:I,s:I,s:I,s:I,s:o,s:I,s:I}", "accounting",
				      st->accounting, "segment", st->segment, "live",
				      (json_int_t)st->heap_live, "peak", (json_int_t)st->heap_peak,
				      "allocated", (json_int_t)st->allocated, "freed",
				      (json_int_t)st->freed, "failures", o, "scopes_ended",
				      (json_int_t)st->scopes_ended, "scopes_in_flight",
				      (json_int_t)st->scopes_in_flight));
	a = json_array();
	for (uint32_t i = 0; i < st->nscopes; i++)
		json_array_append_new(a, sup_scope_json(&st->scopes[i], now));
	json_object_set_new(root, "in_flight", a);
	a = json_array();
	for (uint32_t i = 0; i < st->nprocs; i++) {
		const struct sup_proc *p = &st->procs[i];
		char comm[17];

		sup_clean(comm, sizeof(comm), p->comm);
		json_array_append_new(a, json_pack("{s:i,s:i,s:s,s:b,s:I,s:I,s:I,s:i}", "pid",
						   (int)p->pid, "ppid", (int)p->ppid, "comm", comm,
						   "alive", p->alive, "live", (json_int_t)p->live,
						   "peak", (json_int_t)p->peak, "failed",
						   (json_int_t)p->failed, "scopes_open",
						   (int)p->scopes_open));
	}
	json_object_set_new(root, "processes", a);
	json_object_set_new(root, "child",
			    json_pack("{s:i,s:b,s:b,s:I,s:I}", "pid", (int)st->child_pid, "up",
				      st->child_up && !st->child_stopped, "stopped",
				      st->child_stopped != 0, "restarts", (json_int_t)st->restarts,
				      "started", (json_int_t)st->child_started_s));
	json_object_set_new(root, "supervisor",
			    json_pack("{s:i,s:b,s:b,s:b,s:s,s:b,s:I,s:I}", "pid", (int)st->sup_pid,
				      "pid1", st->pid1, "subreaper", st->subreaper, "oom_score_adj_held",
				      st->oom_adj_held > 0, "oom_score_adj_note", st->oom_adj_note,
				      "memory_locked", st->memory_locked,
				      "resident_bytes", (json_int_t)st->sup_rss, "started",
				      (json_int_t)st->started_s));
	json_object_set_new(root, "gate", gate_json(&st->gate));
	json_object_set_new(root, "quarantine",
			    json_pack("{s:b,s:I,s:I,s:I}", "on", st->quarantine_on, "recorded",
				      (json_int_t)st->quarantine_recorded, "errors",
				      (json_int_t)st->quarantine_errors, "dropped",
				      (json_int_t)st->quarantine_dropped));
	json_object_set_new(root, "model", sup_model_status_json(&st->model));
	o = json_object();
	for (int r = 0; r < SUP_RECYCLE_NREASONS; r++)
		json_object_set_new(o, sup_recycle_reason_name(r), json_integer((json_int_t)st->recycle.count[r]));
	json_object_set_new(root, "recycle",
			    json_pack("{s:b,s:b,s:b,s:i,s:s,s:I,s:o}", "on", st->recycle.on,
				      "under_way", st->recycle.under_way, "whole_program", st->recycle.whole,
				      "pid", (int)st->recycle.pid, "reason", st->recycle.reason,
				      "threshold_s", (json_int_t)st->recycle.threshold_s, "total", o));
	return root;
}
