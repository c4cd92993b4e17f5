/*
 * large.c - big blocks the shim maps itself, and the cache of freed ones.
 *
 * Why. Zero collateral needs a freed big block to leave RLIMIT_DATA (and
 * the cgroup) before the next request asks for memory, so glibc's mmap
 * threshold is fixed at 1 MiB once scopes are protected (policy.c). Then
 * every big block of every request is a fresh mapping, faulted in page by
 * page and unmapped at free: an allocation-heavy gRPC server measured 1.8x
 * to 2.8x slower per request. Here the shim keeps a few freed blocks
 * mapped and resident and hands them to the next big allocation: no
 * system call, no page fault. What it keeps is bounded (MF_BIG_SLOTS
 * blocks, an eighth of the soft line up to MF_BIG_CAP_MAX bytes) and given
 * back whenever it could cost a request its memory:
 *
 *   - a block is kept only while the process and its container are at
 *     least a full cache below their lines (mf_policy_roomy); past that,
 *     the next big allocation or free empties the cache;
 *   - an allocation the policy would refuse, or a mapping the kernel
 *     refuses, empties the cache and is decided again (admit.c);
 *   - a block kept longer than MF_BIG_AGE_NS is unmapped at the next big
 *     allocation, free or scope end, so a quiet process returns it.
 *
 * Cached bytes are not live: they are counted nowhere but in the mapping
 * figures the kernel keeps (statm, the cgroup), which the policy already
 * reads, so every line sees them.
 *
 * Layout. A block is one private anonymous mapping m; the block's data
 * starts off bytes in (off >= MF_BIG_OFF, the alignment asked for), and
 * the 16 bytes before it are a glibc mmapped chunk's header: prev_size =
 * off - 16 (the distance from the mapping to the chunk), size = the bytes
 * from the chunk to the end of the used pages, with IS_MMAPPED. So glibc's
 * malloc_usable_size reads it, the hooks' header_usable reads it, and even
 * glibc's own free (a library calling __libc_free) unmaps it correctly.
 * The start of the mapping holds the shim's mark, the mapping's address
 * mixed with a per-process random key, and the mapping's length, which a
 * reused block may have larger than its size says: a block is recognised
 * by its mapping, without a lookup table and without a lock.
 *
 * The cache is a small array under one mutex, taken only on this path
 * (which replaces an mmap and a munmap), never for a small allocation.
 * Reuse is best fit, within half again the size needed, so a small block
 * never pins a large mapping.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim/config.h"
#include "shim/large.h"

#define MF_BIG_OFF 128u
#define MF_BIG_SLOTS 32u
#define MF_BIG_CAP_MAX (64ull << 20)
#define MF_BIG_AGE_NS (2ull * 1000 * 1000 * 1000)
#define MF_IS_MMAPPED 2u

/* At the start of every mapping the shim serves. */
struct big_map {
	uint64_t key;    /* the mapping's address ^ big_key */
	uint64_t maplen; /* bytes mapped */
};

struct big_slot {
	uintptr_t m;
	uint64_t maplen;
	uint64_t at; /* CLOCK_MONOTONIC when cached */
};

static uint64_t big_key;
static size_t big_pg = 4096;

static pthread_mutex_t big_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct big_slot slots[MF_BIG_SLOTS];
static uint32_t nslots;    /* atomic reads outside the lock */
static uint64_t cached;    /* bytes in slots, under big_mutex */
static uint64_t last_tick; /* atomic */

void mf_big_init(void)
{
	const void *rnd = (const void *)getauxval(AT_RANDOM);
	size_t pg = (size_t)getauxval(AT_PAGESZ);
	uint64_t r[2];

	if (pg != 0)
		big_pg = pg;
	/* AT_RANDOM: 16 bytes from the kernel, no system call, at any
	 * alignment (hence the copy). Without it, an address of this library
	 * still differs between processes. */
	if (rnd != NULL) {
		memcpy(r, rnd, sizeof(r));
		big_key = r[0] ^ r[1];
	} else {
		big_key = (uint64_t)(uintptr_t)&big_key * 0x9e3779b97f4a7c15ull;
	}
	big_key |= 1;
}

static uint64_t cap_bytes(void)
{
	uint64_t soft = mf_cfg.press_soft;

	return soft != 0 && soft / 8 < MF_BIG_CAP_MAX ? soft / 8 : MF_BIG_CAP_MAX;
}

static size_t page_round(size_t n)
{
	return (n + big_pg - 1) & ~(big_pg - 1);
}

static struct big_map *map_of(const void *p)
{
	size_t prev = ((const size_t *)p)[-2];

	return (struct big_map *)((uintptr_t)p - 2 * sizeof(size_t) - prev);
}

bool mf_big_own(const void *p)
{
	size_t prev = ((const size_t *)p)[-2];
	uintptr_t m = (uintptr_t)p - 2 * sizeof(size_t) - prev;

	if (!(((const size_t *)p)[-1] & MF_IS_MMAPPED) || prev < MF_BIG_OFF - 2 * sizeof(size_t) ||
	    (m & (big_pg - 1)) != 0)
		return false;
	/* A glibc mmapped chunk: m is its mapping's start, readable. */
	return ((const struct big_map *)m)->key == (m ^ big_key);
}

static void unmap(uintptr_t m, uint64_t len)
{
	syscall(SYS_munmap, (void *)m, (size_t)len);
}

/* The chunk header of a block at m + off using need bytes of its mapping. */
static void *shape(uintptr_t m, size_t off, size_t need)
{
	size_t *p = (size_t *)(m + off);

	p[-2] = off - 2 * sizeof(size_t);
	p[-1] = (need - off + 2 * sizeof(size_t)) | MF_IS_MMAPPED;
	return p;
}

static void mark(uintptr_t m, uint64_t maplen)
{
	struct big_map *b = (struct big_map *)m;

	b->key = m ^ big_key;
	b->maplen = maplen;
}

/* Best fit in [need, need + need / 2]; 0 if none. */
static uintptr_t take(size_t need, uint64_t *maplen)
{
	uint32_t best = MF_BIG_SLOTS;
	uintptr_t m;

	if (__atomic_load_n(&nslots, __ATOMIC_RELAXED) == 0)
		return 0;
	pthread_mutex_lock(&big_mutex);
	for (uint32_t i = 0; i < nslots; i++)
		if (slots[i].maplen >= need && slots[i].maplen <= need + need / 2 &&
		    (best == MF_BIG_SLOTS || slots[i].maplen < slots[best].maplen))
			best = i;
	if (best == MF_BIG_SLOTS) {
		pthread_mutex_unlock(&big_mutex);
		return 0;
	}
	m = slots[best].m;
	*maplen = slots[best].maplen;
	cached -= *maplen;
	slots[best] = slots[nslots - 1];
	__atomic_store_n(&nslots, nslots - 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&big_mutex);
	return m;
}

/* Drop the slots that match (all, or older than before), unmapped after
 * the lock is released. */
static uint64_t drop(bool all, uint64_t before)
{
	struct big_slot out[MF_BIG_SLOTS];
	uint32_t n = 0;
	uint64_t bytes = 0;

	pthread_mutex_lock(&big_mutex);
	for (uint32_t i = 0; i < nslots;) {
		if (all || slots[i].at < before) {
			out[n++] = slots[i];
			bytes += slots[i].maplen;
			slots[i] = slots[--nslots];
		} else {
			i++;
		}
	}
	cached -= bytes;
	__atomic_store_n(&nslots, nslots, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&big_mutex);
	for (uint32_t i = 0; i < n; i++)
		unmap(out[i].m, out[i].maplen);
	if (bytes != 0)
		mf_pressure_released(bytes);
	return bytes;
}

uint64_t mf_big_release(void)
{
	if (__atomic_load_n(&nslots, __ATOMIC_RELAXED) == 0)
		return 0;
	return drop(true, 0);
}

void mf_big_tick(void)
{
	uint64_t now, last;

	if (MF_LIKELY(__atomic_load_n(&nslots, __ATOMIC_RELAXED) == 0))
		return;
	now = mf_now_mono();
	last = __atomic_load_n(&last_tick, __ATOMIC_RELAXED);
	if (now - last < MF_BIG_AGE_NS / 4 ||
	    !__atomic_compare_exchange_n(&last_tick, &last, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return;
	if (now > MF_BIG_AGE_NS)
		drop(false, now - MF_BIG_AGE_NS);
}

/* Whether the cache may hold bytes more than it does now. */
static bool cache_may_grow(void)
{
	return mf_big_serving() && mf_policy_roomy(cap_bytes());
}

void *mf_big_alloc(size_t n, size_t align, bool zero)
{
	size_t off = align > MF_BIG_OFF ? align : MF_BIG_OFF, need;
	uint64_t maplen = 0;
	uintptr_t m;
	void *p;

	if (align > big_pg || n > SIZE_MAX / 2) {
		errno = ENOMEM;
		return NULL;
	}
	need = page_round(n + off);
	mf_big_tick();
	if (__atomic_load_n(&nslots, __ATOMIC_RELAXED) != 0 && !cache_may_grow())
		mf_big_release();
	m = take(need, &maplen);
	if (m != 0) {
		p = shape(m, off, need);
		if (zero)
			memset(p, 0, need - off);
		return p;
	}
	m = (uintptr_t)mf_os_alloc(need);
	if (m == 0 && mf_big_release() != 0)
		m = (uintptr_t)mf_os_alloc(need);
	if (m == 0) {
		errno = ENOMEM;
		return NULL;
	}
	mark(m, need);
	return shape(m, off, need); /* fresh pages are zero */
}

void mf_big_free(void *p)
{
	struct big_map *b = map_of(p);
	uintptr_t m = (uintptr_t)b;
	uint64_t maplen = b->maplen, cap = cap_bytes(), now;
	struct big_slot out[MF_BIG_SLOTS];
	uint32_t n = 0;

	mf_big_tick();
	if (maplen > cap / 2 || !cache_may_grow()) {
		unmap(m, maplen);
		mf_big_release();
		return;
	}
	now = mf_now_mono();
	pthread_mutex_lock(&big_mutex);
	/* Full: the oldest blocks make room, so the cache follows the sizes
	 * the program allocates now. */
	while (nslots != 0 && (nslots == MF_BIG_SLOTS || cached + maplen > cap)) {
		uint32_t old = 0;
		for (uint32_t i = 1; i < nslots; i++)
			if (slots[i].at < slots[old].at)
				old = i;
		out[n++] = slots[old];
		cached -= slots[old].maplen;
		slots[old] = slots[--nslots];
	}
	slots[nslots++] = (struct big_slot){m, maplen, now};
	cached += maplen;
	__atomic_store_n(&nslots, nslots, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&big_mutex);
	for (uint32_t i = 0; i < n; i++)
		unmap(out[i].m, out[i].maplen);
}

void *mf_big_resize(void *p, size_t n)
{
	struct big_map *b = map_of(p);
	uintptr_t m = (uintptr_t)b;
	size_t off = ((const size_t *)p)[-2] + 2 * sizeof(size_t), need;
	uint64_t maplen = b->maplen;
	long r;

	if (n > SIZE_MAX / 2)
		return NULL;
	need = page_round(n + off);
	/* In place while at least half the mapping is used; shrinking
	 * further gives the tail back (mremap never moves to shrink). */
	if (need <= maplen && need >= maplen / 2)
		return shape(m, off, need);
	/* libc's syscall() returns -1 and sets errno on failure. */
	r = syscall(SYS_mremap, (void *)m, (size_t)maplen, need, MREMAP_MAYMOVE);
	if (r == -1 && need > maplen && mf_big_release() != 0)
		r = syscall(SYS_mremap, (void *)m, (size_t)maplen, need, MREMAP_MAYMOVE);
	if (r == -1)
		return NULL;
	mark((uintptr_t)r, need);
	return shape((uintptr_t)r, off, need);
}

/* fork: the child inherits the mappings; the cache must not be copied
 * mid-update. */
void mf_big_atfork_prepare(void)
{
	pthread_mutex_lock(&big_mutex);
}

void mf_big_atfork_parent(void)
{
	pthread_mutex_unlock(&big_mutex);
}

void mf_big_atfork_child(void)
{
	pthread_mutex_init(&big_mutex, NULL);
}
