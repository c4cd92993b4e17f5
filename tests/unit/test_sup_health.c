/*
 * test_sup_health.c - the supervisor's health rules (src/supervisor/health.c)
 * on synthetic samples: readiness from headroom with its grace and
 * hysteresis, at the budget at once, memory pressure, liveness after too
 * long unready, refusals at the budget, the failure share of a window, and
 * the stuck rule. No process, cgroup or socket: the state is filled by hand
 * and the clock is the test's.
 */
#include "supervisor/health.h"
#include "supervisor/model.h"
#include "supervisor/seg.h"
#include "supervisor/state.h"
#include "unit.h"

#define MiB (1ull << 20)
#define T0 100000 /* ms: 0 means "not since" to the rules */

static struct sup_state st;
static struct sup_health h;

static struct sup_health_cfg cfg(void)
{
	return (struct sup_health_cfg){
		.need = 10 * MiB,
		.need_default = 8 * MiB,
		.grace_ms = 1000,
		.hysteresis_pct = 50,
		.live_after_ms = 5000,
		.fail_pct = 50,
		.fail_window_s = 60,
		.fail_min = 10,
		.live_refused_ms = 2000,
		.pressure_pct = 40,
		.stuck_after_ms = 0,
	};
}

static void start(const struct sup_health_cfg *c)
{
	memset(&st, 0, sizeof(st));
	/* A fresh model for each case, saved nowhere. */
	sup_model_start(&st, NULL, NULL, 10);
	st.child_up = 1;
	st.budget = 1000 * MiB;
	st.usable = 500 * MiB;
	st.rlimit_pid = 42;
	sup_health_init(&h, c);
}

static void eval(uint64_t ms)
{
	sup_health_eval(&h, &st, ms, 1000000);
}

static int starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void test_headroom(void)
{
	struct sup_health_cfg c = cfg();

	start(&c);
	eval(T0);
	CHECK(st.health.ready && st.health.live);
	CHECK(starts(st.health.ready_reason, "ready: "));
	CHECK_EQ_U64(st.health.need, 10 * MiB);
	/* Below the need: still ready within the grace, not after it. */
	st.usable = 5 * MiB;
	eval(T0 + 100);
	CHECK(st.health.ready);
	eval(T0 + 1100);
	CHECK(!st.health.ready);
	CHECK_STR(st.health.ready_reason, "not ready: headroom 5 MiB below a request's need 10 MiB for 1.0s");
	CHECK(st.health.live);
	/* Above the need but under need + 50%: not ready yet (no flapping). */
	st.usable = 12 * MiB;
	eval(T0 + 1200);
	CHECK(!st.health.ready);
	st.usable = 16 * MiB;
	eval(T0 + 1300);
	CHECK(st.health.ready);
	/* Back below for live_after: not live either. */
	st.usable = 1 * MiB;
	eval(T0 + 2000);
	eval(T0 + 3000);
	CHECK(!st.health.ready && st.health.live);
	eval(T0 + 8000);
	CHECK(!st.health.live);
	CHECK(starts(st.health.live_reason, "not live: not ready for"));
	/* A program that is not running is not ready, whatever the headroom. */
	st.usable = 500 * MiB;
	st.child_up = 0;
	eval(T0 + 9000);
	CHECK(!st.health.ready);
	CHECK_STR(st.health.ready_reason, "not ready: the program is not running");
}

static void model_scope(const char *name, uint64_t peak, int failed)
{
	struct sup_record r;

	memset(&r, 0, sizeof(r));
	r.end_ns = 1700000000ull * 1000000000ull;
	r.allocated = 10 * peak;   /* what it allocated in all is not its need */
	r.peak = peak;
	r.failed = failed;
	snprintf(r.name, sizeof(r.name), "%s", name);
	sup_model_record(&r);
}

static void test_need(void)
{
	struct sup_health_cfg c = cfg();

	c.need = 0;
	start(&c);
	eval(T0);
	/* Nothing learned yet: the default. */
	CHECK_EQ_U64(st.health.need, 8 * MiB);
	CHECK(!st.health.need_learned);
	/* The need is the model's: p95 of the peaks of every name, once 20
	 * scopes ended without a refusal. */
	for (int i = 0; i < 19; i++)
		model_scope(i % 2 ? "GET /a" : "POST /b", 4 * MiB, 0);
	for (int i = 0; i < 10; i++)
		model_scope("GET /a", 400 * MiB, 1);
	eval(T0 + 100);
	CHECK_EQ_U64(st.health.need, 8 * MiB);
	CHECK(!st.health.need_learned);
	model_scope("GET /a", 4 * MiB, 0);
	eval(T0 + 200);
	CHECK(st.health.need_learned);
	CHECK(st.health.need >= 4 * MiB && st.health.need <= 4 * MiB * 119 / 100);
	for (int i = 0; i < 80; i++)
		model_scope("POST /b", (uint64_t)(1 + i % 20) * MiB, 0);
	eval(T0 + 300);
	CHECK(st.health.need >= 19 * MiB && st.health.need <= 20 * MiB);
	/* The same model the gate asks: its p95 over every name. */
	CHECK_EQ_U64(st.health.need, sup_model_need(NULL, 0.95, 20));
	/* Configured: the model is not asked. */
	c.need = 64 * MiB;
	sup_health_init(&h, &c);
	eval(T0 + 400);
	CHECK_EQ_U64(st.health.need, 64 * MiB);
	CHECK(!st.health.need_learned);
}

static void test_at_budget(void)
{
	struct sup_health_cfg c = cfg();

	start(&c);
	eval(T0);
	CHECK(st.health.ready);
	/* Less than a request's need left under the rlimit: not ready at once. */
	st.rlimit_used = st.budget - 5 * MiB;
	eval(T0 + 10);
	CHECK(!st.health.ready && st.health.live);
	CHECK(starts(st.health.ready_reason, "not ready: process 42 at its budget"));
	/* Refusals again and again at the budget for live_refused: not live. */
	st.failed[0] = 1;
	eval(T0 + 100);
	CHECK_EQ_U64(st.health.refusals_new, 1);
	CHECK(st.health.live);
	st.failed[0] = 2;
	eval(T0 + 1100);
	CHECK(st.health.live);
	st.failed[0] = 3;
	eval(T0 + 2100);
	CHECK(!st.health.live);
	CHECK(starts(st.health.live_reason, "not live: allocations refused for 2.0s"));
	/* Room again above need + hysteresis: ready, live. */
	st.rlimit_used = st.budget - 100 * MiB;
	eval(T0 + 2200);
	CHECK(st.health.ready && st.health.live);
}

static void test_pressure(void)
{
	struct sup_health_cfg c = cfg();

	start(&c);
	st.psi_ok = 1;
	st.psi.has_full = 1;
	st.psi.full.avg10 = 55.0;
	eval(T0);
	CHECK(st.health.ready);
	eval(T0 + 1000);
	CHECK(!st.health.ready && st.health.live);
	CHECK(starts(st.health.ready_reason, "not ready: memory pressure full avg10 55.00%"));
	st.psi.full.avg10 = 39.0;
	eval(T0 + 1100);
	CHECK(st.health.ready);
	/* Off: no pressure makes it unready. */
	c.pressure_pct = 0;
	start(&c);
	st.psi_ok = 1;
	st.psi.has_full = 1;
	st.psi.full.avg10 = 100.0;
	eval(T0);
	eval(T0 + 5000);
	CHECK(st.health.ready);
}

static void record(uint64_t sec, int failed)
{
	struct sup_record r;

	memset(&r, 0, sizeof(r));
	r.end_ns = sec * 1000000000ull;
	r.allocated = r.peak = 1 * MiB;
	r.failed = failed;
	snprintf(r.name, sizeof(r.name), "GET /");
	sup_health_record(&h, &r);
}

static void test_fail_window(void)
{
	struct sup_health_cfg c = cfg();

	start(&c);
	/* 9 scopes, every one failed: fewer than fail_min, live. */
	for (int i = 0; i < 9; i++)
		record(1000000 - 5, 1);
	eval(T0);
	CHECK(st.health.live);
	CHECK_EQ_U64(st.health.window_ended, 9);
	CHECK_EQ_U64(st.health.window_failed, 9);
	/* A tenth, not failed: 9 of 10 at or above 50%. */
	record(1000000, 0);
	eval(T0 + 100);
	CHECK(!st.health.live);
	CHECK_STR(st.health.live_reason, "not live: 9 of 10 scopes failed on allocation in the last 60s");
	/* Out of the window, they no longer count. */
	sup_health_eval(&h, &st, T0 + 200, 1000000 + 59);
	CHECK(st.health.live);
	CHECK_EQ_U64(st.health.window_ended, 1);
}

static void test_stuck(void)
{
	struct sup_health_cfg c = cfg();

	c.stuck_after_ms = 3000;
	start(&c);
	st.rlimit_used = st.budget - 1 * MiB;
	st.scopes_in_flight = 0;
	eval(T0);
	CHECK(!st.health.ready && !st.health.stuck);
	eval(T0 + 2900);
	CHECK(!st.health.stuck);
	/* Not ready for memory, nothing in flight, for stuck_after: stuck,
	 * and the process named is the one at its budget. */
	eval(T0 + 3000);
	CHECK(st.health.stuck);
	CHECK_EQ_U64(st.health.stuck_pid, 42);
	CHECK(starts(st.health.stuck_reason, "not ready for 3.0s, 0 scopes in flight, process 42"));
	/* Without recycling, a stuck program is not live. */
	CHECK(!st.health.live);
	CHECK(starts(st.health.live_reason, "not live: stuck: "));
	/* With recycling, the recycle replaces it: liveness stays. */
	st.recycle.on = 1;
	eval(T0 + 3100);
	CHECK(st.health.stuck && st.health.live);

	/* Scopes in flight: not idle, so not stuck before live_after. */
	start(&c);
	st.rlimit_used = st.budget - 1 * MiB;
	st.scopes_in_flight = 2;
	eval(T0);
	eval(T0 + 4000);
	CHECK(!st.health.stuck);
	eval(T0 + 5000);
	CHECK(st.health.stuck);

	/* Another process at its budget: its own time starts over. */
	start(&c);
	st.rlimit_used = st.budget - 1 * MiB;
	eval(T0);
	eval(T0 + 2000);
	st.rlimit_pid = 43;
	eval(T0 + 3000);
	CHECK(!st.health.stuck);
	eval(T0 + 6000);
	CHECK(st.health.stuck);
	CHECK_EQ_U64(st.health.stuck_pid, 43);

	/* Off: never stuck. */
	c.stuck_after_ms = 0;
	start(&c);
	st.rlimit_used = st.budget - 1 * MiB;
	eval(T0);
	eval(T0 + 100000);
	CHECK(!st.health.stuck);
}

int main(void)
{
	test_headroom();
	test_need();
	test_at_budget();
	test_pressure();
	test_fail_window();
	test_stuck();
	return unit_done("test_sup_health");
}
