/*
 * envspec.h - the MEMFENCE_* environment: every variable memfence reads or
 * sets, in one table.
 *
 * The supervisor, the commands, the shim and the Python package talk to
 * each other through these variables, and users set some of them in their
 * containers: this table is the one place their names are written. Code
 * names a variable by its id, MF_ENV(SEGMENT), which is the string
 * "MEMFENCE_SEGMENT" and does not compile when SEGMENT is not a row. The
 * Python extension exposes the table (memfence._memfence.ENV), and
 * tests/integration/env_contract.sh checks that no other file of src/ or
 * python/ spells a name out and that the documentation names each row and
 * no variable that is not one.
 *
 * Adding a variable: a row here, its reader (MF_ENV(ID) in C, ENV["ID"] in
 * Python), and its entry in docs/memfence.1 (with its option, or under
 * ENVIRONMENT).
 *
 * Columns: the id (the name without MEMFENCE_), the kind of value, the
 * default when the variable is unset or empty, who sets it, who reads it.
 * The default of a variable that stands for an option is the option's
 * (MF_ENV_OPT): its table (src/host/options.h) holds it once, and --help
 * and the man page show it.
 *
 * Shim-safe: macros and constants only.
 */
#ifndef MF_ENVSPEC_H
#define MF_ENVSPEC_H

#include <stddef.h>

/* The kind of value. */
enum mf_env_type {
	MF_ENVT_SIZE,     /* 512M, 2GiB; with PCT, a share of a limit */
	MF_ENVT_BOOL,     /* base/env.h's words: 1/0, true/false, yes/no, on/off */
	MF_ENVT_INT,      /* a decimal count */
	MF_ENVT_DURATION, /* 500ms, 10s, 2m (host/options.h) */
	MF_ENVT_PATH,     /* a file or directory */
	MF_ENVT_WORD,     /* one of a few words (the option's --help lists them) */
	MF_ENVT_TEXT,     /* anything else: an address, a store, a spec */
};

/* Who sets it: a bit each. */
#define MF_W_USER 1u /* the user, in the program's environment */
#define MF_W_RUN  2u /* memfence run, for the program */
#define MF_W_EXEC 4u /* memfence exec and profile, for the program */

/* Who reads it: a bit each. */
#define MF_R_CMD   1u /* the memfence command (run's supervisor included) */
#define MF_R_SHIM  2u /* libmemfence.so, in the program */
#define MF_R_STACK 4u /* libmemfence-stack.so, in the program */
#define MF_R_PY    8u /* the Python package, in the program */

/* The default of a variable that stands for an option: the option's. */
#define MF_ENV_OPT "(the option's)"

/* clang-format off */
#define MF_ENV_TABLE(X) \
	/* id                    kind               default     set by, read by */ \
	/* limits and accounting (exec, inspect, run; host/plan.c, cli/launch.c) */ \
	X(LIMIT,                 MF_ENVT_SIZE,      MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(RESERVE,               MF_ENVT_SIZE,      MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(RLIMIT,                MF_ENVT_WORD,      MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(STACK,                 MF_ENVT_SIZE,      MF_ENV_OPT, MF_W_USER|MF_W_RUN|MF_W_EXEC, MF_R_CMD|MF_R_SHIM|MF_R_STACK) \
	X(ROOT,                  MF_ENVT_PATH,      "/",        MF_W_USER, MF_R_CMD) \
	X(ACCOUNT,               MF_ENVT_BOOL,      MF_ENV_OPT, MF_W_USER|MF_W_RUN|MF_W_EXEC, MF_R_CMD|MF_R_SHIM|MF_R_PY) \
	X(HEAP_LIMIT,            MF_ENVT_SIZE,      MF_ENV_OPT, MF_W_USER|MF_W_RUN|MF_W_EXEC, MF_R_CMD|MF_R_SHIM) \
	X(SEGMENT,               MF_ENVT_PATH,      MF_ENV_OPT, MF_W_USER|MF_W_RUN|MF_W_EXEC, MF_R_CMD|MF_R_SHIM|MF_R_PY) \
	X(LIBDIR,                MF_ENVT_PATH,      NULL,       MF_W_USER, MF_R_CMD) \
	/* the lines memfence writes (host/msg.c, shim/util.c, shim/stack.c, memfence/_log.py) */ \
	X(LOG_FORMAT,            MF_ENVT_WORD,      MF_ENV_OPT, MF_W_USER|MF_W_RUN|MF_W_EXEC, MF_R_CMD|MF_R_SHIM|MF_R_STACK|MF_R_PY) \
	/* set for the program by exec and run */ \
	X(LIMIT_BYTES,           MF_ENVT_INT,       NULL,       MF_W_RUN|MF_W_EXEC, 0) \
	X(BUDGET,                MF_ENVT_INT,       NULL,       MF_W_RUN|MF_W_EXEC, MF_R_SHIM) \
	X(SEGMENT_MAKE,          MF_ENVT_BOOL,      "1",        MF_W_RUN, MF_R_SHIM) \
	X(SEGMENT_FD,            MF_ENVT_INT,       NULL,       MF_W_RUN, MF_R_SHIM) \
	/* the shim's own */ \
	X(PRESSURE,              MF_ENVT_SIZE,      "a quarter of the limit below it", MF_W_USER, MF_R_SHIM) \
	X(FAULT,                 MF_ENVT_TEXT,      NULL,       MF_W_USER, MF_R_SHIM) \
	/* the profiler (cli/profile.c, run --profile) */ \
	X(PROFILE,               MF_ENVT_BOOL,      MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(PROFILE_RATE,          MF_ENVT_SIZE,      "512K",     MF_W_USER|MF_W_EXEC, MF_R_CMD|MF_R_SHIM) \
	X(PROFILE_DIR,           MF_ENVT_PATH,      NULL,       MF_W_RUN|MF_W_EXEC, MF_R_SHIM) \
	X(PROFILE_SIGNAL,        MF_ENVT_BOOL,      "0",        MF_W_USER|MF_W_RUN|MF_W_EXEC, MF_R_SHIM) \
	X(PROFILE_PUSH,          MF_ENVT_TEXT,      MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(PROFILE_PUSH_INTERVAL, MF_ENVT_DURATION,  MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(PROFILE_PUSH_NAME,     MF_ENVT_TEXT,      MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(PROFILE_CTL,           MF_ENVT_BOOL,      "0",        MF_W_USER, MF_R_SHIM) \
	/* run (supervisor/config.c) */ \
	X(HTTP,                  MF_ENVT_TEXT,      MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(RESTART,               MF_ENVT_WORD,      MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(RESTART_DELAY,         MF_ENVT_DURATION,  MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(RESTART_MAX_DELAY,     MF_ENVT_DURATION,  MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(REPORT_DIR,            MF_ENVT_PATH,      MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(STATE_DIR,             MF_ENVT_PATH,      MF_ENV_OPT, MF_W_USER|MF_W_RUN, MF_R_CMD|MF_R_PY) \
	X(REQUEST_NEED,          MF_ENVT_SIZE,      MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(READY_GRACE,           MF_ENVT_DURATION,  MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(READY_HYSTERESIS,      MF_ENVT_SIZE,      MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(READY_PRESSURE,        MF_ENVT_SIZE,      MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(READY_TCP,             MF_ENVT_TEXT,      MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(LIVE_AFTER,            MF_ENVT_DURATION,  MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(LIVE_REFUSED,          MF_ENVT_DURATION,  MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(STUCK_AFTER,           MF_ENVT_DURATION,  MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(FAIL_RATIO,            MF_ENVT_SIZE,      MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(FAIL_WINDOW,           MF_ENVT_DURATION,  MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(FAIL_MIN,              MF_ENVT_INT,       MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(CONTAINER_CHECK,       MF_ENVT_SIZE,      MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(RECYCLE,               MF_ENVT_WORD,      MF_ENV_OPT, MF_W_USER, MF_R_CMD|MF_R_PY) \
	X(RECYCLE_BEFORE,        MF_ENVT_DURATION,  MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(RECYCLE_JITTER,        MF_ENVT_DURATION,  MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(RECYCLE_MIN_INTERVAL,  MF_ENVT_DURATION,  MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(RECYCLE_GRACE,         MF_ENVT_DURATION,  MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(DRAIN_DELAY,           MF_ENVT_DURATION,  MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(DRAIN_TIMEOUT,         MF_ENVT_DURATION,  MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(MAX_MEMORY_PER_CHILD,  MF_ENVT_SIZE,      MF_ENV_OPT, MF_W_USER, MF_R_CMD|MF_R_PY) \
	X(SAMPLE_INTERVAL,       MF_ENVT_DURATION,  MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(MODEL_WINDOW,          MF_ENVT_DURATION,  MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(GATE,                  MF_ENVT_BOOL,      MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(GATE_WAIT,             MF_ENVT_DURATION,  MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(GATE_NEED,             MF_ENVT_SIZE,      MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(GATE_QUANTILE,         MF_ENVT_SIZE,      MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(GATE_STARVE,           MF_ENVT_DURATION,  MF_ENV_OPT, MF_W_USER, MF_R_CMD) \
	X(AUTO_PYTHON,           MF_ENVT_BOOL,      MF_ENV_OPT, MF_W_USER, MF_R_CMD|MF_R_PY) \
	/* set by run for the program's processes (supervisor/child.c) */ \
	X(RECYCLE_DIR,           MF_ENVT_PATH,      NULL,       MF_W_RUN, MF_R_PY) \
	X(SERVING_FILE,          MF_ENVT_PATH,      NULL,       MF_W_RUN, MF_R_PY) \
	X(DRAIN_FILE,            MF_ENVT_PATH,      NULL,       MF_W_RUN, MF_R_PY) \
	/* the quarantine (run, memfence quarantine, the Python package) */ \
	X(QUARANTINE,            MF_ENVT_TEXT,      MF_ENV_OPT, MF_W_USER|MF_W_RUN, MF_R_CMD|MF_R_PY) \
	X(QUARANTINE_THRESHOLD,  MF_ENVT_INT,       MF_ENV_OPT, MF_W_USER, MF_R_CMD|MF_R_PY) \
	X(REDIS_TIMEOUT,         MF_ENVT_INT,       MF_ENV_OPT, MF_W_USER, MF_R_CMD|MF_R_PY) \
	X(QUARANTINE_TTL,        MF_ENVT_DURATION,  MF_ENV_OPT, MF_W_USER, MF_R_CMD|MF_R_PY) \
	X(QUARANTINE_RECORDER,   MF_ENVT_WORD,      NULL,       MF_W_RUN, MF_R_PY) \
	X(REQUEST_QUARANTINE,    MF_ENVT_BOOL,      "0",        MF_W_USER, MF_R_PY) \
	X(BIN,                   MF_ENVT_PATH,      NULL,       MF_W_USER, MF_R_PY)
/* clang-format on */

/* The ids: MF_ENVID_SEGMENT, ... */
enum mf_env_id {
#define MF_ENV_ID_(id, type, def, set_by, read_by) MF_ENVID_##id,
	MF_ENV_TABLE(MF_ENV_ID_)
#undef MF_ENV_ID_
	MF_ENV_COUNT
};

/*
 * The name of variable id, a string constant ("MEMFENCE_SEGMENT" for
 * SEGMENT), usable in a static initializer; an id that is not a row does
 * not compile.
 */
#define MF_ENV(id) __builtin_choose_expr(MF_ENVID_##id < MF_ENV_COUNT, "MEMFENCE_" #id, (void)0)

/* The same name as a string literal, for a message put together at
 * compile time ("invalid " MF_ENV_LIT(BUDGET) ": "); not checked by the
 * compiler, but tests/integration/env_contract.sh checks the id. */
#define MF_ENV_LIT(id) "MEMFENCE_" #id

/* A row, for code that goes through them all (the Python extension, the
 * documentation's check). */
struct mf_env_spec {
	const char *id;      /* "SEGMENT" */
	const char *name;    /* "MEMFENCE_SEGMENT" */
	enum mf_env_type type;
	const char *def;     /* as the documentation says it; MF_ENV_OPT: the
			      * option's (--help); NULL: none */
	unsigned set_by;     /* MF_W_* */
	unsigned read_by;    /* MF_R_* */
};

/* The rows, in the table's order, indexed by enum mf_env_id. */
extern const struct mf_env_spec mf_env_specs[MF_ENV_COUNT];

#endif
