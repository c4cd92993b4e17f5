/*
 * env.h - environment variables looked up without getenv().
 *
 * The shim configures itself from its constructor's envp, possibly before
 * libc has set up `environ`, and getenv() is not a function to call inside
 * someone's malloc anyway. Shim-safe: libc only, no allocation.
 */
#ifndef MF_ENV_H
#define MF_ENV_H

/* The value of NAME in envp (a NULL-terminated "NAME=value" array, NULL
 * for none), or NULL when it is not set. */
const char *mf_env_get(char **envp, const char *name);

#endif
