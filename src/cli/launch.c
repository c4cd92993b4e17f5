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
#include "base/envspec.h"
#include "host/memory.h"
#include "base/size.h"

const struct mf_option mf_root_options[] = {
	{.name = "root", .key = MF_OPT_ROOT, .has_arg = required_argument, .arg = "DIR",
	 .env = MF_ENV(ROOT), .help = "read /proc and /sys under DIR (for tests)"},
	{0},
};

const struct mf_option mf_account_options[] = {
	{.name = "account", .key = MF_OPT_ACCOUNT, .has_arg = no_argument, .env = MF_ENV(ACCOUNT),
	 .env_is = "1", .help = "preload libmemfence.so: per-request\n"
		 "counters, budgets"},
	{.name = "no-account", .key = MF_OPT_NO_ACCOUNT, .has_arg = no_argument,
	 .env = MF_ENV(ACCOUNT), .env_is = "0", .help = "do not preload it"},
	{.name = "heap-limit", .key = MF_OPT_HEAP_LIMIT, .has_arg = required_argument,
	 .arg = "SIZE|PCT", .env = MF_ENV(HEAP_LIMIT), .shown = "none",
	 .help = "live heap bytes the process may hold (needs\n"
		 "accounting; a percentage is of the budget)"},
	{.name = "segment", .key = MF_OPT_SEGMENT, .has_arg = required_argument, .arg = "FILE",
	 .env = MF_ENV(SEGMENT), .help = "shared stats segment for the accounting\n"
		 "library"},
	{0},
};

void mf_launch_help(FILE *f)
{
	mf_opts_help(f, "Limits", mf_plan_options);
	mf_opts_help(f, NULL, mf_root_options);
	mf_opts_help(f, "Accounting", mf_account_options);
	mf_opts_help(f, "Logs", mf_log_options);
}

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
	case MF_OPT_LOG_FORMAT: l->log_format = arg; return 1;
	}
	return 0;
}

static const struct mf_option *launch_opt(int key)
{
	static const struct mf_option *const tabs[] = {mf_account_options, mf_root_options, NULL};

	return mf_opts_find(tabs, key);
}

int mf_launch_env(struct mf_launch *l)
{
	char who[64];
	int on;

	if (mf_log_format_set(l->log_format) < 0)
		return -1;
	mf_plan_opts_from_env(&l->plan_opts);
	l->heap_limit = mf_opt_value(launch_opt(MF_OPT_HEAP_LIMIT), l->heap_limit, who, sizeof(who));
	if (mf_opt_env_bool(launch_opt(MF_OPT_ACCOUNT), &on) < 0)
		return -1;
	if (l->account < 0 && on >= 0)
		l->account = on;
	l->segment = mf_opt_value(launch_opt(MF_OPT_SEGMENT), l->segment, who, sizeof(who));
	/* "" is the real system, as for an unset MEMFENCE_ROOT. */
	l->root = mf_opt_value(launch_opt(MF_OPT_ROOT), l->root, who, sizeof(who));
	if (l->root == NULL)
		l->root = "";
	return 0;
}
