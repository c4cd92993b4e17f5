/*
 * launch.h - the options `exec` and `run` share, read into a struct
 * mf_launch (host/launch.h applies it).
 */
#ifndef MF_LAUNCH_H
#define MF_LAUNCH_H

#include <getopt.h>
#include <stddef.h>

#include "host/launch.h"

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

/* Handle one getopt_long result; returns 1 if it was a launch option. */
int mf_launch_opt(struct mf_launch *l, int opt, const char *arg);

/* Fill what the command line left unset from MEMFENCE_* variables
 * (MEMFENCE_LIMIT, _RESERVE, _RLIMIT, _STACK, _HEAP_LIMIT, _ACCOUNT). */
void mf_launch_env(struct mf_launch *l);

#endif
