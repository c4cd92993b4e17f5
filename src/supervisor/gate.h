/*
 * gate.h - the supervisor's side of the admission gate (gate.c): its
 * settings, the needs it publishes, the counters it reads for /metrics and
 * /status.
 */
#ifndef MF_SUP_GATE_H
#define MF_SUP_GATE_H

#include <stdint.h>

#include "base/segment.h"

struct sup_seg;
struct sup_state;

struct sup_gate_cfg {
	int on;
	uint64_t default_need;       /* until a name is learned; 0 = a quarter of the line */
	uint64_t max_wait_ms;        /* when the caller gives no deadline */
	uint64_t starve_ms;          /* after this long nobody passes a waiter */
	double quantile;             /* of a name's peaks: its need */
	uint32_t min_count;          /* scopes of a name before its need is learned */
};

#define SUP_GATE_QUEUE_SHOWN 16 /* waiters listed in /status */

struct sup_gate_name {
	char name[MF_SEG_NAME_LEN];
	uint64_t need, admitted, waited, timed_out, too_big, wait_ns;
	uint32_t queued;
};

struct sup_gate_waiter {
	int32_t pid;
	uint64_t ticket, need, waited_ms;
	char name[MF_SEG_NAME_LEN];
};

/* The gate as the last sample saw it. */
struct sup_gate_stats {
	int on;
	uint64_t max_wait_ms, starve_ms;
	uint64_t admitted_need, covered, untracked, freed_dead;
	uint32_t queued, admitted_now;
	uint64_t hist[MF_SEG_GATE_HIST + 1];
	uint32_t nnames;
	struct sup_gate_name names[MF_SEG_GATE_NAMES];
	struct sup_gate_waiter queue[SUP_GATE_QUEUE_SHOWN];
};

/* In a new segment: the gate's settings (it stays off unless cfg->on). */
void sup_gate_start(struct sup_seg *s, const struct sup_gate_cfg *cfg);
/* Before the cgroup is read: free what dead processes left at the gate and
 * measure what the admitted requests hold (s->gate_covered). */
void sup_gate_before_sample(struct sup_seg *s, struct sup_state *st);
/* The need the gate publishes for a kind of request: the configured
 * quantile of its peaks in the model once min_count are known; 0 before
 * (the shim uses the default need). */
uint64_t sup_gate_need(const char *name);
/* After the segment and its records are read: publish the needs the
 * model has learned, read the counters into st->gate. */
void sup_gate_after_sample(struct sup_seg *s, struct sup_state *st);

#endif
