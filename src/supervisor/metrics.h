/*
 * metrics.h - what /metrics and /status render from the state (metrics.c),
 * and the per-name histograms they show.
 */
#ifndef MF_SUP_METRICS_H
#define MF_SUP_METRICS_H

#include <jansson.h>
#include <stddef.h>

#include "host/psi.h"
#include "supervisor/seg.h"
#include "supervisor/state.h"

/* Name a scope belongs to in the histograms (created if room). */
struct sup_hist *sup_hist_get(struct sup_state *st, const char *name);
void sup_hist_add(struct sup_state *st, const struct sup_record *r);
extern const uint64_t sup_hist_bounds[SUP_HIST_BUCKETS];

/* Prometheus text exposition into buf; returns bytes written (truncates). */
size_t sup_metrics_render(const struct sup_state *st, char *buf, size_t len);
/* memory.pressure as JSON: {"some": {avg10, avg60, avg300, total_us}, "full": ...}. */
json_t *sup_psi_json(const struct mf_psi *p);
/* The /status document. */
json_t *sup_status_json(const struct sup_state *st);

#endif
