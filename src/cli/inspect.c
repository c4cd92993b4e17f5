/*
 * inspect.c - `memfence inspect`: what memory a process really has, and
 * what memfence would do about it.
 *
 * Read-only: nothing is applied. The figures come from host/memory.c, the
 * budget from host/plan.c with the same options and MEMFENCE_* variables as
 * `exec`, so what inspect shows is what exec would apply. The JSON form is a
 * stable interface (docs/inspect.md): keys are only ever added.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/envspec.h"
#include "cli/cli.h"
#include "cli/launch.h"
#include "host/memory.h"
#include "host/plan.h"
#include "host/psi.h"
#include "supervisor/metrics.h"
#include "supervisor/report.h"
#include "base/size.h"

#define JSON_SCHEMA 1
/* x86-64 glibc's ARCH_STACK_DEFAULT_SIZE, used when RLIMIT_STACK is
 * unlimited (sysdeps/nptl/pthread_early_init.h). */
#define GLIBC_STACK_DEFAULT (2ull << 20)
/* Fewer threads than this in the budget and a thread pool cannot start. */
#define MIN_THREADS 16

enum { OPT_PID = MF_OPT_LAUNCH_LAST, OPT_JSON };

static const struct mf_option inspect_options[] = {
	{.name = "pid", .key = OPT_PID, .has_arg = required_argument, .arg = "PID",
	 .shown = "this process", .help = "inspect process PID"},
	{.name = "json", .key = OPT_JSON, .help = "print JSON (schema in docs/inspect.md)"},
	{0},
};

static const struct mf_option *const inspect_tabs[] = {
	inspect_options, mf_root_options, mf_plan_options, mf_help_options, NULL,
};

struct rlim_pair {
	uint64_t soft, hard; /* MF_NOLIMIT: unlimited; MF_UNKNOWN: unread */
};

struct inspect {
	pid_t pid;            /* 0: this process (proc/self under the root) */
	const char *root;
	char proc[MF_PATH_MAX];
	struct mf_memory mem;
	int psi_err;          /* 0: psi read; -errno otherwise */
	struct mf_psi psi;
	struct rlim_pair data, as, stack;
	char rlimits_from[MF_PATH_MAX + 16];
	uint64_t thread_stack;
	const char *thread_stack_from;
	int oom_score_adj;    /* -1001: unreadable */
	struct mf_plan plan;
	int nwarn;
	char warn[MF_MAX_WARNINGS + 8][MF_WARNING_MAX + 64];
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: memfence inspect [--pid PID] [--json] [--root DIR] [LIMIT OPTIONS]\n"
		"\n"
		"Show the memory limit a process really has (its cgroup, else physical\n"
		"memory), where that limit comes from, its usage, working set and headroom,\n"
		"OOM kills, its rlimits and default thread stack size, and the budget\n"
		"`memfence exec` would apply with the same options. Nothing is changed.\n"
		"\n");
	mf_opts_help(f, "Options", inspect_options);
	mf_opts_help(f, NULL, mf_root_options);
	mf_opts_help(f, "Limit options (as for exec)", mf_plan_options);
	mf_opts_help(f, NULL, mf_help_options);
	fprintf(f,
		"\n"
		"Exit status: 0; 1 when the process or its /proc entry cannot be read;\n"
		"2 for a bad option or size.\n");
}

static void add_warning(struct inspect *in, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void add_warning(struct inspect *in, const char *fmt, ...)
{
	va_list ap;
	int cap = (int)(sizeof(in->warn) / sizeof(in->warn[0]));

	if (in->nwarn >= cap)
		return;
	va_start(ap, fmt);
	vsnprintf(in->warn[in->nwarn++], sizeof(in->warn[0]), fmt, ap);
	va_end(ap);
}

static int parse_pid(const char *s, pid_t *out)
{
	char *end;
	long v;

	errno = 0;
	if (s[0] < '0' || s[0] > '9')
		return -1;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0 || v > INT_MAX)
		return -1;
	*out = (pid_t)v;
	return 0;
}

/* Whole small file; NULL with errno. */
static char *read_text(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, len = 0, n;

	if (f == NULL)
		return NULL;
	do {
		if (len + 4096 + 1 > cap) {
			char *nb = realloc(buf, cap = len + 8192);
			if (nb == NULL) {
				free(buf);
				fclose(f);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, 4096, f);
		len += n;
	} while (n > 0 && len < (1u << 20));
	if (ferror(f)) {
		int e = errno;
		free(buf);
		fclose(f);
		errno = e ? e : EIO;
		return NULL;
	}
	fclose(f);
	buf[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return buf;
}

/* The OOM killer's preference for the process. -1000 means it is never
 * chosen: what `memfence run` asks for itself, so that the supervisor can
 * outlive its program (it needs CAP_SYS_RESOURCE to get it). */
static void read_oom_score_adj(struct inspect *in)
{
	char path[MF_PATH_MAX + 32], *buf, *end;
	long v;

	in->oom_score_adj = -1001;
	snprintf(path, sizeof(path), "%s/oom_score_adj", in->proc);
	buf = read_text(path, NULL);
	if (buf == NULL)
		return;
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno == 0 && end != buf && (*end == '\n' || *end == '\0') && v >= -1000 && v <= 1000)
		in->oom_score_adj = (int)v;
	free(buf);
}

/* "unlimited" or a number, as /proc/PID/limits prints them. */
static int limit_value(const char *tok, uint64_t *out)
{
	const char *why;
	char line[40];

	if (strcmp(tok, "unlimited") == 0) {
		*out = MF_NOLIMIT;
		return 0;
	}
	if (snprintf(line, sizeof(line), "%s\n", tok) >= (int)sizeof(line))
		return -1;
	return mf_parse_value(line, 0, out, &why);
}

/*
 * /proc/PID/limits (proc(5)):
 *   Limit                     Soft Limit           Hard Limit           Units
 *   Max data size             unlimited            unlimited            bytes
 *   Max stack size            8388608              unlimited            bytes
 * The label has spaces in it, so the values are found after it.
 */
static int parse_limits(const char *buf, const char *label, struct rlim_pair *out)
{
	size_t ll = strlen(label);
	const char *line = buf;

	out->soft = out->hard = MF_UNKNOWN;
	while (*line != '\0') {
		const char *eol = strchr(line, '\n');
		if (strncmp(line, label, ll) == 0 && line[ll] == ' ') {
			char soft[32], hard[32];
			if (sscanf(line + ll, "%31s %31s", soft, hard) == 2 &&
			    limit_value(soft, &out->soft) == 0 && limit_value(hard, &out->hard) == 0)
				return 0;
			out->soft = out->hard = MF_UNKNOWN;
			return -1;
		}
		if (eol == NULL)
			break;
		line = eol + 1;
	}
	return -1;
}

static void rlim_from_getrlimit(int res, struct rlim_pair *out)
{
	struct rlimit rl;

	out->soft = out->hard = MF_UNKNOWN;
	if (getrlimit(res, &rl) != 0)
		return;
	out->soft = rl.rlim_cur == RLIM_INFINITY ? MF_NOLIMIT : (uint64_t)rl.rlim_cur;
	out->hard = rl.rlim_max == RLIM_INFINITY ? MF_NOLIMIT : (uint64_t)rl.rlim_max;
}

static int read_rlimits(struct inspect *in)
{
	char path[MF_PATH_MAX + 16];
	char *buf;

	snprintf(path, sizeof(path), "%s/limits", in->proc);
	buf = read_text(path, NULL);
	if (buf == NULL) {
		if (in->pid != 0) {
			mf_err("cannot read %s: %s", path, strerror(errno));
			return -1;
		}
		/* A fixture tree without limits: this process is the one asked
		 * about, so its own rlimits are the honest answer. */
		rlim_from_getrlimit(RLIMIT_DATA, &in->data);
		rlim_from_getrlimit(RLIMIT_AS, &in->as);
		rlim_from_getrlimit(RLIMIT_STACK, &in->stack);
		snprintf(in->rlimits_from, sizeof(in->rlimits_from), "getrlimit");
		return 0;
	}
	if (parse_limits(buf, "Max data size", &in->data) != 0)
		add_warning(in, "%s: no readable 'Max data size' line", path);
	if (parse_limits(buf, "Max address space", &in->as) != 0)
		add_warning(in, "%s: no readable 'Max address space' line", path);
	if (parse_limits(buf, "Max stack size", &in->stack) != 0)
		add_warning(in, "%s: no readable 'Max stack size' line", path);
	snprintf(in->rlimits_from, sizeof(in->rlimits_from), "%s", path);
	free(buf);
	return 0;
}

/* The value of name in a NUL-separated environ block, or NULL. */
static const char *environ_get(const char *buf, size_t len, const char *name)
{
	size_t nl = strlen(name);
	const char *p = buf, *end = buf + len;

	while (p < end) {
		size_t n = strnlen(p, (size_t)(end - p));
		if (n > nl && memcmp(p, name, nl) == 0 && p[nl] == '=')
			return p + nl + 1;
		p += n + 1;
	}
	return NULL;
}

/*
 * The stack size a new thread gets without asking. For this process the
 * answer is exact (pthread_getattr_default_np). For another one it is
 * glibc's rule: the preloaded stack library applies MEMFENCE_STACK when set;
 * else RLIMIT_STACK's soft limit when finite; else 2 MiB.
 */
static void thread_stack(struct inspect *in)
{
	char path[MF_PATH_MAX + 16];
	pthread_attr_t attr;
	size_t size, len;
	char *env;

	if (in->pid == 0 && (in->root[0] == '\0' || strcmp(in->root, "/") == 0) &&
	    pthread_getattr_default_np(&attr) == 0) {
		if (pthread_attr_getstacksize(&attr, &size) == 0) {
			in->thread_stack = size;
			in->thread_stack_from = "pthread_getattr_default_np";
			pthread_attr_destroy(&attr);
			return;
		}
		pthread_attr_destroy(&attr);
	}
	snprintf(path, sizeof(path), "%s/environ", in->proc);
	env = read_text(path, &len);
	if (env != NULL) {
		const char *v = environ_get(env, len, MF_ENV(STACK));
		const char *why;
		uint64_t n;
		if (v != NULL && mf_size_parse(v, 0, &n, &why) == 0 && n >= MF_STACK_MIN) {
			in->thread_stack = n;
			in->thread_stack_from = MF_ENV(STACK);
			free(env);
			return;
		}
		free(env);
	}
	if (in->stack.soft != MF_UNKNOWN && in->stack.soft != MF_NOLIMIT) {
		uint64_t s = in->stack.soft;
		long page = sysconf(_SC_PAGESIZE);
		if (s < 16384) /* PTHREAD_STACK_MIN */
			s = 16384;
		if (page > 0)
			s = (s + (uint64_t)page - 1) / (uint64_t)page * (uint64_t)page;
		in->thread_stack = s;
		in->thread_stack_from = "RLIMIT_STACK";
		return;
	}
	in->thread_stack = GLIBC_STACK_DEFAULT;
	in->thread_stack_from = "glibc default";
}

static const char *size_or(uint64_t v, char *buf, size_t len, const char *unknown)
{
	if (v == MF_UNKNOWN)
		return unknown;
	if (v == MF_NOLIMIT)
		return "unlimited";
	return mf_size_format(v, buf, len);
}

static void collect_warnings(struct inspect *in)
{
	const struct mf_memory *m = &in->mem;
	char a[32], b[32];

	for (int i = 0; i < m->nwarnings; i++)
		add_warning(in, "%s", m->warnings[i]);
	if (m->limit_unreadable)
		add_warning(in, "limit unreadable: the cgroup's limit could not be read, so the "
			    "limit shown (%s, from %s) may be higher than the real one; give --limit",
			    size_or(m->limit, a, sizeof(a), "unknown"), mf_limit_source_name(m->limit_source));
	if (in->plan.rlimit == MF_RLIMIT_AS)
		add_warning(in, "RLIMIT_AS chosen: it limits address space, not memory; every glibc "
			    "malloc arena reserves 64 MiB of it and thread stacks count in full, so "
			    "threads fail to start long before memory runs out (prefer --rlimit data)");
	if (in->plan.rlimit != MF_RLIMIT_NONE && in->plan.budget / in->plan.stack < MIN_THREADS)
		add_warning(in, "budget %s holds fewer than %d threads of %s stack",
			    mf_size_format(in->plan.budget, a, sizeof(a)), MIN_THREADS,
			    mf_size_format(in->plan.stack, b, sizeof(b)));
	if (m->swap_total != MF_UNKNOWN && m->swap_total > 0 && m->swap_max != 0)
		add_warning(in, "swap present (SwapTotal %s, cgroup swap limit %s): the cgroup "
			    "swaps before it reaches its limit, so a process near it slows down "
			    "instead of failing",
			    mf_size_format(m->swap_total, a, sizeof(a)),
			    size_or(m->swap_max, b, sizeof(b), "unknown"));
	if (m->ignore_rlimit_data == 1 && in->plan.rlimit == MF_RLIMIT_DATA)
		add_warning(in, "ignore_rlimit_data=Y: the kernel was booted to ignore RLIMIT_DATA "
			    "(it only logs), so the budget would not stop allocations; use --rlimit as");
	if (m->high != MF_UNKNOWN && m->high != MF_NOLIMIT && m->limit != MF_UNKNOWN &&
	    m->high < m->limit)
		add_warning(in, "memory.high (%s) is below the limit: above it the kernel throttles "
			    "and reclaims the cgroup, so it slows down before allocations fail",
			    mf_size_format(m->high, a, sizeof(a)));
}

/* ---- human output ---------------------------------------------------- */

#define ROW "  %-16s %s\n"

static const char *with_bytes(uint64_t v, char *buf, size_t len)
{
	char s[32];

	if (v == MF_UNKNOWN)
		return "unknown";
	if (v == MF_NOLIMIT)
		return "unlimited";
	snprintf(buf, len, "%s (%llu bytes)", mf_size_format(v, s, sizeof(s)), (unsigned long long)v);
	return buf;
}

static const char *rlim_text(const struct rlim_pair *r, char *buf, size_t len)
{
	char a[32], b[32];

	snprintf(buf, len, "%s soft, %s hard", size_or(r->soft, a, sizeof(a), "unknown"),
		 size_or(r->hard, b, sizeof(b), "unknown"));
	return buf;
}

static void print_human(const struct inspect *in)
{
	const struct mf_memory *m = &in->mem;
	const struct mf_plan *p = &in->plan;
	char a[32], b[32], line[MF_PATH_MAX + 128];

	printf("Process\n");
	if (in->pid == 0)
		printf(ROW, "pid", "self");
	else {
		snprintf(line, sizeof(line), "%ld", (long)in->pid);
		printf(ROW, "pid", line);
	}
	if (m->cgroup_version == 0) {
		printf(ROW, "cgroup", "none found");
	} else {
		snprintf(line, sizeof(line), "v%d %s", m->cgroup_version, m->cgroup_path);
		printf(ROW, "cgroup", line);
		printf(ROW, "cgroup dir", m->cgroup_dir);
	}
	if (in->oom_score_adj == -1001)
		printf(ROW, "oom_score_adj", "unknown");
	else {
		snprintf(line, sizeof(line), "%d%s", in->oom_score_adj,
			 in->oom_score_adj == -1000 ? " (never chosen by the OOM killer)" : "");
		printf(ROW, "oom_score_adj", line);
	}

	printf("Memory\n");
	snprintf(line, sizeof(line), "%s", with_bytes(m->limit, a, sizeof(a)));
	printf(ROW, "limit", line);
	if (m->limit_source != MF_LIMIT_NONE) {
		const char *base = strrchr(m->limit_file, '/');
		base = base != NULL ? base + 1 : m->limit_file;
		if (strcmp(mf_limit_source_name(m->limit_source), m->limit_key) == 0)
			snprintf(line, sizeof(line), "%s in %s", m->limit_key, m->limit_file);
		else if (strcmp(base, m->limit_key) == 0)
			snprintf(line, sizeof(line), "%s: %s", mf_limit_source_name(m->limit_source),
				 m->limit_file);
		else
			snprintf(line, sizeof(line), "%s: %s in %s", mf_limit_source_name(m->limit_source),
				 m->limit_key, m->limit_file);
		printf(ROW, "limit source", line);
	}
	if (m->cgroup_version == 2)
		printf(ROW, "memory.high", size_or(m->high, a, sizeof(a), "unknown"));
	printf(ROW, "usage", size_or(m->usage, a, sizeof(a), "unknown"));
	if (m->working_set != MF_UNKNOWN) {
		snprintf(line, sizeof(line), "%s (usage - inactive_file %s)",
			 mf_size_format(m->working_set, a, sizeof(a)),
			 size_or(m->inactive_file, b, sizeof(b), "unknown"));
		printf(ROW, "working set", line);
	} else {
		printf(ROW, "working set", "unknown");
	}
	printf(ROW, "headroom", size_or(m->headroom, a, sizeof(a), "unknown"));
	if (m->oom_kill == MF_UNKNOWN)
		snprintf(line, sizeof(line), "unknown");
	else
		snprintf(line, sizeof(line), "%llu", (unsigned long long)m->oom_kill);
	if (m->cgroup_version == 2 && m->oom != MF_UNKNOWN)
		snprintf(line + strlen(line), sizeof(line) - strlen(line),
			 "  (oom %llu, max %llu, high %llu)", (unsigned long long)m->oom,
			 (unsigned long long)(m->events_max == MF_UNKNOWN ? 0 : m->events_max),
			 (unsigned long long)(m->events_high == MF_UNKNOWN ? 0 : m->events_high));
	if (m->cgroup_version == 1 && m->failcnt != MF_UNKNOWN)
		snprintf(line + strlen(line), sizeof(line) - strlen(line), "  (failcnt %llu)",
			 (unsigned long long)m->failcnt);
	printf(ROW, "OOM kills", line);
	if (m->swap_total == 0)
		snprintf(line, sizeof(line), "none (SwapTotal 0)");
	else
		snprintf(line, sizeof(line), "SwapTotal %s, cgroup swap limit %s",
			 size_or(m->swap_total, a, sizeof(a), "unknown"),
			 size_or(m->swap_max, b, sizeof(b), "unknown"));
	printf(ROW, "swap", line);
	if (in->psi_err == 0) {
		snprintf(line, sizeof(line), "some %.2f%% %.2f%% %.2f%% (avg10 avg60 avg300), %.1fs",
			 in->psi.some.avg10, in->psi.some.avg60, in->psi.some.avg300,
			 (double)in->psi.some.total_us / 1e6);
		printf(ROW, "memory.pressure", line);
		if (in->psi.has_full) {
			snprintf(line, sizeof(line),
				 "full %.2f%% %.2f%% %.2f%% (avg10 avg60 avg300), %.1fs",
				 in->psi.full.avg10, in->psi.full.avg60, in->psi.full.avg300,
				 (double)in->psi.full.total_us / 1e6);
			printf(ROW, "", line);
		}
	} else {
		printf(ROW, "memory.pressure",
		       in->psi_err == -EOPNOTSUPP ? "none (cgroup v2 only)"
		       : in->psi_err == -ENOENT   ? "none (this kernel has no PSI)"
						  : "unreadable");
	}

	printf("Limits (%s)\n", in->rlimits_from);
	printf(ROW, "RLIMIT_DATA", rlim_text(&in->data, line, sizeof(line)));
	printf(ROW, "RLIMIT_AS", rlim_text(&in->as, line, sizeof(line)));
	printf(ROW, "RLIMIT_STACK", rlim_text(&in->stack, line, sizeof(line)));
	snprintf(line, sizeof(line), "%s (%s%s)", mf_size_format(in->thread_stack, a, sizeof(a)),
		 in->thread_stack_from,
		 strcmp(in->thread_stack_from, "glibc default") == 0 && in->stack.soft == MF_NOLIMIT
		 ? ": RLIMIT_STACK is unlimited" : "");
	printf(ROW, "thread stack", line);

	printf("memfence would apply\n");
	snprintf(line, sizeof(line), "%s from %s", with_bytes(p->limit, a, sizeof(a)), p->limit_from);
	printf(ROW, "limit", line);
	snprintf(line, sizeof(line), "%s%s", mf_size_format(p->reserve, a, sizeof(a)),
		 p->reserve_default ? " (default: " MF_RESERVE_RULE ")" : "");
	printf(ROW, "reserve", line);
	snprintf(line, sizeof(line), "%s as %s", with_bytes(p->budget, a, sizeof(a)),
		 p->rlimit == MF_RLIMIT_AS ? "RLIMIT_AS"
		 : p->rlimit == MF_RLIMIT_DATA ? "RLIMIT_DATA" : "no rlimit (--rlimit none)");
	printf(ROW, "budget", line);
	printf(ROW, "thread stack", mf_size_format(p->stack, a, sizeof(a)));

	if (in->nwarn > 0) {
		printf("Warnings\n");
		for (int i = 0; i < in->nwarn; i++)
			printf("  - %s\n", in->warn[i]);
	}
}

/* ---- JSON ------------------------------------------------------------ */

/* Bytes as an integer, "unlimited", or null when unknown. */
static json_t *jsize(uint64_t v)
{
	if (v == MF_UNKNOWN)
		return json_null();
	if (v == MF_NOLIMIT)
		return json_string("unlimited");
	return json_integer((json_int_t)v);
}

static json_t *jcount(uint64_t v)
{
	return v == MF_UNKNOWN ? json_null() : json_integer((json_int_t)v);
}

/* Paths come from the kernel (or a fixture) and need not be UTF-8, which
 * JSON requires: such bytes become '?' rather than failing the answer. */
static json_t *jtext(const char *s)
{
	json_t *j = json_string(s);
	char *copy;

	if (j != NULL)
		return j;
	copy = strdup(s);
	if (copy == NULL)
		return NULL;
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

static json_t *jstr(const char *s)
{
	return (s == NULL || *s == '\0') ? json_null() : jtext(s);
}

static json_t *jrlim(const struct rlim_pair *r)
{
	return json_pack("{s:o, s:o}", "soft", jsize(r->soft), "hard", jsize(r->hard));
}

static int print_json(const struct inspect *in)
{
	const struct mf_memory *m = &in->mem;
	const struct mf_plan *p = &in->plan;
	json_t *warnings = json_array(), *root;
	json_error_t jerr;
	int rc;

	for (int i = 0; i < in->nwarn; i++)
		json_array_append_new(warnings, jtext(in->warn[i]));

	root = json_pack_ex(&jerr, 0,
		"{s:i, s:o, s:o,"
		" s:{s:i, s:o, s:o},"
		" s:o, s:s, s:o, s:o, s:b, s:o,"
		" s:o, s:o, s:o, s:o,"
		" s:o, s:o, s:o, s:o,"
		" s:{s:o, s:o, s:o, s:o, s:o},"
		" s:{s:o, s:o, s:o}, s:o,"
		" s:o, s:o,"
		" s:I, s:s, s:o,"
		" s:{s:I, s:s, s:o, s:I, s:b, s:I, s:s, s:I},"
		" s:o}",
		"schema", JSON_SCHEMA,
		"pid", in->pid == 0 ? json_null() : json_integer(in->pid),
		"root", jtext(in->root),
		"cgroup",
		  "version", m->cgroup_version,
		  "path", jstr(m->cgroup_path),
		  "dir", jstr(m->cgroup_dir),
		"limit_bytes", jsize(m->limit),
		"limit_source", mf_limit_source_name(m->limit_source),
		"limit_file", jstr(m->limit_file),
		"limit_key", jstr(m->limit_key),
		"limit_unreadable", m->limit_unreadable,
		"cgroup_limit_bytes", jsize(m->cgroup_limit),
		"memtotal_bytes", jsize(m->memtotal),
		"swap_total_bytes", jsize(m->swap_total),
		"high_bytes", jsize(m->high),
		"swap_max_bytes", jsize(m->swap_max),
		"usage_bytes", jsize(m->usage),
		"inactive_file_bytes", jsize(m->inactive_file),
		"working_set_bytes", jsize(m->working_set),
		"headroom_bytes", jsize(m->headroom),
		"events",
		  "oom_kill", jcount(m->oom_kill),
		  "oom", jcount(m->oom),
		  "max", jcount(m->events_max),
		  "high", jcount(m->events_high),
		  "failcnt", jcount(m->failcnt),
		"rlimits",
		  "data", jrlim(&in->data),
		  "as", jrlim(&in->as),
		  "stack", jrlim(&in->stack),
		"rlimits_source", jtext(in->rlimits_from),
		"oom_score_adj", in->oom_score_adj == -1001 ? json_null()
				 : json_integer(in->oom_score_adj),
		"oom_protected", in->oom_score_adj == -1001 ? json_null()
				 : json_boolean(in->oom_score_adj == -1000),
		"thread_stack_bytes", (json_int_t)in->thread_stack,
		"thread_stack_source", in->thread_stack_from,
		"ignore_rlimit_data", m->ignore_rlimit_data < 0 ? json_null()
				      : json_boolean(m->ignore_rlimit_data),
		"plan",
		  "limit_bytes", (json_int_t)p->limit,
		  "limit_source", mf_limit_source_name(p->limit_source),
		  "limit_from", jtext(p->limit_from),
		  "reserve_bytes", (json_int_t)p->reserve,
		  "reserve_default", p->reserve_default,
		  "budget_bytes", (json_int_t)p->budget,
		  "rlimit", mf_rlimit_name(p->rlimit),
		  "stack_bytes", (json_int_t)p->stack,
		"warnings", warnings);
	if (root == NULL) {
		mf_err("inspect: cannot build the JSON answer: %s", jerr.text);
		return -1;
	}
	/* null where there is none: cgroup v1, or a kernel without PSI. */
	json_object_set_new(root, "memory_pressure",
			    in->psi_err == 0 ? sup_psi_json(&in->psi) : json_null());
	rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (rc != 0 || fputc('\n', stdout) == EOF) {
		mf_err("inspect: cannot write the answer: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int mf_cmd_inspect(int argc, char **argv)
{
	struct mf_opts getopts;
	struct mf_plan_opts opts = {0};
	struct inspect *in;
	char err[512], dir[MF_PATH_MAX], who[64];
	struct stat st;
	int opt, json = 0, rc = MF_EXIT_FAILURE;
	size_t n;

	/* The answer holds a few kB of paths and warnings: not the stack. */
	in = calloc(1, sizeof(*in));
	if (in == NULL) {
		mf_err("inspect: out of memory");
		return MF_EXIT_FAILURE;
	}
	mf_opts_init(&getopts, "", inspect_tabs);
	while ((opt = getopt_long(argc, argv, getopts.shortopts, getopts.longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_PID:
			if (parse_pid(optarg, &in->pid) != 0) {
				mf_err("invalid --pid '%s': expected a process ID (a positive number)", optarg);
				rc = MF_EXIT_USAGE;
				goto out;
			}
			break;
		case OPT_JSON: json = 1; break;
		case MF_OPT_ROOT: in->root = optarg; break;
		case MF_OPT_LIMIT: opts.limit = optarg; break;
		case MF_OPT_RESERVE: opts.reserve = optarg; break;
		case MF_OPT_RLIMIT: opts.rlimit = optarg; break;
		case MF_OPT_STACK: opts.stack = optarg; break;
		case 'h': usage(stdout); rc = 0; goto out;
		default:
			fprintf(stderr, "Try 'memfence inspect --help'.\n");
			rc = MF_EXIT_USAGE;
			goto out;
		}
	}
	if (optind < argc) {
		mf_err("inspect: unexpected argument '%s'", argv[optind]);
		rc = MF_EXIT_USAGE;
		goto out;
	}
	mf_plan_opts_from_env(&opts);
	/* "" is the real system, as for an unset MEMFENCE_ROOT. */
	in->root = mf_opt_value(mf_root_options, in->root, who, sizeof(who));
	if (in->root == NULL)
		in->root = "";

	/* "" and "/" mean the real system; drop a trailing slash otherwise. */
	snprintf(dir, sizeof(dir), "%s", in->root);
	n = strlen(dir);
	while (n > 0 && dir[n - 1] == '/')
		dir[--n] = '\0';
	if (in->root[0] != '\0' && (stat(in->root, &st) != 0 || !S_ISDIR(st.st_mode))) {
		mf_err("invalid %s '%s': not a directory", who, in->root);
		rc = MF_EXIT_USAGE;
		goto out;
	}
	if (in->pid == 0)
		snprintf(in->proc, sizeof(in->proc), "%s/proc/self", dir);
	else
		snprintf(in->proc, sizeof(in->proc), "%s/proc/%ld", dir, (long)in->pid);
	if (in->pid != 0 && stat(in->proc, &st) != 0) {
		mf_err("no process %ld (%s: %s)", (long)in->pid, in->proc, strerror(errno));
		goto out;
	}
	if (in->pid != 0 && !S_ISDIR(st.st_mode)) {
		mf_err("no process %ld (%s is not a directory)", (long)in->pid, in->proc);
		goto out;
	}

	if (mf_memory_read(in->root, in->pid, &in->mem, err, sizeof(err)) != 0) {
		mf_err("%s", err);
		goto out;
	}
	in->psi_err = in->mem.cgroup_version == 2 ? mf_psi_read(in->mem.cgroup_dir, &in->psi)
						   : -EOPNOTSUPP;
	if (read_rlimits(in) != 0)
		goto out;
	thread_stack(in);
	read_oom_score_adj(in);
	if (mf_plan_resolve(&opts, &in->mem, &in->plan, err, sizeof(err)) != 0) {
		mf_err("%s", err);
		rc = MF_EXIT_USAGE;
		goto out;
	}
	collect_warnings(in);

	if (json) {
		if (print_json(in) != 0)
			goto out;
	} else {
		print_human(in);
	}
	if (fflush(stdout) != 0) {
		mf_err("inspect: cannot write the answer: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(in);
	return rc;
}
