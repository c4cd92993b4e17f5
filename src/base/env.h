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

/*
 * The one reading of a boolean MEMFENCE_* value, for the shim and the
 * command alike: 1, true, yes, on and 0, false, no, off (any case).
 * 0 with the answer in *out, or -EINVAL for anything else (the empty
 * string included), which the caller reports naming the variable.
 */
int mf_env_bool(const char *v, int *out);
#define MF_ENV_BOOL_WORDS "1/0, true/false, yes/no or on/off"

#endif
