/*
 * env.c - environment variables looked up by hand (env.h says why).
 */
#include "base/env.h"

#include <string.h>

const char *mf_env_get(char **envp, const char *name)
{
	size_t n = strlen(name);

	if (envp == NULL)
		return NULL;
	for (char **e = envp; *e != NULL; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}
