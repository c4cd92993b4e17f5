/*
 * launch.c - apply a plan and start a program: the part of `exec` and the
 * supervisor that runs in the process about to become the program.
 */
#include "host/launch.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/memory.h"
#include "base/envspec.h"
#include "host/msg.h"
#include "base/size.h"

static int readable(const char *dir, const char *lib, char *out, size_t len)
{
	int n = snprintf(out, len, "%s/%s", dir, lib);

	return n > 0 && (size_t)n < len && access(out, R_OK) == 0;
}

const char *mf_preload_path(const char *lib)
{
	static char path[PATH_MAX];
	char exe[PATH_MAX];
	const char *env = getenv(MF_ENV(LIBDIR));
	ssize_t n;

	if (env != NULL && *env != '\0')
		return readable(env, lib, path, sizeof(path)) ? path : NULL;

	/* Next to the binary: the build tree, where `make` puts both. */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash != NULL) {
			*slash = '\0';
			if (readable(exe, lib, path, sizeof(path)))
				return path;
			/* bin/../lib/memfence, for a relocated installation. */
			if (strlen(exe) + sizeof("/../lib/memfence") < sizeof(exe)) {
				strcat(exe, "/../lib/memfence");
				if (readable(exe, lib, path, sizeof(path)))
					return path;
			}
		}
	}
	return readable(MF_PRELOADDIR, lib, path, sizeof(path)) ? path : NULL;
}

int mf_env_preload(const char *path)
{
	const char *cur = getenv("LD_PRELOAD");
	char *buf;
	int rc;

	if (cur == NULL || *cur == '\0')
		return setenv("LD_PRELOAD", path, 1);

	/* Already there (e.g. memfence run inside memfence exec): keep the
	 * list as it is rather than load the library twice. */
	size_t plen = strlen(path);
	for (const char *p = cur; (p = strstr(p, path)) != NULL; p += plen) {
		int start = p == cur || p[-1] == ':' || p[-1] == ' ';
		int end = p[plen] == '\0' || p[plen] == ':' || p[plen] == ' ';
		if (start && end)
			return 0;
	}
	if (asprintf(&buf, "%s:%s", path, cur) < 0)
		return -1;
	rc = setenv("LD_PRELOAD", buf, 1);
	free(buf);
	return rc;
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
		if (mf_size_parse(l->heap_limit, plan->budget, &heap, &msg) != 0) {
			mf_err("invalid heap limit '%s' (--heap-limit, %s): %s", l->heap_limit,
			       MF_ENV(HEAP_LIMIT), msg);
			return -1;
		}
		if (heap == 0) {
			mf_err("invalid heap limit '%s' (--heap-limit, %s): must be more than 0",
			       l->heap_limit, MF_ENV(HEAP_LIMIT));
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
			mf_err("%s not found (looked in $%s, next to memfence, and %s)",
			       lib, MF_ENV(LIBDIR), MF_PRELOADDIR);
			return -1;
		}
		mf_warn("%s not found: the thread stack size is not applied", lib);
	} else if (mf_env_preload(path) != 0) {
		mf_err("cannot set LD_PRELOAD: %s", strerror(errno));
		return -1;
	}

	/* No MALLOC_MMAP_THRESHOLD_ here: fixed for the whole program, glibc's
	 * threshold makes every large array a fresh mapping (numpy code
	 * reusing arrays of 1 to 32 MiB: 1.26x). Without accounting nothing
	 * refuses the largest request, so nothing needs freed blocks
	 * returned; with it the shim fixes the threshold itself when the
	 * first scope opens (src/shim/policy.c, docs/accounting.md). */
	setenv_u64(MF_ENV(STACK), plan->stack);
	/* What the program's own memfence package can read back. */
	setenv_u64(MF_ENV(LIMIT_BYTES), plan->limit);
	setenv_u64(MF_ENV(BUDGET), plan->budget);
	if (l->account == 1) {
		setenv(MF_ENV(ACCOUNT), "1", 1);
		if (heap != 0)
			setenv_u64(MF_ENV(HEAP_LIMIT), heap);
		if (l->segment != NULL)
			setenv(MF_ENV(SEGMENT), l->segment, 1);
	} else {
		/* A stale variable must not turn accounting on in the child. */
		unsetenv(MF_ENV(HEAP_LIMIT));
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
