/*
 * test_diagnose.c - verdicts from made-up models, scopes in flight and
 * post-mortems: each of the shapes gets its verdict and not the others',
 * memory outside the heap is never called a leak, --since forgets, and the
 * JSON keeps its promised keys.
 */
#include <stdlib.h>
#include <string.h>

#include "base/lines.h"
#include "host/diagnose.h"
#include "host/model_json.h"
#include "unit.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define T0 1800000000ull

static struct mf_model M;
static struct mf_diag D;

static void run(uint64_t limit, uint64_t budget, const struct mf_diag_death *deaths, uint32_t nd,
		uint64_t since)
{
	struct mf_diag_input in = {.model = &M, .limit = limit, .budget = budget,
				   .now_s = T0 + 1000, .since_s = since, .deaths = deaths,
				   .ndeaths = nd};

	CHECK(mf_diagnose(&in, &D) == 0);
}

static int has(enum mf_verdict v)
{
	for (uint32_t i = 0; i < D.nverdicts; i++)
		if (D.verdict[i] == v)
			return 1;
	return 0;
}

/* 300 ordinary calls of 4-12 MiB that free what they take, one a second;
 * the heap sampled each second with live(t) and the load of 4 scopes. */
static void ordinary(uint64_t (*live)(uint64_t t), int64_t keep)
{
	mf_model_init(&M, 10);
	for (uint64_t t = 0; t < 300; t++) {
		struct mf_model_sample s = {.t_s = T0 + t, .live = live(t), .in_flight = 4,
					    .load = 30 * MiB, .load_top = 10 * MiB,
					    .working_set = live(t) + 40 * MiB};
		mf_model_sample(&M, &s);
		mf_model_scope(&M, "/svc/Get", "r", (4 + t % 9) * MiB, keep, 0, T0 + t);
	}
}

/* A sample at T0 + t with n scopes in flight holding load (the largest
 * top) while `waited` requests were admitted after waiting at the gate,
 * `queue` waited and `admitted` were in. */
static struct mf_model_sample gated(uint64_t t, uint64_t live, uint32_t n, uint64_t load,
				    uint64_t top, uint64_t ws, uint64_t waited, uint32_t queue,
				    uint32_t admitted)
{
	return (struct mf_model_sample){.t_s = T0 + t, .live = live, .in_flight = n, .load = load,
					.load_top = top, .working_set = ws, .gate_waited = waited,
					.gate_queue = queue, .gate_admitted = admitted};
}

static uint64_t flat(uint64_t t) { return 60 * MiB + (t % 5) * MiB; }
static uint64_t rising(uint64_t t) { return 60 * MiB + t * 256 * KiB + (t % 5) * MiB; }

static void test_healthy(void)
{
	ordinary(flat, 0);
	run(512 * MiB, 448 * MiB, NULL, 0, 0);
	CHECK_EQ_U64(D.nverdicts, 1);
	CHECK(D.verdict[0] == MF_VERDICT_HEALTHY);
	CHECK(!mf_diag_problem(&D));
	CHECK_EQ_U64(D.scopes, 300);
	CHECK(D.need_p95 >= 12 * MiB && D.need_p95 <= 15 * MiB);
	/* What the gate admits: under its line (the soft line, 336 MiB), the
	 * floor (30 MiB) held outside requests; the whole budget over the
	 * need said 29 to 38. */
	CHECK(D.fit >= 20 && D.fit <= 26);
	CHECK_EQ_U64(D.fit, mf_gate_fit(mf_gate_line(448 * MiB), D.leak.floor_last, D.need_p95));
}

static void test_leak(void)
{
	char lines[MF_DIAG_LINES][MF_DIAG_LINE];

	ordinary(rising, (int64_t)(256 * KiB));
	run(512 * MiB, 448 * MiB, NULL, 0, 0);
	CHECK(D.verdict[0] == MF_VERDICT_LEAK);
	CHECK(!has(MF_VERDICT_AGGREGATE) && !has(MF_VERDICT_OVERSIZED) && !has(MF_VERDICT_OUTSIDE));
	CHECK(mf_diag_problem(&D));
	CHECK_EQ_U64(D.nretainers, 1);
	CHECK_STR(D.retainers[0].name, "/svc/Get");
	CHECK_EQ_U64((uint64_t)D.retainers[0].median_retained, 256 * KiB);
	CHECK(D.leak.leaking && D.leak.forecast_s > 0);
	unsigned n = mf_diag_evidence(&D, MF_VERDICT_LEAK, lines, MF_DIAG_LINES);
	CHECK(n >= 3);
	CHECK(strstr(lines[2], "/svc/Get keeps 256 KiB per call") != NULL);

	/* The same calls keeping memory, but the floor flat (a cache that
	 * filled): no leak. */
	ordinary(flat, (int64_t)(256 * KiB));
	run(512 * MiB, 448 * MiB, NULL, 0, 0);
	CHECK(!has(MF_VERDICT_LEAK));
}

static void test_oversized(void)
{
	char lines[MF_DIAG_LINES][MF_DIAG_LINE];

	ordinary(flat, 0);
	mf_model_scope(&M, "/svc/Get", "big-1", 300 * MiB, 0, 1, T0 + 100);
	mf_model_scope(&M, "/svc/Get", "big-2", 500 * MiB, 0, 0, T0 + 200);
	run(512 * MiB, 448 * MiB, NULL, 0, 0);
	CHECK(D.verdict[0] == MF_VERDICT_OVERSIZED);
	CHECK(!has(MF_VERDICT_AGGREGATE) && !has(MF_VERDICT_LEAK));
	CHECK_EQ_U64(D.noversized, 2);
	CHECK_STR(D.big[0].id, "big-2");
	CHECK(D.big[0].over_budget && !D.big[1].over_budget);
	CHECK(D.big[1].refused);
	CHECK(D.big[1].p95 >= 12 * MiB && D.big[1].p95 <= 15 * MiB);
	CHECK_EQ_U64(D.refused_ordinary, 0);
	unsigned n = mf_diag_evidence(&D, MF_VERDICT_OVERSIZED, lines, MF_DIAG_LINES);
	CHECK(n == 3);
	CHECK(strstr(lines[0], "id big-2") && strstr(lines[0], "more than the whole budget"));
	CHECK(strstr(lines[1], "refused after reaching 300 MiB") != NULL);

	/* --since after them: forgotten. */
	run(512 * MiB, 448 * MiB, NULL, 0, T0 + 250);
	CHECK(!has(MF_VERDICT_OVERSIZED));
	CHECK(D.scopes == 302);   /* distributions cover the whole history */
}

static void test_aggregate(void)
{
	ordinary(flat, 0);
	/* A burst: 14 ordinary scopes hold 150 MiB together; ordinary ones
	 * are refused. */
	for (uint64_t t = 300; t < 330; t++) {
		struct mf_model_sample s = {.t_s = T0 + t, .live = 180 * MiB, .in_flight = 14,
					    .load = 150 * MiB, .load_top = 12 * MiB,
					    .working_set = 230 * MiB};
		mf_model_sample(&M, &s);
		mf_model_scope(&M, "/svc/Get", "r", 11 * MiB, 0, t % 3 == 0, T0 + t);
	}
	run(256 * MiB, 192 * MiB, NULL, 0, 0);
	CHECK(D.verdict[0] == MF_VERDICT_AGGREGATE);
	CHECK(!has(MF_VERDICT_OVERSIZED) && !has(MF_VERDICT_LEAK) && !has(MF_VERDICT_OUTSIDE));
	CHECK_EQ_U64(D.agg_n, 14);
	CHECK_EQ_U64(D.agg_load, 150 * MiB);
	CHECK_EQ_U64(D.refused_ordinary, 10);
	CHECK(D.fit >= 7 && D.fit <= 10);

	/* One scope holding most of it is not aggregate load. */
	ordinary(flat, 0);
	for (uint64_t t = 300; t < 330; t++) {
		struct mf_model_sample s = {.t_s = T0 + t, .live = 180 * MiB, .in_flight = 4,
					    .load = 150 * MiB, .load_top = 130 * MiB,
					    .working_set = 230 * MiB};
		mf_model_sample(&M, &s);
	}
	mf_model_scope(&M, "/svc/Get", "huge", 130 * MiB, 0, 1, T0 + 320);
	run(256 * MiB, 192 * MiB, NULL, 0, 0);
	CHECK(D.verdict[0] == MF_VERDICT_OVERSIZED);
	CHECK(!has(MF_VERDICT_AGGREGATE));
}

/* Under the admission gate aggregate load refuses nothing: requests wait.
 * The waits, with many ordinary scopes holding the memory, are the
 * verdict; a few waits under a light load are not. */
static void test_aggregate_gated(void)
{
	char lines[MF_DIAG_LINES][MF_DIAG_LINE];
	struct mf_diag_gate now = {.waited = 0, .queue = 5, .admitted = 9};
	unsigned n;

	ordinary(flat, 0);
	for (uint64_t t = 300; t < 330; t++) {
		struct mf_model_sample s =
			gated(t, 150 * MiB, 8, 130 * MiB, 18 * MiB, 200 * MiB, 4, 6, 8);
		s.gate_hist[6] = 3;   /* 100-250 ms */
		s.gate_hist[9] = 1;   /* 1-2.5 s */
		mf_model_sample(&M, &s);
		mf_model_scope(&M, "/svc/Get", "r", 16 * MiB, 0, 0, T0 + t);
	}
	run(256 * MiB, 192 * MiB, NULL, 0, 0);
	CHECK(D.verdict[0] == MF_VERDICT_AGGREGATE);
	CHECK(!D.weak[MF_VERDICT_AGGREGATE]);
	CHECK(!has(MF_VERDICT_OVERSIZED) && !has(MF_VERDICT_LEAK) && !has(MF_VERDICT_OUTSIDE));
	CHECK_EQ_U64(D.refused, 0);
	CHECK_EQ_U64(D.gate_waited, 120);
	CHECK_EQ_U64(D.gate_p50_ms, 250);
	CHECK_EQ_U64(D.gate_p99_ms, 2500);
	CHECK_EQ_U64(D.gate_full_n, 8);
	CHECK_EQ_U64(D.gate_queue_max, 6);
	n = mf_diag_evidence(&D, MF_VERDICT_AGGREGATE, lines, MF_DIAG_LINES);
	CHECK(n >= 4);
	CHECK(strstr(lines[2], "120 request(s) waited at the admission gate") != NULL);
	CHECK(strstr(lines[2], "p50 under 250 ms, p99 under 2500 ms") != NULL);
	CHECK(strstr(lines[3], "8 were admitted at once") != NULL);

	/* Live: the segment's counters are ahead of the model's last save,
	 * and say who waits now. */
	{
		struct mf_diag_input in = {.model = &M, .limit = 256 * MiB, .budget = 192 * MiB,
					   .now_s = T0 + 331, .have_now = 1, .gate = &now};
		now.waited = 150;
		now.timed_out = 2;
		now.hist[6] = 150;
		CHECK(mf_diagnose(&in, &D) == 0);
		CHECK(D.verdict[0] == MF_VERDICT_AGGREGATE);
		CHECK_EQ_U64(D.gate_waited, 150);
		CHECK_EQ_U64(D.gate_timed_out, 2);
		CHECK_EQ_U64(D.gate_p99_ms, 250);
		CHECK(D.gate_now && D.gate_queue_now == 5 && D.gate_admitted_now == 9);
		json_t *j = mf_diag_json(&D);
		json_t *g = json_object_get(json_object_get(json_object_get(j, "evidence"),
							    "aggregate"),
					    "gate");
		CHECK(json_integer_value(json_object_get(g, "waited")) == 150);
		CHECK(json_integer_value(json_object_get(g, "timed_out")) == 2);
		CHECK(json_integer_value(json_object_get(g, "wait_p99_ms")) == 250);
		CHECK(json_integer_value(json_object_get(g, "concurrency")) == 8);
		CHECK(json_integer_value(json_object_get(g, "queue_now")) == 5);
		CHECK(json_integer_value(json_object_get(json_object_get(j, "context"),
							 "gate_waited")) == 150);
		json_decref(j);
	}

	/* --since after the burst: its waits are forgotten. */
	run(256 * MiB, 192 * MiB, NULL, 0, T0 + 340);
	CHECK_EQ_U64(D.gate_waited, 0);
	CHECK(!has(MF_VERDICT_AGGREGATE));

	/* A few requests waited at the start (the gate's default need) while
	 * four small ones were in flight: healthy, the waits said. */
	ordinary(flat, 0);
	{
		struct mf_model_sample s = {.t_s = T0 + 300, .live = 60 * MiB, .in_flight = 4,
					    .load = 30 * MiB, .load_top = 10 * MiB,
					    .working_set = 100 * MiB, .gate_waited = 3,
					    .gate_queue = 1, .gate_admitted = 4};
		s.gate_hist[2] = 3;
		mf_model_sample(&M, &s);
	}
	run(512 * MiB, 448 * MiB, NULL, 0, 0);
	CHECK_EQ_U64(D.nverdicts, 1);
	CHECK(D.verdict[0] == MF_VERDICT_HEALTHY);
	n = mf_diag_evidence(&D, MF_VERDICT_HEALTHY, lines, MF_DIAG_LINES);
	CHECK(strstr(lines[n - 2], "3 request(s) waited at the admission gate") != NULL);
}

/* Requests refused early for outgrowing their kind (issue: the demo's
 * 3000 MiB requests stopped at 1.3-2x the p95 read as ordinary): named
 * oversized by the rule that refused them, whatever their peak; an
 * ordinary scope refused as the largest under pressure is not. */
static void test_refused_early(void)
{
	char lines[MF_DIAG_LINES][MF_DIAG_LINE];
	struct mf_model_why gate = {.rule = MF_RULE_GATE, .asked = 19 * MiB, .need = 14 * MiB};
	struct mf_model_why press = {.rule = MF_RULE_PRESSURE, .asked = 30 * MiB};
	struct mf_model_why ordinary_press = {.rule = MF_RULE_PRESSURE, .asked = 13 * MiB};

	ordinary(flat, 0);
	mf_model_scope_why(&M, "/svc/Get", "big-1", 18 * MiB, 0, 1, T0 + 100, &gate);
	mf_model_scope_why(&M, "/svc/Get", "big-2", 29 * MiB, 0, 1, T0 + 150, &press);
	mf_model_scope_why(&M, "/svc/Get", "r-7", 12 * MiB, 0, 1, T0 + 200, &ordinary_press);
	run(512 * MiB, 448 * MiB, NULL, 0, 0);
	CHECK(D.verdict[0] == MF_VERDICT_OVERSIZED);
	CHECK(!has(MF_VERDICT_LEAK));
	CHECK_EQ_U64(D.noversized, 2);
	CHECK(D.big[0].outgrew && D.big[1].outgrew);
	CHECK(D.big[0].rule == MF_RULE_PRESSURE || D.big[1].rule == MF_RULE_PRESSURE);
	CHECK_EQ_U64(D.refused_ordinary, 1);
	unsigned n = mf_diag_evidence(&D, MF_VERDICT_OVERSIZED, lines, MF_DIAG_LINES);
	CHECK(n == 3);
	CHECK(strstr(lines[0], "by the admission gate") != NULL ||
	      strstr(lines[1], "by the admission gate") != NULL);
	json_t *j = mf_diag_json(&D);
	json_t *sc = json_object_get(json_object_get(json_object_get(j, "evidence"), "oversized"),
				     "scopes");
	CHECK(json_array_size(sc) == 2);
	CHECK(json_is_string(json_object_get(json_array_get(sc, 0), "rule")));
	json_decref(j);

	/* Without the rule (an older segment), the same peaks are ordinary. */
	ordinary(flat, 0);
	mf_model_scope(&M, "/svc/Get", "big-1", 18 * MiB, 0, 1, T0 + 100);
	run(512 * MiB, 448 * MiB, NULL, 0, 0);
	CHECK(!has(MF_VERDICT_OVERSIZED));

	/* The model keeps the rule through its JSON. */
	ordinary(flat, 0);
	mf_model_scope_why(&M, "/svc/Get", "big-1", 18 * MiB, 0, 1, T0 + 100, &gate);
	{
		char err[200];
		static struct mf_model back;
		json_t *mj = mf_model_json(&M);

		CHECK(mf_model_from_json(mj, &back, err, sizeof(err)) == 0);
		CHECK(back.nbig >= 1 && back.big[0].rule == MF_RULE_GATE);
		CHECK_EQ_U64(back.big[0].asked, 19 * MiB);
		CHECK_EQ_U64(back.big[0].need, 14 * MiB);
		json_decref(mj);
	}
}

/* Two oversized requests in flight at once among two ordinary ones (two
 * workers of a pre-fork server): many together, none dominating, but the
 * moment is theirs, not the load's. */
static void test_two_oversized_at_once(void)
{
	struct mf_model_why press = {.rule = MF_RULE_PRESSURE, .asked = 306 * MiB};

	ordinary(flat, 0);
	for (uint64_t t = 300; t < 303; t++) {
		struct mf_model_sample s = gated(t, 320 * MiB, 4, 300 * MiB, 130 * MiB, 340 * MiB, 0,
						 0, 0);
		mf_model_sample(&M, &s);
	}
	mf_model_scope_why(&M, "/svc/Get", "big-1", 222 * MiB, 0, 1, T0 + 301, &press);
	mf_model_scope_why(&M, "/svc/Get", "big-2", 130 * MiB, 0, 1, T0 + 302, &press);
	run(512 * MiB, 448 * MiB, NULL, 0, 0);
	CHECK(D.verdict[0] == MF_VERDICT_OVERSIZED);
	CHECK(!has(MF_VERDICT_AGGREGATE));
	CHECK_EQ_U64(D.noversized, 2);
}

/* A leak in a short run with many refusals: the refused calls (which free
 * what they had) do not make the median retained per call 0, and two
 * windows whose floor rose by what the calls kept are enough. A cache
 * that filled and stopped is still not a leak. */
static void test_leak_short_refused(void)
{
	mf_model_init(&M, 10);
	for (uint64_t t = 0; t < 25; t++) {
		struct mf_model_sample s = {.t_s = T0 + t, .live = 60 * MiB + t * 2 * MiB,
					    .in_flight = 4, .load = 20 * MiB,
					    .load_top = 6 * MiB};
		mf_model_sample(&M, &s);
		for (int k = 0; k < 8; k++)
			mf_model_scope(&M, "/svc/Get", "r", 6 * MiB,
				       k % 2 ? 0 : (int64_t)(256 * KiB), k % 2, T0 + t);
	}
	run(512 * MiB, 448 * MiB, NULL, 0, 0);
	CHECK(D.leak.windows == 2);
	CHECK(has(MF_VERDICT_LEAK));
	CHECK_EQ_U64(D.nretainers, 1);
	CHECK_EQ_U64((uint64_t)D.retainers[0].median_retained, 256 * KiB);

	/* A cache: every call kept 256 KiB until it was full, then nothing;
	 * the floor rose, then stayed. */
	mf_model_init(&M, 10);
	for (uint64_t t = 0; t < 60; t++) {
		struct mf_model_sample s = {.t_s = T0 + t,
					    .live = 60 * MiB + (t < 20 ? t : 20) * 2 * MiB,
					    .in_flight = 4, .load = 20 * MiB, .load_top = 6 * MiB};
		mf_model_sample(&M, &s);
		for (int k = 0; k < 8; k++)
			mf_model_scope(&M, "/svc/Get", "r", 6 * MiB,
				       t < 20 ? (int64_t)(256 * KiB) : 0, 0, T0 + t);
	}
	run(512 * MiB, 448 * MiB, NULL, 0, 0);
	CHECK(!has(MF_VERDICT_LEAK));
}

/* The gate let one or two large requests in at a time and the others
 * waited: aggregate load, named with its waits, not healthy. */
static void test_gate_absorbed(void)
{
	ordinary(flat, 0);
	for (uint64_t t = 300; t < 330; t++) {
		struct mf_model_sample s =
			gated(t, 190 * MiB, 2, 160 * MiB, 80 * MiB, 140 * MiB, 5, 9, 2);
		s.gate_hist[9] = 5;   /* 1-2.5 s */
		mf_model_sample(&M, &s);
	}
	run(512 * MiB, 448 * MiB, NULL, 0, 0);
	CHECK(D.verdict[0] == MF_VERDICT_AGGREGATE);
	CHECK(!has(MF_VERDICT_HEALTHY));
	CHECK_EQ_U64(D.gate_waited, 150);
	CHECK_EQ_U64(D.gate_full_n, 2);

	/* With requests refused for outgrowing their kind besides (the demo):
	 * both named, the refusals first, since the load only waited. */
	{
		struct mf_model_why gate = {.rule = MF_RULE_GATE, .asked = 30 * MiB,
					    .need = 14 * MiB};

		mf_model_scope_why(&M, "/svc/Get", "big-1", 29 * MiB, 0, 1, T0 + 320, &gate);
		run(512 * MiB, 448 * MiB, NULL, 0, 0);
		CHECK(D.verdict[0] == MF_VERDICT_OVERSIZED);
		CHECK(has(MF_VERDICT_AGGREGATE));
	}
}

/* Ten minutes in compressed time (samples each second, windows of 10 s):
 * two calls a second, each keeping `keep` bytes (with noise of +-60 KiB
 * around it, more than it keeps) until `cap` bytes are kept in all; the
 * floor carries what they kept. Returns the run's diagnosis at t_end. */
static void slow_run(int64_t keep, int64_t cap, uint64_t t_end)
{
	static const int64_t noise[3] = {-60 * (int64_t)KiB, 0, 60 * (int64_t)KiB};
	int64_t kept = 0;

	mf_model_init(&M, 10);
	for (uint64_t t = 0; t < t_end; t++) {
		struct mf_model_sample s = {.t_s = T0 + t,
					    .live = 60 * MiB + (uint64_t)kept + (t % 3) * 5 * MiB,
					    .in_flight = 2, .load = (t % 3) * 5 * MiB,
					    .load_top = (t % 3) * 3 * MiB};
		mf_model_sample(&M, &s);
		for (int k = 0; k < 2; k++) {
			int64_t net = kept < cap ? keep : 0;

			kept += net;
			mf_model_scope(&M, "/svc/Slow", "r", 6 * MiB, net + noise[(t * 2 + k) % 3], 0,
				       T0 + t);
		}
	}
	{
		struct mf_diag_input in = {.model = &M, .limit = 512 * MiB, .budget = 448 * MiB,
					   .now_s = T0 + t_end};
		CHECK(mf_diagnose(&in, &D) == 0);
	}
}

/* A leak of 1 MiB a minute (8.5 KiB per call at two calls a second, under
 * the noise of one call) is named within ten minutes, with its name and
 * what it keeps per call; a cache that fills 5 MiB the same way and then
 * stops is not a leak. */
static void test_slow_leak(void)
{
	const int64_t keep = (int64_t)MiB / 120;

	slow_run(keep, INT64_MAX, 600);
	CHECK(has(MF_VERDICT_LEAK));
	CHECK_EQ_U64(D.nretainers, 1);
	CHECK(strcmp(D.retainers[0].name, "/svc/Slow") == 0);
	CHECK(D.retainers[0].slow);
	CHECK(D.retainers[0].mean_retained > keep * 9 / 10 &&
	      D.retainers[0].mean_retained < keep * 11 / 10);

	slow_run(keep, 5 * (int64_t)MiB, 600);
	CHECK(!has(MF_VERDICT_LEAK));
	CHECK(D.verdict[0] == MF_VERDICT_HEALTHY);

	/* Noise alone keeps nothing. */
	slow_run(0, INT64_MAX, 600);
	CHECK(D.verdict[0] == MF_VERDICT_HEALTHY);
}

static const char *oom_report =
	"{\"memfence_report\": 1, \"time_unix\": 1800000400, \"cause\": \"oom-kill\","
	" \"memory\": {\"limit\": 201326592, \"reserve\": 67108864, \"usage\": 20000000,"
	"   \"working_set\": 19000000},"
	" \"heap\": {\"live\": 0},"
	" \"in_flight_total\": 2,"
	" \"in_flight\": [{\"name\": \"/svc/Get\", \"id\": \"r-9\", \"peak\": 2097152, \"net\": 1048576,"
	"   \"failed\": 0}, {\"name\": \"/svc/Fill\", \"id\": \"f-1\", \"peak\": 65536, \"net\": 4096,"
	"   \"failed\": 1, \"refused_by\": \"gate\", \"asked\": 70000, \"need\": 50000}],"
	" \"timeline\": [{\"t\": 1800000398, \"working_set\": 90000000, \"heap_live\": 20000000},"
	"   {\"t\": 1800000399, \"working_set\": 190000000, \"heap_live\": 21000000},"
	"   {\"t\": 1800000400, \"working_set\": 19000000, \"heap_live\": 0}]}";

static void test_outside(void)
{
	struct mf_diag_death death;
	json_error_t jerr;
	json_t *j = json_loads(oom_report, 0, &jerr);

	CHECK(j != NULL);
	CHECK(mf_diag_death_from_report(j, &death) == 0);
	json_decref(j);
	CHECK_STR(death.cause, "oom-kill");
	CHECK_EQ_U64(death.ws_before, 190000000);
	CHECK_EQ_U64(death.heap_before, 21000000);
	CHECK_EQ_U64(death.nlisted, 2);
	CHECK_STR(death.listed[0].id, "r-9");
	CHECK(death.listed[0].rule == MF_RULE_NONE);
	/* Why an in-flight scope was refused, from the report. */
	CHECK(death.listed[1].rule == MF_RULE_GATE);
	CHECK_EQ_U64(death.listed[1].asked, 70000);
	CHECK_EQ_U64(death.listed[1].need, 50000);
	CHECK_EQ_U64(death.in_flight_sum, 1048576 + 4096);

	ordinary(flat, 0);
	run(192 * MiB, 128 * MiB, &death, 1, 0);
	CHECK(D.verdict[0] == MF_VERDICT_OUTSIDE);
	CHECK(!has(MF_VERDICT_LEAK));
	CHECK(mf_diag_problem(&D));
	CHECK_EQ_U64(D.oom_kills, 1);
	CHECK(D.outside_at_death);
	CHECK_EQ_U64(D.outside, 190000000 - 21000000);

	/* A report that is not one. */
	j = json_loads("{\"x\": 1}", 0, &jerr);
	CHECK(mf_diag_death_from_report(j, &death) == -1);
	json_decref(j);
}

static void test_json(void)
{
	ordinary(rising, (int64_t)(256 * KiB));
	mf_model_scope(&M, "/svc/Get", "big-1", 300 * MiB, 0, 1, T0 + 100);
	run(512 * MiB, 448 * MiB, NULL, 0, 0);
	CHECK(has(MF_VERDICT_LEAK) && has(MF_VERDICT_OVERSIZED));
	/* The refused oversized one comes first: it caused a refusal. */
	CHECK(D.verdict[0] == MF_VERDICT_OVERSIZED);
	json_t *j = mf_diag_json(&D), *v = json_object_get(j, "verdict");
	CHECK(json_array_size(v) == 2);
	CHECK_STR(json_string_value(json_array_get(v, 0)), "oversized");
	CHECK_STR(json_string_value(json_array_get(v, 1)), "leak");
	CHECK(json_is_true(json_object_get(j, "problem")));
	json_t *ev = json_object_get(j, "evidence");
	CHECK(json_array_size(json_object_get(json_object_get(ev, "leak"), "summary")) >= 2);
	CHECK(json_array_size(json_object_get(json_object_get(ev, "leak"), "names")) == 1);
	CHECK(json_array_size(json_object_get(json_object_get(ev, "oversized"), "scopes")) == 1);
	CHECK(json_object_get(ev, "healthy") == NULL);
	CHECK(json_is_integer(json_object_get(json_object_get(j, "context"), "budget")));
	json_decref(j);
	CHECK_STR(mf_verdict_name(MF_VERDICT_OUTSIDE), "outside-heap");
}

int main(void)
{
	test_healthy();
	test_leak();
	test_oversized();
	test_aggregate();
	test_aggregate_gated();
	test_refused_early();
	test_leak_short_refused();
	test_gate_absorbed();
	test_two_oversized_at_once();
	test_slow_leak();
	test_outside();
	test_json();
	return unit_done("test_diagnose");
}
