/*
 * run.c - `memfence run`: start a program under the container's limits and
 * the accounting shim, then stay beside it as its supervisor.
 *
 * The supervisor is built to be a container's PID 1: it forwards the
 * signals a container runtime sends, reaps every zombie (as PID 1, or as a
 * child subreaper otherwise), exits with the program's status, and keeps
 * answering probes while the program is out of memory. Its own memory is
 * fixed: every table is sized at build time (see sup.h); the only heap use
 * of the main loop (the journal's JSON, once a second) is freed at once.
 *
 * One thread runs the loop below (signalfd + timerfd, no signal handlers);
 * libmicrohttpd runs the HTTP side in a thread of its own and only reads a
 * copy of the state published at each sample.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/launch.h"
#include "supervisor/sup.h"
#include "store/quarantine.h"
#include "base/size.h"

/* ---- options: one table for the parser, the environment and --help ---- */

enum {
	O_HTTP = MF_OPT_LAUNCH_LAST + 1,
	O_RESTART,
	O_RESTART_DELAY,
	O_RESTART_MAX,
	O_REPORT_DIR,
	O_STATE_DIR,
	O_NEED,
	O_GRACE,
	O_HYST,
	O_LIVE_AFTER,
	O_FAIL_RATIO,
	O_FAIL_WINDOW,
	O_FAIL_MIN,
	O_CONTAINER,
	O_INTERVAL,
	O_NO_AUTO_PY,
	O_QUARANTINE,
	O_NO_QUARANTINE,
	O_PROFILE,
	O_LAST
};

struct run_opt {
	const char *name;
	int val;
	const char *env;
	const char *def;    /* NULL: none */
	const char *arg;
	const char *help;
	const char *shown;  /* the default as --help says it, when def is NULL */
};

static const struct run_opt run_opts[] = {
	{"http", O_HTTP, "MEMFENCE_HTTP", "0.0.0.0:9090", "ADDR:PORT|off",
	 "serve /livez /readyz /metrics /status here", NULL},
	{"restart", O_RESTART, "MEMFENCE_RESTART", "never", "never|on-oom|always",
	 "restart the program when it ends", NULL},
	{"restart-delay", O_RESTART_DELAY, "MEMFENCE_RESTART_DELAY", "1s", "DURATION",
	 "first restart delay, doubled at each quick failure", NULL},
	{"restart-max-delay", O_RESTART_MAX, "MEMFENCE_RESTART_MAX_DELAY", "30s", "DURATION",
	 "cap of the restart delay", NULL},
	{"report-dir", O_REPORT_DIR, "MEMFENCE_REPORT_DIR", NULL, "DIR",
	 "where post-mortem reports go", "STATE_DIR/reports, else /tmp/memfence"},
	{"state-dir", O_STATE_DIR, "MEMFENCE_STATE_DIR", NULL, "DIR",
	 "journal for post-mortems that outlive the supervisor", "none"},
	{"quarantine", O_QUARANTINE, "MEMFENCE_QUARANTINE", NULL, "STORE|off",
	 "record deaths of scopes with an id here (sqlite:PATH, PATH, redis://...)",
	 "STATE_DIR/quarantine.db"},
	{"request-need", O_NEED, "MEMFENCE_REQUEST_NEED", "auto", "SIZE|PCT|auto",
	 "headroom a request needs (auto: p95 of recent scopes' allocations)", NULL},
	{"ready-grace", O_GRACE, "MEMFENCE_READY_GRACE", "10s", "DURATION",
	 "low headroom this long makes /readyz fail", NULL},
	{"ready-hysteresis", O_HYST, "MEMFENCE_READY_HYSTERESIS", "50%", "PCT",
	 "ready again above the need plus this much", NULL},
	{"live-after", O_LIVE_AFTER, "MEMFENCE_LIVE_AFTER", "60s", "DURATION",
	 "not ready this long makes /livez fail", NULL},
	{"fail-ratio", O_FAIL_RATIO, "MEMFENCE_FAIL_RATIO", "50%", "PCT",
	 "share of scopes failing on allocation that makes /livez fail", NULL},
	{"fail-window", O_FAIL_WINDOW, "MEMFENCE_FAIL_WINDOW", "60s", "DURATION",
	 "window of that share (at most 600s)", NULL},
	{"fail-min", O_FAIL_MIN, "MEMFENCE_FAIL_MIN", "10", "N",
	 "scopes needed in the window before the share counts", NULL},
	{"container-check", O_CONTAINER, "MEMFENCE_CONTAINER_CHECK", "1M", "SIZE|off",
	 "allocations this large fail when the container has no headroom", NULL},
	{"sample-interval", O_INTERVAL, "MEMFENCE_SAMPLE_INTERVAL", "100ms", "DURATION",
	 "how often the cgroup and the segment are read", NULL},
};
#define NRUN_OPTS (sizeof(run_opts) / sizeof(run_opts[0]))

static void usage(FILE *f)
{
	char left[64];

	fprintf(f,
		"Usage: memfence run [OPTIONS] [--] PROGRAM [ARGS...]\n"
		"\n"
		"Start PROGRAM as `memfence exec` would, with the accounting library on\n"
		"(--no-account to opt out), and supervise it: forward signals, reap zombies,\n"
		"serve health probes and metrics, write a post-mortem when it dies, and\n"
		"optionally restart it.\n"
		"\n"
		"%s"
		"Supervisor:\n",
		mf_launch_help);
	for (size_t i = 0; i < NRUN_OPTS; i++) {
		snprintf(left, sizeof(left), "--%s %s", run_opts[i].name, run_opts[i].arg);
		fprintf(f, "  %-34s %s\n", left, run_opts[i].help);
		fprintf(f, "  %-34s   [%s; default %s]\n", "", run_opts[i].env,
			run_opts[i].def ? run_opts[i].def : run_opts[i].shown);
	}
	fprintf(f,
		"  --no-quarantine                    record no deaths in the quarantine\n"
		"                                       [MEMFENCE_QUARANTINE=off]\n"
		"  --profile                          sample the program's heap (docs/profiler.md):\n"
		"                                     snapshots go to the report directory\n"
		"                                       [MEMFENCE_PROFILE=1]\n"
		"  --no-auto-python                   do not put memfence's Python bootstrap on\n"
		"                                     PYTHONPATH of a Python program\n"
		"                                       [MEMFENCE_AUTO_PYTHON=0]\n"
		"  -h, --help                         show this help\n"
		"\n"
		"Durations: 500ms, 10s, 2m, 1h (a bare number is seconds).\n"
		"Exit status: PROGRAM's own (128+N when signal N ended it); 2 for a bad\n"
		"option, 1 when the supervisor cannot start, 126/127 when PROGRAM cannot\n"
		"be run.\n");
}

/* "500ms", "10s", "2m", "1h", "1.5" (seconds) -> milliseconds. */
static int parse_duration(const char *s, uint64_t *ms)
{
	char *end;
	double v = strtod(s, &end), mul = 1000;

	if (end == s || !isfinite(v) || v < 0)
		return -1;
	if (strcmp(end, "ms") == 0)
		mul = 1;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		mul = 1000;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		mul = 60000;
	else if (strcmp(end, "h") == 0)
		mul = 3600000;
	else
		return -1;
	if (v * mul > 1e15)
		return -1;
	*ms = (uint64_t)(v * mul + 0.5);
	return 0;
}

/* "50%", "50", "0.5" is not accepted: percentages only. */
static int parse_pct(const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (end == s || (*end && strcmp(end, "%") != 0) || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

enum restart_policy { RESTART_NEVER, RESTART_ON_OOM, RESTART_ALWAYS };

struct run_cfg {
	const char *val[O_LAST];
	const char *http;          /* NULL = off */
	enum restart_policy restart;
	uint64_t delay_ms, max_delay_ms, interval_ms;
	const char *report_dir, *state_dir;
	const char *quarantine;    /* store spec; NULL = off, "" = default */
	char report_dir_buf[MF_PATH_MAX];
	struct sup_health_cfg health;
	uint64_t container_min;    /* 0 = off */
	const char *need;
};

/* The value of option o from the command line, the environment or its
 * default, with the name to blame in an error message. */
static const char *opt_value(struct run_cfg *c, const struct run_opt *o, char *who, size_t wlen)
{
	const char *v = c->val[o->val];

	if (v) {
		snprintf(who, wlen, "--%s", o->name);
		return v;
	}
	v = getenv(o->env);
	if (v && *v) {
		snprintf(who, wlen, "%s", o->env);
		return v;
	}
	snprintf(who, wlen, "--%s", o->name);
	return o->def;
}

static int resolve_cfg(struct run_cfg *c, const struct mf_plan *plan)
{
	char who[64];
	const char *msg;

	for (size_t i = 0; i < NRUN_OPTS; i++) {
		const struct run_opt *o = &run_opts[i];
		const char *v = opt_value(c, o, who, sizeof(who));
		uint64_t ms, sz;
		unsigned pct;

		if (!v)
			continue;
		switch (o->val) {
		case O_HTTP:
			c->http = strcmp(v, "off") == 0 ? NULL : v;
			break;
		case O_RESTART:
			if (strcmp(v, "never") == 0)
				c->restart = RESTART_NEVER;
			else if (strcmp(v, "on-oom") == 0)
				c->restart = RESTART_ON_OOM;
			else if (strcmp(v, "always") == 0)
				c->restart = RESTART_ALWAYS;
			else
				goto bad;
			break;
		case O_RESTART_DELAY:
		case O_RESTART_MAX:
		case O_GRACE:
		case O_LIVE_AFTER:
		case O_FAIL_WINDOW:
		case O_INTERVAL:
			if (parse_duration(v, &ms) < 0)
				goto bad;
			if (o->val == O_RESTART_DELAY)
				c->delay_ms = ms;
			else if (o->val == O_RESTART_MAX)
				c->max_delay_ms = ms;
			else if (o->val == O_GRACE)
				c->health.grace_ms = ms;
			else if (o->val == O_LIVE_AFTER)
				c->health.live_after_ms = ms;
			else if (o->val == O_FAIL_WINDOW) {
				if (ms < 1000 || ms > SUP_WINDOW_MAX * 1000ull) {
					mf_err("invalid %s '%s': between 1s and %ds", who, v, SUP_WINDOW_MAX);
					return -1;
				}
				c->health.fail_window_s = (unsigned)(ms / 1000);
			} else {
				if (ms < 10 || ms > 10000) {
					mf_err("invalid %s '%s': between 10ms and 10s", who, v);
					return -1;
				}
				c->interval_ms = ms;
			}
			break;
		case O_REPORT_DIR:
			c->report_dir = v;
			break;
		case O_STATE_DIR:
			c->state_dir = v;
			break;
		case O_QUARANTINE:
			c->quarantine = strcmp(v, "off") == 0 ? NULL : v;
			break;
		case O_NEED:
			if (strcmp(v, "auto") == 0) {
				c->health.need = 0;
			} else if (mf_size_parse(v, plan->budget, &sz, &msg) == 0 && sz > 0) {
				c->health.need = sz;
			} else {
				mf_err("invalid %s '%s': a size, a percentage of the budget, or auto", who, v);
				return -1;
			}
			break;
		case O_HYST:
			if (parse_pct(v, 1000, &pct) < 0)
				goto bad;
			c->health.hysteresis_pct = pct;
			break;
		case O_FAIL_RATIO:
			if (parse_pct(v, 100, &pct) < 0 || pct == 0)
				goto bad;
			c->health.fail_pct = pct;
			break;
		case O_FAIL_MIN: {
			char *end;
			unsigned long n = strtoul(v, &end, 10);

			if (end == v || *end || n > 1000000)
				goto bad;
			c->health.fail_min = (unsigned)n;
			break;
		}
		case O_CONTAINER:
			if (strcmp(v, "off") == 0)
				c->container_min = 0;
			else if (mf_size_parse(v, 0, &sz, &msg) == 0 && sz > 0)
				c->container_min = sz;
			else
				goto bad;
			break;
		}
		continue;
bad:
		mf_err("invalid %s '%s' (expected %s)", who, v, o->arg);
		return -1;
	}
	if (c->max_delay_ms < c->delay_ms)
		c->max_delay_ms = c->delay_ms;
	/* Until scopes teach it: 2% of the budget, at least 8 MiB. */
	c->health.need_default = plan->budget / 50 > (8ull << 20) ? plan->budget / 50 : 8ull << 20;
	if (!c->report_dir) {
		if (c->state_dir)
			snprintf(c->report_dir_buf, sizeof(c->report_dir_buf), "%s/reports", c->state_dir);
		else
			snprintf(c->report_dir_buf, sizeof(c->report_dir_buf), "/tmp/memfence");
		c->report_dir = c->report_dir_buf;
	}
	return 0;
}

/* ---- the supervisor ---- */

static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

struct sup {
	struct run_cfg cfg;
	struct mf_launch launch;
	struct mf_plan plan;
	char **argv;
	struct sup_cgroup cg;
	struct sup_seg seg;
	struct sup_health health;
	struct sup_state st;
	struct sup_http *http;
	int sfd, tfd;
	int stopping;              /* a stop signal arrived: no more restarts */
	int last_forwarded;
	int oom_adj_orig;
	uint64_t child_start_ms, oom_at_start, failed_at_start;
	uint64_t last_second;
	unsigned quick_failures;
	int no_auto_python;
	int profile;               /* --profile: MEMFENCE_PROFILE_DIR = report dir */
	uint64_t oom_pending_ms;   /* an OOM kill not yet reported */
	uint64_t oom_pending_from;
	int no_quarantine;
	char quar_dir[MF_PATH_MAX];   /* the store's state directory */
	char quar_spec[2 * MF_PATH_MAX + 64];
	pid_t dying_pid;           /* the program, reaped: its wait status */
	int dying_ws;
};

static struct sup S;           /* static: the supervisor's size is fixed */

static uint64_t failures_total(const struct sup_state *st)
{
	uint64_t n = st->threads_failed;

	for (int c = 0; c < MF_FAIL_NCAUSES; c++)
		n += st->failed[c];
	return n;
}

static void on_record(void *ctx, const struct sup_record *r)
{
	struct sup *s = ctx;

	sup_hist_add(&s->st, r);
	sup_health_record(&s->health, r);
	sup_model_record(r);
}

/*
 * A process of the program died without its normal exit, with scopes in
 * flight: each scope with an id counts one death in the quarantine. The
 * program itself has a wait status to tell the cause; any other process
 * (a pre-fork worker) is its parent's to reap, so only the cgroup's
 * OOM-kill counter speaks for it: oom_kill when it rose since the process
 * was last seen alive, else unknown.
 */
static void on_dead(void *ctx, const struct mf_seg_slot *slot, uint64_t oom_alive,
		    const struct mf_seg_scope *sc, uint32_t n)
{
	struct sup *s = ctx;
	struct sup_sample cs;
	uint64_t oom = s->st.oom_kill;
	enum sup_cause cause = SUP_CAUSE_NONE;

	if (!s->st.quarantine_on)
		return;
	/* The kernel counts the kill before the victim is gone, but the
	 * counter was read a moment before the slot: read it again. */
	if (sup_cgroup_sample(&s->cg, &cs) == 0 && cs.oom_kill > oom)
		oom = cs.oom_kill;
	if (s->dying_pid && slot->pid == s->dying_pid) {
		int ws = s->dying_ws;

		if (WIFEXITED(ws))
			cause = SUP_CAUSE_EXIT;
		else if (WTERMSIG(ws) == SIGKILL)
			cause = oom > s->oom_at_start ? SUP_CAUSE_OOM_KILL : SUP_CAUSE_SIGKILL;
		else if (WTERMSIG(ws) == s->last_forwarded)
			return;    /* a stop memfence passed on, not a death */
		else
			cause = SUP_CAUSE_SIGNAL;
	} else if (oom > oom_alive) {
		cause = SUP_CAUSE_OOM_KILL;
	} else if (s->stopping) {
		return;    /* workers ending with a stop that was asked for */
	}
	for (uint32_t i = 0; i < n; i++) {
		struct sup_qdeath d = {.cause = (int)cause, .pid = slot->pid};

		if (!sc[i].id[0])
			continue;
		sup_clean(d.id, sizeof(d.id), sc[i].id);
		sup_clean(d.name, sizeof(d.name), sc[i].name);
		if (!d.id[0])
			continue;
		d.peak = sc[i].peak;
		d.allocated = sc[i].allocated;
		d.net = sc[i].net < 0 ? 0 : (uint64_t)sc[i].net;
		sup_quar_push(&d);
	}
}

/* Read the cgroup and the segment into the state. */
static void sample(struct sup *s)
{
	struct sup_sample cs;
	struct sup_state *st = &s->st;

	s->seg.oom_prev = st->oom_kill;
	sup_cgroup_sample(&s->cg, &cs);
	st->usage = cs.usage;
	st->working_set = cs.working_set;
	st->oom_kill = cs.oom_kill;
	st->headroom = st->limit > cs.working_set ? st->limit - cs.working_set : 0;
	st->usable = st->budget > cs.working_set ? st->budget - cs.working_set : 0;
	if (s->seg.open)
		sup_seg_read(&s->seg, st, 1, on_record, s);
	st->now_s = sup_real_ns() / 1000000000u;
	sup_model_sample(st);
}

static void timeline_push(struct sup_state *st)
{
	struct sup_point *p = &st->timeline[st->tl_pos];

	p->t_s = st->now_s;
	p->usage = st->usage;
	p->working_set = st->working_set;
	p->heap_live = st->heap_live;
	st->tl_pos = (st->tl_pos + 1) % SUP_TIMELINE;
	if (st->tl_len < SUP_TIMELINE)
		st->tl_len++;
}

static void journal(struct sup *s, const struct sup_death *d)
{
	json_t *j;
	int err;

	if (!s->cfg.state_dir)
		return;
	j = sup_report_json(&s->st, d, s->argv);
	err = j ? sup_journal_write(s->cfg.state_dir, j) : -ENOMEM;
	json_decref(j);
	if (err) {
		static int warned;

		if (!warned++)
			mf_warn("cannot write the state journal in %s: %s", s->cfg.state_dir,
				strerror(-err));
	}
}

static void write_report(struct sup *s, const struct sup_death *d)
{
	json_t *j = sup_report_json(&s->st, d, s->argv);
	char path[MF_PATH_MAX];
	int err;

	if (!j) {
		mf_warn("cannot build the post-mortem report");
		return;
	}
	sup_report_print(stderr, j, 0);
	err = sup_report_write(j, s->cfg.report_dir, path, sizeof(path));
	if (err)
		mf_warn("cannot write the post-mortem report in %s: %s", s->cfg.report_dir,
			strerror(-err));
	else {
		fprintf(stderr, "memfence:   report: %s\n", path);
		s->st.reports_written++;
	}
	json_decref(j);
}

static void tick(struct sup *s)
{
	uint64_t now = sup_now_ms(), prev_oom = s->st.oom_kill;
	struct sup_state *st = &s->st;

	sample(s);
	if (st->oom_kill > prev_oom && st->child_up && !s->oom_pending_ms) {
		s->oom_pending_ms = now;
		s->oom_pending_from = prev_oom;
	}
	if (s->oom_pending_ms && st->child_up) {
		siginfo_t si = {0};
		int seen = 0;

		for (uint32_t i = 0; i < st->nprocs; i++)
			seen |= !st->procs[i].alive;
		/* The main program's own death is classified when it is reaped;
		 * here, another process of the program. Wait for the victim to
		 * be seen dead (its scopes are in this sample), at most 2 s. */
		if (waitid(P_PID, (id_t)st->child_pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid == 0 && (seen || now - s->oom_pending_ms >= 2000)) {
			struct sup_death d = {.cause = SUP_CAUSE_OOM_KILL,
					      .oom_before = s->oom_pending_from,
					      .oom_after = st->oom_kill,
					      .status = SIGKILL,
					      .runtime_ms = now - s->child_start_ms};

			snprintf(d.detail, sizeof(d.detail),
				 "a process of the program was OOM-killed (cgroup oom_kill %llu -> %llu); "
				 "the main process %d lives on",
				 (unsigned long long)d.oom_before, (unsigned long long)d.oom_after,
				 (int)st->child_pid);
			write_report(s, &d);
			/* That kill is accounted for: the main program's own end
			 * is an OOM kill only if the counter rises again. */
			s->oom_at_start = st->oom_kill;
			s->oom_pending_ms = 0;
		}
	}
	if (st->now_s != s->last_second) {
		s->last_second = st->now_s;
		timeline_push(st);
		st->sup_rss = sup_self_rss();
		if (st->quarantine_on)
			sup_quar_counts(&st->quarantine_recorded, &st->quarantine_errors,
					&st->quarantine_dropped);
		journal(s, NULL);
		sup_model_save(st, 0);
	}
	sup_health_eval(&s->health, st, now, st->now_s);
	if (s->seg.open)
		sup_seg_publish(&s->seg, s->cfg.container_min ? st->limit : 0, st->working_set,
				st->reserve, s->cfg.container_min);
	if (s->http)
		sup_publish(st);
}

static void oom_protect(struct sup *s)
{
	char buf[32];
	int fd, n, got = 0;

	s->oom_adj_orig = 0;
	fd = open("/proc/self/oom_score_adj", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(s->st.oom_adj_note, sizeof(s->st.oom_adj_note),
			 "cannot open /proc/self/oom_score_adj: %s", strerror(errno));
		goto out;
	}
	n = (int)read(fd, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		s->oom_adj_orig = atoi(buf);
	}
	if (pwrite(fd, "-1000", 5, 0) != 5) {
		snprintf(s->st.oom_adj_note, sizeof(s->st.oom_adj_note),
			 "oom_score_adj -1000 refused (%s; needs CAP_SYS_RESOURCE): a kernel OOM kill "
			 "may take the supervisor too",
			 strerror(errno));
		close(fd);
		goto out;
	}
	n = (int)pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		got = atoi(buf) == -1000;
	}
	s->st.oom_adj_held = got ? 1 : 0;
	snprintf(s->st.oom_adj_note, sizeof(s->st.oom_adj_note), "%s",
		 got ? "oom_score_adj -1000 held: the kernel OOM killer spares the supervisor"
		     : "oom_score_adj -1000 did not hold");
out:
	if (!s->st.oom_adj_held)
		mf_warn("%s", s->st.oom_adj_note);
}

/* Is the program a Python interpreter, or a script run by one (gunicorn,
 * celery and the like start with "#!/usr/bin/python3")? */
static int is_python(const char *prog)
{
	char path[MF_PATH_MAX], head[256];
	const char *base = strrchr(prog, '/');
	int fd = -1;
	ssize_t n;

	base = base ? base + 1 : prog;
	if (strncmp(base, "python", 6) == 0)
		return 1;
	if (strchr(prog, '/')) {
		fd = open(prog, O_RDONLY | O_CLOEXEC);
	} else {
		const char *p = getenv("PATH");

		for (p = p ? p : "/usr/bin:/bin"; fd < 0 && *p; p += *p == ':') {
			size_t len = strcspn(p, ":");

			snprintf(path, sizeof(path), "%.*s/%s", (int)len, len ? p : ".", prog);
			fd = open(path, O_RDONLY | O_CLOEXEC);
			p += len;
		}
	}
	if (fd < 0)
		return 0;
	n = read(fd, head, sizeof(head) - 1);
	close(fd);
	if (n < 2 || head[0] != '#' || head[1] != '!')
		return 0;
	head[n] = '\0';
	head[strcspn(head, "\n")] = '\0';
	return strstr(head, "python") != NULL;
}

/*
 * Put the Python bootstrap of the memfence package (a sitecustomize.py that
 * adds the gRPC interceptor, see docs/python.md) first on PYTHONPATH. It is
 * looked for where the preload libraries are: next to the binary in the
 * build tree, else under the install directory.
 */
static void auto_python(struct sup *s)
{
	const char *v = getenv("MEMFENCE_AUTO_PYTHON"), *cur, *file;
	char dir[MF_PATH_MAX], buf[2 * MF_PATH_MAX + 2];
	char *slash;
	size_t len;

	if (s->no_auto_python || (v && (strcmp(v, "0") == 0 || strcmp(v, "no") == 0 ||
					 strcmp(v, "false") == 0 || strcmp(v, "off") == 0)))
		return;
	if (!is_python(s->argv[0]))
		return;
	file = mf_preload_path("python/memfence/_bootstrap/sitecustomize.py");
	if (!file) {
		mf_warn("the memfence Python package is not installed: a gRPC server gets no "
			"interceptor automatically (see docs/python.md)");
		return;
	}
	snprintf(dir, sizeof(dir), "%s", file);
	slash = strrchr(dir, '/');
	*slash = '\0';
	cur = getenv("PYTHONPATH");
	if (cur && *cur) {
		/* Already first (or anywhere): leave the user's order alone. */
		len = strlen(dir);
		for (const char *p = cur; p; p = strchr(p, ':') ? strchr(p, ':') + 1 : NULL)
			if (strncmp(p, dir, len) == 0 && (p[len] == ':' || p[len] == '\0'))
				return;
		snprintf(buf, sizeof(buf), "%s:%s", dir, cur);
		setenv("PYTHONPATH", buf, 1);
	} else {
		setenv("PYTHONPATH", dir, 1);
	}
}

/*
 * The program's own quarantine client (python/memfence) uses the store the
 * supervisor writes, and leaves the recording of deaths to the supervisor
 * when it can see them (in the stats segment): one death counts once.
 */
static void quarantine_env(struct sup *s)
{
	if (!s->st.quarantine_on) {
		const char *v = getenv("MEMFENCE_QUARANTINE");

		/* "off" is the supervisor's word; the client would take it for a path. */
		if (v && strcmp(v, "off") == 0)
			unsetenv("MEMFENCE_QUARANTINE");
		return;
	}
	setenv("MEMFENCE_STATE_DIR", s->quar_dir, 1);
	setenv("MEMFENCE_QUARANTINE", s->quar_spec, 1);
	if (s->launch.account == 1)
		setenv("MEMFENCE_QUARANTINE_RECORDER", "supervisor", 1);
}

/* In the forked child: undo what only the supervisor wants, then become
 * the program. Never returns. */
static void child_exec(struct sup *s)
{
	sigset_t none;
	char buf[16];
	int fd, status, n;

	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		signal(forwarded[i], SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* The program must stay the OOM killer's choice, not inherit -1000. */
	if (s->st.oom_adj_held) {
		n = snprintf(buf, sizeof(buf), "%d", s->oom_adj_orig);
		fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			if (write(fd, buf, (size_t)n) != n)
				mf_warn("cannot reset the program's oom_score_adj: %s", strerror(errno));
			close(fd);
		}
	}
	if (mf_launch_prepare(&s->launch, &s->plan, &status) != 0)
		_exit(status);
	quarantine_env(s);
	auto_python(s);
	if (s->profile) {
		/* Beside the post-mortems, so that both outlive the program. */
		setenv("MEMFENCE_PROFILE_DIR", s->cfg.report_dir, 1);
		if (getenv("MEMFENCE_PROFILE_SIGNAL") == NULL)
			setenv("MEMFENCE_PROFILE_SIGNAL", "1", 1);
	}
	_exit(mf_launch_exec(s->argv));
}

static int start_child(struct sup *s)
{
	pid_t pid;

	if (s->launch.account == 1) {
		int err;

		sup_seg_close(&s->seg, 1);
		err = sup_seg_create(&s->seg, s->launch.segment, (int32_t)getpid());
		if (err) {
			mf_err("cannot create the stats segment %s: %s", s->launch.segment, strerror(-err));
			return -1;
		}
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		mf_err("cannot start the program: fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0)
		child_exec(s);
	s->st.child_pid = pid;
	s->st.child_up = 1;
	s->seg.hold_pid = pid;
	s->child_start_ms = sup_now_ms();
	s->st.child_started_s = sup_real_ns() / 1000000000u;
	sample(s);
	s->oom_at_start = s->st.oom_kill;
	s->failed_at_start = failures_total(&s->st);
	return 0;
}

/* The program ended with wait status ws: classify, report, decide. */
static void child_ended(struct sup *s, int ws, struct sup_death *d)
{
	struct sup_state *st = &s->st;
	int reportable;

	s->seg.hold_pid = 0;
	s->dying_pid = st->child_pid;
	s->dying_ws = ws;
	sample(s);
	s->dying_pid = 0;
	memset(d, 0, sizeof(*d));
	d->oom_before = s->oom_at_start;
	d->oom_after = st->oom_kill;
	d->runtime_ms = sup_now_ms() - s->child_start_ms;
	if (WIFEXITED(ws)) {
		d->cause = SUP_CAUSE_EXIT;
		d->status = WEXITSTATUS(ws);
		snprintf(d->detail, sizeof(d->detail), "the program exited with status %d", d->status);
		reportable = d->status != 0 && failures_total(st) > s->failed_at_start;
		if (reportable)
			snprintf(d->detail, sizeof(d->detail),
				 "the program exited with status %d after %llu refused allocation(s)",
				 d->status, (unsigned long long)(failures_total(st) - s->failed_at_start));
	} else {
		d->status = WTERMSIG(ws);
		d->core = WCOREDUMP(ws);
		if (d->status == SIGKILL && d->oom_after > d->oom_before) {
			d->cause = SUP_CAUSE_OOM_KILL;
			snprintf(d->detail, sizeof(d->detail),
				 "the program was OOM-killed by the kernel (SIGKILL; cgroup oom_kill %llu -> %llu)",
				 (unsigned long long)d->oom_before, (unsigned long long)d->oom_after);
		} else if (d->status == SIGKILL) {
			d->cause = SUP_CAUSE_SIGKILL;
			snprintf(d->detail, sizeof(d->detail),
				 "the program was killed by SIGKILL, not by the OOM killer (oom_kill counter unchanged at %llu)",
				 (unsigned long long)d->oom_after);
		} else {
			d->cause = SUP_CAUSE_SIGNAL;
			snprintf(d->detail, sizeof(d->detail), "the program was killed by SIG%s%s",
				 sigabbrev_np(d->status) ? sigabbrev_np(d->status) : "?",
				 d->core ? " (core dumped)" : "");
		}
		/* A signal we passed on is a requested stop, not a death. */
		reportable = !(d->status == s->last_forwarded && d->cause == SUP_CAUSE_SIGNAL);
	}
	s->oom_pending_ms = 0;
	st->exits[d->cause]++;
	if (reportable)
		write_report(s, d);
	st->child_up = 0;
	st->child_pid = 0;
	/* The dead program's scopes are in the report; start clean. */
	st->nscopes = 0;
	st->scopes_in_flight = 0;
}

static int exit_code(int ws)
{
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws);
	return 128 + WTERMSIG(ws);
}

static int should_restart(const struct sup *s, const struct sup_death *d)
{
	if (s->stopping)
		return 0;
	switch (s->cfg.restart) {
	case RESTART_ALWAYS: return 1;
	case RESTART_ON_OOM: return d->cause == SUP_CAUSE_OOM_KILL;
	default: return 0;
	}
}

static uint64_t backoff_ms(struct sup *s, uint64_t ran_ms)
{
	uint64_t d = s->cfg.delay_ms;

	/* A program that ran a good while before ending starts the series
	 * again: the backoff is for crash loops. */
	if (ran_ms >= 2 * s->cfg.max_delay_ms + 10000)
		s->quick_failures = 0;
	for (unsigned i = 0; i < s->quick_failures && d < s->cfg.max_delay_ms; i++)
		d *= 2;
	s->quick_failures++;
	return d < s->cfg.max_delay_ms ? d : s->cfg.max_delay_ms;
}

static int stop_signal(int sig)
{
	return sig == SIGTERM || sig == SIGINT || sig == SIGQUIT;
}

static int setup_fds(struct sup *s)
{
	sigset_t set;
	struct itimerspec its = {0};

	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&set, forwarded[i]);
	sigaddset(&set, SIGCHLD);
	/* Blocked before any thread starts, so the HTTP thread inherits the
	 * mask and every signal reaches the signalfd. */
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	s->sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (s->sfd < 0 || s->tfd < 0)
		return -1;
	its.it_value.tv_sec = (time_t)(s->cfg.interval_ms / 1000);
	its.it_value.tv_nsec = (long)(s->cfg.interval_ms % 1000) * 1000000;
	its.it_interval = its.it_value;
	return timerfd_settime(s->tfd, 0, &its, NULL);
}

/*
 * The loop: signals and the sampling timer, until the program has ended for
 * good (returns 0, its exit code in *code) or a restart is due (returns 1
 * once the backoff delay has passed; probes and metrics go on meanwhile).
 */
static int loop(struct sup *s, int *code)
{
	uint64_t restart_at = 0;
	struct pollfd pf[2] = {{.fd = s->sfd, .events = POLLIN}, {.fd = s->tfd, .events = POLLIN}};

	for (;;) {
		struct signalfd_siginfo si;
		uint64_t expirations;

		if (poll(pf, 2, -1) < 0 && errno != EINTR) {
			mf_err("poll: %s", strerror(errno));
			*code = MF_EXIT_FAILURE;
			return 0;
		}
		while (read(s->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			int sig = (int)si.ssi_signo;

			if (sig != SIGCHLD) {
				if (stop_signal(sig)) {
					s->stopping = 1;
					sup_model_freeze();
				}
				if (s->st.child_up) {
					s->last_forwarded = sig;
					/* Ctrl-C, Ctrl-\, a resized or hung-up terminal:
					 * the kernel signals the whole foreground process
					 * group, the program included. Sending it again
					 * would deliver it twice. */
					if (!(si.ssi_code == SI_KERNEL &&
					      getpgid(s->st.child_pid) == getpgrp()))
						kill(s->st.child_pid, sig);
				} else if (s->stopping) {
					/* Waiting to restart: nothing to stop but us. */
					return 0;
				}
				continue;
			}
			/* SIGCHLD: reap everything, ours and adopted orphans. */
			for (;;) {
				int ws;
				pid_t p = waitpid(-1, &ws, WNOHANG);
				struct sup_death d;

				if (p <= 0)
					break;
				if (!s->st.child_up || p != s->st.child_pid)
					continue;
				child_ended(s, ws, &d);
				*code = exit_code(ws);
				if (!should_restart(s, &d))
					return 0;
				restart_at = sup_now_ms() + backoff_ms(s, d.runtime_ms);
				fprintf(stderr, "memfence: restarting the program in %.1fs\n",
					(double)(restart_at - sup_now_ms()) / 1000.0);
			}
		}
		if (read(s->tfd, &expirations, sizeof(expirations)) > 0)
			tick(s);
		if (restart_at && sup_now_ms() >= restart_at)
			return 1;
	}
}

/*
 * Segments of supervisors that were killed (SIGKILL leaves no chance to
 * remove them) would pile up in /dev/shm outside containers, where PIDs are
 * not reused as quickly: remove memfence-run-PID.seg files whose PID is gone
 * and whose header says that PID created them. In a container the
 * supervisor is PID 1 and its next start replaces its own file anyway.
 */
static void sweep_segments(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[MF_PATH_MAX], *end;
		struct mf_segread r;
		long pid;
		int stale;

		if (strncmp(e->d_name, "memfence-run-", 13) != 0)
			continue;
		pid = strtol(e->d_name + 13, &end, 10);
		if (pid <= 0 || strcmp(end, ".seg") != 0 || pid == getpid() ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (mf_segread_open(&r, path, 0) != 0)
			continue;
		stale = r.hdr->owner_pid == pid;
		mf_segread_close(&r);
		if (stale)
			unlink(path);
	}
	closedir(d);
}

static int prepare_dirs(struct sup *s)
{
	char path[MF_PATH_MAX];
	int rc;

	if (s->cfg.state_dir) {
		if (mkdir(s->cfg.state_dir, 0755) < 0 && errno != EEXIST) {
			mf_err("cannot create the state directory %s: %s", s->cfg.state_dir,
			       strerror(errno));
			return -1;
		}
		rc = sup_journal_recover(s->cfg.state_dir, s->cfg.report_dir, path, sizeof(path));
		if (rc == 1)
			fprintf(stderr,
				"memfence: the previous run ended without a report; its post-mortem: %s\n",
				path);
	}
	return 0;
}

int mf_cmd_run(int argc, char **argv)
{
	static struct option longopts[32 + NRUN_OPTS];
	static const struct option launch_opts[] = {MF_LAUNCH_LONGOPTS};
	static char segpath[MF_PATH_MAX];
	struct sup *s = &S;
	struct mf_memory mem;
	char err[512];
	int opt, code = 0, have_mem;
	size_t n = 0;

	memset(s, 0, sizeof(*s));
	s->launch.account = -1;
	s->sfd = s->tfd = -1;
	for (size_t i = 0; i < sizeof(launch_opts) / sizeof(launch_opts[0]); i++)
		longopts[n++] = launch_opts[i];
	for (size_t i = 0; i < NRUN_OPTS; i++)
		longopts[n++] = (struct option){run_opts[i].name, required_argument, NULL,
						run_opts[i].val};
	longopts[n++] = (struct option){"no-auto-python", no_argument, NULL, O_NO_AUTO_PY};
	longopts[n++] = (struct option){"no-quarantine", no_argument, NULL, O_NO_QUARANTINE};
	longopts[n++] = (struct option){"profile", no_argument, NULL, O_PROFILE};
	longopts[n++] = (struct option){"help", no_argument, NULL, 'h'};
	longopts[n] = (struct option){NULL, 0, NULL, 0};

	while ((opt = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		if (mf_launch_opt(&s->launch, opt, optarg))
			continue;
		if (opt == O_NO_AUTO_PY) {
			s->no_auto_python = 1;
			continue;
		}
		if (opt == O_NO_QUARANTINE) {
			s->no_quarantine = 1;
			continue;
		}
		if (opt == O_PROFILE) {
			s->profile = 1;
			continue;
		}
		if (opt > MF_OPT_LAUNCH_LAST && opt < O_LAST) {
			s->cfg.val[opt] = optarg;
			continue;
		}
		if (opt == 'h') {
			usage(stdout);
			return 0;
		}
		fprintf(stderr, "Try 'memfence run --help'.\n");
		return MF_EXIT_USAGE;
	}
	if (optind >= argc) {
		mf_err("run: no program given (memfence run [OPTIONS] -- PROGRAM [ARGS...])");
		return MF_EXIT_USAGE;
	}
	s->argv = argv + optind;
	mf_launch_env(&s->launch);
	if (s->launch.account < 0)
		s->launch.account = 1;

	/* The plan as the program will get it (the child resolves it again
	 * when it applies it; this copy is for headroom and health). */
	have_mem = mf_memory_read(s->launch.root, 0, &mem, err, sizeof(err)) == 0;
	if (!have_mem)
		memset(&mem, 0, sizeof(mem));
	if (mf_plan_resolve(&s->launch.plan_opts, have_mem ? &mem : NULL, &s->plan, err,
			    sizeof(err)) != 0) {
		mf_err("%s", err);
		return MF_EXIT_USAGE;
	}
	s->cfg.quarantine = "";
	if (resolve_cfg(&s->cfg, &s->plan) < 0)
		return MF_EXIT_USAGE;
	s->st.quarantine_on = !s->no_quarantine && s->cfg.quarantine;
	s->seg.on_dead = on_dead;
	s->seg.dead_ctx = s;
	if (s->launch.heap_limit && s->launch.account == 0) {
		mf_err("--heap-limit needs accounting (drop --no-account)");
		return MF_EXIT_USAGE;
	}
	{
		const char *v = getenv("MEMFENCE_PROFILE");
		if (v && *v && strcmp(v, "0") != 0)
			s->profile = 1;
	}
	if (s->profile && s->launch.account == 0) {
		mf_err("--profile needs accounting (drop --no-account)");
		return MF_EXIT_USAGE;
	}
	if (s->profile) {
		int e = sup_mkdirs(s->cfg.report_dir);
		if (e != 0) {
			mf_err("cannot create the report directory %s: %s", s->cfg.report_dir,
			       strerror(-e));
			return MF_EXIT_FAILURE;
		}
	}
	if (s->launch.account == 1 && !mf_preload_path("libmemfence.so")) {
		mf_err("libmemfence.so not found (looked in $MEMFENCE_LIBDIR, next to memfence, and %s); "
		       "use --no-account to run without accounting",
		       MF_PRELOADDIR);
		return MF_EXIT_FAILURE;
	}

	sup_cgroup_init(&s->cg, &mem, s->launch.root);
	s->st.limit = s->plan.limit;
	s->st.reserve = s->plan.reserve;
	s->st.budget = s->plan.budget;
	/* Without a memory cgroup limit (or one given), "the container" is
	 * the machine, whose usage the cgroup read does not describe: the
	 * check would refuse allocations on other processes' account. */
	if (s->plan.limit_source == MF_LIMIT_MEMTOTAL || s->plan.limit_source == MF_LIMIT_NONE)
		s->cfg.container_min = 0;
	s->st.container_min = s->cfg.container_min;
	memcpy(s->st.limit_from, s->plan.limit_from, sizeof(s->st.limit_from));
	s->st.limit_from[sizeof(s->st.limit_from) - 1] = '\0';
	snprintf(s->st.cgroup, sizeof(s->st.cgroup), "%s", mem.cgroup_path);
	s->st.cgroup_version = mem.cgroup_version;
	s->st.sup_pid = getpid();
	s->st.pid1 = getpid() == 1;
	s->st.started_s = sup_real_ns() / 1000000000u;
	s->st.accounting = s->launch.account == 1;
	if (s->cfg.health.fail_window_s == 0)
		s->cfg.health.fail_window_s = 60;
	sup_health_init(&s->health, &s->cfg.health);

	if (s->launch.account == 1) {
		if (!s->launch.segment) {
			if (s->cfg.state_dir)
				snprintf(segpath, sizeof(segpath), "%s/%s", s->cfg.state_dir,
					 SUP_STATE_SEGMENT);
			else {
				const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

				sweep_segments(dir);
				snprintf(segpath, sizeof(segpath), "%s/memfence-run-%d.seg", dir,
					 (int)getpid());
			}
			s->launch.segment = segpath;
		}
		snprintf(s->st.segment, sizeof(s->st.segment), "%s", s->launch.segment);
	}
	if (s->st.quarantine_on) {
		snprintf(s->quar_dir, sizeof(s->quar_dir), "%s",
			 s->cfg.state_dir ? s->cfg.state_dir : mf_quarantine_default_state_dir());
		if (sup_quar_start(s->cfg.quarantine, s->quar_dir, err, sizeof(err)) != 0) {
			mf_err("%s", err);
			return MF_EXIT_USAGE;
		}
		/* What the program gets, spelled so its client opens the same store. */
		if ((s->cfg.quarantine[0]
			     ? snprintf(s->quar_spec, sizeof(s->quar_spec), "%s", s->cfg.quarantine)
			     : snprintf(s->quar_spec, sizeof(s->quar_spec), "sqlite:%s/%s",
					s->quar_dir, MF_QUARANTINE_FILE)) >= (int)sizeof(s->quar_spec)) {
			mf_err("quarantine store name too long: %s", s->cfg.quarantine);
			sup_quar_stop();
			return MF_EXIT_USAGE;
		}
	}
	if (prepare_dirs(s) < 0) {
		sup_quar_stop();
		return MF_EXIT_FAILURE;
	}
	if (!s->st.pid1) {
		s->st.subreaper = prctl(PR_SET_CHILD_SUBREAPER, 1) == 0;
		if (!s->st.subreaper)
			mf_warn("cannot become a child subreaper (%s): orphans of the program will not be reaped here",
				strerror(errno));
	}
	if (setup_fds(s) < 0) {
		mf_err("cannot set up signal handling: %s", strerror(errno));
		sup_quar_stop();
		return MF_EXIT_FAILURE;
	}
	if (s->cfg.http) {
		s->http = sup_http_start(s->cfg.http, err, sizeof(err));
		if (!s->http) {
			mf_err("%s", err);
			code = MF_EXIT_FAILURE;
			goto out_fds;
		}
	}
	oom_protect(s);
	/* The supervisor shares the program's memory cgroup: when the program
	 * sits at the limit, the kernel reclaims from everyone in it, and a
	 * probe that has to fault the supervisor's code back in answers late.
	 * Locking what is mapped now (threads and arenas exist by here) keeps
	 * it resident; it needs CAP_IPC_LOCK or a large enough
	 * RLIMIT_MEMLOCK, and is only an improvement: no warning without. */
	s->st.memory_locked = mlockall(MCL_CURRENT | MCL_ONFAULT) == 0;
	sup_model_start(&s->st, s->cfg.state_dir, s->cfg.report_dir);
	sample(s);
	s->st.oom_kill_at_start = s->st.oom_kill;
	for (;;) {
		if (start_child(s) < 0) {
			code = MF_EXIT_FAILURE;
			break;
		}
		tick(s);
		if (loop(s, &code) == 0)
			break;
		s->st.restarts++;
	}
	if (s->http)
		sup_http_stop(s->http);
	sup_model_stop(&s->st);
	if (s->cfg.state_dir)
		sup_journal_close(s->cfg.state_dir);
out_fds:
	sup_quar_stop();
	sup_seg_close(&s->seg, 1);
	close(s->sfd);
	close(s->tfd);
	return code;
}
