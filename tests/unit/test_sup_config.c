/*
 * test_sup_config.c - the options of `memfence run` resolved by the
 * supervisor (sup_config_resolve, src/supervisor/config.c): the defaults,
 * what depends on the plan or on other options, the environment, and the
 * values refused before anything starts. Nothing is started.
 */
#include <stdlib.h>
#include <unistd.h>

#include "supervisor/config.h"
#include "unit.h"

#define MiB (1ull << 20)

static struct sup_given g;
static struct mf_launch launch;
static struct mf_plan plan;
static struct mf_memory mem;
static char *argv[] = {"true", NULL};

static void start(void)
{
	memset(&g, 0, sizeof(g));
	memset(&launch, 0, sizeof(launch));
	memset(&plan, 0, sizeof(plan));
	launch.account = 1;
	plan.budget = 1000 * MiB;
}

static int resolve(struct sup_config *c)
{
	return sup_config_resolve(c, &g, &launch, &plan, &mem, argv);
}

static void give(int key, const char *v)
{
	CHECK(sup_config_given(&g, key, v) == 1);
}

static void test_defaults(void)
{
	struct sup_config c;

	start();
	CHECK(resolve(&c) == 0);
	CHECK_STR(c.http, "0.0.0.0:9090");
	CHECK_EQ_U64(c.restart, SUP_RESTART_NEVER);
	CHECK_EQ_U64(c.delay_ms, 1000);
	CHECK_EQ_U64(c.max_delay_ms, 30000);
	CHECK_EQ_U64(c.interval_ms, 100);
	CHECK_STR(c.report_dir, "/tmp/memfence");
	CHECK(c.state_dir == NULL);
	CHECK_STR(c.quarantine, "");
	CHECK(c.argv == argv);
	CHECK_EQ_U64(c.health.need, 0);
	/* 2 % of the budget, at least 8 MiB. */
	CHECK_EQ_U64(c.health.need_default, 20 * MiB);
	CHECK_EQ_U64(c.health.grace_ms, 10000);
	CHECK_EQ_U64(c.health.hysteresis_pct, 50);
	CHECK_EQ_U64(c.health.live_after_ms, 60000);
	CHECK_EQ_U64(c.health.fail_pct, 50);
	CHECK_EQ_U64(c.health.fail_window_s, 60);
	CHECK_EQ_U64(c.health.fail_min, 10);
	CHECK_EQ_U64(c.health.pressure_pct, 40);
	CHECK_EQ_U64(c.health.stuck_after_ms, 15000);
	CHECK_EQ_U64(c.container_min, 1 * MiB);
	CHECK(c.gate.on == 1);
	CHECK_EQ_U64(c.gate.min_count, 10);
	CHECK(c.gate.quantile > 0.89 && c.gate.quantile < 0.91);
	CHECK_EQ_U64(c.gate.max_wait_ms, 10000);
	CHECK_EQ_U64(c.gate.starve_ms, 500);
	/* auto: no recycling while the program is never restarted. */
	CHECK(c.recycle.on == 0);
	CHECK_EQ_U64(c.recycle.before_s, 300);
	CHECK(c.auto_python == 1 && c.profile == 0);
	plan.budget = 100 * MiB;
	CHECK(resolve(&c) == 0);
	CHECK_EQ_U64(c.health.need_default, 8 * MiB);
}

static void test_derived(void)
{
	struct sup_config c;
	char cwd[512], want[600];

	start();
	give(SUP_OPT_RESTART, "on-oom");
	give(SUP_OPT_STATE_DIR, "/var/lib/x");
	give(SUP_OPT_RESTART_DELAY, "40s");
	give(SUP_OPT_HTTP, "off");
	give(SUP_OPT_STUCK_AFTER, "off");
	give(SUP_OPT_NO_QUARANTINE, NULL);
	CHECK(resolve(&c) == 0);
	CHECK(c.recycle.on == 1);
	CHECK_STR(c.report_dir, "/var/lib/x/reports");
	/* The cap is never below the first delay. */
	CHECK_EQ_U64(c.max_delay_ms, 40000);
	CHECK(c.http == NULL);
	CHECK_EQ_U64(c.health.stuck_after_ms, 0);
	CHECK(c.quarantine == NULL);
	/* Paths handed to the program are absolute. */
	start();
	give(SUP_OPT_REPORT_DIR, "rel/reports");
	CHECK(resolve(&c) == 0);
	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	snprintf(want, sizeof(want), "%s/rel/reports", cwd);
	CHECK_STR(c.report_dir, want);
	/* Without accounting the gate is off. */
	start();
	launch.account = 0;
	CHECK(resolve(&c) == 0);
	CHECK(c.gate.on == 0);
	/* A percentage of the budget. */
	start();
	give(SUP_OPT_NEED, "5%");
	CHECK(resolve(&c) == 0);
	CHECK_EQ_U64(c.health.need, 50 * MiB);
}

static void test_environment(void)
{
	struct sup_config c;

	start();
	setenv("MEMFENCE_RESTART", "always", 1);
	setenv("MEMFENCE_PROFILE", "1", 1);
	CHECK(resolve(&c) == 0);
	CHECK_EQ_U64(c.restart, SUP_RESTART_ALWAYS);
	CHECK(c.profile == 1);
	/* The command line wins over the variable. */
	give(SUP_OPT_RESTART, "never");
	CHECK(resolve(&c) == 0);
	CHECK_EQ_U64(c.restart, SUP_RESTART_NEVER);
	setenv("MEMFENCE_PROFILE", "maybe", 1);
	CHECK(resolve(&c) == -1);
	unsetenv("MEMFENCE_PROFILE");
	unsetenv("MEMFENCE_RESTART");
}

static void test_refused(void)
{
	static const struct {
		int key;
		const char *v;
	} bad[] = {
		{SUP_OPT_RESTART, "sometimes"},
		{SUP_OPT_HTTP, "nowhere"},
		{SUP_OPT_INTERVAL, "5ms"},
		{SUP_OPT_INTERVAL, "11s"},
		{SUP_OPT_FAIL_WINDOW, "601s"},
		{SUP_OPT_MODEL_WINDOW, "1500ms"},
		{SUP_OPT_MODEL_WINDOW, "2h"},
		{SUP_OPT_NEED, "lots"},
		{SUP_OPT_GATE_NEED, "200%"},
		{SUP_OPT_GATE_QUANTILE, "0%"},
		{SUP_OPT_FAIL_RATIO, "101%"},
		{SUP_OPT_PRESSURE, "0"},
		{SUP_OPT_STUCK_AFTER, "0s"},
		{SUP_OPT_READY_TCP, "localhost:0"},
		{SUP_OPT_CONTAINER, "0"},
		{SUP_OPT_FAIL_MIN, "-1"},
	};
	struct sup_config c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		start();
		give(bad[i].key, bad[i].v);
		CHECK(resolve(&c) == -1);
	}
	/* Options that need accounting. */
	start();
	launch.account = 0;
	give(SUP_OPT_PROFILE, NULL);
	CHECK(resolve(&c) == -1);
	start();
	launch.account = 0;
	launch.heap_limit = "50%";
	CHECK(resolve(&c) == -1);
	/* Not one of the supervisor's. */
	CHECK(sup_config_given(&g, 'h', NULL) == 0);
}

int main(void)
{
	/* Only what the test sets: no MEMFENCE_* of the caller's. */
	clearenv();
	test_defaults();
	test_derived();
	test_environment();
	test_refused();
	return unit_done("test_sup_config");
}
