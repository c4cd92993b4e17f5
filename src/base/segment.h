/*
 * segment.h - layout of the shared stats segment.
 *
 * The segment is the contract between the shim (writers: every process of
 * the supervised program) and the supervisor or `memfence stat` (readers).
 * It is a file (tmpfs by default) mapped MAP_SHARED by everyone, so it
 * outlives any writer: a reader can still see what a killed process had in
 * flight.
 *
 * Rules that keep it safe without locks:
 *  - Counters in a slot are independent 64-bit atomics, added to with
 *    relaxed atomic adds in batches (never on every allocation).
 *  - A scope entry, a ring record and the container block each carry a
 *    sequence number: odd while its single writer changes it, even when
 *    stable. A reader copies the entry, then checks the sequence is even and
 *    unchanged (a seqlock: mf_seq_* below). A writer that dies mid-update
 *    leaves an odd sequence: the reader reports the entry as torn instead of
 *    waiting for it.
 *  - Slots are claimed with compare-and-swap on `state`. A slot whose process
 *    died is reclaimed only after a reader has copied it (state DEAD_READ).
 *  - Nothing in the segment is a pointer; every size is fixed by the header.
 *
 * Bump MF_SEG_VERSION on any change of layout.
 */
#ifndef MF_SEGMENT_H
#define MF_SEGMENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define MF_SEG_MAGIC 0x31474553464d454dULL /* "MEMFSEG1" little-endian */
#define MF_SEG_VERSION 3 /* 2: the admission gate; 3: why a scope was refused */

#define MF_SEG_NAME_LEN 64 /* scope name and id, NUL included */
#define MF_SEG_DEFAULT_SLOTS 64
#define MF_SEG_DEFAULT_SCOPES 64 /* in-flight scopes per process */
#define MF_SEG_DEFAULT_RING 1024 /* finished scope records, power of two */

enum mf_slot_state {
	MF_SLOT_FREE = 0,
	MF_SLOT_LIVE = 1,      /* owned by a running process */
	MF_SLOT_EXITED = 2,    /* process ended normally, not yet read */
	MF_SLOT_DEAD = 3,      /* found dead by a reader, copy being taken */
	MF_SLOT_DEAD_READ = 4  /* a reader has its copy: may be reclaimed */
};

enum mf_fail_cause {
	MF_FAIL_ALLOC = 0,     /* the real allocator returned NULL (rlimit, ENOMEM) */
	MF_FAIL_BUDGET = 1,    /* a scope budget */
	MF_FAIL_HEAP = 2,      /* the process heap limit */
	MF_FAIL_CONTAINER = 3, /* container-wide headroom */
	MF_FAIL_FAULT = 4,     /* fault injection */
	MF_FAIL_NCAUSES = 5
};

/*
 * The rule that refused a scope's first refused allocation (struct
 * mf_seg_figures): the evidence a diagnosis needs, since a scope refused
 * early stops far short of what it asked for and its peak alone may look
 * ordinary. The causes above count refusals per process; several rules
 * share a cause.
 */
enum mf_refusal_rule {
	MF_RULE_NONE = 0,
	MF_RULE_BUDGET = 1,    /* the scope's own budget */
	MF_RULE_GATE = 2,      /* past its need while the room was promised to others */
	MF_RULE_PRESSURE = 3,  /* the largest in flight, past the pressure line */
	MF_RULE_HEAP = 4,      /* the process heap limit */
	MF_RULE_ALLOC = 5,     /* the allocator failed: the process rlimit, ENOMEM */
	MF_RULE_CONTAINER = 6, /* the container's line (headroom) */
	MF_RULE_FAULT = 7,     /* fault injection */
	MF_RULE_N = 8
};

/* Published by the supervisor several times a second (capability 5). */
struct mf_seg_container {
	uint64_t seq;           /* seqlock */
	uint64_t limit;         /* bytes, 0 = unknown */
	uint64_t working_set;   /* usage - inactive_file */
	uint64_t reserve;       /* keep this much free */
	uint64_t min_size;      /* only allocations at least this large are checked */
	uint64_t updated_ns;    /* CLOCK_MONOTONIC */
	/* Of the bytes in working_set, those the scopes admitted by the gate
	 * held at the sample, each counted up to its need (src/shim/gate.c) */
	uint64_t gate_covered;
};

struct mf_seg_header {
	uint64_t magic;
	uint32_t version;
	uint32_t header_size;   /* sizeof(struct mf_seg_header) */
	uint32_t nslots;
	uint32_t slot_size;     /* sizeof(struct mf_seg_slot) + scopes */
	uint32_t scopes_per_slot;
	uint32_t ring_size;     /* power of two */
	uint64_t slots_offset;
	uint64_t ring_offset;
	uint64_t total_size;
	int32_t owner_pid;      /* supervisor, or the exec'd program */
	uint32_t flags;
	uint64_t created_realtime_ns;
	uint64_t ring_head;     /* records ever written (atomic fetch-add) */
	uint64_t slot_claims_failed; /* processes that found no free slot */
	struct mf_seg_container container;
	uint64_t heap_limit;    /* process live-bytes limit, 0 = none */
	uint32_t control;       /* MF_CTL_* bits the supervisor may set */
	uint32_t pad0;
	uint64_t gate_offset;   /* struct mf_seg_gate (version 2) */
	uint64_t reserved[15];
};

/*
 * The figures of one scope: kept exact by its thread in the shim (struct
 * mf_scope), published while it is in flight (struct mf_seg_scope) and
 * when it ends (struct mf_seg_record). The fields are written once, here;
 * the segment's structs hold them in an anonymous union, so that the shim
 * copies them in one assignment (e->fig = s->fig) while readers go on
 * naming each field (e->net). The refusal fields (version 3) describe the
 * scope's first refused allocation.
 */
#define MF_SEG_FIGURES_FIELDS                                                \
	uint64_t allocated; /* bytes allocated in the scope */               \
	uint64_t freed;     /* bytes freed in the scope */                   \
	int64_t net;        /* allocated - freed */                          \
	uint64_t peak;      /* highest net */                                \
	uint64_t budget;    /* the scope's budget, 0 = none */               \
	uint64_t failed;    /* allocations that failed or were refused */   \
	uint32_t refused_rule; /* enum mf_refusal_rule, 0 = none */        \
	uint32_t refused_pad;                                                \
	uint64_t refused_size; /* bytes the refused allocation asked for  \
				* (0: unknown, the allocator failed) */  \
	uint64_t refused_net;  /* the scope's net bytes then */            \
	uint64_t refused_need  /* its need at the gate then, 0 = none */

struct mf_seg_figures {
	MF_SEG_FIGURES_FIELDS;
};

#define MF_SEG_FIGURES                                                       \
	union {                                                              \
		struct mf_seg_figures fig;                                   \
		struct {                                                     \
			MF_SEG_FIGURES_FIELDS;                               \
		};                                                           \
	}

/* One scope in flight. Written only by the thread that owns it. */
struct mf_seg_scope {
	uint64_t seq;           /* seqlock; 0 = never used */
	uint32_t in_use;
	int32_t tid;
	uint32_t depth;
	uint32_t outcome_flags;
	uint64_t start_ns;      /* CLOCK_REALTIME */
	MF_SEG_FIGURES;
	char name[MF_SEG_NAME_LEN];
	char id[MF_SEG_NAME_LEN];
};

struct mf_seg_slot {
	uint32_t state;         /* enum mf_slot_state */
	int32_t pid;
	int32_t ppid;
	uint32_t generation;    /* bumped at each claim */
	uint64_t start_realtime_ns;
	uint64_t updated_ns;    /* CLOCK_MONOTONIC of the last flush */
	char comm[16];
	/* Counters, atomics. */
	uint64_t live;
	uint64_t peak;
	uint64_t allocated;
	uint64_t freed;
	uint64_t alloc_calls;
	uint64_t free_calls;
	uint64_t failed[MF_FAIL_NCAUSES];
	uint64_t thread_started;
	uint64_t thread_failed;
	int32_t thread_last_errno;
	uint32_t scopes_open;
	uint64_t scopes_ended;
	/* Written by the supervisor, not the process: `live` as it read it
	 * when it published the container's figures of updated_ns sampled_ns
	 * (0 until then), so that the shim can tell what every process has
	 * allocated or freed since that stale figure (src/shim/policy.c).
	 * Taken from the reserved words: the layout is that of version 2. */
	uint64_t sampled_live;
	uint64_t sampled_ns;
	uint64_t reserved[6];
	struct mf_seg_scope scopes[]; /* header.scopes_per_slot entries */
};

/* A finished scope. */
struct mf_seg_record {
	uint64_t seq;           /* seqlock; records are overwritten in a ring */
	uint64_t index;         /* ring position it was written for */
	int32_t pid;
	int32_t tid;
	uint32_t outcome;       /* enum memfence_outcome */
	uint32_t pad;
	uint64_t start_ns;      /* CLOCK_REALTIME */
	uint64_t duration_ns;
	MF_SEG_FIGURES;
	char name[MF_SEG_NAME_LEN];
	char id[MF_SEG_NAME_LEN];
};

/* The layout of version 3. */
_Static_assert(sizeof(struct mf_seg_scope) == 240 && sizeof(struct mf_seg_record) == 256 &&
		       sizeof(struct mf_seg_header) == 288,
	       "the segment's layout changed: bump MF_SEG_VERSION");

#define MF_CTL_PROFILE 1u /* reserved for the profiler */


/*
 * The admission gate (capability 15, src/shim/gate.c): before a scope starts
 * its work it asks for the memory its kind needs, and waits in arrival order
 * while the container cannot hold it. Every process of the segment shares
 * one gate. Entries and counters are atomics; an entry has one writer at a
 * time (the thread that claimed it; the supervisor frees the entries of a
 * dead process).
 */
#define MF_SEG_GATE_ENTRIES 512 /* requests waiting or admitted, container-wide */
#define MF_SEG_GATE_NAMES 64    /* scope names with a published need, hashed */
#define MF_SEG_GATE_HIST 12     /* wait-time buckets, and one for the rest */

enum mf_gate_state {
	MF_GATE_FREE = 0,
	MF_GATE_CLAIMED = 1,    /* being filled in */
	MF_GATE_WAITING = 2,
	MF_GATE_ADMITTED = 3
};

/* One request at the gate. */
struct mf_seg_gate_entry {
	uint32_t state;         /* enum mf_gate_state */
	int32_t pid;
	uint64_t ticket;        /* arrival order */
	uint64_t need;          /* bytes asked for */
	uint64_t since_ns;      /* CLOCK_MONOTONIC: arrival, then admission */
	uint64_t scope_start;   /* start_ns of the linked scope entry */
	int32_t slot;           /* the linked scope entry (-1: none): its net */
	int32_t scope;          /* is what the request already holds */
	uint32_t name_idx;      /* in names[], or MF_SEG_GATE_NAMES */
	int32_t tid;
	uint64_t pad;
};

/* One scope name: its need (written by the supervisor) and its counters
 * (added to by the shims). */
struct mf_seg_gate_name {
	uint64_t hash;          /* 0 = free; claimed with compare-and-swap */
	uint32_t ready;         /* name[] is written */
	uint32_t pad;
	uint64_t need;          /* learned need, bytes; 0 = not learned yet */
	uint64_t admitted;      /* requests admitted */
	uint64_t waited;        /* of which after waiting */
	uint64_t timed_out;     /* left the queue without being admitted */
	uint64_t too_big;       /* refused at once: need above the whole budget */
	uint64_t wait_ns;       /* total time waited by those admitted */
	char name[MF_SEG_NAME_LEN];
};

struct mf_seg_gate {
	/* Written by the supervisor before the program starts. */
	uint32_t on;            /* 0: every request is admitted at once */
	uint32_t min_count;     /* scopes seen before a need is learned */
	uint64_t default_need;  /* until then; 0 = a quarter of the line */
	uint64_t max_wait_ms;   /* longest wait when the caller gives none */
	uint64_t starve_ms;     /* after this, a waiter is passed by no one */
	/* Shared by every process: atomics. */
	uint64_t next_ticket;
	uint64_t admitted_need; /* sum of the needs of admitted requests */
	uint64_t waiting;       /* requests in the queue */
	uint64_t untracked;     /* admitted without an entry (table full) */
	uint64_t entries_hw;    /* entries ever claimed lie below this index */
	uint64_t hist[MF_SEG_GATE_HIST + 1]; /* waits of admitted requests */
	uint64_t reserved[7];
	struct mf_seg_gate_name names[MF_SEG_GATE_NAMES];
	struct mf_seg_gate_entry entries[MF_SEG_GATE_ENTRIES];
};

_Static_assert(sizeof(struct mf_seg_gate_entry) == 64 && sizeof(struct mf_seg_gate_name) == 128,
	       "the gate's layout changed: bump MF_SEG_VERSION");

/* Upper bounds of the wait-time buckets, milliseconds. */
#define MF_SEG_GATE_HIST_MS {1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}

/* The gate of a segment (version 2). */
static inline struct mf_seg_gate *mf_seg_gate_of(const struct mf_seg_header *h)
{
	return (struct mf_seg_gate *)((char *)h + h->gate_offset);
}

/* How many entries of the gate a scan must look at: entries are claimed
 * lowest free first and the shims raise entries_hw past every one they
 * claim, so those above it were never written. */
static inline uint32_t mf_seg_gate_entries_used(const struct mf_seg_gate *g)
{
	uint64_t hw = __atomic_load_n(&g->entries_hw, __ATOMIC_ACQUIRE);

	return hw < MF_SEG_GATE_ENTRIES ? (uint32_t)hw : MF_SEG_GATE_ENTRIES;
}

/* FNV-1a of a scope name, never 0 (0 marks a free name). */
static inline uint64_t mf_seg_name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h != 0 ? h : 1;
}

/* Total bytes of a segment with these dimensions. */
uint64_t mf_seg_size(uint32_t nslots, uint32_t scopes_per_slot, uint32_t ring_size);

/* Lay out a fresh segment in mem (size mf_seg_size(...), zeroed). */
void mf_seg_init(void *mem, uint32_t nslots, uint32_t scopes_per_slot,
		 uint32_t ring_size, int32_t owner_pid);

/* Check magic, version and that every offset fits in len. 0 if usable. */
int mf_seg_validate(const void *mem, uint64_t len);

struct mf_seg_slot *mf_seg_slot_at(const struct mf_seg_header *h, uint32_t i);
struct mf_seg_record *mf_seg_record_at(const struct mf_seg_header *h, uint64_t index);

/*
 * A slot never claimed: FREE with generation 0. Slots are claimed lowest
 * first and never return to FREE (src/shim/segw.c), so no slot after it
 * has been claimed either, save since this load, as if a moment later.
 * Readers stop there: a short run uses a few slots, and the pages of the
 * others stay untouched. Such a slot is all zero.
 */
static inline int mf_seg_slot_never_used(const struct mf_seg_slot *s)
{
	return __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == MF_SLOT_FREE &&
	       __atomic_load_n(&s->generation, __ATOMIC_RELAXED) == 0;
}

/*
 * The seqlock of a scope entry, a ring record and the container block, in
 * one place for its writers (the shim, the supervisor) and its readers.
 * One writer per sequence, so the writer needs no atomic read-modify-write.
 *
 *   uint64_t end = mf_seq_write_begin(&e->seq);   ...change e...
 *   mf_seq_write_end(&e->seq, end);
 *
 *   uint64_t s = mf_seq_read_begin(&e->seq);      ...copy e...
 *   if (mf_seq_read_ok(&e->seq, s)) the copy is stable; else read again
 *   (a sequence that stays odd: its writer died mid-update).
 */
static inline uint64_t mf_seq_write_begin(uint64_t *seq)
{
	uint64_t s = __atomic_load_n(seq, __ATOMIC_RELAXED);

	__atomic_store_n(seq, s + 1, __ATOMIC_RELAXED);
	/* The odd value is seen before any of the changes that follow. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	return s + 2;
}

static inline void mf_seq_write_end(uint64_t *seq, uint64_t end)
{
	__atomic_store_n(seq, end, __ATOMIC_RELEASE);
}

static inline uint64_t mf_seq_read_begin(const uint64_t *seq)
{
	return __atomic_load_n(seq, __ATOMIC_ACQUIRE);
}

static inline bool mf_seq_read_ok(const uint64_t *seq, uint64_t begin)
{
	/* What was copied is read before the sequence is read again. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return (begin & 1) == 0 && __atomic_load_n(seq, __ATOMIC_RELAXED) == begin;
}

/* A consistent copy of the container's figures (the supervisor rewrites
 * them several times a second), in at most tries attempts; false when the
 * writer was always in the middle of an update (or died there). */
static inline bool mf_seg_container_read(const struct mf_seg_container *c,
					 struct mf_seg_container *out, int tries)
{
	for (int i = 0; i < tries; i++) {
		uint64_t seq = mf_seq_read_begin(&c->seq);

		if (seq & 1)
			continue;
		out->limit = __atomic_load_n(&c->limit, __ATOMIC_RELAXED);
		out->working_set = __atomic_load_n(&c->working_set, __ATOMIC_RELAXED);
		out->reserve = __atomic_load_n(&c->reserve, __ATOMIC_RELAXED);
		out->min_size = __atomic_load_n(&c->min_size, __ATOMIC_RELAXED);
		out->updated_ns = __atomic_load_n(&c->updated_ns, __ATOMIC_RELAXED);
		out->gate_covered = __atomic_load_n(&c->gate_covered, __ATOMIC_RELAXED);
		if (mf_seq_read_ok(&c->seq, seq))
			return true;
	}
	return false;
}

/* Name of the memfd a shim makes its own segment in when it finds no
 * MEMFENCE_SEGMENT (seen as "/memfd:memfence.seg (deleted)" in /proc). */
#define MF_SEG_MEMFD_NAME "memfence.seg"

#endif
