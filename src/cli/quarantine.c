/*
 * quarantine.c - `memfence quarantine`: look at and change the poison-task
 * quarantine store, and the record/check verbs the queue and request
 * integrations call (docs/quarantine.md describes the contract).
 *
 * Exit statuses: 0 done (check: the id may run), 1 could not do it (store
 * error, no such record), 2 bad usage or input, 3 (check) the id is
 * quarantined: reject it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "base/envspec.h"
#include "cli/cli.h"
#include "host/options.h"
#include "store/quarantine.h"
#include "base/size.h"

#define EXIT_QUARANTINED 3

enum {
	OPT_QUARANTINE = MF_OPT_KEY_BASE,
	OPT_STATE_DIR,
	OPT_REDIS_TIMEOUT,
	OPT_TTL,
	OPT_JSON,
	OPT_NAME,
	OPT_CAUSE,
	OPT_PEAK,
	OPT_ALLOCATED,
	OPT_NET,
	OPT_HOST,
	OPT_AT,
	OPT_THRESHOLD,
	OPT_ALL,
	OPT_QUARANTINED,
};

/* The store's options, for every verb. */
static const struct mf_option store_options[] = {
	{.name = "quarantine", .key = OPT_QUARANTINE, .has_arg = required_argument, .arg = "STORE",
	 .env = MF_ENV(QUARANTINE), .shown = "STATE_DIR/" MF_QUARANTINE_FILE,
	 .help = "PATH, sqlite:PATH or\nredis://[[USER]:PASSWORD@]HOST[:PORT][/DB]"},
	{.name = "state-dir", .key = OPT_STATE_DIR, .has_arg = required_argument, .arg = "DIR",
	 .env = MF_ENV(STATE_DIR), .shown_fn = mf_quarantine_default_state_dir,
	 .help = "holds the default file and Redis' local copy"},
	{.name = "redis-timeout", .key = OPT_REDIS_TIMEOUT, .has_arg = required_argument,
	 .arg = "MS", .env = MF_ENV(REDIS_TIMEOUT), .shown = MF_STR(MF_QUARANTINE_TIMEOUT_DEFAULT),
	 .help = "connect and command timeout"},
	{.name = "quarantine-ttl", .key = OPT_TTL, .has_arg = required_argument,
	 .arg = "DURATION|off", .env = MF_QUARANTINE_TTL_ENV, .def = MF_QUARANTINE_TTL_DEFAULT,
	 .help = "a record expires this long after its last\ndeath"},
	{.name = "json", .key = OPT_JSON, .help = "machine-readable output"},
	{0},
};

/* The options of one verb or two. */
static const struct mf_option verb_options[] = {
	{.name = "threshold", .key = OPT_THRESHOLD, .has_arg = required_argument, .arg = "N",
	 .env = MF_ENV(QUARANTINE_THRESHOLD), .shown = MF_STR(MF_QUARANTINE_THRESHOLD_DEFAULT),
	 .help = "check, record: deaths before quarantine,\n1.." MF_STR(MF_QUARANTINE_THRESHOLD_MAX)},
	{.name = "name", .key = OPT_NAME, .has_arg = required_argument, .arg = "NAME",
	 .help = "record: the task's or request's name"},
	{.name = "cause", .key = OPT_CAUSE, .has_arg = required_argument, .arg = "CAUSE",
	 .shown = "unknown", .help = "record: what ended the worker"},
	{.name = "peak", .key = OPT_PEAK, .has_arg = required_argument, .arg = "SIZE",
	 .help = "record: the scope's peak memory"},
	{.name = "allocated", .key = OPT_ALLOCATED, .has_arg = required_argument, .arg = "SIZE",
	 .help = "record: bytes the scope allocated"},
	{.name = "net", .key = OPT_NET, .has_arg = required_argument, .arg = "SIZE",
	 .help = "record: bytes the scope held at death"},
	{.name = "host", .key = OPT_HOST, .has_arg = required_argument, .arg = "HOST",
	 .shown = "this host", .help = "record: where the worker ran"},
	{.name = "at", .key = OPT_AT, .has_arg = required_argument, .arg = "MS",
	 .shown = "now", .help = "record: time of death, Unix milliseconds"},
	{.name = "all", .key = OPT_ALL, .help = "clear: every record"},
	{.name = "quarantined", .key = OPT_QUARANTINED, .help = "list: only quarantined ids"},
	{0},
};

static const struct mf_option *const quarantine_tabs[] = {
	store_options, verb_options, mf_help_options, NULL,
};

static const struct mf_option *qopt(int key)
{
	return mf_opts_find(quarantine_tabs, key);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: memfence quarantine [OPTIONS] VERB [ARGS]\n"
		"\n"
		"The poison-task quarantine: tasks and requests in flight when their worker\n"
		"died, counted by id; after THRESHOLD deaths (default %d) an id is quarantined.\n"
		"\n"
		"Verbs:\n"
		"  list [--quarantined]    every record, newest death first\n"
		"  show ID                 one record (exit 1 when there is none)\n"
		"  check ID                exit 0: ID may run; exit 3: ID is quarantined\n"
		"  record ID [--name NAME] [--cause CAUSE] [--peak SIZE] [--allocated SIZE]\n"
		"            [--net SIZE] [--host HOST] [--at MS]\n"
		"                          count one death of ID; prints the record\n"
		"  clear ID | clear --all  forget one record, or all of them\n"
		"  export                  every record as CSV (--json: as JSON, for import)\n"
		"  import FILE|-           records from `export --json` (replaces same ids)\n"
		"  sync                    send deaths kept locally to Redis now\n"
		"\n"
		"Options go anywhere on the line.\n",
		MF_QUARANTINE_THRESHOLD_DEFAULT);
	mf_opts_help(f, "Store", store_options);
	mf_opts_help(f, "Verbs' options", verb_options);
	mf_opts_help(f, NULL, mf_help_options);
	fprintf(f,
		"\n"
		"CAUSE: oom_kill, sigkill, signal, allocation_failure, exit, unknown.\n"
		"Exit status: 0 done (check: may run), 1 failed, 2 bad usage or input,\n"
		"3 (check) quarantined.\n");
}

struct qargs {
	const char *store, *state_dir, *timeout, *threshold;
	const char *name, *cause, *peak, *allocated, *net, *host, *at;
	int json, all, only_quarantined;
};

static int parse_uint(const char *what, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (s == NULL || *s < '0' || *s > '9') {
		mf_err("invalid %s '%s': expected a number", what, s != NULL ? s : "");
		return -1;
	}
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max) {
		mf_err("invalid %s '%s': expected a number from %" PRIu64 " to %" PRIu64, what, s,
		       min, max);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_figure(const char *what, const char *s, uint64_t *out)
{
	const char *msg;

	*out = MF_QUARANTINE_UNKNOWN;
	if (s == NULL)
		return 0;
	if (mf_size_parse(s, 0, out, &msg) != 0) {
		mf_err("invalid %s '%s': %s", what, s, msg);
		return -1;
	}
	return 0;
}

/* ---- output ---- */

static void print_json(json_t *j)
{
	if (j == NULL) {
		mf_err("out of memory");
		return;
	}
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(j);
}

static const char *fig(uint64_t v, char *buf, size_t len)
{
	if (v == MF_QUARANTINE_UNKNOWN)
		return "-";
	return mf_size_format(v, buf, len);
}

static void print_record(const struct mf_quarantine_record *r)
{
	char a[40], b[40], c[32], d[32], e[32];

	printf("id:          %s\n", r->id);
	printf("name:        %s\n", r->name[0] != '\0' ? r->name : "-");
	printf("state:       %s (%" PRIu64 " of %u deaths)\n", mf_quarantine_state_name(r->state),
	       r->deaths, r->threshold);
	printf("first death: %s\n", mf_quarantine_time_format(r->first_death_ms, a, sizeof(a)));
	printf("last death:  %s\n", mf_quarantine_time_format(r->last_death_ms, b, sizeof(b)));
	printf("cause:       %s\n", mf_quarantine_cause_name(r->cause));
	printf("host:        %s\n", r->host[0] != '\0' ? r->host : "-");
	printf("memory:      peak %s, allocated %s, net %s\n", fig(r->peak, c, sizeof(c)),
	       fig(r->allocated, d, sizeof(d)), fig(r->net, e, sizeof(e)));
	if (r->unsynced != 0)
		printf("unsynced:    %" PRIu64 " death(s) kept locally, not yet in Redis\n", r->unsynced);
}

static void print_row_header(void)
{
	printf("%-36s %-24s %6s %-11s %-24s %-18s %10s\n", "ID", "NAME", "DEATHS", "STATE",
	       "LAST DEATH", "CAUSE", "PEAK");
}

static void print_row(const struct mf_quarantine_record *r)
{
	char t[40], p[32];

	printf("%-36s %-24s %6" PRIu64 " %-11s %-24s %-18s %10s%s\n", r->id,
	       r->name[0] != '\0' ? r->name : "-", r->deaths, mf_quarantine_state_name(r->state),
	       mf_quarantine_time_format(r->last_death_ms, t, sizeof(t)),
	       mf_quarantine_cause_name(r->cause), fig(r->peak, p, sizeof(p)),
	       r->unsynced != 0 ? "  (unsynced)" : "");
}

static void csv_field(const char *s, int last)
{
	if (strpbrk(s, ",\"\n\r") != NULL) {
		fputc('"', stdout);
		for (; *s != '\0'; s++) {
			if (*s == '"')
				fputc('"', stdout);
			fputc(*s, stdout);
		}
		fputc('"', stdout);
	} else {
		fputs(s, stdout);
	}
	fputc(last ? '\n' : ',', stdout);
}

static void csv_figure(uint64_t v, int last)
{
	char buf[24];

	if (v == MF_QUARANTINE_UNKNOWN)
		buf[0] = '\0';
	else
		snprintf(buf, sizeof(buf), "%" PRIu64, v);
	csv_field(buf, last);
}

static void print_csv(const struct mf_quarantine_record *r)
{
	char a[40], b[40], n[24], t[16], u[24];

	snprintf(n, sizeof(n), "%" PRIu64, r->deaths);
	snprintf(t, sizeof(t), "%u", r->threshold);
	snprintf(u, sizeof(u), "%" PRIu64, r->unsynced);
	csv_field(r->id, 0);
	csv_field(r->name, 0);
	csv_field(r->host, 0);
	csv_field(n, 0);
	csv_field(t, 0);
	csv_field(mf_quarantine_state_name(r->state), 0);
	csv_field(mf_quarantine_time_format(r->first_death_ms, a, sizeof(a)), 0);
	csv_field(mf_quarantine_time_format(r->last_death_ms, b, sizeof(b)), 0);
	csv_field(mf_quarantine_cause_name(r->cause), 0);
	csv_figure(r->peak, 0);
	csv_figure(r->allocated, 0);
	csv_figure(r->net, 0);
	csv_field(u, 1);
}

/* Say on stderr what the store could not do this time. */
static void report_store(struct mf_qstore *s)
{
	const char *deg = mf_qstore_degraded(s);

	if (mf_qstore_synced(s) != 0)
		mf_info("sent %" PRIu64 " death(s) kept locally to %s",
			mf_qstore_synced(s), mf_qstore_describe(s));
	if (deg != NULL)
		mf_warn("%s; answering from the local copy", deg);
}

/* ---- verbs ---- */

struct list_ctx {
	json_t *arr;
	int csv, only_quarantined;
	uint64_t n;
};

static int list_one(const struct mf_quarantine_record *r, void *arg)
{
	struct list_ctx *c = arg;

	if (c->only_quarantined && r->state != MF_QSTATE_QUARANTINED)
		return 0;
	c->n++;
	if (c->arr == NULL && !c->csv && c->n == 1)
		print_row_header();
	if (c->arr != NULL)
		return json_array_append_new(c->arr, mf_quarantine_to_json(r)) == 0 ? 0 : -ENOMEM;
	if (c->csv)
		print_csv(r);
	else
		print_row(r);
	return 0;
}

static int verb_list(struct mf_qstore *s, const struct qargs *a, int csv)
{
	struct list_ctx c = {NULL, csv, a->only_quarantined, 0};
	json_t *out;
	int rc;

	if (a->json) {
		c.arr = json_array();
		if (c.arr == NULL) {
			mf_err("out of memory");
			return MF_EXIT_FAILURE;
		}
	} else if (csv) {
		printf("id,name,host,deaths,threshold,state,first_death,last_death,cause,peak,"
		       "allocated,net,unsynced\n");
	}
	rc = mf_qstore_list(s, list_one, &c);
	if (rc != 0) {
		mf_err("%s", *mf_qstore_error(s) != '\0' ? mf_qstore_error(s) : strerror(-rc));
		json_decref(c.arr);
		return MF_EXIT_FAILURE;
	}
	report_store(s);
	if (a->json) {
		/* Built after listing: it says whether Redis or the local copy answered. */
		out = mf_qstore_answer(s);
		if (csv)
			json_object_set_new(out, "format", json_string("memfence-quarantine"));
		json_object_set_new(out, "version", json_integer(1));
		json_object_set_new(out, "records", c.arr);
		print_json(out);
	} else if (!csv && c.n == 0) {
		printf("no %srecords in %s\n", a->only_quarantined ? "quarantined " : "",
		       mf_qstore_describe(s));
	}
	return 0;
}

static int verb_show(struct mf_qstore *s, const struct qargs *a, const char *id)
{
	struct mf_quarantine_record r;
	int rc = mf_qstore_get(s, id, &r);

	if (rc != 0) {
		mf_err("%s", mf_qstore_error(s));
		return rc == -EINVAL ? MF_EXIT_USAGE : MF_EXIT_FAILURE;
	}
	report_store(s);
	if (a->json) {
		json_t *o = mf_qstore_answer(s);
		json_object_set_new(o, "record", mf_quarantine_to_json(&r));
		print_json(o);
	} else {
		print_record(&r);
	}
	return 0;
}

static int verb_check(struct mf_qstore *s, const struct qargs *a, const char *id,
		      uint32_t threshold)
{
	struct mf_quarantine_record r;
	bool q;
	int found = mf_qstore_check(s, id, threshold, &r, &q);

	if (found < 0) {
		mf_err("%s", mf_qstore_error(s));
		return found == -EINVAL ? MF_EXIT_USAGE : MF_EXIT_FAILURE;
	}
	report_store(s);
	if (a->json) {
		print_json(mf_qstore_check_answer(s, &r, found, q));
	} else if (q) {
		printf("%s: quarantined after %" PRIu64 " deaths (last: %s)\n", id, r.deaths,
		       mf_quarantine_cause_name(r.cause));
	} else {
		printf("%s: may run (%" PRIu64 " deaths recorded)\n", id, r.deaths);
	}
	return q ? EXIT_QUARANTINED : 0;
}

static int verb_record(struct mf_qstore *s, const struct qargs *a, const char *id,
		       uint32_t threshold)
{
	struct mf_quarantine_death d = {0};
	struct mf_quarantine_record r;
	char hostname[MF_QUARANTINE_HOST_MAX + 1];
	uint64_t at = 0;
	int rc;

	d.id = id;
	d.name = a->name;
	d.threshold = threshold;
	if (a->cause != NULL && mf_quarantine_cause_parse(a->cause, &d.cause) != 0) {
		mf_err("invalid --cause '%s': expected oom_kill, sigkill, signal, allocation_failure, "
		       "exit or unknown", a->cause);
		return MF_EXIT_USAGE;
	}
	if (parse_figure("--peak", a->peak, &d.peak) != 0 ||
	    parse_figure("--allocated", a->allocated, &d.allocated) != 0 ||
	    parse_figure("--net", a->net, &d.net) != 0)
		return MF_EXIT_USAGE;
	if (a->at != NULL && parse_uint("--at (Unix time in milliseconds)", a->at, 1, INT64_MAX, &at) != 0)
		return MF_EXIT_USAGE;
	d.at_ms = (int64_t)at;
	if (a->host != NULL) {
		d.host = a->host;
	} else if (gethostname(hostname, sizeof(hostname)) == 0) {
		hostname[sizeof(hostname) - 1] = '\0';
		d.host = hostname;
	}
	rc = mf_qstore_record(s, &d, &r);
	if (rc < 0) {
		mf_err("%s", mf_qstore_error(s));
		return rc == -EINVAL ? MF_EXIT_USAGE : MF_EXIT_FAILURE;
	}
	if (mf_qstore_synced(s) != 0)
		mf_info("sent %" PRIu64 " death(s) kept locally to %s",
			mf_qstore_synced(s), mf_qstore_describe(s));
	if (rc == 1)
		mf_err("%s; the death of '%s' is kept in the local copy and will be sent when "
		       "Redis answers again", mf_qstore_degraded(s), id);
	if (a->json) {
		print_json(mf_qstore_record_answer(s, &r, rc));
	} else {
		printf("%s: death %" PRIu64 " recorded (%s), %s\n", id, r.deaths,
		       mf_quarantine_cause_name(r.cause),
		       r.state == MF_QSTATE_QUARANTINED ? "quarantined" : "still counting");
	}
	return 0;
}

static int verb_clear(struct mf_qstore *s, const struct qargs *a, const char *id)
{
	uint64_t n = 0;
	int rc;

	if (a->all)
		rc = mf_qstore_clear_all(s, &n);
	else
		rc = mf_qstore_clear(s, id);
	if (rc != 0) {
		mf_err("%s", mf_qstore_error(s));
		return rc == -EINVAL ? MF_EXIT_USAGE : MF_EXIT_FAILURE;
	}
	report_store(s);
	if (!a->all)
		n = 1;
	if (a->json) {
		json_t *o = mf_qstore_answer(s);
		json_object_set_new(o, "cleared", json_integer((json_int_t)n));
		print_json(o);
	} else if (a->all) {
		printf("cleared %" PRIu64 " record(s) from %s\n", n, mf_qstore_describe(s));
	} else {
		printf("cleared %s\n", id);
	}
	return 0;
}

static int verb_import(struct mf_qstore *s, const struct qargs *a, const char *file)
{
	json_error_t jerr;
	json_t *doc, *recs;
	struct mf_quarantine_record *all;
	char why[256];
	size_t i, n;
	int status = 0;

	doc = strcmp(file, "-") == 0 ? json_loadf(stdin, 0, &jerr) : json_load_file(file, 0, &jerr);
	if (doc == NULL) {
		mf_err("cannot read %s: %s (line %d)", strcmp(file, "-") == 0 ? "standard input" : file,
		       jerr.text, jerr.line);
		return MF_EXIT_USAGE;
	}
	recs = json_is_array(doc) ? doc : json_object_get(doc, "records");
	if (!json_is_array(recs)) {
		mf_err("%s: expected the output of `memfence quarantine export --json` (an object "
		       "with \"records\", or an array)", file);
		json_decref(doc);
		return MF_EXIT_USAGE;
	}
	n = json_array_size(recs);
	all = calloc(n + 1, sizeof(*all));
	if (all == NULL) {
		mf_err("out of memory");
		json_decref(doc);
		return MF_EXIT_FAILURE;
	}
	/* All or nothing as far as input goes: check every record first. */
	for (i = 0; i < n; i++) {
		if (mf_quarantine_from_json(json_array_get(recs, i), &all[i], why, sizeof(why)) != 0) {
			mf_err("%s: record %zu: %s", file, i + 1, why);
			status = MF_EXIT_USAGE;
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		if (mf_qstore_put(s, &all[i]) != 0) {
			mf_err("%s (after importing %zu of %zu records)", mf_qstore_error(s), i, n);
			status = MF_EXIT_FAILURE;
			goto out;
		}
	}
	if (a->json) {
		json_t *o = mf_qstore_answer(s);
		json_object_set_new(o, "imported", json_integer((json_int_t)n));
		print_json(o);
	} else {
		printf("imported %zu record(s) into %s\n", n, mf_qstore_describe(s));
	}
out:
	free(all);
	json_decref(doc);
	return status;
}

static int verb_sync(struct mf_qstore *s, const struct qargs *a)
{
	uint64_t n = 0;
	int rc = mf_qstore_sync(s, &n);

	if (rc != 0) {
		mf_err("%s", mf_qstore_error(s));
		return MF_EXIT_FAILURE;
	}
	if (a->json) {
		json_t *o = mf_qstore_answer(s);
		json_object_set_new(o, "sent", json_integer((json_int_t)n));
		print_json(o);
	} else if (!mf_qstore_is_redis(s)) {
		printf("%s is not a Redis store: nothing to send\n", mf_qstore_describe(s));
	} else {
		printf("sent %" PRIu64 " death(s) kept locally to %s\n", n, mf_qstore_describe(s));
	}
	return 0;
}

/* Which verbs take which per-verb options. */
static int only_for(const char *verb, const char *allowed, const char *opt, const void *set)
{
	if (set == NULL)
		return 0;
	if (strstr(allowed, verb) == NULL) {
		mf_err("%s does not apply to `quarantine %s`", opt, verb);
		return -1;
	}
	return 0;
}

int mf_cmd_quarantine(int argc, char **argv)
{
	struct qargs a = {0};
	struct mf_qstore_opts so = {0};
	struct mf_qstore *s = NULL;
	const char *verb, *arg = NULL;
	char err[PATH_MAX + 512], why[160], who[96];
	struct mf_opts opts;
	uint64_t v, threshold = 0;
	int opt, nargs, status;

	mf_opts_init(&opts, "", quarantine_tabs);
	while ((opt = getopt_long(argc, argv, opts.shortopts, opts.longopts, NULL)) != -1) {
		switch (opt) {
		case 'h': usage(stdout); return 0;
		case OPT_QUARANTINE: a.store = optarg; break;
		case OPT_STATE_DIR: a.state_dir = optarg; break;
		case OPT_REDIS_TIMEOUT: a.timeout = optarg; break;
		case OPT_TTL: so.ttl = optarg; break;
		case OPT_THRESHOLD: a.threshold = optarg; break;
		case OPT_JSON: a.json = 1; break;
		case OPT_NAME: a.name = optarg; break;
		case OPT_CAUSE: a.cause = optarg; break;
		case OPT_PEAK: a.peak = optarg; break;
		case OPT_ALLOCATED: a.allocated = optarg; break;
		case OPT_NET: a.net = optarg; break;
		case OPT_HOST: a.host = optarg; break;
		case OPT_AT: a.at = optarg; break;
		case OPT_ALL: a.all = 1; break;
		case OPT_QUARANTINED: a.only_quarantined = 1; break;
		default:
			fprintf(stderr, "Try 'memfence quarantine --help'.\n");
			return MF_EXIT_USAGE;
		}
	}
	nargs = argc - optind;
	if (nargs < 1) {
		usage(stderr);
		return MF_EXIT_USAGE;
	}
	verb = argv[optind];
	if (nargs > 1)
		arg = argv[optind + 1];

	struct {
		const char *name;
		int nargs; /* positional arguments after the verb */
	} verbs[] = {{"list", 0}, {"show", 1}, {"check", 1}, {"record", 1}, {"clear", -1},
		     {"export", 0}, {"import", 1}, {"sync", 0}};
	int found = -1;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(verb, verbs[i].name) == 0)
			found = (int)i;
	if (found < 0) {
		mf_err("unknown quarantine verb '%s' (list, show, check, record, clear, export, "
		       "import, sync)", verb);
		return MF_EXIT_USAGE;
	}
	if (strcmp(verb, "clear") == 0) {
		if ((a.all && nargs != 1) || (!a.all && nargs != 2)) {
			mf_err("usage: memfence quarantine clear ID | clear --all");
			return MF_EXIT_USAGE;
		}
	} else if (nargs - 1 != verbs[found].nargs) {
		if (verbs[found].nargs == 0)
			mf_err("`quarantine %s` takes no argument (got '%s')", verb, arg);
		else
			mf_err("usage: memfence quarantine %s %s", verb,
			       strcmp(verb, "import") == 0 ? "FILE|-" : "ID");
		return MF_EXIT_USAGE;
	}
	if (only_for(verb, "record", "--name", a.name) || only_for(verb, "record", "--cause", a.cause) ||
	    only_for(verb, "record", "--peak", a.peak) ||
	    only_for(verb, "record", "--allocated", a.allocated) ||
	    only_for(verb, "record", "--net", a.net) || only_for(verb, "record", "--host", a.host) ||
	    only_for(verb, "record", "--at", a.at) ||
	    only_for(verb, "record check", "--threshold", a.threshold) ||
	    only_for(verb, "clear", "--all", a.all ? "" : NULL) ||
	    only_for(verb, "list", "--quarantined", a.only_quarantined ? "" : NULL))
		return MF_EXIT_USAGE;
	if (arg != NULL && strcmp(verb, "import") != 0 &&
	    mf_quarantine_id_check(arg, why, sizeof(why)) != 0) {
		mf_err("invalid id: %s", why);
		return MF_EXIT_USAGE;
	}
	if (a.name != NULL && mf_quarantine_name_check(a.name, why, sizeof(why)) != 0) {
		mf_err("invalid --name: %s", why);
		return MF_EXIT_USAGE;
	}

	a.store = mf_opt_value(qopt(OPT_QUARANTINE), a.store, who, sizeof(who));
	/* `memfence run --no-quarantine` gives its program "off": not a file. */
	if (a.store != NULL && strcmp(a.store, "off") == 0) {
		mf_err("the quarantine is off (%s off): there is no store to %s", who, verb);
		return MF_EXIT_FAILURE;
	}
	a.state_dir = mf_opt_value(qopt(OPT_STATE_DIR), a.state_dir, who, sizeof(who));
	if (strcmp(verb, "record") == 0 || strcmp(verb, "check") == 0) {
		a.threshold = mf_opt_value(qopt(OPT_THRESHOLD), a.threshold, who, sizeof(who));
		if (a.threshold != NULL &&
		    parse_uint(who, a.threshold, 1, MF_QUARANTINE_THRESHOLD_MAX, &threshold) != 0)
			return MF_EXIT_USAGE;
	}
	a.timeout = mf_opt_value(qopt(OPT_REDIS_TIMEOUT), a.timeout, who, sizeof(who));
	if (a.timeout != NULL) {
		strncat(who, " (milliseconds)", sizeof(who) - strlen(who) - 1);
		if (parse_uint(who, a.timeout, 1, 600000, &v) != 0)
			return MF_EXIT_USAGE;
		so.timeout_ms = (int)v;
	}
	so.state_dir = a.state_dir;
	so.ttl = mf_opt_value(qopt(OPT_TTL), so.ttl, who, sizeof(who));

	if (mf_qstore_open(a.store, &so, &s, err, sizeof(err)) != 0) {
		mf_err("%s", err);
		/* A malformed STORE is bad input; a file we cannot use is a failure. */
		return strncmp(err, "invalid", 7) == 0 ? MF_EXIT_USAGE : MF_EXIT_FAILURE;
	}
	/* Ids, names and hosts come from the store: text only, no terminal
	 * escapes (JSON escapes them itself). */
	if (!a.json)
		mf_stdout_clean();
	if (strcmp(verb, "list") == 0)
		status = verb_list(s, &a, 0);
	else if (strcmp(verb, "export") == 0)
		status = verb_list(s, &a, 1);
	else if (strcmp(verb, "show") == 0)
		status = verb_show(s, &a, arg);
	else if (strcmp(verb, "check") == 0)
		status = verb_check(s, &a, arg, (uint32_t)threshold);
	else if (strcmp(verb, "record") == 0)
		status = verb_record(s, &a, arg, (uint32_t)threshold);
	else if (strcmp(verb, "clear") == 0)
		status = verb_clear(s, &a, arg);
	else if (strcmp(verb, "import") == 0)
		status = verb_import(s, &a, arg);
	else
		status = verb_sync(s, &a);
	mf_qstore_close(s);
	return status;
}
