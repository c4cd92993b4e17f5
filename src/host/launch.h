/*
 * launch.h - start a program under a plan: apply the rlimits and hand the
 * program its environment (the preload library, the figures its memfence
 * package reads back). `memfence exec` calls it in its own process before
 * it becomes the program; the supervisor calls it in the child it forks.
 */
#ifndef MF_HOST_LAUNCH_H
#define MF_HOST_LAUNCH_H

#include <stddef.h>

#include "host/plan.h"

/* What the command line and the environment asked for. */
struct mf_launch {
	struct mf_plan_opts plan_opts;
	const char *heap_limit; /* size or percent of the budget; NULL = none */
	int account;            /* -1 = command's default, 0 no, 1 yes */
	const char *segment;    /* segment file for the shim; NULL = shim decides */
	const char *root;       /* root prefix for /proc and /sys (tests) */
};

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

/* Where a preload library (or another installed file, by its relative
 * path, such as the Python bootstrap) is: $MEMFENCE_LIBDIR alone when set;
 * else next to the memfence binary (the build tree); else PREFIX/lib/memfence
 * for a binary in PREFIX/bin (make install, the wheel in a virtual
 * environment, the Debian package), found from /proc/self/exe so that an
 * installation works wherever it is put; else the directory compiled in.
 * Returns a static string, or NULL when lib (e.g. "libmemfence.so") is
 * nowhere. */
const char *mf_preload_path(const char *lib);

/* That order, for messages saying where a file was looked for. */
#define MF_PRELOAD_SEARCH \
	"$MEMFENCE_LIBDIR, else next to memfence, in PREFIX/lib/memfence beside its " \
	"PREFIX/bin, and in " MF_PRELOADDIR

/* Prepend path to LD_PRELOAD in the environment (no duplicate). */
int mf_env_preload(const char *path);

#endif
