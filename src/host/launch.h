/*
 * launch.h - start a program under a plan: apply the rlimits and hand the
 * program its environment (the preload library, the figures its memfence
 * package reads back). `memfence exec` calls it in its own process before
 * it becomes the program; the supervisor builds the environment itself and
 * starts the program with mf_spawn().
 */
#ifndef MF_HOST_LAUNCH_H
#define MF_HOST_LAUNCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "base/envspec.h"

#include "host/plan.h"

/* What the command line and the environment asked for. */
struct mf_launch {
	struct mf_plan_opts plan_opts;
	const char *heap_limit; /* size or percent of the budget; NULL = none */
	int account;            /* -1 = command's default, 0 no, 1 yes */
	const char *segment;    /* segment file for the shim; NULL = shim decides */
	const char *root;       /* root prefix for /proc and /sys (tests) */
	const char *log_format; /* --log-format; NULL = its variable's */
};

/*
 * The environment a program is started with, built in the process that
 * starts it: a child that shares its parent's memory until exec (the
 * supervisor's, mf_spawn below) must not allocate, nor change the
 * parent's own environment. Entries are "NAME=value"; like setenv(),
 * a set replaces the first entry of the name, an unset removes every one.
 * A failed allocation is kept in err (-ENOMEM) for the caller to check
 * once, after the last change.
 */
struct mf_envp {
	char **v;            /* NULL-terminated, as execve(2) takes it */
	unsigned char *mine; /* v[i] was allocated here (else it is the source's) */
	size_t n, cap;
	int err;
};

/* A copy of from (environ): the strings are shared, not copied. */
int mf_envp_init(struct mf_envp *e, char **from);
const char *mf_envp_get(const struct mf_envp *e, const char *name);
int mf_envp_set(struct mf_envp *e, const char *name, const char *value);
int mf_envp_set_u64(struct mf_envp *e, const char *name, uint64_t value);
void mf_envp_unset(struct mf_envp *e, const char *name);
/* Prepend path to its LD_PRELOAD (no duplicate). */
int mf_envp_preload(struct mf_envp *e, const char *path);
void mf_envp_free(struct mf_envp *e);

/*
 * What the launch adds to a resolved plan, in the process that starts the
 * program: check the heap limit, warn about the plan (stderr), and write
 * the program's environment into env: LD_PRELOAD of the shim (account) or
 * of the stack library, MEMFENCE_STACK, MEMFENCE_SEGMENT,
 * MEMFENCE_HEAP_LIMIT, MALLOC_ARENA_MAX under --rlimit as. mem is the
 * memory the plan was resolved from (NULL: none). The rlimit is not
 * applied here. Returns 0, or -1 after printing a one-line error, with
 * the exit status in *status (2 for a bad value).
 */
int mf_launch_setup(const struct mf_launch *l, const struct mf_memory *mem,
		    const struct mf_plan *plan, struct mf_envp *env, int *status);

/*
 * For a process about to become the program (`memfence exec`): resolve
 * the plan (reads the memory of this process), mf_launch_setup() into this
 * process's environment, and apply the rlimit. Returns 0, or -1 after
 * printing a one-line error (exit status in *status).
 */
int mf_launch_prepare(struct mf_launch *l, struct mf_plan *plan, int *status);

/* execvp(argv[0]); only returns on failure, with 126 or 127 after an error. */
int mf_launch_exec(char **argv);

/* The exit status of a program that could not be run: 127 for a missing
 * file, as a shell says, else 126. */
int mf_launch_exec_status(int err);

/*
 * Start a program from a process whose memory must not be copied for it
 * (the supervisor: a fork copies its tables page by page as either side
 * writes them): clone(CLONE_VM | CLONE_VFORK), as posix_spawn(3) does, with
 * the steps posix_spawn cannot take. The child runs on a stack of its own
 * with every signal blocked, makes system calls only, and the parent waits
 * until it has called execve(2) or ended.
 */
struct mf_spawn {
	char **argv;             /* argv[0] looked up in PATH as execvp(3) does */
	char **envp;
	const int *sigdfl;       /* these signals back to SIG_DFL ... */
	size_t nsigdfl;
	int pdeathsig;           /* 0, or the signal the program gets when the
				  * parent ends; it does not start when the
				  * parent is already gone */
	pid_t parent;            /* the parent's pid, for that check */
	const char *oom_score_adj; /* NULL, or written to /proc/self/oom_score_adj */
	int rlimit;              /* -1, or a resource given rl as its limits */
	struct rlimit rl;
	int inherit_fd;          /* -1, or a descriptor left open across exec */
};

/* How the child ended when it did not become the program. */
enum mf_spawn_stage {
	MF_SPAWN_STARTED = 0,   /* it called execve(2) and it worked */
	MF_SPAWN_PARENT_GONE,   /* the parent had ended: exit status 1 */
	MF_SPAWN_RLIMIT,        /* setrlimit failed (err): exit status 1 */
	MF_SPAWN_EXEC,          /* execve failed (err): 127 or 126 */
};

struct mf_spawn_result {
	enum mf_spawn_stage stage;
	int err;                /* errno of that stage */
	int oom_adj_err;        /* errno of the oom_score_adj write, else 0 */
};

/* The child's pid (it may have ended already: see r), or -errno when no
 * process could be made. */
pid_t mf_spawn(const struct mf_spawn *sp, struct mf_spawn_result *r);

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
	"$" MF_ENV_LIT(LIBDIR) ", else next to memfence, in PREFIX/lib/memfence beside its " \
	"PREFIX/bin, and in " MF_PRELOADDIR

/* Prepend path to LD_PRELOAD in this process's environment (no duplicate). */
int mf_env_preload(const char *path);

#endif
