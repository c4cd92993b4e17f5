/*
 * diagnose.h - why a program runs out of memory: a leak, aggregate load,
 * oversized requests, or memory outside the heap; or nothing wrong.
 *
 * The question of the seed's engineers, answered from what memfence
 * already keeps: the model (host/model.h: per-name peaks and retained
 * bytes, the live heap's floor, the load of the scopes in flight, the
 * largest scopes, events), the scopes in flight now, and the post-mortems
 * of deaths. mf_diagnose() only reasons: it reads no file, so it is tested
 * with made-up inputs (tests/unit/test_diagnose.c); `memfence diagnose`
 * gathers the inputs and prints the result (text, JSON, HTML).
 *
 * The verdicts, each on its own evidence:
 *  - leak: the live heap's floor keeps rising (mf_model_leak), or scope
 *    names leave memory behind call after call while the floor rises;
 *  - oversized: scopes that needed more than the budget, or far more (4x)
 *    than the p95 of their name; or that were refused for outgrowing
 *    their kind (the gate's rule, their own budget, or asking for twice
 *    the p95 of their name), whatever the peak they were stopped at;
 *  - aggregate: memory ran short (refusals, an OOM kill, the heap at the
 *    budget) while many ordinary scopes held it together (at least half the
 *    budget, no single one half of that); or, with the admission gate,
 *    a share of the requests waited for memory: the same load, turned
 *    into waits instead of failures;
 *  - outside-heap: the container filled with memory the accounting does
 *    not see (shared memory, tmpfs, page cache that cannot be reclaimed,
 *    other processes): the cgroup's working set far above the live heap.
 *    Not a heap leak, and said so;
 *  - healthy: none of these, and no refusal, OOM kill or program death.
 */
#ifndef MF_DIAGNOSE_H
#define MF_DIAGNOSE_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "base/segment.h"
#include "host/model.h"

enum mf_verdict {
	MF_VERDICT_LEAK = 0,
	MF_VERDICT_AGGREGATE,
	MF_VERDICT_OVERSIZED,
	MF_VERDICT_OUTSIDE,
	MF_VERDICT_HEALTHY,
	MF_VERDICT_N
};

/* "leak", "aggregate", "oversized", "outside-heap", "healthy". */
const char *mf_verdict_name(enum mf_verdict v);

#define MF_DIAG_LISTED 8  /* in-flight scopes kept per death */

/* A scope in flight (now, or at a death). */
struct mf_diag_scope {
	char name[MF_MODEL_NAME_LEN];
	char id[MF_MODEL_NAME_LEN];
	uint64_t peak;
	int64_t net;
	uint64_t failed;
	/* Its first refusal (segment version 3): the rule (enum
	 * mf_refusal_rule, 0 = none or not said), what it asked for then
	 * (net + the allocation), its need at the gate then (0 = none). */
	uint32_t rule;
	uint64_t asked, need;
};

/* One post-mortem report (docs/report-format.md). */
struct mf_diag_death {
	uint64_t t_s;
	int32_t sup_pid;            /* the supervisor that wrote it, 0 = not said */
	char cause[16];             /* "oom-kill", "exit", "sigkill", "signal", "lost" */
	uint64_t limit, usage, working_set, heap_live;
	/* The highest working set of its timeline's last 10 seconds, and the
	 * heap at that point: the report's own figures are read after the
	 * kill freed the memory. */
	uint64_t ws_before, heap_before;
	uint32_t in_flight;         /* in_flight_total */
	uint64_t in_flight_sum;     /* summed net bytes of those listed */
	uint32_t nlisted;
	struct mf_diag_scope listed[MF_DIAG_LISTED]; /* largest peak first */
};

/* Fill d from a report document; 0, or -1 when it is not a report. */
int mf_diag_death_from_report(json_t *report, struct mf_diag_death *d);

/* The admission gate as its counters in the stats segment say. */
struct mf_diag_gate {
	uint64_t waited;               /* requests admitted after waiting */
	uint64_t timed_out;            /* requests that gave up waiting */
	uint64_t hist[MF_MODEL_GATE_HIST]; /* waits of those admitted */
	uint32_t queue, admitted;      /* now (when the input has_now) */
};

struct mf_diag_input {
	const struct mf_model *model;  /* required */
	uint64_t limit, budget;        /* bytes, 0 = unknown */
	uint64_t now_s;
	uint64_t since_s;              /* ignore what is older; 0 = everything */
	int have_now;                  /* the figures below are current */
	uint64_t working_set, heap_live;
	const struct mf_diag_scope *in_flight; /* scopes in flight now */
	uint32_t nin_flight;
	const struct mf_diag_death *deaths;
	uint32_t ndeaths;
	const struct mf_diag_gate *gate;  /* NULL: no gate, or not read */
};

#define MF_DIAG_RETAINERS 8

struct mf_diag_retainer {
	char name[MF_MODEL_NAME_LEN];
	uint64_t calls;
	int64_t median_retained;       /* of the recent calls */
	int64_t retained_sum;          /* over every call */
	int64_t mean_retained;         /* retained_sum / calls */
	uint64_t p50_peak;
	int slow;                      /* named by its total, not its recent calls */
};

struct mf_diag_big {
	char name[MF_MODEL_NAME_LEN];
	char id[MF_MODEL_NAME_LEN];
	uint64_t peak;
	uint64_t p50, p95;             /* of its name's peaks (0 = too few) */
	uint64_t t_s;
	int refused;                   /* an allocation was refused in it */
	int at_death;                  /* in flight when the program died */
	int over_budget;
	uint32_t rule;                 /* why it was refused (enum mf_refusal_rule) */
	uint64_t asked, need;          /* what it asked for then, its need at the gate */
	int outgrew;                   /* refused for outgrowing its kind */
};

struct mf_diag {
	enum mf_verdict verdict[MF_VERDICT_N]; /* strongest first */
	uint32_t nverdicts;
	int holds[MF_VERDICT_N];
	double score[MF_VERDICT_N];
	int weak[MF_VERDICT_N];        /* chosen only because memory ran out */

	/* what the diagnosis rests on */
	uint64_t limit, budget;
	uint64_t from_s, to_s;         /* history covered */
	uint64_t scopes, names;
	uint64_t refused, oom_kills, deaths, restarts;
	uint64_t heap_high, ws_high;   /* highest seen */
	uint64_t need_p50, need_p95;   /* of every scope's peak */

	/* leak */
	struct mf_leak leak;
	uint64_t leak_min_rise;
	struct mf_diag_retainer retainers[MF_DIAG_RETAINERS];
	uint32_t nretainers;

	/* oversized (and the largest refused ordinary scopes, for aggregate) */
	struct mf_diag_big big[MF_MODEL_BIG + MF_DIAG_LISTED];
	uint32_t nbig;                 /* oversized ones first ... */
	uint32_t noversized;           /* ... this many of them */
	uint64_t refused_ordinary;     /* refused scopes of an ordinary size */

	/* aggregate: the moment the scopes in flight held the most together
	 * with no single one dominating */
	uint64_t agg_load, agg_top, agg_t_s;
	uint32_t agg_n;
	int agg_at_death;
	uint64_t fit;                  /* scopes of the p95 need the budget holds */
	/* aggregate under the admission gate: requests that waited for
	 * memory, how long (p50, p99 in ms; UINT64_MAX: past the last
	 * bucket), requests that gave up; how many were admitted at once
	 * while others waited (the median over the windows with a queue: the
	 * concurrency at which memory ran short), the longest queue, and the
	 * queue now */
	uint64_t gate_waited, gate_timed_out;
	uint64_t gate_p50_ms, gate_p99_ms;
	uint32_t gate_full_n;
	uint32_t gate_queue_max;
	uint64_t gate_queue_t_s;
	int gate_now;
	uint32_t gate_queue_now, gate_admitted_now;

	/* outside the heap: working set minus live heap, at its worst */
	uint64_t outside, outside_ws, outside_heap, outside_t_s;
	int outside_at_death;
};

/* 0, or -ENOMEM. */
int mf_diagnose(const struct mf_diag_input *in, struct mf_diag *out);

/* Does the diagnosis find something wrong (any verdict but healthy)? */
int mf_diag_problem(const struct mf_diag *d);

/* Sentences for a person, one evidence line each, for verdict v. Returns
 * the number of lines written to lines (each up to MF_DIAG_LINE bytes). */
#define MF_DIAG_LINE 320
#define MF_DIAG_LINES 16
unsigned mf_diag_evidence(const struct mf_diag *d, enum mf_verdict v,
			  char lines[][MF_DIAG_LINE], unsigned max);

/* The report as text (what `memfence diagnose` prints). */
void mf_diag_print(FILE *f, const struct mf_diag *d);

/* The stable JSON document (docs/diagnose.md). */
/* What a scope asked for (or reached, if more) over the p95 of its name;
 * 0 when the p95 is unknown. The text and the page print this one. */
double mf_diag_big_ratio(const struct mf_diag_big *x);
/* Why a scope was refused, as a clause ("by the admission gate, ..."); ""
 * when not said. */
const char *mf_diag_rule_clause(uint32_t rule);
json_t *mf_diag_json(const struct mf_diag *d);

#endif
