/*
 * plan.c - from a memory limit to the limits memfence applies.
 */
#include "host/plan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "base/envspec.h"
#include "base/lines.h"
#include "base/size.h"

const char *mf_rlimit_name(enum mf_rlimit_kind k)
{
	switch (k) {
	case MF_RLIMIT_DATA: return "data";
	case MF_RLIMIT_AS: return "as";
	case MF_RLIMIT_NONE: return "none";
	}
	return "?";
}

/* A NULL field of struct mf_plan_opts is the default: the rules below. */
const struct mf_option mf_plan_options[] = {
	{.name = "limit", .key = MF_OPT_LIMIT, .has_arg = required_argument, .arg = "auto|SIZE",
	 .env = MF_ENV(LIMIT), .def = "auto",
	 .help = "memory limit to plan for (auto: the cgroup's\n"
		 "memory.max or memory.limit_in_bytes, else\n"
		 "MemTotal)"},
	{.name = "reserve", .key = MF_OPT_RESERVE, .has_arg = required_argument, .arg = "SIZE|PCT",
	 .env = MF_ENV(RESERVE), .shown = MF_RESERVE_RULE,
	 .help = "kept free below the limit;\n"
		 "budget = limit - reserve"},
	{.name = "rlimit", .key = MF_OPT_RLIMIT, .has_arg = required_argument, .arg = "data|as|none",
	 .env = MF_ENV(RLIMIT), .def = "data", .help = "which rlimit carries the budget"},
	{.name = "stack", .key = MF_OPT_STACK, .has_arg = required_argument, .arg = "SIZE",
	 .env = MF_ENV(STACK), .shown = MF_STACK_DEFAULT_TEXT,
	 .help = "default stack of new threads, at least " MF_STACK_MIN_TEXT ";\n"
		 "the main thread's stack is unchanged"},
	{0},
};

enum { P_LIMIT, P_RESERVE, P_RLIMIT, P_STACK };

void mf_plan_opts_from_env(struct mf_plan_opts *o)
{
	const char **field[] = {&o->limit, &o->reserve, &o->rlimit, &o->stack};

	for (size_t i = 0; i < sizeof(field) / sizeof(field[0]); i++)
		if (*field[i] == NULL)
			*field[i] = mf_opt_env(&mf_plan_options[i]);
}

int mf_plan_resolve(const struct mf_plan_opts *o, const struct mf_memory *mem,
		    struct mf_plan *p, char *err, size_t errlen)
{
	const char *msg;
	char a[32], b[32], who[64];

	memset(p, 0, sizeof(*p));

	if (o->limit == NULL || strcmp(o->limit, "auto") == 0) {
		if (mem == NULL || mem->limit == MF_UNKNOWN || mem->limit == 0) {
			snprintf(err, errlen,
				 "cannot find the memory limit (no cgroup limit and no MemTotal); give --limit SIZE");
			return -1;
		}
		p->limit = mem->limit;
		p->limit_source = mem->limit_source;
		if (mem->limit_file[0] != '\0')
			snprintf(p->limit_from, sizeof(p->limit_from), "%s (%s)",
				 mf_limit_source_name(mem->limit_source), mem->limit_file);
		else
			snprintf(p->limit_from, sizeof(p->limit_from), "%s",
				 mf_limit_source_name(mem->limit_source));
	} else {
		/* A percentage of the limit found, so that "--limit 80%" works. */
		uint64_t base = (mem != NULL && mem->limit != MF_UNKNOWN) ? mem->limit : 0;
		if (mf_size_parse(o->limit, base, &p->limit, &msg) != 0) {
			snprintf(err, errlen, "invalid limit '%s' (%s): %s", o->limit,
				 mf_opt_names(&mf_plan_options[P_LIMIT], who, sizeof(who)), msg);
			return -1;
		}
		if (p->limit == 0) {
			snprintf(err, errlen, "invalid limit '%s' (%s): must be more than 0", o->limit,
				 mf_opt_names(&mf_plan_options[P_LIMIT], who, sizeof(who)));
			return -1;
		}
		p->limit_source = MF_LIMIT_USER;
		snprintf(p->limit_from, sizeof(p->limit_from), "--limit %s", o->limit);
	}

	if (o->reserve == NULL) {
		/* Room for what the limit does not see or that must not fail:
		 * the C runtime, libraries' own allocations, page cache and
		 * the kernel's per-process overhead. */
		p->reserve = p->limit / 100 * MF_RESERVE_PERCENT;
		if (p->reserve < MF_RESERVE_MIN)
			p->reserve = MF_RESERVE_MIN;
		p->reserve_default = 1;
	} else if (mf_size_parse(o->reserve, p->limit, &p->reserve, &msg) != 0) {
		snprintf(err, errlen, "invalid reserve '%s' (%s): %s", o->reserve,
			 mf_opt_names(&mf_plan_options[P_RESERVE], who, sizeof(who)), msg);
		return -1;
	}
	p->budget = mf_budget(p->limit, p->reserve);
	if (p->budget == 0) {
		snprintf(err, errlen, "the reserve (%s) leaves no budget under the limit (%s); "
			 "lower --reserve or raise --limit",
			 mf_size_format(p->reserve, a, sizeof(a)), mf_size_format(p->limit, b, sizeof(b)));
		return -1;
	}

	if (o->rlimit == NULL || strcmp(o->rlimit, "data") == 0)
		p->rlimit = MF_RLIMIT_DATA;
	else if (strcmp(o->rlimit, "as") == 0)
		p->rlimit = MF_RLIMIT_AS;
	else if (strcmp(o->rlimit, "none") == 0)
		p->rlimit = MF_RLIMIT_NONE;
	else {
		snprintf(err, errlen, "invalid rlimit '%s' (%s): use data, as or none", o->rlimit,
			 mf_opt_names(&mf_plan_options[P_RLIMIT], who, sizeof(who)));
		return -1;
	}

	if (o->stack == NULL) {
		p->stack = MF_STACK_DEFAULT;
	} else {
		const char *stack_names = mf_opt_names(&mf_plan_options[P_STACK], who, sizeof(who));

		if (mf_size_parse(o->stack, 0, &p->stack, &msg) != 0) {
			snprintf(err, errlen, "invalid stack size '%s' (%s): %s", o->stack,
				 stack_names, msg);
			return -1;
		}
		if (p->stack < MF_STACK_MIN) {
			snprintf(err, errlen, "invalid stack size '%s' (%s): at least " MF_STACK_MIN_TEXT
				 " is needed (Python and most C libraries overflow smaller stacks)",
				 o->stack, stack_names);
			return -1;
		}
		if (p->stack >= p->budget) {
			snprintf(err, errlen, "invalid stack size '%s' (%s): larger than the budget", o->stack,
				 stack_names);
			return -1;
		}
	}
	return 0;
}

static const char *rlimit_name(int res)
{
	return res == RLIMIT_AS ? "RLIMIT_AS" : "RLIMIT_DATA";
}

int mf_plan_rlimit(const struct mf_plan *p, int *res, struct rlimit *rl, char *err, size_t errlen)
{
	if (p->rlimit == MF_RLIMIT_NONE)
		return 0;
	*res = p->rlimit == MF_RLIMIT_AS ? RLIMIT_AS : RLIMIT_DATA;
	if (getrlimit(*res, rl) != 0) {
		snprintf(err, errlen, "getrlimit(%s): %s", rlimit_name(*res), strerror(errno));
		return -1;
	}
	/* The soft limit is what turns allocations into ENOMEM. The hard limit
	 * is left alone so that the program may still raise its own soft limit
	 * (as the standard-library resource module lets it), unless it is
	 * already lower, in which case the budget must not exceed it. */
	rlim_t want = (rlim_t)p->budget;
	if (rl->rlim_max != RLIM_INFINITY && want > rl->rlim_max)
		want = rl->rlim_max;
	if (want == 0) {
		/* A soft limit of 0 has special meanings for some resources. */
		snprintf(err, errlen, "%s: refusing to set a soft limit of 0", rlimit_name(*res));
		return -1;
	}
	rl->rlim_cur = want;
	return 1;
}

void mf_plan_rlimit_error(int res, const struct rlimit *rl, int e, char *err, size_t errlen)
{
	snprintf(err, errlen, "setrlimit(%s, %llu): %s", rlimit_name(res),
		 (unsigned long long)rl->rlim_cur, strerror(e));
}

int mf_plan_apply_rlimit(const struct mf_plan *p, char *err, size_t errlen)
{
	struct rlimit rl;
	int res, rc = mf_plan_rlimit(p, &res, &rl, err, errlen);

	if (rc <= 0)
		return rc;
	if (setrlimit(res, &rl) != 0) {
		mf_plan_rlimit_error(res, &rl, errno, err, errlen);
		return -1;
	}
	return 0;
}
