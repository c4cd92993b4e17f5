/*
 * test_shim_account.c - the accounting as functions: the busy section
 * (what a signal handler counts meanwhile is deferred, then drained), scope
 * figures, and memfence_process_stats' exact figures for the calling
 * thread. The "handler" here is a call made while the thread is marked
 * busy, which is what a handler interrupting the section does.
 */
#include "memfence.h"
#include "shim/config.h"
#include "shim/segw.h"
#include "shim/thread.h"
#include "unit.h"

/* A reentering call while t is busy: counted later, not lost. */
static void handler_counts(struct mf_thread *t, uint64_t add, uint64_t sub)
{
	CHECK(t->busy);
	mf_count(t, add, sub, add != 0, sub != 0);
}

static void test_busy_section(struct mf_thread *t)
{
	struct memfence_scope_stats st;

	CHECK(mf_scope_begin(t, "req", "1", 0) == MEMFENCE_OK);
	mf_busy_enter(t);
	handler_counts(t, 1000, 0);
	handler_counts(t, 0, 300);
	/* Deferred: the scope does not have them yet. */
	CHECK_EQ_U64(t->scopes[0].fig.allocated, 0);
	CHECK(__atomic_load_n(&t->d_any, __ATOMIC_RELAXED) != 0);
	mf_busy_leave(t);
	/* Drained on leaving. */
	CHECK(t->d_any == 0);
	CHECK_EQ_U64(t->scopes[0].fig.allocated, 1000);
	CHECK_EQ_U64(t->scopes[0].fig.freed, 300);
	CHECK(t->scopes[0].fig.net == 700);
	CHECK_EQ_U64(t->scopes[0].fig.peak, 700);
	CHECK_EQ_U64(t->scopes[0].calls, 1);

	/* The peak follows net up only. */
	mf_count(t, 0, 700, 0, 1);
	mf_count(t, 200, 0, 1, 0);
	CHECK(mf_scope_end(t, &st) == MEMFENCE_OK);
	CHECK_EQ_U64(st.allocated, 1200);
	CHECK_EQ_U64(st.freed, 1000);
	CHECK(st.net == 200);
	CHECK_EQ_U64(st.peak, 700);
	CHECK_EQ_U64(st.calls, 2);
	CHECK(mf_scope_end(t, &st) == MEMFENCE_ENOSCOPE);
}

/* The scope's figures as published in the segment are the same ones. */
static void test_published(struct mf_thread *t)
{
	const struct mf_seg_scope *e;

	CHECK(mf_scope_begin(t, "pub", "7", 1 << 20) == MEMFENCE_OK);
	mf_count(t, 5000, 1000, 1, 1);
	mf_flush(t);
	CHECK(t->scopes[0].entry >= 0);
	if (t->scopes[0].entry < 0)
		return;
	e = &mf_slot->scopes[t->scopes[0].entry];
	CHECK(e->in_use);
	CHECK_EQ_U64(e->allocated, 5000);
	CHECK_EQ_U64(e->freed, 1000);
	CHECK(e->net == 4000);
	CHECK_EQ_U64(e->peak, 4000);
	CHECK_EQ_U64(e->budget, 1 << 20);
	CHECK_STR(e->name, "pub");
	CHECK_STR(e->id, "7");
	CHECK(mf_scope_end(t, NULL) == MEMFENCE_OK);
}

/*
 * A count a handler deferred, still pending when the program asks for its
 * figures: memfence_process_stats must drain it before it flushes.
 */
static void test_process_stats(struct mf_thread *t)
{
	struct memfence_process_stats a, b;

	CHECK(memfence_process_stats(&a) == MEMFENCE_OK);
	t->busy = 1;
	handler_counts(t, 4096, 0);
	t->busy = 0; /* left by a section that did not drain */
	CHECK(memfence_process_stats(&b) == MEMFENCE_OK);
	CHECK_EQ_U64(b.allocated - a.allocated, 4096);
	CHECK_EQ_U64(b.alloc_calls - a.alloc_calls, 1);
	CHECK(b.live - a.live == 4096);
}

int main(void)
{
	struct mf_thread *t;

	memset(&mf_cfg, 0, sizeof(mf_cfg));
	mf_cfg.account = 1;
	mf_account_init();
	mf_segw_attach();
	__atomic_store_n(&mf_state, MF_STATE_ON, __ATOMIC_RELEASE);
	t = mf_self();
	CHECK(t != NULL && mf_slot != NULL);
	if (t == NULL || mf_slot == NULL)
		return unit_done("test_shim_account");
	test_busy_section(t);
	test_published(t);
	test_process_stats(t);
	return unit_done("test_shim_account");
}
