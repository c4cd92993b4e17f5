/*
 * memory_v2.c - reading a cgroup v2: the smallest memory.max and
 * memory.high up to the mount, usage, memory.stat and memory.events.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/memory_int.h"

/*
 * cgroup v2 (Documentation/admin-guide/cgroup-v2.rst): a limit anywhere
 * above the process's cgroup applies to it too, so memory.max and
 * memory.high are read at every level up to the mount and the smallest
 * wins. A non-root cgroup whose parent did not delegate the memory
 * controller has no memory.* files: only ancestors count then.
 */
void mf_mem_read_v2(struct mf_memory *m, const struct mf_cg_find *f, int leaf_ok, int usage)
{
	char level[MF_PATH_MAX], path[MF_PATH_MAX];
	size_t mount_len = strlen(f->mount_dir);
	uint64_t lim = MF_UNKNOWN, high = MF_UNKNOWN, v;
	/* The real root cgroup has none of the memory.* control files. */
	unsigned leaf_fl = (f->true_root && strcmp(m->cgroup_dir, f->mount_dir) == 0) || !leaf_ok
		? RD_OPTIONAL : 0;
	int depth, rc;
	char *buf;

	snprintf(level, sizeof(level), "%s", m->cgroup_dir);
	for (depth = 0;; depth++) {
		int at_mount = strlen(level) <= mount_len;
		unsigned fl = MF_PARSE_MAX |
			((depth > 0 || (at_mount && f->true_root) || !leaf_ok) ? RD_OPTIONAL : 0);

		if (mf_mem_is_dir(level)) {
			if (mf_mem_join(path, sizeof(path), level, "/memory.max") == 0) {
				rc = mf_mem_read_value(m, path, fl, &v);
				if (rc == 0)
					mf_mem_keep_min(v, path, &lim, m->cgroup_limit_file);
				else if (rc != -ENOENT || !(fl & RD_OPTIONAL))
					m->limit_unreadable = 1;
			}
			if (mf_mem_join(path, sizeof(path), level, "/memory.high") == 0 &&
			    mf_mem_read_value(m, path, fl, &v) == 0)
				mf_mem_keep_min(v, path, &high, NULL);
		}
		if (at_mount)
			break;
		char *slash = strrchr(level, '/');
		if (slash == NULL || (size_t)(slash - level) < mount_len)
			break;
		*slash = '\0';
	}
	m->cgroup_limit = lim == MF_UNKNOWN && !m->limit_unreadable ? MF_NOLIMIT : lim;
	m->high = high == MF_UNKNOWN ? MF_NOLIMIT : high;

	mf_mem_read_in(m, "/memory.swap.max", MF_PARSE_MAX | RD_OPTIONAL, &m->swap_max);
	if (!usage)
		return;
	mf_mem_read_in(m, "/memory.current", leaf_fl, &m->usage);
	buf = mf_mem_load_in(m, path, sizeof(path), "/memory.stat", leaf_fl);
	m->inactive_file = mf_mem_get_key(m, path, buf, "inactive_file", 0);
	free(buf);
	buf = mf_mem_load_in(m, path, sizeof(path), "/" MF_V2_EVENTS, leaf_fl);
	m->oom = mf_mem_get_key(m, path, buf, "oom", 0);
	m->oom_kill = mf_mem_get_key(m, path, buf, "oom_kill", 0);
	m->events_max = mf_mem_get_key(m, path, buf, "max", 0);
	m->events_high = mf_mem_get_key(m, path, buf, "high", 0);
	free(buf);
}

