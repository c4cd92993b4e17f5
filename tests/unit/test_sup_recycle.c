/*
 * test_sup_recycle.c - the supervisor's recycle rules
 * (sup_recycle_rules, src/supervisor/recycle.c) on synthetic samples: which
 * reason wins (stuck, then a process's request, then the leak forecast),
 * the least interval between recycles (which a stuck program ignores), and
 * which process is replaced. No process is signalled and no directory read:
 * requests come from the test.
 */
#include "supervisor/recycle.h"
#include "supervisor/state.h"
#include "unit.h"

#define MiB (1ull << 20)
#define T0 1000000

static struct sup_state st;
static struct sup_recycle_cfg c;
static int takes;
static pid_t take_pid;

static int take(void *ctx, pid_t *pid, char *why, size_t whylen)
{
	(void)ctx;
	takes++;
	if (!take_pid)
		return 0;
	*pid = take_pid;
	snprintf(why, whylen, "a failed scope left the process unclean");
	return 1;
}

static void start(void)
{
	memset(&st, 0, sizeof(st));
	st.child_up = 1;
	st.child_pid = 100;
	st.recycle.threshold_s = 300;
	st.model.forecast_s = -1;
	/* A pre-fork server: the arbiter and two workers, 102 the largest. */
	st.nprocs = 3;
	st.procs[0] = (struct sup_proc){.pid = 100, .alive = 1, .live = 5 * MiB};
	st.procs[1] = (struct sup_proc){.pid = 101, .alive = 1, .live = 50 * MiB};
	st.procs[2] = (struct sup_proc){.pid = 102, .alive = 1, .live = 80 * MiB};
	c = (struct sup_recycle_cfg){.on = 1, .before_s = 300, .min_interval_ms = 60000};
	takes = 0;
	take_pid = 0;
}

static void leaking(int64_t forecast_s)
{
	st.model.leaking = 1;
	st.model.forecast_s = forecast_s;
	st.model.floor = 100 * MiB;
	st.model.recent_slope = 1.0 * MiB;
	st.model.target = 400 * MiB;
}

static void test_leak(void)
{
	struct sup_recycle_pick p;

	start();
	CHECK(!sup_recycle_rules(&c, &st, 0, T0, take, NULL, &p));
	CHECK_EQ_U64(takes, 1);
	/* A forecast beyond the threshold is not a reason yet. */
	leaking(301);
	CHECK(!sup_recycle_rules(&c, &st, 0, T0, take, NULL, &p));
	leaking(299);
	CHECK(sup_recycle_rules(&c, &st, 0, T0, take, NULL, &p));
	CHECK_EQ_U64(p.reason, SUP_RECYCLE_LEAK);
	CHECK_EQ_U64(p.pid, 102);
	CHECK_STR(p.why, "heap floor 100 MiB rising 1 MiB/s, reaches 400 MiB in 299s");
	/* A leak verdict without a forecast is no reason either. */
	leaking(-1);
	CHECK(!sup_recycle_rules(&c, &st, 0, T0, take, NULL, &p));
	/* Alone (or the program itself the largest of one): the whole program. */
	leaking(10);
	st.procs[1].alive = st.procs[2].alive = 0;
	CHECK(sup_recycle_rules(&c, &st, 0, T0, take, NULL, &p));
	CHECK_EQ_U64(p.pid, 100);
}

static void test_interval(void)
{
	struct sup_recycle_pick p;

	start();
	leaking(10);
	take_pid = 101;
	/* Within min_interval of the last one: nothing, no request taken
	 * (it waits in its directory). */
	CHECK(!sup_recycle_rules(&c, &st, T0 - 59999, T0, take, NULL, &p));
	CHECK_EQ_U64(takes, 0);
	/* Past it: the request first, then the leak. */
	CHECK(sup_recycle_rules(&c, &st, T0 - 60000, T0, take, NULL, &p));
	CHECK_EQ_U64(p.reason, SUP_RECYCLE_UNCLEAN);
	CHECK_EQ_U64(p.pid, 101);
	CHECK_STR(p.why, "a failed scope left the process unclean");
	take_pid = 0;
	CHECK(sup_recycle_rules(&c, &st, T0 - 60000, T0, take, NULL, &p));
	CHECK_EQ_U64(p.reason, SUP_RECYCLE_LEAK);
	/* No directory to take requests from. */
	CHECK(sup_recycle_rules(&c, &st, 0, T0, NULL, NULL, &p));
	CHECK_EQ_U64(p.reason, SUP_RECYCLE_LEAK);
}

static void test_stuck(void)
{
	struct sup_recycle_pick p;

	start();
	leaking(10);
	take_pid = 101;
	st.health.stuck = 1;
	st.health.stuck_pid = 101;
	snprintf(st.health.stuck_reason, sizeof(st.health.stuck_reason), "not ready for 15.0s");
	/* Stuck wins over a request and the leak, even within min_interval:
	 * a stuck process serves nobody. */
	CHECK(sup_recycle_rules(&c, &st, T0 - 1, T0, take, NULL, &p));
	CHECK_EQ_U64(p.reason, SUP_RECYCLE_STUCK);
	CHECK_EQ_U64(p.pid, 101);
	CHECK_STR(p.why, "not ready for 15.0s");
	CHECK_EQ_U64(takes, 0);
	/* The process named is gone: the largest is replaced. */
	st.procs[1].alive = 0;
	CHECK(sup_recycle_rules(&c, &st, 0, T0, take, NULL, &p));
	CHECK_EQ_U64(p.pid, 102);
	/* Stuck without a process named (headroom): the largest too. */
	st.health.stuck_pid = 0;
	CHECK(sup_recycle_rules(&c, &st, 0, T0, take, NULL, &p));
	CHECK_EQ_U64(p.pid, 102);
}

static void test_off(void)
{
	struct sup_recycle_pick p;

	start();
	leaking(10);
	st.health.stuck = 1;
	c.on = 0;
	CHECK(!sup_recycle_rules(&c, &st, 0, T0, take, NULL, &p));
	c.on = 1;
	st.child_up = 0;
	CHECK(!sup_recycle_rules(&c, &st, 0, T0, take, NULL, &p));
	st.child_up = 1;
	st.child_stopped = 19;     /* SIGSTOP: not the program's doing */
	CHECK(!sup_recycle_rules(&c, &st, 0, T0, take, NULL, &p));
	CHECK_EQ_U64(takes, 0);
}

int main(void)
{
	test_leak();
	test_interval();
	test_stuck();
	test_off();
	return unit_done("test_sup_recycle");
}
