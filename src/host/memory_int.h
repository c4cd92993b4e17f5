/*
 * memory_int.h - what the files of the memory reader share (the public
 * side is memory.h). One file per idea:
 *
 *   memory.c         the limit decision: which limit applies, from which
 *                    file, the working set and the headroom (mf_memory_read)
 *   memory_parse.c   the parsers, on buffers
 *   memory_file.c    reading the kernel's files under the root prefix, with
 *                    a warning naming a file that cannot be read
 *   memory_cgroup.c  finding the process's memory cgroup: v2 first, hybrid
 *                    hosts where a cgroup2 tree runs without memory, v1
 *   memory_v2.c      reading a cgroup v2 and its ancestors
 *   memory_v1.c      reading a cgroup v1
 *   memory_sample.c  the supervisor's cheap, allocation-free sample
 */
#ifndef MF_MEMORY_INT_H
#define MF_MEMORY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "host/memory.h"

/* Internal to the host library: not exported by the shared objects that
 * link it (the Python extension), unlike the API of memory.h. */
#define MF_MEM_INTERNAL __attribute__((visibility("hidden")))

/* A flag of mf_mem_load and mf_mem_read_value, beside MF_PARSE_MAX. */
enum {
	RD_OPTIONAL = 0x100, /* a missing file is normal: no warning */
};

/*
 * The OOM-kill counter of a v2 cgroup: memory.events, not
 * memory.events.local. memory.events counts the kills in the cgroup and in
 * all its descendants; the .local file only those of processes that sit in
 * the cgroup itself. A container's program may run in child cgroups (a
 * runtime or an init that makes a leaf per service, pre-fork workers
 * moved to their own groups), and v2 lets no process sit in a cgroup whose
 * children have the memory controller: there the .local counter stays at 0
 * however many of the container's processes the kernel kills. A kill
 * anywhere below is a kill of the container, so the full read (inspect)
 * and the supervisor's sample both read this file. (On a hierarchy mounted
 * with memory_localevents the kernel makes memory.events local too.)
 */
#define MF_V2_EVENTS "memory.events"

struct mf_cg_find {
	const char *root;     /* prefix, without trailing slash */
	char proc[64];        /* "/proc/self" or "/proc/PID" */
	char *cgroup_file;    /* contents of proc/PID/cgroup */
	char *mountinfo;      /* contents of the mountinfo that maps it */
	char mount_dir[MF_PATH_MAX]; /* root + mount point of the chosen mount */
	int true_root;        /* the mount shows the hierarchy's real root */
};

/* memory_cgroup.c: sets cgroup_version, cgroup_path, cgroup_dir and
 * f->mount_dir. Returns 0 when a memory cgroup was found. */
int mf_mem_find_cgroup(struct mf_memory *m, struct mf_cg_find *f) MF_MEM_INTERNAL;
/* usage 0: the limits alone, without the usage, memory.stat's page cache and
 * the event counters (mf_memory_read_limits). */
void mf_mem_read_v2(struct mf_memory *m, const struct mf_cg_find *f, int leaf_ok,
		    int usage) MF_MEM_INTERNAL;
void mf_mem_read_v1(struct mf_memory *m, int leaf_ok, int usage) MF_MEM_INTERNAL;
/* The inactive-file key of a v1 memory.stat. */
const char *mf_mem_v1_inactive_key(const char *stat) MF_MEM_INTERNAL;
/* memory.c: keep the smaller limit, and the file it came from. */
void mf_mem_keep_min(uint64_t v, const char *file, uint64_t *best, char *best_file) MF_MEM_INTERNAL;
/* memory_parse.c: is word an item of the comma-separated list? */
int mf_mem_has_item(const char *list, size_t len, const char *word) MF_MEM_INTERNAL;

/* memory_file.c. The whole file for the parsers, malloc'd (free it), NULL
 * after a warning unless flags has RD_OPTIONAL and it is missing. */
char *mf_mem_load(struct mf_memory *m, const char *path, unsigned flags, int *errp) MF_MEM_INTERNAL;
/* A one-number file. Returns 0, -ENOENT (missing) or another -errno,
 * -EINVAL for contents that are not a number; *out is MF_UNKNOWN then. */
int mf_mem_read_value(struct mf_memory *m, const char *path, unsigned flags, uint64_t *out) MF_MEM_INTERNAL;
/* One key of a keyed file already loaded (buf NULL: the file could not be
 * read, already warned about); MF_UNKNOWN with a warning if absent. */
uint64_t mf_mem_get_key(struct mf_memory *m, const char *path, const char *buf,
			const char *key, unsigned flags) MF_MEM_INTERNAL;
int mf_mem_has_key(const char *buf, const char *key) MF_MEM_INTERNAL;
/* mf_mem_read_value and mf_mem_load of a file of the cgroup's directory
 * (file: "/memory.current"); a name that does not fit is -ENAMETOOLONG,
 * *out untouched, or NULL. mf_mem_load_in leaves the name in path, for
 * mf_mem_get_key's warnings. */
int mf_mem_read_in(struct mf_memory *m, const char *file, unsigned flags,
		   uint64_t *out) MF_MEM_INTERNAL;
char *mf_mem_load_in(struct mf_memory *m, char *path, size_t len, const char *file,
		     unsigned flags) MF_MEM_INTERNAL;
/* a then b into out: 0, or -ENAMETOOLONG. */
int mf_mem_join(char *out, size_t len, const char *a, const char *b) MF_MEM_INTERNAL;
int mf_mem_is_dir(const char *path) MF_MEM_INTERNAL;

#endif
