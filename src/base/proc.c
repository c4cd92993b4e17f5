/*
 * proc.c - small /proc files read without stdio (proc.h).
 */
#include "base/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int mf_read_file(const char *path, char *buf, size_t len, size_t *got)
{
	size_t n = 0;
	int fd, err = 0;

	*got = 0;
	if (len == 0)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (n + 1 < len) {
		ssize_t r = read(fd, buf + n, len - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			err = -errno;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	*got = n;
	return err;
}

/*
 * /proc/self/statm, one line of pages:
 *   size resident shared text lib data dt
 *   e.g. "6483 1379 1082 5 0 4404 0"
 */
int mf_statm_parse(const char *buf, size_t len, int field, uint64_t *pages)
{
	uint64_t v = 0;
	int f = 0, digits = 0;

	for (size_t i = 0; i < len; i++) {
		char c = buf[i];
		if (c >= '0' && c <= '9') {
			v = v * 10 + (uint64_t)(c - '0');
			digits++;
			continue;
		}
		if (digits != 0) {
			if (f == field) {
				*pages = v;
				return 0;
			}
			f++;
		}
		v = 0;
		digits = 0;
		if (c == '\n' || c == '\0')
			break;
	}
	if (digits != 0 && f == field) {
		*pages = v;
		return 0;
	}
	return -EINVAL;
}

int mf_statm_read(int field, uint64_t *bytes)
{
	char buf[128];
	uint64_t pages;
	size_t n;
	int r;

	r = mf_read_file("/proc/self/statm", buf, sizeof(buf), &n);
	if (r != 0)
		return r;
	r = mf_statm_parse(buf, n, field, &pages);
	if (r != 0)
		return r;
	*bytes = pages * (uint64_t)sysconf(_SC_PAGESIZE);
	return 0;
}
