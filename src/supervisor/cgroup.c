/*
 * sup_cgroup.c - the cheap re-read of a cgroup that the supervisor does
 * several times a second: usage, inactive file pages and the OOM-kill
 * counter, with open/read into a stack buffer (no stdio, no allocation).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "supervisor/sup.h"

/* Read a small file whole into buf (NUL-terminated). Bytes read, or -errno. */
static ssize_t read_small(const char *dir, const char *name, char *buf, size_t len)
{
	char path[MF_PATH_MAX + 64];
	ssize_t n, got = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((size_t)got < len - 1) {
		n = read(fd, buf + got, len - 1 - (size_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	close(fd);
	buf[got] = '\0';
	return got;
}

/* The value of KEY in a flat keyed file (memory.stat, memory.events,
 * memory.oom_control, vmstat); garbage leaves *out alone. */
static int keyed_value(const char *buf, const char *key, uint64_t *out)
{
	const char *why;

	return mf_parse_keyed(buf, key, 0, out, &why);
}

void sup_cgroup_init(struct sup_cgroup *cg, const struct mf_memory *m, const char *root)
{
	memset(cg, 0, sizeof(*cg));
	cg->version = m->cgroup_version;
	snprintf(cg->dir, sizeof(cg->dir), "%s", m->cgroup_dir);
	snprintf(cg->root, sizeof(cg->root), "%s", root ? root : "");
}

int sup_cgroup_sample(const struct sup_cgroup *cg, struct sup_sample *s)
{
	char buf[8192];
	char vm[MF_PATH_MAX + 16];

	memset(s, 0, sizeof(*s));
	if (cg->version == 1 || cg->version == 2) {
		const char *why;

		if (read_small(cg->dir, cg->version == 1 ? "memory.usage_in_bytes" : "memory.current",
			       buf, sizeof(buf)) > 0 &&
		    mf_parse_value(buf, 0, &s->usage, &why) != 0)
			s->usage = 0;
		if (read_small(cg->dir, "memory.stat", buf, sizeof(buf)) > 0) {
			/* v1: the hierarchical figure, as the kubelet uses. */
			if (cg->version == 1 && keyed_value(buf, "total_inactive_file", &s->inactive_file) == 0)
				;
			else
				keyed_value(buf, "inactive_file", &s->inactive_file);
		}
		if (cg->version == 1) {
			if (read_small(cg->dir, "memory.oom_control", buf, sizeof(buf)) > 0 &&
			    keyed_value(buf, "oom_kill", &s->oom_kill) == 0)
				goto done;
		} else {
			if ((read_small(cg->dir, "memory.events.local", buf, sizeof(buf)) > 0 ||
			     read_small(cg->dir, "memory.events", buf, sizeof(buf)) > 0) &&
			    keyed_value(buf, "oom_kill", &s->oom_kill) == 0)
				goto done;
		}
	}
	/* No cgroup counter (old kernel, no cgroup): the system-wide one. */
	snprintf(vm, sizeof(vm), "%s/proc", cg->root);
	s->oom_from_vmstat = 1;
	if (read_small(vm, "vmstat", buf, sizeof(buf)) > 0)
		keyed_value(buf, "oom_kill", &s->oom_kill);
done:
	s->working_set = s->usage > s->inactive_file ? s->usage - s->inactive_file : 0;
	return 0;
}

uint64_t sup_self_rss(void)
{
	char buf[4096];
	uint64_t kb = 0;
	char *p;

	if (read_small("/proc/self", "status", buf, sizeof(buf)) <= 0)
		return 0;
	p = strstr(buf, "VmRSS:");
	if (p)
		kb = strtoull(p + 6, NULL, 10);
	return kb * 1024;
}
