/*
 * util.h - what every file of the shim uses: branch hints, visibility,
 * clocks, memory straight from the kernel, a one-line message.
 *
 * Everything in src/shim runs inside arbitrary programs, possibly inside
 * their malloc: libc calls that allocate or lock (stdio, getenv, snprintf)
 * are not used on any path a hook can reach. None of these do.
 *
 * Files and headers of the shim, each using only those above it
 * (docs/accounting.md tells the whole story):
 *   util.h     this file (util.c)
 *   config.h   MEMFENCE_* variables, the fault and pressure specs (config.c)
 *   scope.h    the figures of one scope, as a thread keeps them
 *   segw.h     the writer side of the shared stats segment (segw.c)
 *   thread.h   per-thread state, counters, scopes, the heap-limit ledger
 *              (account.c)
 *   policy.h   admission: faults, budgets, heap limit, pressure, container
 *              headroom (policy.c)
 *   gate.h     the admission gate of requests (gate.c)
 *   prof.h     the sampling profiler (prof.c; its other files in prof_int.h)
 *   maps.h     sizes of the program's anonymous mappings (mmaps.c)
 *   hooks_int.h  what hooks.c (the interposed libc functions), admit.c (the
 *              admission glue) and large_entry.c (big blocks) share; api.c,
 *              the public memfence_* functions; stack.c, thread stack size
 *              (also its own library)
 */
#ifndef MF_SHIM_UTIL_H
#define MF_SHIM_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define MF_LIKELY(x) __builtin_expect(!!(x), 1)
#define MF_UNLIKELY(x) __builtin_expect(!!(x), 0)
/* Internal to libmemfence.so; the static build for the unit tests
 * (built without MF_SHIM) leaves every symbol visible. */
#ifdef MF_SHIM
#define MF_HIDDEN __attribute__((visibility("hidden")))
#else
#define MF_HIDDEN
#endif

/* Raw write of a one-line message "memfence: a b c\n" to stderr (NULLs
 * skipped), or a JSON line (base/logline.h) as mf_say_init found in
 * MEMFENCE_LOG_FORMAT. */
void mf_say(const char *a, const char *b, const char *c) MF_HIDDEN;
/* Read the format of mf_say's lines from envp, once, first at init. */
void mf_say_init(char **envp) MF_HIDDEN;
/* Copy at most n-1 bytes and NUL-terminate. */
void mf_strlcpy(char *dst, const char *src, size_t n) MF_HIDDEN;

uint64_t mf_now_mono(void) MF_HIDDEN;
uint64_t mf_now_real(void) MF_HIDDEN;
/* Anonymous private memory for the shim itself, straight from the kernel
 * (never through the mmap hook, never counted). NULL on failure. */
void *mf_os_alloc(size_t len) MF_HIDDEN;

#endif
