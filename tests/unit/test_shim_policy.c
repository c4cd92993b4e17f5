/*
 * test_shim_policy.c - the shim's admission decisions as functions with
 * inputs: budgets, fault injection, the heap limit and its credit ledger,
 * the pressure lines, the container headroom. Thread states are built by
 * hand; the segment is the process's own (a memfd), as a program without
 * a supervisor has it.
 */
#include <errno.h>
#include <sys/mman.h>
#include <time.h>

#include "shim/config.h"
#include "shim/policy.h"
#include "shim/segw.h"
#include "shim/thread.h"
#include "unit.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* A thread state with scopes of these nets and budgets (0 = none). */
static void make_thread(struct mf_thread *t, int depth, const int64_t *net, const uint64_t *budget)
{
	memset(t, 0, sizeof(*t));
	t->tid = 1;
	t->depth = depth;
	for (int i = 0; i < depth; i++) {
		struct mf_scope *s = &t->scopes[i];
		snprintf(s->name, sizeof(s->name), "req%d", i);
		s->fig.net = net[i];
		s->fig.peak = net[i] > 0 ? (uint64_t)net[i] : 0;
		s->fig.budget = budget != NULL ? budget[i] : 0;
		t->nbudget += s->fig.budget != 0;
		s->entry = -1;
	}
}

static void reset_config(void)
{
	memset(&mf_cfg, 0, sizeof(mf_cfg));
	mf_cfg.account = 1;
	mf_policy_init(0, NULL);
	mf_account_init();
}

static void test_zone_and_largest(void)
{
	CHECK(mf_zone_of(100, 100, 200) == MF_ZONE_BELOW);
	CHECK(mf_zone_of(101, 100, 200) == MF_ZONE_BETWEEN);
	CHECK(mf_zone_of(200, 100, 200) == MF_ZONE_BETWEEN);
	CHECK(mf_zone_of(201, 100, 200) == MF_ZONE_ABOVE);

	/* The largest is refused; equal counts as largest. */
	CHECK(mf_largest_refused(8 * MiB, 4 * MiB));
	CHECK(mf_largest_refused(4 * MiB, 4 * MiB));
	CHECK(!mf_largest_refused(2 * MiB, 4 * MiB));
	/* Nobody else of MF_PRESS_MIN_NET in flight: nobody to prefer. */
	CHECK(mf_largest_refused(0, 0));
	CHECK(mf_largest_refused(1, MF_PRESS_MIN_NET - 1));
	CHECK(!mf_largest_refused(1, MF_PRESS_MIN_NET));
}

static void test_budgets(void)
{
	struct mf_thread t;
	const int64_t net[] = {900, 100};
	const uint64_t budget[] = {1000, 0};

	reset_config();
	make_thread(&t, 2, net, budget);
	/* The outer scope's budget binds: 100 bytes left in it. */
	CHECK(mf_admit_pre(&t, 100) == 0);
	CHECK(mf_admit_pre(&t, 101) == MF_FAIL_BUDGET);
	CHECK(mf_admit_post(&t, 100) == 0);
	CHECK(mf_admit_post(&t, 101) == MF_FAIL_BUDGET);
	CHECK(mf_admit_pre(&t, (uint64_t)INT64_MAX + 1) == MF_FAIL_BUDGET);
	/* No budget open: no budget refusal, whatever the size. */
	make_thread(&t, 2, net, NULL);
	CHECK(mf_admit_pre(&t, 1ull << 40) == 0);
	CHECK(mf_admit_pre(NULL, 1ull << 40) == 0);
}

static void test_faults(void)
{
	struct mf_thread t, other;
	const int64_t net[] = {0};
	const char *err;
	int fails = 0;

	make_thread(&t, 1, net, NULL);
	snprintf(t.scopes[0].name, sizeof(t.scopes[0].name), "request");
	make_thread(&other, 1, net, NULL);
	snprintf(other.scopes[0].name, sizeof(other.scopes[0].name), "job");

	/* nth=3 counts matching allocations only, and fails once. */
	reset_config();
	CHECK(mf_fault_parse("nth=3,scope=req*", &mf_cfg.fault, &err) == 0);
	mf_policy_init(0, NULL);
	CHECK(mf_admit_pre(&other, 10) == 0);
	CHECK(mf_admit_pre(NULL, 10) == 0);
	CHECK(mf_admit_pre(&t, 10) == 0);
	CHECK(mf_admit_pre(&t, 10) == 0);
	CHECK(mf_admit_pre(&t, 10) == MF_FAIL_FAULT);
	for (int i = 0; i < 10; i++)
		CHECK(mf_admit_pre(&t, 10) == 0);

	/* every=4 */
	CHECK(mf_fault_parse("every=4", &mf_cfg.fault, &err) == 0);
	mf_policy_init(0, NULL);
	for (int i = 1; i <= 12; i++) {
		int r = mf_admit_pre(NULL, 1);
		CHECK(r == (i % 4 == 0 ? MF_FAIL_FAULT : 0));
		fails += r != 0;
	}
	CHECK(fails == 3);

	/* after=1M: the allocation that takes the matching bytes past it. */
	CHECK(mf_fault_parse("after=1M,scope=job", &mf_cfg.fault, &err) == 0);
	mf_policy_init(0, NULL);
	CHECK(mf_admit_pre(&other, 512 * KiB) == 0);
	CHECK(mf_admit_pre(&t, 1 * MiB) == 0); /* not matching: not counted */
	CHECK(mf_admit_pre(&other, 512 * KiB) == 0);
	CHECK(mf_admit_pre(&other, 1) == MF_FAIL_FAULT);

	/* size>= alone: every allocation that large. */
	CHECK(mf_fault_parse("size>=1M", &mf_cfg.fault, &err) == 0);
	mf_policy_init(0, NULL);
	CHECK(mf_admit_pre(NULL, MiB - 1) == 0);
	CHECK(mf_admit_pre(NULL, MiB) == MF_FAIL_FAULT);
	CHECK(mf_admit_pre(&t, 2 * MiB) == MF_FAIL_FAULT);

	/* Threads: scope-matched errno. */
	CHECK(mf_fault_parse("thread=EAGAIN,scope=spawn", &mf_cfg.fault, &err) == 0);
	snprintf(t.scopes[0].name, sizeof(t.scopes[0].name), "spawn");
	CHECK(mf_fault_thread(&t) == EAGAIN);
	CHECK(mf_fault_thread(&other) == 0);
	CHECK(mf_fault_thread(NULL) == 0);
	CHECK(mf_admit_pre(&t, 10) == 0); /* no allocation fault configured */
	reset_config();
}

/*
 * The heap limit: live + credits + pool = limit, so a single thread fails
 * exactly at the crossing byte, and a free makes exactly its bytes
 * available again.
 */
static void test_heap_limit(void)
{
	struct mf_thread t;
	const uint64_t limit = 1 * MiB;
	uint64_t live = 0;

	reset_config();
	mf_cfg.heap_limit = limit;
	mf_account_init();
	make_thread(&t, 0, NULL, NULL);

	CHECK(mf_admit_pre(&t, limit + 1) == MF_FAIL_HEAP);
	CHECK(mf_admit_pre(&t, limit) == 0);
	/* Take it in uneven pieces, counting each like the hooks do. */
	for (uint64_t piece = 1000; live + piece <= limit; live += piece) {
		CHECK(mf_admit_post(&t, piece) == 0);
		mf_count(&t, piece, 0, 1, 0);
	}
	CHECK(mf_admit_post(&t, limit - live) == 0);
	mf_count(&t, limit - live, 0, 1, 0);
	live = limit;
	CHECK(mf_admit_post(&t, 1) == MF_FAIL_HEAP);
	CHECK(mf_admit_post(NULL, 1) == MF_FAIL_HEAP);

	/* A free gives back exactly its bytes. */
	mf_count(&t, 0, 5000, 0, 1);
	CHECK(mf_admit_post(&t, 5001) == MF_FAIL_HEAP);
	CHECK(mf_admit_post(&t, 5000) == 0);
	CHECK(mf_admit_post(&t, 1) == MF_FAIL_HEAP);
	/* Undone (the allocation failed after all): available again. */
	mf_admit_undo(&t, 5000);
	CHECK(mf_admit_post(&t, 5000) == 0);
	CHECK(mf_admit_post(&t, 1) == MF_FAIL_HEAP);

	/* Credit a thread holds past two chunks goes back to the pool, where
	 * a thread past its exit handler (NULL) can take it. */
	mf_count(&t, 0, 3 * MF_CREDIT_CHUNK, 0, 1);
	CHECK(mf_admit_post(NULL, 2 * MF_CREDIT_CHUNK) == 0);
	CHECK(mf_admit_post(NULL, 1) == MF_FAIL_HEAP);
	CHECK(mf_admit_post(&t, MF_CREDIT_CHUNK) == 0);
	CHECK(mf_admit_post(&t, 1) == MF_FAIL_HEAP);

	/* The pool is shared: a second thread gets what the first freed
	 * beyond its own chunk, not more. */
	struct mf_thread u;
	make_thread(&u, 0, NULL, NULL);
	mf_count(&t, 0, 256 * KiB, 0, 1);
	CHECK(mf_admit_post(&u, 256 * KiB - MF_CREDIT_CHUNK) == 0);
	CHECK(mf_admit_post(&u, 1) == MF_FAIL_HEAP);
	CHECK(mf_admit_post(&t, MF_CREDIT_CHUNK) == 0);
	CHECK(mf_admit_post(&t, 1) == MF_FAIL_HEAP);
	reset_config();
}

/* Publish a scope of another thread of this process, net bytes large. */
static int32_t other_scope(int64_t net)
{
	struct mf_scope s;

	memset(&s, 0, sizeof(s));
	s.entry = mf_segw_scope_claim();
	s.fig.net = net;
	snprintf(s.name, sizeof(s.name), "other");
	mf_segw_scope_publish(2, &s, 0);
	return s.entry;
}

static void test_pressure(void)
{
	struct mf_thread t;
	int64_t net[] = {8 * MiB};
	int32_t e;

	reset_config();
	make_thread(&t, 1, net, NULL);
	t.scopes[0].entry = mf_segw_scope_claim();
	mf_segw_scope_publish(t.tid, &t.scopes[0], 0);

	/* Below the soft line (far above anything measured): never. */
	mf_cfg.press_soft = UINT64_MAX - 1;
	mf_cfg.press_hard = UINT64_MAX;
	CHECK(!mf_pressure_refuse(&t, MF_LARGE));
	/* Above the hard line: every scoped large allocation... */
	mf_cfg.press_soft = mf_cfg.press_hard = 1;
	CHECK(mf_pressure_refuse(&t, MF_LARGE));
	CHECK(mf_admit_pre(&t, MF_LARGE) == MF_FAIL_BUDGET);
	CHECK(mf_admit_pre(&t, MF_LARGE - 1) == 0); /* small ones are not checked */
	/* ...but never outside a scope, nor of a scope under MF_PRESS_MIN_NET. */
	CHECK(!mf_pressure_refuse(NULL, MF_LARGE));
	struct mf_thread bare;
	make_thread(&bare, 0, NULL, NULL);
	CHECK(!mf_pressure_refuse(&bare, 8 * MiB));
	struct mf_thread small;
	int64_t little[] = {100 * KiB};
	make_thread(&small, 1, little, NULL);
	CHECK(!mf_pressure_refuse(&small, MF_LARGE));
	CHECK(mf_pressure_refuse(&small, MF_PRESS_MIN_NET));

	/* Between the lines: only the scope that would be the largest. */
	mf_cfg.press_soft = 1;
	mf_cfg.press_hard = UINT64_MAX;
	CHECK(mf_pressure_refuse(&t, MF_LARGE)); /* alone in flight */
	e = other_scope(16 * MiB);
	CHECK(!mf_pressure_refuse(&t, MF_LARGE));
	CHECK(!mf_pressure_refuse(&t, 8 * MiB - 1));
	CHECK(mf_pressure_refuse(&t, 8 * MiB)); /* as large as the other */
	mf_segw_scope_release(e);
	CHECK(mf_pressure_refuse(&t, MF_LARGE));
	/* Its own scopes are not "another": nested ones count once. */
	int64_t nested[] = {8 * MiB, 8 * MiB};
	make_thread(&t, 2, nested, NULL);
	t.scopes[0].entry = mf_segw_scope_claim();
	t.scopes[1].entry = mf_segw_scope_claim();
	mf_segw_scope_publish(t.tid, &t.scopes[0], 0);
	mf_segw_scope_publish(t.tid, &t.scopes[1], 1);
	CHECK(mf_pressure_refuse(&t, MF_LARGE));
	mf_segw_scope_release(t.scopes[0].entry);
	mf_segw_scope_release(t.scopes[1].entry);
	reset_config();
}

/*
 * Between the hard and the last line, a scope that is not the largest goes
 * on while a larger one in flight holds at least the excess over the soft
 * line: refusing that one is what brings the process back below soft.
 * The lines are set around the process's measured size, made large and
 * steady with an untouched mapping (counted in VmData, never faulted in);
 * without hooks nothing changes the estimate between two samples.
 */
static void test_pressure_last(void)
{
	const size_t pad_len = 1 * GiB;
	struct timespec ts = {0, 5 * 1000 * 1000};
	struct mf_thread t;
	int64_t net[] = {8 * MiB};
	uint64_t e;
	int32_t o;
	void *pad;

	CHECK(mf_larger_yields(8 * MiB, 256 * MiB, 64 * MiB));
	CHECK(mf_larger_yields(8 * MiB, 64 * MiB, 64 * MiB));
	CHECK(!mf_larger_yields(8 * MiB, 64 * MiB, 64 * MiB + 1)); /* too small to help */
	CHECK(!mf_larger_yields(8 * MiB, 8 * MiB, 0));              /* not larger */
	CHECK(!mf_larger_yields(0, MF_PRESS_MIN_NET - 1, 0));       /* nobody to prefer */
	CHECK(!mf_larger_yields(8 * MiB, 256 * MiB, UINT64_MAX));

	reset_config();
	pad = mmap(NULL, pad_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	CHECK(pad != MAP_FAILED);
	if (pad == MAP_FAILED)
		return;
	nanosleep(&ts, NULL); /* past the sampling interval: measured again */
	e = mf_pressure_estimate();
	CHECK(e >= pad_len);
	make_thread(&t, 1, net, NULL);
	t.scopes[0].entry = mf_segw_scope_claim();
	mf_segw_scope_publish(t.tid, &t.scopes[0], 0);

	/* est = e + 64 KiB: 64 MiB over soft, past hard, below last. */
	mf_cfg.press_soft = e - 64 * MiB;
	mf_cfg.press_hard = e - 32 * MiB;
	mf_cfg.press_last = e + 32 * MiB;
	o = other_scope(256 * MiB);
	CHECK(!mf_pressure_refuse(&t, MF_LARGE));
	CHECK(mf_admit_pre(&t, MF_LARGE) == 0);
	mf_segw_scope_release(o);
	/* Larger, but refusing it would leave the process above soft. */
	o = other_scope(48 * MiB);
	CHECK(mf_pressure_refuse(&t, MF_LARGE));
	mf_segw_scope_release(o);
	/* Alone in flight, or the largest itself: refused. */
	CHECK(mf_pressure_refuse(&t, MF_LARGE));
	o = other_scope(256 * MiB);
	CHECK(mf_pressure_refuse(&t, 256 * MiB));
	/* Above the last line: everyone. */
	mf_cfg.press_last = e - 16 * MiB;
	CHECK(mf_pressure_refuse(&t, MF_LARGE));
	/* No last line (0) or one below hard: the hard line is the last. */
	mf_cfg.press_last = 0;
	CHECK(mf_pressure_refuse(&t, MF_LARGE));
	mf_cfg.press_last = e - 48 * MiB;
	CHECK(mf_pressure_refuse(&t, MF_LARGE));
	/* Between soft and hard nothing changed: only the largest. */
	mf_cfg.press_hard = e + 16 * MiB;
	mf_cfg.press_last = e + 32 * MiB;
	CHECK(!mf_pressure_refuse(&t, MF_LARGE));
	mf_segw_scope_release(o);
	CHECK(mf_pressure_refuse(&t, MF_LARGE));

	mf_segw_scope_release(t.scopes[0].entry);
	munmap(pad, pad_len);
	reset_config();
}

static void set_container(uint64_t limit, uint64_t ws, uint64_t reserve, uint64_t min_size,
			  uint64_t updated)
{
	struct mf_seg_container *c = &mf_seg->container;
	uint64_t end = mf_seq_write_begin(&c->seq);

	c->limit = limit;
	c->working_set = ws;
	c->reserve = reserve;
	c->min_size = min_size;
	c->updated_ns = updated;
	mf_seq_write_end(&c->seq, end);
}

/* A slot of the segment that is not ours, as another process of the
 * container would hold it. */
static struct mf_seg_slot *other_slot(void)
{
	for (uint32_t i = 0; i < mf_seg->nslots; i++) {
		struct mf_seg_slot *s = mf_seg_slot_at(mf_seg, i);
		if (s != mf_slot && s->state == MF_SLOT_FREE)
			return s;
	}
	return NULL;
}

/*
 * The collateral failures of pre-fork servers: another worker's oversized
 * request is refused and frees its memory, but the supervisor's figure
 * still holds it until the next sample. The change every process made
 * since the sample counts.
 */
static void test_container_others(struct mf_thread *t)
{
	struct mf_seg_slot *o = other_slot();

	CHECK(o != NULL);
	if (o == NULL)
		return;
	/* Sampled at 930M (between the lines), the other worker at 300M. */
	set_container(1 * GiB, 930 * MiB, 124 * MiB, MF_LARGE, 7);
	o->live = o->sampled_live = 300 * MiB;
	o->sampled_ns = 7;
	o->state = MF_SLOT_LIVE;
	CHECK(mf_container_refuse(t, 32 * MiB));           /* nobody larger */
	/* It freed 250M since: the container is at 680M, far below. */
	o->live = 50 * MiB;
	CHECK(!mf_container_refuse(t, 32 * MiB));
	CHECK(!mf_container_refuse(NULL, 32 * MiB));
	/* Its growth counts as well: 930 + 40 + 32 is above the last line. */
	o->live = 340 * MiB;
	CHECK(mf_container_refuse(t, 32 * MiB));
	/* A figure stamped for another sample (the slot claimed since, or
	 * the supervisor publishing) adds nothing. */
	o->live = 50 * MiB;
	o->sampled_ns = 6;
	CHECK(mf_container_refuse(t, 32 * MiB));
	o->state = MF_SLOT_FREE;
	CHECK(mf_container_refuse(t, 32 * MiB));
	memset(o, 0, sizeof(*o));
}

static void test_container(void)
{
	struct mf_thread t;
	int64_t net[] = {8 * MiB};
	uint64_t live0 = __atomic_load_n(&mf_slot->live, __ATOMIC_RELAXED);
	int32_t e;

	reset_config();
	make_thread(&t, 1, net, NULL);
	t.scopes[0].entry = mf_segw_scope_claim();
	mf_segw_scope_publish(t.tid, &t.scopes[0], 0);

	/* Lines at limit - reserve (900M) and limit - reserve / 2 (962M). */
	set_container(1 * GiB, 800 * MiB, 124 * MiB, MF_LARGE, 1);
	CHECK(!mf_container_refuse(&t, 100 * MiB));        /* 900M: below */
	CHECK(mf_container_refuse(&t, 100 * MiB + 1));     /* between, largest */
	CHECK(mf_admit_pre(&t, 100 * MiB + 1) == MF_FAIL_CONTAINER);
	CHECK(mf_container_refuse(&t, 162 * MiB + 1));     /* above 962M */
	CHECK(!mf_container_refuse(&t, MF_LARGE - 1));      /* under min_size */

	/* Between the lines a larger scope elsewhere takes the refusal (this
	 * scope would hold 8M + the request). */
	e = other_scope(256 * MiB);
	CHECK(!mf_container_refuse(&t, 100 * MiB + 1));
	CHECK(!mf_container_refuse(NULL, 100 * MiB + 1));  /* no scope, smaller */
	/* Above the hard line, below the last (limit - reserve / 4, 993M):
	 * still admitted while the larger scope holds the excess over soft. */
	CHECK(!mf_container_refuse(&t, 162 * MiB + 1));
	CHECK(!mf_container_refuse(&t, 193 * MiB));
	CHECK(mf_container_refuse(&t, 193 * MiB + 1));     /* above last: everyone */
	mf_segw_scope_release(e);
	/* At 970M (above hard, 962M) the excess over soft is 70M: a larger
	 * scope of 60M cannot bring the container back below it, one of 70M
	 * can. */
	set_container(1 * GiB, 950 * MiB, 124 * MiB, MF_LARGE, 1);
	e = other_scope(60 * MiB);
	CHECK(mf_container_refuse(&t, 20 * MiB));
	mf_segw_scope_release(e);
	e = other_scope(70 * MiB);
	CHECK(!mf_container_refuse(&t, 20 * MiB));
	mf_segw_scope_release(e);
	set_container(1 * GiB, 800 * MiB, 124 * MiB, MF_LARGE, 1);
	/* No scope of MF_PRESS_MIN_NET anywhere: nobody to prefer. */
	e = other_scope(MF_PRESS_MIN_NET - 1);
	CHECK(mf_container_refuse(NULL, 100 * MiB + 1));
	mf_segw_scope_release(e);

	/* Until the next sample, this process's own growth since it first saw
	 * the current one is added, and a free taken off. */
	set_container(1 * GiB, 800 * MiB, 124 * MiB, MF_LARGE, 2);
	CHECK(!mf_container_refuse(&t, 100 * MiB));        /* sees live here */
	__atomic_store_n(&mf_slot->live, live0 + 10 * MiB, __ATOMIC_RELAXED);
	CHECK(!mf_container_refuse(&t, 90 * MiB));
	CHECK(mf_container_refuse(&t, 90 * MiB + 1));
	__atomic_store_n(&mf_slot->live, live0 - (live0 < 5 * MiB ? live0 : 5 * MiB), __ATOMIC_RELAXED);
	CHECK(!mf_container_refuse(&t, 100 * MiB + (live0 < 5 * MiB ? live0 : 5 * MiB)));
	__atomic_store_n(&mf_slot->live, live0, __ATOMIC_RELAXED);

	test_container_others(&t);

	/* Nothing published, a figure torn mid-update: never refused. */
	set_container(0, 800 * MiB, 124 * MiB, MF_LARGE, 3);
	CHECK(!mf_container_refuse(&t, 512 * MiB));
	set_container(1 * GiB, 800 * MiB, 124 * MiB, MF_LARGE, 4);
	(void)mf_seq_write_begin(&mf_seg->container.seq);
	CHECK(!mf_container_refuse(&t, 512 * MiB));
	mf_seg->container.seq++;
	/* A reserve past the limit is the limit: the hard line at half. */
	set_container(1 * GiB, 0, 2 * GiB, MF_LARGE, 5);
	CHECK(!mf_container_refuse(NULL, MF_LARGE)); /* between: t's 8M scope is larger */
	CHECK(mf_container_refuse(NULL, 512 * MiB + 1));
	set_container(0, 0, 0, 0, 6);
	mf_segw_scope_release(t.scopes[0].entry);
}

/* The gate's estimate: far below its line an older sample serves, near it a
 * new one is read. A mapping outside malloc is what only a new sample sees. */
static void test_estimate_near(void)
{
	const size_t pad_len = 256 * MiB;
	struct timespec ts = {0, 3 * 1000 * 1000};
	uint64_t before, far, near, t0;
	void *pad;

	reset_config();
	nanosleep(&ts, NULL);
	before = mf_pressure_estimate(); /* a sample, taken now */
	t0 = mf_now_mono();
	pad = mmap(NULL, pad_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	CHECK(pad != MAP_FAILED);
	if (pad == MAP_FAILED)
		return;
	nanosleep(&ts, NULL); /* past the 2 ms of the allocation path's sample */
	far = mf_pressure_estimate_near(UINT64_MAX / 2, 0);
	/* Unless this thread stalled 100 ms since the sample (a loaded host),
	 * the previous one stands: the mapping is not seen. */
	if (mf_now_mono() - t0 < 90ull * 1000 * 1000)
		CHECK(far < before + pad_len);
	/* Near: what is asked leaves less than a quarter of the line free by
	 * the previous sample (here, nothing at all). */
	near = mf_pressure_estimate_near(before + 2 * pad_len, 2 * pad_len);
	CHECK(near >= before + pad_len);
	/* A line the previous sample is already above: near as well. */
	munmap(pad, pad_len);
	nanosleep(&ts, NULL);
	CHECK(mf_pressure_estimate_near(before / 2, 0) < before + pad_len);
}

int main(void)
{
	reset_config();
	mf_segw_attach(); /* the process's own segment and slot */
	CHECK(mf_seg != NULL && mf_slot != NULL);
	if (mf_seg == NULL || mf_slot == NULL)
		return unit_done("test_shim_policy");
	test_zone_and_largest();
	test_budgets();
	test_faults();
	test_heap_limit();
	test_pressure();
	test_pressure_last();
	test_estimate_near();
	test_container();
	return unit_done("test_shim_policy");
}
