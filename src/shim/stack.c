/*
 * stack.c - default stack size of new threads.
 *
 * glibc gives every new thread a stack of RLIMIT_STACK (8 MiB on most
 * systems) unless the creator asks otherwise. Under RLIMIT_DATA each of those
 * stacks is charged in full, so a few dozen threads exhaust a container's
 * budget before any request runs. Lowering RLIMIT_STACK would also shrink the
 * main thread's stack; pthread_setattr_default_np() changes only threads
 * created from now on, including those that C libraries (gRPC core, OpenBLAS)
 * start, and leaves the main thread alone.
 *
 * MEMFENCE_STACK holds the size (`memfence exec` writes it in bytes; a person
 * may write 1M). This file is also built as libmemfence-stack.so, with the
 * size parser and the environment lookup alone, for `exec` without
 * accounting. The variable is read from the constructor's envp, not with
 * getenv(): libmemfence.so runs this constructor too, and nothing in the
 * shim goes through libc's environment functions.
 */
#include <pthread.h>
#include <unistd.h>

#include "base/env.h"
#include "base/envspec.h"
#include "base/logline.h"
#include "base/size.h"

#define MF_STACK_FLOOR (256u << 10) /* the command refuses less; so do we */

extern char **__environ;

__attribute__((constructor)) static void mf_stack_init(int argc, char **argv, char **envp)
{
	const char *s = mf_env_get(envp != NULL ? envp : __environ, MF_ENV(STACK));
	const char *err;
	uint64_t n;
	pthread_attr_t attr;

	(void)argc;
	(void)argv;
	if (s == NULL || *s == '\0')
		return;
	if (mf_size_parse(s, 0, &n, &err) != 0 || n < MF_STACK_FLOOR) {
		/* One write: this library has no message helper of its own. */
#define MF_STACK_BAD "invalid " MF_ENV_LIT(STACK) " (a size of at least 256K, such as 1M): " \
		     "thread stacks keep their default size"
		static const char text[] = "memfence: " MF_STACK_BAD "\n", msg[] = MF_STACK_BAD;
		const char *fmt = mf_env_get(envp != NULL ? envp : __environ, MF_ENV(LOG_FORMAT));
		char js[512];
		ssize_t w;

		if (mf_log_format_parse(fmt) == 1)
			w = write(2, js,
				  mf_logline_json(js, sizeof(js), MF_LOG_WARNING, "shim", NULL, NULL,
						  msg, sizeof(msg) - 1));
		else
			w = write(2, text, sizeof(text) - 1);
		(void)w;
		return;
	}
	if (pthread_getattr_default_np(&attr) != 0)
		return;
	if (pthread_attr_setstacksize(&attr, (size_t)n) == 0)
		pthread_setattr_default_np(&attr);
	pthread_attr_destroy(&attr);
}
