/*
 * pressure.c - zero collateral: as the process nears its limit, the scope
 * holding the most memory is refused first.
 *
 * RLIMIT_DATA fails whichever allocation happens to cross it. When one
 * oversized request has eaten the headroom, that is as likely to be a
 * small, ordinary request running beside it (the seed measured 0 to 13
 * ordinary failures in 295 calls). So below the limit the shim draws two
 * lines, the way Envoy's overload manager resets its largest streams first:
 *
 *   soft   above it, a large allocation (>= MF_LARGE) is refused only if it
 *          comes from the in-flight scope that would then hold the most net
 *          bytes of this process (and at least MF_PRESS_MIN_NET): the
 *          oversized request fails, the others go on;
 *   hard   above it, every scope's large allocations are refused, so that
 *          what the process still needs outside requests (the C runtime,
 *          gRPC's core, which aborts on NULL) finds the rest free.
 *
 * Allocations outside any scope are never refused here: the runtime makes
 * them, and a NULL there may be fatal. Small allocations are not checked
 * at all, so the policy costs nothing on the hot path; they are also what a
 * C library is least prepared to see fail.
 *
 * What the rlimit counts is the virtual size of private writable mappings
 * (mm->data_vm), not live heap: glibc keeps freed memory in its arenas,
 * thread stacks count in full. So the distance to the limit is measured:
 * /proc/self/statm (its "data" field, data_vm + stack_vm, in pages; "size"
 * under RLIMIT_AS) is read at most every MF_PRESS_SAMPLE_NS, by one thread
 * at a time, and between two reads the growth of the process's live bytes
 * is added to the last reading. statm is O(1) in the kernel (counters of
 * the mm, no walk of the mappings): three system calls per sample.
 */
#include <malloc.h>

#include "base/proc.h"
#include "shim/shim.h"

#define MF_PRESS_SAMPLE_NS (2u * 1000 * 1000)

static uint64_t smp_data; /* atomic: bytes measured at the last sample */
static uint64_t smp_live; /* atomic: process live bytes at that sample */
static uint64_t smp_ns;   /* atomic: CLOCK_MONOTONIC of the last sample */

static uint64_t live_now(void)
{
	int64_t live = mf_slot != NULL ? (int64_t)__atomic_load_n(&mf_slot->live, __ATOMIC_RELAXED) : 0;

	return live > 0 ? (uint64_t)live : 0;
}

uint64_t mf_pressure_estimate(void)
{
	uint64_t now = mf_now_mono(), at = __atomic_load_n(&smp_ns, __ATOMIC_RELAXED);
	uint64_t data, base, live;

	/* One sampler at a time; the others use the previous reading. */
	if (now - at >= MF_PRESS_SAMPLE_NS &&
	    __atomic_compare_exchange_n(&smp_ns, &at, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
		uint64_t d;
		if (mf_statm_read(mf_cfg.press_measure_size ? MF_STATM_SIZE : MF_STATM_DATA, &d) == 0) {
			__atomic_store_n(&smp_live, live_now(), __ATOMIC_RELAXED);
			__atomic_store_n(&smp_data, d, __ATOMIC_RELAXED);
		}
	}
	data = __atomic_load_n(&smp_data, __ATOMIC_RELAXED);
	base = __atomic_load_n(&smp_live, __ATOMIC_RELAXED);
	live = live_now();
	return data + (live > base ? live - base : 0);
}

int64_t mf_scope_own_net(const struct mf_thread *t)
{
	int64_t most = 0;

	/* The outermost scope holds what the inner ones do, unless an inner
	 * one started before a big free: take the largest. */
	for (int i = 0; i < t->depth; i++)
		if (t->scopes[i].net > most)
			most = t->scopes[i].net;
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
 * Net bytes of the largest scope in flight in this process other than t's
 * open ones, as last published (at most one flush behind). Suspended
 * scopes count, whichever thread suspended them: an asyncio request
 * between two steps is as large as it was.
 */
static int64_t largest_other(const struct mf_thread *t)
{
	int64_t most = 0;

	if (mf_seg == NULL || mf_slot == NULL)
		return 0;
	for (uint32_t i = 0; i < mf_seg->scopes_per_slot; i++) {
		const struct mf_seg_scope *e = &mf_slot->scopes[i];
		int64_t net;

		if (__atomic_load_n(&e->in_use, __ATOMIC_RELAXED) == 0 || mf_scope_is_own(t, i))
			continue;
		net = __atomic_load_n(&e->net, __ATOMIC_RELAXED);
		if (net > most)
			most = net;
	}
	return most;
}

int mf_pressure_refuse(struct mf_thread *t, uint64_t req)
{
	int64_t own;
	uint64_t est;

	if (t == NULL || t->depth == 0 || req > INT64_MAX)
		return 0;
	own = mf_scope_own_net(t) + (int64_t)req;
	if (own < (int64_t)MF_PRESS_MIN_NET)
		return 0;
	est = mf_pressure_estimate() + req;
	if (est <= mf_cfg.press_soft)
		return 0;
	if (est > mf_cfg.press_hard)
		return 1;
	return largest_other(t) <= own;
}

/*
 * glibc serves a large block from the heap of the calling thread's arena
 * once its dynamic mmap threshold has risen (it rises to the size of any
 * mmapped block freed, up to 32 MiB), and a freed block then stays in that
 * arena: still writable, still counted by RLIMIT_DATA, reusable only by the
 * threads of that arena. One oversized request per arena is enough to leave
 * the process with no headroom although little is live: ordinary requests
 * on other threads then fail at the rlimit (measured on the model server:
 * 60 and 239 of 295 failed with this policy and the default threshold, 0
 * with the threshold fixed at 128 KiB). So, when there is a limit to
 * protect and the user set no threshold of their own (MALLOC_MMAP_THRESHOLD_,
 * the glibc.malloc.mmap_threshold tunable), blocks of 1 MiB and more are
 * mapped and unmapped on their own. The cost is a page fault per page of a
 * new large block, which a workload of huge arrays can notice
 * (docs/performance.md): 1 MiB, not 128 KiB, because the cost grows fast
 * for programs that churn mid-sized blocks.
 */
void mf_pressure_init(int glibc)
{
	if (glibc && mf_cfg.press_soft != 0 && mf_cfg.press_mmap) {
		mallopt(M_MMAP_THRESHOLD, 1 << 20);
		/* A fixed mmap threshold freezes the trim threshold at 128 KiB:
		 * glibc's dynamic rule would make it twice the mmap one. */
		if (mf_cfg.press_trim)
			mallopt(M_TRIM_THRESHOLD, 2 << 20);
	}
}
