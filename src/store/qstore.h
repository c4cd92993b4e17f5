/*
 * qstore.h - inside the quarantine store: the handle, and what its files
 * give each other. Not a public interface (store/quarantine.h is).
 *
 *   quarantine.c  the API: specs, the handle, dispatch to a backend
 *   qrecord.c     records, names, checks, JSON (no store)
 *   qsqlite.c     the SQLite file (also Redis' local copy)
 *   qredis.c      Redis, with the local copy for deaths it could not take
 *
 * Dependencies point down that list only: quarantine.c uses the three
 * others, qredis.c uses qsqlite.c and qrecord.c, qsqlite.c uses qrecord.c.
 */
#ifndef MF_QSTORE_H
#define MF_QSTORE_H

#include <limits.h>
#include <stdint.h>

#include <hiredis.h>
#include <sqlite3.h>

#include "store/quarantine.h"

/* ---- qlib.c: SQLite and hiredis, loaded when a store is first opened ---- */

/*
 * Built with MF_STORE_DLOPEN (the memfence command), the store calls SQLite
 * and hiredis through pointers that mf_qlib_load() fills, by soname
 * (host/dynlib.h): `memfence run` opens no store until a death is recorded,
 * and every start of the command used to pay for mapping and relocating both
 * libraries. Without it (a program linking them, the Python extension), the
 * calls are direct and loading is a no-op.
 */
#define MF_QLIB_SQLITE(X) X(sqlite3_bind_int) X(sqlite3_bind_int64) X(sqlite3_bind_null) \
	X(sqlite3_bind_text) X(sqlite3_busy_timeout) X(sqlite3_changes) X(sqlite3_close) \
	X(sqlite3_column_int64) X(sqlite3_column_text) X(sqlite3_column_type) \
	X(sqlite3_db_config) X(sqlite3_errcode) X(sqlite3_errmsg) X(sqlite3_exec) \
	X(sqlite3_extended_result_codes) X(sqlite3_finalize) X(sqlite3_open_v2) \
	X(sqlite3_prepare_v2) X(sqlite3_step)
#define MF_QLIB_REDIS(X) X(freeReplyObject) X(redisAppendCommand) X(redisCommandArgv) \
	X(redisConnectWithTimeout) X(redisFree) X(redisGetReply) X(redisSetTimeout)

#ifdef MF_STORE_DLOPEN
#define MF_QLIB_FIELD(f) __typeof__(f) *f;
struct mf_qlib {
	MF_QLIB_SQLITE(MF_QLIB_FIELD)
	MF_QLIB_REDIS(MF_QLIB_FIELD)
};
extern struct mf_qlib mf_qlib;

/* SQLite, and hiredis too when redis: 0, or -ENOENT with err naming the
 * library and what to install. Thread-safe; loads once. */
int mf_qlib_load(bool redis, char *err, size_t errlen);

#ifndef MF_QLIB_IMPL
/* The calls, under their own names (a macro does not expand itself). */
#define sqlite3_bind_int (*mf_qlib.sqlite3_bind_int)
#define sqlite3_bind_int64 (*mf_qlib.sqlite3_bind_int64)
#define sqlite3_bind_null (*mf_qlib.sqlite3_bind_null)
#define sqlite3_bind_text (*mf_qlib.sqlite3_bind_text)
#define sqlite3_busy_timeout (*mf_qlib.sqlite3_busy_timeout)
#define sqlite3_changes (*mf_qlib.sqlite3_changes)
#define sqlite3_close (*mf_qlib.sqlite3_close)
#define sqlite3_column_int64 (*mf_qlib.sqlite3_column_int64)
#define sqlite3_column_text (*mf_qlib.sqlite3_column_text)
#define sqlite3_column_type (*mf_qlib.sqlite3_column_type)
#define sqlite3_db_config (*mf_qlib.sqlite3_db_config)
#define sqlite3_errcode (*mf_qlib.sqlite3_errcode)
#define sqlite3_errmsg (*mf_qlib.sqlite3_errmsg)
#define sqlite3_exec (*mf_qlib.sqlite3_exec)
#define sqlite3_extended_result_codes (*mf_qlib.sqlite3_extended_result_codes)
#define sqlite3_finalize (*mf_qlib.sqlite3_finalize)
#define sqlite3_open_v2 (*mf_qlib.sqlite3_open_v2)
#define sqlite3_prepare_v2 (*mf_qlib.sqlite3_prepare_v2)
#define sqlite3_step (*mf_qlib.sqlite3_step)
#define freeReplyObject (*mf_qlib.freeReplyObject)
#define redisAppendCommand (*mf_qlib.redisAppendCommand)
#define redisCommandArgv (*mf_qlib.redisCommandArgv)
#define redisConnectWithTimeout (*mf_qlib.redisConnectWithTimeout)
#define redisFree (*mf_qlib.redisFree)
#define redisGetReply (*mf_qlib.redisGetReply)
#define redisSetTimeout (*mf_qlib.redisSetTimeout)
#endif
#else
static inline int mf_qlib_load(bool redis, char *err, size_t errlen)
{
	(void)redis, (void)err, (void)errlen;
	return 0;
}
#endif

enum qkind { Q_SQLITE, Q_REDIS };

struct mf_qstore {
	enum qkind kind;
	char path[PATH_MAX];  /* SQLite file: the store, or Redis' local copy */
	char desc[PATH_MAX + 64];
	sqlite3 *db;

	char host[256];
	int port;
	int dbnum;
	char user[128];
	char pass[256];
	int timeout_ms;
	int64_t ttl_ms;       /* a record's life after its last death; 0 = forever */
	redisContext *rc;

	char err[PATH_MAX + 512];
	char degraded[PATH_MAX + 512];
	uint64_t synced;
};

/* ---- qrecord.c ---- */

/* A record with no deaths and unknown figures. */
void mf_qrecord_init(struct mf_quarantine_record *r);
/* Fill the threshold's default and the state the deaths give. */
void mf_qrecord_finish(struct mf_quarantine_record *r);
/* what ("id", "name", "host") must be min..max bytes without control
 * characters: 0, or -EINVAL with the reason in err. */
int mf_qrecord_text_check(const char *what, const char *s, size_t min, size_t max, char *err,
			  size_t errlen);
/* A message that may be cut short: through a va_list, so the compiler does
 * not warn about truncation that is wanted. */
void mf_qmsg(char *dst, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- qsqlite.c: every action returns 0 or -errno, message in s->err ---- */

int mf_qsql_open(struct mf_qstore *s);
/* The file is regular or missing (SQLite would write PATH-journal beside a
 * device): 0, or -EINVAL (-EISDIR for a directory) with s->err set. */
int mf_qsql_check_file(struct mf_qstore *s);
int mf_qsql_fail(struct mf_qstore *s, const char *what);
int mf_qsql_exec(struct mf_qstore *s, const char *sql, const char *what);
void mf_qsql_rollback(struct mf_qstore *s);
int64_t mf_qsql_pragma_int(struct mf_qstore *s, const char *sql, int *rc);
int mf_qsql_get(struct mf_qstore *s, const char *id, struct mf_quarantine_record *r);
/* token: the death's sync token; NULL for a SQLite store. */
int mf_qsql_record(struct mf_qstore *s, const struct mf_quarantine_death *d, const char *token,
		   struct mf_quarantine_record *out);
int mf_qsql_put(struct mf_qstore *s, const struct mf_quarantine_record *r);
int mf_qsql_delete(struct mf_qstore *s, const char *id, int *changed);
/* Redis' local copy: bring a record up to what Redis said, or forget it. */
void mf_qsql_refresh(struct mf_qstore *s, struct mf_quarantine_record *r);
void mf_qsql_forget_copy(struct mf_qstore *s, const char *id);
/* Delete the records whose last death is before cutoff_ms, and the
 * pending deaths older than that. */
void mf_qsql_expire(struct mf_qstore *s, int64_t cutoff_ms);
int mf_qsql_list(struct mf_qstore *s, int (*fn)(const struct mf_quarantine_record *, void *),
		 void *arg);
uint64_t mf_qsql_column_figure(sqlite3_stmt *st, int i);
void mf_qsql_column_text(sqlite3_stmt *st, int i, char *dst, size_t cap);

/* ---- qredis.c ---- */

int mf_qredis_parse_url(struct mf_qstore *s, const char *url, char *err, size_t errlen);
/* Connected, authenticated, database selected, local deaths pushed: 0.
 * Otherwise -EHOSTUNREACH with s->degraded set. */
int mf_qredis_ready(struct mf_qstore *s);
int mf_qredis_sync_pending(struct mf_qstore *s);
int mf_qredis_record(struct mf_qstore *s, const struct mf_quarantine_death *d, const char *token,
		     struct mf_quarantine_record *out);
/* Let the key of r expire ttl_ms after r's last death. */
int mf_qredis_expire(struct mf_qstore *s, const struct mf_quarantine_record *r);
int mf_qredis_get(struct mf_qstore *s, const char *id, struct mf_quarantine_record *out);
int mf_qredis_list(struct mf_qstore *s, int (*fn)(const struct mf_quarantine_record *, void *),
		   void *arg);
int mf_qredis_put(struct mf_qstore *s, const struct mf_quarantine_record *rec);
int mf_qredis_clear(struct mf_qstore *s, const char *id, long long *n);
int mf_qredis_clear_all(struct mf_qstore *s, long long *n);

#endif
