/*
 * supervisor.h - the supervisor's own state, shared by the files of its
 * loop: supervisor.c (the loop), child.c (start, end, restart), recycle.c
 * (draining and replacing the program or one of its processes), state.c
 * (sampling; reports and journal from the state), python.c (the Python
 * bootstrap), protect.c (oom_score_adj), statedir.c (state directory,
 * segment file). Dependencies point that way only: supervisor.c uses
 * child.c, child.c uses state.c, never back. The parts they drive have a
 * header each (seg.h, health.h, gate.h, model.h, metrics.h, http.h,
 * report.h, journal.h, quar.h; recycle.h for the recycle rules, state.h for
 * the state they fill, common.h for what they share); sup.h is the entry.
 * Nothing outside src/supervisor includes this file.
 */
#ifndef MF_SUPERVISOR_H
#define MF_SUPERVISOR_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "supervisor/common.h"
#include "supervisor/health.h"
#include "supervisor/http.h"
#include "supervisor/journal.h"
#include "supervisor/metrics.h"
#include "supervisor/model.h"
#include "supervisor/quar.h"
#include "supervisor/report.h"
#include "supervisor/seg.h"
#include "supervisor/state.h"
#include "supervisor/sup.h"

/* A recycle under way (recycle.c). */
struct sup_recycle {
	int phase;                 /* idle, draining, SIGTERM sent, SIGKILL sent */
	int whole;                 /* the program, not one of its processes */
	pid_t pid;
	uint64_t since_ms, term_ms;
	uint64_t drain_ms;         /* not ready this long before the whole program stops */
	uint64_t last_ms;          /* when the last one ended; 0 = none yet */
	char dir[MF_PATH_MAX];     /* where processes ask for it; "" = nowhere */
	DIR *d;                    /* that directory, opened as made: never a link */
	pid_t signalled;           /* the last process a recycle told to end */
};

struct sup {
	struct sup_config cfg;     /* a copy: the segment's path is filled in */
	struct mf_cgroup_sampler cg;
	struct sup_seg seg;
	struct sup_health health;
	struct sup_state st;
	struct sup_http *http;         /* served */
	struct sup_http *http_pending; /* bound, served at its first connection */
	int sfd, tfd;
	int stopping;              /* the stop signal that arrived: no more restarts */
	int last_forwarded;
	int oom_adj_orig;
	uint64_t child_start_ms, oom_at_start, failed_at_start;
	uint64_t last_second;
	unsigned quick_failures;
	uint64_t oom_pending_ms;   /* an OOM kill not yet reported */
	uint64_t oom_pending_from;
	char segment[MF_PATH_MAX]; /* the segment's path when memfence names it */
	char sweep_dir[MF_PATH_MAX]; /* where to sweep dead supervisors' files, after the start */
	int started_once;          /* the program started once: sup_protect() done, sweep done */
	char quar_dir[MF_PATH_MAX];   /* the store's state directory */
	char quar_spec[2 * MF_PATH_MAX + 64];
	int lock_fd;               /* the state directory's lock, -1 without one */
	int seg_failed;            /* the last start found no room for the segment */
	pid_t dying_pid;           /* the program, reaped: its wait status */
	int dying_ws;
	/* Scopes of processes found dead, kept from the read that retired
	 * their slots until the post-mortem of an OOM-killed worker takes
	 * them: that report may be written a sample or more later. */
	struct sup_scope dead_scopes[16];
	uint32_t ndead_scopes;
	/* Figures for post-mortems (sup_at_death): of the previous sample,
	 * of the last one that found the program not yet ended, and of the
	 * sample before the OOM kill now pending. */
	struct sup_at_death fig_prev, fig_alive, fig_oom;
	struct sup_recycle rc;
	char serving_file[MF_PATH_MAX]; /* where the program says it serves; "" = nowhere */
	int serving_used;          /* the program said so once: every start waits for it */
	char drain_file[MF_PATH_MAX]; /* where the program is told it is drained; "" = nowhere */
	char drain_said[200];      /* what that file holds now; "" = absent */
	unsigned drain_warned;
};

/* state.c: read the cgroup and the segment into s->st. */
void sup_state_sample(struct sup *s);
/* state.c: one point a second of the memory timeline. */
void sup_timeline_push(struct sup_state *st);
/* state.c: print a post-mortem to stderr and write it. */
void sup_write_report(struct sup *s, const struct sup_death *d);
/* state.c: rewrite the journal (under --state-dir only). */
void sup_journal_update(struct sup *s, const struct sup_death *d);
/* state.c: allocation failures of every cause so far. */
uint64_t sup_failures_total(const struct sup_state *st);

/* child.c: the signals passed on to the program. */
extern const int sup_forwarded[];
extern const size_t sup_nforwarded;
/* Start the program: 0, or the exit status to end with, after saying why. */
int sup_child_start(struct sup *s);
/* The program ended with wait status ws: classify, report. */
void sup_child_ended(struct sup *s, int ws, struct sup_death *d);
int sup_child_should_restart(const struct sup *s, const struct sup_death *d);
uint64_t sup_child_backoff_ms(struct sup *s, uint64_t ran_ms);
/* sup_seg's on_dead: count the scopes of a dead process in the quarantine. */
void sup_child_on_dead(void *ctx, const struct mf_seg_slot *slot, uint64_t oom_alive,
		       const struct mf_seg_scope *sc, uint32_t n);

/* recycle.c: the directory processes ask in (before the first start). */
void sup_recycle_init(struct sup *s);
/* The program (re)started: a recycle under way is over; this run's jitter. */
void sup_recycle_started(struct sup *s);
/* After the health rules: start, drive or end a recycle. */
void sup_recycle_tick(struct sup *s, uint64_t now_ms);
/* The program's end is a recycle's (it was told to end): start it again at
 * once, no report. An end before that, during the drain, is its own. */
int sup_recycle_whole_ending(const struct sup *s);
/* Whether pid ended because a recycle told it to (SIGTERM, SIGKILL):
 * memfence's doing, never a death of its scopes. */
int sup_recycle_ended(const struct sup *s, pid_t pid);
void sup_recycle_stop(struct sup *s);
/* The request name in the recycle directory dir (a descriptor): 1 with its
 * pid and reason (one clean line) when it is one (a regular file named PID,
 * not a link), else 0. Not removed. */
int sup_recycle_request_read(int dir, const char *name, pid_t *pid, char *why, size_t whylen);

/* serving.c: where the program says it serves (before the first start). */
void sup_serving_init(struct sup *s);
/* Before each start: this start serves nothing yet. */
void sup_serving_started(struct sup *s);
/* After the health rules: readiness fails until this start serves. */
void sup_serving_tick(struct sup *s, uint64_t now_ms);
void sup_serving_stop(struct sup *s);
/* After the recycle rules: tell the program whether it is drained. */
void sup_drain_tick(struct sup *s);

/* python.c: put the bootstrap first on the program's PYTHONPATH. */
void sup_python_env(const struct sup *s, struct mf_envp *env);
/* python.c: the program is a server memfence's Python integration knows. */
int sup_python_server(const struct sup *s);

/* protect.c */
void sup_protect(struct sup *s);
/* What the program writes to its oom_score_adj to get the value the
 * supervisor had (in buf), or NULL when it has it already. */
const char *sup_protect_undo(const struct sup *s, char *buf, size_t len);
/* Lock what was mapped since sup_protect(), when it could lock. */
void sup_protect_relock(const struct sup *s);

/* statedir.c */
int sup_segment_path(struct sup *s);
void sup_segment_sweep(struct sup *s);
/* Create and lock the state directory: 0, or -1 (said) when it cannot be
 * made or another supervisor holds it. */
int sup_state_dir_lock(struct sup *s);
int sup_state_dir_prepare(struct sup *s);

#endif
