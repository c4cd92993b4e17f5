/*
 * prof_int.h - what the profiler's files share, and nothing the hooks need
 * (their side is prof.h). One file per idea:
 *
 *   prof.c         sampling: configuration, the countdown and its draws,
 *                  the lock, the sampled and freed paths, fork
 *   prof_native.c  native stacks: libgcc's unwinder, the shim's own range
 *                  and the interpreter's eval loop, where unwinding stops
 *   prof_python.c  Python frames: the code table, the frame walk, the
 *                  PyMem hooks for pymalloc's small objects
 *   prof_pylayout.h / prof_py3NN.c  where each CPython version keeps
 *                  the fields the walk reads, one file per version
 *   prof_table.c   the site, scope and live-sample tables, the filter
 *   prof_write.c   snapshot files and the /proc/self/maps they cite
 *   prof_signal.c  the snapshot signal
 *
 * Every table lives in mf_prof_st and is touched with the profiler's lock
 * held (prof.c), except the filter, which the hooks read without one.
 */
#ifndef MF_PROF_INT_H
#define MF_PROF_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/segment.h"
#include "shim/prof.h"

#define MF_PROF_NATIVE_MAX 32 /* native frames kept per sample */
#define MF_PROF_PY_MAX 24     /* Python frames kept per sample */
#define MF_PROF_FRAMES_MAX (MF_PROF_NATIVE_MAX + MF_PROF_PY_MAX)
#define MF_PROF_SITES_MAX 4096
#define MF_PROF_SITES_IDX (2 * MF_PROF_SITES_MAX)
#define MF_PROF_LIVE_MAX 32768 /* sampled blocks alive at once; a power of two */
#define MF_PROF_CODES_MAX 4096
#define MF_PROF_CODES_IDX (2 * MF_PROF_CODES_MAX)
#define MF_PROF_SCOPES_MAX 256
/* A frame of a site: a native return address, or this bit with the code
 * table's index in bits 32..62 and the line in bits 0..31. */
#define MF_PROF_PY_FRAME_TAG (1ull << 63)

struct mf_prof_site {
	uint64_t hash;
	uint16_t nnative, npy;
	uint16_t scope;
	uint16_t pad;
	/* Weighted bytes and calls: allocated, live now, live at peak, live
	 * at the first failure. */
	double ab, an, lb, ln, pb, pn, fb, fn;
	uint64_t frames[MF_PROF_FRAMES_MAX]; /* native leaf first, then Python leaf first */
};

struct mf_prof_live {
	uintptr_t ptr; /* 0 = empty */
	uint32_t site;
	uint32_t pad;
	double w, n;
};

struct mf_prof_code {
	uintptr_t obj; /* 0 = empty */
	int32_t firstline;
	char name[60];
	char file[124];
};

struct mf_prof_state {
	int on;            /* configured and tables mapped */
	int active;        /* sampling now (the supervisor may pause it) */
	int ctl_follow;    /* follow MF_CTL_PROFILE in the segment header */
	uint64_t rate;
	char dir[256];
	pid_t owner;       /* thread holding the lock, 0 = free */
	int pending;       /* a snapshot asked for while the lock was held */
	int failed_once;
	int low_once;
	int peak_dirty;    /* a peak view newer than the file */
	uint64_t last_write;
	double alloc_w, live_w, peak_w, fail_w, peak_mark;
	uint64_t samples;
	uint64_t over_sites, over_live, over_codes, over_scopes;
	uint32_t nsites, ncodes, nscopes, nlive;
	struct mf_prof_site *sites;
	int32_t *site_idx;
	struct mf_prof_live *live;
	struct mf_prof_code *codes;
	int32_t *code_idx;
	char (*scopes)[MF_SEG_NAME_LEN];
};

extern struct mf_prof_state mf_prof_st MF_HIDDEN;

/* prof.c: true when this thread is inside the profiler or holds its lock
 * (a signal handler must then leave the snapshot to it). */
bool mf_prof_busy(void) MF_HIDDEN;

/* prof_native.c. Init finds the shim's own code (self is an address in
 * it), loads the unwinder and runs it once, outside any hook; false when
 * libgcc_s is missing (samples then have no native stack). */
bool mf_prof_native_init(const void *self) MF_HIDDEN;

struct _Unwind_Context;
typedef int (*mf_prof_unwind_fn)(struct _Unwind_Context *, void *);
struct mf_prof_walk {
	uint64_t *out;
	int n;
};
/* libgcc's _Unwind_Backtrace, NULL without it. */
extern int (*mf_prof_unwind)(mf_prof_unwind_fn, void *) MF_HIDDEN;
int mf_prof_walk_cb(struct _Unwind_Context *ctx, void *arg) MF_HIDDEN;

/* This thread's native stack, leaf first, without the shim's frames.
 * Inline, so that the sampled path has no frame more for the unwinder to
 * step through: each costs it about a thousand instructions. */
static inline int mf_prof_native_stack(uint64_t *out)
{
	struct mf_prof_walk w = {out, 0};

	if (mf_prof_unwind == NULL)
		return 0;
	mf_prof_unwind(mf_prof_walk_cb, &w);
	return w.n;
}

/* prof_python.c. pymalloc is PYTHONMALLOC's value (NULL if unset). The
 * stack is this thread's Python frames when it holds the GIL; called with
 * the lock held (the code table is shared). */
void mf_prof_python_init(const char *pymalloc) MF_HIDDEN;
int mf_prof_python_stack(uint64_t *out) MF_HIDDEN;
/* The snapshot's "python" line after its key (docs/profiler.md). */
const char *mf_prof_python_header(void) MF_HIDDEN;
/* "hooked", "on" (pymalloc in use, not hooked yet) or "off". */
const char *mf_prof_pymalloc_state(void) MF_HIDDEN;

/* prof_table.c, with the lock held. */
int mf_prof_scope_index(const char *name) MF_HIDDEN;
int mf_prof_site_find(const uint64_t *f, int nn, int np, unsigned scope) MF_HIDDEN;
int mf_prof_live_add(uintptr_t p, uint32_t site, double w, double n) MF_HIDDEN;
int mf_prof_live_remove(uintptr_t p, struct mf_prof_live *out) MF_HIDDEN;
/* Copy the live view into the peak view (fail = 0) or the failure view. */
void mf_prof_take_view(int fail) MF_HIDDEN;

/* prof_write.c, with the lock held: dir/memfence-PID.prof. 0 or -errno. */
int mf_prof_write(const char *reason) MF_HIDDEN;

/* prof_signal.c: SIGUSR2 writes a snapshot. */
void mf_prof_signal_install(void) MF_HIDDEN;

#endif
