/*
 * config.h - the options of `memfence run` that the supervisor owns: their
 * table (the command parses argv with it; --help, the man page check and the
 * MEMFENCE_* variables come from it), and their resolution -- defaults,
 * environment, validation -- into a struct sup_config for sup_run().
 */
#ifndef MF_SUP_CONFIG_H
#define MF_SUP_CONFIG_H

#include "host/launch.h"
#include "host/memory.h"
#include "host/options.h"
#include "host/plan.h"
#include "supervisor/sup.h"

/* Past every key of the options `run` shares with `exec` (plan, launch). */
#define SUP_OPT_FIRST (MF_OPT_KEY_BASE + 0x100)

enum {
	SUP_OPT_HTTP = SUP_OPT_FIRST,
	SUP_OPT_RESTART,
	SUP_OPT_RESTART_DELAY,
	SUP_OPT_RESTART_MAX,
	SUP_OPT_REPORT_DIR,
	SUP_OPT_STATE_DIR,
	SUP_OPT_NEED,
	SUP_OPT_GRACE,
	SUP_OPT_HYST,
	SUP_OPT_LIVE_AFTER,
	SUP_OPT_LIVE_REFUSED,
	SUP_OPT_STUCK_AFTER,
	SUP_OPT_READY_TCP,
	SUP_OPT_FAIL_RATIO,
	SUP_OPT_FAIL_WINDOW,
	SUP_OPT_FAIL_MIN,
	SUP_OPT_CONTAINER,
	SUP_OPT_INTERVAL,
	SUP_OPT_MODEL_WINDOW,
	SUP_OPT_PRESSURE,
	SUP_OPT_NO_AUTO_PY,
	SUP_OPT_QUARANTINE,
	SUP_OPT_NO_QUARANTINE,
	SUP_OPT_QUARANTINE_TTL,
	SUP_OPT_PROFILE,
	SUP_OPT_PROFILE_PUSH,
	SUP_OPT_PROFILE_PUSH_INTERVAL,
	SUP_OPT_PROFILE_PUSH_NAME,
	SUP_OPT_RECYCLE,
	SUP_OPT_RECYCLE_BEFORE,
	SUP_OPT_RECYCLE_JITTER,
	SUP_OPT_RECYCLE_INTERVAL,
	SUP_OPT_DRAIN_DELAY,
	SUP_OPT_DRAIN_TIMEOUT,
	SUP_OPT_RECYCLE_GRACE,
	SUP_OPT_MAX_MEM_CHILD,
	SUP_OPT_GATE,
	SUP_OPT_GATE_WAIT,
	SUP_OPT_GATE_NEED,
	SUP_OPT_GATE_QUANTILE,
	SUP_OPT_GATE_STARVE,
	SUP_OPT_LAST
};

/* The supervisor's options, and its flags (--no-quarantine, --profile,
 * --no-auto-python: no argument, a variable that means the flag). */
extern const struct mf_option sup_options[];
extern const struct mf_option sup_flags[];

/* What the command line gave, before the environment and the defaults. */
struct sup_given {
	const char *val[SUP_OPT_LAST - SUP_OPT_FIRST]; /* NULL = not given */
	int no_quarantine, profile, no_auto_python;
};

/* Note one getopt_long answer: 1 when key is one of the supervisor's. */
int sup_config_given(struct sup_given *g, int key, const char *arg);

/*
 * Resolve g, the environment and the defaults into cfg, for the program
 * argv started with launch under plan (mem: what the plan came from).
 * launch->segment is made absolute. 0, or -1 after a one-line message
 * naming the option (memfence exits 2). The strings cfg points to stay
 * valid until the next call.
 */
int sup_config_resolve(struct sup_config *cfg, const struct sup_given *g,
		       struct mf_launch *launch, const struct mf_plan *plan,
		       const struct mf_memory *mem, char **argv);

#endif
