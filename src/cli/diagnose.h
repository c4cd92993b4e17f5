/*
 * diagnose.h - what `memfence diagnose` gathers (diagnose.c) and draws
 * (diagnose_html.c).
 */
#ifndef MF_CLI_DIAGNOSE_H
#define MF_CLI_DIAGNOSE_H

#include <jansson.h>
#include <stdio.h>
#include <sys/types.h>

#include "host/diagnose.h"
#include "host/memory.h"
#include "host/model.h"

#define DIAG_DEATHS 100      /* post-mortems read, the newest */
#define DIAG_IN_FLIGHT 512

struct diag_src {
	const char *target;
	char segment[MF_PATH_MAX];   /* "" = none */
	char model_file[MF_PATH_MAX];/* "" = rebuilt from the segment's ring */
	char report_dir[MF_PATH_MAX];
	char state_dir[MF_PATH_MAX];
	char profile[MF_PATH_MAX];   /* newest heap profile, "" = none */
	struct mf_model *model;
	uint32_t ring_records;       /* finished scopes read from the segment */
	pid_t sup_pid, prog_pid;
	int running;                 /* the supervisor or the program lives */
	uint64_t limit, budget;
	uint64_t working_set, heap_live;
	int have_now;
	struct mf_diag_scope in_flight[DIAG_IN_FLIGHT];
	uint32_t nin_flight;
	struct mf_diag_death deaths[DIAG_DEATHS];
	uint32_t ndeaths;
	struct mf_diag_gate gate;    /* the admission gate's counters */
	int have_gate;               /* read from a segment with the gate on */
	json_t *timeline;            /* per-second points of the newest report or journal */
	uint64_t since_s;
	/* The run the model belongs to (its "run"): when it started, and the
	 * first ring record of its segment the model does not hold yet. */
	uint64_t run_started;
	pid_t run_sup_pid;           /* its supervisor, as recorded (alive or not) */
	uint64_t ring_next;
	uint32_t ring_live;          /* records added to the model from there */
	uint32_t other_runs;         /* post-mortems of other runs, not counted */
	int dir_target;              /* TARGET is a directory: its files are here */
	int pids_untrusted;          /* a copy or a moved run: its pids are not its */
};

/* Write the self-contained page. 0, or -errno. */
int diag_html_write(const char *path, const struct diag_src *src, const struct mf_diag *d);

#endif
