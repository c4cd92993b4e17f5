/*
 * memory_sample.c - the supervisor's cheap sample of a cgroup, several
 * times a second: usage, inactive file pages and the OOM-kill counter,
 * from the files and with the parsers of the full read, into a stack
 * buffer (no stdio, no allocation). The supervisor and `inspect` count
 * the same OOM kills this way.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host/memory_int.h"

/* Read a small file whole into buf (NUL-terminated) with no allocation:
 * the supervisor samples several times a second. Bytes read, or -errno. */
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

void mf_cgroup_sampler_init(struct mf_cgroup_sampler *cg, const struct mf_memory *m,
			    const char *root)
{
	memset(cg, 0, sizeof(*cg));
	cg->version = m->cgroup_version;
	snprintf(cg->dir, sizeof(cg->dir), "%s", m->cgroup_dir);
	snprintf(cg->root, sizeof(cg->root), "%s", root ? root : "");
}

/* KEY's value in buf into *out, which a missing or bad line leaves alone. */
static int sample_key(const char *buf, const char *key, uint64_t *out)
{
	const char *why;
	uint64_t v;

	if (mf_parse_keyed(buf, key, 0, &v, &why) != 0)
		return -1;
	*out = v;
	return 0;
}

int mf_cgroup_sample(const struct mf_cgroup_sampler *cg, struct mf_cgroup_sample *s)
{
	char buf[8192];
	char vm[MF_PATH_MAX + 16];
	const char *why;
	uint64_t v;

	memset(s, 0, sizeof(*s));
	if (cg->version == 1 || cg->version == 2) {
		if (read_small(cg->dir, cg->version == 1 ? "memory.usage_in_bytes" : "memory.current",
			       buf, sizeof(buf)) > 0 &&
		    mf_parse_value(buf, 0, &v, &why) == 0)
			s->usage = v;
		if (read_small(cg->dir, "memory.stat", buf, sizeof(buf)) > 0)
			sample_key(buf, cg->version == 1 ? mf_mem_v1_inactive_key(buf) : "inactive_file",
				   &s->inactive_file);
		if (read_small(cg->dir, cg->version == 1 ? "memory.oom_control" : MF_V2_EVENTS, buf,
			       sizeof(buf)) > 0 &&
		    sample_key(buf, "oom_kill", &s->oom_kill) == 0)
			goto done;
	}
	/* No cgroup counter (old kernel, no cgroup): the system-wide one. */
	snprintf(vm, sizeof(vm), "%s/proc", cg->root);
	s->oom_from_vmstat = 1;
	if (read_small(vm, "vmstat", buf, sizeof(buf)) > 0)
		sample_key(buf, "oom_kill", &s->oom_kill);
done:
	s->working_set = s->usage > s->inactive_file ? s->usage - s->inactive_file : 0;
	return 0;
}

uint64_t mf_self_rss(void)
{
	char buf[4096];
	uint64_t rss = 0;

	if (read_small("/proc/self", "status", buf, sizeof(buf)) > 0)
		sample_key(buf, "VmRSS:", &rss);
	return rss;
}
