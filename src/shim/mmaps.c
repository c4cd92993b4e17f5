/*
 * mmaps.c - sizes of the program's anonymous private mappings.
 *
 * munmap() and mremap() say how much they remove, but not how much of it
 * the shim counted (a file mapping, a shared one, glibc's own arenas made
 * through its internal __mmap). So every counted mapping is remembered here,
 * by start address, and an unmap counts exactly the tracked bytes it covers,
 * whatever its boundaries: a partial munmap splits an entry in two.
 *
 * The table is open addressing with linear probing, in memory the shim maps
 * itself (no allocation), MF_MAPS_CAP entries. A full table leaves a new
 * mapping untracked and uncounted (both sides stay consistent). Lookups by
 * exact start are O(1); an unmap that does not start exactly at a tracked
 * mapping scans the table, which only odd programs do. mmap is not the hot
 * path, so one mutex guards the table; signals are blocked while it is held
 * because a handler may munmap.
 */
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "shim/maps.h"

#define MF_MAPS_CAP (1u << 15)

struct map_entry {
	uintptr_t start; /* 0 = empty */
	uint64_t len;
};

static struct map_entry *table;
static uint32_t used;
static pthread_mutex_t maps_mutex = PTHREAD_MUTEX_INITIALIZER;

void mf_maps_lock(sigset_t *saved)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, saved);
	pthread_mutex_lock(&maps_mutex);
}

void mf_maps_unlock(const sigset_t *saved)
{
	pthread_mutex_unlock(&maps_mutex);
	pthread_sigmask(SIG_SETMASK, saved, NULL);
}

/* fork: the table must not be copied mid-update. */
static sigset_t fork_saved;

void mf_maps_atfork_prepare(void)
{
	mf_maps_lock(&fork_saved);
}

void mf_maps_atfork_parent(void)
{
	mf_maps_unlock(&fork_saved);
}

void mf_maps_atfork_child(void)
{
	pthread_mutex_init(&maps_mutex, NULL);
	pthread_sigmask(SIG_SETMASK, &fork_saved, NULL);
}

int mf_maps_any(void)
{
	return __atomic_load_n(&used, __ATOMIC_RELAXED) != 0;
}

static uint32_t slot_of(uintptr_t start)
{
	return (uint32_t)(((uint64_t)(start >> 12) * 0x9e3779b97f4a7c15ull) >> 49) & (MF_MAPS_CAP - 1);
}

static int insert(uintptr_t start, uint64_t len)
{
	uint32_t i;

	if (table == NULL) {
		table = mf_os_alloc(sizeof(*table) * MF_MAPS_CAP);
		if (table == NULL)
			return -1;
	}
	/* Keep a quarter free so probes stay short. */
	if (used >= MF_MAPS_CAP - MF_MAPS_CAP / 4)
		return -1;
	for (i = slot_of(start);; i = (i + 1) & (MF_MAPS_CAP - 1)) {
		if (table[i].start == 0 || table[i].start == start)
			break;
	}
	if (table[i].start == 0)
		__atomic_store_n(&used, used + 1, __ATOMIC_RELAXED);
	table[i].start = start;
	table[i].len = len;
	return 0;
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void erase_at(uint32_t i)
{
	uint32_t j = i;

	table[i].start = 0;
	for (;;) {
		j = (j + 1) & (MF_MAPS_CAP - 1);
		if (table[j].start == 0)
			break;
		uint32_t home = slot_of(table[j].start);
		/* Move j into the hole at i unless its home lies in (i, j]. */
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			table[i] = table[j];
			table[j].start = 0;
			i = j;
		}
	}
	__atomic_store_n(&used, used - 1, __ATOMIC_RELAXED);
}

static int32_t find(uintptr_t start)
{
	if (table == NULL)
		return -1;
	for (uint32_t i = slot_of(start);; i = (i + 1) & (MF_MAPS_CAP - 1)) {
		if (table[i].start == 0)
			return -1;
		if (table[i].start == start)
			return (int32_t)i;
	}
}

int mf_maps_add(uintptr_t addr, uint64_t len)
{
	return insert(addr, len);
}

uint64_t mf_maps_tracked(uintptr_t addr, uint64_t len)
{
	uintptr_t end = addr + len;
	uint64_t n = 0;
	int32_t i;

	if (table == NULL || used == 0)
		return 0;
	i = find(addr);
	if (i >= 0 && table[i].len >= len)
		return len;
	for (uint32_t k = 0; k < MF_MAPS_CAP; k++) {
		uintptr_t s = table[k].start, e = s + table[k].len;
		if (s == 0 || e <= addr || s >= end)
			continue;
		n += (e < end ? e : end) - (s > addr ? s : addr);
	}
	return n;
}

uint64_t mf_maps_remove(uintptr_t addr, uint64_t len)
{
	uintptr_t end = addr + len;
	uint64_t n = 0;
	int32_t i;

	if (table == NULL || used == 0)
		return 0;
	i = find(addr);
	if (i >= 0 && table[i].len <= len) {
		/* The common case: a whole mapping, from its start. */
		n = table[i].len;
		erase_at((uint32_t)i);
		if (n == len)
			return n;
	}
	for (uint32_t k = 0; k < MF_MAPS_CAP;) {
		uintptr_t s = table[k].start, e = s + table[k].len;
		if (s == 0 || e <= addr || s >= end) {
			k++;
			continue;
		}
		n += (e < end ? e : end) - (s > addr ? s : addr);
		erase_at(k);
		/* What stays of it on either side of the hole. Re-inserted
		 * entries may land anywhere, so scan from the start again;
		 * they no longer overlap, so this ends. */
		if (s < addr)
			insert(s, addr - s);
		if (e > end)
			insert(end, e - end);
		k = 0;
	}
	return n;
}
