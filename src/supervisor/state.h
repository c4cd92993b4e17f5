/*
 * state.h - all the supervisor knows, in one fixed-size struct sup_state:
 * the main loop fills it from the cgroup and the stats segment several times
 * a second, and publishes a copy under a mutex for the HTTP thread. Nothing
 * grows with traffic or run time: scopes, processes, names and the timeline
 * have fixed capacities, and what does not fit is counted as dropped. The
 * parts' own figures are grouped and typed by their headers, each written
 * by its part: health (health.h), recycle (recycle.h), gate (gate.h),
 * model (supervisor/model.h).
 */
#ifndef MF_SUP_STATE_H
#define MF_SUP_STATE_H

#include <stdint.h>
#include <sys/types.h>

#include "base/segment.h"
#include "host/memory.h"
#include "host/psi.h"
#include "supervisor/common.h"
#include "supervisor/gate.h"
#include "supervisor/health.h"
#include "supervisor/model.h"
#include "supervisor/recycle.h"

#define SUP_MAX_SCOPES 128   /* in-flight scopes kept per snapshot */
#define SUP_MAX_PROCS 64     /* processes shown (segment slots) */
#define SUP_MAX_NAMES 32     /* scope names with their own histograms */
#define SUP_HIST_BUCKETS 12  /* 4 KiB .. 16 GiB by powers of 4 */
#define SUP_TIMELINE 60      /* one point a second: the last minute */

struct sup_scope {
	int32_t pid, tid;
	uint64_t start_ns;           /* CLOCK_REALTIME */
	uint64_t allocated, freed, peak, budget, failed;
	int64_t net;
	/* Its first refusal, as struct sup_record's. */
	uint32_t refused_rule;
	uint64_t refused_asked, refused_need;
	char name[MF_SEG_NAME_LEN];
	char id[MF_SEG_NAME_LEN];
};

struct sup_proc {
	int32_t pid, ppid;
	uint32_t state;
	int alive;
	char comm[17];
	uint64_t live, peak, allocated, freed, failed;
	uint32_t scopes_open;
};

struct sup_hist {
	char name[MF_SEG_NAME_LEN];
	uint64_t count, failed;
	uint64_t alloc_sum, ret_sum, peak_sum;
	uint64_t alloc_b[SUP_HIST_BUCKETS];
	uint64_t ret_b[SUP_HIST_BUCKETS];
	uint64_t peak_b[SUP_HIST_BUCKETS];
};

struct sup_point {
	uint64_t t_s;                /* unix seconds */
	uint64_t usage, working_set, heap_live;
};

struct sup_state {
	/* plan */
	uint64_t limit, reserve, budget, container_min;
	char limit_from[MF_PATH_MAX + 32];
	char cgroup[MF_PATH_MAX];
	int cgroup_version;
	/* cgroup */
	uint64_t usage, working_set, headroom, usable;
	uint64_t oom_kill, oom_kill_at_start;
	int psi_ok;                  /* psi was read (cgroup v2 with PSI) */
	struct mf_psi psi;           /* memory.pressure */
	/* heap, all processes */
	int accounting;
	char segment[MF_PATH_MAX];
	uint64_t heap_live, heap_peak, allocated, freed;
	/* Live bytes of the processes this read found dead (held for a
	 * post-mortem, or retired now): their slots' last figures. */
	uint64_t heap_live_dead;
	uint64_t failed[MF_FAIL_NCAUSES];
	uint64_t threads_failed, scopes_ended, slot_claims_failed;
	/* What the rlimit counts (VmData under RLIMIT_DATA, the whole size
	 * under RLIMIT_AS) of the process that holds the most; 0 when no rlimit
	 * carries the budget. */
	uint64_t rlimit_used;
	int32_t rlimit_pid;
	uint32_t nscopes, scopes_dropped, scopes_in_flight;
	struct sup_scope scopes[SUP_MAX_SCOPES];
	uint32_t nprocs;
	struct sup_proc procs[SUP_MAX_PROCS];
	uint32_t nhist;
	uint64_t hist_dropped;       /* records of names past SUP_MAX_NAMES */
	struct sup_hist hist[SUP_MAX_NAMES];
	struct sup_point timeline[SUP_TIMELINE];
	uint32_t tl_len, tl_pos;
	/* child */
	pid_t child_pid;
	int child_up;
	int child_stopped;           /* the signal that stopped the program, 0 if running */
	uint64_t child_started_s;
	uint64_t restarts;
	uint64_t exits[SUP_CAUSE_NCAUSES];
	uint64_t reports_written;
	/* quarantine */
	int quarantine_on;
	uint64_t quarantine_recorded, quarantine_errors, quarantine_dropped;
	struct sup_health_view health; /* the health rules' verdict (health.c) */
	int serving;                 /* this start of the program serves (serving.c) */
	char serving_said[96];       /* what the program last said of it */
	int serving_gate_open;       /* serving, or nothing says what serving is */
	/* supervisor */
	pid_t sup_pid;
	int pid1, subreaper;
	int oom_adj_held;            /* -1000 took effect */
	int memory_locked;           /* mlockall() took effect */
	char oom_adj_note[160];
	uint64_t sup_rss;
	uint64_t started_s;
	uint64_t now_s;
	struct sup_model_status model;
	struct sup_gate_stats gate;
	struct sup_recycle_view recycle; /* recycling (recycle.c) */
};

#endif
