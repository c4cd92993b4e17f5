/*
 * sup.h - the parts of the supervisor (`memfence run`).
 *
 * The supervisor keeps all it knows in one fixed-size struct sup_state: the
 * main loop fills it from the cgroup and the stats segment several times a
 * second, and publishes a copy under a mutex for the HTTP thread. Nothing
 * grows with traffic or run time: scopes, processes, names and the timeline
 * have fixed capacities, and what does not fit is counted as dropped.
 */
#ifndef MF_SUP_H
#define MF_SUP_H

#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/types.h>

#include "host/launch.h"
#include "host/memory.h"
#include "host/plan.h"
#include "host/psi.h"
#include "base/segment.h"
#include "host/segread.h"

#define SUP_MAX_SCOPES 128   /* in-flight scopes kept per snapshot */
#define SUP_MAX_PROCS 64     /* processes shown (segment slots) */
#define SUP_MAX_NAMES 32     /* scope names with their own histograms */
#define SUP_HIST_BUCKETS 12  /* 4 KiB .. 16 GiB by powers of 4 */
#define SUP_TIMELINE 60      /* one point a second: the last minute */
#define SUP_RESTART_FLOOR_MS 100 /* the least backoff of a crash loop's later restarts */
#define SUP_LEARN 256        /* recent scopes' A kept to learn a request's need */
#define SUP_WINDOW_MAX 600   /* failure window, seconds, at most */

/* ---- health rules (health.c) ---- */

struct sup_health_cfg {
	uint64_t need;               /* bytes a typical request needs; 0 = learn */
	uint64_t need_default;       /* used until enough scopes were seen */
	uint64_t grace_ms;           /* low headroom this long -> not ready */
	unsigned hysteresis_pct;     /* ready again above need * (100+h)/100 */
	uint64_t live_after_ms;      /* not ready this long -> not live */
	unsigned fail_pct;           /* failed scopes share that makes not live */
	unsigned fail_window_s;
	unsigned fail_min;
	uint64_t live_refused_ms;    /* refusals at the budget this long ->
					not live (programs without scopes) */
	unsigned pressure_pct;       /* memory.pressure full avg10 at or above this
					for grace_ms -> not ready; 0 = off */
	uint64_t stuck_after_ms;     /* not ready for memory this long with nothing
					in flight -> stuck */
};

/* ---- the admission gate (gate.c) ---- */

struct sup_gate_cfg {
	int on;
	uint64_t default_need;       /* until a name is learned; 0 = a quarter of the line */
	uint64_t max_wait_ms;        /* when the caller gives no deadline */
	uint64_t starve_ms;          /* after this long nobody passes a waiter */
	double quantile;             /* of a name's peaks: its need */
	uint32_t min_count;          /* scopes of a name before its need is learned */
};

/* ---- recycling (recycle.c) ---- */

struct sup_recycle_cfg {
	int on;                      /* the supervisor recycles (auto resolved) */
	uint64_t before_s;           /* forecast of the budget within this -> recycle */
	uint64_t jitter_s;           /* up to this much earlier, drawn at each start */
	uint64_t min_interval_ms;    /* at most one recycle per this long */
	uint64_t drain_delay_ms;     /* not ready this long before anything stops */
	uint64_t drain_timeout_ms;   /* then scopes in flight get this long */
	uint64_t grace_ms;           /* SIGTERM, then SIGKILL this long after */
};

/* ---- ready means serving (serving.c) ---- */

/* --ready-tcp: the program serves once this address accepts a connection. */
struct sup_ready_tcp {
	int on;
	struct sockaddr_in addr;
};

/* Parse "[ADDR:]PORT" (IPv4, 127.0.0.1 when no address): 0 or -1. */
int sup_ready_tcp_parse(const char *v, struct sup_ready_tcp *t);

/* ---- the entry: `memfence run` once its options are resolved ---- */

enum sup_restart { SUP_RESTART_NEVER, SUP_RESTART_ON_OOM, SUP_RESTART_ALWAYS };

struct sup_config {
	struct mf_launch launch;     /* account resolved to 0 or 1 */
	struct mf_plan plan;         /* as the program will get it (the child
					resolves it again when it applies it) */
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

/* ---- the stats segment (seg.c) ---- */

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
	uint64_t alloc_sum, ret_sum;
	uint64_t alloc_b[SUP_HIST_BUCKETS];
	uint64_t ret_b[SUP_HIST_BUCKETS];
};

/* Per-slot memory of what was already added to the totals. */
struct sup_slotmem {
	uint32_t generation;
	/* The cgroup's oom_kill counter a while (1 to 3 s) before the process
	 * was last seen alive: a process being OOM-killed may still be seen
	 * alive after the counter rose, for as long as its memory is freed. */
	uint64_t oom_alive, oom_next, oom_stamp_ms;
	int retired;                 /* counted in the sup_seg ret_* totals */
	int released;                /* marked read: the shim may reuse it */
	uint64_t allocated, freed, failed[MF_FAIL_NCAUSES], thread_failed, scopes_ended;
};

struct sup_seg {
	struct mf_segread r;
	int open;
	uint64_t ring_seen;
	uint64_t ring_lost;
	/* The main program's pid: its slot is kept (with its scopes) until
	 * the supervisor has reaped it and written its post-mortem. */
	pid_t hold_pid;
	struct sup_slotmem slotmem[MF_SEG_DEFAULT_SLOTS];
	/* Called once for a slot found DEAD (killed, not a normal exit) with
	 * scopes in flight, as it is retired: oom_alive is the cgroup's
	 * oom_kill counter when the process was last seen alive. */
	void (*on_dead)(void *ctx, const struct mf_seg_slot *slot, uint64_t oom_alive,
			const struct mf_seg_scope *sc, uint32_t n);
	void *dead_ctx;
	uint64_t oom_prev;           /* oom_kill at the previous sample */
	/* Counters of processes whose slots were retired. */
	uint64_t ret_allocated, ret_freed, ret_failed[MF_FAIL_NCAUSES];
	uint64_t ret_thread_failed, ret_scopes_ended;
	uint64_t gate_covered;       /* published with the container's figures */
};

int sup_seg_create(struct sup_seg *s, const char *path, int32_t owner);
void sup_seg_close(struct sup_seg *s, int unlink_it);
/* Publish the container's figures for the shim (seqlock writer). */
void sup_seg_publish(struct sup_seg *s, uint64_t limit, uint64_t working_set,
		     uint64_t reserve, uint64_t min_size);

/* A finished scope as the health rules and metrics see it. */
struct sup_record {
	uint64_t end_ns;             /* CLOCK_REALTIME */
	uint64_t allocated;
	uint64_t peak;
	int64_t net;
	int failed;
	/* The first refusal: its rule (enum mf_refusal_rule), what the scope
	 * asked for then (net + the allocation), its need at the gate. */
	uint32_t refused_rule;
	uint64_t refused_asked, refused_need;
	uint64_t index;              /* its position in the segment's ring */
	char name[MF_SEG_NAME_LEN];
	char id[MF_SEG_NAME_LEN];
};
typedef void (*sup_record_fn)(void *ctx, const struct sup_record *r);

struct sup_state;
/* Read slots and in-flight scopes into st, and hand new ring records to fn.
 * retire_dead: slots of processes that are gone (zombies included) are
 * added to the totals and released; their scopes are in st for this one
 * read, which is when a post-mortem must take them. The slot of hold_pid is
 * kept until the supervisor has reaped that process. */
void sup_seg_read(struct sup_seg *s, struct sup_state *st, int retire_dead,
		  sup_record_fn fn, void *ctx);

/* ---- quarantine deaths (quar.c) ---- */

/* One scope that died with its process, to count in the quarantine. */
struct sup_qdeath {
	char id[MF_SEG_NAME_LEN];
	char name[MF_SEG_NAME_LEN];
	int cause;                   /* enum sup_cause */
	int32_t pid;
	uint64_t peak, allocated, net;
};

/* Open the store (spec as --quarantine takes it; "" = STATE_DIR's file)
 * and start the writer thread. -EINVAL for a malformed spec (err says
 * why); other store errors are warned about and retried at each death. */
int sup_quar_start(const char *spec, const char *state_dir, char *err, size_t errlen);
/* Queue a death; never blocks on the store. */
void sup_quar_push(const struct sup_qdeath *d);
/* Write what is queued, then stop the thread. */
void sup_quar_stop(void);
void sup_quar_counts(uint64_t *recorded, uint64_t *errors, uint64_t *dropped);

/* ---- health rules (health.c) ---- */

struct sup_health {
	struct sup_health_cfg cfg;
	uint64_t learn[SUP_LEARN];
	unsigned nlearn, learn_pos;
	uint64_t low_since_ms;       /* 0 = headroom fine */
	uint64_t unready_since_ms;   /* 0 = ready */
	int ready;
	uint64_t stall_since_ms;     /* 0 = full avg10 below pressure_pct */
	/* scopes ended / failed per second, ring indexed by unix second */
	uint32_t win_ended[SUP_WINDOW_MAX];
	uint32_t win_failed[SUP_WINDOW_MAX];
	uint64_t win_sec[SUP_WINDOW_MAX];
	/* At the budget: a process has less than a request's need left under
	 * its rlimit (no grace), and the refusals seen while it lasts. */
	int at_budget;
	uint64_t refused_prev;       /* failures total at the previous eval */
	int refused_primed;
	uint64_t refused_since_ms;   /* first refusal while at the budget; 0 = none */
	uint64_t last_refused_ms;
	/* Not ready for memory (at the budget, or headroom), and since when
	 * nothing was in flight meanwhile: the stuck rule. */
	uint64_t mem_unready_since_ms, idle_since_ms;
	int32_t unready_pid;         /* the process at its budget they are of */
};

void sup_health_init(struct sup_health *h, const struct sup_health_cfg *cfg);
void sup_health_record(struct sup_health *h, const struct sup_record *r);
/* Apply the rules at now_ms (monotonic) and write the verdict into st. */
void sup_health_eval(struct sup_health *h, struct sup_state *st, uint64_t now_ms,
		     uint64_t now_real_s);
uint64_t sup_health_need(const struct sup_health *h, int *learned);

/* ---- everything the endpoints and reports show ---- */

struct sup_point {
	uint64_t t_s;                /* unix seconds */
	uint64_t usage, working_set, heap_live;
};

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

/* Why a process was recycled. */
enum sup_recycle_reason {
	SUP_RECYCLE_LEAK = 0,        /* the forecast reached --recycle-before */
	SUP_RECYCLE_UNCLEAN,         /* the program said a failure left it unclean */
	SUP_RECYCLE_STUCK,           /* not ready for memory, idle, and not getting better */
	SUP_RECYCLE_NREASONS
};

enum sup_cause {
	SUP_CAUSE_NONE = 0,
	SUP_CAUSE_EXIT,              /* exited with a status */
	SUP_CAUSE_OOM_KILL,          /* SIGKILL and the oom_kill counter rose */
	SUP_CAUSE_SIGKILL,           /* other SIGKILL */
	SUP_CAUSE_SIGNAL,            /* another signal */
	SUP_CAUSE_LOST,              /* found after an unclean end of a supervisor */
	SUP_CAUSE_NCAUSES
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
	/* health */
	int ready, live;
	char ready_reason[160], live_reason[160];
	int serving;                 /* this start of the program serves (serving.c) */
	char serving_said[96];       /* what the program last said of it */
	int serving_gate_open;       /* serving, or nothing says what serving is */
	uint64_t need;
	int need_learned;
	uint32_t window_ended, window_failed;
	uint64_t refusals_new;       /* allocations refused since the previous eval */
	/* Stuck: not ready for memory for --stuck-after with nothing in flight
	 * (or for --live-after whatever is in flight); the process to replace. */
	int stuck;
	int32_t stuck_pid;
	char stuck_reason[200];
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
	/* recycling */
	int recycle_on;
	int recycling;               /* a recycle is under way */
	int recycling_whole;         /* ...of the whole program (readiness fails) */
	int32_t recycle_pid;
	char recycle_reason[200];    /* of the one under way, else the last */
	uint64_t recycles[SUP_RECYCLE_NREASONS];
	uint64_t recycle_threshold_s; /* --recycle-before with this run's jitter */
};

/* Name a scope belongs to in the histograms (created if room). */
struct sup_hist *sup_hist_get(struct sup_state *st, const char *name);
void sup_hist_add(struct sup_state *st, const struct sup_record *r);
extern const uint64_t sup_hist_bounds[SUP_HIST_BUCKETS];

/* ---- the model of the program's memory (supervisor/model.c) ---- */

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
 * program wrote it; 0 while fewer than min_count of its peaks are known. */
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

/* ---- the admission gate (gate.c) ---- */

/* In a new segment: the gate's settings (it stays off unless cfg->on). */
void sup_gate_start(struct sup_seg *s, const struct sup_gate_cfg *cfg);
/* Before the cgroup is read: free what dead processes left at the gate and
 * measure what the admitted requests hold (s->gate_covered). */
void sup_gate_before_sample(struct sup_seg *s, struct sup_state *st);
/* After the segment and its records are read: publish the needs the
 * model has learned, read the counters into st->gate. */
void sup_gate_after_sample(struct sup_seg *s, struct sup_state *st);

/* ---- rendering (metrics.c) ---- */

/* Prometheus text exposition into buf; returns bytes written (truncates). */
size_t sup_metrics_render(const struct sup_state *st, char *buf, size_t len);
/* memory.pressure as JSON: {"some": {avg10, avg60, avg300, total_us}, "full": ...}. */
json_t *sup_psi_json(const struct mf_psi *p);
/* The /status document. */
json_t *sup_status_json(const struct sup_state *st);

/* ---- HTTP (http.c) ---- */

struct sup_http;
/* Check an --http address as sup_http_listen() will read it: 0, or -1 with
 * a message in err. */
int sup_http_check(const char *addr, char *err, size_t errlen);
/* Listen on addr ("HOST:PORT", "[V6]:PORT", ":PORT"), before the program
 * starts. Returns NULL with a message in err. */
struct sup_http *sup_http_listen(const char *addr, char *err, size_t errlen);
/* Load libmicrohttpd and serve on the socket, once the program is started:
 * 0, or -1 with a message in err. */
int sup_http_serve(struct sup_http *h, char *err, size_t errlen);
/* Stop serving (or close the socket that was never served). */
void sup_http_stop(struct sup_http *h);
/* Replace the published state (copied under the lock). */
void sup_publish(const struct sup_state *st);

/* ---- post-mortems (report.c) ---- */

/* The figures of a death as they were before it: the cgroup's last sample
 * before the death (after it, the victim's memory is already freed) and
 * the live heap counting the dead processes' last figures. */
struct sup_at_death {
	int set;                     /* 0: the report takes the state's */
	uint64_t usage, working_set, headroom, heap_live;
};

struct sup_death {
	enum sup_cause cause;
	int status;                  /* exit code, or signal number */
	int core;
	uint64_t oom_before, oom_after;
	uint64_t runtime_ms;
	struct sup_at_death at;
	char detail[256];
};

/* The figures of st as a death's. */
struct sup_at_death sup_at_state(const struct sup_state *st);
/* The report document for a death (also the journal's body, with cause
 * SUP_CAUSE_NONE while the child runs). argv: the command. */
json_t *sup_report_json(const struct sup_state *st, const struct sup_death *d,
			char *const *argv);
/* Write report to dir; path of the file into out. 0 or -errno. */
int sup_report_write(json_t *report, const char *dir, char *out, size_t outlen);
/* mkdir -p; 0 or -errno. */
int sup_mkdirs(const char *dir);
/* The short human summary for stderr (also used by `memfence report`). */
void sup_report_print(FILE *f, json_t *report, int full);
/* Write j to path through a temporary file and rename(2). 0 or -errno. */
int sup_write_atomic(json_t *j, const char *path);
/* This boot's id (/proc/sys/kernel/random/boot_id), "" if unreadable. */
void sup_boot_id(char *buf, size_t len);
/* The string at key k of object o, "" when absent. */
const char *sup_json_str(json_t *o, const char *k);

/* ---- the journal (journal.c) ---- */

/* The journal's file name in the state directory. */
#define SUP_JOURNAL "journal.json"

/* The lock file of a state directory: one supervisor at a time. */
#define SUP_STATE_LOCK "lock"

/* The stats segment's name under --state-dir: there it survives a kill
 * of the whole container, and the next start reads what was in flight. */
#define SUP_STATE_SEGMENT "segment.seg"

/* Rewrite the journal atomically. 0 or -errno. */
int sup_journal_write(const char *state_dir, json_t *body);
/* Mark the run as ended cleanly (journal removed). */
void sup_journal_close(const char *state_dir);
/* A journal left by a run that did not end cleanly: turn it into a report.
 * Returns 1 when a report was written (its path in out), 0 when nothing to
 * do, -1 on error (warned). */
int sup_journal_recover(const char *state_dir, const char *report_dir, char *out,
			size_t outlen);

/* ---- shared by every part (common.c) ---- */

/* "leak", "unclean", "stuck" */
const char *sup_recycle_reason_name(int r);
/* "running", "exit", "oom-kill", "sigkill", "signal", "lost" */
const char *sup_cause_name(enum sup_cause c);
/* An allocation failure's cause (MF_FAIL_*): "allocator", "budget", ... */
const char *sup_fail_name(int c);
/* Copy s into out (len bytes) keeping printable ASCII only: scope names
 * come from programs and must stay valid in JSON and Prometheus labels. */
void sup_clean(char *out, size_t len, const char *s);
/* One in-flight scope as JSON (age against now_ns, CLOCK_REALTIME). */
json_t *sup_scope_json(const struct sup_scope *s, uint64_t now_ns);
uint64_t sup_now_ms(void);       /* CLOCK_MONOTONIC */
uint64_t sup_real_ns(void);      /* CLOCK_REALTIME */

#endif
