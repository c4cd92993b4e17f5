/*
 * msg.c - one-line messages on stderr.
 */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "host/msg.h"

/* Format the whole line first and write it with one write(2): with many
 * processes of a pre-fork server warning at once, stdio's separate writes
 * would interleave ("memfence: memfence: ..."). */
static void say(const char *prefix, const char *fmt, va_list ap)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), "memfence: %s", prefix);

	if (n < 0)
		return;
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (m < 0)
		return;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	fflush(stderr);
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

void mf_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say("", fmt, ap);
	va_end(ap);
}

void mf_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say("warning: ", fmt, ap);
	va_end(ap);
}
