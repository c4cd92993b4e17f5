/*
 * policy.c - admission: every reason the shim refuses an allocation.
 *
 *   fault injection   MEMFENCE_FAULT, deterministic per process (config.c
 *                     parses the spec)
 *   budgets           a scope's budget: the allocation that would cross it
 *                     fails, checked on the request before the real call and
 *                     on the usable size after it
 *   heap limit        MEMFENCE_HEAP_LIMIT on process live bytes, through the
 *                     credit ledger of account.c
 *   pressure          zero collateral near the process's own limit
 *   container         zero collateral near the container's limit, from the
 *                     headroom the supervisor publishes in the segment
 *
 * Zero collateral. RLIMIT_DATA fails whichever allocation happens to cross
 * it. When one oversized request has eaten the headroom, that is as likely
 * to be a small, ordinary request running beside it (the seed measured 0
 * to 13 ordinary failures in 295 calls). So below a limit the shim draws
 * two lines, the way Envoy's overload manager resets its largest streams
 * first (mf_zone_of, mf_largest_refused):
 *
 *   soft   above it, a large allocation (>= MF_LARGE) is refused only if it
 *          comes from the in-flight scope that would then hold the most net
 *          bytes: the oversized request fails, the others go on;
 *   hard   above it, a scope that is not the largest is still admitted
 *          while a larger one in flight holds at least the excess over the
 *          soft line (est - soft, mf_larger_yields): that one is refused at
 *          its next large allocation, and its unwinding brings the process
 *          back below soft. Else every large allocation is refused.
 *   last   above it (halfway from hard to the limit), every large
 *          allocation is refused, so that what the program still needs
 *          outside requests (the C runtime, gRPC's core, which aborts on
 *          NULL) finds the rest free.
 *
 * Why the band between hard and last: the oversized request is refused
 * only when it next allocates, and while it unwinds the others keep
 * growing. With the hard line as the last one, ordinary requests of 11 to
 * 17 MiB were refused there in 2 of 16 runs of the model server on a
 * loaded machine (load 8 to 14), while a 210 MiB request beside them had
 * not yet been refused or was still freeing. Making them wait instead
 * cannot help: a Python thread blocked in malloc holds the GIL, which the
 * oversized thread needs to allocate or to free.
 *
 * Small allocations are not checked at all, so the policy costs nothing on
 * the hot path; they are also what a C library is least prepared to see
 * fail.
 *
 * The process's lines (MEMFENCE_PRESSURE, mf_pressure_lines) sit below its
 * rlimit. Allocations outside any scope are never refused for them, nor
 * those of a scope holding less than MF_PRESS_MIN_NET: the runtime makes
 * them, and a NULL there may be fatal. What the rlimit counts is the virtual
 * size of private writable mappings (mm->data_vm), not live heap: glibc
 * keeps freed memory in its arenas, thread stacks count in full. So the
 * distance to the limit is measured: /proc/self/statm (its "data" field,
 * data_vm + stack_vm, in pages; "size" under RLIMIT_AS) is read at most
 * every MF_PRESS_SAMPLE_NS, by one thread at a time, and between two reads
 * the growth of the process's live bytes is added to the last reading.
 * statm is O(1) in the kernel (counters of the mm, no walk of the
 * mappings): three system calls per sample.
 *
 * The container's lines (capability 5) sit below the cgroup's limit, at the
 * reserve, at half of it and at a quarter of it (the last); the largest
 * scope is looked for in every process of the segment, so that an ordinary
 * request in one worker is admitted while an oversized one in another holds
 * the excess, and pre-fork workers without scopes (no scope of
 * MF_PRESS_MIN_NET in flight anywhere: nobody to prefer) are refused
 * between the lines as well.
 */
#include <malloc.h>

#include "base/lines.h"
#include "base/proc.h"
#include "shim/config.h"
#include "shim/policy.h"
#include "shim/segw.h"

#define MF_PRESS_SAMPLE_NS (2u * 1000 * 1000)
/* How long a sample stands for mf_pressure_estimate_near while the
 * process is far from the line it asks about. */
#define MF_PRESS_FAR_NS (100u * 1000 * 1000)

static uint64_t fault_calls; /* atomic: matching allocations so far */
static uint64_t fault_bytes; /* atomic: matching bytes so far */

static uint64_t smp_data; /* atomic: bytes measured at the last sample */
static uint64_t smp_live; /* atomic: process live bytes at that sample */
static uint64_t smp_ns;   /* atomic: CLOCK_MONOTONIC of the last sample */

/* Our live bytes when we first saw the supervisor's current sample. */
static uint64_t seen_updated, seen_live;

/* ---- fault injection ---- */

static int scope_matches(struct mf_thread *t, const char *pat)
{
	if (pat[0] == '\0')
		return 1;
	if (t == NULL)
		return 0;
	for (int i = 0; i < t->depth; i++)
		if (mf_glob(pat, t->scopes[i].name))
			return 1;
	return 0;
}

static int fault_alloc(struct mf_thread *t, uint64_t req)
{
	const struct mf_fault *f = &mf_cfg.fault;
	uint64_t n, before;

	if (req < f->min_size || !scope_matches(t, f->scope))
		return 0;
	n = __atomic_add_fetch(&fault_calls, 1, __ATOMIC_RELAXED);
	before = __atomic_fetch_add(&fault_bytes, req, __ATOMIC_RELAXED);
	if (f->nth != 0 && n != f->nth)
		return 0;
	if (f->every != 0 && n % f->every != 0)
		return 0;
	if (f->after_set && before + req <= f->after)
		return 0;
	return 1;
}

int mf_fault_thread(struct mf_thread *t)
{
	if (mf_cfg.fault.thread_errno == 0 || !scope_matches(t, mf_cfg.fault.scope))
		return 0;
	return mf_cfg.fault.thread_errno;
}

/* ---- budgets ---- */

/* Would any open scope's net pass its budget with grow more bytes? */
static int over_budget(const struct mf_thread *t, uint64_t grow)
{
	for (int i = 0; i < t->depth; i++) {
		const struct mf_scope *s = &t->scopes[i];
		if (s->fig.budget != 0 && s->fig.net + (int64_t)grow > (int64_t)s->fig.budget)
			return 1;
	}
	return 0;
}

/* ---- the rule both lines share ---- */

enum mf_zone mf_zone_of(uint64_t est, uint64_t soft, uint64_t hard)
{
	if (est <= soft)
		return MF_ZONE_BELOW;
	return est > hard ? MF_ZONE_ABOVE : MF_ZONE_BETWEEN;
}

bool mf_largest_refused(int64_t own, int64_t largest_other)
{
	return largest_other < (int64_t)MF_PRESS_MIN_NET || own >= largest_other;
}

bool mf_larger_yields(int64_t own, int64_t largest_other, uint64_t excess)
{
	return !mf_largest_refused(own, largest_other) && excess <= INT64_MAX &&
	       largest_other >= (int64_t)excess;
}

/*
 * The three lines, for the process and the container alike: est is the
 * measure with the allocation, own what the allocating scope would hold,
 * largest(t) the largest other scope in flight where the lines apply
 * (called only above soft, where it is worth its scan).
 */
static int lines_refuse(uint64_t est, uint64_t soft, uint64_t hard, uint64_t last, int64_t own,
			int64_t (*largest)(const struct mf_thread *), const struct mf_thread *t)
{
	enum mf_zone zone = mf_zone_of(est, soft, hard);
	int64_t other;

	if (zone == MF_ZONE_BELOW)
		return 0;
	/* No last line set (0, or below hard): the hard line is the last. */
	if (zone == MF_ZONE_ABOVE && est > last)
		return 1;
	other = largest(t);
	if (zone == MF_ZONE_BETWEEN)
		return mf_largest_refused(own, other);
	return !mf_larger_yields(own, other, est - soft);
}

int64_t mf_scope_own_net(const struct mf_thread *t)
{
	int64_t most = 0;

	/* The outermost scope holds what the inner ones do, unless an inner
	 * one started before a big free: take the largest. */
	for (int i = 0; i < t->depth; i++)
		if (t->scopes[i].fig.net > most)
			most = t->scopes[i].fig.net;
	return most;
}

int mf_scope_is_own(const struct mf_thread *t, uint32_t entry)
{
	for (int i = 0; i < t->depth; i++)
		if (t->scopes[i].entry == (int32_t)entry)
			return 1;
	return 0;
}

/*
 * Net bytes of the largest scope in flight in slot s other than t's open
 * ones (when s is our own slot), as last published (at most one flush
 * behind). Suspended scopes count, whichever thread suspended them: an
 * asyncio request between two steps is as large as it was.
 */
static int64_t largest_in_slot(const struct mf_seg_slot *s, uint32_t nscopes,
			       const struct mf_thread *t)
{
	int64_t most = 0;

	for (uint32_t i = 0; i < nscopes; i++) {
		const struct mf_seg_scope *e = &s->scopes[i];
		int64_t net;

		if (__atomic_load_n(&e->in_use, __ATOMIC_RELAXED) == 0)
			continue;
		if (t != NULL && s == mf_slot && mf_scope_is_own(t, i))
			continue;
		net = __atomic_load_n(&e->net, __ATOMIC_RELAXED);
		if (net > most)
			most = net;
	}
	return most;
}

/* ---- pressure: near the process's own limit ---- */

static uint64_t live_now(void)
{
	int64_t live = mf_slot != NULL ? (int64_t)__atomic_load_n(&mf_slot->live, __ATOMIC_RELAXED) : 0;

	return live > 0 ? (uint64_t)live : 0;
}

/* The last sample plus the live growth since. */
static uint64_t estimate_from_sample(void)
{
	uint64_t data = __atomic_load_n(&smp_data, __ATOMIC_RELAXED);
	uint64_t base = __atomic_load_n(&smp_live, __ATOMIC_RELAXED), live = live_now();

	return data + (live > base ? live - base : 0);
}

/* A new sample when the last is older than age_ns; one sampler at a time,
 * the others use the previous reading. */
static uint64_t estimate(uint64_t now, uint64_t at, uint64_t age_ns)
{
	if (now - at >= age_ns &&
	    __atomic_compare_exchange_n(&smp_ns, &at, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
		uint64_t d;
		if (mf_statm_read(mf_cfg.press_measure_size ? MF_STATM_SIZE : MF_STATM_DATA, &d) == 0) {
			__atomic_store_n(&smp_live, live_now(), __ATOMIC_RELAXED);
			__atomic_store_n(&smp_data, d, __ATOMIC_RELAXED);
		}
	}
	return estimate_from_sample();
}

uint64_t mf_pressure_estimate(void)
{
	return estimate(mf_now_mono(), __atomic_load_n(&smp_ns, __ATOMIC_RELAXED),
			MF_PRESS_SAMPLE_NS);
}

/*
 * Reading /proc/self/statm is three system calls, where the rest of an
 * admission is a few atomic operations, and a worker that runs a task every
 * millisecond would read it at nearly every task. Far from the line (more than a quarter
 * of it free beyond extra) the previous sample stands for up to
 * MF_PRESS_FAR_NS: what malloc gives is counted anyway (live growth), and
 * growth it cannot see (mappings of its own) would have to exceed a quarter
 * of the line in that time to change the answer. The refusals at allocation
 * keep the 2 ms sample.
 */
uint64_t mf_pressure_estimate_near(uint64_t line, uint64_t extra)
{
	uint64_t now = mf_now_mono(), at = __atomic_load_n(&smp_ns, __ATOMIC_RELAXED);

	if (at != 0 && now - at < MF_PRESS_FAR_NS) {
		uint64_t est = estimate_from_sample();

		if (est < line && line - est > extra && line - est - extra > line / 4)
			return est;
	}
	return estimate(now, at, MF_PRESS_SAMPLE_NS);
}

static int64_t largest_in_process(const struct mf_thread *t)
{
	return mf_seg != NULL && mf_slot != NULL ? largest_in_slot(mf_slot, mf_seg->scopes_per_slot, t)
						 : 0;
}

int mf_pressure_refuse(struct mf_thread *t, uint64_t req)
{
	int64_t own;

	if (t == NULL || t->depth == 0 || req > INT64_MAX)
		return 0;
	own = mf_scope_own_net(t) + (int64_t)req;
	if (own < (int64_t)MF_PRESS_MIN_NET)
		return 0;
	return lines_refuse(mf_pressure_estimate() + req, mf_cfg.press_soft, mf_cfg.press_hard,
			    mf_cfg.press_last, own, largest_in_process, t);
}

/* ---- container headroom ---- */

/* Net bytes of the largest scope in flight in the whole segment (every
 * process of the container), leaving out thread t's open ones. */
static int64_t largest_in_segment(const struct mf_thread *t)
{
	struct mf_seg_header *h = mf_seg;
	int64_t most = 0;

	for (uint32_t i = 0; i < h->nslots; i++) {
		struct mf_seg_slot *s = mf_seg_slot_at(h, i);
		int64_t net;

		if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != MF_SLOT_LIVE)
			continue;
		net = largest_in_slot(s, h->scopes_per_slot, t);
		if (net > most)
			most = net;
	}
	return most;
}

bool mf_larger_in_flight(const struct mf_thread *t, int64_t own, bool container)
{
	if (mf_seg == NULL)
		return false;
	return !mf_largest_refused(own, container ? largest_in_segment(t) : largest_in_process(t));
}

/*
 * What the other processes of the segment allocated (positive) or freed
 * since the supervisor's sample of `updated`: their live bytes now against
 * those it read as it published that sample (segment.h, sampled_live). A
 * slot it has not stamped for this sample (claimed since, or a sample
 * being published) adds nothing.
 */
static int64_t others_change(uint64_t updated)
{
	struct mf_seg_header *h = mf_seg;
	int64_t sum = 0;

	for (uint32_t i = 0; i < h->nslots; i++) {
		struct mf_seg_slot *s = mf_seg_slot_at(h, i);

		if (s == mf_slot || __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != MF_SLOT_LIVE ||
		    __atomic_load_n(&s->sampled_ns, __ATOMIC_ACQUIRE) != updated)
			continue;
		sum += (int64_t)__atomic_load_n(&s->live, __ATOMIC_RELAXED) -
		       (int64_t)__atomic_load_n(&s->sampled_live, __ATOMIC_RELAXED);
	}
	return sum;
}

static uint64_t add_signed(uint64_t v, int64_t d)
{
	if (d >= 0)
		return v + (uint64_t)d;
	return v > (uint64_t)-d ? v - (uint64_t)-d : 0;
}

/*
 * The supervisor samples the cgroup's working set several times a second,
 * so the figure is stale. Until its next sample, this process's own change
 * since it first saw the current one is added, so that a burst of
 * allocations cannot all pass on one stale figure, nor a large free leave
 * the others refused. Near the lines, the change of every other process is
 * added too: an oversized request that another worker has just freed must
 * not leave this worker's ordinary request refused on the memory it no
 * longer holds (the collateral failures of pre-fork servers under load,
 * docs/accounting.md); what moves in the instant between the cgroup's figure
 * and the live bytes beside it is what the reserve is for.
 *
 * The lines (mf_lines_below, the process's too): soft at limit - reserve,
 * hard at limit - reserve / 2, last at limit - reserve / 4. Between soft and hard only the largest scope in the
 * container is refused; between hard and last a smaller one is still
 * admitted while a larger one anywhere holds the excess over soft (it is
 * refused at its next large allocation and its unwinding brings the
 * container back below soft); above last, or with nobody larger, every
 * checked allocation is refused, so that the kernel's limit is never met.
 */
int mf_container_refuse(struct mf_thread *t, uint64_t size)
{
	struct mf_seg_container f;
	struct mf_lines lines;
	uint64_t limit, ws, reserve, min_size, updated, live, seen, est;

	/* Never refuse on figures that could not be read. */
	if (mf_seg == NULL || !mf_seg_container_read(&mf_seg->container, &f, 4))
		return 0;
	limit = f.limit;
	ws = f.working_set;
	reserve = f.reserve;
	min_size = f.min_size;
	updated = f.updated_ns;
	if (limit == 0 || min_size == 0 || size < min_size)
		return 0;
	live = mf_slot != NULL ? __atomic_load_n(&mf_slot->live, __ATOMIC_RELAXED) : 0;
	if ((int64_t)live < 0)
		live = 0;
	if (__atomic_exchange_n(&seen_updated, updated, __ATOMIC_RELAXED) != updated)
		__atomic_store_n(&seen_live, live, __ATOMIC_RELAXED);
	seen = __atomic_load_n(&seen_live, __ATOMIC_RELAXED);
	/* Signed: a large free since the sample (an oversized request that
	 * was just refused) must not leave the others refused on a figure
	 * that no longer holds. */
	est = add_signed(ws, (int64_t)(live - seen)) + size;
	lines = mf_lines_below(limit, reserve);
	if (est <= lines.soft)
		return 0;
	if (size > INT64_MAX)
		return 1;
	est = add_signed(est, others_change(updated));
	return lines_refuse(est, lines.soft, lines.hard, lines.last,
			    (t != NULL ? mf_scope_own_net(t) : 0) + (int64_t)size, largest_in_segment,
			    t);
}

/* ---- admission ---- */

int mf_admit_pre(struct mf_thread *t, uint64_t req)
{
	if (mf_cfg.fault.alloc_on && fault_alloc(t, req))
		return MF_FAIL_FAULT;
	if (t != NULL && t->nbudget != 0 && (req > INT64_MAX || over_budget(t, req)))
		return MF_FAIL_BUDGET;
	if (mf_cfg.heap_limit != 0 && req > mf_cfg.heap_limit)
		return MF_FAIL_HEAP;
	if (req >= MF_LARGE && mf_container_refuse(t, req))
		return MF_FAIL_CONTAINER;
	if (req >= MF_LARGE && mf_cfg.press_soft != 0 && mf_pressure_refuse(t, req))
		return MF_FAIL_BUDGET; /* a budget the process sets itself: docs/accounting.md */
	return 0;
}

int mf_admit_post(struct mf_thread *t, uint64_t u)
{
	if (t != NULL && t->nbudget != 0 && over_budget(t, u))
		return MF_FAIL_BUDGET;
	if (mf_cfg.heap_limit != 0 && mf_heap_take(t, u) != 0)
		return MF_FAIL_HEAP;
	return 0;
}

uint32_t mf_admit_rule(const struct mf_thread *t, int cause, uint64_t req)
{
	switch (cause) {
	case MF_FAIL_FAULT:
		return MF_RULE_FAULT;
	case MF_FAIL_HEAP:
		return MF_RULE_HEAP;
	case MF_FAIL_CONTAINER:
		return MF_RULE_CONTAINER;
	case MF_FAIL_BUDGET:
		/* The scope's own budget is asked first; else it was the
		 * pressure policy's budget. */
		return t != NULL && t->nbudget != 0 && (req > INT64_MAX || over_budget(t, req))
			       ? MF_RULE_BUDGET
			       : MF_RULE_PRESSURE;
	default:
		return MF_RULE_ALLOC;
	}
}

void mf_admit_undo(struct mf_thread *t, uint64_t u)
{
	if (mf_cfg.heap_limit != 0)
		mf_heap_untake(t, u);
}

/*
 * glibc serves a large block from the heap of the calling thread's arena
 * once its dynamic mmap threshold has risen (it rises to the size of any
 * mmapped block freed, up to 32 MiB), and a freed block then stays in that
 * arena: still writable, still counted by RLIMIT_DATA, reusable only by the
 * threads of that arena. One oversized request per arena is enough to leave
 * the process with no headroom although little is live: ordinary requests
 * on other threads then fail at the rlimit (measured on the model server in
 * its 512 MiB cgroup: 263 of 295 failed with glibc's dynamic threshold, 0
 * with it fixed at 1 MiB). Trimming under pressure cannot take its place:
 * in a threaded program those blocks sit in per-thread arenas, whose trim
 * only madvises the pages and never unmaps them, so they still count
 * (265 failed with malloc_trim before each refusal; 264 with a threshold of
 * a 64th of the budget; 179 when fixed once the process passed 75 % of its
 * budget, 1 to 6 in 12 loaded runs at 50 %).
 *
 * So the threshold is fixed, at 1 MiB, but only when the policy has scopes
 * to protect: when the first scope opens (mf_policy_scope_opens), not at
 * start-up. Fixing it costs programs that churn large arrays a page fault
 * per page of every new block (numpy code reusing arrays of 1 to 32 MiB
 * measured 1.26x) while glibc serves those blocks, which is why the shim
 * serves them itself once the threshold is fixed and keeps a few freed
 * ones resident (large.c); a program without scopes, a batch job or a
 * script, keeps glibc's dynamic threshold and pays nothing
 * (docs/performance.md).
 * A threshold the user chose wins: MALLOC_MMAP_THRESHOLD_, the
 * glibc.malloc.mmap_threshold tunable (config.c), or a call to mallopt()
 * (hooks.c reports it, mf_policy_user_mallopt). 1 MiB, not 128 KiB,
 * because the cost grows fast for programs that churn mid-sized blocks.
 */
static int (*tune_set)(int, int); /* glibc's mallopt */
static int tune_pending;          /* atomic: thresholds still to set */
static int tuned;                 /* atomic: the mmap threshold is ours */

void mf_policy_init(int glibc, int (*set_opt)(int, int))
{
	__atomic_store_n(&fault_calls, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&fault_bytes, 0, __ATOMIC_RELAXED);
	tune_set = set_opt;
	__atomic_store_n(&tune_pending,
			 glibc && set_opt != NULL && mf_cfg.press_soft != 0 && mf_cfg.press_mmap,
			 __ATOMIC_RELAXED);
}

void mf_policy_scope_opens(void)
{
	if (MF_LIKELY(__atomic_load_n(&tune_pending, __ATOMIC_RELAXED) == 0) ||
	    __atomic_exchange_n(&tune_pending, 0, __ATOMIC_ACQ_REL) == 0)
		return;
	if (!__atomic_load_n(&mf_cfg.press_mmap, __ATOMIC_RELAXED))
		return;
	tune_set(M_MMAP_THRESHOLD, 1 << 20);
	__atomic_store_n(&tuned, 1, __ATOMIC_RELEASE);
	/* A fixed mmap threshold freezes the trim threshold at 128 KiB, and
	 * the heap is then trimmed and regrown all the time: 2 MiB is what
	 * glibc's dynamic rule would make it (twice the mmap threshold). */
	if (__atomic_load_n(&mf_cfg.press_trim, __ATOMIC_RELAXED))
		tune_set(M_TRIM_THRESHOLD, 2 << 20);
}

void mf_policy_user_mallopt(int param)
{
	if (param == M_MMAP_THRESHOLD)
		__atomic_store_n(&mf_cfg.press_mmap, 0, __ATOMIC_RELAXED);
	else if (param == M_TRIM_THRESHOLD)
		__atomic_store_n(&mf_cfg.press_trim, 0, __ATOMIC_RELAXED);
}

/* ---- big blocks (large.c) ---- */

/*
 * With the threshold ours, blocks of 1 MiB and more are the shim's
 * (large.c), which keeps a few freed ones for reuse: glibc would map and
 * unmap each one, a page fault per page of every request's big blocks. A
 * threshold the program sets later wins again: the shim stops serving.
 */
bool mf_policy_big_blocks(void)
{
	return __atomic_load_n(&tuned, __ATOMIC_ACQUIRE) &&
	       __atomic_load_n(&mf_cfg.press_mmap, __ATOMIC_RELAXED);
}

bool mf_policy_roomy(uint64_t margin)
{
	struct mf_seg_container f;

	if (mf_cfg.press_soft != 0 && mf_pressure_estimate() + margin > mf_cfg.press_soft)
		return false;
	if (mf_seg != NULL && mf_seg_container_read(&mf_seg->container, &f, 4) && f.limit != 0 &&
	    f.working_set + margin + (f.reserve < f.limit ? f.reserve : f.limit) > f.limit)
		return false;
	return true;
}

void mf_pressure_released(uint64_t bytes)
{
	uint64_t d = __atomic_load_n(&smp_data, __ATOMIC_RELAXED);

	/* Racing a new sample at worst leaves one reading low for up to
	 * MF_PRESS_SAMPLE_NS: the next sample corrects it. */
	__atomic_store_n(&smp_data, d > bytes ? d - bytes : 0, __ATOMIC_RELAXED);
}
