/*
 * launch.c - options and environment shared by `exec` and `run`.
 */
#include "cli/launch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "host/memory.h"
#include "base/size.h"

const char mf_launch_help[] =
	"Limits:\n"
	"  --limit auto|SIZE    memory limit to plan for (default auto: the cgroup's\n"
	"                       memory.max / memory.limit_in_bytes, else MemTotal)\n"
	"  --reserve SIZE|PCT   kept free below the limit (default: the larger of\n"
	"                       64M and 5% of the limit); budget = limit - reserve\n"
	"  --rlimit data|as|none  which rlimit carries the budget (default data)\n"
	"  --stack SIZE         default stack of new threads (default 2M, at least\n"
	"                       256K); the main thread's stack is unchanged\n"
	"Accounting:\n"
	"  --account            preload libmemfence.so: per-request counters, budgets\n"
	"  --no-account         do not preload it\n"
	"  --heap-limit SIZE|PCT  live heap bytes the process may hold (needs\n"
	"                       accounting; a percentage is of the budget)\n"
	"  --segment FILE       shared stats segment for the accounting library\n"
	"  --root DIR           read /proc and /sys under DIR (for tests)\n";

int mf_launch_opt(struct mf_launch *l, int opt, const char *arg)
{
	switch (opt) {
	case MF_OPT_LIMIT: l->plan_opts.limit = arg; return 1;
	case MF_OPT_RESERVE: l->plan_opts.reserve = arg; return 1;
	case MF_OPT_RLIMIT: l->plan_opts.rlimit = arg; return 1;
	case MF_OPT_STACK: l->plan_opts.stack = arg; return 1;
	case MF_OPT_HEAP_LIMIT: l->heap_limit = arg; return 1;
	case MF_OPT_ACCOUNT: l->account = 1; return 1;
	case MF_OPT_NO_ACCOUNT: l->account = 0; return 1;
	case MF_OPT_SEGMENT: l->segment = arg; return 1;
	case MF_OPT_ROOT: l->root = arg; return 1;
	}
	return 0;
}

void mf_launch_env(struct mf_launch *l)
{
	const char *v;

	mf_plan_opts_from_env(&l->plan_opts);
	if (l->heap_limit == NULL && (v = getenv("MEMFENCE_HEAP_LIMIT")) != NULL && *v)
		l->heap_limit = v;
	if (l->account < 0 && (v = getenv("MEMFENCE_ACCOUNT")) != NULL && *v)
		l->account = strcmp(v, "0") != 0;
	if (l->segment == NULL && (v = getenv("MEMFENCE_SEGMENT")) != NULL && *v)
		l->segment = v;
	if (l->root == NULL)
		l->root = mf_root_default();
}
