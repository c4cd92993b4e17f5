/*
 * run.c - `memfence run`: its command line read into the supervisor's
 * option table (src/supervisor/config.h, which resolves and checks them
 * into a struct sup_config), then sup_run(), which starts the program and
 * stays beside it.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/launch.h"
#include "supervisor/config.h"

static const struct mf_option *const run_tabs[] = {
	mf_plan_options, mf_root_options, mf_account_options, mf_log_options, sup_options,
	sup_flags, mf_help_options, NULL,
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: memfence run [OPTIONS] [--] PROGRAM [ARGS...]\n"
		"\n"
		"Start PROGRAM as `memfence exec` would, with the accounting library on\n"
		"(--no-account to opt out), and supervise it: forward signals, reap zombies,\n"
		"serve health probes and metrics, write a post-mortem when it dies, and\n"
		"optionally restart it.\n"
		"\n");
	mf_launch_help(f);
	mf_opts_help(f, "Supervisor", sup_options);
	mf_opts_help(f, NULL, sup_flags);
	mf_opts_help(f, NULL, mf_help_options);
	fprintf(f,
		"\n"
		"Durations: " MF_DURATION_SYNTAX ".\n"
		"Exit status: PROGRAM's own (128+N when signal N ended it); 2 for a bad\n"
		"option, 1 when the supervisor cannot start, 126/127 when PROGRAM cannot\n"
		"be run.\n");
}

int mf_cmd_run(int argc, char **argv)
{
	static struct mf_opts opts;
	static struct mf_memory mem;
	static struct sup_given given;
	static struct mf_launch launch;
	struct mf_plan plan;
	struct sup_config sc;
	char err[512];
	int opt, have_mem;

	memset(&given, 0, sizeof(given));
	memset(&launch, 0, sizeof(launch));
	launch.account = -1;
	mf_opts_init(&opts, "+", run_tabs);
	while ((opt = getopt_long(argc, argv, opts.shortopts, opts.longopts, NULL)) != -1) {
		if (mf_launch_opt(&launch, opt, optarg) || sup_config_given(&given, opt, optarg))
			continue;
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
	if (mf_launch_env(&launch) < 0)
		return MF_EXIT_USAGE;
	if (launch.account < 0)
		launch.account = 1;

	/* The plan as the program gets it at its first start, and the one
	 * headroom and health use (a restart resolves it again for the
	 * program: src/supervisor/child.c). */
	have_mem = mf_memory_read_limits(launch.root, &mem, err, sizeof(err)) == 0;
	if (!have_mem)
		memset(&mem, 0, sizeof(mem));
	if (mf_plan_resolve(&launch.plan_opts, have_mem ? &mem : NULL, &plan, err,
			    sizeof(err)) != 0) {
		mf_err("%s", err);
		return MF_EXIT_USAGE;
	}
	if (sup_config_resolve(&sc, &given, &launch, &plan, &mem, argv + optind) < 0)
		return MF_EXIT_USAGE;
	return sup_run(&sc);
}
