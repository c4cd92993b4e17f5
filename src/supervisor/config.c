/*
 * config.c - `memfence run`'s supervisor options: the table, and their
 * defaults and validation into a struct sup_config. A value that means
 * nothing is refused here, before anything starts, with the option's name.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/env.h"
#include "base/envspec.h"
#include "base/size.h"
#include "host/file.h"
#include "host/model.h"
#include "host/msg.h"
#include "store/quarantine.h"
#include "supervisor/config.h"
#include "supervisor/http.h"

const struct mf_option sup_options[] = {
	{.name = "http", .key = SUP_OPT_HTTP, .has_arg = required_argument, .arg = "ADDR:PORT|off",
	 .env = MF_ENV(HTTP), .def = "0.0.0.0:9090",
	 .help = "serve /livez /readyz /metrics /status here"},
	{.name = "restart", .key = SUP_OPT_RESTART, .has_arg = required_argument,
	 .arg = "never|on-oom|always", .env = MF_ENV(RESTART), .def = "never",
	 .help = "restart the program when it ends"},
	{.name = "restart-delay", .key = SUP_OPT_RESTART_DELAY, .has_arg = required_argument,
	 .arg = "DURATION", .env = MF_ENV(RESTART_DELAY), .def = "1s",
	 .help = "first restart delay, doubled at each quick\nfailure"},
	{.name = "restart-max-delay", .key = SUP_OPT_RESTART_MAX, .has_arg = required_argument,
	 .arg = "DURATION", .env = MF_ENV(RESTART_MAX_DELAY), .def = "30s",
	 .help = "cap of the restart delay"},
	{.name = "report-dir", .key = SUP_OPT_REPORT_DIR, .has_arg = required_argument, .arg = "DIR",
	 .env = MF_ENV(REPORT_DIR), .shown = "STATE_DIR/reports, else /tmp/memfence",
	 .help = "where post-mortem reports go"},
	{.name = "state-dir", .key = SUP_OPT_STATE_DIR, .has_arg = required_argument, .arg = "DIR",
	 .env = MF_ENV(STATE_DIR), .shown = "none",
	 .help = "journal for post-mortems that outlive the\nsupervisor"},
	{.name = "quarantine", .key = SUP_OPT_QUARANTINE, .has_arg = required_argument,
	 .arg = "STORE|off", .env = MF_ENV(QUARANTINE),
	 .shown = "STATE_DIR/" MF_QUARANTINE_FILE,
	 .help = "record deaths of scopes with an id here\n(sqlite:PATH, PATH, redis://...)"},
	{.name = "quarantine-ttl", .key = SUP_OPT_QUARANTINE_TTL, .has_arg = required_argument,
	 .arg = "DURATION|off", .env = MF_QUARANTINE_TTL_ENV, .def = MF_QUARANTINE_TTL_DEFAULT,
	 .help = "a quarantine record expires this long after\nits last death"},
	{.name = "request-need", .key = SUP_OPT_NEED, .has_arg = required_argument,
	 .arg = "SIZE|PCT|auto", .env = MF_ENV(REQUEST_NEED), .def = "auto",
	 .help = "headroom a request needs\n(auto: p95 of the scopes' peaks in the model)"},
	{.name = "ready-grace", .key = SUP_OPT_GRACE, .has_arg = required_argument, .arg = "DURATION",
	 .env = MF_ENV(READY_GRACE), .def = "10s",
	 .help = "low headroom this long makes /readyz fail"},
	{.name = "ready-hysteresis", .key = SUP_OPT_HYST, .has_arg = required_argument, .arg = "PCT",
	 .env = MF_ENV(READY_HYSTERESIS), .def = "50%",
	 .help = "ready again above the need plus this much"},
	{.name = "ready-pressure", .key = SUP_OPT_PRESSURE, .has_arg = required_argument,
	 .arg = "PCT|off", .env = MF_ENV(READY_PRESSURE), .def = "40%",
	 .help = "cgroup v2: full memory pressure (avg10)\nthat fails /readyz"},
	{.name = "ready-tcp", .key = SUP_OPT_READY_TCP, .has_arg = required_argument,
	 .arg = "[ADDR:]PORT|off", .env = MF_ENV(READY_TCP), .def = "off",
	 .help = "after each start, /readyz fails until the\nprogram accepts a connection here"},
	{.name = "live-after", .key = SUP_OPT_LIVE_AFTER, .has_arg = required_argument,
	 .arg = "DURATION", .env = MF_ENV(LIVE_AFTER), .def = "60s",
	 .help = "not ready this long makes /livez fail"},
	{.name = "live-refused", .key = SUP_OPT_LIVE_REFUSED, .has_arg = required_argument,
	 .arg = "DURATION", .env = MF_ENV(LIVE_REFUSED), .def = "10s",
	 .help = "allocations refused this long at the budget\nmakes /livez fail"},
	{.name = "stuck-after", .key = SUP_OPT_STUCK_AFTER, .has_arg = required_argument,
	 .arg = "DURATION|off", .env = MF_ENV(STUCK_AFTER), .def = "15s",
	 .help = "not ready for memory this long with nothing\nin flight: recycled (or /livez fails)"},
	{.name = "fail-ratio", .key = SUP_OPT_FAIL_RATIO, .has_arg = required_argument, .arg = "PCT",
	 .env = MF_ENV(FAIL_RATIO), .def = "50%",
	 .help = "share of scopes failing on allocation\nthat makes /livez fail"},
	{.name = "fail-window", .key = SUP_OPT_FAIL_WINDOW, .has_arg = required_argument,
	 .arg = "DURATION", .env = MF_ENV(FAIL_WINDOW), .def = "60s",
	 .help = "window of that share (at most 600s)"},
	{.name = "fail-min", .key = SUP_OPT_FAIL_MIN, .has_arg = required_argument, .arg = "N",
	 .env = MF_ENV(FAIL_MIN), .def = "10",
	 .help = "scopes needed in the window before the share\ncounts"},
	{.name = "container-check", .key = SUP_OPT_CONTAINER, .has_arg = required_argument,
	 .arg = "SIZE|off", .env = MF_ENV(CONTAINER_CHECK), .def = "1M",
	 .help = "allocations this large fail when the\ncontainer has no headroom"},
	{.name = "recycle", .key = SUP_OPT_RECYCLE, .has_arg = required_argument, .arg = "auto|on|off",
	 .env = MF_ENV(RECYCLE), .def = "auto",
	 .help = "drain and replace the program, or its leaking\n"
		 "pre-fork child, before memory runs out (auto:\n"
		 "when --restart is on-oom or always)"},
	{.name = "recycle-before", .key = SUP_OPT_RECYCLE_BEFORE, .has_arg = required_argument,
	 .arg = "DURATION", .env = MF_ENV(RECYCLE_BEFORE), .def = "5m",
	 .help = "recycle when the leak forecast reaches the\nbudget within this"},
	{.name = "recycle-jitter", .key = SUP_OPT_RECYCLE_JITTER, .has_arg = required_argument,
	 .arg = "DURATION", .env = MF_ENV(RECYCLE_JITTER), .def = "1m",
	 .help = "recycle up to this much earlier, drawn at\nrandom at each start"},
	{.name = "recycle-min-interval", .key = SUP_OPT_RECYCLE_INTERVAL, .has_arg = required_argument,
	 .arg = "DURATION", .env = MF_ENV(RECYCLE_MIN_INTERVAL), .def = "1m",
	 .help = "at most one recycle per this long"},
	{.name = "drain-delay", .key = SUP_OPT_DRAIN_DELAY, .has_arg = required_argument,
	 .arg = "DURATION", .env = MF_ENV(DRAIN_DELAY), .def = "5s",
	 .help = "/readyz fails this long before a recycled\nprogram is stopped"},
	{.name = "drain-timeout", .key = SUP_OPT_DRAIN_TIMEOUT, .has_arg = required_argument,
	 .arg = "DURATION", .env = MF_ENV(DRAIN_TIMEOUT), .def = "30s",
	 .help = "then scopes in flight get this long to end"},
	{.name = "recycle-grace", .key = SUP_OPT_RECYCLE_GRACE, .has_arg = required_argument,
	 .arg = "DURATION", .env = MF_ENV(RECYCLE_GRACE), .def = "10s",
	 .help = "SIGKILL this long after a recycle's SIGTERM"},
	{.name = "max-memory-per-child", .key = SUP_OPT_MAX_MEM_CHILD, .has_arg = required_argument,
	 .arg = "SIZE|PCT|off", .env = MF_ENV(MAX_MEMORY_PER_CHILD), .def = "50%",
	 .help = "not clean: live heap or VmData above this\nafter a failure released its memory"},
	{.name = "sample-interval", .key = SUP_OPT_INTERVAL, .has_arg = required_argument,
	 .arg = "DURATION", .env = MF_ENV(SAMPLE_INTERVAL), .def = "100ms",
	 .help = "how often the cgroup and the segment are read"},
	{.name = "model-window", .key = SUP_OPT_MODEL_WINDOW, .has_arg = required_argument,
	 .arg = "DURATION", .env = MF_ENV(MODEL_WINDOW), .def = MF_STR(MF_MODEL_WINDOW_S) "s",
	 .help = "window of the live heap's floor in the model\n(leak slope, diagnose): 1s to 1h"},
	{.name = "profile-push", .key = SUP_OPT_PROFILE_PUSH, .has_arg = required_argument,
	 .arg = "URL|off", .env = MF_ENV(PROFILE_PUSH), .def = "off",
	 .help = "with --profile: push the heap profile to this\n"
		 "Pyroscope-compatible server (URL/ingest)"},
	{.name = "profile-push-interval", .key = SUP_OPT_PROFILE_PUSH_INTERVAL,
	 .has_arg = required_argument, .arg = "DURATION", .env = MF_ENV(PROFILE_PUSH_INTERVAL),
	 .def = "60s", .help = "how often it is pushed: 1s to 1h"},
	{.name = "profile-push-name", .key = SUP_OPT_PROFILE_PUSH_NAME, .has_arg = required_argument,
	 .arg = "NAME", .env = MF_ENV(PROFILE_PUSH_NAME), .shown = "the program's file name",
	 .help = "the application's name there\n(APP or APP{LABEL=VALUE,...})"},
	{.name = "gate", .key = SUP_OPT_GATE, .has_arg = required_argument, .arg = "on|off",
	 .env = MF_ENV(GATE), .def = "on",
	 .help = "requests wait for the memory they need\n(docs/gate.md)"},
	{.name = "gate-wait", .key = SUP_OPT_GATE_WAIT, .has_arg = required_argument,
	 .arg = "DURATION", .env = MF_ENV(GATE_WAIT), .def = "10s",
	 .help = "longest wait of a request without a deadline\nof its own"},
	{.name = "gate-need", .key = SUP_OPT_GATE_NEED, .has_arg = required_argument,
	 .arg = "SIZE|PCT|auto", .env = MF_ENV(GATE_NEED), .def = "auto",
	 .help = "need of a kind of request not learned yet\n(auto: a quarter of the line, at most 64 MiB)"},
	{.name = "gate-quantile", .key = SUP_OPT_GATE_QUANTILE, .has_arg = required_argument,
	 .arg = "PCT", .env = MF_ENV(GATE_QUANTILE), .def = "90%",
	 .help = "percentile of a kind's peaks taken as its\nneed"},
	{.name = "gate-starve", .key = SUP_OPT_GATE_STARVE, .has_arg = required_argument,
	 .arg = "DURATION", .env = MF_ENV(GATE_STARVE), .def = "500ms",
	 .help = "after this long no later request passes a\nwaiting one"},
	{0},
};
#define NOPTS (sizeof(sup_options) / sizeof(sup_options[0]) - 1)

/* The supervisor's flags: sup_config_resolve reads their variables (the
 * quarantine's, MEMFENCE_QUARANTINE=off, as --quarantine's value). */
const struct mf_option sup_flags[] = {
	{.name = "no-quarantine", .key = SUP_OPT_NO_QUARANTINE, .env = MF_ENV(QUARANTINE),
	 .env_is = "off", .help = "no quarantine in any process: no death\n"
		 "recorded, no task or request checked"},
	{.name = "profile", .key = SUP_OPT_PROFILE, .env = MF_ENV(PROFILE), .env_is = "1",
	 .help = "sample the program's heap (docs/profiler.md):\n"
		 "snapshots go to the report directory"},
	{.name = "no-auto-python", .key = SUP_OPT_NO_AUTO_PY, .env = MF_ENV(AUTO_PYTHON),
	 .env_is = "0", .help = "do not put memfence's Python bootstrap on\n"
		 "PYTHONPATH of a Python program"},
	{0},
};

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

/* Every path handed to the program is absolute: a relative one would name
 * another file once the program changes directory (a quarantine check in a
 * new, empty database lets a quarantined task run). */
static int absolute(const char *who, const char *v, char *out, size_t len)
{
	int err = mf_path_absolute(v, out, len);

	if (err)
		mf_err("invalid %s '%s': %s", who, v, strerror(-err));
	return err ? -1 : 0;
}

/* The resolution under way; its buffers are what the resolved paths name. */
struct work {
	const char *const *val;
	const char *http;          /* NULL = off */
	enum sup_restart restart;
	uint64_t delay_ms, max_delay_ms, interval_ms, model_window_s;
	const char *report_dir, *state_dir;
	const char *quarantine;    /* store spec; NULL = off, "" = default */
	char report_dir_buf[MF_PATH_MAX], state_dir_buf[MF_PATH_MAX];
	char quarantine_buf[MF_PATH_MAX + 16];
	char segment_buf[MF_PATH_MAX];
	struct sup_health_cfg health;
	uint64_t container_min;    /* 0 = off */
	struct sup_gate_cfg gate;
	int recycle_mode;          /* -1 auto, 0 off, 1 on */
	struct sup_recycle_cfg recycle;
	struct sup_ready_tcp ready_tcp;
	struct sup_pprof_push push;
	char push_name_buf[256];
};

/* What a push URL or name may hold: printable ASCII without spaces or
 * quotes, so that it goes into a request line and a log line as it is. */
static int push_text(const char *v, size_t max, const char *extra)
{
	size_t n = strlen(v);

	if (n == 0 || n > max)
		return -1;
	for (const char *c = v; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		      strchr(extra, *c)))
			return -1;
	return 0;
}

static int resolve_options(struct work *c, const struct mf_plan *plan)
{
	char who[64];
	const char *msg;

	for (size_t i = 0; i < NOPTS; i++) {
		const struct mf_option *o = &sup_options[i];
		const char *v = mf_opt_value(o, c->val[o->key - SUP_OPT_FIRST], who, sizeof(who));
		uint64_t ms, sz;
		unsigned pct;

		if (!v)
			continue;
		switch (o->key) {
		case SUP_OPT_HTTP: {
			char err[300];

			c->http = strcmp(v, "off") == 0 ? NULL : v;
			/* A bad address is a bad option (exit 2), found before
			 * anything starts. */
			if (c->http && sup_http_check(c->http, err, sizeof(err)) < 0) {
				mf_err("invalid %s %s", who, err);
				return -1;
			}
			break;
		}
		case SUP_OPT_RESTART:
			if (strcmp(v, "never") == 0)
				c->restart = SUP_RESTART_NEVER;
			else if (strcmp(v, "on-oom") == 0)
				c->restart = SUP_RESTART_ON_OOM;
			else if (strcmp(v, "always") == 0)
				c->restart = SUP_RESTART_ALWAYS;
			else
				goto bad;
			break;
		case SUP_OPT_READY_TCP:
			if (strcmp(v, "off") == 0)
				c->ready_tcp.on = 0;
			else if (sup_ready_tcp_parse(v, &c->ready_tcp) < 0)
				goto bad;
			break;
		case SUP_OPT_STUCK_AFTER:
			if (strcmp(v, "off") == 0)
				c->health.stuck_after_ms = 0;
			else if (mf_duration_parse(v, &ms) < 0 || ms == 0)
				goto bad;
			else
				c->health.stuck_after_ms = ms;
			break;
		case SUP_OPT_RESTART_DELAY:
		case SUP_OPT_RESTART_MAX:
		case SUP_OPT_GRACE:
		case SUP_OPT_LIVE_AFTER:
		case SUP_OPT_LIVE_REFUSED:
		case SUP_OPT_FAIL_WINDOW:
		case SUP_OPT_INTERVAL:
		case SUP_OPT_GATE_WAIT:
		case SUP_OPT_GATE_STARVE:
		case SUP_OPT_MODEL_WINDOW:
			if (mf_duration_parse(v, &ms) < 0)
				goto bad;
			if (o->key == SUP_OPT_GATE_WAIT)
				c->gate.max_wait_ms = ms;
			else if (o->key == SUP_OPT_GATE_STARVE)
				c->gate.starve_ms = ms;
			else if (o->key == SUP_OPT_RESTART_DELAY)
				c->delay_ms = ms;
			else if (o->key == SUP_OPT_RESTART_MAX)
				c->max_delay_ms = ms;
			else if (o->key == SUP_OPT_GRACE)
				c->health.grace_ms = ms;
			else if (o->key == SUP_OPT_LIVE_AFTER)
				c->health.live_after_ms = ms;
			else if (o->key == SUP_OPT_LIVE_REFUSED)
				c->health.live_refused_ms = ms;
			else if (o->key == SUP_OPT_FAIL_WINDOW) {
				if (ms < 1000 || ms > SUP_WINDOW_MAX * 1000ull) {
					mf_err("invalid %s '%s': between 1s and %ds", who, v, SUP_WINDOW_MAX);
					return -1;
				}
				c->health.fail_window_s = (unsigned)(ms / 1000);
			} else if (o->key == SUP_OPT_MODEL_WINDOW) {
				if (ms < 1000 || ms > 3600000 || ms % 1000) {
					mf_err("invalid %s '%s': whole seconds from 1s to 1h", who, v);
					return -1;
				}
				c->model_window_s = ms / 1000;
			} else {
				if (ms < 10 || ms > 10000) {
					mf_err("invalid %s '%s': between 10ms and 10s", who, v);
					return -1;
				}
				c->interval_ms = ms;
			}
			break;
		case SUP_OPT_RECYCLE_BEFORE:
		case SUP_OPT_RECYCLE_JITTER:
		case SUP_OPT_RECYCLE_INTERVAL:
		case SUP_OPT_DRAIN_DELAY:
		case SUP_OPT_DRAIN_TIMEOUT:
		case SUP_OPT_RECYCLE_GRACE:
			if (mf_duration_parse(v, &ms) < 0)
				goto bad;
			if (o->key == SUP_OPT_RECYCLE_BEFORE)
				c->recycle.before_s = ms / 1000;
			else if (o->key == SUP_OPT_RECYCLE_JITTER)
				c->recycle.jitter_s = ms / 1000;
			else if (o->key == SUP_OPT_RECYCLE_INTERVAL)
				c->recycle.min_interval_ms = ms;
			else if (o->key == SUP_OPT_DRAIN_DELAY)
				c->recycle.drain_delay_ms = ms;
			else if (o->key == SUP_OPT_DRAIN_TIMEOUT)
				c->recycle.drain_timeout_ms = ms;
			else
				c->recycle.grace_ms = ms;
			break;
		case SUP_OPT_REPORT_DIR:
			if (absolute(who, v, c->report_dir_buf, sizeof(c->report_dir_buf)) < 0)
				return -1;
			c->report_dir = c->report_dir_buf;
			break;
		case SUP_OPT_STATE_DIR:
			if (absolute(who, v, c->state_dir_buf, sizeof(c->state_dir_buf)) < 0)
				return -1;
			c->state_dir = c->state_dir_buf;
			break;
		case SUP_OPT_QUARANTINE:
			c->quarantine = strcmp(v, "off") == 0 ? NULL : v;
			/* The program opens the same store by this name. */
			if (c->quarantine && strncmp(v, "sqlite:", 7) == 0 && v[7] && v[7] != '/') {
				memcpy(c->quarantine_buf, "sqlite:", 7);
				if (absolute(who, v + 7, c->quarantine_buf + 7,
					     sizeof(c->quarantine_buf) - 7) < 0)
					return -1;
				c->quarantine = c->quarantine_buf;
			}
			break;
		case SUP_OPT_PROFILE_PUSH:
			if (strcmp(v, "off") == 0) {
				c->push.url = NULL;
				break;
			}
			if ((strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) ||
			    push_text(v, 1000, ":/._-~%@[]+") != 0) {
				mf_err("invalid %s '%.80s': an http:// or https:// URL of a Pyroscope-compatible "
				       "server (its base, without /ingest or a query)", who, v);
				return -1;
			}
			c->push.url = v;
			break;
		case SUP_OPT_PROFILE_PUSH_INTERVAL:
			if (mf_duration_parse(v, &ms) < 0 || ms < 1000 || ms > 3600000) {
				mf_err("invalid %s '%s': between 1s and 1h", who, v);
				return -1;
			}
			c->push.interval_ms = ms;
			break;
		case SUP_OPT_PROFILE_PUSH_NAME:
			if (push_text(v, 200, "._-{}=,") != 0) {
				mf_err("invalid %s '%.80s': letters, digits and ._- (labels as {key=value,...})",
				       who, v);
				return -1;
			}
			c->push.name = v;
			break;
		case SUP_OPT_QUARANTINE_TTL: {
			int64_t ttl;

			if (mf_quarantine_ttl_parse(v, &ttl) != 0) {
				mf_err("invalid %s '%s': a duration of at least 1s (7d, 12h) or off", who, v);
				return -1;
			}
			/* Every process that opens the store (this one at a death,
			 * the program's at each check) reads it there. */
			if (c->val[o->key - SUP_OPT_FIRST] && setenv(o->env, v, 1) != 0)
				goto bad;
			break;
		}
		case SUP_OPT_NEED:
			if (strcmp(v, "auto") == 0) {
				c->health.need = 0;
			} else if (mf_size_parse(v, plan->budget, &sz, &msg) == 0 && sz > 0) {
				c->health.need = sz;
			} else {
				mf_err("invalid %s '%s': a size, a percentage of the budget, or auto", who, v);
				return -1;
			}
			break;
		case SUP_OPT_HYST:
			if (parse_pct(v, 1000, &pct) < 0)
				goto bad;
			c->health.hysteresis_pct = pct;
			break;
		case SUP_OPT_PRESSURE:
			if (strcmp(v, "off") == 0)
				c->health.pressure_pct = 0;
			else if (parse_pct(v, 100, &pct) < 0 || pct == 0)
				goto bad;
			else
				c->health.pressure_pct = pct;
			break;
		case SUP_OPT_FAIL_RATIO:
			if (parse_pct(v, 100, &pct) < 0 || pct == 0)
				goto bad;
			c->health.fail_pct = pct;
			break;
		case SUP_OPT_FAIL_MIN: {
			char *end;
			unsigned long n = strtoul(v, &end, 10);

			if (end == v || *end || n > 1000000)
				goto bad;
			c->health.fail_min = (unsigned)n;
			break;
		}
		case SUP_OPT_RECYCLE:
			if (strcmp(v, "auto") == 0)
				c->recycle_mode = -1;
			else if (strcmp(v, "on") == 0)
				c->recycle_mode = 1;
			else if (strcmp(v, "off") == 0)
				c->recycle_mode = 0;
			else
				goto bad;
			if (c->val[o->key - SUP_OPT_FIRST] && setenv(o->env, v, 1) != 0)
				goto bad;
			break;
		case SUP_OPT_MAX_MEM_CHILD:
			/* Read by the Python package in each process, as a share
			 * of its own RLIMIT_DATA: passed on as given. */
			if (strcmp(v, "off") != 0 &&
			    (mf_size_parse(v, plan->budget ? plan->budget : 1, &sz, &msg) != 0 || sz == 0))
				goto bad;
			if (c->val[o->key - SUP_OPT_FIRST] && setenv(o->env, v, 1) != 0)
				goto bad;
			break;
		case SUP_OPT_GATE:
			/* Every boolean word, as for every flag variable. */
			if (mf_env_bool(v, &c->gate.on) != 0)
				goto bad;
			break;
		case SUP_OPT_GATE_NEED:
			if (strcmp(v, "auto") == 0) {
				c->gate.default_need = 0;
			} else if (mf_size_parse(v, plan->budget, &sz, &msg) != 0 || sz == 0) {
				goto bad;
			} else if (plan->budget && sz > plan->budget) {
				/* As a percentage above 100%: no request could ever be
				 * admitted, each would fail as too big. */
				char b[32];

				mf_err("invalid %s '%s': above the whole budget (%s), every request "
				       "would be refused as too big",
				       who, v, mf_size_format(plan->budget, b, sizeof(b)));
				return -1;
			} else {
				c->gate.default_need = sz;
			}
			break;
		case SUP_OPT_GATE_QUANTILE:
			if (parse_pct(v, 100, &pct) < 0 || pct == 0)
				goto bad;
			c->gate.quantile = pct / 100.0;
			break;
		case SUP_OPT_CONTAINER:
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
	/* auto: the supervisor replaces the program when the user let it start
	 * the program again anyway; the Python package's own replacement of a
	 * Celery pool process stays on whatever --restart says. */
	c->recycle.on = c->recycle_mode == 1 || (c->recycle_mode < 0 && c->restart != SUP_RESTART_NEVER);
	/* A need is learned from this many scopes of a name. */
	c->gate.min_count = 10;
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

/* ---- the command line into a struct sup_config ---- */

int sup_config_given(struct sup_given *g, int key, const char *arg)
{
	if (key == SUP_OPT_NO_AUTO_PY)
		g->no_auto_python = 1;
	else if (key == SUP_OPT_NO_QUARANTINE)
		g->no_quarantine = 1;
	else if (key == SUP_OPT_PROFILE)
		g->profile = 1;
	else if (key >= SUP_OPT_FIRST && key < SUP_OPT_LAST)
		g->val[key - SUP_OPT_FIRST] = arg;
	else
		return 0;
	return 1;
}

static const struct mf_option *flag(int key)
{
	for (const struct mf_option *o = sup_flags; o->name; o++)
		if (o->key == key)
			return o;
	return NULL;
}

int sup_config_resolve(struct sup_config *cfg, const struct sup_given *g,
		       struct mf_launch *launch, const struct mf_plan *plan,
		       const struct mf_memory *mem, char **argv)
{
	static struct work W;      /* static: the supervisor keeps pointers into it */
	struct work *c = &W;
	int profile = g->profile, auto_python = !g->no_auto_python, on;

	memset(c, 0, sizeof(*c));
	c->val = g->val;
	c->quarantine = "";
	if (launch->segment) {
		if (absolute("--segment", launch->segment, c->segment_buf, sizeof(c->segment_buf)) < 0)
			return -1;
		launch->segment = c->segment_buf;
	}
	if (resolve_options(c, plan) < 0)
		return -1;
	if (launch->heap_limit && launch->account == 0) {
		mf_err("--heap-limit needs accounting (drop --no-account)");
		return -1;
	}
	if (mf_opt_env_bool(flag(SUP_OPT_PROFILE), &on) < 0)
		return -1;
	if (on == 1)
		profile = 1;
	if (mf_opt_env_bool(flag(SUP_OPT_NO_AUTO_PY), &on) < 0)
		return -1;
	if (on == 0)
		auto_python = 0;
	if (profile && launch->account == 0) {
		mf_err("--profile needs accounting (drop --no-account)");
		return -1;
	}
	if (c->push.url && !profile) {
		mf_err("--profile-push needs --profile (the snapshots it pushes)");
		return -1;
	}
	if (c->push.url && !c->push.name) {
		/* The program's file name, in the characters a name may hold. */
		const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
		size_t n = 0;

		for (; *base && n < sizeof(c->push_name_buf) - 1; base++)
			if (push_text((char[]){*base, 0}, 1, "._-") == 0)
				c->push_name_buf[n++] = *base;
		c->push_name_buf[n] = '\0';
		c->push.name = n ? c->push_name_buf : "memfence";
	}
	*cfg = (struct sup_config){
		.launch = *launch,
		.plan = *plan,
		.mem = mem,
		.argv = argv,
		.http = c->http,
		.restart = c->restart,
		.delay_ms = c->delay_ms,
		.max_delay_ms = c->max_delay_ms,
		.interval_ms = c->interval_ms,
		.model_window_s = c->model_window_s,
		.report_dir = c->report_dir,
		.state_dir = c->state_dir,
		.quarantine = g->no_quarantine ? NULL : c->quarantine,
		.health = c->health,
		.ready_tcp = c->ready_tcp,
		.container_min = c->container_min,
		.auto_python = auto_python,
		.profile = profile,
		.profile_push = c->push,
		.gate = c->gate,
		.recycle = c->recycle,
	};
	if (launch->account == 0)
		cfg->gate.on = 0;
	return 0;
}
