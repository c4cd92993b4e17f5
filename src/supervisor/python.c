/*
 * python.c - the Python bootstrap: a Python program started by the
 * supervisor gets memfence's sitecustomize.py first on PYTHONPATH, which
 * adds the gRPC interceptor with no change to the program (docs/python.md).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/launch.h"
#include "host/msg.h"
#include "supervisor/supervisor.h"

/* Is the program a Python interpreter, or a script run by one (gunicorn,
 * celery and the like start with "#!/usr/bin/python3")? */
static int is_python(const char *prog)
{
	char path[MF_PATH_MAX], head[256];
	const char *base = strrchr(prog, '/');
	int fd = -1;
	ssize_t n;

	base = base ? base + 1 : prog;
	if (strncmp(base, "python", 6) == 0)
		return 1;
	if (strchr(prog, '/')) {
		fd = open(prog, O_RDONLY | O_CLOEXEC);
	} else {
		const char *p = getenv("PATH");

		for (p = p ? p : "/usr/bin:/bin"; fd < 0 && *p; p += *p == ':') {
			size_t len = strcspn(p, ":");

			snprintf(path, sizeof(path), "%.*s/%s", (int)len, len ? p : ".", prog);
			fd = open(path, O_RDONLY | O_CLOEXEC);
			p += len;
		}
	}
	if (fd < 0)
		return 0;
	n = read(fd, head, sizeof(head) - 1);
	close(fd);
	if (n < 2 || head[0] != '#' || head[1] != '!')
		return 0;
	head[n] = '\0';
	head[strcspn(head, "\n")] = '\0';
	return strstr(head, "python") != NULL;
}

/*
 * Does the program start a server whose integration says when it serves
 * (memfence/auto.py)? "gunicorn ...", "uvicorn ...", "celery ... worker ...",
 * as a script or as "python [OPTIONS] -m NAME". Known before the program
 * runs, so that readiness waits for it from its first instant, not from
 * when its interpreter has got far enough to say so.
 */
int sup_python_server(const struct sup *s)
{
	static const char *const servers[] = {"gunicorn", "uvicorn", "celery"};
	char *const *argv = s->cfg.argv;
	const char *name, *base = strrchr(argv[0], '/');
	int i = 1;

	if (!s->cfg.auto_python || !is_python(argv[0]))
		return 0;
	base = base ? base + 1 : argv[0];
	if (strncmp(base, "python", 6) != 0) {
		name = base;
	} else {
		for (; argv[i] && argv[i][0] == '-' && strcmp(argv[i], "-m") != 0; i++) {
			if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "-") == 0)
				return 0;
			if ((strcmp(argv[i], "-X") == 0 || strcmp(argv[i], "-W") == 0) && argv[i + 1])
				i++;
		}
		if (!argv[i] || strcmp(argv[i], "-m") != 0 || !argv[i + 1])
			return 0;
		i++;
		name = argv[i];
	}
	for (size_t k = 0; k < sizeof(servers) / sizeof(servers[0]); k++) {
		if (strcmp(name, servers[k]) != 0)
			continue;
		if (strcmp(name, "celery") != 0)
			return 1;
		for (int j = i + 1; argv[j]; j++)
			if (strcmp(argv[j], "worker") == 0)
				return 1;
	}
	return 0;
}

/*
 * The bootstrap is looked for where the preload libraries are: next to the
 * binary in the build tree, else under the install directory.
 */
void sup_python_env(const struct sup *s, struct mf_envp *env)
{
	const char *cur, *file;
	char dir[MF_PATH_MAX], buf[2 * MF_PATH_MAX + 2];
	char *slash;
	size_t len;

	/* MEMFENCE_AUTO_PYTHON was read with the options (config.c). */
	if (!s->cfg.auto_python)
		return;
	if (!is_python(s->cfg.argv[0]))
		return;
	file = mf_preload_path("python/memfence/_bootstrap/sitecustomize.py");
	if (!file) {
		mf_warn("the memfence Python package is not installed: a gRPC server gets no "
			"interceptor automatically (see docs/python.md)");
		return;
	}
	snprintf(dir, sizeof(dir), "%s", file);
	slash = strrchr(dir, '/');
	*slash = '\0';
	cur = mf_envp_get(env, "PYTHONPATH");
	if (cur && *cur) {
		/* Already first (or anywhere): leave the user's order alone. */
		len = strlen(dir);
		for (const char *p = cur; p; p = strchr(p, ':') ? strchr(p, ':') + 1 : NULL)
			if (strncmp(p, dir, len) == 0 && (p[len] == ':' || p[len] == '\0'))
				return;
		snprintf(buf, sizeof(buf), "%s:%s", dir, cur);
		mf_envp_set(env, "PYTHONPATH", buf);
	} else {
		mf_envp_set(env, "PYTHONPATH", dir);
	}
}
