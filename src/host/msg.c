/*
 * msg.c - one-line messages on stderr.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host/msg.h"

size_t mf_text_clean(const char *in, size_t n, char *out, struct mf_text_cleaner *c)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char b = (unsigned char)in[i];

		if (c->held) {
			/* U+0080..U+009F, the C1 controls (0x9b is CSI): one '?'. */
			c->held = 0;
			if (b >= 0x80 && b <= 0x9f) {
				out[o++] = '?';
				continue;
			}
			out[o++] = (char)0xc2;
			c->need = 1;
		}
		if (c->need) {
			if ((b & 0xc0) == 0x80) {
				out[o++] = (char)b;
				c->need--;
				continue;
			}
			c->need = 0;
		}
		if (b == 0xc2) {
			c->held = 1;
			continue;
		}
		if (b >= 0xc3 && b <= 0xf4) {
			c->need = b >= 0xf0 ? 3 : b >= 0xe0 ? 2 : 1;
			out[o++] = (char)b;
			continue;
		}
		if (b >= 0x80 || (b < 0x20 && b != '\n' && b != '\t') || b == 0x7f)
			b = '?';
		out[o++] = (char)b;
	}
	return o;
}

struct clean_out {
	int fd;
	struct mf_text_cleaner c;
};

static ssize_t clean_write(void *cookie, const char *buf, size_t n)
{
	struct clean_out *co = cookie;
	char out[4096 + 1];
	size_t done = 0;

	while (done < n) {
		size_t chunk = n - done < 4096 ? n - done : 4096;
		size_t m = mf_text_clean(buf + done, chunk, out, &co->c), w = 0;

		while (w < m) {
			ssize_t r = write(co->fd, out + w, m - w);

			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return done ? (ssize_t)done : -1;
			w += (size_t)r;
		}
		done += chunk;
	}
	return (ssize_t)n;
}

static int clean_close(void *cookie)
{
	struct clean_out *co = cookie;
	ssize_t r;

	if (co->c.held)
		r = write(co->fd, "?", 1);
	(void)r;
	return 0;
}

int mf_stdout_clean(void)
{
	static struct clean_out co;
	cookie_io_functions_t io = {.write = clean_write, .close = clean_close};
	FILE *f;

	fflush(stdout);
	co.fd = fileno(stdout);
	f = fopencookie(&co, "w", io);
	if (f == NULL)
		return -errno;
	stdout = f;
	return 0;
}

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
	{
		/* Paths and names in messages may come from hostile files. */
		struct mf_text_cleaner c = {0};
		char clean[sizeof(line) + 1];

		len = mf_text_clean(line, len, clean, &c);
		memcpy(line, clean, len);
	}
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
