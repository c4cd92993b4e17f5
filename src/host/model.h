/*
 * model.h - what memfence has learned about a program's memory: one model per
 * question, shared by every consumer.
 *
 * Per scope name (a kind of request or task): how many ended, how many
 * failed on memory, and the distributions of peak bytes (what one needs) and
 * retained bytes (net left behind when it ended); the largest one seen, by
 * id. For the process: the floor of the live heap, window by window (the
 * least it held while serving), its slope and a forecast of when the budget
 * is reached. For the admission gate: how many requests waited for memory
 * and how long, how many gave up, and how many were admitted at once while
 * others waited (the concurrency at which memory ran short).
 *
 * Consumers: the health rules (the need of a typical request), the
 * admission gate (the need of this kind of request), leak detection and
 * recycling (slope, forecast, retained bytes per call), `memfence diagnose`
 * and /status. The model's memory is fixed (MF_MODEL_NAMES names; names past
 * that are counted as dropped), so the supervisor can keep it for ever; it
 * is plain data, saved and loaded as JSON (model_json.c) so that a diagnosis
 * still works after the container died.
 *
 * Leaks and false alarms: a leak is a floor that keeps rising. A cache that
 * fills and then stays flat rises once and stops; bursty traffic raises the
 * heap during bursts but not the floor between them. So the verdict asks for
 * a rise over the whole history of windows *and* over its recent half, and
 * per scope name for a median of recent retained bytes above a noise level,
 * not a mean (one request that fills a cache is not a leak).
 */
#ifndef MF_MODEL_H
#define MF_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "base/segment.h" /* the gate's wait-time buckets */

#define MF_MODEL_NAMES 64      /* scope names with a model of their own */
#define MF_MODEL_NAME_LEN 64   /* as MF_SEG_NAME_LEN */
#define MF_MODEL_RECENT 32     /* recent retained values kept per name */
#define MF_MODEL_FLOORS 120    /* windows of the live heap's floor kept */
#define MF_MODEL_BIG 16        /* oversized candidates kept */
#define MF_MODEL_EVENTS 64     /* events kept, a ring */
/* Quarter powers of two from 4 KiB (bucket 0 holds everything below) up to
 * 2^40 bytes: a quantile is the upper edge of its bucket, at most 19 % above
 * the true value, which errs on the side of needing more. */
#define MF_DIST_BUCKETS 113
/* Waits at the admission gate: the segment's buckets (upper bounds in
 * MF_SEG_GATE_HIST_MS, and one for the rest). */
#define MF_MODEL_GATE_HIST (MF_SEG_GATE_HIST + 1)

struct mf_dist {
	uint64_t count;
	uint64_t sum;
	uint64_t max;
	uint64_t b[MF_DIST_BUCKETS];
};

void mf_dist_add(struct mf_dist *d, uint64_t v);
/* The q-quantile (0 < q <= 1), as the upper edge of its bucket (capped at
 * the largest value seen); 0 when empty. */
uint64_t mf_dist_quantile(const struct mf_dist *d, double q);

struct mf_model_name {
	char name[MF_MODEL_NAME_LEN];
	uint64_t count;            /* scopes ended */
	uint64_t failed;           /* of which ended with an allocation refused */
	struct mf_dist peak;       /* peak net bytes of each scope not refused */
	struct mf_dist retained;   /* net bytes left when it ended (0 if negative) */
	int64_t retained_sum;      /* signed sum of nets */
	int64_t recent[MF_MODEL_RECENT]; /* the last nets, a ring */
	uint32_t nrecent, recent_pos;
	uint64_t first_s, last_s;  /* unix seconds of the first and last end */
	uint64_t max_peak;         /* the largest peak seen, and its scope */
	char max_id[MF_MODEL_NAME_LEN];
	uint64_t max_at_s;
	int max_failed;
};

struct mf_model_floor {
	uint64_t t_s;              /* start of the window, unix seconds */
	uint64_t floor;            /* least live heap seen in the window */
	uint64_t high;             /* most live heap seen in the window */
	uint32_t max_in_flight;    /* most scopes in flight at one sample */
	/* The sample of the window where the scopes in flight held the most,
	 * together (aggregate load): their summed net bytes, how many they
	 * were and the largest one's share. 0 when no sample said. */
	uint32_t load_n;
	uint64_t load;
	uint64_t load_top;
	uint64_t ws_high;          /* most cgroup working set seen (0 = unknown) */
	/* What the scopes in flight held at the sample that set the floor:
	 * floor - floor_load is the heap no request accounts for. */
	uint64_t floor_load;
	/* The admission gate in the window: requests admitted after waiting
	 * and requests that gave up waiting; the longest queue one sample
	 * saw, and how many requests were admitted at that sample (what the
	 * memory held when it ran short). */
	uint64_t gate_waited;
	uint64_t gate_timed_out;
	uint32_t gate_queue;
	uint32_t gate_full_n;
};

/* The admission gate over the whole history. */
struct mf_model_gate {
	uint64_t waited;           /* requests admitted after waiting */
	uint64_t timed_out;        /* requests that gave up waiting */
	uint64_t hist[MF_MODEL_GATE_HIST]; /* the waits of those admitted */
};

/* Scopes far larger than the others of their name (or refused), the
 * largest kept: the candidates of an oversized request. */
struct mf_model_big {
	char name[MF_MODEL_NAME_LEN];
	char id[MF_MODEL_NAME_LEN];
	uint64_t peak;
	int64_t net;
	uint64_t t_s;
	uint32_t failed;
	uint64_t typical;          /* p95 of its name when it ended (0 = unknown) */
	/* Why it was refused (segment version 3): the rule (enum
	 * mf_refusal_rule, 0 = not refused or not said), what it asked for
	 * (its net bytes then plus the allocation refused) and its need at
	 * the admission gate then (0 = none). */
	uint32_t rule;
	uint64_t asked;
	uint64_t need;
};

/* What happened to the program, for a timeline: refusals are recorded by
 * mf_model_scope; deaths and restarts by whoever sees them. Events of one
 * kind, name and second are merged (count). */
enum mf_model_event_kind {
	MF_EV_REFUSED = 0,         /* a scope had an allocation refused */
	MF_EV_OOM_KILL = 1,        /* the kernel OOM-killed a process of the program */
	MF_EV_EXIT = 2,            /* the program ended otherwise */
	MF_EV_RESTART = 3,         /* the program was started again */
	MF_EV_RECYCLE = 4,         /* a process was replaced on purpose */
	MF_EV_NKINDS = 5
};

struct mf_model_event {
	uint64_t t_s;
	uint32_t kind;             /* enum mf_model_event_kind */
	uint32_t count;
	uint64_t bytes;            /* the largest figure among them (peak) */
	char name[MF_MODEL_NAME_LEN];
	char id[MF_MODEL_NAME_LEN];
};

struct mf_model {
	uint32_t version;          /* MF_MODEL_VERSION, checked on load */
	uint32_t nnames;
	uint64_t dropped;          /* scopes whose name found no room */
	struct mf_model_name names[MF_MODEL_NAMES];
	uint64_t window_s;         /* length of a floor window */
	struct mf_model_floor floors[MF_MODEL_FLOORS]; /* a ring */
	uint32_t nfloors, floor_pos;
	struct mf_model_floor cur; /* the window being filled */
	int cur_open;
	struct mf_model_big big[MF_MODEL_BIG]; /* largest peak first */
	uint32_t nbig;
	struct mf_model_event events[MF_MODEL_EVENTS]; /* a ring */
	uint32_t nevents, event_pos;
	uint64_t event_total[MF_EV_NKINDS]; /* counts ever, by kind */
	/* The program's current run (started again, or recycled) began here:
	 * the leak verdict looks at the windows from it on only, since the
	 * floors of a process that was replaced say nothing of the new one.
	 * 0 = every window. */
	uint64_t epoch_s;
	struct mf_model_gate gate;
};

#define MF_MODEL_VERSION 1
#define MF_MODEL_WINDOW_S 10   /* default floor window */

void mf_model_init(struct mf_model *m, uint64_t window_s);
/* The same for m known to be all zero (static storage never written): its
 * pages, about 170 KiB, stay untouched until used. */
void mf_model_init_zeroed(struct mf_model *m, uint64_t window_s);

/* A scope ended: its name and id, peak and net bytes, whether an allocation
 * was refused in it, and when (unix seconds). A refused scope is also an
 * event; one refused, or at least 2x the p95 of its name's earlier peaks
 * (after 8 of them), is a candidate for the oversized list. */
void mf_model_scope(struct mf_model *m, const char *name, const char *id, uint64_t peak,
		    int64_t net, int failed, uint64_t t_s);

/* Why a scope was refused, as the shim recorded its first refusal. */
struct mf_model_why {
	uint32_t rule;             /* enum mf_refusal_rule */
	uint64_t asked;            /* its net bytes then + the bytes asked for */
	uint64_t need;             /* its need at the gate then, 0 = none */
};

/* mf_model_scope with the reason of the refusal (why NULL: not said). */
void mf_model_scope_why(struct mf_model *m, const char *name, const char *id, uint64_t peak,
			int64_t net, int failed, uint64_t t_s, const struct mf_model_why *why);

/* "budget", "gate", "pressure", "heap-limit", "allocator", "container",
 * "fault"; "" for none. */
const char *mf_model_rule_name(uint32_t rule);
/* The rule of a name from mf_model_rule_name, 0 when unknown. */
uint32_t mf_model_rule_of(const char *name);

/* One sample of the process (all processes of the program): live heap
 * bytes and scopes in flight, at unix second t_s. */
void mf_model_heap(struct mf_model *m, uint64_t t_s, uint64_t live, uint32_t in_flight);

/* The same sample with what the container and the scopes in flight held. */
struct mf_model_sample {
	uint64_t t_s;
	uint64_t live;             /* live heap bytes */
	uint32_t in_flight;        /* scopes in flight */
	uint64_t load;             /* their summed net bytes (negatives as 0) */
	uint64_t load_top;         /* the largest one's net bytes */
	uint64_t working_set;      /* the cgroup's, 0 = unknown */
	/* The admission gate: since the last sample, requests admitted after
	 * waiting, requests that gave up, and the waits of those admitted (by
	 * bucket); now, requests waiting and requests admitted. */
	uint64_t gate_waited;
	uint64_t gate_timed_out;
	uint64_t gate_hist[MF_MODEL_GATE_HIST];
	uint32_t gate_queue;
	uint32_t gate_admitted;
};
void mf_model_sample(struct mf_model *m, const struct mf_model_sample *s);

/* The program runs anew from t_s (a restart, a recycle): the leak verdict
 * starts over from the first window that begins at or after t_s; the
 * windows before it stay for a diagnosis. */
void mf_model_epoch(struct mf_model *m, uint64_t t_s);
/* The q-quantile of the waits in hist (MF_MODEL_GATE_HIST buckets), as the
 * upper bound of its bucket in milliseconds; UINT64_MAX when it lies past
 * the last bound; 0 when no request waited. */
uint64_t mf_model_gate_wait_ms(const uint64_t *hist, double q);

/* Record an event (deaths, restarts; refusals come with mf_model_scope). */
void mf_model_event(struct mf_model *m, uint64_t t_s, enum mf_model_event_kind kind,
		    const char *name, const char *id, uint64_t bytes);

/* The i-th kept event, oldest first (i < nevents). */
const struct mf_model_event *mf_model_event_at(const struct mf_model *m, uint32_t i);

/* "refused", "oom-kill", "exit", "restart", "recycle". */
const char *mf_model_event_name(enum mf_model_event_kind kind);

/* The model of one name, or NULL. */
const struct mf_model_name *mf_model_find(const struct mf_model *m, const char *name);

/* What a scope of this name needs: the q-quantile of its peaks once at
 * least min_count of them are known (scopes that ended without a refusal:
 * a refused one says nothing of the need); else 0. With name NULL, over
 * every name (the typical request of the program). The admission gate
 * publishes these (src/supervisor/gate.c). */
uint64_t mf_model_need(const struct mf_model *m, const char *name, double q,
		       uint64_t min_count);

/* Median of the recent retained bytes of a name (signed; 0 when none).
 * Refused scopes are not among them: one stopped by a refusal freed what
 * it had and says nothing of what a call keeps. */
int64_t mf_model_recent_retained(const struct mf_model_name *n);

/* Does this name leave memory behind call after call? At least 16 recent
 * calls that were not refused, whose median retained bytes pass
 * max(min_bytes, 1 % of the median peak). */
int mf_model_name_retains(const struct mf_model_name *n, uint64_t min_bytes);

struct mf_leak {
	int leaking;               /* the floor keeps rising */
	uint32_t windows;          /* windows the verdict rests on */
	double slope;              /* bytes per second over those windows */
	double recent_slope;       /* over their recent half */
	uint64_t floor_first, floor_last;
	int64_t forecast_s;        /* seconds until the floor reaches the
				    * budget at this slope; -1 = never/unknown */
};

/* Leak verdict from the floors (closed windows since the epoch only),
 * each net of what the scopes in flight held when it was set (under
 * sustained load the floor rises and falls with the load; what no request
 * accounts for is what a leak leaves), against budget (bytes; 0 = no
 * forecast). A leak needs at least min_windows windows, a rise of more
 * than min_rise bytes from first to last, and a positive slope both over
 * all windows and over the recent half. */
void mf_model_leak(const struct mf_model *m, uint64_t budget, uint32_t min_windows,
		   uint64_t min_rise, struct mf_leak *out);

/* The i-th closed floor window, oldest first (i < nfloors). */
const struct mf_model_floor *mf_model_floor_at(const struct mf_model *m, uint32_t i);

#endif
