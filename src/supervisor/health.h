/*
 * health.h - readiness and liveness from memory (health.c): the rules'
 * settings and state, fed with finished scopes and applied to each sample
 * of the supervisor's state. The learned need comes from the model
 * (supervisor/model.h).
 */
#ifndef MF_SUP_HEALTH_H
#define MF_SUP_HEALTH_H

#include <stdint.h>

#define SUP_WINDOW_MAX 600   /* failure window, seconds, at most */

struct sup_record;
struct sup_state;

/* The health rules' verdict, in the state (st->health): written by
 * sup_health_eval at each sample; the recycle and serving rules may still
 * fail readiness after it (ready, ready_reason). */
struct sup_health_view {
	int ready, live;
	char ready_reason[256], live_reason[160];
	uint64_t need;               /* a typical request's, configured or learned */
	int need_learned;
	uint32_t window_ended, window_failed;
	uint64_t refusals_new;       /* allocations refused since the previous eval */
	/* Stuck: not ready for memory for --stuck-after with nothing in flight
	 * (or for --live-after whatever is in flight); the process to replace. */
	int stuck;
	int32_t stuck_pid;
	char stuck_reason[200];
};

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

struct sup_health {
	struct sup_health_cfg cfg;
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

#endif
