/*
 * logline.c - JSON log lines, formatted by hand (no stdio: see logline.h).
 */
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/logline.h"

int mf_log_format_parse(const char *v)
{
	if (v == NULL || *v == '\0' || strcmp(v, "text") == 0)
		return 0;
	return strcmp(v, "json") == 0 ? 1 : -1;
}

struct out {
	char *b;
	size_t n, cap; /* cap keeps room for the closing '}' and '\n' */
};

static void put(struct out *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n && o->n < o->cap; i++)
		o->b[o->n++] = s[i];
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void put_uint(struct out *o, uint64_t v, int width)
{
	char d[24];
	int k = 0;

	do {
		d[k++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0 || k < width);
	while (k > 0)
		put(o, &d[--k], 1);
}

/* A JSON string: '"' and '\\' escaped, control characters as \uXXXX (or
 * \n, \t); an escape that does not fit whole is left out, and the string
 * always closes. */
static void put_str(struct out *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t end = o->cap;

	o->cap = end - 1;
	put(o, "\"", 1);
	size_t start = o->n + 1;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char e[6];
		size_t k = 0;

		if (c == '"' || c == '\\') {
			e[k++] = '\\';
			e[k++] = (char)c;
		} else if (c == '\n') {
			e[k++] = '\\';
			e[k++] = 'n';
		} else if (c == '\t') {
			e[k++] = '\\';
			e[k++] = 't';
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(e, "\\u00", 4);
			k = 4;
			e[k++] = hex[c >> 4];
			e[k++] = hex[c & 15];
		} else {
			e[k++] = (char)c;
		}
		if (o->n + k > o->cap) {
			/* Cut at a character, not inside one: pipelines reject
			 * a line that is not UTF-8. */
			while (o->n > start && ((unsigned char)o->b[o->n - 1] & 0xc0) == 0x80)
				o->n--;
			if (o->n > start && (unsigned char)o->b[o->n - 1] >= 0xc0)
				o->n--;
			break;
		}
		put(o, e, k);
	}
	o->cap = end;
	put(o, "\"", 1);
}

/* RFC 3339, UTC, milliseconds. Days to a civil date: H. Hinnant's
 * days_from_civil inverse (public domain), because gmtime_r may take
 * glibc's lock on the time zone. */
static void put_time(struct out *o)
{
	struct timespec ts;
	int64_t z, era, doe, yoe, y, doy, mp, d, m, secs;

	clock_gettime(CLOCK_REALTIME, &ts);
	secs = ts.tv_sec;
	z = secs / 86400 + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	secs %= 86400;
	put(o, "\"", 1);
	put_uint(o, (uint64_t)y, 4);
	put(o, "-", 1);
	put_uint(o, (uint64_t)m, 2);
	put(o, "-", 1);
	put_uint(o, (uint64_t)d, 2);
	put(o, "T", 1);
	put_uint(o, (uint64_t)(secs / 3600), 2);
	put(o, ":", 1);
	put_uint(o, (uint64_t)(secs / 60 % 60), 2);
	put(o, ":", 1);
	put_uint(o, (uint64_t)(secs % 60), 2);
	put(o, ".", 1);
	put_uint(o, (uint64_t)(ts.tv_nsec / 1000000), 3);
	put(o, "Z\"", 2);
}

size_t mf_logline_json(char *buf, size_t cap, enum mf_log_level level, const char *source,
		       const char *key, const char *id, const char *msg, size_t mlen)
{
	static const char *const levels[] = {"error", "warning", "info"};
	/* The fixed fields first, the message with the rest of the room: a
	 * long message is cut, never the fields. */
	struct out o = {.b = buf, .cap = cap - 2};
	size_t idlen = id != NULL ? strnlen(id, 128) : 0;
	size_t tail = idlen * 6 + 96;

	puts_(&o, "{\"time\":");
	put_time(&o);
	puts_(&o, ",\"level\":\"");
	puts_(&o, levels[level]);
	puts_(&o, "\",\"msg\":");
	o.cap = cap - 2 > o.n + tail + 2 ? cap - 2 - tail : o.n + 2;
	put_str(&o, msg, mlen);
	o.cap = cap - 2;
	puts_(&o, ",\"pid\":");
	put_uint(&o, (uint64_t)getpid(), 1);
	puts_(&o, ",\"source\":\"");
	puts_(&o, source);
	put(&o, "\"", 1);
	if (key != NULL && id != NULL) {
		puts_(&o, ",\"");
		puts_(&o, key);
		puts_(&o, "\":");
		put_str(&o, id, idlen);
	}
	buf[o.n++] = '}';
	buf[o.n++] = '\n';
	return o.n;
}
