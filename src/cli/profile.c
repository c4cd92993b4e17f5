/*
 * profile.c - `memfence profile`: run a program under the sampling heap
 * profiler, and turn its snapshot files into reports.
 *
 *   memfence profile [--rate SIZE] [-o FILE] -- PROGRAM [ARGS...]
 *   memfence profile report FILE [--format F] [--view V] [--scope NAME]
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/envspec.h"
#include "cli/cli.h"
#include "host/options.h"
#include "profile/profile.h"
#include "base/size.h"

enum { OPT_PYTHONMALLOC = MF_OPT_KEY_BASE };

static const struct mf_option run_options[] = {
	{.name = "rate", .key = 'r', .has_arg = required_argument, .arg = "SIZE",
	 .env = MF_ENV(PROFILE_RATE), .shown = "512K",
	 .help = "mean bytes between samples"},
	{.name = "output", .key = 'o', .has_arg = required_argument, .arg = "FILE",
	 .shown = "memfence-PID.prof",
	 .help = "profile file; profiles of other processes\n"
		 "PROGRAM started go to FILE.PID"},
	{.name = "pythonmalloc", .key = OPT_PYTHONMALLOC,
	 .help = "run Python with PYTHONMALLOC=malloc (every\n"
		 "object through malloc, as Fil does; slower)\n"
		 "instead of sampling small objects with an\n"
		 "allocator hook in pymalloc"},
	{0},
};

static const struct mf_option report_options[] = {
	{.name = "format", .key = 'f', .has_arg = required_argument, .arg = "F", .def = "text",
	 .help = MF_PROFILE_FORMAT_LIST},
	{.name = "view", .key = 'v', .has_arg = required_argument, .arg = "V", .def = "allocated",
	 .help = "allocated, live (at the snapshot: leaks at\n"
		 "exit), peak, failure"},
	{.name = "scope", .key = 's', .has_arg = required_argument, .arg = "NAME",
	 .help = "only samples taken in scopes (requests, tasks)\n"
		 "named NAME"},
	{.name = "top", .key = 'n', .has_arg = required_argument, .arg = "N", .def = "20",
	 .help = "sites in the text report"},
	{.name = "output", .key = 'o', .has_arg = required_argument, .arg = "OUT",
	 .help = "write there instead of standard output"},
	{0},
};

static const struct mf_option *const run_tabs[] = {run_options, mf_log_options, mf_help_options,
						   NULL};
static const struct mf_option *const report_tabs[] = {report_options, mf_help_options, NULL};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: memfence profile [OPTIONS] [--] PROGRAM [ARGS...]\n"
		"       memfence profile report FILE [--format F] [--view V] [--scope NAME] [--top N] [-o OUT]\n"
		"\n"
		"Run PROGRAM under the sampling heap profiler (libmemfence.so preloaded): one\n"
		"allocation is sampled per SIZE bytes on average, with its native and Python\n"
		"stacks. Snapshots are written at the peak of live memory, at the first failed\n"
		"allocation, on SIGUSR2 and at exit; the last one is kept as FILE.\n"
		"\n");
	mf_opts_help(f, "Options", run_options);
	mf_opts_help(f, NULL, mf_log_options);
	mf_opts_help(f, NULL, mf_help_options);
	mf_opts_help(f, "Report options", report_options);
	fprintf(f,
		"\n"
		"Exit status: PROGRAM's own (128+N when killed by signal N); 1 when no profile\n"
		"could be made or read; 2 for a bad option.\n");
}

int mf_profile_report(int argc, char **argv)
{
	enum mf_prof_format fmt;
	enum mf_prof_view view;
	const char *format = NULL, *view_s = NULL, *top_s = NULL, *scope = NULL, *out = NULL;
	struct mf_profile p;
	struct mf_opts opts;
	char err[512], who[64], *end;
	int opt, top, rc;
	long v;
	FILE *o = stdout;

	mf_opts_init(&opts, "", report_tabs);
	while ((opt = getopt_long(argc, argv, opts.shortopts, opts.longopts, NULL)) != -1) {
		switch (opt) {
		case 'f': format = optarg; break;
		case 'v': view_s = optarg; break;
		case 's': scope = optarg; break;
		case 'n': top_s = optarg; break;
		case 'o': out = optarg; break;
		case 'h': usage(stdout); return 0;
		default: fprintf(stderr, "Try 'memfence profile --help'.\n"); return MF_EXIT_USAGE;
		}
	}
	format = mf_opt_value(mf_opts_find(report_tabs, 'f'), format, who, sizeof(who));
	if (mf_profile_format_parse(format, &fmt) != 0) {
		mf_err("profile report: unknown format '%s' (" MF_PROFILE_FORMAT_LIST ")", format);
		return MF_EXIT_USAGE;
	}
	view_s = mf_opt_value(mf_opts_find(report_tabs, 'v'), view_s, who, sizeof(who));
	if (mf_profile_view_parse(view_s, &view) != 0) {
		mf_err("profile report: unknown view '%s' (allocated, live, peak, failure)", view_s);
		return MF_EXIT_USAGE;
	}
	top_s = mf_opt_value(mf_opts_find(report_tabs, 'n'), top_s, who, sizeof(who));
	v = strtol(top_s, &end, 10);
	if (*top_s == '\0' || *end != '\0' || v <= 0 || v > 100000) {
		mf_err("profile report: invalid --top '%s' (a count from 1)", top_s);
		return MF_EXIT_USAGE;
	}
	top = (int)v;
	if (optind + 1 != argc) {
		mf_err("profile report: give exactly one profile FILE");
		return MF_EXIT_USAGE;
	}
	if (mf_profile_load(argv[optind], &p, err, sizeof(err)) != 0) {
		mf_err("%s", err);
		return MF_EXIT_FAILURE;
	}
	/* Names and paths come from the file: text on stdout carries no
	 * terminal escapes. */
	if (out == NULL && mf_profile_formats[fmt].clean) {
		mf_stdout_clean();
		o = stdout;
	}
	if (out != NULL && (o = fopen(out, "w")) == NULL) {
		mf_err("%s: %s", out, strerror(errno));
		mf_profile_free(&p);
		return MF_EXIT_FAILURE;
	}
	rc = mf_profile_write(&p, fmt, view, scope, top, o, err, sizeof(err));
	if (rc != 0)
		mf_err("%s", err);
	if (fflush(o) != 0 || (o != stdout && fclose(o) != 0)) {
		mf_err("%s: write failed: %s", out ? out : "stdout", strerror(errno));
		rc = -1;
	}
	mf_profile_free(&p);
	return rc == 0 ? 0 : MF_EXIT_FAILURE;
}

static int move_file(const char *from, const char *to)
{
	char buf[1 << 15];
	size_t n;
	FILE *a, *b;

	if (rename(from, to) == 0)
		return 0;
	if (errno != EXDEV)
		return -1;
	/* another file system: copy */
	if ((a = fopen(from, "r")) == NULL)
		return -1;
	if ((b = fopen(to, "w")) == NULL) {
		fclose(a);
		return -1;
	}
	while ((n = fread(buf, 1, sizeof(buf), a)) > 0)
		fwrite(buf, 1, n, b);
	fclose(a);
	if (fclose(b) != 0)
		return -1;
	unlink(from);
	return 0;
}

/* Move the snapshot files from dir: the one of pid to out, others to
 * out.PID. Returns how many were found. */
static int collect(const char *dir, pid_t pid, const char *out)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char from[PATH_MAX + 512], to[PATH_MAX + 32];
	int found = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		long p;
		char tail[8];
		if (sscanf(e->d_name, "memfence-%ld.pro%1s", &p, tail) != 2 ||
		    strcmp(strchr(e->d_name, '.'), ".prof") != 0)
			continue;
		snprintf(from, sizeof(from), "%s/%s", dir, e->d_name);
		if (p == pid)
			snprintf(to, sizeof(to), "%s", out);
		else
			snprintf(to, sizeof(to), "%s.%ld", out, p);
		if (move_file(from, to) != 0) {
			mf_err("cannot move the profile to %s: %s", to, strerror(errno));
			continue;
		}
		mf_info("profile of pid %ld written to %s", p, to);
		found++;
	}
	closedir(d);
	return found;
}

static void cleanup_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[PATH_MAX + 512];

	if (d != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(dir);
}

int mf_cmd_profile(int argc, char **argv)
{
	struct mf_opts opts;
	const char *rate = NULL, *out = NULL, *shim, *err = NULL, *log_format = NULL;
	char dir[PATH_MAX], outbuf[64], who[64];
	int opt, pythonmalloc = 0, status, found;
	uint64_t r;
	pid_t pid;

	if (argc >= 2 && strcmp(argv[1], "report") == 0)
		return mf_profile_report(argc - 1, argv + 1);
	mf_opts_init(&opts, "+", run_tabs);
	while ((opt = getopt_long(argc, argv, opts.shortopts, opts.longopts, NULL)) != -1) {
		switch (opt) {
		case 'r': rate = optarg; break;
		case 'o': out = optarg; break;
		case OPT_PYTHONMALLOC: pythonmalloc = 1; break;
		case MF_OPT_LOG_FORMAT: log_format = optarg; break;
		case 'h': usage(stdout); return 0;
		default: fprintf(stderr, "Try 'memfence profile --help'.\n"); return MF_EXIT_USAGE;
		}
	}
	if (mf_log_format_set(log_format) < 0)
		return MF_EXIT_USAGE;
	rate = mf_opt_value(mf_opts_find(run_tabs, 'r'), rate, who, sizeof(who));
	if (rate != NULL && (mf_size_parse(rate, 0, &r, &err) != 0 || r == 0)) {
		mf_err("profile: invalid %s '%s'%s%s (a size above 0, such as 512K)", who, rate,
		       err ? ": " : "", err ? err : "");
		return MF_EXIT_USAGE;
	}
	if (optind >= argc) {
		mf_err("profile: no program given (memfence profile [OPTIONS] -- PROGRAM [ARGS...])");
		return MF_EXIT_USAGE;
	}
	shim = mf_preload_path("libmemfence.so");
	if (shim == NULL) {
		mf_err("profile: libmemfence.so not found (looked in " MF_PRELOAD_SEARCH ")");
		return MF_EXIT_FAILURE;
	}
	snprintf(dir, sizeof(dir), "%s/memfence-prof.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(dir) == NULL) {
		mf_err("profile: cannot make a directory for snapshots (%s): %s", dir, strerror(errno));
		return MF_EXIT_FAILURE;
	}
	if (mf_env_preload(shim) != 0 || setenv(MF_ENV(ACCOUNT), "1", 1) != 0 ||
	    setenv(MF_ENV(PROFILE_DIR), dir, 1) != 0 || setenv(MF_ENV(PROFILE_SIGNAL), "1", 1) != 0 ||
	    (rate != NULL && setenv(MF_ENV(PROFILE_RATE), rate, 1) != 0) ||
	    (pythonmalloc && setenv("PYTHONMALLOC", "malloc", 1) != 0)) {
		mf_err("profile: cannot set the environment: %s", strerror(errno));
		cleanup_dir(dir);
		return MF_EXIT_FAILURE;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		mf_err("profile: fork: %s", strerror(errno));
		cleanup_dir(dir);
		return MF_EXIT_FAILURE;
	}
	if (pid == 0) {
		execvp(argv[optind], argv + optind);
		mf_err("profile: cannot run %s: %s", argv[optind], strerror(errno));
		_exit(errno == ENOENT ? MF_EXIT_NOTFOUND : MF_EXIT_NOEXEC);
	}
	/* The terminal's ^C reaches the program; we wait for its end. */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			mf_err("profile: waitpid: %s", strerror(errno));
			status = 1 << 8;
			break;
		}
	}
	if (out == NULL) {
		snprintf(outbuf, sizeof(outbuf), "memfence-%ld.prof", (long)pid);
		out = outbuf;
	}
	found = collect(dir, pid, out);
	cleanup_dir(dir);
	if (found == 0)
		mf_err("profile: no profile was written (did the program start? is it static or setuid?)");
	else
		mf_info("see: memfence profile report %s [--format svg|pprof|...]", out);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	if (found == 0 && WEXITSTATUS(status) == 0)
		return MF_EXIT_FAILURE;
	return WEXITSTATUS(status);
}
