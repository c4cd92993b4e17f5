/*
 * memory.h - the memory limit a process really has, and how it is doing.
 *
 * Resolution order: the process's memory cgroup (v2 if a mounted cgroup2
 * tree really has the memory controller, else v1), walking up to the root
 * and keeping the smallest limit; else physical memory (MemTotal). Every
 * path is read under a root prefix ("" or "/" for the real system) so that
 * fixture trees can stand in for /proc and /sys in tests.
 */
#ifndef MF_MEMORY_H
#define MF_MEMORY_H

#include <stdint.h>
#include <sys/types.h>

#define MF_UNKNOWN UINT64_MAX /* a figure that could not be read */
/* A limit that is explicitly absent: v2 "max", or a value so large (>= 2^62)
 * that it means the same, such as v1's 9223372036854771712. */
#define MF_NOLIMIT (UINT64_MAX - 1)
#define MF_PATH_MAX 1024
#define MF_MAX_WARNINGS 16
#define MF_WARNING_MAX 384

enum mf_limit_source {
	MF_LIMIT_NONE = 0,      /* nothing readable at all */
	MF_LIMIT_CGROUP_V2,     /* memory.max */
	MF_LIMIT_CGROUP_V1,     /* memory.limit_in_bytes / hierarchical_memory_limit */
	MF_LIMIT_MEMTOTAL,      /* no cgroup limit: physical memory */
	MF_LIMIT_USER           /* given on the command line */
};

struct mf_memory {
	int cgroup_version;               /* 0 (none found), 1 or 2 */
	char cgroup_path[MF_PATH_MAX];    /* as in /proc/PID/cgroup, e.g. /kubepods/pod1/c1 */
	char cgroup_dir[MF_PATH_MAX];     /* directory read, under the root prefix */

	uint64_t limit;                   /* effective limit, bytes (MF_UNKNOWN if none at all) */
	enum mf_limit_source limit_source;
	char limit_file[MF_PATH_MAX];     /* the file that gave the limit */
	char limit_key[32];               /* memory.max, memory.limit_in_bytes,
					     hierarchical_memory_limit or MemTotal */
	uint64_t cgroup_limit;            /* smallest cgroup limit (MF_NOLIMIT: none) */
	char cgroup_limit_file[MF_PATH_MAX];
	int limit_unreadable;             /* a cgroup limit file could not be read:
					     the limit may be too high */

	uint64_t memtotal;                /* MemTotal, bytes */
	uint64_t swap_total;              /* SwapTotal, bytes: 0 when the host has no swap */
	uint64_t high;                    /* v2 memory.high (smallest on the way up; MF_NOLIMIT) */
	uint64_t swap_max;                /* v2 memory.swap.max; v1 memsw limit - limit (MF_NOLIMIT) */
	uint64_t usage;                   /* memory.current / memory.usage_in_bytes */
	uint64_t inactive_file;           /* from memory.stat */
	uint64_t working_set;             /* usage - inactive_file, as the kubelet */
	uint64_t headroom;                /* limit - working_set (0 when above) */

	uint64_t oom_kill;                /* v2 memory.events oom_kill (the cgroup and its
					     descendants); v1 memory.oom_control oom_kill */
	uint64_t oom;                     /* v2 memory.events oom */
	uint64_t events_max;              /* v2 memory.events max */
	uint64_t events_high;             /* v2 memory.events high */
	uint64_t failcnt;                 /* v1 memory.failcnt */

	int ignore_rlimit_data;           /* kernel parameter: 1 Y, 0 N, -1 unreadable */

	int nwarnings;
	char warnings[MF_MAX_WARNINGS][MF_WARNING_MAX];
};

/* The root prefix: MEMFENCE_ROOT from the environment, else "". */
const char *mf_root_default(void);

/*
 * Read everything above for process pid (0 = self) under root. Unknown
 * figures are MF_UNKNOWN; problems (unreadable or garbage files) become
 * warnings in out, never a failure: the answer always says where its limit
 * came from. Returns 0, or -1 when not even MemTotal could be read (errmsg).
 */
int mf_memory_read(const char *root, pid_t pid, struct mf_memory *out,
		   char *errmsg, size_t errlen);

/*
 * The same for this process, limited to what a plan needs (the limits, swap,
 * MemTotal, ignore_rlimit_data): the usage, the page cache and the event
 * counters stay MF_UNKNOWN. Three files fewer for `exec` and `run`, which
 * read the usage again as the program runs.
 */
int mf_memory_read_limits(const char *root, struct mf_memory *out, char *errmsg, size_t errlen);

/*
 * The cheap re-read of a cgroup that the supervisor does several times a
 * second: usage, inactive file pages and the OOM-kill counter, from the
 * same files and with the same parsers as mf_memory_read, with open/read
 * into a stack buffer (no stdio, no allocation, no warnings: a figure that
 * cannot be read is 0).
 */
struct mf_cgroup_sampler {
	int version;                 /* 0 none, 1, 2 */
	char dir[MF_PATH_MAX];       /* cgroup directory (under the root prefix) */
	char root[MF_PATH_MAX];      /* root prefix, for /proc/vmstat */
};

struct mf_cgroup_sample {
	uint64_t usage;
	uint64_t inactive_file;
	uint64_t working_set;        /* usage - inactive_file */
	uint64_t oom_kill;           /* the cgroup's counter (with its
					descendants), or /proc/vmstat's */
	int oom_from_vmstat;         /* 1 when the cgroup has no counter */
};

/* Sample the cgroup m was read from (root: the same prefix). */
void mf_cgroup_sampler_init(struct mf_cgroup_sampler *cg, const struct mf_memory *m,
			    const char *root);
int mf_cgroup_sample(const struct mf_cgroup_sampler *cg, struct mf_cgroup_sample *s);
/* Resident set of this process (VmRSS), bytes; 0 if unreadable. */
uint64_t mf_self_rss(void);

/* Short name of a source: "cgroup v2", "cgroup v1", "MemTotal", ... */
const char *mf_limit_source_name(enum mf_limit_source s);

/* Add a warning (printf style); silently drops past MF_MAX_WARNINGS. */
void mf_memory_warn(struct mf_memory *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Parsers, on buffers (exposed for the unit tests). Each returns 0, or -1
 * with *why set to a short static reason ("empty", "not a number", ...).
 */
#define MF_PARSE_MAX 1 /* accept "max" as MF_NOLIMIT (cgroup v2) */

/* A file holding one number and its newline, e.g. memory.max: "268435456\n". */
int mf_parse_value(const char *buf, unsigned flags, uint64_t *out, const char **why);

/* The number on the line "KEY VALUE\n" of a flat keyed file (memory.stat,
 * memory.events, memory.oom_control) or "Key:   VALUE kB\n" (meminfo, where
 * key includes the colon and kB multiplies by 1024). */
int mf_parse_keyed(const char *buf, const char *key, unsigned flags, uint64_t *out,
		   const char **why);

/* One line of /proc/PID/mountinfo (proc(5)): copies the mount's root and
 * mount point (octal escapes undone), file system type and super options.
 * Returns 0, or -1 for a line of the wrong shape. */
struct mf_mount {
	char root[MF_PATH_MAX];
	char point[MF_PATH_MAX];
	char fstype[32];
	char super[256];
};
int mf_parse_mountinfo_line(const char *line, struct mf_mount *m);

/* The path after "0::" (v2, controller "" ) or after the hierarchy whose
 * controller list holds controller (v1) in /proc/PID/cgroup contents.
 * controller NULL asks for the v2 line. Returns 0 or -1 (no such line). */
int mf_parse_cgroup_file(const char *buf, const char *controller, char *path, size_t len);

#endif
