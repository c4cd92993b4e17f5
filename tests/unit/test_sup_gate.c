/*
 * test_sup_gate.c - the needs the supervisor publishes at the admission
 * gate (sup_gate_need, src/supervisor/gate.c), learned from finished scopes
 * through the one model (src/supervisor/model.c): none before min_count
 * peaks of a name, then the configured quantile of its peaks; refused
 * scopes left out; names cleaned as the model records them. No segment:
 * the gate's settings are kept even when no segment has room for them.
 */
#include "supervisor/gate.h"
#include "supervisor/model.h"
#include "supervisor/seg.h"
#include "supervisor/state.h"
#include "unit.h"

#define MiB (1ull << 20)

static struct sup_state st;
static struct sup_seg seg;

static void scope(const char *name, uint64_t peak, int failed)
{
	struct sup_record r;

	memset(&r, 0, sizeof(r));
	r.end_ns = 1700000000ull * 1000000000ull;
	r.allocated = r.peak = peak;
	r.failed = failed;
	snprintf(r.name, sizeof(r.name), "%s", name);
	sup_model_record(&r);
}

static void start(double q, uint32_t min_count)
{
	struct sup_gate_cfg g = {.on = 1, .quantile = q, .min_count = min_count};

	memset(&st, 0, sizeof(st));
	memset(&seg, 0, sizeof(seg));
	sup_model_start(&st, NULL, NULL, 10);
	sup_gate_start(&seg, &g);
}

static void test_learned(void)
{
	uint64_t need;

	start(0.9, 10);
	for (int i = 0; i < 9; i++)
		scope("GET /a", 10 * MiB, 0);
	/* Nine peaks: not learned, the shim keeps its default. */
	CHECK_EQ_U64(sup_gate_need("GET /a"), 0);
	scope("GET /a", 10 * MiB, 0);
	need = sup_gate_need("GET /a");
	/* The upper edge of its bucket: never below, at most 19 % above. */
	CHECK(need >= 10 * MiB && need <= 10 * MiB * 119 / 100);
	/* A refused scope stopped where it was refused: not a need. */
	for (int i = 0; i < 5; i++)
		scope("GET /a", 900 * MiB, 1);
	CHECK_EQ_U64(sup_gate_need("GET /a"), need);
	/* Another name learns on its own. */
	CHECK_EQ_U64(sup_gate_need("POST /b"), 0);
	CHECK_EQ_U64(sup_gate_need("never seen"), 0);
}

static void test_quantile(void)
{
	uint64_t p50, p100;

	start(0.5, 10);
	for (uint64_t i = 1; i <= 100; i++)
		scope("batch", i * MiB, 0);
	p50 = sup_gate_need("batch");
	CHECK(p50 >= 50 * MiB && p50 <= 50 * MiB * 119 / 100);
	start(1.0, 10);
	for (uint64_t i = 1; i <= 100; i++)
		scope("batch", i * MiB, 0);
	p100 = sup_gate_need("batch");
	CHECK_EQ_U64(p100, 100 * MiB);
	/* min_count 0 is one: the first peak is a need. */
	start(1.0, 0);
	scope("one", 3 * MiB, 0);
	CHECK_EQ_U64(sup_gate_need("one"), 3 * MiB);
}

static void test_names(void)
{
	start(1.0, 1);
	/* A name with a byte JSON and Prometheus cannot hold is cleaned when
	 * recorded; the shim asks with the name as the program wrote it. */
	scope("GET /\x01x", 4 * MiB, 0);
	CHECK_EQ_U64(sup_gate_need("GET /\x01x"), 4 * MiB);
	/* Scopes without a name are "(unnamed)". */
	scope("", 2 * MiB, 0);
	CHECK_EQ_U64(sup_gate_need(""), 2 * MiB);
}

int main(void)
{
	test_learned();
	test_quantile();
	test_names();
	return unit_done("test_sup_gate");
}
