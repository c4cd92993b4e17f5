/*
 * launch.h - start a program under a plan: the part `exec` and `run` share.
 */
#ifndef MF_LAUNCH_H
#define MF_LAUNCH_H

#include <getopt.h>
#include <stddef.h>

#include "host/plan.h"

/* Options every launching command takes (getopt_long values). */
enum {
	MF_OPT_LIMIT = 0x100,
	MF_OPT_RESERVE,
	MF_OPT_RLIMIT,
	MF_OPT_STACK,
	MF_OPT_HEAP_LIMIT,
	MF_OPT_ACCOUNT,
	MF_OPT_NO_ACCOUNT,
	MF_OPT_SEGMENT,
	MF_OPT_ROOT,
	MF_OPT_LAUNCH_LAST
};

#define MF_LAUNCH_LONGOPTS                                               \
	{"limit", required_argument, NULL, MF_OPT_LIMIT},                \
	{"reserve", required_argument, NULL, MF_OPT_RESERVE},            \
	{"rlimit", required_argument, NULL, MF_OPT_RLIMIT},              \
	{"stack", required_argument, NULL, MF_OPT_STACK},                \
	{"heap-limit", required_argument, NULL, MF_OPT_HEAP_LIMIT},      \
	{"account", no_argument, NULL, MF_OPT_ACCOUNT},                  \
	{"no-account", no_argument, NULL, MF_OPT_NO_ACCOUNT},            \
	{"segment", required_argument, NULL, MF_OPT_SEGMENT},            \
	{"root", required_argument, NULL, MF_OPT_ROOT}

/* The help lines for those options. */
extern const char mf_launch_help[];

struct mf_launch {
	struct mf_plan_opts plan_opts;
	const char *heap_limit; /* size or percent of the budget; NULL = none */
	int account;            /* -1 = command's default, 0 no, 1 yes */
	const char *segment;    /* segment file for the shim; NULL = shim decides */
	const char *root;       /* root prefix for /proc and /sys (tests) */
};

/* Handle one getopt_long result; returns 1 if it was a launch option. */
int mf_launch_opt(struct mf_launch *l, int opt, const char *arg);

/* Fill what the command line left unset from MEMFENCE_* variables
 * (MEMFENCE_LIMIT, _RESERVE, _RLIMIT, _STACK, _HEAP_LIMIT, _ACCOUNT). */
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
