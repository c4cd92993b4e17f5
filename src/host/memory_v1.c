/*
 * memory_v1.c - reading a cgroup v1: its limit and the hierarchical one,
 * usage, failcnt, the OOM-kill counter and the memsw (swap) limits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/memory_int.h"

/* v1: total_ figures count the subtree, as the kubelet does; older kernels
 * have only the cgroup's own. */
const char *mf_mem_v1_inactive_key(const char *stat)
{
	return mf_mem_has_key(stat, "total_inactive_file") ? "total_inactive_file" : "inactive_file";
}

/*
 * cgroup v1 (Documentation/admin-guide/cgroup-v1/memory.rst): the cgroup's
 * own memory.limit_in_bytes, and hierarchical_memory_limit in memory.stat,
 * which is already the smallest limit of the cgroup and its ancestors when
 * use_hierarchy is on (the ancestors may not be visible in a container).
 */
void mf_mem_read_v1(struct mf_memory *m, int leaf_ok, int usage)
{
	char path[MF_PATH_MAX], stat_path[MF_PATH_MAX];
	unsigned fl = leaf_ok ? 0 : RD_OPTIONAL;
	uint64_t own, hier, memsw = MF_UNKNOWN, hier_memsw;
	char *buf;

	if (mf_mem_join(path, sizeof(path), m->cgroup_dir, "/memory.limit_in_bytes") == 0) {
		mf_mem_read_value(m, path, fl, &own);
		mf_mem_keep_min(own, path, &m->cgroup_limit, m->cgroup_limit_file);
	}
	if (mf_mem_join(stat_path, sizeof(stat_path), m->cgroup_dir, "/memory.stat") == 0) {
		buf = mf_mem_load(m, stat_path, fl, NULL);
		hier = mf_mem_get_key(m, stat_path, buf, "hierarchical_memory_limit", 0);
		if (hier != MF_UNKNOWN && (m->cgroup_limit == MF_UNKNOWN || hier < m->cgroup_limit)) {
			m->cgroup_limit = hier;
			snprintf(m->cgroup_limit_file, sizeof(m->cgroup_limit_file), "%s", stat_path);
		}
		/* Without hierarchical_memory_limit an ancestor's lower limit
		 * would go unseen. */
		if (hier == MF_UNKNOWN)
			m->limit_unreadable = 1;
		m->inactive_file = mf_mem_get_key(m, stat_path, buf, mf_mem_v1_inactive_key(buf), 0);
		hier_memsw = mf_mem_has_key(buf, "hierarchical_memsw_limit")
			? mf_mem_get_key(m, stat_path, buf, "hierarchical_memsw_limit", 0) : MF_UNKNOWN;
		mf_mem_keep_min(hier_memsw, stat_path, &memsw, NULL);
		free(buf);
	}
	/* memsw files exist only with swap accounting (swapaccount=1). */
	if (mf_mem_join(path, sizeof(path), m->cgroup_dir, "/memory.memsw.limit_in_bytes") == 0) {
		uint64_t v;
		if (mf_mem_read_value(m, path, RD_OPTIONAL, &v) == 0)
			mf_mem_keep_min(v, path, &memsw, NULL);
	}
	/* memsw limits memory plus swap: swap is what it leaves above the
	 * memory limit. */
	if (memsw == MF_UNKNOWN || memsw == MF_NOLIMIT)
		m->swap_max = memsw;
	else if (m->cgroup_limit != MF_UNKNOWN && m->cgroup_limit != MF_NOLIMIT)
		m->swap_max = memsw > m->cgroup_limit ? memsw - m->cgroup_limit : 0;
	else
		m->swap_max = memsw;
	if (!usage)
		return;
	mf_mem_read_in(m, "/memory.usage_in_bytes", fl, &m->usage);
	mf_mem_read_in(m, "/memory.failcnt", fl, &m->failcnt);
	buf = mf_mem_load_in(m, path, sizeof(path), "/memory.oom_control", fl);
	m->oom_kill = mf_mem_get_key(m, path, buf, "oom_kill", 0);
	free(buf);
}

