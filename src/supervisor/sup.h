/*
 * sup.h - the supervisor's entry (`memfence run`): its resolved
 * configuration and sup_run(). The configuration of each part is typed by
 * that part's header (health.h, gate.h, recycle.h, serving.h); the options
 * are resolved into it by config.h. Each part's header says what the
 * others need of it; supervisor.h holds the loop's own state.
 */
#ifndef MF_SUP_H
#define MF_SUP_H

#include <stdint.h>

#include "host/launch.h"
#include "host/memory.h"
#include "host/plan.h"
#include "supervisor/gate.h"
#include "supervisor/health.h"
#include "supervisor/recycle.h"
#include "supervisor/serving.h"

#define SUP_RESTART_FLOOR_MS 100 /* the least backoff of a crash loop's later restarts */

/* The push of heap profiles to a Pyroscope-compatible server (pprof.c). */
struct sup_pprof_push {
	const char *url;              /* the server's base URL; NULL = no push */
	const char *name;             /* the application's name there */
	uint64_t interval_ms;
};

enum sup_restart { SUP_RESTART_NEVER, SUP_RESTART_ON_OOM, SUP_RESTART_ALWAYS };

struct sup_config {
	struct mf_launch launch;     /* account resolved to 0 or 1 */
	struct mf_plan plan;         /* as the program gets it at its first
					start (a restart resolves it again) */
	const struct mf_memory *mem; /* what the plan came from; zeroed when
					nothing was readable */
	char **argv;                 /* the program and its arguments */
	const char *http;            /* ADDR:PORT to serve; NULL = off */
	enum sup_restart restart;
	uint64_t delay_ms, max_delay_ms; /* restart backoff: first, cap */
	uint64_t interval_ms;        /* sampling period */
	uint64_t model_window_s;     /* window of the heap's floor in the model */
	const char *report_dir;      /* never NULL */
	const char *state_dir;       /* NULL = none */
	const char *quarantine;      /* store spec ("" = the default file); NULL = off */
	struct sup_health_cfg health;
	uint64_t container_min;      /* allocation size the container check
					applies from; 0 = off */
	int auto_python;             /* put the Python bootstrap on PYTHONPATH */
	int profile;                 /* sample the heap, snapshots in report_dir */
	struct sup_pprof_push profile_push; /* url NULL = no push */
	struct sup_gate_cfg gate;
	struct sup_recycle_cfg recycle;
	struct sup_ready_tcp ready_tcp;
};

/*
 * Start the program under cfg and supervise it until it has ended for good
 * (or a stop signal arrived). Returns memfence's exit status: the program's
 * own (128+N for signal N), MF_EXIT_FAILURE when the supervisor cannot
 * start, MF_EXIT_USAGE for a malformed quarantine store name.
 */
int sup_run(const struct sup_config *cfg);

#endif
