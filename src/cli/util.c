/*
 * util.c - where the preload libraries are, and the environment handed to programs.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static int readable(const char *dir, const char *lib, char *out, size_t len)
{
	int n = snprintf(out, len, "%s/%s", dir, lib);

	return n > 0 && (size_t)n < len && access(out, R_OK) == 0;
}

const char *mf_preload_path(const char *lib)
{
	static char path[PATH_MAX];
	char exe[PATH_MAX];
	const char *env = getenv("MEMFENCE_LIBDIR");
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
