/*
 * memory.c - the memory limit a process really has, and how it is doing:
 * the limit decision (which limit applies and from which file, the working
 * set, the headroom). The other files of the reader are listed in
 * memory_int.h.
 *
 * Everything comes from small text files the kernel writes under /proc and
 * /sys/fs/cgroup. Those are read whole with open/read, then handed to
 * parsers that take a buffer, so the unit tests can feed the parsers
 * directly and whole fixture trees can stand in for /proc and /sys through
 * the root prefix. A file that is missing, cut short or full of garbage
 * makes its figure MF_UNKNOWN and adds a warning naming the file: the
 * answer is always given, and always says what it could not see.
 */
#include "host/memory.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/envspec.h"
#include "base/size.h"
#include "host/memory_int.h"

const char *mf_root_default(void)
{
	const char *r = secure_getenv(MF_ENV(ROOT));

	return r != NULL ? r : "";
}

const char *mf_limit_source_name(enum mf_limit_source s)
{
	switch (s) {
	case MF_LIMIT_NONE: return "none";
	case MF_LIMIT_CGROUP_V2: return "cgroup v2";
	case MF_LIMIT_CGROUP_V1: return "cgroup v1";
	case MF_LIMIT_MEMTOTAL: return "MemTotal";
	case MF_LIMIT_USER: return "command line";
	}
	return "?";
}

void mf_memory_warn(struct mf_memory *m, const char *fmt, ...)
{
	va_list ap;

	if (m->nwarnings >= MF_MAX_WARNINGS)
		return;
	va_start(ap, fmt);
	vsnprintf(m->warnings[m->nwarnings++], MF_WARNING_MAX, fmt, ap);
	va_end(ap);
}

/* Keep the smaller limit, and the file it came from. */
void mf_mem_keep_min(uint64_t v, const char *file, uint64_t *best, char *best_file)
{
	if (v == MF_UNKNOWN)
		return;
	if (*best == MF_UNKNOWN || v < *best) {
		*best = v;
		if (best_file != NULL)
			snprintf(best_file, MF_PATH_MAX, "%s", file);
	}
}

static void read_meminfo(struct mf_memory *m, const char *root, char *path, size_t len)
{
	char *buf;

	if (mf_mem_join(path, len, root, "/proc/meminfo") != 0)
		return;
	buf = mf_mem_load(m, path, 0, NULL);
	m->memtotal = mf_mem_get_key(m, path, buf, "MemTotal:", 0);
	m->swap_total = buf != NULL && mf_mem_has_key(buf, "SwapTotal:")
		? mf_mem_get_key(m, path, buf, "SwapTotal:", 0) : MF_UNKNOWN;
	free(buf);
}

static void read_ignore_rlimit_data(struct mf_memory *m, const char *root)
{
	char path[MF_PATH_MAX];
	char *buf;

	m->ignore_rlimit_data = -1;
	if (mf_mem_join(path, sizeof(path), root, "/sys/module/kernel/parameters/ignore_rlimit_data") != 0)
		return;
	/* Absent before Linux 4.7, where RLIMIT_DATA did not count mmap at all. */
	buf = mf_mem_load(m, path, RD_OPTIONAL, NULL);
	if (buf == NULL)
		return;
	if (strcmp(buf, "Y\n") == 0)
		m->ignore_rlimit_data = 1;
	else if (strcmp(buf, "N\n") == 0)
		m->ignore_rlimit_data = 0;
	else
		mf_memory_warn(m, "%s: expected Y or N", path);
	free(buf);
}

static int memory_read(const char *root, pid_t pid, struct mf_memory *out, int usage,
		       char *errmsg, size_t errlen)
{
	char r[MF_PATH_MAX], path[MF_PATH_MAX], meminfo[MF_PATH_MAX] = "";
	struct mf_cg_find f = {0};
	size_t n;
	int leaf_ok = 1, err;

	memset(out, 0, sizeof(*out));
	out->limit = out->cgroup_limit = out->memtotal = out->swap_total = MF_UNKNOWN;
	out->high = out->swap_max = out->usage = out->inactive_file = MF_UNKNOWN;
	out->working_set = out->headroom = MF_UNKNOWN;
	out->oom_kill = out->oom = out->events_max = out->events_high = MF_UNKNOWN;
	out->failcnt = MF_UNKNOWN;
	out->limit_source = MF_LIMIT_NONE;

	/* "", "/" and "/x/" all become a prefix without a trailing slash. */
	snprintf(r, sizeof(r), "%s", root != NULL ? root : "");
	n = strlen(r);
	while (n > 0 && r[n - 1] == '/')
		r[--n] = '\0';
	f.root = r;
	if (pid == 0)
		snprintf(f.proc, sizeof(f.proc), "/proc/self");
	else
		snprintf(f.proc, sizeof(f.proc), "/proc/%ld", (long)pid);

	read_meminfo(out, r, meminfo, sizeof(meminfo));

	snprintf(path, sizeof(path), "%s%s/cgroup", r, f.proc);
	f.cgroup_file = mf_mem_load(out, path, 0, &err);
	/*
	 * The cgroup path of another process is shown relative to the
	 * reader's cgroup namespace, and the directories are opened in the
	 * reader's mount namespace: so the reader's mountinfo maps them, not
	 * the target's (which, for a process in a container, names mounts
	 * the reader does not have). The target's is the fallback.
	 */
	f.mountinfo = NULL;
	if (f.cgroup_file != NULL && pid != 0) {
		snprintf(path, sizeof(path), "%s/proc/self/mountinfo", r);
		f.mountinfo = mf_mem_load(out, path, RD_OPTIONAL, &err);
	}
	snprintf(path, sizeof(path), "%s%s/mountinfo", r, f.proc);
	if (f.cgroup_file != NULL && f.mountinfo == NULL)
		f.mountinfo = mf_mem_load(out, path, 0, &err);
	if (f.cgroup_file == NULL || f.mountinfo == NULL) {
		/* Whatever limit the cgroup has went unseen. */
		out->limit_unreadable = 1;
	} else if (mf_mem_find_cgroup(out, &f) == 0) {
		if (!mf_mem_is_dir(out->cgroup_dir)) {
			mf_memory_warn(out, "%s: missing (the cgroup directory)", out->cgroup_dir);
			leaf_ok = 0;
			out->limit_unreadable = 1;
		}
		if (out->cgroup_version == 2)
			mf_mem_read_v2(out, &f, leaf_ok, usage);
		else
			mf_mem_read_v1(out, leaf_ok, usage);
	}
	free(f.cgroup_file);
	free(f.mountinfo);

	if (out->cgroup_version != 0 && out->cgroup_limit == MF_UNKNOWN)
		out->limit_unreadable = 1;

	if (out->cgroup_limit != MF_UNKNOWN && out->cgroup_limit != MF_NOLIMIT) {
		if (out->memtotal != MF_UNKNOWN && out->cgroup_limit > out->memtotal) {
			char a[32], b[32];
			mf_memory_warn(out, "the cgroup limit %s (%s) is above physical memory; "
				       "the limit is MemTotal, %s",
				       mf_size_format(out->cgroup_limit, a, sizeof(a)),
				       out->cgroup_limit_file,
				       mf_size_format(out->memtotal, b, sizeof(b)));
		} else {
			out->limit = out->cgroup_limit;
			out->limit_source = out->cgroup_version == 2 ? MF_LIMIT_CGROUP_V2
								     : MF_LIMIT_CGROUP_V1;
			snprintf(out->limit_file, sizeof(out->limit_file), "%s", out->cgroup_limit_file);
			const char *base = strrchr(out->limit_file, '/');
			base = base != NULL ? base + 1 : out->limit_file;
			snprintf(out->limit_key, sizeof(out->limit_key), "%.31s",
				 strcmp(base, "memory.stat") == 0 ? "hierarchical_memory_limit" : base);
		}
	}
	if (out->limit == MF_UNKNOWN && out->memtotal != MF_UNKNOWN) {
		out->limit = out->memtotal;
		out->limit_source = MF_LIMIT_MEMTOTAL;
		snprintf(out->limit_file, sizeof(out->limit_file), "%s", meminfo);
		snprintf(out->limit_key, sizeof(out->limit_key), "MemTotal");
	}

	/* What the kubelet calls the working set: page cache that can be
	 * dropped is not pressure. Without inactive_file, usage itself (an
	 * overestimate, so the headroom errs low). */
	if (out->usage != MF_UNKNOWN) {
		uint64_t inactive = out->inactive_file == MF_UNKNOWN ? 0 : out->inactive_file;
		out->working_set = out->usage > inactive ? out->usage - inactive : 0;
	}
	if (out->limit != MF_UNKNOWN && out->working_set != MF_UNKNOWN)
		out->headroom = out->limit > out->working_set ? out->limit - out->working_set : 0;

	read_ignore_rlimit_data(out, r);

	if (out->limit == MF_UNKNOWN) {
		const char *why = "the root path is too long";
		/* Name the problem with MemTotal, the last resort. */
		for (int i = 0; meminfo[0] != '\0' && i < out->nwarnings; i++)
			if (strncmp(out->warnings[i], meminfo, strlen(meminfo)) == 0)
				why = out->warnings[i];
		snprintf(errmsg, errlen, "no memory limit could be read: no cgroup limit, and no "
			 "MemTotal (%s)", why);
		return -1;
	}
	return 0;
}

int mf_memory_read(const char *root, pid_t pid, struct mf_memory *out,
		   char *errmsg, size_t errlen)
{
	return memory_read(root, pid, out, 1, errmsg, errlen);
}

int mf_memory_read_limits(const char *root, struct mf_memory *out, char *errmsg, size_t errlen)
{
	return memory_read(root, 0, out, 0, errmsg, errlen);
}
