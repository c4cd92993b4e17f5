/*
 * exec.c - `memfence exec`: apply the limits, then become the program.
 *
 * Nothing stays behind: the program keeps memfence's PID, and its exit
 * status and signals are its own.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/launch.h"
#include "base/size.h"

static const struct mf_option exec_options[] = {
	{.name = "verbose", .key = 'v', .help = "print the plan on stderr before starting\nPROGRAM"},
	{.name = "dry-run", .key = 'n', .help = "print the plan and exit"},
	{0},
};

static const struct mf_option *const exec_tabs[] = {
	mf_plan_options, mf_root_options, mf_account_options, mf_log_options, exec_options,
	mf_help_options, NULL,
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: memfence exec [OPTIONS] [--] PROGRAM [ARGS...]\n"
		"\n"
		"Apply the container's memory limit to PROGRAM as an rlimit, so that an\n"
		"allocation past it fails (malloc returns NULL, Python raises MemoryError)\n"
		"in the thread that asked instead of the kernel killing the process; then\n"
		"replace memfence with PROGRAM.\n"
		"\n");
	mf_launch_help(f);
	mf_opts_help(f, "Other", exec_options);
	mf_opts_help(f, NULL, mf_help_options);
	fprintf(f,
		"\n"
		"Exit status: PROGRAM's own; 2 for a bad option or size; 1 when the limits\n"
		"cannot be applied (setrlimit refused, --account without libmemfence.so);\n"
		"126/127 when PROGRAM cannot be run.\n");
}

static void print_plan(FILE *f, const struct mf_plan *p, int account)
{
	char a[32];

	fprintf(f, "limit    %s  from %s\n", mf_size_format(p->limit, a, sizeof(a)), p->limit_from);
	fprintf(f, "reserve  %s%s\n", mf_size_format(p->reserve, a, sizeof(a)),
		p->reserve_default ? "  (default: " MF_RESERVE_RULE ")" : "");
	fprintf(f, "budget   %s  (%llu bytes) as RLIMIT_%s\n", mf_size_format(p->budget, a, sizeof(a)),
		(unsigned long long)p->budget,
		p->rlimit == MF_RLIMIT_AS ? "AS" : p->rlimit == MF_RLIMIT_DATA ? "DATA" : "NONE (not applied)");
	fprintf(f, "stack    %s for new threads\n", mf_size_format(p->stack, a, sizeof(a)));
	fprintf(f, "account  %s\n", account == 1 ? "on (libmemfence.so)" : "off");
}

int mf_cmd_exec(int argc, char **argv)
{
	struct mf_opts opts;
	struct mf_launch l = {.account = -1};
	struct mf_plan plan;
	int opt, verbose = 0, dry = 0, status;

	/* '+': stop at the program's name so its own options stay its own. */
	mf_opts_init(&opts, "+", exec_tabs);
	while ((opt = getopt_long(argc, argv, opts.shortopts, opts.longopts, NULL)) != -1) {
		if (mf_launch_opt(&l, opt, optarg))
			continue;
		switch (opt) {
		case 'v': verbose = 1; break;
		case 'n': dry = 1; break;
		case 'h': usage(stdout); return 0;
		default:
			fprintf(stderr, "Try 'memfence exec --help'.\n");
			return MF_EXIT_USAGE;
		}
	}
	if (optind >= argc && !dry) {
		mf_err("exec: no program given (memfence exec [OPTIONS] -- PROGRAM [ARGS...])");
		return MF_EXIT_USAGE;
	}
	if (mf_launch_env(&l) < 0)
		return MF_EXIT_USAGE;
	if (l.account < 0)
		l.account = 0;
	/* Accounting is off by default here, unlike `run`. */
	if (l.heap_limit != NULL && l.account == 0) {
		mf_err("--heap-limit needs accounting (add --account)");
		return MF_EXIT_USAGE;
	}
	if (mf_launch_prepare(&l, &plan, &status) != 0)
		return status;
	if (verbose || dry)
		print_plan(dry ? stdout : stderr, &plan, l.account);
	if (dry)
		return 0;
	fflush(NULL);
	return mf_launch_exec(argv + optind);
}
