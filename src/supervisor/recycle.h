/*
 * recycle.h - the recycle rules (recycle.c): why a process is replaced
 * and which one. Driving a recycle (draining, signals) is the loop's, in
 * supervisor.h.
 */
#ifndef MF_SUP_RECYCLE_H
#define MF_SUP_RECYCLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sup_recycle_cfg {
	int on;                      /* the supervisor recycles (auto resolved) */
	uint64_t before_s;           /* forecast of the budget within this -> recycle */
	uint64_t jitter_s;           /* up to this much earlier, drawn at each start */
	uint64_t min_interval_ms;    /* at most one recycle per this long */
	uint64_t drain_delay_ms;     /* not ready this long before anything stops */
	uint64_t drain_timeout_ms;   /* then scopes in flight get this long */
	uint64_t grace_ms;           /* SIGTERM, then SIGKILL this long after */
};

/* Why a process was recycled. */
enum sup_recycle_reason {
	SUP_RECYCLE_LEAK = 0,        /* the forecast reached --recycle-before */
	SUP_RECYCLE_UNCLEAN,         /* the program said a failure left it unclean */
	SUP_RECYCLE_STUCK,           /* not ready for memory, idle, and not getting better */
	SUP_RECYCLE_NREASONS
};

/* Recycling as the state shows it (st->recycle), written by recycle.c. */
struct sup_recycle_view {
	int on;                      /* the supervisor recycles */
	int under_way;               /* a recycle is under way */
	int whole;                   /* ...of the whole program (readiness fails) */
	int32_t pid;
	char reason[200];            /* of the one under way, else the last */
	int restarting;              /* the program was recycled and does not serve again yet */
	uint64_t count[SUP_RECYCLE_NREASONS];
	uint64_t threshold_s;        /* --recycle-before with this run's jitter */
};

struct sup_state;

/* What the recycle rules chose: why, and the process to replace. */
struct sup_recycle_pick {
	int reason;                  /* enum sup_recycle_reason */
	pid_t pid;
	const char *why;             /* the state's stuck reason, or buf */
	char buf[160];
};

/* Take one request of a process to be recycled: 1 with its pid and
 * reason, else 0 (recycle.c reads them from its directory). */
typedef int (*sup_recycle_take_fn)(void *ctx, pid_t *pid, char *why, size_t whylen);

/*
 * The recycle rules on one sample of st, in their order: stuck (at once,
 * whatever the interval), then, once min_interval_ms has passed since
 * last_ms (0 = none yet), a request taken through take (may be NULL), then
 * the leak forecast within st->recycle.threshold_s. 1 with the pick, else 0.
 * No process is signalled: recycle.c drives what the pick starts.
 */
int sup_recycle_rules(const struct sup_recycle_cfg *c, const struct sup_state *st,
		      uint64_t last_ms, uint64_t now_ms, sup_recycle_take_fn take, void *ctx,
		      struct sup_recycle_pick *p);

#endif
