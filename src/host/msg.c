/*
 * msg.c - one-line messages on stderr.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/envspec.h"
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

static int log_json = -1; /* -1: not yet read from the environment */
static const char *log_source = "cli";

int mf_log_format_set(const char *given)
{
	const char *v = given != NULL ? given : getenv(MF_ENV(LOG_FORMAT));
	int json = mf_log_format_parse(v);

	if (json < 0) {
		log_json = 0;
		mf_err("invalid %s '%s' (" MF_LOG_FORMAT_WORDS ")",
		       given != NULL ? "--log-format" : MF_ENV(LOG_FORMAT), v);
		return -1;
	}
	log_json = json;
	/* The program's shim and Python package write in the same format. */
	if (given != NULL && setenv(MF_ENV(LOG_FORMAT), given, 1) != 0)
		return -1;
	return 0;
}

void mf_log_source(const char *source)
{
	log_source = source;
}

/* Format the whole line first and write it with one write(2): with many
 * processes of a pre-fork server warning at once, stdio's separate writes
 * would interleave ("memfence: memfence: ..."). */
static void say(enum mf_log_level level, const char *prefix, const char *key, const char *id,
		const char *fmt, va_list ap)
{
	char line[1024];
	size_t len;
	int n, m;

	if (log_json < 0 && mf_log_format_set(NULL) < 0)
		log_json = 0;
	n = log_json ? 0 : snprintf(line, sizeof(line), "memfence: %s", prefix);
	if (n < 0)
		return;
	m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (m < 0)
		return;
	len = (size_t)n + (size_t)m;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	{
		/* Paths and names in messages may come from hostile files. */
		struct mf_text_cleaner c = {0};
		char clean[sizeof(line) + 1];

		len = mf_text_clean(line, len, clean, &c);
		memcpy(line, clean, len);
	}
	if (log_json) {
		char js[4 * sizeof(line)];
		size_t sp = 0;

		/* Indented continuation lines of the text ("memfence:   report:
		 * ...") stand alone here. */
		while (sp < len && line[sp] == ' ')
			sp++;
		len = mf_logline_json(js, sizeof(js), level, log_source, key, id, line + sp,
				      len - sp);
		fflush(stderr);
		ssize_t w = write(STDERR_FILENO, js, len);
		(void)w;
		return;
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
	say(MF_LOG_ERROR, "", NULL, NULL, fmt, ap);
	va_end(ap);
}

void mf_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(MF_LOG_WARNING, "warning: ", NULL, NULL, fmt, ap);
	va_end(ap);
}

void mf_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(MF_LOG_INFO, "", NULL, NULL, fmt, ap);
	va_end(ap);
}

void mf_log(enum mf_log_level level, const char *key, const char *id, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(level, "", key, id, fmt, ap);
	va_end(ap);
}
