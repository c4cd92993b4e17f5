/*
 * segread.h - reading (and creating) the shared stats segment.
 *
 * Readers are the supervisor and `memfence stat`: they map a segment file
 * and take consistent copies of what the writers (the shim in every process
 * of the program) publish, while those writers run or after they died.
 *
 * Consistency: slot counters are independent atomics and are copied one by
 * one (a copy is a set of figures each exact at flush granularity, not a
 * snapshot of one instant). In-flight scopes and ring records are seqlocked:
 * a copy is retried a few times while its writer is mid-update, and an entry
 * still odd after that is reported as torn (a writer that died mid-update
 * leaves it so forever) instead of being waited for.
 *
 * Functions return 0 or -errno unless said otherwise; messages for people
 * are the caller's business (mf_segread_strerror() helps).
 */
#ifndef MF_SEGREAD_H
#define MF_SEGREAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/segment.h"

/* Extra error codes, beyond errno values (all negative). */
#define MF_SEGREAD_EFORMAT (-10000) /* not a segment, truncated */
#define MF_SEGREAD_EVERSION (-10001) /* a segment of another layout version */

struct mf_segread {
	int fd;
	int writable;         /* opened read-write: may mark dead slots read */
	void *mem;
	uint64_t len;
	const struct mf_seg_header *hdr;
	char path[4096];
};

/*
 * Create a fresh segment file at path (replacing any file there) with these
 * dimensions (0 = the MF_SEG_DEFAULT_* value; ring is rounded up to a power
 * of two) and owner pid. The file is written whole before it gets its final
 * name, so a shim that opens path sees a complete segment or none.
 * Mode 0600. Every page is allocated before it is mapped (posix_fallocate):
 * -ENOSPC, not a SIGBUS later, when the filesystem is full; nothing is left
 * behind on failure. Returns 0 or -errno.
 */
int mf_seg_create(const char *path, uint32_t nslots, uint32_t scopes, uint32_t ring,
		  int32_t owner);

/* Map the segment at path; writable = 1 to be able to mark slots read
 * (needs write permission). Validates the header. */
int mf_segread_open(struct mf_segread *r, const char *path, int writable);

void mf_segread_close(struct mf_segread *r);

/*
 * Find the segment of process pid: a *.seg file it has mapped
 * (/proc/PID/maps) that validates, else its own memfd segment, as the
 * path /proc/PID/fd/N (readable while the process lives; needs the same
 * rights as ptrace). root: prefix for /proc ("" for the real one). Writes
 * the path to buf; -ESRCH no such process, -ENOENT it has no segment.
 */
int mf_segread_find_pid(const char *root, pid_t pid, char *buf, size_t len);

/* Copy of the header, taken field by field. */
void mf_segread_header(const struct mf_segread *r, struct mf_seg_header *out);

/* What a reader concluded about a slot. */
enum mf_segread_liveness {
	MF_SLOT_VIEW_FREE = 0,  /* never used or reclaimed */
	MF_SLOT_VIEW_LIVE = 1,  /* claimed and its process exists */
	MF_SLOT_VIEW_EXITED = 2,/* process ended normally */
	MF_SLOT_VIEW_DEAD = 3,  /* claimed but its process is gone (killed) */
	MF_SLOT_VIEW_READ = 4   /* dead or exited and already read */
};

struct mf_segread_slot {
	uint32_t index;
	enum mf_segread_liveness view;
	struct mf_seg_slot slot;    /* counters and identity (scopes[] not included) */
	uint32_t nscopes;           /* in-flight scopes copied to the caller's array */
	uint32_t ntorn;             /* a live writer's entries that stayed mid-update */
	uint32_t ndropped;          /* in use but the caller's array was full */
};

/*
 * Whether pid is a running process (not a zombie) that started no later
 * than since_ns (CLOCK_REALTIME; 0: any): the process that wrote a slot
 * claimed at since_ns, not a later one that got its pid. 1 or 0 (1 when
 * /proc cannot tell).
 */
int mf_proc_is(pid_t pid, uint64_t since_ns);

/*
 * Copy slot i: identity, counters and the scopes in flight (into scopes,
 * at most max of them; scopes may be NULL with max 0). Liveness is decided
 * with mf_proc_is(pid, claim time). Returns 0, -EINVAL for a bad index.
 */
int mf_segread_slot(struct mf_segread *r, uint32_t i, struct mf_segread_slot *out,
		    struct mf_seg_scope *scopes, uint32_t max);

/*
 * Mark a dead or exited slot read (it may then be reclaimed by a new
 * process). generation: the one seen in the copy, so that a slot reclaimed
 * meanwhile is left alone. Needs a writable reader. A live slot found dead
 * (killed) is first moved LIVE -> DEAD -> DEAD_READ. Returns 0, -EBUSY when
 * the slot changed or its process lives, -EROFS on a read-only reader.
 */
int mf_segread_mark_read(struct mf_segread *r, uint32_t i, uint32_t generation);

/*
 * Copy finished-scope records with index >= since (oldest first) into out
 * (at most max). *next: the index to pass as since next time. *lost:
 * records that were overwritten before they could be read (ring lapped)
 * or stayed torn. Returns the number of records copied.
 */
uint32_t mf_segread_ring(struct mf_segread *r, uint64_t since, struct mf_seg_record *out,
			 uint32_t max, uint64_t *next, uint64_t *lost);

/* Human message for a return value of these functions. */
const char *mf_segread_strerror(int err);

/* Name of a view: "free", "live", "exited", "dead", "read". */
const char *mf_segread_view_name(enum mf_segread_liveness v);

#endif
