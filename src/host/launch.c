/*
 * launch.c - apply a plan and start a program: the environment the
 * program gets, the rlimit, and its start (in this process for `exec`, in
 * a child that shares the supervisor's memory for `run`).
 */
#include "host/launch.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "host/memory.h"
#include "base/envspec.h"
#include "host/msg.h"
#include "base/env.h"
#include "base/size.h"

static int readable(const char *dir, const char *lib, char *out, size_t len)
{
	int n = snprintf(out, len, "%s/%s", dir, lib);

	return n > 0 && (size_t)n < len && access(out, R_OK) == 0;
}

const char *mf_preload_path(const char *lib)
{
	static char path[PATH_MAX], self[PATH_MAX];
	static ssize_t self_len;    /* the binary does not move: read once */
	char exe[PATH_MAX];
	const char *env = getenv(MF_ENV(LIBDIR));
	ssize_t n;

	if (env != NULL && *env != '\0')
		return readable(env, lib, path, sizeof(path)) ? path : NULL;

	/* Next to the binary: the build tree, where `make` puts both. */
	if (self_len == 0)
		self_len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	n = self_len;
	if (n > 0) {
		memcpy(exe, self, (size_t)n);
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash != NULL) {
			*slash = '\0';
			if (readable(exe, lib, path, sizeof(path)))
				return path;
			/* PREFIX/lib/memfence beside PREFIX/bin: a relocated
			 * installation, a wheel in a virtual environment. The
			 * kernel resolved every link in exe, so cutting "bin"
			 * off is what ".." would do, and the path the program
			 * sees in LD_PRELOAD and PYTHONPATH stays plain. */
			slash = strrchr(exe, '/');
			if (slash != NULL && (size_t)(slash - exe) + sizeof("/lib/memfence") < sizeof(exe)) {
				strcpy(slash, "/lib/memfence");
				if (readable(exe, lib, path, sizeof(path)))
					return path;
			}
		}
	}
	return readable(MF_PRELOADDIR, lib, path, sizeof(path)) ? path : NULL;
}

/* path:cur, or NULL when path is in the list cur already (e.g. memfence
 * run inside memfence exec): keep the list as it is rather than load the
 * library twice. *out is allocated, or NULL with the list unchanged. */
static int preload_list(const char *cur, const char *path, char **out)
{
	size_t plen = strlen(path);

	*out = NULL;
	if (cur == NULL || *cur == '\0')
		return (*out = strdup(path)) ? 0 : -1;
	for (const char *p = cur; (p = strstr(p, path)) != NULL; p += plen) {
		int start = p == cur || p[-1] == ':' || p[-1] == ' ';
		int end = p[plen] == '\0' || p[plen] == ':' || p[plen] == ' ';
		if (start && end)
			return 0;
	}
	return asprintf(out, "%s:%s", path, cur) < 0 ? (*out = NULL, -1) : 0;
}

int mf_env_preload(const char *path)
{
	char *buf;
	int rc;

	if (preload_list(getenv("LD_PRELOAD"), path, &buf) != 0)
		return -1;
	if (buf == NULL)
		return 0;
	rc = setenv("LD_PRELOAD", buf, 1);
	free(buf);
	return rc;
}

int mf_envp_init(struct mf_envp *e, char **from)
{
	size_t n = 0;

	memset(e, 0, sizeof(*e));
	while (from != NULL && from[n] != NULL)
		n++;
	e->cap = n + 16;
	e->v = calloc(e->cap + 1, sizeof(*e->v));
	e->mine = calloc(e->cap, 1);
	if (e->v == NULL || e->mine == NULL) {
		mf_envp_free(e);
		return e->err = -ENOMEM;
	}
	memcpy(e->v, from, n * sizeof(*e->v));
	e->n = n;
	return 0;
}

static ssize_t envp_find(const struct mf_envp *e, const char *name, size_t from)
{
	size_t len = strlen(name);

	for (size_t i = from; i < e->n; i++)
		if (strncmp(e->v[i], name, len) == 0 && e->v[i][len] == '=')
			return (ssize_t)i;
	return -1;
}

const char *mf_envp_get(const struct mf_envp *e, const char *name)
{
	return mf_env_get(e->v, name);
}

int mf_envp_set(struct mf_envp *e, const char *name, const char *value)
{
	ssize_t i = envp_find(e, name, 0);
	char *kv;

	if (e->v == NULL)
		return e->err = -ENOMEM;
	if (asprintf(&kv, "%s=%s", name, value) < 0)
		return e->err = -ENOMEM;
	if (i < 0) {
		if (e->n == e->cap) {
			size_t cap = e->cap * 2;
			char **v = realloc(e->v, (cap + 1) * sizeof(*v));
			unsigned char *mine = v ? realloc(e->mine, cap) : NULL;

			if (v != NULL)
				e->v = v;
			if (mine == NULL) {
				free(kv);
				return e->err = -ENOMEM;
			}
			e->mine = mine;
			e->cap = cap;
		}
		i = (ssize_t)e->n++;
		e->v[e->n] = NULL;
	} else if (e->mine[i]) {
		free(e->v[i]);
	}
	e->v[i] = kv;
	e->mine[i] = 1;
	return 0;
}

int mf_envp_set_u64(struct mf_envp *e, const char *name, uint64_t value)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIu64, value);
	return mf_envp_set(e, name, buf);
}

void mf_envp_unset(struct mf_envp *e, const char *name)
{
	ssize_t i;

	while ((i = envp_find(e, name, 0)) >= 0) {
		if (e->mine[i])
			free(e->v[i]);
		memmove(e->v + i, e->v + i + 1, (e->n - (size_t)i) * sizeof(*e->v));
		memmove(e->mine + i, e->mine + i + 1, e->n - (size_t)i - 1);
		e->n--;
	}
}

int mf_envp_preload(struct mf_envp *e, const char *path)
{
	char *buf;
	int rc;

	if (preload_list(mf_envp_get(e, "LD_PRELOAD"), path, &buf) != 0)
		return e->err = -ENOMEM;
	if (buf == NULL)
		return 0;
	rc = mf_envp_set(e, "LD_PRELOAD", buf);
	free(buf);
	return rc;
}

void mf_envp_free(struct mf_envp *e)
{
	for (size_t i = 0; e->v != NULL && i < e->n; i++)
		if (e->mine[i])
			free(e->v[i]);
	free(e->v);
	free(e->mine);
	e->v = NULL;
	e->mine = NULL;
	e->n = e->cap = 0;
}

int mf_launch_setup(const struct mf_launch *l, const struct mf_memory *mem,
		    const struct mf_plan *plan, struct mf_envp *env, int *status)
{
	char a[32], b[32];
	const char *msg, *lib, *path;
	uint64_t heap = 0;

	*status = MF_EXIT_USAGE;
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
		if (mf_envp_get(env, "MALLOC_ARENA_MAX") == NULL)
			mf_envp_set(env, "MALLOC_ARENA_MAX", "2");
	}
	if (plan->rlimit == MF_RLIMIT_DATA && mem != NULL && mem->ignore_rlimit_data == 1)
		mf_warn("the kernel was booted with ignore_rlimit_data: RLIMIT_DATA only warns "
			"and will not stop allocations; use --rlimit as");
	if (plan->rlimit != MF_RLIMIT_NONE && plan->budget / plan->stack < 16)
		mf_warn("budget %s holds fewer than 16 threads of %s stack",
			mf_size_format(plan->budget, a, sizeof(a)), mf_size_format(plan->stack, b, sizeof(b)));

	*status = MF_EXIT_FAILURE;
	lib = l->account == 1 ? "libmemfence.so" : "libmemfence-stack.so";
	path = mf_preload_path(lib);
	if (path == NULL) {
		if (l->account == 1) {
			mf_err("%s not found (looked in " MF_PRELOAD_SEARCH ")", lib);
			return -1;
		}
		mf_warn("%s not found: the thread stack size is not applied", lib);
	} else {
		mf_envp_preload(env, path);
	}

	/* No MALLOC_MMAP_THRESHOLD_ here: fixed for the whole program, glibc's
	 * threshold makes every large array a fresh mapping (numpy code
	 * reusing arrays of 1 to 32 MiB: 1.26x). Without accounting nothing
	 * refuses the largest request, so nothing needs freed blocks
	 * returned; with it the shim fixes the threshold itself when the
	 * first scope opens (src/shim/policy.c, docs/accounting.md). */
	mf_envp_set_u64(env, MF_ENV(STACK), plan->stack);
	/* What the program's own memfence package can read back. */
	mf_envp_set_u64(env, MF_ENV(LIMIT_BYTES), plan->limit);
	mf_envp_set_u64(env, MF_ENV(BUDGET), plan->budget);
	if (l->account == 1) {
		mf_envp_set(env, MF_ENV(ACCOUNT), "1");
		if (heap != 0)
			mf_envp_set_u64(env, MF_ENV(HEAP_LIMIT), heap);
		if (l->segment != NULL)
			mf_envp_set(env, MF_ENV(SEGMENT), l->segment);
	} else {
		/* A stale variable must not turn accounting on in the child. */
		mf_envp_unset(env, MF_ENV(HEAP_LIMIT));
	}
	if (env->err) {
		mf_err("cannot set the program's environment: %s", strerror(-env->err));
		return -1;
	}
	*status = 0;
	return 0;
}

int mf_launch_prepare(struct mf_launch *l, struct mf_plan *plan, int *status)
{
	struct mf_memory mem;
	struct mf_envp env;
	char err[512];
	int have_mem;

	*status = MF_EXIT_USAGE;
	have_mem = mf_memory_read_limits(l->root, &mem, err, sizeof(err)) == 0;
	if (mf_plan_resolve(&l->plan_opts, have_mem ? &mem : NULL, plan, err, sizeof(err)) != 0) {
		mf_err("%s", err);
		return -1;
	}
	mf_envp_init(&env, environ);
	if (mf_launch_setup(l, have_mem ? &mem : NULL, plan, &env, status) != 0) {
		mf_envp_free(&env);
		return -1;
	}
	*status = MF_EXIT_FAILURE;
	if (mf_plan_apply_rlimit(plan, err, sizeof(err)) != 0) {
		mf_err("%s", err);
		mf_envp_free(&env);
		return -1;
	}
	/* This process becomes the program: the array is its environment
	 * from now on, and is never freed. */
	environ = env.v;
	*status = 0;
	return 0;
}

int mf_launch_exec_status(int err)
{
	return err == ENOENT ? MF_EXIT_NOTFOUND : MF_EXIT_NOEXEC;
}

int mf_launch_exec(char **argv)
{
	int e;

	execvp(argv[0], argv);
	e = errno;
	mf_err("cannot run '%s': %s", argv[0], strerror(e));
	return mf_launch_exec_status(e);
}

struct spawn_child {
	const struct mf_spawn *sp;
	struct mf_spawn_result *r;
};

/*
 * The child of mf_spawn(), on its own stack in the parent's memory, the
 * parent stopped until execve: system calls only (no allocation, no
 * stdio, no lock another thread of the parent may hold), and what it has
 * to tell written into the result. errno here is the parent thread's.
 */
static int spawn_child(void *arg)
{
	struct spawn_child *c = arg;
	const struct mf_spawn *sp = c->sp;
	struct sigaction dfl;
	sigset_t none;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (size_t i = 0; i < sp->nsigdfl; i++)
		sigaction(sp->sigdfl[i], &dfl, NULL);
	if (sp->pdeathsig) {
		prctl(PR_SET_PDEATHSIG, sp->pdeathsig);
		if (getppid() != sp->parent) {
			c->r->stage = MF_SPAWN_PARENT_GONE;
			_exit(MF_EXIT_FAILURE);
		}
	}
	if (sp->oom_score_adj != NULL) {
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		ssize_t len = (ssize_t)strlen(sp->oom_score_adj);

		if (fd >= 0) {
			if (write(fd, sp->oom_score_adj, (size_t)len) != len)
				c->r->oom_adj_err = errno;
			close(fd);
		}
	}
	if (sp->rlimit >= 0 && setrlimit(sp->rlimit, &sp->rl) != 0) {
		c->r->err = errno;
		c->r->stage = MF_SPAWN_RLIMIT;
		_exit(MF_EXIT_FAILURE);
	}
	if (sp->inherit_fd >= 0)
		fcntl(sp->inherit_fd, F_SETFD, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execvpe(sp->argv[0], sp->argv, sp->envp);
	c->r->err = errno;
	c->r->stage = MF_SPAWN_EXEC;
	_exit(mf_launch_exec_status(c->r->err));
}

pid_t mf_spawn(const struct mf_spawn *sp, struct mf_spawn_result *r)
{
	struct spawn_child c = {.sp = sp, .r = r};
	sigset_t all, old;
	size_t argc = 0, size;
	void *stack;
	pid_t pid;
	int e;

	memset(r, 0, sizeof(*r));
	while (sp->argv[argc] != NULL)
		argc++;
	/* execvp(3) puts a path of up to PATH_MAX on the stack, and the
	 * argument list again when it runs a script through /bin/sh. */
	size = 64 * 1024 + 2 * PATH_MAX + (argc + 2) * sizeof(char *);
	size = (size + 4095) & ~(size_t)4095;
	stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
		     -1, 0);
	if (stack == MAP_FAILED)
		return -errno;
	/* No handler of the parent may run in the child, on memory they
	 * share: it starts with every signal blocked, and sets its mask for
	 * the program just before execve. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = clone(spawn_child, (char *)stack + size, CLONE_VM | CLONE_VFORK | SIGCHLD, &c);
	e = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	munmap(stack, size);
	return pid < 0 ? -e : pid;
}
