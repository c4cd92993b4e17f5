/*
 * diagnose.c - `memfence diagnose`: is the program running out of memory
 * because of a leak, aggregate load, oversized requests, or memory outside
 * the heap? Gathers what memfence kept (the model, the stats segment, the
 * post-mortems, a heap profile) and hands it to host/diagnose.c, which
 * reasons; prints the verdicts with their evidence as text or JSON, and
 * draws them as one HTML page (diagnose_html.c).
 *
 * Read-only: nothing of a live run is changed.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/lines.h"
#include "cli/cli.h"
#include "host/options.h"
#include "cli/diagnose.h"
#include "host/file.h"
#include "host/model_json.h"
#include "host/segread.h"
#include "memfence.h"

#define EXIT_PROBLEM 3

enum { OPT_JSON = MF_OPT_KEY_BASE, OPT_HTML, OPT_SINCE };

static const struct mf_option diagnose_options[] = {
	{.name = "json", .key = OPT_JSON,
	 .help = "one JSON document (verdict list, evidence\nper verdict)"},
	{.name = "html", .key = OPT_HTML, .has_arg = required_argument, .arg = "FILE",
	 .help = "also write a self-contained page: timeline,\nper-name distributions, oversized requests,\nflame graph"},
	{.name = "since", .key = OPT_SINCE, .has_arg = required_argument, .arg = "DURATION",
	 .help = "only what happened in the last DURATION\n(10m, 2h); per-name distributions always\ncover the whole history"},
	{0},
};

static const struct mf_option *const diagnose_tabs[] = {diagnose_options, mf_help_options, NULL};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: memfence diagnose [OPTIONS] TARGET\n"
		"\n"
		"Tell why a program runs out of memory: a leak, aggregate load (many ordinary\n"
		"requests at once), oversized requests, or memory outside the heap; or that it\n"
		"is healthy. Each verdict comes with its evidence (see docs/diagnose.md).\n"
		"\n"
		"TARGET: the PID of a `memfence run` supervisor or of its program; a stats\n"
		"segment file; or the --state-dir or --report-dir of a run, also after it\n"
		"ended (model.json, segment.seg, journal.json, memfence-report-*.json).\n"
		"\n");
	mf_opts_help(f, "Options", diagnose_options);
	mf_opts_help(f, NULL, mf_help_options);
	fprintf(f,
		"\n"
		"Exit status: 0 healthy, 3 a problem was found (any other verdict), 1 the\n"
		"target cannot be read, 2 usage error.\n");
}

static int alive(pid_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* Whether the run recorded in a state directory's files can be the one
 * whose pids live here: TARGET is the directory that run wrote (not a copy,
 * not another host's volume: same device and inode as the state_dir it
 * recorded), and each pid is a process that started before the record was
 * written (mf_proc_is), not a later one that got the number, such as this
 * host's PID 1 for a supervisor that was PID 1 in its container. */
static int same_dir(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

static pid_t live_pid(pid_t pid, uint64_t saved_s)
{
	/* Two seconds of slack: the record's time is in whole seconds. */
	return pid > 0 && saved_s && mf_proc_is(pid, (saved_s + 2) * 1000000000ull) ? pid : 0;
}

/* A path the run recorded inside its state directory, where the directory
 * is now: diagnosed after `mv`, from a copy or from another working
 * directory, the files are those of TARGET. Other paths stay as recorded. */
static void rebase(const struct diag_src *s, const char *recorded_dir, const char *v, char *out,
		   size_t len)
{
	size_t n = strlen(recorded_dir);

	if (s->dir_target && n && strncmp(v, recorded_dir, n) == 0 &&
	    (v[n] == '/' || v[n] == '\0'))
		snprintf(out, len, "%s%s", s->state_dir, v + n);
	else
		snprintf(out, len, "%s", v);
}

static int is_dir(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *p)
{
	return access(p, R_OK) == 0;
}

static uint64_t jnum(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

/* The model file, with the run's summary the supervisor adds. */
static int load_model(struct diag_src *s)
{
	char err[200];
	json_t *j = mf_json_load_file(s->model_file, MF_FILE_MAX_MODEL, 0, err, sizeof(err)), *run;

	if (!j) {
		mf_err("cannot read %s: %s", s->model_file, err);
		return -1;
	}
	if (mf_model_from_json(j, s->model, err, sizeof(err)) != 0) {
		mf_err("%s: %s", s->model_file, err);
		json_decref(j);
		return -1;
	}
	run = json_object_get(j, "run");
	if (json_is_object(run)) {
		const char *v, *dir = json_string_value(json_object_get(run, "state_dir"));
		char path[MF_PATH_MAX];
		uint64_t saved = jnum(run, "saved");

		dir = dir ? dir : "";
		s->limit = jnum(run, "limit");
		s->budget = jnum(run, "budget");
		s->run_started = jnum(run, "started");
		s->run_sup_pid = (pid_t)jnum(run, "supervisor_pid");
		s->ring_next = jnum(run, "ring_next");
		if (!s->dir_target || (*dir && same_dir(dir, s->state_dir))) {
			s->sup_pid = live_pid((pid_t)jnum(run, "supervisor_pid"), saved);
			s->prog_pid = live_pid((pid_t)jnum(run, "program_pid"), saved);
		} else {
			s->pids_untrusted = 1;
			mf_warn("%s is not the directory the run wrote (%s): a copy or a moved one, "
				"read as a run that has ended",
				s->state_dir, *dir ? dir : "not recorded");
		}
		v = json_string_value(json_object_get(run, "report_dir"));
		if (v && *v && !s->report_dir[0]) {
			rebase(s, dir, v, path, sizeof(path));
			snprintf(s->report_dir, sizeof(s->report_dir), "%s", path);
		}
		if (*dir && !s->state_dir[0])
			snprintf(s->state_dir, sizeof(s->state_dir), "%s", dir);
		v = json_string_value(json_object_get(run, "segment"));
		if (v && *v && !s->segment[0]) {
			rebase(s, dir, v, path, sizeof(path));
			if (exists(path))
				snprintf(s->segment, sizeof(s->segment), "%s", path);
		}
	}
	json_decref(j);
	return 0;
}

/* The admission gate's counters (what /status shows): requests that waited
 * and gave up, the waits, the queue and the requests admitted now. */
static void read_gate(struct diag_src *s, const struct mf_segread *r)
{
	const struct mf_seg_header *h = r->hdr;
	const struct mf_seg_gate *g;
	struct mf_diag_gate *out = &s->gate;

	if (h->gate_offset == 0 || h->gate_offset > r->len ||
	    r->len - h->gate_offset < sizeof(struct mf_seg_gate))
		return;
	g = mf_seg_gate_of(h);
	if (!__atomic_load_n(&g->on, __ATOMIC_ACQUIRE))
		return;
	memset(out, 0, sizeof(*out));
	for (uint32_t i = 0; i < MF_SEG_GATE_NAMES; i++) {
		if (!__atomic_load_n(&g->names[i].ready, __ATOMIC_ACQUIRE))
			continue;
		out->waited += __atomic_load_n(&g->names[i].waited, __ATOMIC_RELAXED);
		out->timed_out += __atomic_load_n(&g->names[i].timed_out, __ATOMIC_RELAXED);
	}
	for (unsigned b = 0; b < MF_MODEL_GATE_HIST; b++)
		out->hist[b] = __atomic_load_n(&g->hist[b], __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < MF_SEG_GATE_ENTRIES; i++) {
		uint32_t st = __atomic_load_n(&g->entries[i].state, __ATOMIC_ACQUIRE);

		out->queue += st == MF_GATE_WAITING;
		out->admitted += st == MF_GATE_ADMITTED;
	}
	s->have_gate = 1;
}

/* A finished scope of the ring into the model, with why it was refused. */
static void model_add(struct mf_model *m, const struct mf_seg_record *r)
{
	struct mf_model_why why = {.rule = r->refused_rule < MF_RULE_N ? r->refused_rule : 0,
				   .asked = r->refused_net + r->refused_size,
				   .need = r->refused_need};

	mf_model_scope_why(m, r->name, r->id, r->peak, r->net,
			   r->failed > 0 || r->outcome != MEMFENCE_OUTCOME_OK,
			   (r->start_ns + r->duration_ns) / 1000000000u, &why);
}

/* The segment: scopes in flight and the live heap now; and, when there is
 * no model file, a model rebuilt from its ring of finished scopes. With a
 * model its supervisor saved (every 2 s), the scopes that ended since the
 * save are added from the ring: a refusal of the last seconds counts. */
static int read_segment(struct diag_src *s, int rebuild)
{
	static struct mf_seg_scope sc[MF_SEG_DEFAULT_SCOPES * 4];
	static struct mf_seg_record rec[256];
	struct mf_segread r;
	struct mf_seg_header h;
	uint64_t since = 0, next, lost;
	uint32_t n;
	int err = mf_segread_open(&r, s->segment, 0);

	if (err) {
		mf_err("cannot read the stats segment %s: %s", s->segment, mf_segread_strerror(err));
		return -1;
	}
	mf_segread_header(&r, &h);
	if (!s->sup_pid && !s->pids_untrusted)
		s->sup_pid = live_pid(h.owner_pid, (uint64_t)time(NULL));
	for (uint32_t i = 0; i < h.nslots; i++) {
		struct mf_segread_slot v;
		uint32_t max = sizeof(sc) / sizeof(sc[0]);

		if (mf_segread_slot(&r, i, &v, sc, max) != 0 || v.view != MF_SLOT_VIEW_LIVE)
			continue;
		s->heap_live += v.slot.live;
		if (!s->prog_pid && !s->pids_untrusted)
			s->prog_pid = v.slot.pid;
		for (uint32_t k = 0; k < v.nscopes && s->nin_flight < DIAG_IN_FLIGHT; k++) {
			struct mf_diag_scope *d = &s->in_flight[s->nin_flight++];

			memset(d, 0, sizeof(*d));
			snprintf(d->name, sizeof(d->name), "%.*s", MF_SEG_NAME_LEN - 1, sc[k].name);
			snprintf(d->id, sizeof(d->id), "%.*s", MF_SEG_NAME_LEN - 1, sc[k].id);
			d->peak = sc[k].peak;
			d->net = sc[k].net;
			d->failed = sc[k].failed;
			d->rule = sc[k].refused_rule < MF_RULE_N ? sc[k].refused_rule : 0;
			d->asked = sc[k].refused_net + sc[k].refused_size;
			d->need = sc[k].refused_need;
		}
	}
	if (!s->limit && h.container.limit)
		s->limit = h.container.limit;
	read_gate(s, &r);
	/* The model's ring index counts in this segment only when the model's
	 * supervisor made it. */
	if (rebuild || (s->ring_next && h.owner_pid == s->sup_pid)) {
		/* Oldest first, as they ended. */
		since = h.ring_head > h.ring_size ? h.ring_head - h.ring_size : 0;
		if (!rebuild && s->ring_next > since)
			since = s->ring_next;
		do {
			n = mf_segread_ring(&r, since, rec, sizeof(rec) / sizeof(rec[0]), &next, &lost);
			for (uint32_t i = 0; i < n; i++)
				model_add(s->model, &rec[i]);
			if (rebuild)
				s->ring_records += n;
			else
				s->ring_live += n;
			since = next;
		} while (n == sizeof(rec) / sizeof(rec[0]));
	}
	mf_segread_close(&r);
	return 0;
}

static int is_report_name(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return strncmp(e->d_name, "memfence-report-", 16) == 0 && n > 5 &&
	       strcmp(e->d_name + n - 5, ".json") == 0;
}

static void add_report(struct diag_src *s, json_t *j, int newest)
{
	struct mf_diag_death *d;

	if (s->ndeaths >= DIAG_DEATHS || mf_diag_death_from_report(j, &s->deaths[s->ndeaths]) != 0)
		return;
	d = &s->deaths[s->ndeaths];
	if (strcmp(d->cause, "running") == 0)
		return;
	/* A report directory may be shared by several runs: a death counts
	 * for the run of the model only when its supervisor wrote it, after
	 * it started (a pid is reused, but not within one run). The pid the
	 * model recorded, not sup_pid: that one is 0 once the run has ended. */
	if (s->run_started && s->run_sup_pid &&
	    ((d->sup_pid && d->sup_pid != s->run_sup_pid) || d->t_s + 1 < s->run_started)) {
		s->other_runs++;
		return;
	}
	s->ndeaths++;
	if (!s->limit)
		s->limit = d->limit;
	if (!s->budget && d->limit) {
		/* No budget (a reserve that leaves none) falls back on the
		 * limit, as when none is known (host/diagnose.c). */
		s->budget = mf_budget(d->limit, jnum(json_object_get(j, "memory"), "reserve"));
	}
	if (newest && !s->timeline) {
		s->timeline = json_incref(json_object_get(j, "timeline"));
	}
}

static void read_reports(struct diag_src *s, const char *dir)
{
	struct dirent **list;
	char path[MF_PATH_MAX + 300];
	int n = scandir(dir, &list, is_report_name, alphasort);

	for (int i = n - 1; i >= 0; i--) {
		if (n - 1 - i < DIAG_DEATHS) {
			char err[200];
			json_t *j;

			snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
			j = mf_json_load_file(path, MF_FILE_MAX_REPORT, 0, err, sizeof(err));
			if (j)
				add_report(s, j, i == n - 1);
			else
				mf_warn("%s: %s (ignored)", path, err);
			json_decref(j);
		}
		free(list[i]);
	}
	if (n >= 0)
		free(list);
}

/* The journal of a run: its timeline is the newest; when its supervisor
 * is gone without a report (killed with the container), it is the
 * post-mortem. */
static void read_journal(struct diag_src *s)
{
	char path[MF_PATH_MAX + 16], err[200];
	json_t *j;
	pid_t pid;

	if (!s->state_dir[0])
		return;
	snprintf(path, sizeof(path), "%s/journal.json", s->state_dir);
	if (!exists(path))
		return;
	j = mf_json_load_file(path, MF_FILE_MAX_REPORT, 0, err, sizeof(err));
	if (!j) {
		mf_warn("%s: %s (ignored)", path, err);
		return;
	}
	json_decref(s->timeline);
	s->timeline = json_incref(json_object_get(j, "timeline"));
	/* A copy of a live run's directory has the journal of a run that is
	 * not lost: its supervisor still runs where it was. */
	pid = live_pid((pid_t)jnum(json_object_get(j, "supervisor"), "pid"), jnum(j, "time_unix"));
	if (!pid) {
		json_object_set_new(j, "cause", json_string("lost"));
		add_report(s, j, 0);
	}
	json_decref(j);
}

static void find_profile(struct diag_src *s, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	time_t best = 0;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[MF_PATH_MAX + 300];
		size_t n = strlen(e->d_name);
		struct stat st;

		if (strncmp(e->d_name, "memfence-", 9) != 0 || n < 6 ||
		    strcmp(e->d_name + n - 5, ".prof") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) == 0 && st.st_mtime >= best && strlen(path) < sizeof(s->profile)) {
			best = st.st_mtime;
			snprintf(s->profile, sizeof(s->profile), "%s", path);
		}
	}
	closedir(d);
}

static int resolve_target(struct diag_src *s)
{
	const char *t = s->target;
	char *end;
	long long pid;
	int err;

	errno = 0;
	pid = strtoll(t, &end, 10);
	if (*t && *end == '\0') {
		/* A pid_t is an int: a larger number must not wrap to another
		 * process's. */
		if (pid <= 0 || pid > INT_MAX || errno == ERANGE) {
			mf_err("invalid PID '%s'", t);
			return -2;
		}
		err = mf_segread_find_pid("", (pid_t)pid, s->segment, sizeof(s->segment));
		if (err == -ESRCH) {
			mf_err("no process %lld", pid);
			return -1;
		}
		if (err) {
			mf_err("process %lld has no memfence stats segment (is it under `memfence run`?): %s",
			       pid, mf_segread_strerror(err));
			return -1;
		}
	} else if (is_dir(t)) {
		s->dir_target = 1;
		snprintf(s->state_dir, sizeof(s->state_dir), "%s", t);
		snprintf(s->model_file, sizeof(s->model_file), "%s/%s", t, MF_MODEL_FILE);
		if (!exists(s->model_file))
			s->model_file[0] = '\0';
		snprintf(s->segment, sizeof(s->segment), "%s/segment.seg", t);
		if (!exists(s->segment))
			s->segment[0] = '\0';
	} else if (exists(t)) {
		struct mf_segread r;

		if (mf_segread_open(&r, t, 0) == 0) {
			mf_segread_close(&r);
			snprintf(s->segment, sizeof(s->segment), "%s", t);
		} else {
			snprintf(s->model_file, sizeof(s->model_file), "%s", t);
		}
	} else {
		mf_err("%s: no such process, file or directory", t);
		return -1;
	}
	if (s->segment[0] && !s->model_file[0]) {
		mf_model_path_for_segment(s->segment, s->model_file, sizeof(s->model_file));
		if (!exists(s->model_file))
			s->model_file[0] = '\0';
	}
	return 0;
}

static int gather(struct diag_src *s)
{
	int rc = resolve_target(s);
	char dir[MF_PATH_MAX];

	if (rc)
		return rc;
	mf_model_init(s->model, 0);
	if (s->model_file[0] && load_model(s) != 0)
		return -1;
	if (s->segment[0] && read_segment(s, !s->model_file[0]) != 0 && !s->model_file[0])
		return -1;
	s->running = alive(s->sup_pid) || alive(s->prog_pid);
	if (!s->report_dir[0] && s->state_dir[0]) {
		if (snprintf(dir, sizeof(dir), "%.*s/reports", MF_PATH_MAX - 9, s->state_dir) > 0 &&
		    is_dir(dir))
			snprintf(s->report_dir, sizeof(s->report_dir), "%s", dir);
	}
	read_journal(s);
	if (s->report_dir[0])
		read_reports(s, s->report_dir);
	/* A --report-dir given as TARGET holds the reports itself. */
	if (s->state_dir[0] && strcmp(s->state_dir, s->report_dir) != 0)
		read_reports(s, s->state_dir);
	if (s->report_dir[0])
		find_profile(s, s->report_dir);
	if (!s->profile[0] && s->state_dir[0])
		find_profile(s, s->state_dir);
	if (!s->model_file[0] && !s->segment[0] && s->ndeaths == 0) {
		mf_err("%s holds nothing memfence can diagnose (no model.json, segment.seg or "
		       "memfence-report-*.json)",
		       s->target);
		return -1;
	}
	if (s->running) {
		struct mf_memory mem;
		char err[256];
		pid_t pid = alive(s->prog_pid) ? s->prog_pid : s->sup_pid;

		if (mf_memory_read(mf_root_default(), pid, &mem, err, sizeof(err)) == 0 &&
		    mem.cgroup_version) {
			s->working_set = mem.working_set;
			if (!s->limit && mem.limit != MF_UNKNOWN)
				s->limit = mem.limit;
		}
		s->have_now = 1;
	} else {
		/* After the run: the scopes left in the segment died with it and
		 * are in the post-mortems; nobody waits at its gate any more. */
		s->nin_flight = 0;
		s->heap_live = 0;
		s->gate.queue = s->gate.admitted = 0;
	}
	return 0;
}

int mf_cmd_diagnose(int argc, char **argv)
{
	struct mf_opts opts;
	static struct diag_src src;
	static struct mf_model model;
	static struct mf_diag d;
	struct diag_src *s = &src;
	struct mf_diag_input in;
	const char *html = NULL;
	uint64_t since = 0;
	int json = 0, opt, rc;

	mf_opts_init(&opts, "", diagnose_tabs);
	while ((opt = getopt_long(argc, argv, opts.shortopts, opts.longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_JSON:
			json = 1;
			break;
		case OPT_HTML:
			html = optarg;
			break;
		case OPT_SINCE:
			if (mf_duration_parse(optarg, &since) != 0 || since == 0) {
				mf_err("invalid --since '%s': a duration (" MF_DURATION_SYNTAX ")", optarg);
				return MF_EXIT_USAGE;
			}
			since = (since + 999) / 1000;   /* seconds, as the model keeps time */
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'memfence diagnose --help'.\n");
			return MF_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		mf_err(optind >= argc ? "diagnose needs a TARGET: a PID, a segment file or a state directory"
				      : "diagnose takes one TARGET (see memfence diagnose --help)");
		return MF_EXIT_USAGE;
	}
	memset(s, 0, sizeof(*s));
	s->target = argv[optind];
	s->model = &model;
	rc = gather(s);
	if (rc)
		return rc == -2 ? MF_EXIT_USAGE : MF_EXIT_FAILURE;
	memset(&in, 0, sizeof(in));
	in.model = s->model;
	in.limit = s->limit;
	in.budget = s->budget;
	in.now_s = (uint64_t)time(NULL);
	in.since_s = since ? in.now_s - since : 0;
	s->since_s = in.since_s;
	in.have_now = s->have_now;
	in.working_set = s->working_set;
	in.heap_live = s->heap_live;
	in.in_flight = s->in_flight;
	in.nin_flight = s->nin_flight;
	in.deaths = s->deaths;
	in.ndeaths = s->ndeaths;
	in.gate = s->have_gate ? &s->gate : NULL;
	if (mf_diagnose(&in, &d) != 0) {
		mf_err("out of memory");
		json_decref(s->timeline);
		return MF_EXIT_FAILURE;
	}

	if (json) {
		json_t *j = mf_diag_json(&d);
		json_t *src_j = json_pack("{s:s,s:s,s:s,s:s,s:b,s:i,s:i,s:i,s:i,s:i}", "target",
					  s->target, "model", s->model_file, "segment", s->segment,
					  "profile", s->profile, "running", s->running,
					  "supervisor_pid", (int)s->sup_pid, "ring_records",
					  (int)s->ring_records, "ring_live", (int)s->ring_live,
					  "post_mortems", (int)s->ndeaths, "other_runs",
					  (int)s->other_runs);

		json_object_set_new(j, "source", src_j);
		json_dumpf(j, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		json_decref(j);
	} else {
		printf("memfence diagnose %s: %s%s\n", s->target,
		       s->running ? "the program is running" : "the run has ended",
		       s->model_file[0] ? "" : " (no model file: from the segment's last scopes)");
		mf_diag_print(stdout, &d);
	}
	if (html) {
		int err = diag_html_write(html, s, &d);

		if (err) {
			mf_err("cannot write %s: %s", html, strerror(-err));
			json_decref(s->timeline);
			return MF_EXIT_FAILURE;
		}
		if (!json)
			printf("page: %s\n", html);
	}
	json_decref(s->timeline);
	return mf_diag_problem(&d) ? EXIT_PROBLEM : 0;
}
