/*
 * test_model.c - the model of a program's memory: distributions, needs,
 * retained bytes per name, and the leak verdict on the live heap's floor,
 * including the two shapes that must not be called a leak (a cache that
 * fills and stays flat; bursty traffic); aggregate load per window, the
 * oversized candidates and the events of a timeline.
 */
#include <stdlib.h>

#include "host/model.h"
#include "host/model_json.h"
#include "unit.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)

static struct mf_model M;

static void test_dist(void)
{
	struct mf_dist d;

	memset(&d, 0, sizeof(d));
	CHECK_EQ_U64(mf_dist_quantile(&d, 0.95), 0);
	for (uint64_t i = 1; i <= 100; i++)
		mf_dist_add(&d, i * MiB);
	CHECK_EQ_U64(d.count, 100);
	CHECK_EQ_U64(d.max, 100 * MiB);
	/* Bucket upper edges: never below the true quantile, at most 25 %
	 * above it (a quarter power of two). */
	uint64_t p50 = mf_dist_quantile(&d, 0.5), p95 = mf_dist_quantile(&d, 0.95);
	CHECK(p50 >= 50 * MiB && p50 <= 50 * MiB * 5 / 4);
	CHECK(p95 >= 95 * MiB && p95 <= 100 * MiB);
	CHECK_EQ_U64(mf_dist_quantile(&d, 1.0), 100 * MiB);
	/* Small values and huge ones stay in range. */
	mf_dist_add(&d, 0);
	mf_dist_add(&d, 1ull << 50);
	CHECK_EQ_U64(mf_dist_quantile(&d, 1.0), 1ull << 50);
	CHECK(mf_dist_quantile(&d, 0.001) <= 4096);
}

static void test_names(void)
{
	mf_model_init(&M, 0);
	CHECK_EQ_U64(M.window_s, MF_MODEL_WINDOW_S);
	for (int i = 0; i < 40; i++)
		mf_model_scope(&M, "GET /a", "r", (uint64_t)(10 + i % 5) * MiB, 0, 0, 1000 + i);
	mf_model_scope(&M, "GET /a", "big-1", 900 * MiB, 0, 1, 2000);
	for (int i = 0; i < 10; i++)
		mf_model_scope(&M, "POST /b", NULL, 2 * MiB, 0, 0, 1000);

	const struct mf_model_name *a = mf_model_find(&M, "GET /a");
	CHECK(a != NULL);
	CHECK_EQ_U64(a->count, 41);
	CHECK_EQ_U64(a->failed, 1);
	/* The refused one stopped short of its need: not in the peaks. */
	CHECK_EQ_U64(a->peak.count, 40);
	CHECK_EQ_U64(a->max_peak, 900 * MiB);
	CHECK_STR(a->max_id, "big-1");
	CHECK(a->max_failed == 1);
	CHECK_EQ_U64(a->first_s, 1000);
	CHECK_EQ_U64(a->last_s, 2000);
	/* The p90 need of /a ignores the one oversized request. */
	uint64_t need = mf_model_need(&M, "GET /a", 0.9, 20);
	CHECK(need >= 14 * MiB && need <= 18 * MiB);
	/* Too few scopes of /b: no need learned yet. */
	CHECK_EQ_U64(mf_model_need(&M, "POST /b", 0.9, 20), 0);
	CHECK_EQ_U64(mf_model_need(&M, "nope", 0.9, 0), 0);
	/* Refused scopes do not count toward the scopes a need rests on. */
	for (int i = 0; i < 12; i++)
		mf_model_scope(&M, "PUT /c", NULL, 5 * MiB, 0, i >= 4, 1000);
	CHECK_EQ_U64(mf_model_need(&M, "PUT /c", 0.9, 10), 0);
	CHECK(mf_model_need(&M, "PUT /c", 0.9, 4) >= 5 * MiB);
	/* Over every name. */
	uint64_t all = mf_model_need(&M, NULL, 0.5, 20);
	CHECK(all >= 10 * MiB && all <= 14 * MiB);
	/* Unnamed scopes share one model. */
	mf_model_scope(&M, "", NULL, 1, 0, 0, 1);
	CHECK(mf_model_find(&M, "(unnamed)") != NULL);
	/* Names past the table are counted, not kept. */
	char nm[32];
	for (int i = 0; i < MF_MODEL_NAMES + 10; i++) {
		snprintf(nm, sizeof(nm), "n%d", i);
		mf_model_scope(&M, nm, NULL, 1, 0, 0, 1);
	}
	CHECK_EQ_U64(M.nnames, MF_MODEL_NAMES);
	CHECK(M.dropped > 0);
}

static void test_retained(void)
{
	mf_model_init(&M, 10);
	/* A leaking handler: keeps 2 MiB of every call. */
	for (int i = 0; i < 30; i++)
		mf_model_scope(&M, "leaky", NULL, 8 * MiB, (int64_t)(2 * MiB), 0, 100 + i);
	const struct mf_model_name *l = mf_model_find(&M, "leaky");
	CHECK_EQ_U64((uint64_t)mf_model_recent_retained(l), 2 * MiB);
	CHECK(mf_model_name_retains(l, 64 * KiB));

	/* A cache: the first calls keep 1 MiB each (misses), then hits keep
	 * nothing: not retaining once the recent calls are hits. */
	for (int i = 0; i < 20; i++)
		mf_model_scope(&M, "cached", NULL, 4 * MiB, (int64_t)MiB, 0, 100 + i);
	for (int i = 0; i < 40; i++)
		mf_model_scope(&M, "cached", NULL, 4 * MiB, i % 7 == 0 ? 4096 : -512, 0, 200 + i);
	CHECK(!mf_model_name_retains(mf_model_find(&M, "cached"), 64 * KiB));

	/* Noise: a few bytes either way. */
	for (int i = 0; i < 40; i++)
		mf_model_scope(&M, "noisy", NULL, 4 * MiB, (i % 2) ? 3000 : -3000, 0, 100 + i);
	CHECK(!mf_model_name_retains(mf_model_find(&M, "noisy"), 64 * KiB));
	/* Too few calls to say. */
	mf_model_init(&M, 10);
	for (int i = 0; i < 10; i++)
		mf_model_scope(&M, "young", NULL, 8 * MiB, (int64_t)(2 * MiB), 0, 100 + i);
	CHECK(!mf_model_name_retains(mf_model_find(&M, "young"), 64 * KiB));
}

/* Feed one sample a second for secs seconds, live(t) from fn. */
static void feed(uint64_t t0, uint64_t secs, uint64_t (*fn)(uint64_t t))
{
	for (uint64_t t = t0; t < t0 + secs; t++)
		mf_model_heap(&M, t, fn(t - t0), 4);
}

static uint64_t leak_fn(uint64_t t) { return 50 * MiB + t * 200 * KiB + (t % 3) * 5 * MiB; }
static uint64_t cache_fn(uint64_t t)
{
	uint64_t c = t < 100 ? t * MiB : 100 * MiB; /* fills for 100 s, then flat */
	return 50 * MiB + c + (t % 4) * 3 * MiB;
}
static uint64_t bursty_fn(uint64_t t)
{
	/* Bursts of 150 MiB for 20 s every 60 s; between them the floor. */
	return 60 * MiB + ((t % 60) < 20 ? 150 * MiB : 0) + (t % 5) * MiB;
}
static uint64_t flat_fn(uint64_t t) { return 80 * MiB + (t % 7) * MiB; }

static void test_leak(void)
{
	struct mf_leak lk;

	/* A leak: 200 KiB/s over 10 minutes, with noise on top. */
	mf_model_init(&M, 10);
	feed(10000, 600, leak_fn);
	mf_model_leak(&M, 512 * MiB, 6, 4 * MiB, &lk);
	CHECK(lk.leaking);
	CHECK(lk.slope > 150 * 1024 && lk.slope < 250 * 1024);
	CHECK(lk.forecast_s > 0);
	/* (512 - ~167) MiB at 200 KiB/s: about 1770 s. */
	CHECK(lk.forecast_s > 1400 && lk.forecast_s < 2200);
	CHECK(lk.windows >= 59);

	/* A cache that fills in 100 s, then stays flat for 15 minutes. */
	mf_model_init(&M, 10);
	feed(10000, 1000, cache_fn);
	mf_model_leak(&M, 512 * MiB, 6, 4 * MiB, &lk);
	CHECK(!lk.leaking);
	CHECK_EQ_U64((uint64_t)lk.forecast_s, (uint64_t)-1);

	/* A cache that fills at once after 5 minutes: one step, then flat.
	 * Not a leak in any window after it, though the step sits in the
	 * recent half for as long again. */
	mf_model_init(&M, 10);
	for (uint64_t t = 0; t < 900; t++) {
		mf_model_heap(&M, 10000 + t, flat_fn(t) + (t >= 300 ? 60 * MiB : 0), 4);
		if (t > 300 && t % 10 == 5) {
			mf_model_leak(&M, 512 * MiB, 6, 4 * MiB, &lk);
			CHECK(!lk.leaking);
		}
	}

	/* Bursty traffic: high peaks, flat floor. */
	mf_model_init(&M, 10);
	feed(10000, 900, bursty_fn);
	mf_model_leak(&M, 512 * MiB, 6, 4 * MiB, &lk);
	CHECK(!lk.leaking);

	/* Flat with noise. */
	mf_model_init(&M, 10);
	feed(10000, 900, flat_fn);
	mf_model_leak(&M, 512 * MiB, 6, 4 * MiB, &lk);
	CHECK(!lk.leaking);

	/* Too little history to say anything. */
	mf_model_init(&M, 10);
	feed(10000, 40, leak_fn);
	mf_model_leak(&M, 512 * MiB, 6, 4 * MiB, &lk);
	CHECK(!lk.leaking);

	/* Past the budget already: forecast 0. */
	mf_model_init(&M, 10);
	feed(10000, 600, leak_fn);
	mf_model_leak(&M, 100 * MiB, 6, 4 * MiB, &lk);
	CHECK(lk.leaking);
	CHECK_EQ_U64((uint64_t)lk.forecast_s, 0);

	/* The ring keeps the newest MF_MODEL_FLOORS windows, oldest first. */
	mf_model_init(&M, 10);
	feed(0, 10 * (MF_MODEL_FLOORS + 20), flat_fn);
	CHECK_EQ_U64(M.nfloors, MF_MODEL_FLOORS);
	CHECK(mf_model_floor_at(&M, 0)->t_s < mf_model_floor_at(&M, MF_MODEL_FLOORS - 1)->t_s);
	CHECK_EQ_U64(mf_model_floor_at(&M, MF_MODEL_FLOORS - 1)->t_s,
		     10 * (MF_MODEL_FLOORS + 20) - 20);
}

/* A restart or a recycle: the leak verdict starts over with the new run;
 * the floor is taken net of the load in flight. */
static void test_epoch_load(void)
{
	struct mf_leak lk;

	mf_model_init(&M, 10);
	feed(10000, 600, leak_fn);
	mf_model_leak(&M, 512 * MiB, 6, 4 * MiB, &lk);
	CHECK(lk.leaking);
	/* Replaced at 10600: the new process is flat. Until 6 windows of it
	 * are closed there is nothing to say; then it is no leak, though the
	 * windows of the old process still rise. */
	mf_model_epoch(&M, 10600);
	mf_model_leak(&M, 512 * MiB, 6, 4 * MiB, &lk);
	CHECK(!lk.leaking);
	CHECK_EQ_U64(lk.windows, 0);
	for (uint64_t t = 10600; t < 10700; t++)
		mf_model_heap(&M, t, flat_fn(t), 4);
	mf_model_leak(&M, 512 * MiB, 6, 4 * MiB, &lk);
	CHECK(!lk.leaking);
	CHECK(lk.windows >= 8 && lk.windows <= 10);
	CHECK(M.nfloors > 60);    /* kept for a diagnosis */
	/* The new process leaks in turn: seen from its own windows. */
	for (uint64_t t = 10700; t < 11000; t++)
		mf_model_heap(&M, t, leak_fn(t - 10700), 4);
	mf_model_leak(&M, 512 * MiB, 6, 4 * MiB, &lk);
	CHECK(lk.leaking);

	/* Sustained load that grows, then ends: the heap's floor rose with it,
	 * but net of what the scopes in flight held it is flat. */
	mf_model_init(&M, 10);
	for (uint64_t t = 0; t < 300; t++) {
		struct mf_model_sample s = {.t_s = 1000 + t, .in_flight = 8};

		s.load = t * 300 * KiB;
		s.live = 80 * MiB + s.load + (t % 7) * MiB;
		mf_model_sample(&M, &s);
	}
	mf_model_leak(&M, 512 * MiB, 6, 4 * MiB, &lk);
	CHECK(!lk.leaking);
}

/* Aggregate load per window, oversized candidates and events. */
static void test_load_events(void)
{
	mf_model_init(&M, 10);
	/* One window: 4 scopes of 10 MiB, then 12 of them; a lone 30 MiB one. */
	struct mf_model_sample a = {.t_s = 100, .live = 60 * MiB, .in_flight = 4,
				    .load = 40 * MiB, .load_top = 10 * MiB, .working_set = 90 * MiB};
	struct mf_model_sample b = {.t_s = 103, .live = 140 * MiB, .in_flight = 12,
				    .load = 120 * MiB, .load_top = 11 * MiB, .working_set = 170 * MiB};
	struct mf_model_sample c = {.t_s = 105, .live = 50 * MiB, .in_flight = 1,
				    .load = 30 * MiB, .load_top = 30 * MiB, .working_set = 80 * MiB};
	mf_model_sample(&M, &a);
	mf_model_sample(&M, &b);
	mf_model_sample(&M, &c);
	c.t_s = 111;  /* closes the first window */
	mf_model_sample(&M, &c);
	CHECK_EQ_U64(M.nfloors, 1);
	const struct mf_model_floor *f = mf_model_floor_at(&M, 0);
	CHECK_EQ_U64(f->t_s, 100);
	CHECK_EQ_U64(f->floor, 50 * MiB);
	CHECK_EQ_U64(f->floor_load, 30 * MiB);   /* held by the scope in flight then */
	CHECK_EQ_U64(f->high, 140 * MiB);
	CHECK_EQ_U64(f->load, 120 * MiB);
	CHECK_EQ_U64(f->load_n, 12);
	CHECK_EQ_U64(f->load_top, 11 * MiB);
	CHECK_EQ_U64(f->ws_high, 170 * MiB);
	CHECK_EQ_U64(f->max_in_flight, 12);
	/* The old entry point still feeds the floor. */
	mf_model_heap(&M, 112, 10 * MiB, 2);
	CHECK_EQ_U64(M.cur.floor, 10 * MiB);

	/* Ordinary scopes are no candidates; one 10x its name's p95 is, and
	 * so is every refused one; the largest come first. */
	for (int i = 0; i < 30; i++)
		mf_model_scope(&M, "Get", "r", (uint64_t)(8 + i % 4) * MiB, 0, 0, 200 + i);
	CHECK_EQ_U64(M.nbig, 0);
	mf_model_scope(&M, "Get", "huge-1", 200 * MiB, 0, 0, 300);
	mf_model_scope(&M, "Get", "refused-1", 9 * MiB, 0, 1, 301);
	mf_model_scope(&M, "Get", "huge-2", 400 * MiB, 0, 1, 302);
	CHECK_EQ_U64(M.nbig, 3);
	CHECK_STR(M.big[0].id, "huge-2");
	CHECK_STR(M.big[1].id, "huge-1");
	CHECK_STR(M.big[2].id, "refused-1");
	CHECK(M.big[1].typical >= 11 * MiB && M.big[1].typical <= 14 * MiB);
	CHECK(M.big[0].failed == 1 && M.big[1].failed == 0);
	/* The table keeps the largest MF_MODEL_BIG. */
	for (int i = 0; i < MF_MODEL_BIG + 5; i++)
		mf_model_scope(&M, "Get", "x", 100 * MiB + (uint64_t)i * MiB, 0, 1, 400);
	CHECK_EQ_U64(M.nbig, MF_MODEL_BIG);
	CHECK_STR(M.big[0].id, "huge-2");
	for (uint32_t i = 1; i < M.nbig; i++)
		CHECK(M.big[i - 1].peak >= M.big[i].peak);

	/* Refusals are events; those of one second and name merge. */
	CHECK_EQ_U64(M.event_total[MF_EV_REFUSED], 2 + MF_MODEL_BIG + 5);
	const struct mf_model_event *e = mf_model_event_at(&M, M.nevents - 1);
	CHECK_EQ_U64(e->kind, MF_EV_REFUSED);
	CHECK_EQ_U64(e->t_s, 400);
	CHECK_EQ_U64(e->count, MF_MODEL_BIG + 5);
	mf_model_event(&M, 500, MF_EV_OOM_KILL, NULL, NULL, 300 * MiB);
	e = mf_model_event_at(&M, M.nevents - 1);
	CHECK_EQ_U64(e->kind, MF_EV_OOM_KILL);
	CHECK_STR(mf_model_event_name(e->kind), "oom-kill");
	CHECK_EQ_U64(M.event_total[MF_EV_OOM_KILL], 1);
	/* The ring keeps the newest MF_MODEL_EVENTS. */
	for (int i = 0; i < MF_MODEL_EVENTS + 3; i++)
		mf_model_event(&M, 600 + (uint64_t)i, MF_EV_RESTART, NULL, NULL, 0);
	CHECK_EQ_U64(M.nevents, MF_MODEL_EVENTS);
	CHECK_EQ_U64(mf_model_event_at(&M, 0)->t_s, 603);
	CHECK_EQ_U64(mf_model_event_at(&M, MF_MODEL_EVENTS - 1)->t_s, 600 + MF_MODEL_EVENTS + 2);
}

/* The admission gate: waits and give-ups per window and in all, the
 * longest queue of a window with what was admitted then, and the
 * quantiles of the waits. */
static void test_gate(void)
{
	mf_model_init(&M, 10);
	struct mf_model_sample s = {.t_s = 100, .live = 60 * MiB, .in_flight = 8,
				    .gate_waited = 5, .gate_timed_out = 1, .gate_queue = 3,
				    .gate_admitted = 8};
	s.gate_hist[5] = 4;   /* 50-100 ms */
	s.gate_hist[8] = 1;   /* 500-1000 ms */
	mf_model_sample(&M, &s);
	memset(s.gate_hist, 0, sizeof(s.gate_hist));
	s.t_s = 103;
	s.gate_waited = 2;
	s.gate_timed_out = 0;
	s.gate_queue = 6;
	s.gate_admitted = 7;
	s.gate_hist[6] = 2;   /* 100-250 ms */
	mf_model_sample(&M, &s);
	memset(s.gate_hist, 0, sizeof(s.gate_hist));
	s.t_s = 105;          /* as long a queue, more admitted */
	s.gate_waited = 0;
	s.gate_queue = 6;
	s.gate_admitted = 9;
	mf_model_sample(&M, &s);
	s.t_s = 106;          /* nobody waits: nothing to say of concurrency */
	s.gate_queue = 0;
	s.gate_admitted = 12;
	mf_model_sample(&M, &s);
	s.t_s = 111;          /* closes the window */
	mf_model_sample(&M, &s);
	const struct mf_model_floor *f = mf_model_floor_at(&M, 0);
	CHECK_EQ_U64(f->gate_waited, 7);
	CHECK_EQ_U64(f->gate_timed_out, 1);
	CHECK_EQ_U64(f->gate_queue, 6);
	CHECK_EQ_U64(f->gate_full_n, 9);
	CHECK_EQ_U64(M.gate.waited, 7);
	CHECK_EQ_U64(M.gate.timed_out, 1);
	/* 7 waits: 4 under 100 ms, 2 under 250, 1 under 1000. */
	CHECK_EQ_U64(mf_model_gate_wait_ms(M.gate.hist, 0.5), 100);
	CHECK_EQ_U64(mf_model_gate_wait_ms(M.gate.hist, 0.8), 250);
	CHECK_EQ_U64(mf_model_gate_wait_ms(M.gate.hist, 0.99), 1000);
	uint64_t none[MF_MODEL_GATE_HIST] = {0}, past[MF_MODEL_GATE_HIST] = {0};
	CHECK_EQ_U64(mf_model_gate_wait_ms(none, 0.5), 0);
	past[MF_MODEL_GATE_HIST - 1] = 1;
	CHECK_EQ_U64(mf_model_gate_wait_ms(past, 0.5), UINT64_MAX);
}

static void test_json(void)
{
	static struct mf_model back;
	const struct mf_model_floor *f;
	char err[128];
	struct mf_leak a, b;

	mf_model_init(&M, 10);
	for (int i = 0; i < 40; i++)
		mf_model_scope(&M, "GET /a", i == 3 ? "big" : "r", (uint64_t)(5 + i) * MiB,
			       (int64_t)(i % 3) * 4096 - 4096, i == 3, 1000 + i);
	feed(10000, 600, leak_fn);
	json_t *j = mf_model_json(&M);
	CHECK(j != NULL);
	char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	json_error_t jerr;
	j = json_loads(text, 0, &jerr);
	free(text);
	CHECK(mf_model_from_json(j, &back, err, sizeof(err)) == 0);
	json_decref(j);
	const struct mf_model_name *n = mf_model_find(&back, "GET /a");
	CHECK(n != NULL);
	CHECK_EQ_U64(n->count, 40);
	CHECK_EQ_U64(n->failed, 1);
	CHECK_STR(n->max_id, "r");
	CHECK(memcmp(&n->peak, &mf_model_find(&M, "GET /a")->peak, sizeof(n->peak)) == 0);
	CHECK_EQ_U64((uint64_t)mf_model_recent_retained(n),
		     (uint64_t)mf_model_recent_retained(mf_model_find(&M, "GET /a")));
	CHECK_EQ_U64(back.nfloors, M.nfloors);
	mf_model_leak(&M, 512 * MiB, 6, 4 * MiB, &a);
	mf_model_leak(&back, 512 * MiB, 6, 4 * MiB, &b);
	CHECK(a.leaking && b.leaking);
	CHECK_EQ_U64((uint64_t)a.forecast_s, (uint64_t)b.forecast_s);
	/* Load, candidates and events come back too. */
	CHECK_EQ_U64(mf_model_floor_at(&back, 0)->floor_load, mf_model_floor_at(&M, 0)->floor_load);
	CHECK_EQ_U64(mf_model_floor_at(&back, 0)->ws_high, mf_model_floor_at(&M, 0)->ws_high);
	CHECK_EQ_U64(back.nbig, M.nbig);
	CHECK(M.nbig >= 1);
	CHECK_STR(back.big[0].id, M.big[0].id);
	CHECK_EQ_U64(back.big[0].peak, M.big[0].peak);
	CHECK_EQ_U64(back.nevents, M.nevents);
	CHECK_EQ_U64(back.event_total[MF_EV_REFUSED], 1);
	CHECK_EQ_U64(mf_model_event_at(&back, 0)->kind, MF_EV_REFUSED);
	CHECK_STR(mf_model_event_at(&back, 0)->id, "big");
	/* And the gate's figures. */
	{
		struct mf_model_sample g = {.t_s = 20000, .live = MiB, .gate_waited = 3,
					    .gate_timed_out = 2, .gate_queue = 4,
					    .gate_admitted = 6};
		g.gate_hist[7] = 3;
		mf_model_sample(&M, &g);
		g.t_s = 20010;
		mf_model_sample(&M, &g);
		j = mf_model_json(&M);
		CHECK(mf_model_from_json(j, &back, err, sizeof(err)) == 0);
		json_decref(j);
		CHECK_EQ_U64(back.gate.waited, M.gate.waited);
		CHECK_EQ_U64(back.gate.timed_out, 4);
		CHECK(memcmp(back.gate.hist, M.gate.hist, sizeof(M.gate.hist)) == 0);
		f = mf_model_floor_at(&back, back.nfloors - 1);
		CHECK_EQ_U64(f->gate_waited, 3);
		CHECK_EQ_U64(f->gate_timed_out, 2);
		CHECK_EQ_U64(f->gate_queue, 4);
		CHECK_EQ_U64(f->gate_full_n, 6);
	}

	/* A file of the first release (4 fields a floor, no events) reads. */
	j = json_loads("{\"memfence_model\": 1, \"window_s\": 10, \"names\": [], "
		       "\"floors\": [[10, 1, 2, 3]]}", 0, &jerr);
	CHECK(mf_model_from_json(j, &back, err, sizeof(err)) == 0);
	CHECK_EQ_U64(back.nfloors, 1);
	CHECK_EQ_U64(mf_model_floor_at(&back, 0)->high, 2);
	CHECK_EQ_U64(mf_model_floor_at(&back, 0)->load, 0);
	CHECK_EQ_U64(back.nevents, 0);
	json_decref(j);

	/* Refused: another version, a wrong type, bucket indices out of range. */
	static const char *bad[] = {
		"[]",
		"{\"memfence_model\": 2, \"window_s\": 10, \"names\": [], \"floors\": []}",
		"{\"memfence_model\": 1, \"window_s\": 0, \"names\": [], \"floors\": []}",
		"{\"memfence_model\": 1, \"window_s\": 10, \"names\": [{\"name\": \"x\"}], \"floors\": []}",
		"{\"memfence_model\": 1, \"window_s\": 10, \"names\": [], \"floors\": [[1, -2, 3, 4]]}",
		"{\"memfence_model\": 1, \"window_s\": 10, \"names\": [{\"name\": \"x\", \"count\": 1, "
		"\"failed\": 0, \"first_s\": 0, \"last_s\": 0, \"max_peak\": 0, \"max_at_s\": 0, "
		"\"retained_sum\": 0, \"recent\": [], \"peak\": {\"count\": 1, \"sum\": 1, \"max\": 1, "
		"\"b\": [[500, 1]]}, \"retained\": {\"count\": 0, \"sum\": 0, \"max\": 0, \"b\": []}}], "
		"\"floors\": []}",
		"{\"memfence_model\": 1, \"window_s\": 10, \"names\": [], \"floors\": [], "
		"\"events\": [{\"t_s\": 1, \"kind\": \"nope\", \"count\": 1, \"bytes\": 0}]}",
		"{\"memfence_model\": 1, \"window_s\": 10, \"names\": [], \"floors\": [], "
		"\"big\": [{\"name\": \"x\", \"peak\": -1, \"net\": 0, \"t_s\": 0, \"typical\": 0}]}",
		"{\"memfence_model\": 1, \"window_s\": 10, \"names\": [], \"floors\": [], "
		"\"gate\": {\"waited\": 1, \"hist\": [0, -1]}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		j = json_loads(bad[i], 0, &jerr);
		CHECK(j != NULL);
		err[0] = '\0';
		CHECK(mf_model_from_json(j, &back, err, sizeof(err)) == -1);
		CHECK(err[0] != '\0');
		json_decref(j);
	}
}

int main(void)
{
	test_dist();
	test_names();
	test_retained();
	test_leak();
	test_epoch_load();
	test_load_events();
	test_gate();
	test_json();
	return unit_done("test_model");
}
