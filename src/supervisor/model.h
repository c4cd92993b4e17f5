/*
 * supervisor/model.h - the supervisor's side of the one model of the
 * program's memory (model.c; the model itself is host/model.h): feed it,
 * ask it for needs, save it, say what it holds in /status.
 */
#ifndef MF_SUP_MODEL_H
#define MF_SUP_MODEL_H

#include <jansson.h>
#include <stdint.h>

#include "base/segment.h"
#include "host/memory.h"

struct sup_record;
struct sup_state;

/* Retained bytes of one scope name, as the model has them. */
struct sup_model_name {
	char name[MF_SEG_NAME_LEN];
	uint64_t calls;              /* scopes of the name ended */
	int64_t retained;            /* median of the recent calls' net bytes */
	int64_t retained_sum;        /* every call's, summed */
	int retains;                 /* it leaves memory behind call after call */
};

#define SUP_MODEL_NAMES_SHOWN 32 /* the names retaining most, in /status and /metrics */

/* What /status says of the model (supervisor/model.c). */
struct sup_model_status {
	char file[MF_PATH_MAX];      /* where it is saved ("" = nowhere) */
	uint64_t saved_s;            /* last save, unix seconds */
	uint32_t names, windows;
	int leaking;
	double floor_slope;          /* bytes per second, since the program's start */
	double recent_slope;         /* over the recent half of those windows */
	uint64_t floor;              /* the last window's floor (net of the load) */
	uint64_t target;             /* what the floor may reach: the budget less
					what lies outside the heap */
	int64_t forecast_s;          /* -1 = none */
	uint64_t load, load_n;       /* most the scopes in flight held together */
	uint32_t nshown;
	struct sup_model_name shown[SUP_MODEL_NAMES_SHOWN]; /* most retained first */
};

/*
 * The supervisor feeds the one model (host/model.h) with every finished
 * scope and every sample, and saves it atomically every few seconds and at
 * the end: as STATE_DIR/model.json with --state-dir (it outlives the run;
 * the next start goes on from it), else next to the segment (removed at the
 * end). `memfence diagnose` reads it. Fixed memory: one static model.
 */
/* Before the first sample: where to save, what to say of the run. */
void sup_model_start(struct sup_state *st, const char *state_dir, const char *report_dir,
		     uint64_t window_s);
void sup_model_record(const struct sup_record *r);
/* What a scope of this name needs (mf_model_need), the name as the
 * program wrote it; 0 while fewer than min_count of its peaks are known.
 * name NULL: a typical scope of the program, over every name. */
uint64_t sup_model_need(const char *name, double q, uint64_t min_count);
/* One sample of st: the heap, the load of the scopes in flight, the
 * working set; OOM kills, exits and restarts become events. */
void sup_model_sample(struct sup_state *st);
/* The program (or one of its processes) was started anew: the leak
 * verdict starts over. */
void sup_model_epoch(struct sup_state *st);
/* A process was recycled on purpose (a model event). */
void sup_model_recycled(struct sup_state *st, const char *why, uint64_t bytes);
/* A stop was asked for: the program's shutdown is not its steady state,
 * so samples no longer go into the heap's floor. */
void sup_model_freeze(void);
/* Save when the last save is a few seconds old (force: now). */
void sup_model_save(struct sup_state *st, int force);
/* At the end: save, and remove the file unless it is in the state dir. */
void sup_model_stop(struct sup_state *st);
json_t *sup_model_status_json(const struct sup_model_status *m);

#endif
