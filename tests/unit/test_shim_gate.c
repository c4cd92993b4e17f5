/*
 * test_shim_gate.c - the admission gate (src/shim/gate.c): its ordering
 * policy as a function (first come first served while requests fit,
 * passing with a bound, the first request alone), and enter / wait / leave
 * on the process's own segment with container figures set by hand, as the
 * supervisor publishes them; a handle entered twice, a fork inside an
 * admitted request.
 */
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/lines.h"
#include "shim/config.h"
#include "shim/gate.h"
#include "shim/segw.h"
#include "shim/thread.h"
#include "unit.h"

#define MiB (1ull << 20)

static void test_decide(void)
{
	struct mf_gate_waiter w[3];

	/* Nobody ahead, nothing admitted: in, whatever the need. */
	CHECK(mf_gate_decide(900 * MiB, 100 * MiB, INT64_MAX, NULL, 0, false));
	/* Nobody ahead: in when it fits. */
	CHECK(mf_gate_decide(100 * MiB, 100 * MiB, INT64_MAX, NULL, 0, true));
	CHECK(!mf_gate_decide(100 * MiB + 1, 100 * MiB, INT64_MAX, NULL, 0, true));
	/* The process's room binds too. */
	CHECK(!mf_gate_decide(50 * MiB, 100 * MiB, 40 * MiB, NULL, 0, true));

	/* First come first served: an earlier waiter that fits goes first. */
	w[0] = (struct mf_gate_waiter){.ticket = 1, .need = 60 * MiB};
	CHECK(!mf_gate_decide(50 * MiB, 100 * MiB, INT64_MAX, w, 1, true));
	CHECK(mf_gate_decide(40 * MiB, 100 * MiB, INT64_MAX, w, 1, true));

	/* A large waiter that does not fit yet may be passed by a small one... */
	w[0] = (struct mf_gate_waiter){.ticket = 1, .need = 300 * MiB};
	CHECK(mf_gate_decide(50 * MiB, 100 * MiB, INT64_MAX, w, 1, true));
	/* ...until it has waited starve_ms: then nobody passes it. */
	w[0].urgent = true;
	CHECK(!mf_gate_decide(50 * MiB, 100 * MiB, INT64_MAX, w, 1, true));
	/* Even when it is the first and nothing is admitted, the one behind
	 * waits: the first goes in alone. */
	CHECK(!mf_gate_decide(1, 100 * MiB, INT64_MAX, w, 1, false));

	/* In order: the first two fit together, the third is passed. */
	w[0] = (struct mf_gate_waiter){.ticket = 1, .need = 30 * MiB};
	w[1] = (struct mf_gate_waiter){.ticket = 2, .need = 30 * MiB};
	w[2] = (struct mf_gate_waiter){.ticket = 3, .need = 90 * MiB};
	CHECK(mf_gate_decide(40 * MiB, 100 * MiB, INT64_MAX, w, 3, true));
	CHECK(!mf_gate_decide(41 * MiB, 100 * MiB, INT64_MAX, w, 3, true));
	/* A waiter of another process counts against the container only. */
	w[0] = (struct mf_gate_waiter){.ticket = 1, .need = 30 * MiB, .own = true};
	CHECK(!mf_gate_decide(20 * MiB, 100 * MiB, 40 * MiB, w, 1, true));
	w[0].own = false;
	CHECK(mf_gate_decide(20 * MiB, 100 * MiB, 40 * MiB, w, 1, true));
}

static struct mf_seg_gate *G;

/* The container: limit, working set, reserve; the gate on. */
static void set_container(uint64_t limit, uint64_t ws, uint64_t reserve)
{
	struct mf_seg_container *c = &mf_seg->container;
	uint64_t v = mf_seq_write_begin(&c->seq);

	c->limit = limit;
	c->working_set = ws;
	c->reserve = reserve;
	c->gate_covered = 0;
	mf_seq_write_end(&c->seq, v);
}

struct waiter_arg {
	uint64_t need;
	int rc;
	struct memfence_gate g;
};

static void *waiter(void *p)
{
	struct waiter_arg *a = p;

	a->rc = mf_gate_enter(mf_self(), &a->g, "big", a->need, 2000);
	return NULL;
}

static void test_enter_leave(void)
{
	struct memfence_gate a, b, c;
	struct mf_thread *t = mf_self();
	uint32_t ni = MF_SEG_GATE_NAMES;

	/* Off: nothing is held. */
	CHECK(mf_gate_enter(t, &a, "req", 10 * MiB, 0) == MEMFENCE_EOFF);
	CHECK(mf_gate_max_wait() == MEMFENCE_EOFF);

	G->max_wait_ms = 50;
	G->starve_ms = 500;
	__atomic_store_n(&G->on, 1, __ATOMIC_RELEASE);
	CHECK(mf_gate_max_wait() == 50);
	/* 1000 MiB limit, 100 reserved, 600 in use: 300 MiB of room. */
	set_container(1000 * MiB, 600 * MiB, 100 * MiB);

	CHECK(mf_gate_enter(t, &a, "req", 200 * MiB, 0) == MEMFENCE_OK);
	CHECK(G->admitted_need == 200 * MiB);
	/* 100 MiB left: 150 waits and times out, its place given up. */
	uint64_t t0 = mf_now_mono();
	CHECK(mf_gate_enter(t, &b, "req", 150 * MiB, 30) == MEMFENCE_EWAIT);
	CHECK(mf_now_mono() - t0 >= 30 * 1000000ull);
	CHECK(mf_now_mono() - t0 < 1000 * 1000000ull);
	CHECK(G->waiting == 1);
	/* A negative timeout is the configured maximum. */
	CHECK(mf_gate_wait(t, &b, -1) == MEMFENCE_EWAIT);
	CHECK(mf_gate_leave(&b) == MEMFENCE_OK);
	CHECK(G->waiting == 0);
	for (uint32_t i = 0; i < MF_SEG_GATE_NAMES; i++)
		if (G->names[i].ready && strcmp(G->names[i].name, "req") == 0)
			ni = i;
	CHECK(ni < MF_SEG_GATE_NAMES);
	if (ni < MF_SEG_GATE_NAMES) {
		CHECK(G->names[ni].timed_out == 1);
		CHECK(G->names[ni].admitted == 1);
	}
	/* A need above the whole line (900 MiB) is refused at once. */
	CHECK(mf_gate_enter(t, &c, "req", 901 * MiB, 1000) == MEMFENCE_ETOOBIG);
	mf_gate_leave(&c);

	/* Leaving frees the room: a waiter in another thread gets in. */
	{
		struct waiter_arg w = {.need = 250 * MiB, .rc = 99};
		pthread_t th;

		CHECK(pthread_create(&th, NULL, waiter, &w) == 0);
		struct timespec ts = {0, 50 * 1000000};
		nanosleep(&ts, NULL);
		CHECK(__atomic_load_n(&G->waiting, __ATOMIC_RELAXED) == 1);
		mf_gate_leave(&a);
		pthread_join(th, NULL);
		CHECK(w.rc == MEMFENCE_OK);
		CHECK(G->admitted_need == 250 * MiB);
		CHECK(G->hist[0] + G->hist[1] + G->hist[2] + G->hist[3] + G->hist[4] +
			      G->hist[5] + G->hist[6] + G->hist[7] >= 1);
		mf_gate_leave(&w.g);
	}
	CHECK(G->admitted_need == 0);

	/* The learned need of a name is used when the caller gives none. */
	{
		uint32_t k = MF_SEG_GATE_NAMES;

		CHECK(mf_gate_enter(t, &a, "learned", 1 * MiB, 0) == MEMFENCE_OK);
		mf_gate_leave(&a);
		for (uint32_t i = 0; i < MF_SEG_GATE_NAMES; i++)
			if (G->names[i].ready && strcmp(G->names[i].name, "learned") == 0)
				k = i;
		CHECK(k < MF_SEG_GATE_NAMES);
		if (k < MF_SEG_GATE_NAMES) {
			G->names[k].need = 123 * MiB;
			CHECK(mf_gate_enter(t, &a, "learned", 0, 0) == MEMFENCE_OK);
			CHECK(G->admitted_need == 123 * MiB);
			mf_gate_leave(&a);
		}
	}
	/* Not learned: the default, a quarter of the line, at most 64 MiB,
	 * so that 8 unknown requests go in at once where they fit (a 4000
	 * MiB limit; its quarter was 975 MiB: 3 went in). */
	set_container(4000 * MiB, 600 * MiB, 100 * MiB);
	{
		struct memfence_gate eight[8];

		for (int i = 0; i < 8; i++)
			CHECK(mf_gate_enter(t, &eight[i], "new", 0, 0) == MEMFENCE_OK);
		CHECK(G->admitted_need == 8 * 64 * MiB);
		CHECK(G->waiting == 0);
		for (int i = 0; i < 8; i++)
			mf_gate_leave(&eight[i]);
	}
	/* A small line (180 MiB): a quarter of it. */
	set_container(1000 * MiB, 600 * MiB, 820 * MiB);
	CHECK(mf_gate_enter(t, &a, "new", 0, 0) == MEMFENCE_OK);
	CHECK(G->admitted_need == 45 * MiB);
	mf_gate_leave(&a);
	__atomic_store_n(&G->on, 0, __ATOMIC_RELEASE);
	set_container(0, 0, 0);
}

/* The gate lets in at once as many as mf_gate_fit says, the figure
 * `memfence diagnose` reports the budget holds. */
static void test_fit(void)
{
	static const uint64_t needs[] = {4 * MiB, 30 * MiB, 64 * MiB, 299 * MiB, 300 * MiB};
	struct memfence_gate h[80];
	struct mf_thread *t = mf_self();

	G->max_wait_ms = 50;
	__atomic_store_n(&G->on, 1, __ATOMIC_RELEASE);
	/* The line at 900 MiB, 600 MiB held. */
	set_container(1000 * MiB, 600 * MiB, 100 * MiB);
	for (size_t k = 0; k < sizeof(needs) / sizeof(needs[0]); k++) {
		uint64_t n = 0;

		while (n < 80 && mf_gate_enter(t, &h[n], "fit", needs[k], 0) == MEMFENCE_OK)
			n++;
		CHECK_EQ_U64(n, mf_gate_fit(900 * MiB, 600 * MiB, needs[k]));
		for (uint64_t i = 0; i <= n && i < 80; i++)
			mf_gate_leave(&h[i]);
	}
	CHECK_EQ_U64(mf_gate_fit(900 * MiB, 600 * MiB, 4 * MiB), 75);
	CHECK_EQ_U64(mf_gate_fit(900 * MiB, 900 * MiB, 4 * MiB), 0);
	CHECK_EQ_U64(mf_gate_fit(900 * MiB, 0, 0), 0);
	CHECK_EQ_U64(mf_gate_line(448 * MiB), 336 * MiB);
	__atomic_store_n(&G->on, 0, __ATOMIC_RELEASE);
	set_container(0, 0, 0);
}

/* mf_gate_refuse: a scope past 1.25 times its need whose allocation does
 * not fit in the room the others leave is refused, unless a larger scope
 * is in flight in another process of the container: that one yields
 * first. */
static void test_refuse_largest(void)
{
	struct mf_thread *t = mf_self();
	struct memfence_gate other;
	struct mf_seg_slot *o = NULL;
	struct mf_scope *s;

	G->max_wait_ms = 50;
	__atomic_store_n(&G->on, 1, __ATOMIC_RELEASE);
	set_container(1000 * MiB, 600 * MiB, 100 * MiB); /* 300 MiB of room */
	CHECK(mf_gate_enter(t, &other, "other", 280 * MiB, 0) == MEMFENCE_OK);
	CHECK(mf_scope_begin(t, "req", NULL, 0) == MEMFENCE_OK);
	s = &t->scopes[t->depth - 1];
	s->gate_need = 10 * MiB;
	s->fig.net = 20 * MiB; /* past 12.5 MiB */
	/* 20 MiB of room left, and its own need given back: 30 */
	CHECK(mf_gate_refuse(t, 40 * MiB));
	CHECK(!mf_gate_refuse(t, 30 * MiB));
	for (uint32_t i = 0; i < mf_seg->nslots && o == NULL; i++)
		if (mf_seg_slot_at(mf_seg, i)->state == MF_SLOT_FREE)
			o = mf_seg_slot_at(mf_seg, i);
	CHECK(o != NULL);
	if (o != NULL) {
		o->scopes[0].net = 50 * MiB; /* smaller than 60: no help */
		o->scopes[0].in_use = 1;
		o->state = MF_SLOT_LIVE;
		CHECK(mf_gate_refuse(t, 40 * MiB));
		o->scopes[0].net = 200 * MiB; /* an oversized one elsewhere */
		CHECK(!mf_gate_refuse(t, 40 * MiB));
		memset(o, 0, sizeof(*o) + sizeof(o->scopes[0]));
	}
	CHECK(mf_scope_end(t, NULL) == MEMFENCE_OK);
	mf_gate_leave(&other);
	__atomic_store_n(&G->on, 0, __ATOMIC_RELEASE);
	set_container(0, 0, 0);
}

/* Starvation bound: a large request waiting while small ones keep coming
 * is passed until it has waited starve_ms, then goes first. */
static void test_starvation(void)
{
	struct mf_thread *t = mf_self();
	struct memfence_gate hold, small;
	struct waiter_arg big = {.need = 250 * MiB, .rc = 99};
	pthread_t th;
	int passed = 0, blocked = 0;

	G->starve_ms = 100;
	__atomic_store_n(&G->on, 1, __ATOMIC_RELEASE);
	set_container(1000 * MiB, 600 * MiB, 100 * MiB); /* 300 MiB of room */
	CHECK(mf_gate_enter(t, &hold, "small", 100 * MiB, 0) == MEMFENCE_OK);
	CHECK(pthread_create(&th, NULL, waiter, &big) == 0);
	/* The big one queued first: a loaded machine may start its thread late,
	 * and small requests before that pass nothing (at most 1 s). */
	for (int i = 0; i < 1000 && __atomic_load_n(&G->waiting, __ATOMIC_ACQUIRE) == 0; i++) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	CHECK(__atomic_load_n(&G->waiting, __ATOMIC_ACQUIRE) == 1);
	/* Small requests come and go: they pass the big one (which does not
	 * fit beside hold) until it has waited 100 ms, then are blocked; at
	 * least 300 ms of them, more until both were seen (at most 1.5 s,
	 * within the big one's 2 s). */
	for (int i = 0; i < 150 && (i < 30 || !passed || !blocked); i++) {
		struct timespec ts = {0, 10 * 1000000};
		int rc = mf_gate_enter(t, &small, "small", 50 * MiB, 0);

		if (rc == MEMFENCE_OK)
			passed++;
		else
			blocked++;
		mf_gate_leave(&small);
		nanosleep(&ts, NULL);
	}
	mf_gate_leave(&hold); /* room for the big one */
	pthread_join(th, NULL);
	CHECK(passed > 0);
	CHECK(blocked > 0);
	CHECK(big.rc == MEMFENCE_OK);
	mf_gate_leave(&big.g);
	CHECK(G->admitted_need == 0);
	__atomic_store_n(&G->on, 0, __ATOMIC_RELEASE);
	set_container(0, 0, 0);
}

/* A request admitted by a later wait (an asyncio request polls between
 * two steps, its scope suspended in between) gets its need on its scope,
 * and only on its own: a wait on a thread whose innermost scope is
 * another one leaves that scope alone. */
static void test_wait_marks_scope(void)
{
	struct mf_thread *t = mf_self();
	struct memfence_gate hold, req;
	struct memfence_saved_scope saved;

	G->max_wait_ms = 50;
	__atomic_store_n(&G->on, 1, __ATOMIC_RELEASE);
	set_container(1000 * MiB, 600 * MiB, 100 * MiB); /* 300 MiB of room */
	CHECK(mf_gate_enter(t, &hold, "hold", 200 * MiB, 0) == MEMFENCE_OK);

	CHECK(mf_scope_begin(t, "req", NULL, 0) == MEMFENCE_OK);
	CHECK(mf_gate_enter(t, &req, "req", 150 * MiB, 0) == MEMFENCE_EWAIT);
	CHECK(t->scopes[t->depth - 1].gate_need == 0);
	CHECK(mf_scope_suspend(t, &saved) == MEMFENCE_OK);
	mf_gate_leave(&hold);
	/* Another scope on the thread: admitted, but not its need. */
	CHECK(mf_scope_begin(t, "other", NULL, 0) == MEMFENCE_OK);
	CHECK(mf_gate_wait(t, &req, 0) == MEMFENCE_OK);
	CHECK(t->scopes[t->depth - 1].gate_need == 0);
	CHECK(mf_scope_end(t, NULL) == MEMFENCE_OK);
	/* Its own scope back: the wait (already admitted) marks it. */
	CHECK(mf_scope_resume(t, &saved) == MEMFENCE_OK);
	CHECK(mf_gate_wait(t, &req, 0) == MEMFENCE_OK);
	CHECK(t->scopes[t->depth - 1].gate_need == 150 * MiB);
	CHECK(mf_scope_end(t, NULL) == MEMFENCE_OK);
	mf_gate_leave(&req);
	CHECK(G->admitted_need == 0);
	__atomic_store_n(&G->on, 0, __ATOMIC_RELEASE);
	set_container(0, 0, 0);
}

/* A handle holds one admission; a child of fork holds none of its parent's:
 * the shared sum stays true (it went negative when both left). */
static void test_reuse_and_fork(void)
{
	struct mf_thread *t = mf_self();
	struct memfence_gate a;
	pid_t pid;
	int ws = -1;

	G->max_wait_ms = 50;
	__atomic_store_n(&G->on, 1, __ATOMIC_RELEASE);
	set_container(1000 * MiB, 600 * MiB, 100 * MiB); /* 300 MiB of room */
	CHECK(mf_gate_enter(t, &a, "req", 100 * MiB, 0) == MEMFENCE_OK);
	CHECK(mf_gate_enter(t, &a, "req", 50 * MiB, 0) == MEMFENCE_OK);
	CHECK(G->admitted_need == 50 * MiB);
	mf_gate_leave(&a);
	CHECK(G->admitted_need == 0);

	CHECK(mf_gate_enter(t, &a, "req", 200 * MiB, 0) == MEMFENCE_OK);
	pid = fork();
	if (pid == 0) {
		struct memfence_gate b;
		int ok;

		/* What the shim's fork handler does in the child. */
		mf_account_atfork_child();
		mf_gate_atfork_child(mf_self());
		ok = mf_gate_wait(mf_self(), &a, 0) == MEMFENCE_EOFF;
		mf_gate_leave(&a);
		ok = ok && G->admitted_need == 200 * MiB;
		ok = ok && mf_gate_enter(mf_self(), &b, "req", 50 * MiB, 0) == MEMFENCE_OK &&
		     G->admitted_need == 250 * MiB;
		mf_gate_leave(&b);
		_exit(ok && G->admitted_need == 200 * MiB ? 0 : 1);
	}
	CHECK(pid > 0 && waitpid(pid, &ws, 0) == pid);
	CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	CHECK(G->admitted_need == 200 * MiB);
	mf_gate_leave(&a);
	CHECK(G->admitted_need == 0);
	__atomic_store_n(&G->on, 0, __ATOMIC_RELEASE);
	set_container(0, 0, 0);
}

int main(void)
{
	memset(&mf_cfg, 0, sizeof(mf_cfg));
	mf_cfg.account = 1;
	mf_account_init();
	mf_segw_attach();
	CHECK(mf_seg != NULL && mf_seg->gate_offset != 0);
	if (mf_seg == NULL || mf_seg->gate_offset == 0)
		return unit_done("test_shim_gate");
	G = mf_seg_gate_of(mf_seg);
	__atomic_store_n(&mf_state, MF_STATE_ON, __ATOMIC_RELEASE);
	test_decide();
	test_enter_leave();
	test_fit();
	test_refuse_largest();
	test_starvation();
	test_wait_marks_scope();
	test_reuse_and_fork();
	return unit_done("test_shim_gate");
}
