/*
 * model.c - the supervisor's side of the model of the program's memory
 * (host/model.h): feed it, save it, say what it holds in /status.
 *
 * Every finished scope (the ring of the stats segment) and every sample
 * (heap, scopes in flight, working set) goes in; deaths and restarts are
 * told apart from the counters of the state and go in as events. The model
 * is saved with a summary of the run ("run": the plan and where reports
 * go) through a temporary file and rename(2), every SAVE_EVERY_S seconds and
 * at the end: `memfence diagnose` reads it while the run goes on, after it
 * ended and after the container died.
 *
 * Memory: one static model; the JSON of a save is freed at once, like the
 * journal's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/file.h"
#include "host/model.h"
#include "host/model_json.h"
#include "host/msg.h"
#include "supervisor/model.h"
#include "supervisor/report.h"
#include "supervisor/seg.h"
#include "supervisor/state.h"

#define SAVE_EVERY_S 2

/* Leak verdict thresholds, as `memfence diagnose` uses them. */
#define LEAK_MIN_WINDOWS 6
#define LEAK_MIN_RISE (4ull << 20)
#define RETAIN_MIN (64ull << 10)     /* retained per call below this is noise */

static struct sup_model {
	struct mf_model m;
	int on;
	int in_state_dir;            /* the file outlives the run */
	char path[MF_PATH_MAX];
	char report_dir[MF_PATH_MAX];
	char state_dir[MF_PATH_MAX];
	uint64_t last_save_s;
	/* Ring records from this index on are not in the model yet: a live
	 * diagnosis adds them from the segment (the model lags a save). */
	uint64_t ring_next;
	/* Counters of the state at the previous sample, to see events. */
	uint64_t oom_kill, restarts, ended;
	uint64_t working_set;
	/* The gate's counters at the previous sample fed to the model. */
	uint64_t gate_waited, gate_timed_out, gate_hist[MF_MODEL_GATE_HIST];
	int primed;
	int frozen;                  /* the program is being stopped */
} SM;

/* Go on from the model a previous run left in the state directory. */
static void load_previous(uint64_t window_s)
{
	static struct mf_model prev;
	char err[160];
	json_t *j;

	if (access(SM.path, F_OK) != 0)
		return;
	/* Bounded and regular: a FIFO here would hold the start for good. */
	j = mf_json_load_file(SM.path, MF_FILE_MAX_MODEL, 0, err, sizeof(err));
	if (!j || mf_model_from_json(j, &prev, err, sizeof(err)) != 0) {
		mf_warn("the model in %s is unreadable (%s): starting a new one", SM.path, err);
		json_decref(j);
		return;
	}
	json_decref(j);
	/* Windows of another length would make the floor's slope a lie. */
	if (prev.window_s != window_s)
		prev.nfloors = prev.floor_pos = 0;
	prev.cur_open = 0;
	SM.m = prev;
}

void sup_model_start(struct sup_state *st, const char *state_dir, const char *report_dir,
		     uint64_t window_s)
{
	static int started;

	/* Zero already at the first start (see sup_run). */
	if (started) {
		memset(&SM, 0, sizeof(SM));
		mf_model_init(&SM.m, window_s);
	} else {
		mf_model_init_zeroed(&SM.m, window_s);
	}
	started = 1;
	window_s = SM.m.window_s;
	SM.on = 1;
	snprintf(SM.report_dir, sizeof(SM.report_dir), "%s", report_dir ? report_dir : "");
	snprintf(SM.state_dir, sizeof(SM.state_dir), "%s", state_dir ? state_dir : "");
	if (state_dir) {
		snprintf(SM.path, sizeof(SM.path), "%s/%s", state_dir, MF_MODEL_FILE);
		SM.in_state_dir = 1;
		load_previous(window_s);
	} else if (st->segment[0]) {
		mf_model_path_for_segment(st->segment, SM.path, sizeof(SM.path));
	}
	snprintf(st->model.file, sizeof(st->model.file), "%s", SM.path);
	st->model.forecast_s = -1;
}

void sup_model_record(const struct sup_record *r)
{
	char name[MF_SEG_NAME_LEN], id[MF_SEG_NAME_LEN];
	struct mf_model_why why = {
		.rule = r->refused_rule, .asked = r->refused_asked, .need = r->refused_need};

	if (!SM.on)
		return;
	/* Names and ids come from programs: keep them valid in JSON. */
	sup_clean(name, sizeof(name), r->name);
	sup_clean(id, sizeof(id), r->id);
	mf_model_scope_why(&SM.m, name, id, r->peak, r->net, r->failed, r->end_ns / 1000000000u,
			   &why);
	if (r->index + 1 > SM.ring_next)
		SM.ring_next = r->index + 1;
}

uint64_t sup_model_need(const char *name, double q, uint64_t min_count)
{
	char clean[MF_SEG_NAME_LEN];

	if (!SM.on)
		return 0;
	if (!name)
		return mf_model_need(&SM.m, NULL, q, min_count);
	/* Cleaned as sup_model_record cleans it, so that the names meet. */
	sup_clean(clean, sizeof(clean), name);
	return mf_model_need(&SM.m, clean[0] ? clean : "(unnamed)", q, min_count);
}

static uint64_t ended_total(const struct sup_state *st)
{
	return st->exits[SUP_CAUSE_EXIT] + st->exits[SUP_CAUSE_SIGKILL] +
	       st->exits[SUP_CAUSE_SIGNAL];
}

/*
 * What the heap's floor may reach before memory runs out: the budget, less
 * what lies outside the heap and does not go away (the interpreter, its
 * libraries, stacks). Two walls, the nearer one counts: the container's
 * (its working set beyond the heap of all processes) and the rlimit of the
 * process nearest its own (what the kernel counts for it beyond the heap
 * figures; its heap is taken as the whole program's, the sum, which errs
 * on the early side for a pre-fork server).
 */
static uint64_t leak_target(const struct sup_state *st)
{
	uint64_t target = st->budget, out;

	if (!target)
		return 0;
	out = st->working_set > st->heap_live ? st->working_set - st->heap_live : 0;
	if (st->working_set && out < target)
		target = st->budget - out;
	for (uint32_t i = 0; i < st->nprocs; i++) {
		const struct sup_proc *p = &st->procs[i];

		if (p->pid != st->rlimit_pid || !p->alive || !st->rlimit_used)
			continue;
		out = st->rlimit_used > p->live ? st->rlimit_used - p->live : 0;
		if (out < st->budget && st->budget - out < target)
			target = st->budget - out;
	}
	return target;
}

static int cmp_shown(const void *a, const void *b)
{
	const struct sup_model_name *x = a, *y = b;

	if (x->retains != y->retains)
		return y->retains - x->retains;
	return x->retained < y->retained ? 1 : x->retained > y->retained ? -1 : 0;
}

/* The names that retain most (those that leak first), for /status and
 * /metrics. */
static void names_shown(struct sup_model_status *ms)
{
	static struct sup_model_name all[MF_MODEL_NAMES];
	uint32_t n = 0;

	for (uint32_t i = 0; i < SM.m.nnames && n < MF_MODEL_NAMES; i++) {
		const struct mf_model_name *mn = &SM.m.names[i];
		struct sup_model_name *o = &all[n++];

		memcpy(o->name, mn->name, sizeof(o->name));
		o->name[sizeof(o->name) - 1] = '\0';
		o->calls = mn->count;
		o->retained = mf_model_recent_retained(mn);
		o->retained_sum = mn->retained_sum;
		o->retains = mf_model_name_retains(mn, RETAIN_MIN);
	}
	qsort(all, n, sizeof(all[0]), cmp_shown);
	ms->nshown = n < SUP_MODEL_NAMES_SHOWN ? n : SUP_MODEL_NAMES_SHOWN;
	memcpy(ms->shown, all, ms->nshown * sizeof(all[0]));
}

/* What grew since the last sample fed (a counter that went back started
 * again: a new segment). */
static uint64_t grew(uint64_t now, uint64_t *prev)
{
	uint64_t d = now >= *prev ? now - *prev : now;

	*prev = now;
	return d;
}

/* The gate's counters into s, as changes since the last sample fed. */
static void gate_sample(const struct sup_gate_stats *g, struct mf_model_sample *s)
{
	uint64_t waited = 0, timed_out = 0;

	_Static_assert(MF_MODEL_GATE_HIST == sizeof(g->hist) / sizeof(g->hist[0]),
		       "the model keeps the gate's buckets");
	if (!g->on)
		return;
	for (uint32_t i = 0; i < g->nnames; i++) {
		waited += g->names[i].waited;
		timed_out += g->names[i].timed_out;
	}
	s->gate_waited = grew(waited, &SM.gate_waited);
	s->gate_timed_out = grew(timed_out, &SM.gate_timed_out);
	for (unsigned b = 0; b < MF_MODEL_GATE_HIST; b++)
		s->gate_hist[b] = grew(g->hist[b], &SM.gate_hist[b]);
	s->gate_queue = g->queued;
	s->gate_admitted = g->admitted_now;
}

void sup_model_sample(struct sup_state *st)
{
	struct mf_model_sample s = {.t_s = st->now_s, .live = st->heap_live,
				    .in_flight = st->scopes_in_flight,
				    .working_set = st->working_set};
	struct mf_leak lk;
	int up = 0;

	if (!SM.on || st->now_s == 0)
		return;
	for (uint32_t i = 0; i < st->nscopes; i++) {
		uint64_t net = st->scopes[i].net > 0 ? (uint64_t)st->scopes[i].net : 0;

		s.load += net;
		if (net > s.load_top)
			s.load_top = net;
	}
	/* The heap's floor is the program's while it serves: not before its
	 * first process shows up, not once all are gone, not while it shuts
	 * down (freeing everything on the way out is no fall of the floor). */
	for (uint32_t i = 0; i < st->nprocs && !up; i++)
		up = st->procs[i].alive;
	if (st->accounting && up && !SM.frozen) {
		gate_sample(&st->gate, &s);
		mf_model_sample(&SM.m, &s);
	}
	if (SM.primed) {
		if (st->oom_kill > SM.oom_kill)
			mf_model_event(&SM.m, st->now_s, MF_EV_OOM_KILL, NULL, NULL, SM.working_set);
		if (ended_total(st) > SM.ended)
			mf_model_event(&SM.m, st->now_s, MF_EV_EXIT, NULL, NULL, 0);
		if (st->restarts > SM.restarts)
			mf_model_event(&SM.m, st->now_s, MF_EV_RESTART, NULL, NULL, 0);
	}
	SM.primed = 1;
	SM.oom_kill = st->oom_kill;
	SM.ended = ended_total(st);
	SM.restarts = st->restarts;
	SM.working_set = st->working_set;

	st->model.target = leak_target(st);
	mf_model_leak(&SM.m, st->model.target, LEAK_MIN_WINDOWS, LEAK_MIN_RISE, &lk);
	st->model.names = SM.m.nnames;
	st->model.windows = lk.windows;
	st->model.leaking = lk.leaking;
	st->model.floor_slope = lk.slope;
	st->model.recent_slope = lk.recent_slope;
	st->model.floor = lk.floor_last;
	st->model.forecast_s = lk.leaking ? lk.forecast_s : -1;
	if (SM.m.cur_open && SM.m.cur.load > st->model.load) {
		st->model.load = SM.m.cur.load;
		st->model.load_n = SM.m.cur.load_n;
	}
	names_shown(&st->model);
}

void sup_model_epoch(struct sup_state *st)
{
	if (SM.on)
		mf_model_epoch(&SM.m, st->now_s ? st->now_s : sup_real_ns() / 1000000000u);
}

void sup_model_recycled(struct sup_state *st, const char *why, uint64_t bytes)
{
	if (SM.on)
		mf_model_event(&SM.m, st->now_s, MF_EV_RECYCLE, why, NULL, bytes);
}

void sup_model_save(struct sup_state *st, int force)
{
	struct mf_model *m = &SM.m;
	struct mf_model_floor was;
	uint32_t pos = m->floor_pos, n = m->nfloors;
	json_t *j;
	int err;

	if (!SM.on || !SM.path[0] || (!force && st->now_s < SM.last_save_s + SAVE_EVERY_S))
		return;
	SM.last_save_s = st->now_s;
	/* The window being filled is saved as if closed, so that a reader
	 * sees the last seconds too; the model itself goes on filling it.
	 * Closed in place and put back, not in a copy: the model is 170 KiB,
	 * mostly pages a short run never touches, and only this thread uses
	 * it. */
	was = m->floors[pos];
	if (m->cur_open) {
		m->floors[pos] = m->cur;
		m->floor_pos = (pos + 1) % MF_MODEL_FLOORS;
		if (m->nfloors < MF_MODEL_FLOORS)
			m->nfloors++;
	}
	j = mf_model_json(m);
	m->floors[pos] = was;
	m->floor_pos = pos;
	m->nfloors = n;
	if (!j)
		return;
	json_object_set_new(
		j, "run",
		json_pack("{s:I,s:I,s:I,s:s,s:s,s:s,s:i,s:i,s:I,s:I,s:b,s:I}", "limit",
			  (json_int_t)st->limit, "budget", (json_int_t)st->budget, "reserve",
			  (json_int_t)st->reserve, "segment", st->segment, "report_dir",
			  SM.report_dir, "state_dir", SM.state_dir, "supervisor_pid", (int)st->sup_pid,
			  "program_pid", (int)st->child_pid, "started", (json_int_t)st->started_s,
			  "saved", (json_int_t)st->now_s, "program_up", st->child_up, "ring_next",
			  (json_int_t)SM.ring_next));
	err = j ? sup_write_atomic(j, SM.path) : -ENOMEM;
	json_decref(j);
	if (err) {
		static int warned;

		if (!warned++)
			mf_warn("cannot save the model in %s: %s", SM.path, strerror(-err));
		return;
	}
	st->model.saved_s = st->now_s;
}

void sup_model_freeze(void)
{
	SM.frozen = 1;
}

void sup_model_stop(struct sup_state *st)
{
	if (!SM.on)
		return;
	sup_model_sample(st);    /* the program's end, counted after the last sample */
	if (SM.in_state_dir)
		sup_model_save(st, 1);
	else if (SM.path[0])
		unlink(SM.path);
	SM.on = 0;
}

json_t *sup_model_status_json(const struct sup_model_status *m)
{
	json_t *j, *ret = json_array();

	for (uint32_t i = 0; i < m->nshown; i++) {
		const struct sup_model_name *n = &m->shown[i];

		json_array_append_new(ret, json_pack("{s:s,s:I,s:I,s:I,s:b}", "name", n->name,
						     "calls", (json_int_t)n->calls,
						     "retained_per_call", (json_int_t)n->retained,
						     "retained_total", (json_int_t)n->retained_sum,
						     "leaking", n->retains));
	}
	j = json_pack("{s:s,s:I,s:i,s:i,s:b,s:f,s:I,s:I,s:I}", "file", m->file, "saved",
		      (json_int_t)m->saved_s, "names", (int)m->names, "windows", (int)m->windows,
		      "leaking", m->leaking, "floor_slope", m->floor_slope, "forecast_s",
		      (json_int_t)m->forecast_s, "load_max", (json_int_t)m->load,
		      "load_max_in_flight", (json_int_t)m->load_n);
	if (!j) {
		json_decref(ret);
		return NULL;
	}
	json_object_set_new(j, "floor", json_integer((json_int_t)m->floor));
	json_object_set_new(j, "floor_recent_slope", json_real(m->recent_slope));
	json_object_set_new(j, "forecast_target", json_integer((json_int_t)m->target));
	json_object_set_new(j, "retained", ret);
	return j;
}
