/*
 * memory.c - the memory limit a process really has, and how it is doing.
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

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/size.h"

/* Generous for mountinfo on a busy Kubernetes node; a larger file is not
 * one the kernel wrote. */
#define MF_FILE_MAX (4u << 20)

/* v1 prints "unlimited" as LONG_MAX rounded down to a page,
 * 9223372036854771712, and never as -1; no machine has 2^62 bytes. */
#define MF_HUGE (1ull << 62)

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
#define V2_EVENTS "memory.events"

const char *mf_root_default(void)
{
	const char *r = secure_getenv("MEMFENCE_ROOT");

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

/* ---- parsers --------------------------------------------------------- */

static int is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* The decimal number in [s, e). By hand rather than strtoull, which would
 * accept leading blanks, a sign (and wrap "-1" around to 2^64-1) and
 * "0x..." with base 0. */
static int parse_number(const char *s, const char *e, unsigned flags, uint64_t *out,
			const char **why)
{
	uint64_t v = 0;

	if (s == e) {
		*why = "empty";
		return -1;
	}
	if ((flags & MF_PARSE_MAX) && e - s == 3 && memcmp(s, "max", 3) == 0) {
		*out = MF_NOLIMIT;
		return 0;
	}
	if (*s == '-') {
		*why = "negative number";
		return -1;
	}
	for (const char *p = s; p < e; p++) {
		if (*p < '0' || *p > '9') {
			*why = "not a number";
			return -1;
		}
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10) {
			*why = "number too large";
			return -1;
		}
		v = v * 10 + d;
	}
	*out = v >= MF_HUGE ? MF_NOLIMIT : v;
	return 0;
}

/*
 * memory.max, memory.limit_in_bytes, ...:
 *   268435456
 * The kernel always ends these files with a newline; without one the file
 * was cut short (a copy, a fixture, a full disk), and the digits that are
 * there may not be the whole number.
 */
int mf_parse_value(const char *buf, unsigned flags, uint64_t *out, const char **why)
{
	size_t n = strlen(buf);
	const char *e;

	*out = MF_UNKNOWN;
	if (n == 0) {
		*why = "empty";
		return -1;
	}
	if (buf[n - 1] != '\n') {
		*why = "truncated (no newline at the end)";
		return -1;
	}
	e = buf + n - 1;
	while (e > buf && (is_space(e[-1]) || e[-1] == '\n'))
		e--;
	if (memchr(buf, '\n', (size_t)(e - buf)) != NULL) {
		*why = "more than one line";
		return -1;
	}
	return parse_number(buf, e, flags, out, why);
}

/*
 * memory.stat (v1 and v2), memory.events, memory.oom_control:
 *   inactive_file 389120
 *   hierarchical_memory_limit 9223372036854771712
 * /proc/meminfo:
 *   MemTotal:       24683620 kB
 */
int mf_parse_keyed(const char *buf, const char *key, unsigned flags, uint64_t *out,
		   const char **why)
{
	size_t klen = strlen(key);
	const char *line = buf;
	int cut = 0;

	*out = MF_UNKNOWN;
	while (*line != '\0') {
		const char *eol = strchr(line, '\n');
		const char *end = eol != NULL ? eol : line + strlen(line);

		if (eol == NULL)
			cut = 1;
		if ((size_t)(end - line) > klen && memcmp(line, key, klen) == 0 &&
		    is_space(line[klen])) {
			const char *s = line + klen, *e;
			uint64_t v, mult = 1;

			if (eol == NULL) {
				*why = "truncated (the line has no end)";
				return -1;
			}
			while (s < end && is_space(*s))
				s++;
			for (e = s; e < end && !is_space(*e); e++)
				;
			const char *u = e;
			while (u < end && is_space(*u))
				u++;
			if (u < end) {
				if (end - u == 2 && memcmp(u, "kB", 2) == 0) {
					mult = 1024;
				} else {
					*why = "unexpected text after the number";
					return -1;
				}
			}
			if (parse_number(s, e, flags, &v, why) != 0)
				return -1;
			if (mult != 1 && v != MF_NOLIMIT) {
				if (v > UINT64_MAX / mult) {
					*why = "number too large";
					return -1;
				}
				v *= mult;
			}
			*out = v;
			return 0;
		}
		if (eol == NULL)
			break;
		line = eol + 1;
	}
	*why = cut ? "no such line (the file looks truncated)" : "no such line";
	return -1;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static int copy_field(const char *s, const char *e, char *out, size_t len)
{
	size_t n = 0;

	while (s < e) {
		char c = *s;
		if (c == '\\' && e - s >= 4 && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			c = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			s++;
		}
		if (n + 1 >= len)
			return -1;
		out[n++] = c;
	}
	out[n] = '\0';
	return 0;
}

/*
 * 34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
 * 40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
 * fields: id parent major:minor root mount-point options [optional...] -
 *         fstype source super-options
 */
int mf_parse_mountinfo_line(const char *line, struct mf_mount *m)
{
	const char *f[32][2];
	int nf = 0, dash = -1;
	const char *p = line;

	while (nf < 32) {
		while (is_space(*p))
			p++;
		if (*p == '\0' || *p == '\n')
			break;
		f[nf][0] = p;
		while (*p != '\0' && *p != '\n' && !is_space(*p))
			p++;
		f[nf][1] = p;
		if (dash < 0 && nf >= 6 && f[nf][1] - f[nf][0] == 1 && *f[nf][0] == '-')
			dash = nf;
		nf++;
	}
	if (dash < 0 || nf < dash + 4)
		return -1;
	if (copy_field(f[3][0], f[3][1], m->root, sizeof(m->root)) != 0 ||
	    copy_field(f[4][0], f[4][1], m->point, sizeof(m->point)) != 0 ||
	    copy_field(f[dash + 1][0], f[dash + 1][1], m->fstype, sizeof(m->fstype)) != 0 ||
	    copy_field(f[dash + 3][0], f[dash + 3][1], m->super, sizeof(m->super)) != 0)
		return -1;
	return 0;
}

/* Is word one of the comma-separated items of list? */
static int has_item(const char *list, size_t len, const char *word)
{
	size_t wl = strlen(word);
	const char *p = list, *end = list + len;

	while (p < end) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		const char *e = c != NULL ? c : end;
		if ((size_t)(e - p) == wl && memcmp(p, word, wl) == 0)
			return 1;
		p = e + 1;
	}
	return 0;
}

/*
 * /proc/PID/cgroup on a hybrid host (cgroup(7)):
 *   4:memory:/process_api/d0ead9c8279a8ed4fb39e785348d64f0
 *   0::/
 */
int mf_parse_cgroup_file(const char *buf, const char *controller, char *path, size_t len)
{
	const char *line = buf;

	while (*line != '\0') {
		const char *eol = strchr(line, '\n');
		const char *end = eol != NULL ? eol : line + strlen(line);
		const char *c1 = memchr(line, ':', (size_t)(end - line));
		const char *c2 = c1 != NULL ? memchr(c1 + 1, ':', (size_t)(end - c1 - 1)) : NULL;

		if (c2 != NULL && c2 + 1 < end && c2[1] == '/') {
			int match = controller == NULL
				? (c1 - line == 1 && line[0] == '0' && c2 == c1 + 1)
				: has_item(c1 + 1, (size_t)(c2 - c1 - 1), controller);
			if (match) {
				size_t n = (size_t)(end - c2 - 1);
				/* A cgroup removed while the process sits in it. */
				static const char deleted[] = " (deleted)";
				if (n > sizeof(deleted) - 1 &&
				    memcmp(end - (sizeof(deleted) - 1), deleted, sizeof(deleted) - 1) == 0)
					n -= sizeof(deleted) - 1;
				if (n + 1 > len)
					return -1;
				memcpy(path, c2 + 1, n);
				path[n] = '\0';
				return 0;
			}
		}
		if (eol == NULL)
			break;
		line = eol + 1;
	}
	return -1;
}

/* ---- reading files under the root ------------------------------------ */

/* The whole file, NUL-terminated, in a malloc'd buffer. 0 or -errno. */
static int slurp(const char *path, char **out)
{
	size_t cap = 4096, len = 0;
	char *buf, *nb;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(cap);
	if (buf == NULL) {
		err = -ENOMEM;
		goto out_close;
	}
	for (;;) {
		if (len + 1 >= cap) {
			if (cap >= MF_FILE_MAX) {
				err = -EFBIG;
				goto out_free;
			}
			nb = realloc(buf, cap * 2);
			if (nb == NULL) {
				err = -ENOMEM;
				goto out_free;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto out_free;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (strlen(buf) != len) {
		/* Text files hold no NUL; this one is not what we expect. */
		err = -EILSEQ;
		goto out_free;
	}
	*out = buf;
	goto out_close;
out_free:
	free(buf);
out_close:
	close(fd);
	return err;
}

static const char *read_error(int err)
{
	switch (err) {
	case -ENOENT: return "missing";
	case -EILSEQ: return "binary contents";
	case -EFBIG: return "too large";
	default: return strerror(-err);
	}
}

/* Open a file for the parsers; warns unless it is optional and missing. */
static char *load(struct mf_memory *m, const char *path, unsigned flags, int *errp)
{
	char *buf = NULL;
	int err = slurp(path, &buf);

	if (errp != NULL)
		*errp = err;
	if (err != 0) {
		if (!(err == -ENOENT && (flags & RD_OPTIONAL)))
			mf_memory_warn(m, "%s: %s", path, read_error(err));
		return NULL;
	}
	return buf;
}

/* A one-number file. Returns 0, -ENOENT (missing) or another -errno,
 * -EINVAL for contents that are not a number; *out is MF_UNKNOWN then. */
static int read_value(struct mf_memory *m, const char *path, unsigned flags, uint64_t *out)
{
	const char *why;
	int err;
	char *buf = load(m, path, flags, &err);

	*out = MF_UNKNOWN;
	if (buf == NULL)
		return err;
	if (mf_parse_value(buf, flags, out, &why) != 0) {
		char shown[24];
		size_t i;
		/* Show the start of what is there, printable, on one line. */
		for (i = 0; buf[i] != '\0' && buf[i] != '\n' && i + 1 < sizeof(shown); i++)
			shown[i] = (buf[i] >= 0x20 && buf[i] < 0x7f) ? buf[i] : '?';
		shown[i] = '\0';
		mf_memory_warn(m, "%s: %s ('%s%s')", path, why, shown,
			       buf[i] != '\0' && buf[i] != '\n' ? "..." : "");
		free(buf);
		return -EINVAL;
	}
	free(buf);
	return 0;
}

/* One key of a keyed file already loaded (buf NULL: the file could not be
 * read, already warned about). */
static uint64_t get_key(struct mf_memory *m, const char *path, const char *buf,
			const char *key, unsigned flags)
{
	uint64_t v;
	const char *why;

	if (buf == NULL)
		return MF_UNKNOWN;
	if (mf_parse_keyed(buf, key, flags, &v, &why) != 0) {
		/* meminfo's keys end with a colon already. */
		int klen = (int)strlen(key);
		if (klen > 0 && key[klen - 1] == ':')
			klen--;
		mf_memory_warn(m, "%s: %.*s: %s", path, klen, key, why);
		return MF_UNKNOWN;
	}
	return v;
}

static int has_key(const char *buf, const char *key)
{
	uint64_t v;
	const char *why;

	return buf != NULL && (mf_parse_keyed(buf, key, 0, &v, &why) == 0 ||
			       strcmp(why, "no such line") != 0);
}

/* v1: total_ figures count the subtree, as the kubelet does; older kernels
 * have only the cgroup's own. */
static const char *v1_inactive_key(const char *stat)
{
	return has_key(stat, "total_inactive_file") ? "total_inactive_file" : "inactive_file";
}

static int join(char *out, size_t len, const char *a, const char *b)
{
	int n = snprintf(out, len, "%s%s", a, b);

	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

static int is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- the process's cgroup -------------------------------------------- */

struct cg_find {
	const char *root;     /* prefix, without trailing slash */
	char proc[64];        /* "/proc/self" or "/proc/PID" */
	char *cgroup_file;    /* contents of proc/PID/cgroup */
	char *mountinfo;      /* contents of the mountinfo that maps it */
	char mount_dir[MF_PATH_MAX]; /* root + mount point of the chosen mount */
	int true_root;        /* the mount shows the hierarchy's real root */
};

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

	if (join(path, sizeof(path), dir, "/cgroup.controllers") != 0)
		return 0;
	buf = load(m, path, RD_OPTIONAL, NULL);
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
static int find_cgroup(struct mf_memory *m, struct cg_find *f)
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
				 (version == 2 || has_item(mnt.super, strlen(mnt.super), "memory"));
			if (eol != NULL)
				*eol = '\n';
			line = eol != NULL ? eol + 1 : NULL;
			if (!ok || join(dir, sizeof(dir), f->root, mnt.point) != 0)
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

/* Keep the smaller limit, and the file it came from. */
static void keep_min(uint64_t v, const char *file, uint64_t *best, char *best_file)
{
	if (v == MF_UNKNOWN)
		return;
	if (*best == MF_UNKNOWN || v < *best) {
		*best = v;
		if (best_file != NULL)
			snprintf(best_file, MF_PATH_MAX, "%s", file);
	}
}

/*
 * cgroup v2 (Documentation/admin-guide/cgroup-v2.rst): a limit anywhere
 * above the process's cgroup applies to it too, so memory.max and
 * memory.high are read at every level up to the mount and the smallest
 * wins. A non-root cgroup whose parent did not delegate the memory
 * controller has no memory.* files: only ancestors count then.
 */
static void read_v2(struct mf_memory *m, const struct cg_find *f, int leaf_ok)
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

		if (is_dir(level)) {
			if (join(path, sizeof(path), level, "/memory.max") == 0) {
				rc = read_value(m, path, fl, &v);
				if (rc == 0)
					keep_min(v, path, &lim, m->cgroup_limit_file);
				else if (rc != -ENOENT || !(fl & RD_OPTIONAL))
					m->limit_unreadable = 1;
			}
			if (join(path, sizeof(path), level, "/memory.high") == 0 &&
			    read_value(m, path, fl, &v) == 0)
				keep_min(v, path, &high, NULL);
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

	if (join(path, sizeof(path), m->cgroup_dir, "/memory.current") == 0)
		read_value(m, path, leaf_fl, &m->usage);
	if (join(path, sizeof(path), m->cgroup_dir, "/memory.swap.max") == 0)
		read_value(m, path, MF_PARSE_MAX | RD_OPTIONAL, &m->swap_max);
	if (join(path, sizeof(path), m->cgroup_dir, "/memory.stat") == 0) {
		buf = load(m, path, leaf_fl, NULL);
		m->inactive_file = get_key(m, path, buf, "inactive_file", 0);
		free(buf);
	}
	if (join(path, sizeof(path), m->cgroup_dir, "/" V2_EVENTS) == 0) {
		buf = load(m, path, leaf_fl, NULL);
		m->oom = get_key(m, path, buf, "oom", 0);
		m->oom_kill = get_key(m, path, buf, "oom_kill", 0);
		m->events_max = get_key(m, path, buf, "max", 0);
		m->events_high = get_key(m, path, buf, "high", 0);
		free(buf);
	}
}

/*
 * cgroup v1 (Documentation/admin-guide/cgroup-v1/memory.rst): the cgroup's
 * own memory.limit_in_bytes, and hierarchical_memory_limit in memory.stat,
 * which is already the smallest limit of the cgroup and its ancestors when
 * use_hierarchy is on (the ancestors may not be visible in a container).
 */
static void read_v1(struct mf_memory *m, int leaf_ok)
{
	char path[MF_PATH_MAX], stat_path[MF_PATH_MAX];
	unsigned fl = leaf_ok ? 0 : RD_OPTIONAL;
	uint64_t own, hier, memsw = MF_UNKNOWN, hier_memsw;
	char *buf;

	if (join(path, sizeof(path), m->cgroup_dir, "/memory.limit_in_bytes") == 0) {
		read_value(m, path, fl, &own);
		keep_min(own, path, &m->cgroup_limit, m->cgroup_limit_file);
	}
	if (join(stat_path, sizeof(stat_path), m->cgroup_dir, "/memory.stat") == 0) {
		buf = load(m, stat_path, fl, NULL);
		hier = get_key(m, stat_path, buf, "hierarchical_memory_limit", 0);
		if (hier != MF_UNKNOWN && (m->cgroup_limit == MF_UNKNOWN || hier < m->cgroup_limit)) {
			m->cgroup_limit = hier;
			snprintf(m->cgroup_limit_file, sizeof(m->cgroup_limit_file), "%s", stat_path);
		}
		/* Without hierarchical_memory_limit an ancestor's lower limit
		 * would go unseen. */
		if (hier == MF_UNKNOWN)
			m->limit_unreadable = 1;
		m->inactive_file = get_key(m, stat_path, buf, v1_inactive_key(buf), 0);
		hier_memsw = has_key(buf, "hierarchical_memsw_limit")
			? get_key(m, stat_path, buf, "hierarchical_memsw_limit", 0) : MF_UNKNOWN;
		keep_min(hier_memsw, stat_path, &memsw, NULL);
		free(buf);
	}
	if (join(path, sizeof(path), m->cgroup_dir, "/memory.usage_in_bytes") == 0)
		read_value(m, path, fl, &m->usage);
	if (join(path, sizeof(path), m->cgroup_dir, "/memory.failcnt") == 0)
		read_value(m, path, fl, &m->failcnt);
	if (join(path, sizeof(path), m->cgroup_dir, "/memory.oom_control") == 0) {
		buf = load(m, path, fl, NULL);
		m->oom_kill = get_key(m, path, buf, "oom_kill", 0);
		free(buf);
	}
	/* memsw files exist only with swap accounting (swapaccount=1). */
	if (join(path, sizeof(path), m->cgroup_dir, "/memory.memsw.limit_in_bytes") == 0) {
		uint64_t v;
		if (read_value(m, path, RD_OPTIONAL, &v) == 0)
			keep_min(v, path, &memsw, NULL);
	}
	/* memsw limits memory plus swap: swap is what it leaves above the
	 * memory limit. */
	if (memsw == MF_UNKNOWN || memsw == MF_NOLIMIT)
		m->swap_max = memsw;
	else if (m->cgroup_limit != MF_UNKNOWN && m->cgroup_limit != MF_NOLIMIT)
		m->swap_max = memsw > m->cgroup_limit ? memsw - m->cgroup_limit : 0;
	else
		m->swap_max = memsw;
}

static void read_meminfo(struct mf_memory *m, const char *root, char *path, size_t len)
{
	char *buf;

	if (join(path, len, root, "/proc/meminfo") != 0)
		return;
	buf = load(m, path, 0, NULL);
	m->memtotal = get_key(m, path, buf, "MemTotal:", 0);
	m->swap_total = buf != NULL && has_key(buf, "SwapTotal:")
		? get_key(m, path, buf, "SwapTotal:", 0) : MF_UNKNOWN;
	free(buf);
}

static void read_ignore_rlimit_data(struct mf_memory *m, const char *root)
{
	char path[MF_PATH_MAX];
	char *buf;

	m->ignore_rlimit_data = -1;
	if (join(path, sizeof(path), root, "/sys/module/kernel/parameters/ignore_rlimit_data") != 0)
		return;
	/* Absent before Linux 4.7, where RLIMIT_DATA did not count mmap at all. */
	buf = load(m, path, RD_OPTIONAL, NULL);
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

int mf_memory_read(const char *root, pid_t pid, struct mf_memory *out,
		   char *errmsg, size_t errlen)
{
	char r[MF_PATH_MAX], path[MF_PATH_MAX], meminfo[MF_PATH_MAX] = "";
	struct cg_find f = {0};
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
	f.cgroup_file = load(out, path, 0, &err);
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
		f.mountinfo = load(out, path, RD_OPTIONAL, &err);
	}
	snprintf(path, sizeof(path), "%s%s/mountinfo", r, f.proc);
	if (f.cgroup_file != NULL && f.mountinfo == NULL)
		f.mountinfo = load(out, path, 0, &err);
	if (f.cgroup_file == NULL || f.mountinfo == NULL) {
		/* Whatever limit the cgroup has went unseen. */
		out->limit_unreadable = 1;
	} else if (find_cgroup(out, &f) == 0) {
		if (!is_dir(out->cgroup_dir)) {
			mf_memory_warn(out, "%s: missing (the cgroup directory)", out->cgroup_dir);
			leaf_ok = 0;
			out->limit_unreadable = 1;
		}
		if (out->cgroup_version == 2)
			read_v2(out, &f, leaf_ok);
		else
			read_v1(out, leaf_ok);
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

/* ---- the cheap sample ------------------------------------------------ */

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
			sample_key(buf, cg->version == 1 ? v1_inactive_key(buf) : "inactive_file",
				   &s->inactive_file);
		if (read_small(cg->dir, cg->version == 1 ? "memory.oom_control" : V2_EVENTS, buf,
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
