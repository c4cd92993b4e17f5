/*
 * plan.h - what memfence applies to a program: limit, reserve, budget,
 * rlimit kind and default thread stack size.
 *
 * Shared by `exec`, `run` and `inspect`. Every option has a MEMFENCE_*
 * environment equivalent; the command line wins over the environment.
 */
#ifndef MF_PLAN_H
#define MF_PLAN_H

#include <stdint.h>
#include <sys/resource.h>
#include "host/memory.h"
#include "host/options.h"

enum mf_rlimit_kind { MF_RLIMIT_DATA = 0, MF_RLIMIT_AS, MF_RLIMIT_NONE };

/* The defaults, in the units people write them in, so that --help, the
 * Python package and the plan say the same thing. */
#define MF_STACK_DEFAULT_MIB 2
#define MF_STACK_MIN_KIB 256
#define MF_RESERVE_MIN_MIB 64
#define MF_RESERVE_PERCENT 5

#define MF_STACK_DEFAULT ((uint64_t)MF_STACK_DEFAULT_MIB << 20)
#define MF_STACK_MIN ((uint64_t)MF_STACK_MIN_KIB << 10)
#define MF_RESERVE_MIN ((uint64_t)MF_RESERVE_MIN_MIB << 20)
#define MF_STACK_DEFAULT_TEXT MF_STR(MF_STACK_DEFAULT_MIB) "M"
#define MF_STACK_MIN_TEXT MF_STR(MF_STACK_MIN_KIB) "K"
/* The default reserve: the larger of the two. */
#define MF_RESERVE_RULE "max(" MF_STR(MF_RESERVE_MIN_MIB) "M, " MF_STR(MF_RESERVE_PERCENT) "%)"

/* Keys of the limit options (getopt_long values). */
enum {
	MF_OPT_LIMIT = MF_OPT_KEY_BASE,
	MF_OPT_RESERVE,
	MF_OPT_RLIMIT,
	MF_OPT_STACK,
	MF_OPT_PLAN_LAST
};

/* --limit, --reserve, --rlimit, --stack and their MEMFENCE_* variables, in
 * the order of the fields of struct mf_plan_opts. */
extern const struct mf_option mf_plan_options[];

struct mf_plan_opts {
	const char *limit;   /* "auto" or a size; NULL = default */
	const char *reserve; /* size or percent of the limit; NULL = default */
	const char *rlimit;  /* "data", "as", "none"; NULL = default */
	const char *stack;   /* size; NULL = default */
};

struct mf_plan {
	uint64_t limit;
	enum mf_limit_source limit_source;
	char limit_from[MF_PATH_MAX + 32]; /* human: where the limit came from */
	uint64_t reserve;
	int reserve_default;               /* 1 when the default rule chose it */
	uint64_t budget;                   /* limit - reserve */
	enum mf_rlimit_kind rlimit;
	uint64_t stack;
};

/* Fill unset fields of opts from the options' environment variables
 * (MEMFENCE_LIMIT, ...). */
void mf_plan_opts_from_env(struct mf_plan_opts *opts);

/* Compute the plan from opts and the memory read for the process.
 * Returns 0, or -1 with a one-line message in err (exit status 2). */
int mf_plan_resolve(const struct mf_plan_opts *opts, const struct mf_memory *mem,
		    struct mf_plan *plan, char *err, size_t errlen);

/* Apply the rlimit of the plan to this process (inherited across exec).
 * Never sets a soft limit of 0; keeps a lower existing hard limit.
 * Returns 0, or -1 with err. */
int mf_plan_apply_rlimit(const struct mf_plan *plan, char *err, size_t errlen);

/* The same in two steps, for a process that applies it in a child that
 * may only make system calls (launch.h, mf_spawn): the resource and its
 * new limits, 1 (0 when the plan sets none, -1 with err); and the message
 * of a setrlimit(2) of them that failed with errno e. */
int mf_plan_rlimit(const struct mf_plan *plan, int *res, struct rlimit *rl, char *err,
		   size_t errlen);
void mf_plan_rlimit_error(int res, const struct rlimit *rl, int e, char *err, size_t errlen);

/* "data", "as", "none" */
const char *mf_rlimit_name(enum mf_rlimit_kind k);

#endif
