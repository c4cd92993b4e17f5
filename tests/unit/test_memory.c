/*
 * test_memory.c - limit resolution on every fixture tree, and its parsers.
 *
 * Each tree under tests/fixtures/cgroup stands in for /proc and /sys of one
 * kind of host (tests/fixtures/cgroup/README lists them); every figure is
 * checked exactly, and so is every warning a broken tree must produce.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/memory.h"
#include "unit.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static char fixtures[PATH_MAX + 64];

/* The fixture directory, from the source tree whichever the working
 * directory: tests/run starts in the top directory, a person may not. */
static void find_fixtures(const char *argv0)
{
	const char *env = getenv("MF_FIXTURES");
	char self[PATH_MAX];
	struct stat st;

	if (env != NULL) {
		snprintf(fixtures, sizeof(fixtures), "%s", env);
		return;
	}
	if (stat("tests/fixtures/cgroup", &st) == 0) {
		snprintf(fixtures, sizeof(fixtures), "tests/fixtures/cgroup");
		return;
	}
	/* build/tests/test_memory -> top directory is two levels up. */
	if (realpath(argv0, self) != NULL) {
		for (int up = 0; up < 3; up++) {
			char *slash = strrchr(self, '/');
			if (slash != NULL)
				*slash = '\0';
		}
		snprintf(fixtures, sizeof(fixtures), "%s/tests/fixtures/cgroup", self);
	}
}

struct fx {
	char root[PATH_MAX * 2];
	struct mf_memory m;
	int rc;
	char err[256];
};

static struct fx *load(const char *name)
{
	static struct fx f;

	memset(&f, 0, sizeof(f));
	snprintf(f.root, sizeof(f.root), "%s/%s", fixtures, name);
	f.rc = mf_memory_read(f.root, 0, &f.m, f.err, sizeof(f.err));
	return &f;
}

/* Path under the fixture root, for comparing with what was read. */
static const char *at(const struct fx *f, const char *rel)
{
	static char buf[2][PATH_MAX * 3];
	static int i;

	i ^= 1;
	snprintf(buf[i], sizeof(buf[i]), "%s%s", f->root, rel);
	return buf[i];
}

/* Is there a warning that contains both needles? */
static int warned(const struct mf_memory *m, const char *a, const char *b)
{
	for (int i = 0; i < m->nwarnings; i++)
		if (strstr(m->warnings[i], a) != NULL && (b == NULL || strstr(m->warnings[i], b) != NULL))
			return 1;
	return 0;
}

static void dump_warnings(const char *name, const struct mf_memory *m)
{
	for (int i = 0; i < m->nwarnings; i++)
		fprintf(stderr, "  %s warning: %s\n", name, m->warnings[i]);
}

#define CHECK_WARNED(m, a, b)                                                   \
	do {                                                                    \
		CHECK(warned(m, a, b));                                         \
		if (!warned(m, a, b))                                           \
			dump_warnings(#m, m);                                   \
	} while (0)

static void test_v1(void)
{
	struct fx *f = load("v1");
	struct mf_memory *m = &f->m;

	CHECK_EQ_U64(f->rc, 0);
	CHECK_EQ_U64(m->cgroup_version, 1);
	CHECK_STR(m->cgroup_path, "/process_api/1f3c9ab2");
	CHECK_STR(m->cgroup_dir, at(f, "/sys/fs/cgroup/memory/process_api/1f3c9ab2"));
	CHECK_EQ_U64(m->limit, 256 * MiB);
	CHECK_EQ_U64(m->limit_source, MF_LIMIT_CGROUP_V1);
	CHECK_STR(m->limit_file, at(f, "/sys/fs/cgroup/memory/process_api/1f3c9ab2/memory.limit_in_bytes"));
	CHECK_STR(m->limit_key, "memory.limit_in_bytes");
	CHECK_EQ_U64(m->cgroup_limit, 256 * MiB);
	CHECK_EQ_U64(m->limit_unreadable, 0);
	CHECK_EQ_U64(m->memtotal, 16 * GiB);
	CHECK_EQ_U64(m->swap_total, 0);
	CHECK_EQ_U64(m->usage, 100 * MiB);
	/* total_inactive_file (the subtree), not inactive_file (1 MiB). */
	CHECK_EQ_U64(m->inactive_file, 4 * MiB);
	CHECK_EQ_U64(m->working_set, 96 * MiB);
	CHECK_EQ_U64(m->headroom, 160 * MiB);
	CHECK_EQ_U64(m->oom_kill, 2);
	CHECK_EQ_U64(m->failcnt, 3);
	CHECK_EQ_U64(m->oom, MF_UNKNOWN);
	CHECK_EQ_U64(m->high, MF_UNKNOWN);
	/* memsw == limit: no swap. */
	CHECK_EQ_U64(m->swap_max, 0);
	CHECK_EQ_U64(m->ignore_rlimit_data, 0);
	CHECK_EQ_U64(m->nwarnings, 0);
	dump_warnings("v1", m);
}

static void test_v1_unlimited(void)
{
	struct fx *f = load("v1-unlimited");
	struct mf_memory *m = &f->m;

	CHECK_EQ_U64(f->rc, 0);
	CHECK_EQ_U64(m->cgroup_version, 1);
	CHECK_STR(m->cgroup_path, "/system.slice/app.service");
	CHECK_EQ_U64(m->cgroup_limit, MF_NOLIMIT);
	CHECK_EQ_U64(m->limit, 8 * GiB);
	CHECK_EQ_U64(m->limit_source, MF_LIMIT_MEMTOTAL);
	CHECK_STR(m->limit_file, at(f, "/proc/meminfo"));
	CHECK_STR(m->limit_key, "MemTotal");
	CHECK_EQ_U64(m->limit_unreadable, 0);
	CHECK_EQ_U64(m->swap_total, 2 * GiB);
	CHECK_EQ_U64(m->swap_max, MF_NOLIMIT);
	CHECK_EQ_U64(m->usage, 50 * MiB);
	CHECK_EQ_U64(m->inactive_file, 2 * MiB);
	CHECK_EQ_U64(m->working_set, 48 * MiB);
	CHECK_EQ_U64(m->headroom, 8 * GiB - 48 * MiB);
	CHECK_EQ_U64(m->oom_kill, 0);
	CHECK_EQ_U64(m->failcnt, 0);
	CHECK_EQ_U64(m->nwarnings, 0);
	dump_warnings("v1-unlimited", m);
}

static void test_v2_nested(void)
{
	struct fx *f = load("v2-nested");
	struct mf_memory *m = &f->m;

	CHECK_EQ_U64(f->rc, 0);
	CHECK_EQ_U64(m->cgroup_version, 2);
	CHECK_STR(m->cgroup_path, "/kubepods/pod1/c1");
	CHECK_STR(m->cgroup_dir, at(f, "/sys/fs/cgroup/kubepods/pod1/c1"));
	/* grandchild max, child 1 GiB, parent 512 MiB: the parent's wins. */
	CHECK_EQ_U64(m->limit, 512 * MiB);
	CHECK_EQ_U64(m->limit_source, MF_LIMIT_CGROUP_V2);
	CHECK_STR(m->limit_file, at(f, "/sys/fs/cgroup/kubepods/memory.max"));
	CHECK_STR(m->limit_key, "memory.max");
	CHECK_EQ_U64(m->high, MF_NOLIMIT);
	CHECK_EQ_U64(m->memtotal, 4 * GiB);
	CHECK_EQ_U64(m->usage, 200 * MiB);
	/* The leaf's memory.stat, not the root's. */
	CHECK_EQ_U64(m->inactive_file, 10 * MiB);
	CHECK_EQ_U64(m->working_set, 190 * MiB);
	CHECK_EQ_U64(m->headroom, 322 * MiB);
	CHECK_EQ_U64(m->oom, 1);
	CHECK_EQ_U64(m->oom_kill, 1);
	CHECK_EQ_U64(m->events_max, 5);
	CHECK_EQ_U64(m->events_high, 0);
	CHECK_EQ_U64(m->failcnt, MF_UNKNOWN);
	CHECK_EQ_U64(m->swap_max, 0);
	CHECK_EQ_U64(m->nwarnings, 0);
	dump_warnings("v2-nested", m);
}

static void test_v2_max(void)
{
	struct fx *f = load("v2-max");
	struct mf_memory *m = &f->m;

	CHECK_EQ_U64(f->rc, 0);
	CHECK_EQ_U64(m->cgroup_version, 2);
	CHECK_STR(m->cgroup_path, "/user.slice/user-1000.slice/session-1.scope");
	CHECK_EQ_U64(m->cgroup_limit, MF_NOLIMIT);
	CHECK_EQ_U64(m->limit, 2 * GiB);
	CHECK_EQ_U64(m->limit_source, MF_LIMIT_MEMTOTAL);
	CHECK_STR(m->limit_key, "MemTotal");
	CHECK_EQ_U64(m->limit_unreadable, 0);
	CHECK_EQ_U64(m->high, MF_NOLIMIT);
	CHECK_EQ_U64(m->swap_max, MF_NOLIMIT);
	CHECK_EQ_U64(m->swap_total, 1 * GiB);
	CHECK_EQ_U64(m->usage, 100 * MiB);
	CHECK_EQ_U64(m->inactive_file, 0);
	CHECK_EQ_U64(m->working_set, 100 * MiB);
	CHECK_EQ_U64(m->headroom, 2 * GiB - 100 * MiB);
	CHECK_EQ_U64(m->oom_kill, 0);
	CHECK_EQ_U64(m->nwarnings, 0);
	dump_warnings("v2-max", m);
}

static void test_v2_high(void)
{
	struct fx *f = load("v2-high");
	struct mf_memory *m = &f->m;

	CHECK_EQ_U64(f->rc, 0);
	CHECK_EQ_U64(m->cgroup_version, 2);
	CHECK_EQ_U64(m->limit, 1 * GiB);
	CHECK_STR(m->limit_file, at(f, "/sys/fs/cgroup/app.slice/web.service/memory.max"));
	/* The leaf's 768 MiB is below the parent's 900 MiB. */
	CHECK_EQ_U64(m->high, 768 * MiB);
	CHECK_EQ_U64(m->usage, 700 * MiB);
	CHECK_EQ_U64(m->inactive_file, 32 * MiB);
	CHECK_EQ_U64(m->working_set, 668 * MiB);
	CHECK_EQ_U64(m->headroom, 356 * MiB);
	CHECK_EQ_U64(m->events_high, 12);
	CHECK_EQ_U64(m->ignore_rlimit_data, 1);
	CHECK_EQ_U64(m->nwarnings, 0);
	dump_warnings("v2-high", m);
}

static void test_v2_container(void)
{
	struct fx *f = load("v2-container");
	struct mf_memory *m = &f->m;

	CHECK_EQ_U64(f->rc, 0);
	CHECK_EQ_U64(m->cgroup_version, 2);
	CHECK_STR(m->cgroup_path, "/kubepods/burstable/pod7f2c/c9e1");
	/* The mount's root is the cgroup itself: its directory is the mount. */
	CHECK_STR(m->cgroup_dir, at(f, "/sys/fs/cgroup"));
	CHECK_EQ_U64(m->limit, 256 * MiB);
	CHECK_EQ_U64(m->limit_source, MF_LIMIT_CGROUP_V2);
	CHECK_STR(m->limit_file, at(f, "/sys/fs/cgroup/memory.max"));
	CHECK_EQ_U64(m->usage, 150 * MiB);
	CHECK_EQ_U64(m->working_set, 145 * MiB);
	CHECK_EQ_U64(m->headroom, 111 * MiB);
	CHECK_EQ_U64(m->oom, 3);
	CHECK_EQ_U64(m->oom_kill, 2);
	CHECK_EQ_U64(m->events_max, 40);
	CHECK_EQ_U64(m->nwarnings, 0);
	dump_warnings("v2-container", m);
}

/*
 * The container's processes live in child cgroups: the kills counted in
 * memory.events (the cgroup and its descendants) are the container's,
 * while memory.events.local, which counts only processes in the cgroup
 * itself, says 0.
 */
static void test_v2_subtree(void)
{
	struct fx *f = load("v2-subtree");
	struct mf_memory *m = &f->m;
	struct mf_cgroup_sampler cg;
	struct mf_cgroup_sample s;

	CHECK_EQ_U64(f->rc, 0);
	CHECK_EQ_U64(m->cgroup_version, 2);
	CHECK_STR(m->cgroup_dir, at(f, "/sys/fs/cgroup"));
	CHECK_EQ_U64(m->limit, 256 * MiB);
	CHECK_EQ_U64(m->oom, 4);
	CHECK_EQ_U64(m->oom_kill, 3);
	CHECK_EQ_U64(m->events_max, 12);
	CHECK_EQ_U64(m->nwarnings, 0);
	dump_warnings("v2-subtree", m);

	mf_cgroup_sampler_init(&cg, m, f->root);
	CHECK_EQ_U64(mf_cgroup_sample(&cg, &s), 0);
	CHECK_EQ_U64(s.oom_kill, 3);
	CHECK_EQ_U64(s.oom_from_vmstat, 0);
	CHECK_EQ_U64(s.usage, 150 * MiB);
	CHECK_EQ_U64(s.working_set, 145 * MiB);
}

/*
 * The supervisor's sample and the full read (inspect) must tell the same
 * figures on every tree whose files are whole: one reader, one answer.
 */
static void test_sample_agrees(void)
{
	static const char *const trees[] = {
		"v1", "v1-unlimited", "v2-nested", "v2-max", "v2-high", "v2-container", "v2-subtree",
	};

	for (size_t i = 0; i < sizeof(trees) / sizeof(trees[0]); i++) {
		struct fx *f = load(trees[i]);
		struct mf_memory *m = &f->m;
		struct mf_cgroup_sampler cg;
		struct mf_cgroup_sample s;

		CHECK_EQ_U64(f->rc, 0);
		mf_cgroup_sampler_init(&cg, m, f->root);
		CHECK_EQ_U64(mf_cgroup_sample(&cg, &s), 0);
		CHECK_EQ_U64(s.usage, m->usage);
		CHECK_EQ_U64(s.inactive_file, m->inactive_file);
		CHECK_EQ_U64(s.working_set, m->working_set);
		CHECK_EQ_U64(s.oom_kill, m->oom_kill);
		CHECK_EQ_U64(s.oom_from_vmstat, 0);
		if (s.oom_kill != m->oom_kill)
			fprintf(stderr, "  %s: sample oom_kill %llu, read %llu\n", trees[i],
				(unsigned long long)s.oom_kill, (unsigned long long)m->oom_kill);
	}
}

static void test_v2_above_memtotal(void)
{
	struct fx *f = load("v2-above-memtotal");
	struct mf_memory *m = &f->m;

	CHECK_EQ_U64(f->rc, 0);
	CHECK_EQ_U64(m->cgroup_limit, 64 * GiB);
	CHECK_STR(m->cgroup_limit_file, at(f, "/sys/fs/cgroup/big/memory.max"));
	CHECK_EQ_U64(m->limit, 8 * GiB);
	CHECK_EQ_U64(m->limit_source, MF_LIMIT_MEMTOTAL);
	CHECK_STR(m->limit_key, "MemTotal");
	CHECK_EQ_U64(m->headroom, 7 * GiB);
	CHECK_EQ_U64(m->nwarnings, 1);
	CHECK_WARNED(m, "above physical memory", "/sys/fs/cgroup/big/memory.max");
}

static void test_hybrid(void)
{
	struct fx *f = load("hybrid");
	struct mf_memory *m = &f->m;

	CHECK_EQ_U64(f->rc, 0);
	/* cgroup2 is mounted, but only with hugetlb: memory is on v1, and
	 * the 64 MiB memory.max planted in the unified tree is not read. */
	CHECK_EQ_U64(m->cgroup_version, 1);
	CHECK_STR(m->cgroup_path, "/process_api/d0ead9c8");
	CHECK_STR(m->cgroup_dir, at(f, "/sys/fs/cgroup/memory/process_api/d0ead9c8"));
	/* Own limit unlimited; the parent's 300 MiB via hierarchical_memory_limit. */
	CHECK_EQ_U64(m->limit, 300 * MiB);
	CHECK_EQ_U64(m->limit_source, MF_LIMIT_CGROUP_V1);
	CHECK_STR(m->limit_file, at(f, "/sys/fs/cgroup/memory/process_api/d0ead9c8/memory.stat"));
	CHECK_STR(m->limit_key, "hierarchical_memory_limit");
	/* No total_ lines (older kernels): inactive_file instead. */
	CHECK_EQ_U64(m->inactive_file, 1 * MiB);
	CHECK_EQ_U64(m->usage, 3248128);
	CHECK_EQ_U64(m->working_set, 3248128 - 1 * MiB);
	CHECK_EQ_U64(m->headroom, 300 * MiB - (3248128 - 1 * MiB));
	CHECK_EQ_U64(m->swap_max, MF_NOLIMIT);
	CHECK_EQ_U64(m->memtotal, 24683620ull * 1024);
	CHECK_EQ_U64(m->nwarnings, 0);
	dump_warnings("hybrid", m);
}

static void test_missing_files(void)
{
	struct fx *f = load("missing-files");
	struct mf_memory *m = &f->m;
	const char *d = "/sys/fs/cgroup/memory/svc/";

	CHECK_EQ_U64(f->rc, 0);
	CHECK_EQ_U64(m->cgroup_version, 1);
	/* memory.limit_in_bytes is gone, hierarchical_memory_limit remains. */
	CHECK_EQ_U64(m->limit, 512 * MiB);
	CHECK_STR(m->limit_key, "hierarchical_memory_limit");
	CHECK_EQ_U64(m->limit_unreadable, 0);
	CHECK_EQ_U64(m->usage, MF_UNKNOWN);
	CHECK_EQ_U64(m->working_set, MF_UNKNOWN);
	CHECK_EQ_U64(m->headroom, MF_UNKNOWN);
	CHECK_EQ_U64(m->failcnt, MF_UNKNOWN);
	CHECK_EQ_U64(m->oom_kill, MF_UNKNOWN);
	/* hierarchical_memsw_limit is unlimited. */
	CHECK_EQ_U64(m->swap_max, MF_NOLIMIT);
	CHECK_EQ_U64(m->ignore_rlimit_data, -1);
	CHECK_EQ_U64(m->nwarnings, 4);
	char want[128];
	static const char *files[] = {"memory.limit_in_bytes", "memory.usage_in_bytes",
				      "memory.failcnt", "memory.oom_control"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(want, sizeof(want), "%s%s: missing", d, files[i]);
		CHECK_WARNED(m, want, NULL);
	}
}

static void test_truncated(void)
{
	struct fx *f = load("truncated");
	struct mf_memory *m = &f->m;

	CHECK_EQ_U64(f->rc, 0);
	CHECK_EQ_U64(m->cgroup_version, 2);
	/* memory.max holds "53687" with no newline: not trusted, so the
	 * limit falls back to MemTotal and says it may be too high. */
	CHECK_EQ_U64(m->cgroup_limit, MF_UNKNOWN);
	CHECK_EQ_U64(m->limit_unreadable, 1);
	CHECK_EQ_U64(m->limit, 4 * GiB);
	CHECK_EQ_U64(m->limit_source, MF_LIMIT_MEMTOTAL);
	CHECK_EQ_U64(m->memtotal, 4 * GiB);
	CHECK_EQ_U64(m->swap_total, MF_UNKNOWN);
	CHECK_EQ_U64(m->high, MF_NOLIMIT);
	CHECK_EQ_U64(m->usage, MF_UNKNOWN);
	CHECK_EQ_U64(m->inactive_file, MF_UNKNOWN);
	CHECK_EQ_U64(m->headroom, MF_UNKNOWN);
	/* The lines before the cut are whole and count. */
	CHECK_EQ_U64(m->oom, 1);
	CHECK_EQ_U64(m->events_max, 3);
	CHECK_EQ_U64(m->events_high, 0);
	CHECK_EQ_U64(m->oom_kill, MF_UNKNOWN);
	CHECK_EQ_U64(m->ignore_rlimit_data, -1);
	CHECK_EQ_U64(m->nwarnings, 7);
	CHECK_WARNED(m, "/app/memory.max: truncated", "53687");
	CHECK_WARNED(m, "/app/memory.high: empty", NULL);
	CHECK_WARNED(m, "/app/memory.current: truncated", NULL);
	CHECK_WARNED(m, "/app/memory.stat: inactive_file: no such line", "truncated");
	CHECK_WARNED(m, "/app/memory.events: oom_kill: truncated", NULL);
	CHECK_WARNED(m, "/proc/meminfo: SwapTotal: no such line", "truncated");
	CHECK_WARNED(m, "ignore_rlimit_data: expected Y or N", NULL);
}

static void test_garbage(void)
{
	struct fx *f = load("garbage");
	struct mf_memory *m = &f->m;

	CHECK_EQ_U64(f->rc, 0);
	CHECK_EQ_U64(m->cgroup_version, 1);
	/* "12ab" in memory.limit_in_bytes; memory.stat still has the limit. */
	CHECK_EQ_U64(m->limit, 256 * MiB);
	CHECK_STR(m->limit_key, "hierarchical_memory_limit");
	CHECK_EQ_U64(m->limit_unreadable, 0);
	CHECK_EQ_U64(m->memtotal, MF_UNKNOWN);
	CHECK_EQ_U64(m->usage, MF_UNKNOWN);
	CHECK_EQ_U64(m->inactive_file, MF_UNKNOWN);
	CHECK_EQ_U64(m->failcnt, MF_UNKNOWN);
	CHECK_EQ_U64(m->oom_kill, MF_UNKNOWN);
	CHECK_EQ_U64(m->swap_max, MF_UNKNOWN);
	CHECK_EQ_U64(m->ignore_rlimit_data, -1);
	CHECK_EQ_U64(m->nwarnings, 8);
	CHECK_WARNED(m, "/junk/memory.limit_in_bytes: not a number", "'12ab'");
	CHECK_WARNED(m, "/junk/memory.usage_in_bytes: negative number", "'-4096'");
	CHECK_WARNED(m, "/junk/memory.failcnt: number too large", NULL);
	CHECK_WARNED(m, "/junk/memory.stat: total_inactive_file: negative number", NULL);
	CHECK_WARNED(m, "/junk/memory.oom_control: oom_kill: not a number", NULL);
	CHECK_WARNED(m, "/junk/memory.memsw.limit_in_bytes: binary contents", NULL);
	CHECK_WARNED(m, "/proc/meminfo: MemTotal: not a number", NULL);
	CHECK_WARNED(m, "ignore_rlimit_data: expected Y or N", NULL);
}

/* Trees made on the spot for what no fixture shows. */
static int mkdirs(const char *path)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	}
	return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* No cgroup counter: the sample falls back to /proc/vmstat's. */
static void test_sample_vmstat(void)
{
	char tmp[] = "/tmp/memfence-test-memory.XXXXXX";
	char path[PATH_MAX];
	struct mf_memory m;
	struct mf_cgroup_sampler cg;
	struct mf_cgroup_sample s;
	FILE *fp;

	if (mkdtemp(tmp) == NULL) {
		CHECK(0);
		return;
	}
	snprintf(path, sizeof(path), "%s/proc", tmp);
	CHECK_EQ_U64(mkdirs(path), 0);
	snprintf(path, sizeof(path), "%s/proc/vmstat", tmp);
	fp = fopen(path, "w");
	CHECK(fp != NULL);
	if (fp != NULL) {
		fputs("pgfault 100\noom_kill 7\n", fp);
		fclose(fp);
	}
	memset(&m, 0, sizeof(m));
	mf_cgroup_sampler_init(&cg, &m, tmp);
	CHECK_EQ_U64(mf_cgroup_sample(&cg, &s), 0);
	CHECK_EQ_U64(s.oom_kill, 7);
	CHECK_EQ_U64(s.oom_from_vmstat, 1);
	CHECK_EQ_U64(s.usage, 0);
	unlink(path);
	snprintf(path, sizeof(path), "%s/proc", tmp);
	rmdir(path);
	rmdir(tmp);
}

static void test_made_trees(void)
{
	char tmp[] = "/tmp/memfence-test-memory.XXXXXX";
	char path[PATH_MAX], target[PATH_MAX], err[256];
	struct mf_memory *m = calloc(1, sizeof(*m));
	char *abs = realpath(fixtures, NULL);

	CHECK(m != NULL && abs != NULL);
	if (m == NULL || abs == NULL || mkdtemp(tmp) == NULL) {
		free(m);
		free(abs);
		return;
	}

	/* Nothing at all: no limit, and the caller is told. */
	CHECK_EQ_U64(mf_memory_read(tmp, 0, m, err, sizeof(err)), -1);
	CHECK_EQ_U64(m->limit, MF_UNKNOWN);
	CHECK_EQ_U64(m->limit_source, MF_LIMIT_NONE);
	CHECK(strstr(err, "MemTotal") != NULL);
	CHECK(m->limit_unreadable);

	/* Another process: proc/PID instead of proc/self, same answers. */
	snprintf(path, sizeof(path), "%s/proc", tmp);
	CHECK(mkdirs(path) == 0);
	snprintf(path, sizeof(path), "%s/proc/4242", tmp);
	snprintf(target, sizeof(target), "%s/v1/proc/self", abs);
	CHECK(symlink(target, path) == 0);
	snprintf(path, sizeof(path), "%s/proc/meminfo", tmp);
	snprintf(target, sizeof(target), "%s/v1/proc/meminfo", abs);
	CHECK(symlink(target, path) == 0);
	snprintf(path, sizeof(path), "%s/sys", tmp);
	snprintf(target, sizeof(target), "%s/v1/sys", abs);
	CHECK(symlink(target, path) == 0);
	CHECK_EQ_U64(mf_memory_read(tmp, 4242, m, err, sizeof(err)), 0);
	CHECK_EQ_U64(m->limit, 256 * MiB);
	CHECK_EQ_U64(m->oom_kill, 2);
	/* ... and a root given with a trailing slash means the same. */
	snprintf(path, sizeof(path), "%s/", tmp);
	CHECK_EQ_U64(mf_memory_read(path, 4242, m, err, sizeof(err)), 0);
	CHECK_EQ_U64(m->limit, 256 * MiB);

	/* proc/self has no cgroup entry: MemTotal, and a warning that the
	 * cgroup's limit went unseen. */
	CHECK_EQ_U64(mf_memory_read(tmp, 0, m, err, sizeof(err)), 0);
	CHECK_EQ_U64(m->cgroup_version, 0);
	CHECK_EQ_U64(m->limit, 16 * GiB);
	CHECK_EQ_U64(m->limit_source, MF_LIMIT_MEMTOTAL);
	CHECK(m->limit_unreadable);
	CHECK(warned(m, "/proc/self/cgroup: missing", NULL));

	/* proc/PID/cgroup names a directory that does not exist. */
	snprintf(path, sizeof(path), "%s/proc/77", tmp);
	CHECK(mkdirs(path) == 0);
	snprintf(path, sizeof(path), "%s/proc/77/mountinfo", tmp);
	snprintf(target, sizeof(target), "%s/v1/proc/self/mountinfo", abs);
	CHECK(symlink(target, path) == 0);
	snprintf(path, sizeof(path), "%s/proc/77/cgroup", tmp);
	FILE *cg = fopen(path, "w");
	CHECK(cg != NULL);
	if (cg != NULL) {
		fputs("4:memory:/gone/away\n", cg);
		fclose(cg);
	}
	CHECK_EQ_U64(mf_memory_read(tmp, 77, m, err, sizeof(err)), 0);
	CHECK_EQ_U64(m->cgroup_version, 1);
	CHECK_STR(m->cgroup_path, "/gone/away");
	CHECK_EQ_U64(m->limit, 16 * GiB);
	CHECK(m->limit_unreadable);
	CHECK(warned(m, "/gone/away: missing (the cgroup directory)", NULL));
	CHECK_EQ_U64(m->nwarnings, 1);

	/* A process in another mount namespace: its mountinfo names mounts
	 * the reader does not have; the reader's own maps the cgroup. */
	snprintf(path, sizeof(path), "%s/proc/self", tmp);
	CHECK(mkdirs(path) == 0);
	snprintf(path, sizeof(path), "%s/proc/self/mountinfo", tmp);
	snprintf(target, sizeof(target), "%s/v1/proc/self/mountinfo", abs);
	CHECK(symlink(target, path) == 0);
	snprintf(path, sizeof(path), "%s/proc/99", tmp);
	CHECK(mkdirs(path) == 0);
	snprintf(path, sizeof(path), "%s/proc/99/cgroup", tmp);
	snprintf(target, sizeof(target), "%s/v1/proc/self/cgroup", abs);
	CHECK(symlink(target, path) == 0);
	snprintf(path, sizeof(path), "%s/proc/99/mountinfo", tmp);
	cg = fopen(path, "w");
	CHECK(cg != NULL);
	if (cg != NULL) {
		fputs("34 30 0:31 /process_api/1f3c9ab2 /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", cg);
		fclose(cg);
	}
	CHECK_EQ_U64(mf_memory_read(tmp, 99, m, err, sizeof(err)), 0);
	CHECK_EQ_U64(m->cgroup_version, 1);
	snprintf(target, sizeof(target), "%s/sys/fs/cgroup/memory/process_api/1f3c9ab2", tmp);
	CHECK_STR(m->cgroup_dir, target);
	CHECK_EQ_U64(m->limit, 256 * MiB);
	CHECK_EQ_U64(m->nwarnings, 0);

	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	CHECK(system(cmd) == 0);
	free(m);
	free(abs);
}

static void test_parse_value(void)
{
	uint64_t v;
	const char *why;

	CHECK_EQ_U64(mf_parse_value("268435456\n", 0, &v, &why), 0);
	CHECK_EQ_U64(v, 268435456);
	CHECK_EQ_U64(mf_parse_value("0\n", 0, &v, &why), 0);
	CHECK_EQ_U64(v, 0);
	CHECK_EQ_U64(mf_parse_value("4096 \n", 0, &v, &why), 0);
	CHECK_EQ_U64(v, 4096);
	CHECK_EQ_U64(mf_parse_value("max\n", MF_PARSE_MAX, &v, &why), 0);
	CHECK_EQ_U64(v, MF_NOLIMIT);
	CHECK_EQ_U64(mf_parse_value("max\n", 0, &v, &why), -1);
	CHECK_STR(why, "not a number");
	/* v1's unlimited, and anything from 2^62 up, is no limit. */
	CHECK_EQ_U64(mf_parse_value("9223372036854771712\n", 0, &v, &why), 0);
	CHECK_EQ_U64(v, MF_NOLIMIT);
	CHECK_EQ_U64(mf_parse_value("4611686018427387904\n", 0, &v, &why), 0);
	CHECK_EQ_U64(v, MF_NOLIMIT);
	CHECK_EQ_U64(mf_parse_value("4611686018427387903\n", 0, &v, &why), 0);
	CHECK_EQ_U64(v, 4611686018427387903ull);
	CHECK_EQ_U64(mf_parse_value("18446744073709551615\n", 0, &v, &why), 0);
	CHECK_EQ_U64(v, MF_NOLIMIT);
	CHECK_EQ_U64(mf_parse_value("18446744073709551616\n", 0, &v, &why), -1);
	CHECK_STR(why, "number too large");
	CHECK_EQ_U64(v, MF_UNKNOWN);
	CHECK_EQ_U64(mf_parse_value("99999999999999999999999\n", 0, &v, &why), -1);
	CHECK_STR(why, "number too large");
	CHECK_EQ_U64(mf_parse_value("", 0, &v, &why), -1);
	CHECK_STR(why, "empty");
	CHECK_EQ_U64(mf_parse_value("\n", 0, &v, &why), -1);
	CHECK_STR(why, "empty");
	CHECK_EQ_U64(mf_parse_value("12ab\n", 0, &v, &why), -1);
	CHECK_STR(why, "not a number");
	CHECK_EQ_U64(mf_parse_value("-1\n", 0, &v, &why), -1);
	CHECK_STR(why, "negative number");
	CHECK_EQ_U64(mf_parse_value("+5\n", 0, &v, &why), -1);
	CHECK_EQ_U64(mf_parse_value(" 5\n", 0, &v, &why), -1);
	CHECK_EQ_U64(mf_parse_value("0x10\n", 0, &v, &why), -1);
	CHECK_EQ_U64(mf_parse_value("2684", 0, &v, &why), -1);
	CHECK(strstr(why, "truncated") != NULL);
	CHECK_EQ_U64(mf_parse_value("1\n2\n", 0, &v, &why), -1);
	CHECK_STR(why, "more than one line");
}

static void test_parse_keyed(void)
{
	const char *stat = "inactive_anon 100\ninactive_file_x 5\ninactive_file 7\noom_kill 3\n";
	uint64_t v;
	const char *why;

	CHECK_EQ_U64(mf_parse_keyed(stat, "inactive_file", 0, &v, &why), 0);
	CHECK_EQ_U64(v, 7);
	CHECK_EQ_U64(mf_parse_keyed(stat, "oom_kill", 0, &v, &why), 0);
	CHECK_EQ_U64(v, 3);
	/* "oom" is not a prefix match of "oom_kill". */
	CHECK_EQ_U64(mf_parse_keyed(stat, "oom", 0, &v, &why), -1);
	CHECK_STR(why, "no such line");
	CHECK_EQ_U64(mf_parse_keyed("MemTotal:       24683620 kB\n", "MemTotal:", 0, &v, &why), 0);
	CHECK_EQ_U64(v, 24683620ull * 1024);
	CHECK_EQ_U64(mf_parse_keyed("MemTotal: 12 MB\n", "MemTotal:", 0, &v, &why), -1);
	CHECK_STR(why, "unexpected text after the number");
	/* 2^54 kB is 2^64 bytes. */
	CHECK_EQ_U64(mf_parse_keyed("MemTotal: 18014398509481984 kB\n", "MemTotal:", 0, &v, &why), -1);
	CHECK_STR(why, "number too large");
	CHECK_EQ_U64(mf_parse_keyed("a 1\nb 2", "b", 0, &v, &why), -1);
	CHECK_STR(why, "truncated (the line has no end)");
	CHECK_EQ_U64(mf_parse_keyed("a 1\nb", "c", 0, &v, &why), -1);
	CHECK_STR(why, "no such line (the file looks truncated)");
	CHECK_EQ_U64(mf_parse_keyed("a \n", "a", 0, &v, &why), -1);
	CHECK_STR(why, "empty");
	CHECK_EQ_U64(mf_parse_keyed("a max\n", "a", MF_PARSE_MAX, &v, &why), 0);
	CHECK_EQ_U64(v, MF_NOLIMIT);
	CHECK_EQ_U64(mf_parse_keyed("", "a", 0, &v, &why), -1);
}

static void test_parse_mountinfo(void)
{
	struct mf_mount mnt;

	CHECK_EQ_U64(mf_parse_mountinfo_line(
		"34 30 0:31 / /sys/fs/cgroup/memory rw,nosuid shared:13 - cgroup cgroup rw,memory", &mnt), 0);
	CHECK_STR(mnt.root, "/");
	CHECK_STR(mnt.point, "/sys/fs/cgroup/memory");
	CHECK_STR(mnt.fstype, "cgroup");
	CHECK_STR(mnt.super, "rw,memory");
	/* No optional fields; escaped space in the mount point. */
	CHECK_EQ_U64(mf_parse_mountinfo_line(
		"1290 1287 0:26 /kube/c1 /sys/fs/my\\040cgroup ro - cgroup2 cgroup rw\n", &mnt), 0);
	CHECK_STR(mnt.root, "/kube/c1");
	CHECK_STR(mnt.point, "/sys/fs/my cgroup");
	CHECK_STR(mnt.fstype, "cgroup2");
	CHECK_EQ_U64(mf_parse_mountinfo_line("34 30 0:31 / /x rw", &mnt), -1);
	CHECK_EQ_U64(mf_parse_mountinfo_line("", &mnt), -1);
	CHECK_EQ_U64(mf_parse_mountinfo_line("34 30 0:31 / /x rw - cgroup", &mnt), -1);
}

static void test_parse_cgroup_file(void)
{
	const char *hybrid = "9:name=systemd:/s\n4:memory:/process_api/d0\n2:cpu,cpuacct:/c\n0::/\n";
	char path[64];

	CHECK_EQ_U64(mf_parse_cgroup_file(hybrid, "memory", path, sizeof(path)), 0);
	CHECK_STR(path, "/process_api/d0");
	CHECK_EQ_U64(mf_parse_cgroup_file(hybrid, "cpuacct", path, sizeof(path)), 0);
	CHECK_STR(path, "/c");
	CHECK_EQ_U64(mf_parse_cgroup_file(hybrid, NULL, path, sizeof(path)), 0);
	CHECK_STR(path, "/");
	CHECK_EQ_U64(mf_parse_cgroup_file("0::/a/b (deleted)\n", NULL, path, sizeof(path)), 0);
	CHECK_STR(path, "/a/b");
	CHECK_EQ_U64(mf_parse_cgroup_file("0::/only-v2\n", "memory", path, sizeof(path)), -1);
	CHECK_EQ_U64(mf_parse_cgroup_file("4:memory:/x\n", NULL, path, sizeof(path)), -1);
	CHECK_EQ_U64(mf_parse_cgroup_file("garbage\n", NULL, path, sizeof(path)), -1);
	CHECK_EQ_U64(mf_parse_cgroup_file("0::/far/too/long/for/the/buffer\n", NULL, path, 8), -1);
}

static void test_misc(void)
{
	struct mf_memory *m = calloc(1, sizeof(*m));

	CHECK_STR(mf_limit_source_name(MF_LIMIT_CGROUP_V2), "cgroup v2");
	CHECK_STR(mf_limit_source_name(MF_LIMIT_CGROUP_V1), "cgroup v1");
	CHECK_STR(mf_limit_source_name(MF_LIMIT_MEMTOTAL), "MemTotal");
	if (m == NULL)
		return;
	/* Warnings past the table are dropped, not written past it. */
	for (int i = 0; i < MF_MAX_WARNINGS + 5; i++)
		mf_memory_warn(m, "warning %d", i);
	CHECK_EQ_U64(m->nwarnings, MF_MAX_WARNINGS);
	char last[32];
	snprintf(last, sizeof(last), "warning %d", MF_MAX_WARNINGS - 1);
	CHECK_STR(m->warnings[MF_MAX_WARNINGS - 1], last);
	free(m);
}

int main(int argc, char **argv)
{
	(void)argc;
	find_fixtures(argv[0]);
	unsetenv("MEMFENCE_ROOT");

	test_parse_value();
	test_parse_keyed();
	test_parse_mountinfo();
	test_parse_cgroup_file();
	test_misc();
	test_v1();
	test_v1_unlimited();
	test_v2_nested();
	test_v2_max();
	test_v2_high();
	test_v2_container();
	test_v2_above_memtotal();
	test_hybrid();
	test_missing_files();
	test_truncated();
	test_garbage();
	test_made_trees();
	test_v2_subtree();
	test_sample_agrees();
	test_sample_vmstat();
	return unit_done("test_memory");
}
