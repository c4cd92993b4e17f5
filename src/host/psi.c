/*
 * psi.c - memory.pressure of a cgroup v2: a parser on a buffer, and a
 * reader with open/read into a stack buffer (the supervisor calls it at
 * every sample).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host/psi.h"
#include "host/memory.h"

/* "12.34": the kernel prints LOAD_INT.LOAD_FRAC with two decimals; parsed
 * by hand so that the locale cannot change the decimal point. */
static const char *parse_avg(const char *s, double *out)
{
	double v = 0, scale = 0.1;

	if (*s < '0' || *s > '9')
		return NULL;
	for (; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (*s - '0');
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++, scale /= 10)
			v += (*s - '0') * scale;
	}
	*out = v;
	return s;
}

/* One line after its "some " or "full ". */
static int parse_line(const char *s, struct mf_psi_line *l)
{
	static const char *const keys[] = {"avg10=", "avg60=", "avg300=", "total="};
	double *avgs[] = {&l->avg10, &l->avg60, &l->avg300};

	for (int k = 0; k < 4; k++) {
		size_t n = strlen(keys[k]);

		while (*s == ' ')
			s++;
		if (strncmp(s, keys[k], n) != 0)
			return -1;
		s += n;
		if (k < 3) {
			s = parse_avg(s, avgs[k]);
			if (!s)
				return -1;
		} else {
			uint64_t v = 0;

			if (*s < '0' || *s > '9')
				return -1;
			for (; *s >= '0' && *s <= '9'; s++)
				v = v * 10 + (uint64_t)(*s - '0');
			l->total_us = v;
		}
	}
	return *s == '\n' || *s == '\0' || *s == ' ' ? 0 : -1;
}

/*
 * memory.pressure has the format of /proc/pressure/memory; this one was
 * read on a Linux 6.18 machine under a light load:
 *
 *   some avg10=0.00 avg60=1.02 avg300=0.94 total=4333005
 *   full avg10=0.00 avg60=0.83 avg300=0.77 total=3518193
 */
int mf_psi_parse(const char *buf, struct mf_psi *out, const char **why)
{
	int have_some = 0;

	memset(out, 0, sizeof(*out));
	for (const char *p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, "some ", 5) == 0) {
			if (parse_line(p + 5, &out->some) != 0)
				goto bad;
			have_some = 1;
		} else if (strncmp(p, "full ", 5) == 0) {
			if (parse_line(p + 5, &out->full) != 0)
				goto bad;
			out->has_full = 1;
		}
	}
	if (have_some)
		return 0;
	*why = buf[0] ? "no \"some\" line" : "empty";
	return -1;
bad:
	*why = "a line of the wrong shape";
	return -1;
}

int mf_psi_read(const char *cgroup_dir, struct mf_psi *out)
{
	char path[MF_PATH_MAX + 32], buf[512];
	const char *why;
	ssize_t n, got = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/memory.pressure", cgroup_dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((size_t)got < sizeof(buf) - 1) {
		n = read(fd, buf + got, sizeof(buf) - 1 - (size_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			close(fd);
			/* psi=0 on the command line: the file is there, reads fail. */
			return e == EOPNOTSUPP ? -ENOENT : -e;
		}
		if (n == 0)
			break;
		got += n;
	}
	close(fd);
	buf[got] = '\0';
	return mf_psi_parse(buf, out, &why) == 0 ? 0 : -EINVAL;
}
