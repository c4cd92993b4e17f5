/*
 * pprof.h - the program's heap profiles for /debug/pprof/heap and
 * /debug/pprof/allocs (pprof.c): snapshots asked of the program's
 * processes, loaded and merged into Go's pprof on a thread of its own, so
 * that the HTTP thread never waits for a program and the probes answer
 * while a profile is taken.
 */
#ifndef MF_SUP_PPROF_H
#define MF_SUP_PPROF_H

#include <stddef.h>
#include <stdint.h>

#include "profile/profile.h"
#include "supervisor/state.h"
#include "supervisor/sup.h"

/* How long a request waits for fresh snapshots: past it, the newest
 * snapshot each process wrote is served with its age. docs/profiler.md
 * quotes it. */
#define SUP_PPROF_FRESH_MS 2000

/* One request for a profile. The caller fills the first part and hands it
 * to sup_pprof_submit(); done(job) is called from the profiles' thread with
 * the answer filled in, after which the caller owns the job again. */
struct sup_pprof_job {
	enum mf_prof_view view;       /* MF_VIEW_LIVE (heap) or MF_VIEW_ALLOCATED (allocs) */
	int32_t pids[SUP_MAX_PROCS];  /* the processes merged */
	int alive[SUP_MAX_PROCS];     /* asked for a fresh snapshot */
	int npids;
	void (*done)(struct sup_pprof_job *job);
	void *ctx;
	/* The answer: an HTTP status, a body (malloc'ed, the caller frees
	 * it) of body_len bytes, pprof when code is 200, else one line. */
	unsigned code;
	char *body;
	size_t body_len;
	uint64_t age_s;               /* of the oldest snapshot served */
	struct sup_pprof_job *next;
};

/* A push's HTTP request ends within this, or is abandoned (and logged). */
#define SUP_PPROF_PUSH_TIMEOUT_MS 10000

/* Start the profiles' thread for the snapshots in dir, pushing them as
 * push says. The program's processes are asked for snapshots by SIGUSR2
 * unless MEMFENCE_PROFILE_SIGNAL turns it off. 0, or -1 with a message in
 * err (libcurl missing for a push, no thread). */
int sup_pprof_start(const char *dir, const struct sup_pprof_push *push, char *err, size_t errlen);
/* Whether the thread runs (profiles are served). */
int sup_pprof_running(void);
/* The program's processes as st has them, for the next push. */
void sup_pprof_procs(const struct sup_state *st);
/* Queue job (answered at once with 503 when the thread is not running). */
void sup_pprof_submit(struct sup_pprof_job *job);
/* Answer what is queued (503) and end the thread. */
void sup_pprof_stop(void);

#endif
