/*
 * test_plan.c - from the memory read to the plan: limit, reserve, budget,
 * rlimit kind, thread stack; the one-line messages of bad values; and the
 * rlimit as a child process gets it.
 *
 * The memory is either read from a fixture tree (tests/fixtures/cgroup) or
 * made by hand, so that every figure below is exact.
 */
#include <limits.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/plan.h"
#include "unit.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* A process in a cgroup v2 with memory.max = limit. */
static struct mf_memory *made(uint64_t limit)
{
	static struct mf_memory m;

	memset(&m, 0, sizeof(m));
	m.cgroup_version = 2;
	m.limit = limit;
	m.limit_source = MF_LIMIT_CGROUP_V2;
	snprintf(m.limit_file, sizeof(m.limit_file), "/sys/fs/cgroup/app/memory.max");
	return &m;
}

/* Resolve; returns the rc, the message in err. */
static int resolve(const char *limit, const char *reserve, const char *rlimit, const char *stack,
		   const struct mf_memory *mem, struct mf_plan *p, char *err, size_t errlen)
{
	struct mf_plan_opts o = {.limit = limit, .reserve = reserve, .rlimit = rlimit, .stack = stack};

	err[0] = '\0';
	return mf_plan_resolve(&o, mem, p, err, errlen);
}

static void test_defaults(void)
{
	struct mf_plan p;
	char err[512];

	/* 512 MiB: 5% is 25.6 MiB, under the 64 MiB floor. */
	CHECK_EQ_U64(resolve(NULL, NULL, NULL, NULL, made(512 * MiB), &p, err, sizeof(err)), 0);
	CHECK_EQ_U64(p.limit, 512 * MiB);
	CHECK_EQ_U64(p.limit_source, MF_LIMIT_CGROUP_V2);
	CHECK_STR(p.limit_from, "cgroup v2 (/sys/fs/cgroup/app/memory.max)");
	CHECK_EQ_U64(p.reserve, 64 * MiB);
	CHECK_EQ_U64(p.reserve_default, 1);
	CHECK_EQ_U64(p.budget, 448 * MiB);
	CHECK_EQ_U64(p.rlimit, MF_RLIMIT_DATA);
	CHECK_EQ_U64(p.stack, MF_STACK_DEFAULT);

	/* 4 GiB: 5% (computed on whole hundredths) is above the floor. */
	CHECK_EQ_U64(resolve("auto", NULL, NULL, NULL, made(4 * GiB), &p, err, sizeof(err)), 0);
	CHECK_EQ_U64(p.reserve, 4 * GiB / 100 * 5);
	CHECK_EQ_U64(p.budget, 4 * GiB - 4 * GiB / 100 * 5);
}

static void test_limit(void)
{
	struct mf_plan p;
	char err[512];
	struct mf_memory *m = made(1 * GiB);

	CHECK_EQ_U64(resolve("256M", NULL, NULL, NULL, m, &p, err, sizeof(err)), 0);
	CHECK_EQ_U64(p.limit, 256 * MiB);
	CHECK_EQ_U64(p.limit_source, MF_LIMIT_USER);
	CHECK_STR(p.limit_from, "--limit 256M");
	CHECK_EQ_U64(p.budget, 192 * MiB);

	/* A percentage of the limit found. */
	CHECK_EQ_U64(resolve("50%", NULL, NULL, NULL, m, &p, err, sizeof(err)), 0);
	CHECK_EQ_U64(p.limit, 512 * MiB);

	/* Nothing read and no --limit: an error that says what to do. */
	CHECK(resolve(NULL, NULL, NULL, NULL, NULL, &p, err, sizeof(err)) != 0);
	CHECK_STR(err, "cannot find the memory limit (no cgroup limit and no MemTotal); give --limit SIZE");
	m->limit = MF_UNKNOWN;
	CHECK(resolve("auto", NULL, NULL, NULL, m, &p, err, sizeof(err)) != 0);
	/* ... while an explicit size still works. */
	CHECK_EQ_U64(resolve("1G", NULL, NULL, NULL, NULL, &p, err, sizeof(err)), 0);
	CHECK_EQ_U64(p.limit, 1 * GiB);

	CHECK(resolve("0", NULL, NULL, NULL, made(GiB), &p, err, sizeof(err)) != 0);
	CHECK_STR(err, "invalid limit '0' (--limit, MEMFENCE_LIMIT): must be more than 0");
	CHECK(resolve("lots", NULL, NULL, NULL, made(GiB), &p, err, sizeof(err)) != 0);
	CHECK(strncmp(err, "invalid limit 'lots' (--limit, MEMFENCE_LIMIT): ", 48) == 0);
}

static void test_reserve(void)
{
	struct mf_plan p;
	char err[512];

	CHECK_EQ_U64(resolve(NULL, "100M", NULL, NULL, made(GiB), &p, err, sizeof(err)), 0);
	CHECK_EQ_U64(p.reserve, 100 * MiB);
	CHECK_EQ_U64(p.reserve_default, 0);
	CHECK_EQ_U64(p.budget, GiB - 100 * MiB);

	/* A percentage reserve is of the limit, and below the default floor
	 * if asked: the floor is only the default's. */
	CHECK_EQ_U64(resolve(NULL, "25%", NULL, NULL, made(GiB), &p, err, sizeof(err)), 0);
	CHECK_EQ_U64(p.reserve, 256 * MiB);
	CHECK_EQ_U64(p.budget, 768 * MiB);
	CHECK_EQ_U64(resolve(NULL, "1%", NULL, NULL, made(GiB), &p, err, sizeof(err)), 0);
	CHECK(p.reserve < MF_RESERVE_MIN);
	CHECK_EQ_U64(p.budget, GiB - p.reserve);
	/* Of the --limit given, not of the one found. */
	CHECK_EQ_U64(resolve("2G", "50%", NULL, NULL, made(GiB), &p, err, sizeof(err)), 0);
	CHECK_EQ_U64(p.reserve, GiB);
	CHECK_EQ_U64(p.budget, GiB);
	CHECK_EQ_U64(resolve(NULL, "0", NULL, NULL, made(GiB), &p, err, sizeof(err)), 0);
	CHECK_EQ_U64(p.budget, GiB);

	/* Nothing left for the program. */
	CHECK(resolve(NULL, "1G", NULL, NULL, made(GiB), &p, err, sizeof(err)) != 0);
	CHECK_STR(err, "the reserve (1 GiB) leaves no budget under the limit (1 GiB); "
		       "lower --reserve or raise --limit");
	CHECK(resolve(NULL, "100%", NULL, NULL, made(GiB), &p, err, sizeof(err)) != 0);
	/* The default floor on a small limit leaves nothing either. */
	CHECK(resolve("64M", NULL, NULL, NULL, NULL, &p, err, sizeof(err)) != 0);
	CHECK(strstr(err, "leaves no budget") != NULL);
	CHECK(resolve(NULL, "-5M", NULL, NULL, made(GiB), &p, err, sizeof(err)) != 0);
	CHECK(strncmp(err, "invalid reserve '-5M' (--reserve, MEMFENCE_RESERVE): ", 53) == 0);
}

static void test_rlimit(void)
{
	struct mf_plan p;
	char err[512];

	CHECK_EQ_U64(resolve(NULL, NULL, "data", NULL, made(GiB), &p, err, sizeof(err)), 0);
	CHECK_EQ_U64(p.rlimit, MF_RLIMIT_DATA);
	CHECK_EQ_U64(resolve(NULL, NULL, "as", NULL, made(GiB), &p, err, sizeof(err)), 0);
	CHECK_EQ_U64(p.rlimit, MF_RLIMIT_AS);
	CHECK_EQ_U64(resolve(NULL, NULL, "none", NULL, made(GiB), &p, err, sizeof(err)), 0);
	CHECK_EQ_U64(p.rlimit, MF_RLIMIT_NONE);
	CHECK(resolve(NULL, NULL, "DATA", NULL, made(GiB), &p, err, sizeof(err)) != 0);
	CHECK_STR(err, "invalid rlimit 'DATA' (--rlimit, MEMFENCE_RLIMIT): use data, as or none");
	CHECK_STR(mf_rlimit_name(MF_RLIMIT_DATA), "data");
	CHECK_STR(mf_rlimit_name(MF_RLIMIT_AS), "as");
	CHECK_STR(mf_rlimit_name(MF_RLIMIT_NONE), "none");
}

static void test_stack(void)
{
	struct mf_plan p;
	char err[512];

	CHECK_EQ_U64(resolve(NULL, NULL, NULL, "256K", made(GiB), &p, err, sizeof(err)), 0);
	CHECK_EQ_U64(p.stack, MF_STACK_MIN);
	CHECK_EQ_U64(resolve(NULL, NULL, NULL, "8M", made(GiB), &p, err, sizeof(err)), 0);
	CHECK_EQ_U64(p.stack, 8 * MiB);
	CHECK(resolve(NULL, NULL, NULL, "255K", made(GiB), &p, err, sizeof(err)) != 0);
	CHECK_STR(err, "invalid stack size '255K' (--stack, MEMFENCE_STACK): at least 256K is needed "
		       "(Python and most C libraries overflow smaller stacks)");
	/* Not as a share of anything: a percentage is refused. */
	CHECK(resolve(NULL, NULL, NULL, "10%", made(GiB), &p, err, sizeof(err)) != 0);
	CHECK(strncmp(err, "invalid stack size '10%' (--stack, MEMFENCE_STACK): ", 51) == 0);
	CHECK(resolve("128M", NULL, NULL, "100M", NULL, &p, err, sizeof(err)) != 0);
	CHECK_STR(err, "invalid stack size '100M' (--stack, MEMFENCE_STACK): larger than the budget");
}

/* The plans the fixture trees give (limits from tests/fixtures/cgroup). */
static void test_fixtures(const char *dir)
{
	static const struct {
		const char *tree;
		uint64_t limit, reserve;
		enum mf_limit_source source;
	} cases[] = {
		{"v1", 256 * MiB, 64 * MiB, MF_LIMIT_CGROUP_V1},
		{"v2-nested", 512 * MiB, 64 * MiB, MF_LIMIT_CGROUP_V2},
		{"v2-max", 2 * GiB, 2 * GiB / 100 * 5, MF_LIMIT_MEMTOTAL},
		{"v1-unlimited", 8 * GiB, 8 * GiB / 100 * 5, MF_LIMIT_MEMTOTAL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char root[PATH_MAX + 64], err[512];
		struct mf_memory *m = calloc(1, sizeof(*m));
		struct mf_plan p;

		CHECK(m != NULL);
		if (m == NULL)
			return;
		snprintf(root, sizeof(root), "%s/%s", dir, cases[i].tree);
		CHECK_EQ_U64(mf_memory_read(root, 0, m, err, sizeof(err)), 0);
		CHECK_EQ_U64(resolve(NULL, NULL, NULL, NULL, m, &p, err, sizeof(err)), 0);
		CHECK_EQ_U64(p.limit, cases[i].limit);
		CHECK_EQ_U64(p.limit_source, cases[i].source);
		CHECK_EQ_U64(p.reserve, cases[i].reserve);
		CHECK_EQ_U64(p.budget, cases[i].limit - cases[i].reserve);
		free(m);
	}
}

/* In a child: the soft limit becomes the budget, the hard one stays, and
 * a lower hard limit caps the budget. */
static void test_apply(void)
{
	struct mf_plan p;
	char err[512];
	pid_t pid;
	int ws;

	CHECK_EQ_U64(resolve("1G", NULL, "data", NULL, NULL, &p, err, sizeof(err)), 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct rlimit before, after;
		int bad = 0;

		getrlimit(RLIMIT_DATA, &before);
		bad |= mf_plan_apply_rlimit(&p, err, sizeof(err)) != 0;
		getrlimit(RLIMIT_DATA, &after);
		bad |= after.rlim_cur != (rlim_t)p.budget;
		bad |= after.rlim_max != before.rlim_max;
		/* A hard limit below the budget wins. */
		after.rlim_cur = after.rlim_max = (rlim_t)(p.budget / 2);
		bad |= setrlimit(RLIMIT_DATA, &after) != 0;
		bad |= mf_plan_apply_rlimit(&p, err, sizeof(err)) != 0;
		getrlimit(RLIMIT_DATA, &after);
		bad |= after.rlim_cur != (rlim_t)(p.budget / 2);
		_exit(bad);
	}
	CHECK(waitpid(pid, &ws, 0) == pid);
	CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);

	/* none: nothing is touched. */
	CHECK_EQ_U64(resolve("1G", NULL, "none", NULL, NULL, &p, err, sizeof(err)), 0);
	CHECK_EQ_U64(mf_plan_apply_rlimit(&p, err, sizeof(err)), 0);
}

int main(int argc, char **argv)
{
	char dir[PATH_MAX + 32] = "tests/fixtures/cgroup";
	const char *env = getenv("MF_FIXTURES");
	struct stat st;

	if (env != NULL) {
		snprintf(dir, sizeof(dir), "%s", env);
	} else if (stat(dir, &st) != 0) {
		/* build/tests/test_plan -> the top directory is two levels up. */
		char self[PATH_MAX];

		if (argc > 0 && realpath(argv[0], self) != NULL) {
			for (int up = 0; up < 3; up++) {
				char *slash = strrchr(self, '/');
				if (slash != NULL)
					*slash = '\0';
			}
			snprintf(dir, sizeof(dir), "%s/tests/fixtures/cgroup", self);
		}
	}
	test_defaults();
	test_limit();
	test_reserve();
	test_rlimit();
	test_stack();
	test_fixtures(dir);
	test_apply();
	return unit_done("test_plan");
}
