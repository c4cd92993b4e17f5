/*
 * plan.c - from a memory limit to the limits memfence applies.
 */
#include "host/plan.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

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

static const char *env_or(const char *cur, const char *name)
{
	const char *v;

	if (cur != NULL)
		return cur;
	v = getenv(name);
	return (v != NULL && *v != '\0') ? v : NULL;
}

void mf_plan_opts_from_env(struct mf_plan_opts *o)
{
	o->limit = env_or(o->limit, "MEMFENCE_LIMIT");
	o->reserve = env_or(o->reserve, "MEMFENCE_RESERVE");
	o->rlimit = env_or(o->rlimit, "MEMFENCE_RLIMIT");
	o->stack = env_or(o->stack, "MEMFENCE_STACK");
}

int mf_plan_resolve(const struct mf_plan_opts *o, const struct mf_memory *mem,
		    struct mf_plan *p, char *err, size_t errlen)
{
	const char *msg;
	char a[32], b[32];

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
			snprintf(err, errlen, "invalid limit '%s' (--limit, MEMFENCE_LIMIT): %s", o->limit, msg);
			return -1;
		}
		if (p->limit == 0) {
			snprintf(err, errlen, "invalid limit '%s' (--limit, MEMFENCE_LIMIT): must be more than 0", o->limit);
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
		snprintf(err, errlen, "invalid reserve '%s' (--reserve, MEMFENCE_RESERVE): %s", o->reserve, msg);
		return -1;
	}
	if (p->reserve >= p->limit) {
		snprintf(err, errlen, "the reserve (%s) leaves no budget under the limit (%s); "
			 "lower --reserve or raise --limit",
			 mf_size_format(p->reserve, a, sizeof(a)), mf_size_format(p->limit, b, sizeof(b)));
		return -1;
	}
	p->budget = p->limit - p->reserve;

	if (o->rlimit == NULL || strcmp(o->rlimit, "data") == 0)
		p->rlimit = MF_RLIMIT_DATA;
	else if (strcmp(o->rlimit, "as") == 0)
		p->rlimit = MF_RLIMIT_AS;
	else if (strcmp(o->rlimit, "none") == 0)
		p->rlimit = MF_RLIMIT_NONE;
	else {
		snprintf(err, errlen, "invalid rlimit '%s' (--rlimit, MEMFENCE_RLIMIT): use data, as or none", o->rlimit);
		return -1;
	}

	if (o->stack == NULL) {
		p->stack = MF_STACK_DEFAULT;
	} else {
		if (mf_size_parse(o->stack, 0, &p->stack, &msg) != 0) {
			snprintf(err, errlen, "invalid stack size '%s' (--stack, MEMFENCE_STACK): %s", o->stack, msg);
			return -1;
		}
		if (p->stack < MF_STACK_MIN) {
			snprintf(err, errlen, "invalid stack size '%s' (--stack, MEMFENCE_STACK): at least 256K is needed "
				 "(Python and most C libraries overflow smaller stacks)", o->stack);
			return -1;
		}
		if (p->stack >= p->budget) {
			snprintf(err, errlen, "invalid stack size '%s' (--stack, MEMFENCE_STACK): larger than the budget", o->stack);
			return -1;
		}
	}
	return 0;
}

int mf_plan_apply_rlimit(const struct mf_plan *p, char *err, size_t errlen)
{
	struct rlimit rl;
	int res;
	const char *name;

	if (p->rlimit == MF_RLIMIT_NONE)
		return 0;
	res = p->rlimit == MF_RLIMIT_AS ? RLIMIT_AS : RLIMIT_DATA;
	name = p->rlimit == MF_RLIMIT_AS ? "RLIMIT_AS" : "RLIMIT_DATA";
	if (getrlimit(res, &rl) != 0) {
		snprintf(err, errlen, "getrlimit(%s): %s", name, strerror(errno));
		return -1;
	}
	/* The soft limit is what turns allocations into ENOMEM. The hard limit
	 * is left alone so that the program may still raise its own soft limit
	 * (as the standard-library resource module lets it), unless it is
	 * already lower, in which case the budget must not exceed it. */
	rlim_t want = (rlim_t)p->budget;
	if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
		want = rl.rlim_max;
	if (want == 0) {
		/* A soft limit of 0 has special meanings for some resources. */
		snprintf(err, errlen, "%s: refusing to set a soft limit of 0", name);
		return -1;
	}
	rl.rlim_cur = want;
	if (setrlimit(res, &rl) != 0) {
		snprintf(err, errlen, "setrlimit(%s, %llu): %s", name,
			 (unsigned long long)want, strerror(errno));
		return -1;
	}
	return 0;
}
