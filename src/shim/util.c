/*
 * util.c - clocks, raw memory and messages for the rest of the shim.
 */
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/env.h"
#include "base/envspec.h"
#include "base/logline.h"
#include "shim/util.h"

static int say_json;

void mf_strlcpy(char *dst, const char *src, size_t n)
{
	size_t i = 0;

	if (n == 0)
		return;
	if (src != NULL)
		for (; i + 1 < n && src[i] != '\0'; i++)
			dst[i] = src[i];
	dst[i] = '\0';
}

void mf_say_init(char **envp)
{
	say_json = mf_log_format_parse(mf_env_get(envp, MF_ENV(LOG_FORMAT))) == 1;
}

void mf_say(const char *a, const char *b, const char *c)
{
	const char *parts[] = {say_json ? "" : "memfence: ", a, b, c};
	char line[512], js[1024];
	size_t n = 0;

	/* One write() per line: processes of a program share stderr, and a
	 * line written in pieces interleaves with theirs. Cut to fit, the
	 * newline kept. */
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		for (const char *p = parts[i]; p != NULL && *p != '\0' && n < sizeof(line) - 1; p++)
			line[n++] = *p;
	if (say_json) {
		n = mf_logline_json(js, sizeof(js), MF_LOG_WARNING, "shim", NULL, NULL, line, n);
	} else {
		line[n++] = '\n';
	}
	/* Best effort: nothing to do if stderr is closed. */
	ssize_t r = write(2, say_json ? js : line, n);
	(void)r;
}

uint64_t mf_now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t mf_now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void *mf_os_alloc(size_t len)
{
	long r = syscall(SYS_mmap, NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	/* The raw syscall returns -errno in the top page on failure. */
	if (r < 0 && r > -4096)
		return NULL;
	return (void *)r;
}
