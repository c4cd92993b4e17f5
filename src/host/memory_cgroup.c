/*
 * memory_cgroup.c - which memory cgroup a process is in, and where its
 * directory is: from /proc/PID/cgroup and mountinfo, v2 first when the
 * cgroup2 tree really runs the memory controller (not on hybrid hosts,
 * where systemd mounts one while memory stays on v1), else v1; the
 * container's own mount when the path is not below the mount's root.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/memory_int.h"

/* Path of the cgroup relative to a mount whose root is mroot, or NULL when
 * the cgroup is not below that root. Inside a container that was given its
 * own cgroup directory as the mount (no cgroup namespace), mountinfo's root
 * field is the cgroup path itself, e.g. /kubepods/pod1/c1, and the
 * container's cgroup is the mount point. */
static const char *relative_to(const char *cgpath, const char *mroot)
{
	size_t n = strlen(mroot);

	if (strcmp(mroot, "/") == 0)
		return cgpath;
	while (n > 1 && mroot[n - 1] == '/')
		n--;
	if (strncmp(cgpath, mroot, n) == 0 && (cgpath[n] == '/' || cgpath[n] == '\0'))
		return cgpath + n;
	return NULL;
}

static int has_dotdot(const char *path)
{
	const char *p = path;

	while ((p = strstr(p, "..")) != NULL) {
		if ((p == path || p[-1] == '/') && (p[2] == '/' || p[2] == '\0'))
			return 1;
		p += 2;
	}
	return 0;
}

/* Does the cgroup2 mount at dir really run the memory controller? On
 * hybrid hosts a cgroup2 tree is mounted (systemd wants one) while memory
 * stays on v1: there cgroup.controllers lists only e.g. "hugetlb". */
static int v2_has_memory(struct mf_memory *m, const char *dir)
{
	char path[MF_PATH_MAX];
	char *buf;
	int found = 0;

	if (mf_mem_join(path, sizeof(path), dir, "/cgroup.controllers") != 0)
		return 0;
	buf = mf_mem_load(m, path, RD_OPTIONAL, NULL);
	if (buf == NULL)
		return 0;
	char *save = NULL;
	for (char *tok = strtok_r(buf, " \t\n", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t\n", &save))
		if (strcmp(tok, "memory") == 0)
			found = 1;
	free(buf);
	return found;
}

/*
 * Choose the hierarchy and the directory: sets cgroup_version, cgroup_path,
 * cgroup_dir and f->mount_dir. Returns 0 when a memory cgroup was found.
 */
int mf_mem_find_cgroup(struct mf_memory *m, struct mf_cg_find *f)
{
	char path[MF_PATH_MAX], cgpath[MF_PATH_MAX];
	struct mf_mount mnt;
	int version;

	for (version = 2; version >= 1; version--) {
		const char *want = version == 2 ? "cgroup2" : "cgroup";
		char *line;
		int fallback = 0;

		if (mf_parse_cgroup_file(f->cgroup_file, version == 2 ? NULL : "memory",
					 cgpath, sizeof(cgpath)) != 0)
			continue;
		for (line = f->mountinfo; line != NULL && *line != '\0';) {
			char *eol = strchr(line, '\n');
			const char *rel;
			char dir[MF_PATH_MAX];

			if (eol != NULL)
				*eol = '\0';
			int ok = mf_parse_mountinfo_line(line, &mnt) == 0 &&
				 strcmp(mnt.fstype, want) == 0 &&
				 (version == 2 || mf_mem_has_item(mnt.super, strlen(mnt.super), "memory"));
			if (eol != NULL)
				*eol = '\n';
			line = eol != NULL ? eol + 1 : NULL;
			if (!ok || mf_mem_join(dir, sizeof(dir), f->root, mnt.point) != 0)
				continue;
			if (version == 2 && !v2_has_memory(m, dir))
				continue;

			rel = relative_to(cgpath, mnt.root);
			if (rel == NULL || has_dotdot(rel)) {
				/* The mount shows another part of the tree (or
				 * the path leads outside the cgroup namespace):
				 * keep it only if nothing better comes. */
				if (!fallback) {
					fallback = 1;
					snprintf(f->mount_dir, sizeof(f->mount_dir), "%s", dir);
					snprintf(path, sizeof(path), "%s", mnt.root);
				}
				continue;
			}
			snprintf(f->mount_dir, sizeof(f->mount_dir), "%s", dir);
			f->true_root = strcmp(mnt.root, "/") == 0;
			snprintf(m->cgroup_path, sizeof(m->cgroup_path), "%s", cgpath);
			if (strcmp(rel, "/") == 0 || *rel == '\0')
				snprintf(m->cgroup_dir, sizeof(m->cgroup_dir), "%s", dir);
			else if (snprintf(m->cgroup_dir, sizeof(m->cgroup_dir), "%s%s", dir, rel) >=
				 (int)sizeof(m->cgroup_dir))
				continue;
			/* Drop a trailing slash so that walking up is plain. */
			size_t n = strlen(m->cgroup_dir);
			while (n > strlen(f->mount_dir) && m->cgroup_dir[n - 1] == '/')
				m->cgroup_dir[--n] = '\0';
			m->cgroup_version = version;
			return 0;
		}
		if (fallback) {
			mf_memory_warn(m, "cgroup %s is not below the root %s of the cgroup mount %s; "
				       "reading the mount's own directory", cgpath, path, f->mount_dir);
			snprintf(m->cgroup_path, sizeof(m->cgroup_path), "%s", cgpath);
			snprintf(m->cgroup_dir, sizeof(m->cgroup_dir), "%s", f->mount_dir);
			f->true_root = 0;
			m->cgroup_version = version;
			return 0;
		}
	}
	return -1;
}

