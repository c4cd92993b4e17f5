/*
 * gate.c - the admission gate (capability 15, docs/gate.md).
 *
 * Under aggregate load, ordinary requests that together need more memory
 * than there is fail at the pressure lines (policy.c), although each would
 * have succeeded a few hundred milliseconds later. The gate makes them wait
 * instead: a request asks for its need before it starts, and is admitted
 * when the room below the lines covers what the requests already admitted
 * still need plus its own.
 *
 * Rooms. Two lines, the tighter one binds:
 *   container  limit - reserve (where policy.c starts refusing), minus the
 *              working set the supervisor sampled, plus what the admitted
 *              requests held at that sample (each up to its need: that part
 *              is already in the working set), minus the sum of the needs
 *              of every admitted request of the container (admitted_need,
 *              one shared atomic). Requests admitted or grown since the
 *              sample are counted at their full need: never too little.
 *   process    the process's soft pressure line (else its rlimit budget)
 *              minus its measured size (mf_pressure_estimate_near), minus what
 *              its admitted requests still need (need - net of their scope,
 *              at least 0).
 *
 * Order. A request that cannot go in at once takes a ticket (one shared
 * counter) and waits, polling with short sleeps. At each poll it looks at
 * the waiters ahead of it (mf_gate_decide): first come, first served while
 * they fit; a smaller request may pass a larger one that does not fit yet,
 * but only until that one has waited starve_ms, after which nobody passes
 * it, so the memory it waits for is left to drain to it. A request whose
 * need is larger than the whole line is refused at once (ETOOBIG): it
 * could never be admitted.
 *
 * Cost. When nothing waits and the room is plain, admission is a few
 * atomic operations (a load, a compare-and-swap, the claim of an entry) at
 * the start of a request; nothing at all on the allocation path. Only a
 * request that must wait scans the gate's table, at each poll.
 */
#include <time.h>
#include <unistd.h>

#include "base/lines.h"
#include "shim/config.h"
#include "shim/gate.h"
#include "shim/policy.h"
#include "shim/segw.h"

/* What a struct memfence_gate holds. */
struct handle {
	uint32_t state;  /* H_* */
	uint32_t idx;    /* entry, or MF_SEG_GATE_ENTRIES when untracked */
	uint64_t ticket; /* 0: admitted without waiting */
	uint64_t need;
	/* The process that entered: a copy of the handle in a child of fork
	 * holds nothing (the parent's admission is the parent's to leave). The
	 * arrival time is in the entry (since_ns) until the admission. */
	int32_t pid;
	uint32_t unused;
};

_Static_assert(sizeof(struct handle) <= sizeof(struct memfence_gate),
	       "struct memfence_gate is too small");

enum { H_NONE = 0, H_WAITING = 0x6a7e1, H_ADMITTED, H_UNTRACKED };

/* A scope past its need by more than need / MF_GATE_OVER_DIV may be
 * refused for taking the others' memory (mf_gate_refuse). */
#define MF_GATE_OVER_DIV 4
/* Waiters ahead a poll looks at (on the stack). */
#define MAX_AHEAD 128
#define POLL_MIN_NS (1000u * 1000)
#define POLL_MAX_NS (8000u * 1000)

/* Sum of the needs this process has admitted (the fast path's estimate of
 * what they still need: never less than the truth). */
static uint64_t own_need;

static const uint64_t hist_ms[MF_SEG_GATE_HIST] = MF_SEG_GATE_HIST_MS;

static pid_t self_pid(void)
{
	return mf_slot != NULL ? mf_slot->pid : getpid();
}

static struct mf_seg_gate *gate_on(void)
{
	struct mf_seg_header *h = mf_seg;
	struct mf_seg_gate *g;

	if (h == NULL || h->gate_offset == 0)
		return NULL;
	g = mf_seg_gate_of(h);
	return __atomic_load_n(&g->on, __ATOMIC_ACQUIRE) ? g : NULL;
}

/* ---- the policy ---- */

bool mf_gate_decide(uint64_t need, int64_t room_c, int64_t room_p,
		    const struct mf_gate_waiter *ahead, uint32_t nahead, bool any_admitted)
{
	int64_t rc = room_c, rp = room_p;

	if (nahead == 0 && !any_admitted)
		return true;
	for (uint32_t i = 0; i < nahead; i++) {
		const struct mf_gate_waiter *w = &ahead[i];
		int64_t n = w->need > INT64_MAX / 4 ? INT64_MAX / 4 : (int64_t)w->need;
		bool fits = n <= rc && (!w->own || n <= rp);

		if (!fits && !w->urgent)
			continue; /* passed, for now */
		if (rc != INT64_MAX)
			rc -= n;
		if (w->own && rp != INT64_MAX)
			rp -= n;
	}
	if (need > (uint64_t)INT64_MAX)
		return false;
	return (int64_t)need <= rc && (int64_t)need <= rp;
}

/* ---- the rooms ---- */

/* The container's line and its room with admitted_need counted; false when
 * the supervisor publishes no limit. */
static bool container_room(uint64_t admitted, int64_t *room, uint64_t *line)
{
	struct mf_seg_container f;
	uint64_t limit, ws, reserve, covered;
	int64_t r;

	if (!mf_seg_container_read(&mf_seg->container, &f, 8))
		return false;
	limit = f.limit;
	ws = f.working_set;
	reserve = f.reserve;
	covered = f.gate_covered;
	if (limit == 0)
		return false;
	*line = mf_lines_below(limit, reserve).soft;
	r = (int64_t)*line - (int64_t)ws + (int64_t)(covered < ws ? covered : ws);
	*room = r - (admitted > (uint64_t)INT64_MAX / 2 ? INT64_MAX / 2 : (int64_t)admitted);
	return true;
}

static uint64_t process_line(void)
{
	return mf_cfg.press_soft != 0 ? mf_cfg.press_soft : mf_cfg.press_limit;
}

/* The line a request's need is measured against: the tighter of the
 * container's and the process's, 0 when neither is known. */
static uint64_t whole_line(void)
{
	uint64_t line_c = 0, line_p = process_line();
	int64_t room;

	if (mf_seg == NULL || !container_room(0, &room, &line_c))
		line_c = 0;
	return line_c == 0 ? line_p : (line_p == 0 || line_c < line_p ? line_c : line_p);
}

/* est: the process's measured size (mf_pressure_estimate, or at admission
 * mf_pressure_estimate_near). */
static int64_t process_room(uint64_t line, uint64_t outstanding, uint64_t est)
{
	if (outstanding > (uint64_t)INT64_MAX / 2)
		outstanding = (uint64_t)INT64_MAX / 2;
	return (int64_t)line - (int64_t)est - (int64_t)outstanding;
}

/* What an admitted entry still needs: its need minus the net its linked
 * scope holds now (the scope still being the one it was linked to). */
static uint64_t outstanding(const struct mf_seg_gate_entry *e)
{
	uint64_t need = __atomic_load_n(&e->need, __ATOMIC_RELAXED);
	int32_t slot = __atomic_load_n(&e->slot, __ATOMIC_RELAXED);
	int32_t scope = __atomic_load_n(&e->scope, __ATOMIC_RELAXED);
	const struct mf_seg_scope *se;
	int64_t net;

	if (slot < 0 || scope < 0 || (uint32_t)slot >= mf_seg->nslots ||
	    (uint32_t)scope >= mf_seg->scopes_per_slot)
		return need;
	se = &mf_seg_slot_at(mf_seg, (uint32_t)slot)->scopes[scope];
	if (!__atomic_load_n(&se->in_use, __ATOMIC_RELAXED) ||
	    __atomic_load_n(&se->start_ns, __ATOMIC_RELAXED) !=
		    __atomic_load_n(&e->scope_start, __ATOMIC_RELAXED))
		return need;
	net = __atomic_load_n(&se->net, __ATOMIC_RELAXED);
	return net <= 0 ? need : ((uint64_t)net >= need ? 0 : need - (uint64_t)net);
}

/* ---- names and needs ---- */

static uint32_t name_index(struct mf_seg_gate *g, const char *name)
{
	uint64_t h = mf_seg_name_hash(name);

	for (uint32_t k = 0; k < MF_SEG_GATE_NAMES; k++) {
		struct mf_seg_gate_name *n = &g->names[(h + k) % MF_SEG_GATE_NAMES];
		uint64_t cur = __atomic_load_n(&n->hash, __ATOMIC_ACQUIRE), zero = 0;

		if (cur == 0 && __atomic_compare_exchange_n(&n->hash, &zero, h, 0, __ATOMIC_ACQ_REL,
							    __ATOMIC_ACQUIRE)) {
			mf_strlcpy(n->name, name, sizeof(n->name));
			__atomic_store_n(&n->ready, 1, __ATOMIC_RELEASE);
			return (uint32_t)((h + k) % MF_SEG_GATE_NAMES);
		}
		if (zero == h || cur == h)
			return (uint32_t)((h + k) % MF_SEG_GATE_NAMES);
	}
	return MF_SEG_GATE_NAMES;
}

#define NAME_ADD(g, idx, field, v)                                                   \
	do {                                                                         \
		if ((idx) < MF_SEG_GATE_NAMES)                                       \
			__atomic_fetch_add(&(g)->names[idx].field, (v), __ATOMIC_RELAXED); \
	} while (0)

/*
 * The need of a kind nothing is known of yet (not learned, no budget, no
 * --gate-need): a quarter of the line, at most MF_GATE_NEED_AUTO_MAX. The
 * quarter keeps a small container careful while the first scopes of a kind
 * have not ended (a burst of unknown requests at the start goes in a few at
 * a time, as measured safe in 384 and 512 MiB containers, docs/gate.md);
 * the bound keeps a large one from making the first requests after a start
 * wait on a guess (in 4 GiB, with 8 requests of 4 MiB at once, 10 of the
 * first 48 waited where hundreds fit). 64 MiB is above what the ordinary
 * requests of the request server tests need (5 to 80 MiB), and lets 8
 * unknown requests start at once wherever 512 MiB under the line are free.
 */
#define MF_GATE_NEED_AUTO_MAX (64ull << 20)

static uint64_t need_auto(uint64_t line)
{
	return line / 4 < MF_GATE_NEED_AUTO_MAX ? line / 4 : MF_GATE_NEED_AUTO_MAX;
}

/* The need to ask for: the caller's, else the learned one of the name,
 * else the scope's budget, else the default. */
static uint64_t need_of(struct mf_seg_gate *g, struct mf_thread *t, uint32_t idx, uint64_t need,
			uint64_t line)
{
	uint64_t d;

	if (need != 0)
		return need;
	if (idx < MF_SEG_GATE_NAMES && (need = __atomic_load_n(&g->names[idx].need,
								__ATOMIC_RELAXED)) != 0)
		return need;
	if (t != NULL && t->depth > 0 && t->scopes[t->depth - 1].fig.budget != 0)
		return t->scopes[t->depth - 1].fig.budget;
	d = __atomic_load_n(&g->default_need, __ATOMIC_RELAXED);
	return d != 0 ? d : need_auto(line);
}

/* ---- entries ---- */

static struct mf_seg_gate_entry *entry_claim(struct mf_seg_gate *g, uint32_t *idx)
{
	for (uint32_t i = 0; i < MF_SEG_GATE_ENTRIES; i++) {
		struct mf_seg_gate_entry *e = &g->entries[i];
		uint32_t free_ = MF_GATE_FREE;

		if (__atomic_load_n(&e->state, __ATOMIC_RELAXED) == MF_GATE_FREE &&
		    __atomic_compare_exchange_n(&e->state, &free_, MF_GATE_CLAIMED, 0,
						__ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
			uint64_t hw = __atomic_load_n(&g->entries_hw, __ATOMIC_RELAXED);

			while (hw < i + 1u && !__atomic_compare_exchange_n(&g->entries_hw, &hw, i + 1u, 1,
									   __ATOMIC_RELAXED, __ATOMIC_RELAXED))
				;
			*idx = i;
			return e;
		}
	}
	return NULL;
}

static void entry_link(struct mf_seg_gate_entry *e, struct mf_thread *t)
{
	const struct mf_scope *s;

	e->slot = -1;
	e->scope = -1;
	e->scope_start = 0;
	if (t == NULL || t->depth == 0 || mf_slot == NULL)
		return;
	s = &t->scopes[t->depth - 1];
	if (s->entry < 0)
		return;
	e->slot = (int32_t)(((char *)mf_slot - ((char *)mf_seg + mf_seg->slots_offset)) /
			    mf_seg->slot_size);
	e->scope = s->entry;
	e->scope_start = s->start_real;
}

static void admitted(struct mf_seg_gate *g, struct handle *hd)
{
	struct mf_seg_gate_entry *e = &g->entries[hd->idx];
	uint32_t ni = e->name_idx;
	uint64_t now = mf_now_mono(), arrived = __atomic_load_n(&e->since_ns, __ATOMIC_RELAXED);

	__atomic_fetch_add(&own_need, hd->need, __ATOMIC_RELAXED);
	__atomic_store_n(&e->since_ns, now, __ATOMIC_RELAXED);
	__atomic_store_n(&e->state, MF_GATE_ADMITTED, __ATOMIC_RELEASE);
	NAME_ADD(g, ni, admitted, 1);
	if (hd->ticket != 0) {
		uint64_t waited = now - arrived, ms = waited / 1000000u;
		uint32_t b = 0;

		__atomic_fetch_sub(&g->waiting, 1, __ATOMIC_RELAXED);
		while (b < MF_SEG_GATE_HIST && ms >= hist_ms[b])
			b++;
		__atomic_fetch_add(&g->hist[b], 1, __ATOMIC_RELAXED);
		NAME_ADD(g, ni, waited, 1);
		NAME_ADD(g, ni, wait_ns, waited);
	}
	hd->state = H_ADMITTED;
}

/*
 * One look at the gate for the request of hd (ticket 0: it has not queued
 * yet). fast: only the shared sum and this process's own, no scan. True
 * when admitted.
 */
static bool try_admit(struct mf_seg_gate *g, struct handle *hd, bool fast)
{
	struct mf_gate_waiter ahead[MAX_AHEAD];
	uint64_t line_p = process_line(), line_c = 0, mine = 0, sum;
	uint64_t starve = __atomic_load_n(&g->starve_ms, __ATOMIC_RELAXED) * 1000000u;
	uint64_t now = mf_now_mono();
	int64_t room_c = INT64_MAX, room_p = INT64_MAX;
	bool any = false;
	uint32_t n = 0;
	pid_t self = self_pid();

	if (fast) {
		mine = __atomic_load_n(&own_need, __ATOMIC_RELAXED);
	} else {
		/* States first, the sum after: a request admitted meanwhile is
		 * then seen in the sum at least (counted twice at worst). */
		for (uint32_t i = 0; i < mf_seg_gate_entries_used(g); i++) {
			struct mf_seg_gate_entry *e = &g->entries[i];
			uint32_t st = __atomic_load_n(&e->state, __ATOMIC_ACQUIRE);
			bool own = __atomic_load_n(&e->pid, __ATOMIC_RELAXED) == self;

			if (st == MF_GATE_ADMITTED) {
				any = true;
				if (own)
					mine += outstanding(e);
			} else if (st == MF_GATE_WAITING && i != hd->idx) {
				uint64_t tk = __atomic_load_n(&e->ticket, __ATOMIC_RELAXED);
				uint64_t since = __atomic_load_n(&e->since_ns, __ATOMIC_RELAXED);

				if (hd->ticket != 0 && tk >= hd->ticket)
					continue;
				if (n == MAX_AHEAD)
					return false; /* a long queue ahead: it goes first */
				ahead[n].ticket = tk;
				ahead[n].need = __atomic_load_n(&e->need, __ATOMIC_RELAXED);
				ahead[n].urgent = starve != 0 && now > since && now - since >= starve;
				ahead[n].own = own;
				n++;
			}
		}
		/* Ticket order (a few entries: insertion sort). */
		for (uint32_t i = 1; i < n; i++) {
			struct mf_gate_waiter w = ahead[i];
			uint32_t j = i;

			for (; j > 0 && ahead[j - 1].ticket > w.ticket; j--)
				ahead[j] = ahead[j - 1];
			ahead[j] = w;
		}
	}
	sum = __atomic_load_n(&g->admitted_need, __ATOMIC_ACQUIRE);
	if (!container_room(sum, &room_c, &line_c))
		room_c = INT64_MAX;
	if (line_p != 0)
		room_p = process_room(line_p, mine,
				      mf_pressure_estimate_near(line_p, mine + hd->need));
	if (fast)
		any = true; /* unknown: no "first while nothing is admitted" */
	if (!mf_gate_decide(hd->need, room_c, room_p, ahead, n, any))
		return false;
	if (!__atomic_compare_exchange_n(&g->admitted_need, &sum, sum + hd->need, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return false; /* someone was admitted meanwhile: look again */
	admitted(g, hd);
	return true;
}

static void nap(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
			      .tv_nsec = (long)(ns % 1000000000u)};

	nanosleep(&ts, NULL);
}

static uint64_t timeout_ns(struct mf_seg_gate *g, int timeout_ms)
{
	if (timeout_ms < 0)
		return __atomic_load_n(&g->max_wait_ms, __ATOMIC_RELAXED) * 1000000u;
	return (uint64_t)timeout_ms * 1000000u;
}

static int wait_for(struct mf_seg_gate *g, struct handle *hd, int timeout_ms)
{
	uint64_t start = mf_now_mono(), limit = timeout_ns(g, timeout_ms), pause = POLL_MIN_NS;

	for (;;) {
		/* A lost race for the sum is retried at once, a few times. */
		for (int k = 0; k < 4; k++)
			if (try_admit(g, hd, false))
				return MEMFENCE_OK;
		uint64_t spent = mf_now_mono() - start;
		if (spent >= limit)
			return MEMFENCE_EWAIT;
		nap(pause < limit - spent ? pause : limit - spent);
		if (pause < POLL_MAX_NS)
			pause *= 2;
	}
}

/* ---- the API ---- */

/* The scope the request runs in remembers its need (mf_gate_refuse): the
 * innermost scope of t. After a later wait (linked_only), only when it is
 * the one the entry was linked to at its arrival: the wait may run on
 * another thread, or between two steps of a request whose scope is
 * suspended meanwhile (an asyncio request). */
static int scope_admitted(struct mf_thread *t, const struct handle *hd, bool linked_only)
{
	struct mf_seg_gate *g = gate_on();
	const struct mf_seg_gate_entry *e;
	struct mf_scope *s;

	if (t == NULL || t->depth == 0 || g == NULL || hd->idx >= MF_SEG_GATE_ENTRIES)
		return MEMFENCE_OK;
	s = &t->scopes[t->depth - 1];
	e = &g->entries[hd->idx];
	if (!linked_only || (e->scope >= 0 && s->entry == e->scope &&
			     s->start_real == e->scope_start))
		s->gate_need = hd->need;
	return MEMFENCE_OK;
}

/*
 * The gate promises the requests it admits the memory they need; a request
 * that grows far past its own need (an oversized one, admitted with what
 * its kind usually needs) takes what was promised to the others, and they
 * would then fail at the pressure lines in its place. So an allocation of
 * a scope already past MF_GATE_OVER times its need is refused when it does
 * not fit in the room left once the others' outstanding needs are counted:
 * the scope that went over is the one that fails, as policy.c refuses the
 * largest scope first. A scope within that margin is never refused here
 * (a need is a percentile: some requests of a kind exceed it a little),
 * nor one while a larger scope is in flight where the room is short (the
 * process, or any process of the container): an ordinary request a little
 * past its need in one worker must not fail while an oversized one in
 * another worker takes the room; that one is refused first, here or at the
 * lines (zero collateral across processes).
 */
int mf_gate_refuse(struct mf_thread *t, uint64_t req)
{
	struct mf_seg_gate *g;
	uint64_t need = 0, line_p, line_c, mine = 0, sum;
	int64_t net = 0, room;
	pid_t self;

	if (t == NULL || t->depth == 0 || req > (uint64_t)INT64_MAX / 4)
		return 0;
	for (int i = 0; i < t->depth; i++)
		if (t->scopes[i].gate_need != 0) {
			need = t->scopes[i].gate_need;
			net = t->scopes[i].fig.net;
			break;
		}
	if (need == 0 || net + (int64_t)req <= (int64_t)(need + need / MF_GATE_OVER_DIV))
		return 0;
	if ((g = gate_on()) == NULL)
		return 0;
	self = self_pid();
	for (uint32_t i = 0; i < mf_seg_gate_entries_used(g); i++) {
		struct mf_seg_gate_entry *e = &g->entries[i];

		if (__atomic_load_n(&e->state, __ATOMIC_ACQUIRE) == MF_GATE_ADMITTED &&
		    __atomic_load_n(&e->pid, __ATOMIC_RELAXED) == self)
			mine += outstanding(e);
	}
	line_p = process_line();
	if (line_p != 0 && process_room(line_p, mine, mf_pressure_estimate()) < (int64_t)req)
		return !mf_larger_in_flight(t, net + (int64_t)req, false);
	/* The container's room counts every admitted need, this scope's
	 * included: it holds more than its need, so give that back. */
	sum = __atomic_load_n(&g->admitted_need, __ATOMIC_ACQUIRE);
	if (container_room(sum, &room, &line_c) && room + (int64_t)need < (int64_t)req)
		return !mf_larger_in_flight(t, net + (int64_t)req, true);
	return 0;
}

int mf_gate_enter(struct mf_thread *t, struct memfence_gate *out, const char *name,
		  uint64_t need, int timeout_ms)
{
	struct handle *hd = (struct handle *)out;
	struct mf_seg_gate *g = gate_on();
	struct mf_seg_gate_entry *e;
	uint64_t line;
	uint32_t ni;

	/* One admission per handle: entered again, it leaves the first (kept,
	 * it would hold its need until the process ends). */
	mf_gate_leave(out);
	hd->pid = self_pid();
	if (g == NULL)
		return MEMFENCE_EOFF;
	line = whole_line();
	ni = name_index(g, name != NULL ? name : "");
	need = need_of(g, t, ni, need, line);
	hd->need = need;
	hd->ticket = 0;
	if (need == 0 || line == 0) {
		/* Nothing to ask for, or no line to ask against. */
		hd->state = H_UNTRACKED;
		NAME_ADD(g, ni, admitted, 1);
		return MEMFENCE_OK;
	}
	if (mf_gate_fit(line, 0, need) == 0) {
		NAME_ADD(g, ni, too_big, 1);
		return MEMFENCE_ETOOBIG;
	}
	e = entry_claim(g, &hd->idx);
	if (e == NULL) {
		/* More requests at the gate than it can list: let it through
		 * rather than make it wait on nothing. */
		hd->state = H_UNTRACKED;
		__atomic_fetch_add(&g->untracked, 1, __ATOMIC_RELAXED);
		NAME_ADD(g, ni, admitted, 1);
		return MEMFENCE_OK;
	}
	e->pid = hd->pid;
	e->tid = t != NULL ? t->tid : 0;
	e->need = need;
	e->name_idx = ni;
	e->ticket = 0;
	e->since_ns = mf_now_mono();
	entry_link(e, t);
	if (__atomic_load_n(&g->waiting, __ATOMIC_ACQUIRE) == 0 &&
	    (try_admit(g, hd, true) || try_admit(g, hd, false)))
		return scope_admitted(t, hd, false);
	/* Queue: the ticket is written before the entry shows as waiting. */
	hd->ticket = __atomic_add_fetch(&g->next_ticket, 1, __ATOMIC_ACQ_REL);
	__atomic_store_n(&e->ticket, hd->ticket, __ATOMIC_RELAXED);
	__atomic_fetch_add(&g->waiting, 1, __ATOMIC_ACQ_REL);
	__atomic_store_n(&e->state, MF_GATE_WAITING, __ATOMIC_RELEASE);
	hd->state = H_WAITING;
	if (wait_for(g, hd, timeout_ms) != MEMFENCE_OK)
		return MEMFENCE_EWAIT;
	return scope_admitted(t, hd, false);
}

int mf_gate_wait(struct mf_thread *t, struct memfence_gate *out, int timeout_ms)
{
	struct handle *hd = (struct handle *)out;
	struct mf_seg_gate *g = gate_on();

	if (hd->pid != self_pid())
		return MEMFENCE_EOFF;    /* entered by the parent of this fork */
	if (hd->state == H_ADMITTED)
		return scope_admitted(t, hd, true);
	if (hd->state == H_UNTRACKED)
		return MEMFENCE_OK;
	if (g == NULL || hd->state != H_WAITING)
		return MEMFENCE_EOFF;
	if (wait_for(g, hd, timeout_ms) != MEMFENCE_OK)
		return MEMFENCE_EWAIT;
	return scope_admitted(t, hd, true);
}

int mf_gate_leave(struct memfence_gate *out)
{
	struct handle *hd = (struct handle *)out;
	struct mf_seg_gate *g = mf_seg != NULL && mf_seg->gate_offset != 0 ? mf_seg_gate_of(mf_seg)
									    : NULL;
	struct mf_seg_gate_entry *e;

	if (g == NULL || (hd->state != H_WAITING && hd->state != H_ADMITTED) ||
	    hd->pid != self_pid() || hd->idx >= MF_SEG_GATE_ENTRIES) {
		hd->state = H_NONE;
		return MEMFENCE_OK;
	}
	e = &g->entries[hd->idx];
	if (hd->state == H_ADMITTED) {
		__atomic_fetch_sub(&g->admitted_need, hd->need, __ATOMIC_ACQ_REL);
		__atomic_fetch_sub(&own_need, hd->need, __ATOMIC_RELAXED);
	} else {
		__atomic_fetch_sub(&g->waiting, 1, __ATOMIC_RELAXED);
		NAME_ADD(g, e->name_idx, timed_out, 1);
	}
	__atomic_store_n(&e->state, MF_GATE_FREE, __ATOMIC_RELEASE);
	hd->state = H_NONE;
	return MEMFENCE_OK;
}

/* The child of a fork holds no admission: the parent's handles are left by
 * the parent, and the child's scopes were admitted with nothing. */
void mf_gate_atfork_child(struct mf_thread *self)
{
	own_need = 0;
	if (self > MF_EXITED)
		for (int i = 0; i < self->depth; i++)
			self->scopes[i].gate_need = 0;
}

int mf_gate_max_wait(void)
{
	struct mf_seg_gate *g = gate_on();
	uint64_t ms;

	if (g == NULL)
		return MEMFENCE_EOFF;
	ms = __atomic_load_n(&g->max_wait_ms, __ATOMIC_RELAXED);
	return ms > (uint64_t)INT32_MAX ? INT32_MAX : (int)ms;
}

/*
 * A refusal is permanent when no retry could pass it: the scope crossed its
 * own budget, or what it held plus what it asked for is more than the whole
 * line (or the heap limit) even with nothing else running. Otherwise it
 * was refused for memory others held, which frees up.
 */
int mf_gate_refusal_kind(const struct mf_seg_figures *f)
{
	uint64_t asked = f->refused_net + f->refused_size, line;

	if (f->refused_rule == MF_RULE_NONE)
		return MEMFENCE_REFUSAL_NONE;
	if (f->refused_rule == MF_RULE_BUDGET)
		return MEMFENCE_REFUSAL_PERMANENT;
	if (f->refused_rule == MF_RULE_FAULT)
		return MEMFENCE_REFUSAL_TRANSIENT;
	line = whole_line();
	if ((line != 0 && asked > line) || (mf_cfg.heap_limit != 0 && asked > mf_cfg.heap_limit))
		return MEMFENCE_REFUSAL_PERMANENT;
	return MEMFENCE_REFUSAL_TRANSIENT;
}
