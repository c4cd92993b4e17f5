/*
 * launch.h - the options `exec` and `run` share, read into a struct
 * mf_launch (host/launch.h applies it).
 */
#ifndef MF_LAUNCH_H
#define MF_LAUNCH_H

#include <stddef.h>
#include <stdio.h>

#include "host/launch.h"
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

/* Handle one getopt_long result; returns 1 if it was a launch option. */
int mf_launch_opt(struct mf_launch *l, int opt, const char *arg);

/* Fill what the command line left unset from the options' MEMFENCE_*
 * variables, and the root from its default. 0, or -1 after a message
 * (a value of no meaning: exit 2). */
int mf_launch_env(struct mf_launch *l);

#endif
