/*
 * test_lines.c - the budget and the lines below a limit (base/lines.c),
 * which the plan, the shim's process and container policies, the gate and
 * `memfence diagnose` all take from there: the edges (no limit, a reserve
 * at or past the limit, a reserve of 0, the top of the range) included.
 */
#include <stdint.h>

#include "base/lines.h"
#include "unit.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static void check_lines(struct mf_lines l, uint64_t soft, uint64_t hard, uint64_t last)
{
	CHECK_EQ_U64(l.soft, soft);
	CHECK_EQ_U64(l.hard, hard);
	CHECK_EQ_U64(l.last, last);
}

static void test_budget(void)
{
	CHECK_EQ_U64(mf_budget(1 * GiB, 124 * MiB), 900 * MiB);
	CHECK_EQ_U64(mf_budget(1 * GiB, 0), 1 * GiB);
	/* Nothing left, or nothing known: no budget, never a wrapped one. */
	CHECK_EQ_U64(mf_budget(1 * GiB, 1 * GiB), 0);
	CHECK_EQ_U64(mf_budget(1 * GiB, 2 * GiB), 0);
	CHECK_EQ_U64(mf_budget(0, 0), 0);
	CHECK_EQ_U64(mf_budget(0, 64 * MiB), 0);
	CHECK_EQ_U64(mf_budget(UINT64_MAX, 1), UINT64_MAX - 1);
	CHECK_EQ_U64(mf_budget(UINT64_MAX, UINT64_MAX), 0);
}

static void test_lines_below(void)
{
	/* The container's: at the reserve, half of it, a quarter of it. */
	check_lines(mf_lines_below(1 * GiB, 124 * MiB), 900 * MiB, 962 * MiB, 993 * MiB);
	/* The process's default: a quarter of the limit as the guard. */
	check_lines(mf_lines_below(512 * MiB, mf_pressure_guard(512 * MiB)), 384 * MiB,
		    448 * MiB, 480 * MiB);
	/* A guard past the limit is the limit: soft at 0, hard at half. */
	check_lines(mf_lines_below(1 * GiB, 2 * GiB), 0, 512 * MiB, 768 * MiB);
	check_lines(mf_lines_below(1 * GiB, UINT64_MAX), 0, 512 * MiB, 768 * MiB);
	/* No guard: every line at the limit. */
	check_lines(mf_lines_below(1 * GiB, 0), 1 * GiB, 1 * GiB, 1 * GiB);
	/* No limit (unknown, or nothing to protect): off. */
	check_lines(mf_lines_below(0, 0), 0, 0, 0);
	check_lines(mf_lines_below(0, 64 * MiB), 0, 0, 0);
	/* The top of the range: nothing wraps. */
	check_lines(mf_lines_below(UINT64_MAX, 0), UINT64_MAX, UINT64_MAX, UINT64_MAX);
	check_lines(mf_lines_below(UINT64_MAX, UINT64_MAX), 0, UINT64_MAX - UINT64_MAX / 2,
		    UINT64_MAX - UINT64_MAX / 4);
	/* Tiny figures: ordered, never past the limit. */
	for (uint64_t limit = 1; limit < 64; limit++)
		for (uint64_t guard = 0; guard <= limit + 1; guard++) {
			struct mf_lines l = mf_lines_below(limit, guard);

			CHECK(l.soft <= l.hard && l.hard <= l.last && l.last <= limit);
		}
}

static void test_gate_line(void)
{
	/* The gate admits against the process's soft line. */
	CHECK_EQ_U64(mf_gate_line(448 * MiB), 336 * MiB);
	CHECK_EQ_U64(mf_gate_line(448 * MiB),
		     mf_lines_below(448 * MiB, mf_pressure_guard(448 * MiB)).soft);
	CHECK_EQ_U64(mf_gate_line(0), 0);
	CHECK_EQ_U64(mf_gate_fit(mf_gate_line(448 * MiB), 36 * MiB, 100 * MiB), 3);
	CHECK_EQ_U64(mf_gate_fit(100 * MiB, 200 * MiB, 1), 0);
	CHECK_EQ_U64(mf_gate_fit(100 * MiB, 0, 0), 0);
}

int main(void)
{
	test_budget();
	test_lines_below();
	test_gate_line();
	return unit_done("test_lines");
}
