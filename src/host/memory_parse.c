/*
 * memory_parse.c - the parsers of the memory reader, on buffers (memory.h
 * shows each one's input), so the unit tests can feed them directly.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "host/memory_int.h"

/* v1 prints "unlimited" as LONG_MAX rounded down to a page,
 * 9223372036854771712, and never as -1; no machine has 2^62 bytes. */
#define MF_HUGE (1ull << 62)

static int is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* The decimal number in [s, e). By hand rather than strtoull, which would
 * accept leading blanks, a sign (and wrap "-1" around to 2^64-1) and
 * "0x..." with base 0. */
static int parse_number(const char *s, const char *e, unsigned flags, uint64_t *out,
			const char **why)
{
	uint64_t v = 0;

	if (s == e) {
		*why = "empty";
		return -1;
	}
	if ((flags & MF_PARSE_MAX) && e - s == 3 && memcmp(s, "max", 3) == 0) {
		*out = MF_NOLIMIT;
		return 0;
	}
	if (*s == '-') {
		*why = "negative number";
		return -1;
	}
	for (const char *p = s; p < e; p++) {
		if (*p < '0' || *p > '9') {
			*why = "not a number";
			return -1;
		}
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10) {
			*why = "number too large";
			return -1;
		}
		v = v * 10 + d;
	}
	*out = v >= MF_HUGE ? MF_NOLIMIT : v;
	return 0;
}

/*
 * memory.max, memory.limit_in_bytes, ...:
 *   268435456
 * The kernel always ends these files with a newline; without one the file
 * was cut short (a copy, a fixture, a full disk), and the digits that are
 * there may not be the whole number.
 */
int mf_parse_value(const char *buf, unsigned flags, uint64_t *out, const char **why)
{
	size_t n = strlen(buf);
	const char *e;

	*out = MF_UNKNOWN;
	if (n == 0) {
		*why = "empty";
		return -1;
	}
	if (buf[n - 1] != '\n') {
		*why = "truncated (no newline at the end)";
		return -1;
	}
	e = buf + n - 1;
	while (e > buf && (is_space(e[-1]) || e[-1] == '\n'))
		e--;
	if (memchr(buf, '\n', (size_t)(e - buf)) != NULL) {
		*why = "more than one line";
		return -1;
	}
	return parse_number(buf, e, flags, out, why);
}

/*
 * memory.stat (v1 and v2), memory.events, memory.oom_control:
 *   inactive_file 389120
 *   hierarchical_memory_limit 9223372036854771712
 * /proc/meminfo:
 *   MemTotal:       24683620 kB
 */
int mf_parse_keyed(const char *buf, const char *key, unsigned flags, uint64_t *out,
		   const char **why)
{
	size_t klen = strlen(key);
	const char *line = buf;
	int cut = 0;

	*out = MF_UNKNOWN;
	while (*line != '\0') {
		const char *eol = strchr(line, '\n');
		const char *end = eol != NULL ? eol : line + strlen(line);

		if (eol == NULL)
			cut = 1;
		if ((size_t)(end - line) > klen && memcmp(line, key, klen) == 0 &&
		    is_space(line[klen])) {
			const char *s = line + klen, *e;
			uint64_t v, mult = 1;

			if (eol == NULL) {
				*why = "truncated (the line has no end)";
				return -1;
			}
			while (s < end && is_space(*s))
				s++;
			for (e = s; e < end && !is_space(*e); e++)
				;
			const char *u = e;
			while (u < end && is_space(*u))
				u++;
			if (u < end) {
				if (end - u == 2 && memcmp(u, "kB", 2) == 0) {
					mult = 1024;
				} else {
					*why = "unexpected text after the number";
					return -1;
				}
			}
			if (parse_number(s, e, flags, &v, why) != 0)
				return -1;
			if (mult != 1 && v != MF_NOLIMIT) {
				if (v > UINT64_MAX / mult) {
					*why = "number too large";
					return -1;
				}
				v *= mult;
			}
			*out = v;
			return 0;
		}
		if (eol == NULL)
			break;
		line = eol + 1;
	}
	*why = cut ? "no such line (the file looks truncated)" : "no such line";
	return -1;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static int copy_field(const char *s, const char *e, char *out, size_t len)
{
	size_t n = 0;

	while (s < e) {
		char c = *s;
		if (c == '\\' && e - s >= 4 && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			c = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			s++;
		}
		if (n + 1 >= len)
			return -1;
		out[n++] = c;
	}
	out[n] = '\0';
	return 0;
}

/*
 * 34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
 * 40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
 * fields: id parent major:minor root mount-point options [optional...] -
 *         fstype source super-options
 */
int mf_parse_mountinfo_line(const char *line, struct mf_mount *m)
{
	const char *f[32][2];
	int nf = 0, dash = -1;
	const char *p = line;

	while (nf < 32) {
		while (is_space(*p))
			p++;
		if (*p == '\0' || *p == '\n')
			break;
		f[nf][0] = p;
		while (*p != '\0' && *p != '\n' && !is_space(*p))
			p++;
		f[nf][1] = p;
		if (dash < 0 && nf >= 6 && f[nf][1] - f[nf][0] == 1 && *f[nf][0] == '-')
			dash = nf;
		nf++;
	}
	if (dash < 0 || nf < dash + 4)
		return -1;
	if (copy_field(f[3][0], f[3][1], m->root, sizeof(m->root)) != 0 ||
	    copy_field(f[4][0], f[4][1], m->point, sizeof(m->point)) != 0 ||
	    copy_field(f[dash + 1][0], f[dash + 1][1], m->fstype, sizeof(m->fstype)) != 0 ||
	    copy_field(f[dash + 3][0], f[dash + 3][1], m->super, sizeof(m->super)) != 0)
		return -1;
	return 0;
}

/* Is word one of the comma-separated items of list? */
int mf_mem_has_item(const char *list, size_t len, const char *word)
{
	size_t wl = strlen(word);
	const char *p = list, *end = list + len;

	while (p < end) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		const char *e = c != NULL ? c : end;
		if ((size_t)(e - p) == wl && memcmp(p, word, wl) == 0)
			return 1;
		p = e + 1;
	}
	return 0;
}

/*
 * /proc/PID/cgroup on a hybrid host (cgroup(7)):
 *   4:memory:/process_api/d0ead9c8279a8ed4fb39e785348d64f0
 *   0::/
 */
int mf_parse_cgroup_file(const char *buf, const char *controller, char *path, size_t len)
{
	const char *line = buf;

	while (*line != '\0') {
		const char *eol = strchr(line, '\n');
		const char *end = eol != NULL ? eol : line + strlen(line);
		const char *c1 = memchr(line, ':', (size_t)(end - line));
		const char *c2 = c1 != NULL ? memchr(c1 + 1, ':', (size_t)(end - c1 - 1)) : NULL;

		if (c2 != NULL && c2 + 1 < end && c2[1] == '/') {
			int match = controller == NULL
				? (c1 - line == 1 && line[0] == '0' && c2 == c1 + 1)
				: mf_mem_has_item(c1 + 1, (size_t)(c2 - c1 - 1), controller);
			if (match) {
				size_t n = (size_t)(end - c2 - 1);
				/* A cgroup removed while the process sits in it. */
				static const char deleted[] = " (deleted)";
				if (n > sizeof(deleted) - 1 &&
				    memcmp(end - (sizeof(deleted) - 1), deleted, sizeof(deleted) - 1) == 0)
					n -= sizeof(deleted) - 1;
				if (n + 1 > len)
					return -1;
				memcpy(path, c2 + 1, n);
				path[n] = '\0';
				return 0;
			}
		}
		if (eol == NULL)
			break;
		line = eol + 1;
	}
	return -1;
}

