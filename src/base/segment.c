/*
 * segment.c - layout arithmetic of the shared stats segment.
 *
 * Shim-safe: libc only, no allocation (it is compiled into libmemfence.so).
 */
#include "base/segment.h"

#include <string.h>
#include <time.h>

static uint64_t align64(uint64_t n)
{
	return (n + 63) & ~(uint64_t)63;
}

static uint64_t slot_bytes(uint32_t scopes_per_slot)
{
	return align64(sizeof(struct mf_seg_slot) +
		       (uint64_t)scopes_per_slot * sizeof(struct mf_seg_scope));
}

static uint64_t gate_at(uint32_t nslots, uint32_t scopes_per_slot, uint32_t ring_size)
{
	return align64(sizeof(struct mf_seg_header)) +
	       (uint64_t)nslots * slot_bytes(scopes_per_slot) +
	       (uint64_t)ring_size * sizeof(struct mf_seg_record);
}

uint64_t mf_seg_size(uint32_t nslots, uint32_t scopes_per_slot, uint32_t ring_size)
{
	return align64(gate_at(nslots, scopes_per_slot, ring_size) + sizeof(struct mf_seg_gate));
}

void mf_seg_init(void *mem, uint32_t nslots, uint32_t scopes_per_slot,
		 uint32_t ring_size, int32_t owner_pid)
{
	struct mf_seg_header *h = mem;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	h->header_size = sizeof(*h);
	h->nslots = nslots;
	h->slot_size = (uint32_t)slot_bytes(scopes_per_slot);
	h->scopes_per_slot = scopes_per_slot;
	h->ring_size = ring_size;
	h->slots_offset = align64(sizeof(*h));
	h->ring_offset = h->slots_offset + (uint64_t)nslots * h->slot_size;
	h->gate_offset = gate_at(nslots, scopes_per_slot, ring_size);
	h->total_size = mf_seg_size(nslots, scopes_per_slot, ring_size);
	h->owner_pid = owner_pid;
	h->created_realtime_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	h->version = MF_SEG_VERSION;
	/* Magic last: a reader that sees it sees a complete header. */
	__atomic_store_n(&h->magic, MF_SEG_MAGIC, __ATOMIC_RELEASE);
}

int mf_seg_validate(const void *mem, uint64_t len)
{
	const struct mf_seg_header *h = mem;

	if (len < sizeof(*h))
		return -1;
	if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != MF_SEG_MAGIC)
		return -1;
	if (h->version != MF_SEG_VERSION || h->header_size != sizeof(*h))
		return -1;
	if (h->ring_size == 0 || (h->ring_size & (h->ring_size - 1)) != 0)
		return -1;
	if (h->slot_size != slot_bytes(h->scopes_per_slot))
		return -1;
	if (h->total_size > len ||
	    h->total_size != mf_seg_size(h->nslots, h->scopes_per_slot, h->ring_size))
		return -1;
	if (h->slots_offset != align64(sizeof(*h)) ||
	    h->ring_offset != h->slots_offset + (uint64_t)h->nslots * h->slot_size ||
	    h->gate_offset != gate_at(h->nslots, h->scopes_per_slot, h->ring_size))
		return -1;
	return 0;
}

struct mf_seg_slot *mf_seg_slot_at(const struct mf_seg_header *h, uint32_t i)
{
	return (struct mf_seg_slot *)((char *)h + h->slots_offset + (uint64_t)i * h->slot_size);
}

struct mf_seg_record *mf_seg_record_at(const struct mf_seg_header *h, uint64_t index)
{
	return (struct mf_seg_record *)((char *)h + h->ring_offset +
					(index & (h->ring_size - 1)) * sizeof(struct mf_seg_record));
}
