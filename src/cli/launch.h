/*
 * launch.h - start a program under a plan: the part `exec` and `run` share.
 */
#ifndef MF_LAUNCH_H
#define MF_LAUNCH_H

#include <stddef.h>
#include <stdio.h>

#include "host/options.h"
#include "host/plan.h"

/* Keys of the options exec and run add to the limit options. */
enum {
	MF_OPT_HEAP_LIMIT = MF_OPT_PLAN_LAST,
	MF_OPT_ACCOUNT,
	MF_OPT_NO_ACCOUNT,
	MF_OPT_SEGMENT,
	MF_OPT_ROOT,
	MF_OPT_LAUNCH_LAST
};

/* --root: where /proc and /sys are read (exec, run, inspect). */
extern const struct mf_option mf_root_options[];
/* --account, --no-account, --heap-limit, --segment (exec, run). */
extern const struct mf_option mf_account_options[];

/* Help of the options exec and run share: limits, then accounting. */
void mf_launch_help(FILE *f);

struct mf_launch {
	struct mf_plan_opts plan_opts;
	const char *heap_limit; /* size or percent of the budget; NULL = none */
	int account;            /* -1 = command's default, 0 no, 1 yes */
	const char *segment;    /* segment file for the shim; NULL = shim decides */
	const char *root;       /* root prefix for /proc and /sys (tests) */
};

/* Handle one getopt_long result; returns 1 if it was a launch option. */
int mf_launch_opt(struct mf_launch *l, int opt, const char *arg);

/* Fill what the command line left unset from the options' MEMFENCE_*
 * variables, and the root from its default. */
void mf_launch_env(struct mf_launch *l);

/*
 * Resolve the plan (reads the memory of this process), apply the rlimit,
 * and set the environment the program will inherit: LD_PRELOAD of the shim
 * (account) or of the stack library, MEMFENCE_STACK, MEMFENCE_SEGMENT,
 * MEMFENCE_HEAP_LIMIT, MALLOC_ARENA_MAX under --rlimit as. Warnings go to
 * stderr. Returns 0, or -1 after printing a one-line error (exit status 2
 * for a bad value, see *status).
 */
int mf_launch_prepare(struct mf_launch *l, struct mf_plan *plan, int *status);

/* execvp(argv[0]); only returns on failure, with 126 or 127 after an error. */
int mf_launch_exec(char **argv);

#endif
