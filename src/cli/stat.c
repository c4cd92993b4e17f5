/*
 * stat.c - `memfence stat`: what the processes of a program hold, live.
 *
 * Reads the shared stats segment (core/segread.h) of a supervised program
 * (a segment file) or of one process (its PID: the file it has mapped, or
 * the memfd its shim made). Read-only: slots of dead processes are shown,
 * never marked read (that is the supervisor's job, after it saved them).
 * The JSON form is a stable interface: keys are only ever added.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "host/options.h"
#include "host/segread.h"
#include "base/size.h"

#define LAST_DEFAULT 20 /* finished scopes shown per snapshot */

enum { OPT_JSON = MF_OPT_KEY_BASE, OPT_WATCH, OPT_COUNT, OPT_LAST };

static const struct mf_option stat_options[] = {
	{.name = "json", .key = OPT_JSON,
	 .help = "one JSON document per snapshot (one per line\nwith --watch)"},
	{.name = "watch", .key = OPT_WATCH, .has_arg = optional_argument, .arg = "SECS",
	 .help = "print a snapshot every SECS seconds (default 1)\n"
		 "until interrupted, or until the process of PID\n"
		 "ends; only scopes finished since the last\n"
		 "snapshot are listed"},
	{.name = "count", .key = OPT_COUNT, .has_arg = required_argument, .arg = "N",
	 .help = "with --watch: stop after N snapshots"},
	{.name = "last", .key = OPT_LAST, .has_arg = required_argument, .arg = "N",
	 .shown = MF_STR(LAST_DEFAULT),
	 .help = "show the N newest finished scopes (the segment\n"
		 "keeps the last " MF_STR(MF_SEG_DEFAULT_RING) ")"},
	{0},
};

static const struct mf_option *const stat_tabs[] = {stat_options, mf_help_options, NULL};

struct stat_opts {
	int json;
	double watch;   /* seconds between snapshots, 0 = one snapshot */
	long count;     /* snapshots to print under --watch, 0 = until stopped */
	uint32_t last;  /* newest finished scopes to show */
	pid_t pid;      /* the target was a PID */
	const char *target;
};

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: memfence stat [--json] [--watch[=SECS]] [--count N] [--last N] SEGMENT|PID\n"
		"\n"
		"Show the memory figures the accounting shim publishes: per process live,\n"
		"peak, allocated and freed bytes, refused allocations by cause, thread-start\n"
		"failures; the scopes (requests, tasks) in flight; the last finished ones.\n"
		"\n"
		"  SEGMENT                    a stats segment file (memfence run, exec --account)\n"
		"  PID                        a process running under the shim\n"
		"\n");
	mf_opts_help(f, "Options", stat_options);
	mf_opts_help(f, NULL, mf_help_options);
	fprintf(f,
		"\n"
		"Exit status: 0 shown, 1 the segment cannot be read, 2 usage error.\n");
}

static const char *state_name(enum mf_segread_liveness v)
{
	return mf_segread_view_name(v);
}

static char *sz(uint64_t v, char *buf, size_t len)
{
	return mf_size_format(v, buf, len);
}

static char *ssz(int64_t v, char *buf, size_t len)
{
	if (v >= 0)
		return mf_size_format((uint64_t)v, buf, len);
	buf[0] = '-';
	mf_size_format((uint64_t)(-(v + 1)) + 1, buf + 1, len - 1);
	return buf;
}

static double secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

static uint64_t now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct snapshot {
	struct mf_seg_header hdr;
	uint32_t nslots;
	struct mf_segread_slot *slots;
	struct mf_seg_scope *scopes; /* scopes_per_slot per slot */
	struct mf_seg_record *recent; /* last entries */
	uint32_t last;
	uint32_t nrecent;
	uint64_t lost;
};

static int take(struct mf_segread *r, struct snapshot *s, uint64_t *since)
{
	uint64_t next, lost, from;
	uint32_t per;

	mf_segread_header(r, &s->hdr);
	per = s->hdr.scopes_per_slot;
	s->nslots = s->hdr.nslots;
	s->slots = calloc(s->nslots, sizeof(*s->slots));
	s->scopes = calloc((size_t)s->nslots * per + 1, sizeof(*s->scopes));
	if (s->last > s->hdr.ring_size)
		s->last = s->hdr.ring_size; /* older records are overwritten */
	s->recent = calloc(s->last + 1, sizeof(*s->recent));
	if (s->slots == NULL || s->scopes == NULL || s->recent == NULL)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->nslots; i++)
		mf_segread_slot(r, i, &s->slots[i], s->scopes + (size_t)i * per, per);
	/* Only the newest `last` records: skip ahead. */
	from = *since;
	if (s->hdr.ring_head > s->last && from < s->hdr.ring_head - s->last)
		from = s->hdr.ring_head - s->last;
	s->nrecent = s->last == 0 ? 0 : mf_segread_ring(r, from, s->recent, s->last, &next, &lost);
	if (s->last == 0) {
		next = s->hdr.ring_head;
		lost = 0;
	}
	s->lost = lost;
	*since = next;
	return 0;
}

static void release(struct snapshot *s)
{
	free(s->slots);
	free(s->scopes);
	free(s->recent);
}

static void print_text(const char *path, const struct snapshot *s)
{
	char a[32], b[32], c[32], d[32], e[32];
	uint64_t now = now_real();
	int any = 0;

	printf("segment %s  owner %d  slots %u  scopes finished %llu\n", path, s->hdr.owner_pid,
	       s->nslots, (unsigned long long)s->hdr.ring_head);
	printf("%4s %-7s %7s %-15s %10s %10s %10s %10s %10s %7s %7s %7s %7s %7s %5s\n", "slot",
	       "state", "pid", "comm", "live", "peak", "allocated", "freed", "calls", "f.alloc",
	       "f.budg", "f.heap", "f.fault", "thr.f", "open");
	for (uint32_t i = 0; i < s->nslots; i++) {
		const struct mf_segread_slot *v = &s->slots[i];
		const struct mf_seg_slot *sl = &v->slot;

		if (v->view == MF_SLOT_VIEW_FREE)
			continue;
		any = 1;
		printf("%4u %-7s %7d %-15s %10s %10s %10s %10s %10llu %7llu %7llu %7llu %7llu %7llu %5u\n",
		       i, state_name(v->view), sl->pid, sl->comm, ssz((int64_t)sl->live, a, sizeof(a)),
		       sz(sl->peak, b, sizeof(b)), sz(sl->allocated, c, sizeof(c)),
		       sz(sl->freed, d, sizeof(d)), (unsigned long long)sl->alloc_calls,
		       (unsigned long long)sl->failed[MF_FAIL_ALLOC],
		       (unsigned long long)sl->failed[MF_FAIL_BUDGET],
		       (unsigned long long)sl->failed[MF_FAIL_HEAP],
		       (unsigned long long)sl->failed[MF_FAIL_FAULT],
		       (unsigned long long)sl->thread_failed, sl->scopes_open);
		(void)e;
	}
	if (!any)
		printf("  (no process has claimed a slot)\n");

	printf("in flight:\n");
	any = 0;
	for (uint32_t i = 0; i < s->nslots; i++) {
		const struct mf_segread_slot *v = &s->slots[i];
		const struct mf_seg_scope *sc = s->scopes + (size_t)i * s->hdr.scopes_per_slot;

		for (uint32_t k = 0; k < v->nscopes; k++) {
			any = 1;
			printf("  pid %d tid %d  %s %s  net %s  peak %s  allocated %s  budget %s  failed %llu  age %.3fs\n",
			       v->slot.pid, sc[k].tid, sc[k].name, sc[k].id[0] ? sc[k].id : "-",
			       ssz(sc[k].net, a, sizeof(a)), sz(sc[k].peak, b, sizeof(b)),
			       sz(sc[k].allocated, c, sizeof(c)),
			       sc[k].budget ? sz(sc[k].budget, d, sizeof(d)) : "none",
			       (unsigned long long)sc[k].failed,
			       now > sc[k].start_ns ? secs(now - sc[k].start_ns) : 0.0);
		}
		if (v->ntorn != 0)
			printf("  pid %d: %u entries torn (their writer stopped mid-update)\n",
			       v->slot.pid, v->ntorn);
	}
	if (!any)
		printf("  (none)\n");
	printf("finished (newest last):\n");
	for (uint32_t k = 0; k < s->nrecent; k++) {
		const struct mf_seg_record *rc = &s->recent[k];
		printf("  #%llu pid %d tid %d  %s %s  %s  allocated %s  freed %s  net %s  peak %s  failed %llu  %.3fs\n",
		       (unsigned long long)rc->index, rc->pid, rc->tid, rc->name, rc->id[0] ? rc->id : "-",
		       rc->outcome == 0 ? "ok" : "failed-alloc", sz(rc->allocated, a, sizeof(a)),
		       sz(rc->freed, b, sizeof(b)), ssz(rc->net, c, sizeof(c)),
		       sz(rc->peak, d, sizeof(d)), (unsigned long long)rc->failed, secs(rc->duration_ns));
	}
	if (s->nrecent == 0)
		printf("  (none)\n");
}

static json_t *json_u64(uint64_t v)
{
	return json_integer((json_int_t)v);
}

static json_t *to_json(const char *path, const struct snapshot *s)
{
	json_t *root = json_object(), *slots = json_array(), *fin = json_array();
	static const char *causes[MF_FAIL_NCAUSES] = {"alloc", "budget", "heap", "container", "fault"};

	json_object_set_new(root, "schema", json_integer(1));
	json_object_set_new(root, "segment", json_string(path));
	json_object_set_new(root, "version", json_integer(s->hdr.version));
	json_object_set_new(root, "owner_pid", json_integer(s->hdr.owner_pid));
	json_object_set_new(root, "time_ns", json_u64(now_real()));
	json_object_set_new(root, "scopes_finished", json_u64(s->hdr.ring_head));
	json_object_set_new(root, "slot_claims_failed", json_u64(s->hdr.slot_claims_failed));
	json_object_set_new(root, "heap_limit", json_u64(s->hdr.heap_limit));
	for (uint32_t i = 0; i < s->nslots; i++) {
		const struct mf_segread_slot *v = &s->slots[i];
		const struct mf_seg_slot *sl = &v->slot;
		const struct mf_seg_scope *sc = s->scopes + (size_t)i * s->hdr.scopes_per_slot;
		json_t *o, *failed, *inflight;

		if (v->view == MF_SLOT_VIEW_FREE)
			continue;
		o = json_object();
		failed = json_object();
		inflight = json_array();
		json_object_set_new(o, "slot", json_integer(i));
		json_object_set_new(o, "state", json_string(state_name(v->view)));
		json_object_set_new(o, "pid", json_integer(sl->pid));
		json_object_set_new(o, "ppid", json_integer(sl->ppid));
		json_object_set_new(o, "comm", json_string(sl->comm));
		json_object_set_new(o, "generation", json_integer(sl->generation));
		json_object_set_new(o, "start_ns", json_u64(sl->start_realtime_ns));
		json_object_set_new(o, "live", json_integer((json_int_t)(int64_t)sl->live));
		json_object_set_new(o, "peak", json_u64(sl->peak));
		json_object_set_new(o, "allocated", json_u64(sl->allocated));
		json_object_set_new(o, "freed", json_u64(sl->freed));
		json_object_set_new(o, "alloc_calls", json_u64(sl->alloc_calls));
		json_object_set_new(o, "free_calls", json_u64(sl->free_calls));
		for (int k = 0; k < MF_FAIL_NCAUSES; k++)
			json_object_set_new(failed, causes[k], json_u64(sl->failed[k]));
		json_object_set_new(o, "failed", failed);
		json_object_set_new(o, "threads_started", json_u64(sl->thread_started));
		json_object_set_new(o, "threads_failed", json_u64(sl->thread_failed));
		json_object_set_new(o, "thread_last_errno", json_integer(sl->thread_last_errno));
		json_object_set_new(o, "scopes_open", json_integer(sl->scopes_open));
		json_object_set_new(o, "scopes_ended", json_u64(sl->scopes_ended));
		json_object_set_new(o, "torn", json_integer(v->ntorn));
		for (uint32_t k = 0; k < v->nscopes; k++) {
			json_t *e = json_object();
			json_object_set_new(e, "tid", json_integer(sc[k].tid));
			json_object_set_new(e, "depth", json_integer(sc[k].depth));
			json_object_set_new(e, "name", json_string(sc[k].name));
			json_object_set_new(e, "id", json_string(sc[k].id));
			json_object_set_new(e, "start_ns", json_u64(sc[k].start_ns));
			json_object_set_new(e, "allocated", json_u64(sc[k].allocated));
			json_object_set_new(e, "freed", json_u64(sc[k].freed));
			json_object_set_new(e, "net", json_integer(sc[k].net));
			json_object_set_new(e, "peak", json_u64(sc[k].peak));
			json_object_set_new(e, "budget", json_u64(sc[k].budget));
			json_object_set_new(e, "failed", json_u64(sc[k].failed));
			json_array_append_new(inflight, e);
		}
		json_object_set_new(o, "in_flight", inflight);
		json_array_append_new(slots, o);
	}
	json_object_set_new(root, "processes", slots);
	for (uint32_t k = 0; k < s->nrecent; k++) {
		const struct mf_seg_record *rc = &s->recent[k];
		json_t *e = json_object();
		json_object_set_new(e, "index", json_u64(rc->index));
		json_object_set_new(e, "pid", json_integer(rc->pid));
		json_object_set_new(e, "tid", json_integer(rc->tid));
		json_object_set_new(e, "name", json_string(rc->name));
		json_object_set_new(e, "id", json_string(rc->id));
		json_object_set_new(e, "outcome", json_string(rc->outcome == 0 ? "ok" : "failed-alloc"));
		json_object_set_new(e, "start_ns", json_u64(rc->start_ns));
		json_object_set_new(e, "duration_ns", json_u64(rc->duration_ns));
		json_object_set_new(e, "allocated", json_u64(rc->allocated));
		json_object_set_new(e, "freed", json_u64(rc->freed));
		json_object_set_new(e, "net", json_integer(rc->net));
		json_object_set_new(e, "peak", json_u64(rc->peak));
		json_object_set_new(e, "budget", json_u64(rc->budget));
		json_object_set_new(e, "failed", json_u64(rc->failed));
		json_array_append_new(fin, e);
	}
	json_object_set_new(root, "finished", fin);
	json_object_set_new(root, "finished_lost", json_u64(s->lost));
	return root;
}

static int parse_target(struct stat_opts *o)
{
	const char *t = o->target;
	char *end;
	long v;

	if (strspn(t, "0123456789") == strlen(t)) {
		errno = 0;
		v = strtol(t, &end, 10);
		if (errno != 0 || v <= 0 || v > 0x3fffffff) {
			mf_err("invalid PID '%s'", t);
			return -1;
		}
		o->pid = (pid_t)v;
	}
	return 0;
}

static int parse_secs(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || v < 0.05 || v > 86400)
		return -1;
	*out = v;
	return 0;
}

int mf_cmd_stat(int argc, char **argv)
{
	struct mf_opts opts;
	struct stat_opts o = {.last = LAST_DEFAULT};
	struct mf_segread r;
	char path[4096];
	uint64_t since = 0;
	long shown = 0;
	int opt, err;

	mf_opts_init(&opts, "+", stat_tabs);
	while ((opt = getopt_long(argc, argv, opts.shortopts, opts.longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_JSON:
			o.json = 1;
			break;
		case OPT_WATCH:
			o.watch = 1.0;
			if (optarg != NULL && parse_secs(optarg, &o.watch) != 0) {
				mf_err("invalid --watch interval '%s': seconds between 0.05 and 86400", optarg);
				return MF_EXIT_USAGE;
			}
			break;
		case OPT_COUNT: {
			char *end;
			errno = 0;
			o.count = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || o.count < 1) {
				mf_err("invalid --count '%s': a number of snapshots, at least 1", optarg);
				return MF_EXIT_USAGE;
			}
			break;
		}
		case OPT_LAST: {
			char *end;
			errno = 0;
			long v = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || v < 0 || v > 1 << 20) {
				mf_err("invalid --last '%s': a number of finished scopes, 0 to 1048576", optarg);
				return MF_EXIT_USAGE;
			}
			o.last = (uint32_t)v;
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return MF_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		mf_err(optind >= argc ? "stat needs a SEGMENT file or a PID (see memfence stat --help)"
				      : "stat takes one SEGMENT or PID (see memfence stat --help)");
		return MF_EXIT_USAGE;
	}
	if (o.count != 0 && o.watch == 0) {
		mf_err("--count goes with --watch");
		return MF_EXIT_USAGE;
	}
	o.target = argv[optind];
	if (parse_target(&o) != 0)
		return MF_EXIT_USAGE;
	if (o.pid != 0) {
		err = mf_segread_find_pid("", o.pid, path, sizeof(path));
		if (err == -ESRCH) {
			mf_err("no process %d", (int)o.pid);
			return MF_EXIT_FAILURE;
		}
		if (err != 0) {
			mf_err("process %d has no memfence stats segment (is it running under the shim?): %s",
			       (int)o.pid, mf_segread_strerror(err));
			return MF_EXIT_FAILURE;
		}
	} else {
		if (strlen(o.target) >= sizeof(path)) {
			mf_err("segment path too long");
			return MF_EXIT_USAGE;
		}
		strcpy(path, o.target);
	}
	err = mf_segread_open(&r, path, 0);
	if (err != 0) {
		mf_err("cannot read segment %s: %s", path, mf_segread_strerror(err));
		return MF_EXIT_FAILURE;
	}

	/* Names and commands come from the segment, which any process of
	 * the program writes: no terminal escapes in the text. */
	if (!o.json)
		mf_stdout_clean();
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	signal(SIGPIPE, SIG_DFL);
	for (;;) {
		struct snapshot s = {.last = o.last};
		int gone = o.pid != 0 && kill(o.pid, 0) != 0 && errno == ESRCH;

		if (take(&r, &s, &since) != 0) {
			mf_err("out of memory");
			release(&s);
			mf_segread_close(&r);
			return MF_EXIT_FAILURE;
		}
		if (o.json) {
			json_t *j = to_json(path, &s);
			json_dumpf(j, stdout, o.watch != 0 ? JSON_COMPACT : JSON_INDENT(2));
			fputc('\n', stdout);
			json_decref(j);
		} else {
			if (shown > 0)
				fputc('\n', stdout);
			print_text(path, &s);
		}
		fflush(stdout);
		release(&s);
		shown++;
		if (o.watch == 0 || stop || gone || (o.count != 0 && shown >= o.count))
			break;
		struct timespec ts = {(time_t)o.watch, (long)((o.watch - (double)(time_t)o.watch) * 1e9)};
		while (nanosleep(&ts, &ts) != 0 && !stop)
			;
		if (stop)
			break;
	}
	mf_segread_close(&r);
	return 0;
}
