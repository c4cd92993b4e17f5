/*
 * seg.h - the stats segment as the supervisor reads it (seg.c): slots
 * retired into totals, finished scopes handed on as records, the
 * container's figures published for the shim.
 */
#ifndef MF_SUP_SEG_H
#define MF_SUP_SEG_H

#include <stdint.h>
#include <sys/types.h>

#include "base/segment.h"
#include "host/segread.h"

struct sup_state;

/* Per-slot memory of what was already added to the totals. */
struct sup_slotmem {
	uint32_t generation;
	/* The cgroup's oom_kill counter a while (1 to 3 s) before the process
	 * was last seen alive: a process being OOM-killed may still be seen
	 * alive after the counter rose, for as long as its memory is freed. */
	uint64_t oom_alive, oom_next, oom_stamp_ms;
	int retired;                 /* counted in the sup_seg ret_* totals */
	int released;                /* marked read: the shim may reuse it */
	uint64_t allocated, freed, failed[MF_FAIL_NCAUSES], thread_failed, scopes_ended;
};

struct sup_seg {
	struct mf_segread r;
	int open;
	uint64_t ring_seen;
	uint64_t ring_lost;
	/* The main program's pid: its slot is kept (with its scopes) until
	 * the supervisor has reaped it and written its post-mortem. */
	pid_t hold_pid;
	struct sup_slotmem slotmem[MF_SEG_DEFAULT_SLOTS];
	/* Called once for a slot found DEAD (killed, not a normal exit) with
	 * scopes in flight, as it is retired: oom_alive is the cgroup's
	 * oom_kill counter when the process was last seen alive. */
	void (*on_dead)(void *ctx, const struct mf_seg_slot *slot, uint64_t oom_alive,
			const struct mf_seg_scope *sc, uint32_t n);
	void *dead_ctx;
	uint64_t oom_prev;           /* oom_kill at the previous sample */
	/* Counters of processes whose slots were retired. */
	uint64_t ret_allocated, ret_freed, ret_failed[MF_FAIL_NCAUSES];
	uint64_t ret_thread_failed, ret_scopes_ended;
	uint64_t gate_covered;       /* published with the container's figures */
};

int sup_seg_create(struct sup_seg *s, const char *path, int32_t owner);
void sup_seg_close(struct sup_seg *s, int unlink_it);
/* Publish the container's figures for the shim (seqlock writer). */
void sup_seg_publish(struct sup_seg *s, uint64_t limit, uint64_t working_set,
		     uint64_t reserve, uint64_t min_size);

/* A finished scope as the health rules and metrics see it. */
struct sup_record {
	uint64_t end_ns;             /* CLOCK_REALTIME */
	uint64_t allocated;
	uint64_t peak;
	int64_t net;
	int failed;
	/* The first refusal: its rule (enum mf_refusal_rule), what the scope
	 * asked for then (net + the allocation), its need at the gate. */
	uint32_t refused_rule;
	uint64_t refused_asked, refused_need;
	uint64_t index;              /* its position in the segment's ring */
	char name[MF_SEG_NAME_LEN];
	char id[MF_SEG_NAME_LEN];
};
typedef void (*sup_record_fn)(void *ctx, const struct sup_record *r);

/* Read slots and in-flight scopes into st, and hand new ring records to fn.
 * retire_dead: slots of processes that are gone (zombies included) are
 * added to the totals and released; their scopes are in st for this one
 * read, which is when a post-mortem must take them. The slot of hold_pid is
 * kept until the supervisor has reaped that process. */
void sup_seg_read(struct sup_seg *s, struct sup_state *st, int retire_dead,
		  sup_record_fn fn, void *ctx);

#endif
