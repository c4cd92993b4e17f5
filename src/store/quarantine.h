/*
 * quarantine.h - the poison-task quarantine store.
 *
 * A task or request that was in flight when its worker died (OOM kill,
 * SIGKILL, a crash, an allocation failure) is recorded under a stable id.
 * After `threshold` deaths (default 2: the task runs at most twice) the id
 * is quarantined, and the integrations reject it instead of running it
 * again: a queue that redelivers an unacknowledged message forever cannot
 * then kill worker after worker.
 *
 * Two stores behind one handle:
 *   sqlite:PATH or PATH      one SQLite file on local disk (the default,
 *                            <state-dir>/quarantine.db)
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]
 *                            shared by a fleet; every operation also keeps a
 *                            local SQLite copy, so a death recorded while
 *                            Redis is unreachable is kept on disk, marked
 *                            unsynced, and pushed on the next call that
 *                            reaches Redis (exactly once: each death carries
 *                            a token Redis remembers for a week).
 *
 * Actions return 0 or -errno and leave a one-line message in
 * mf_qstore_error(). Not thread-safe: one handle per thread.
 */
#ifndef MF_QUARANTINE_H
#define MF_QUARANTINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/envspec.h"

#include <jansson.h>

#define MF_QUARANTINE_ID_MAX 255   /* bytes, without the NUL */
#define MF_QUARANTINE_NAME_MAX 255
#define MF_QUARANTINE_HOST_MAX 255
#define MF_QUARANTINE_THRESHOLD_DEFAULT 2
#define MF_QUARANTINE_THRESHOLD_MAX 1000000
#define MF_QUARANTINE_TIMEOUT_DEFAULT 1000 /* ms, Redis connect and command */
#define MF_QUARANTINE_UNKNOWN UINT64_MAX   /* a memory figure nobody measured */
#define MF_QUARANTINE_FILE "quarantine.db"
/* A record expires this long after its last death (MEMFENCE_QUARANTINE_TTL,
 * --quarantine-ttl): a task that killed workers a week ago may run again,
 * and the store stays bounded by the deaths of one period. */
#define MF_QUARANTINE_TTL_DEFAULT "7d"
#define MF_QUARANTINE_TTL_ENV MF_ENV(QUARANTINE_TTL)
#define MF_QUARANTINE_REDIS_PREFIX "memfence:q:"

enum mf_quarantine_cause {
	MF_QCAUSE_UNKNOWN = 0,
	MF_QCAUSE_OOM_KILL,      /* SIGKILL and the cgroup's oom_kill counter rose */
	MF_QCAUSE_SIGKILL,       /* SIGKILL from someone else, or unattributed */
	MF_QCAUSE_SIGNAL,        /* another fatal signal: abort on NULL, SIGSEGV */
	MF_QCAUSE_ALLOC_FAILURE, /* MemoryError / NULL from malloc, caught */
	MF_QCAUSE_EXIT,          /* the worker exited while the task ran */
};

enum mf_quarantine_state { MF_QSTATE_COUNTING = 0, MF_QSTATE_QUARANTINED };

struct mf_quarantine_record {
	char id[MF_QUARANTINE_ID_MAX + 1];
	char name[MF_QUARANTINE_NAME_MAX + 1];  /* task or endpoint name */
	char host[MF_QUARANTINE_HOST_MAX + 1];  /* where the last death was */
	uint64_t deaths;
	uint32_t threshold;                     /* in force at the last death */
	enum mf_quarantine_state state;
	int64_t first_death_ms, last_death_ms;  /* Unix time, milliseconds */
	enum mf_quarantine_cause cause;         /* of the last death */
	uint64_t peak, allocated, net;          /* bytes at the last death that
						   knew them, or UNKNOWN */
	uint64_t unsynced;                      /* deaths only in the local copy */
};

/* One death to record. Strings may be NULL (name, host: keep the old one). */
struct mf_quarantine_death {
	const char *id;
	const char *name;
	const char *host;
	enum mf_quarantine_cause cause;
	int64_t at_ms;         /* 0 = now */
	uint64_t peak, allocated, net; /* MF_QUARANTINE_UNKNOWN when not known */
	uint32_t threshold;    /* 0 = MF_QUARANTINE_THRESHOLD_DEFAULT */
};

/* "oom_kill", "sigkill", "signal", "allocation_failure", "exit", "unknown" */
const char *mf_quarantine_cause_name(enum mf_quarantine_cause c);
int mf_quarantine_cause_parse(const char *s, enum mf_quarantine_cause *out);
/* "counting", "quarantined" */
const char *mf_quarantine_state_name(enum mf_quarantine_state s);

/* An id must be 1..MF_QUARANTINE_ID_MAX bytes of UTF-8-agnostic text
 * without control characters (it ends up in keys, logs and terminals).
 * Returns 0, or -EINVAL with a reason in err. Names follow the same rule
 * but may be empty. */
int mf_quarantine_id_check(const char *id, char *err, size_t errlen);
int mf_quarantine_name_check(const char *name, char *err, size_t errlen);

/* Whether the record says "reject": deaths >= threshold, with threshold
 * the caller's (when not 0) or the one stored with the record. */
bool mf_quarantine_is_quarantined(const struct mf_quarantine_record *r, uint32_t threshold);

/* Record <-> JSON object. The JSON carries times both as milliseconds
 * (first_death_ms, read back by import) and as ISO 8601 UTC for people. */
json_t *mf_quarantine_to_json(const struct mf_quarantine_record *r);
int mf_quarantine_from_json(const json_t *o, struct mf_quarantine_record *r, char *err,
			    size_t errlen);

/* "2026-11-28T21:03:01.123Z" into buf; "-" for 0. Returns buf. */
char *mf_quarantine_time_format(int64_t ms, char *buf, size_t len);

/*
 * Default state directory: $MEMFENCE_STATE_DIR, else /var/lib/memfence for
 * root, else $XDG_STATE_HOME/memfence, else $HOME/.local/state/memfence.
 * Returns a static string.
 */
const char *mf_quarantine_default_state_dir(void);

/* ---- the store ---- */

struct mf_qstore;

struct mf_qstore_opts {
	const char *state_dir;  /* NULL = mf_quarantine_default_state_dir() */
	const char *local_path; /* Redis' local copy; NULL = <state_dir>/quarantine.db */
	int timeout_ms;         /* Redis connect and command timeout; 0 = default */
	const char *ttl;        /* how long a record lives after its last death:
				   a duration ("7d", "12h") or "off" (never
				   expires); NULL = $MEMFENCE_QUARANTINE_TTL,
				   else MF_QUARANTINE_TTL_DEFAULT */
};

/* A record's time to live, as opts.ttl takes it: milliseconds, or 0 for
 * "off". 0, or -EINVAL (a duration of at least 1s, or off). */
int mf_quarantine_ttl_parse(const char *s, int64_t *ms);

/*
 * Open the store named by spec (NULL or "" = the default file). Creates the
 * SQLite file and its directory when missing. A Redis store connects lazily,
 * on the first operation, so opening never blocks on the network.
 * Returns 0, or -errno with a message in err (bad spec: -EINVAL).
 */
int mf_qstore_open(const char *spec, const struct mf_qstore_opts *opts, struct mf_qstore **out,
		   char *err, size_t errlen);
void mf_qstore_close(struct mf_qstore *s);
/* What mf_qstore_open() would refuse before touching the store: a
 * malformed spec (-EINVAL), a path that is not a regular file (-EINVAL, a
 * directory -EISDIR). 0, or -errno with the reason in err. Opens nothing,
 * loads no library: the supervisor checks its store at start and opens it
 * at the first death. */
int mf_qstore_spec_check(const char *spec, const struct mf_qstore_opts *opts, char *err,
			 size_t errlen);
/* The file of the SQLite store spec names, without touching it: 1 with
 * its path in buf, 0 for a Redis store (its answers are Redis', not a
 * local file's), or -errno with the reason in err (a bad spec: -EINVAL).
 * A check can answer "no record" while this file does not exist, without
 * creating it. */
int mf_qstore_spec_file(const char *spec, const struct mf_qstore_opts *opts, char *buf,
			size_t len, char *err, size_t errlen);

/* "sqlite:/var/lib/memfence/quarantine.db", "redis://127.0.0.1:6379/0" */
const char *mf_qstore_describe(const struct mf_qstore *s);
bool mf_qstore_is_redis(const struct mf_qstore *s);
/* The message of the last failed action. */
const char *mf_qstore_error(const struct mf_qstore *s);
/* Set when the last action could not reach Redis and used the local copy
 * instead (a one-line explanation), else NULL. */
const char *mf_qstore_degraded(const struct mf_qstore *s);
/* Deaths pushed to Redis from the local copy by the last action. */
uint64_t mf_qstore_synced(const struct mf_qstore *s);
/* The facts every JSON answer of the last action carries (store, source:
 * "sqlite", "redis" or "local", degraded): the command's and the Python
 * package's answers are built on it. */
json_t *mf_qstore_answer(const struct mf_qstore *s);

/* The check of `memfence quarantine check`: the record of id (an empty one
 * named id when there is none) and whether it is quarantined under
 * threshold (0: the record's own). 1 found, 0 none, or -errno. */
int mf_qstore_check(struct mf_qstore *s, const char *id, uint32_t threshold,
		    struct mf_quarantine_record *r, bool *quarantined);
/* The JSON answers of check (found: what mf_qstore_check returned) and of
 * record (rc: what mf_qstore_record returned). */
json_t *mf_qstore_check_answer(const struct mf_qstore *s, const struct mf_quarantine_record *r,
			       int found, bool quarantined);
json_t *mf_qstore_record_answer(const struct mf_qstore *s, const struct mf_quarantine_record *r,
				int rc);

/*
 * Count one death of d->id atomically (concurrent writers, local or across
 * a fleet, never lose an increment) and return the record as it now is.
 * Returns 0 when stored in the configured store, 1 when Redis was
 * unreachable and the death was kept in the local copy (see
 * mf_qstore_degraded), or -errno.
 */
int mf_qstore_record(struct mf_qstore *s, const struct mf_quarantine_death *d,
		     struct mf_quarantine_record *out);

/* The record of id: 0, -ENOENT when there is none (or it expired), or
 * -errno. Expired records are never returned, listed or counted on:
 * SQLite deletes them when the store is opened and at each death
 * recorded, Redis lets their keys expire (PEXPIREAT). */
int mf_qstore_get(struct mf_qstore *s, const char *id, struct mf_quarantine_record *out);

/* Call fn for every record, ordered by last death (newest first); a
 * non-zero return from fn stops the walk and is returned. */
int mf_qstore_list(struct mf_qstore *s, int (*fn)(const struct mf_quarantine_record *r, void *arg),
		   void *arg);

/* Forget id (its deaths and its quarantine): 0 or -ENOENT. With Redis,
 * refuses (-EHOSTUNREACH) when Redis cannot be reached: a fleet-wide
 * release must not half happen. */
int mf_qstore_clear(struct mf_qstore *s, const char *id);
int mf_qstore_clear_all(struct mf_qstore *s, uint64_t *count);

/* Put a record as it is (import of an export): replaces any record of
 * the same id. */
int mf_qstore_put(struct mf_qstore *s, const struct mf_quarantine_record *r);

/* Push deaths kept locally to Redis now; *pushed gets their number.
 * -EHOSTUNREACH when Redis cannot be reached. 0 for a SQLite store. */
int mf_qstore_sync(struct mf_qstore *s, uint64_t *pushed);

#endif
