/*
 * env.c - environment variables looked up by hand (env.h says why).
 */
#include "base/env.h"

#include <errno.h>
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

/* ASCII only, no locale: strcasecmp may consult one. */
static int same_word(const char *v, const char *w)
{
	for (; *v != '\0' && *w != '\0'; v++, w++) {
		char c = *v >= 'A' && *v <= 'Z' ? (char)(*v - 'A' + 'a') : *v;

		if (c != *w)
			return 0;
	}
	return *v == '\0' && *w == '\0';
}

int mf_env_bool(const char *v, int *out)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};

	if (v == NULL)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (same_word(v, yes[i])) {
			*out = 1;
			return 0;
		}
		if (same_word(v, no[i])) {
			*out = 0;
			return 0;
		}
	}
	return -EINVAL;
}
