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

const struct mf_option mf_root_options[] = {
	{.name = "root", .key = MF_OPT_ROOT, .has_arg = required_argument, .arg = "DIR",
	 .env = "MEMFENCE_ROOT", .help = "read /proc and /sys under DIR (for tests)"},
	{0},
};

const struct mf_option mf_account_options[] = {
	{.name = "account", .key = MF_OPT_ACCOUNT, .has_arg = no_argument, .env = "MEMFENCE_ACCOUNT",
	 .env_is = "1", .help = "preload libmemfence.so: per-request\n"
		 "counters, budgets"},
	{.name = "no-account", .key = MF_OPT_NO_ACCOUNT, .has_arg = no_argument,
	 .env = "MEMFENCE_ACCOUNT", .env_is = "0", .help = "do not preload it"},
	{.name = "heap-limit", .key = MF_OPT_HEAP_LIMIT, .has_arg = required_argument,
	 .arg = "SIZE|PCT", .env = "MEMFENCE_HEAP_LIMIT", .shown = "none",
	 .help = "live heap bytes the process may hold (needs\n"
		 "accounting; a percentage is of the budget)"},
	{.name = "segment", .key = MF_OPT_SEGMENT, .has_arg = required_argument, .arg = "FILE",
	 .env = "MEMFENCE_SEGMENT", .help = "shared stats segment for the accounting\n"
		 "library"},
	{0},
};

void mf_launch_help(FILE *f)
{
	mf_opts_help(f, "Limits", mf_plan_options);
	mf_opts_help(f, NULL, mf_root_options);
	mf_opts_help(f, "Accounting", mf_account_options);
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
	}
	return 0;
}

static const struct mf_option *launch_opt(int key)
{
	static const struct mf_option *const tabs[] = {mf_account_options, mf_root_options, NULL};

	return mf_opts_find(tabs, key);
}

void mf_launch_env(struct mf_launch *l)
{
	const char *v;
	char who[64];

	mf_plan_opts_from_env(&l->plan_opts);
	l->heap_limit = mf_opt_value(launch_opt(MF_OPT_HEAP_LIMIT), l->heap_limit, who, sizeof(who));
	if (l->account < 0 && (v = mf_opt_env(launch_opt(MF_OPT_ACCOUNT))) != NULL)
		l->account = strcmp(v, "0") != 0;
	l->segment = mf_opt_value(launch_opt(MF_OPT_SEGMENT), l->segment, who, sizeof(who));
	/* "" is the real system, as for an unset MEMFENCE_ROOT. */
	l->root = mf_opt_value(launch_opt(MF_OPT_ROOT), l->root, who, sizeof(who));
	if (l->root == NULL)
		l->root = "";
}

static int setenv_u64(const char *name, uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return setenv(name, buf, 1);
}

int mf_launch_prepare(struct mf_launch *l, struct mf_plan *plan, int *status)
{
	struct mf_memory mem;
	char err[512], a[32], b[32];
	const char *msg, *lib, *path;
	int have_mem;

	*status = MF_EXIT_USAGE;
	have_mem = mf_memory_read(l->root, 0, &mem, err, sizeof(err)) == 0;
	if (mf_plan_resolve(&l->plan_opts, have_mem ? &mem : NULL, plan, err, sizeof(err)) != 0) {
		mf_err("%s", err);
		return -1;
	}

	uint64_t heap = 0;
	if (l->heap_limit != NULL) {
		char names[64];

		mf_opt_names(launch_opt(MF_OPT_HEAP_LIMIT), names, sizeof(names));
		if (mf_size_parse(l->heap_limit, plan->budget, &heap, &msg) != 0) {
			mf_err("invalid heap limit '%s' (%s): %s", l->heap_limit, names, msg);
			return -1;
		}
		if (heap == 0) {
			mf_err("invalid heap limit '%s' (%s): must be more than 0", l->heap_limit, names);
			return -1;
		}
		if (l->account == 0) {
			mf_err("--heap-limit needs accounting (drop --no-account)");
			return -1;
		}
	}

	if (plan->rlimit == MF_RLIMIT_AS) {
		mf_warn("--rlimit as limits address space, not memory: every glibc malloc arena "
			"reserves 64 MiB of it and thread stacks count in full, so threads fail to "
			"start long before memory runs out; prefer --rlimit data");
		/* Fewer arenas means less reserved address space per thread. */
		if (getenv("MALLOC_ARENA_MAX") == NULL)
			setenv("MALLOC_ARENA_MAX", "2", 1);
	}
	if (plan->rlimit == MF_RLIMIT_DATA && have_mem && mem.ignore_rlimit_data == 1)
		mf_warn("the kernel was booted with ignore_rlimit_data: RLIMIT_DATA only warns "
			"and will not stop allocations; use --rlimit as");
	if (plan->rlimit != MF_RLIMIT_NONE && plan->budget / plan->stack < 16)
		mf_warn("budget %s holds fewer than 16 threads of %s stack",
			mf_size_format(plan->budget, a, sizeof(a)), mf_size_format(plan->stack, b, sizeof(b)));

	*status = MF_EXIT_FAILURE;
	if (mf_plan_apply_rlimit(plan, err, sizeof(err)) != 0) {
		mf_err("%s", err);
		return -1;
	}

	lib = l->account == 1 ? "libmemfence.so" : "libmemfence-stack.so";
	path = mf_preload_path(lib);
	if (path == NULL) {
		if (l->account == 1) {
			mf_err("%s not found (looked in $MEMFENCE_LIBDIR, next to memfence, and %s)",
			       lib, MF_PRELOADDIR);
			return -1;
		}
		mf_warn("%s not found: the thread stack size is not applied", lib);
	} else if (mf_env_preload(path) != 0) {
		mf_err("cannot set LD_PRELOAD: %s", strerror(errno));
		return -1;
	}

	/* glibc keeps a freed large block in the arena of the thread that
	 * freed it, still counted by the rlimit and of no use to the other
	 * threads, until the headroom is gone although little is live: then
	 * ordinary requests fail beside an oversized one. Blocks of 1 MiB
	 * and more mapped on their own go back to the kernel when freed
	 * (docs/accounting.md, "Zero collateral"). A fixed threshold also
	 * stops glibc from raising its trim threshold, which then trims and
	 * regrows the heap all the time: 2 MiB is what glibc's own dynamic
	 * rule would pick (docs/performance.md). A threshold the user set
	 * wins. */
	if (plan->rlimit != MF_RLIMIT_NONE && getenv("MALLOC_MMAP_THRESHOLD_") == NULL &&
	    (getenv("GLIBC_TUNABLES") == NULL || strstr(getenv("GLIBC_TUNABLES"), "mmap_threshold") == NULL)) {
		setenv("MALLOC_MMAP_THRESHOLD_", "1048576", 1);
		if (getenv("MALLOC_TRIM_THRESHOLD_") == NULL)
			setenv("MALLOC_TRIM_THRESHOLD_", "2097152", 1);
	}
	setenv_u64("MEMFENCE_STACK", plan->stack);
	/* What the program's own memfence package can read back. */
	setenv_u64("MEMFENCE_LIMIT_BYTES", plan->limit);
	setenv_u64("MEMFENCE_BUDGET", plan->budget);
	if (l->account == 1) {
		setenv("MEMFENCE_ACCOUNT", "1", 1);
		if (heap != 0)
			setenv_u64("MEMFENCE_HEAP_LIMIT", heap);
		if (l->segment != NULL)
			setenv("MEMFENCE_SEGMENT", l->segment, 1);
	} else {
		/* A stale variable must not turn accounting on in the child. */
		unsetenv("MEMFENCE_HEAP_LIMIT");
	}
	*status = 0;
	return 0;
}

int mf_launch_exec(char **argv)
{
	int e;

	execvp(argv[0], argv);
	e = errno;
	mf_err("cannot run '%s': %s", argv[0], strerror(e));
	return e == ENOENT ? MF_EXIT_NOTFOUND : MF_EXIT_NOEXEC;
}
