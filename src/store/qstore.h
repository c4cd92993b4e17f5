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
int mf_qredis_get(struct mf_qstore *s, const char *id, struct mf_quarantine_record *out);
int mf_qredis_list(struct mf_qstore *s, int (*fn)(const struct mf_quarantine_record *, void *),
		   void *arg);
int mf_qredis_put(struct mf_qstore *s, const struct mf_quarantine_record *rec);
int mf_qredis_clear(struct mf_qstore *s, const char *id, long long *n);
int mf_qredis_clear_all(struct mf_qstore *s, long long *n);

#endif
