/*
 * qsqlite.c - the quarantine store in one SQLite file (the default, and
 * Redis' local copy).
 *
 * SQLite choices (https://www.sqlite.org/wal.html, pragma.html):
 *  - journal_mode=WAL: readers (the check before every task) never wait
 *    for a writer, and a writer killed at any point leaves a WAL that the
 *    next opener rolls back or forward; the file is never half-written.
 *  - synchronous=FULL: in WAL mode NORMAL keeps the database consistent
 *    but may lose the last commits on power loss or a kernel crash. A death
 *    is recorded once per dead worker, so an fsync per record costs nothing
 *    that matters, and losing it would let a poison task run once more.
 *  - busy_timeout: prefork workers and the supervisor write the same file;
 *    writers take the lock up front (BEGIN IMMEDIATE) so two of them never
 *    deadlock upgrading read locks, and wait up to 5 s for each other.
 *  - application_id and user_version mark the file as ours, so pointing
 *    --quarantine at some other database is an error, not a schema change.
 *  WAL needs a local file system (not NFS): see docs/quarantine.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/qstore.h"

#define MF_Q_APP_ID 0x6d665121 /* "mfQ!" */
#define MF_Q_SCHEMA 1
#define MF_Q_BUSY_MS 5000

static int mkdir_parents(const char *path)
{
	char buf[PATH_MAX];
	char *p;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	p = strrchr(buf, '/');
	if (p == NULL || p == buf)
		return 0;
	*p = '\0';
	for (p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* ---- SQLite ---- */

int mf_qsql_fail(struct mf_qstore *s, const char *what)
{
	int code = s->db != NULL ? sqlite3_errcode(s->db) : SQLITE_ERROR;
	const char *msg = s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory";

	switch (code & 0xff) {
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		snprintf(s->err, sizeof(s->err),
			 "quarantine file %s is corrupt or not a database (%s); "
			 "move it aside and a new one is made on next use",
			 s->path, msg);
		return -EILSEQ;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		snprintf(s->err, sizeof(s->err), "quarantine file %s stayed locked for %d ms while %s",
			 s->path, MF_Q_BUSY_MS, what);
		return -EBUSY;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_CANTOPEN:
		snprintf(s->err, sizeof(s->err), "cannot write quarantine file %s (%s)", s->path, msg);
		return -EACCES;
	case SQLITE_FULL:
		snprintf(s->err, sizeof(s->err), "quarantine file %s: disk full", s->path);
		return -ENOSPC;
	default:
		snprintf(s->err, sizeof(s->err), "quarantine file %s: %s while %s", s->path, msg, what);
		return -EIO;
	}
}

int mf_qsql_exec(struct mf_qstore *s, const char *sql, const char *what)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return mf_qsql_fail(s, what);
	return 0;
}

void mf_qsql_rollback(struct mf_qstore *s)
{
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

int64_t mf_qsql_pragma_int(struct mf_qstore *s, const char *sql, int *rc)
{
	sqlite3_stmt *st;
	int64_t v = 0;
	int step;

	*rc = 0;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		*rc = mf_qsql_fail(s, "reading the file header");
		return 0;
	}
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else if (step != SQLITE_DONE)
		*rc = mf_qsql_fail(s, "reading the file header");
	sqlite3_finalize(st);
	return v;
}

static const char schema_sql[] =
	"CREATE TABLE quarantine ("
	" id TEXT PRIMARY KEY NOT NULL,"
	" name TEXT NOT NULL DEFAULT '',"
	" host TEXT NOT NULL DEFAULT '',"
	" deaths INTEGER NOT NULL DEFAULT 0,"
	" threshold INTEGER NOT NULL DEFAULT 2,"
	" first_death_ms INTEGER NOT NULL DEFAULT 0,"
	" last_death_ms INTEGER NOT NULL DEFAULT 0,"
	" cause TEXT NOT NULL DEFAULT 'unknown',"
	" peak INTEGER, allocated INTEGER, net INTEGER,"
	" unsynced INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX quarantine_last ON quarantine(last_death_ms);"
	/* Deaths recorded while Redis was unreachable, one row each, with the
	 * token that makes replaying them idempotent. */
	"CREATE TABLE pending ("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" token TEXT NOT NULL UNIQUE,"
	" id TEXT NOT NULL, name TEXT, host TEXT,"
	" cause TEXT NOT NULL, at_ms INTEGER NOT NULL,"
	" peak INTEGER, allocated INTEGER, net INTEGER,"
	" threshold INTEGER NOT NULL);";

int mf_qsql_check_file(struct mf_qstore *s)
{
	struct stat st;

	/* SQLite opens what it is given, and writes PATH-journal beside it:
	 * "--quarantine /dev/zero" would create /dev/zero-journal. */
	if (stat(s->path, &st) == 0 && !S_ISREG(st.st_mode)) {
		snprintf(s->err, sizeof(s->err), "%s is not a regular file: not a quarantine file",
			 s->path);
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	}
	return 0;
}

int mf_qsql_open(struct mf_qstore *s)
{
	int rc;
	int64_t app, ver, ntables;
	char sql[128];

	rc = mf_qsql_check_file(s);
	if (rc != 0)
		return rc;
	rc = mkdir_parents(s->path);
	if (rc != 0) {
		snprintf(s->err, sizeof(s->err), "cannot create the directory of %s: %s", s->path,
			 strerror(-rc));
		return rc;
	}
	if (sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK)
		return mf_qsql_fail(s, "opening");
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, MF_Q_BUSY_MS);

	/* The first statement reads the header: a file that is not SQLite
	 * fails here with SQLITE_NOTADB. */
	app = mf_qsql_pragma_int(s, "PRAGMA application_id", &rc);
	if (rc != 0)
		return rc;
	if (app != 0 && app != MF_Q_APP_ID) {
		snprintf(s->err, sizeof(s->err),
			 "%s is a SQLite database of another program, not a memfence quarantine file",
			 s->path);
		return -EILSEQ;
	}
	rc = mf_qsql_exec(s, "PRAGMA journal_mode=WAL", "switching to WAL mode");
	if (rc == 0)
		rc = mf_qsql_exec(s, "PRAGMA synchronous=FULL", "setting synchronous");
	if (rc != 0)
		return rc;
	/* Each command is a short-lived process: without this, every close
	 * checkpoints, deletes and the next open recreates the WAL, three
	 * fsyncs for a read-only check. Commits still checkpoint now and then
	 * (wal_autocheckpoint), which bounds the WAL. */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	if (app == MF_Q_APP_ID) {
		ver = mf_qsql_pragma_int(s, "PRAGMA user_version", &rc);
		if (rc != 0)
			return rc;
		if (ver == MF_Q_SCHEMA)
			return 0;
	}

	rc = mf_qsql_exec(s, "BEGIN IMMEDIATE", "creating the schema");
	if (rc != 0)
		return rc;
	app = mf_qsql_pragma_int(s, "PRAGMA application_id", &rc);
	if (rc == 0)
		ver = mf_qsql_pragma_int(s, "PRAGMA user_version", &rc);
	if (rc == 0)
		ntables = mf_qsql_pragma_int(s, "SELECT count(*) FROM sqlite_master", &rc);
	if (rc != 0)
		goto rollback;
	if (app == 0) {
		if (ntables != 0) {
			snprintf(s->err, sizeof(s->err),
				 "%s is a SQLite database of another program, not a memfence quarantine file",
				 s->path);
			rc = -EILSEQ;
			goto rollback;
		}
		snprintf(sql, sizeof(sql), "PRAGMA application_id=%d; PRAGMA user_version=%d;",
			 MF_Q_APP_ID, MF_Q_SCHEMA);
		rc = mf_qsql_exec(s, schema_sql, "creating the schema");
		if (rc == 0)
			rc = mf_qsql_exec(s, sql, "creating the schema");
		if (rc != 0)
			goto rollback;
	} else if (ver != MF_Q_SCHEMA) {
		snprintf(s->err, sizeof(s->err),
			 "quarantine file %s has schema version %lld; this memfence reads version %d",
			 s->path, (long long)ver, MF_Q_SCHEMA);
		rc = -EPROTO;
		goto rollback;
	}
	return mf_qsql_exec(s, "COMMIT", "creating the schema");

rollback:
	mf_qsql_rollback(s);
	return rc;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
	if (v == NULL)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
}

static void bind_figure(sqlite3_stmt *st, int i, uint64_t v)
{
	if (v == MF_QUARANTINE_UNKNOWN || v > INT64_MAX)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, (sqlite3_int64)v);
}

uint64_t mf_qsql_column_figure(sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return MF_QUARANTINE_UNKNOWN;
	return (uint64_t)sqlite3_column_int64(st, i);
}

void mf_qsql_column_text(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	snprintf(dst, cap, "%s", t != NULL ? (const char *)t : "");
}

#define RECORD_COLUMNS                                                                 \
	"id, name, host, deaths, threshold, first_death_ms, last_death_ms, cause, peak, " \
	"allocated, net, unsynced"

static void row_to_record(sqlite3_stmt *st, struct mf_quarantine_record *r)
{
	char cause[32];

	mf_qrecord_init(r);
	mf_qsql_column_text(st, 0, r->id, sizeof(r->id));
	mf_qsql_column_text(st, 1, r->name, sizeof(r->name));
	mf_qsql_column_text(st, 2, r->host, sizeof(r->host));
	r->deaths = (uint64_t)sqlite3_column_int64(st, 3);
	r->threshold = (uint32_t)sqlite3_column_int64(st, 4);
	r->first_death_ms = sqlite3_column_int64(st, 5);
	r->last_death_ms = sqlite3_column_int64(st, 6);
	mf_qsql_column_text(st, 7, cause, sizeof(cause));
	if (mf_quarantine_cause_parse(cause, &r->cause) != 0)
		r->cause = MF_QCAUSE_UNKNOWN;
	r->peak = mf_qsql_column_figure(st, 8);
	r->allocated = mf_qsql_column_figure(st, 9);
	r->net = mf_qsql_column_figure(st, 10);
	r->unsynced = (uint64_t)sqlite3_column_int64(st, 11);
	mf_qrecord_finish(r);
}

int mf_qsql_get(struct mf_qstore *s, const char *id, struct mf_quarantine_record *r)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(s->db, "SELECT " RECORD_COLUMNS " FROM quarantine WHERE id = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		return mf_qsql_fail(s, "reading a record");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		row_to_record(st, r);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		snprintf(s->err, sizeof(s->err), "no quarantine record for id '%s'", id);
		rc = -ENOENT;
	} else {
		rc = mf_qsql_fail(s, "reading a record");
	}
	sqlite3_finalize(st);
	return rc;
}

/* Count one death in the local table (inside the caller's transaction). A
 * death older than the newest one counts but does not replace the
 * last-death fields: replayed deaths arrive late. */
static int sq_add_death(struct mf_qstore *s, const struct mf_quarantine_death *d, int unsynced)
{
	static const char sql[] =
		"INSERT INTO quarantine (" RECORD_COLUMNS ")"
		" VALUES (?1, coalesce(?2, ''), coalesce(?3, ''), 1, ?4, ?5, ?5, ?6, ?7, ?8, ?9, ?10)"
		" ON CONFLICT(id) DO UPDATE SET"
		"  deaths = deaths + 1,"
		"  unsynced = unsynced + ?10,"
		"  first_death_ms = min(first_death_ms, ?5),"
		"  name = CASE WHEN ?2 IS NOT NULL AND ?2 <> '' AND (?5 >= last_death_ms OR name = '')"
		"   THEN ?2 ELSE name END,"
		"  host = CASE WHEN ?3 IS NOT NULL AND ?3 <> '' AND ?5 >= last_death_ms THEN ?3 ELSE host END,"
		"  threshold = CASE WHEN ?5 >= last_death_ms THEN ?4 ELSE threshold END,"
		"  cause = CASE WHEN ?5 >= last_death_ms THEN ?6 ELSE cause END,"
		"  peak = CASE WHEN ?5 >= last_death_ms AND ?7 IS NOT NULL THEN ?7 ELSE peak END,"
		"  allocated = CASE WHEN ?5 >= last_death_ms AND ?8 IS NOT NULL THEN ?8 ELSE allocated END,"
		"  net = CASE WHEN ?5 >= last_death_ms AND ?9 IS NOT NULL THEN ?9 ELSE net END,"
		"  last_death_ms = max(last_death_ms, ?5)";
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return mf_qsql_fail(s, "recording a death");
	sqlite3_bind_text(st, 1, d->id, -1, SQLITE_TRANSIENT);
	bind_text_or_null(st, 2, d->name);
	bind_text_or_null(st, 3, d->host);
	sqlite3_bind_int64(st, 4, d->threshold);
	sqlite3_bind_int64(st, 5, d->at_ms);
	sqlite3_bind_text(st, 6, mf_quarantine_cause_name(d->cause), -1, SQLITE_STATIC);
	bind_figure(st, 7, d->peak);
	bind_figure(st, 8, d->allocated);
	bind_figure(st, 9, d->net);
	sqlite3_bind_int(st, 10, unsynced);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : mf_qsql_fail(s, "recording a death");
	sqlite3_finalize(st);
	return rc;
}

static int sq_add_pending(struct mf_qstore *s, const struct mf_quarantine_death *d,
			  const char *token)
{
	static const char sql[] =
		"INSERT INTO pending (token, id, name, host, cause, at_ms, peak, allocated, net, threshold)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return mf_qsql_fail(s, "keeping a death locally");
	sqlite3_bind_text(st, 1, token, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, d->id, -1, SQLITE_TRANSIENT);
	bind_text_or_null(st, 3, d->name);
	bind_text_or_null(st, 4, d->host);
	sqlite3_bind_text(st, 5, mf_quarantine_cause_name(d->cause), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, d->at_ms);
	bind_figure(st, 7, d->peak);
	bind_figure(st, 8, d->allocated);
	bind_figure(st, 9, d->net);
	sqlite3_bind_int64(st, 10, d->threshold);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : mf_qsql_fail(s, "keeping a death locally");
	sqlite3_finalize(st);
	return rc;
}

/* Record one death: in the file (SQLite store), or in the local copy with
 * its replay token (Redis unreachable). */
int mf_qsql_record(struct mf_qstore *s, const struct mf_quarantine_death *d, const char *token,
		     struct mf_quarantine_record *out)
{
	int rc = mf_qsql_exec(s, "BEGIN IMMEDIATE", "recording a death");

	if (rc != 0)
		return rc;
	if (token != NULL)
		rc = sq_add_pending(s, d, token);
	if (rc == 0)
		rc = sq_add_death(s, d, token != NULL);
	if (rc == 0)
		rc = mf_qsql_get(s, d->id, out);
	if (rc != 0) {
		mf_qsql_rollback(s);
		return rc;
	}
	return mf_qsql_exec(s, "COMMIT", "recording a death");
}

/* Replace the local row of r->id (a copy of Redis' record, or an import);
 * unsynced counts the deaths of this id still waiting to be pushed. */
int mf_qsql_put(struct mf_qstore *s, const struct mf_quarantine_record *r)
{
	static const char sql[] =
		"INSERT OR REPLACE INTO quarantine (" RECORD_COLUMNS ")"
		" VALUES (?1, ?2, ?3, ?4 + (SELECT count(*) FROM pending WHERE id = ?1),"
		" ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
		" (SELECT count(*) FROM pending WHERE id = ?1))";
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return mf_qsql_fail(s, "writing a record");
	sqlite3_bind_text(st, 1, r->id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, r->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, r->host, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)r->deaths);
	sqlite3_bind_int64(st, 5, r->threshold);
	sqlite3_bind_int64(st, 6, r->first_death_ms);
	sqlite3_bind_int64(st, 7, r->last_death_ms);
	sqlite3_bind_text(st, 8, mf_quarantine_cause_name(r->cause), -1, SQLITE_STATIC);
	bind_figure(st, 9, r->peak);
	bind_figure(st, 10, r->allocated);
	bind_figure(st, 11, r->net);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : mf_qsql_fail(s, "writing a record");
	sqlite3_finalize(st);
	return rc;
}

int mf_qsql_delete(struct mf_qstore *s, const char *id, int *changed)
{
	sqlite3_stmt *st;
	int rc = 0;
	const char *sqls[] = {"DELETE FROM quarantine WHERE id = ?1", "DELETE FROM pending WHERE id = ?1"};

	*changed = 0;
	for (int i = 0; i < 2 && rc == 0; i++) {
		if (sqlite3_prepare_v2(s->db, sqls[i], -1, &st, NULL) != SQLITE_OK)
			return mf_qsql_fail(s, "clearing a record");
		sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : mf_qsql_fail(s, "clearing a record");
		if (i == 0)
			*changed = sqlite3_changes(s->db);
		sqlite3_finalize(st);
	}
	return rc;
}

static bool same_record(const struct mf_quarantine_record *local,
			const struct mf_quarantine_record *remote)
{
	return local->deaths - local->unsynced == remote->deaths &&
	       local->threshold == remote->threshold &&
	       local->first_death_ms == remote->first_death_ms &&
	       local->last_death_ms == remote->last_death_ms && local->cause == remote->cause &&
	       local->peak == remote->peak && local->allocated == remote->allocated &&
	       local->net == remote->net && strcmp(local->name, remote->name) == 0 &&
	       strcmp(local->host, remote->host) == 0;
}

/*
 * Bring the local copy of r (as Redis has it) up to date, for answers
 * while Redis is away, and return the local view (Redis' record plus this
 * machine's unsynced deaths). Writes only on a change: a check before
 * every task must not cost an fsync. Failing to write is not a failure of
 * the operation, which Redis answered.
 */
void mf_qsql_refresh(struct mf_qstore *s, struct mf_quarantine_record *r)
{
	struct mf_quarantine_record local;

	if (mf_qsql_get(s, r->id, &local) == 0 && same_record(&local, r))
		*r = local;
	else if (mf_qsql_put(s, r) == 0)
		mf_qsql_get(s, r->id, r);
	s->err[0] = '\0';
}

/* Drop the local copy of a record Redis no longer has, unless deaths of
 * it are still waiting to be sent. */
void mf_qsql_forget_copy(struct mf_qstore *s, const char *id)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(s->db,
			       "DELETE FROM quarantine WHERE id = ?1"
			       " AND NOT EXISTS (SELECT 1 FROM pending WHERE id = ?1)",
			       -1, &st, NULL) != SQLITE_OK)
		return;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	sqlite3_step(st);
	sqlite3_finalize(st);
}

void mf_qsql_expire(struct mf_qstore *s, int64_t cutoff_ms)
{
	static const char *const sqls[] = {"DELETE FROM quarantine WHERE last_death_ms < ?1",
					   "DELETE FROM pending WHERE at_ms < ?1"};

	/* A store that cannot be written now is pruned at a later write: the
	 * readers skip expired records whatever is left. */
	for (size_t i = 0; i < sizeof(sqls) / sizeof(sqls[0]); i++) {
		sqlite3_stmt *st;

		if (sqlite3_prepare_v2(s->db, sqls[i], -1, &st, NULL) != SQLITE_OK)
			continue;
		sqlite3_bind_int64(st, 1, cutoff_ms);
		sqlite3_step(st);
		sqlite3_finalize(st);
	}
}

int mf_qsql_list(struct mf_qstore *s, int (*fn)(const struct mf_quarantine_record *, void *),
		   void *arg)
{
	sqlite3_stmt *st;
	struct mf_quarantine_record r;
	int rc, step;

	if (sqlite3_prepare_v2(s->db,
			       "SELECT " RECORD_COLUMNS " FROM quarantine ORDER BY last_death_ms DESC, id",
			       -1, &st, NULL) != SQLITE_OK)
		return mf_qsql_fail(s, "listing records");
	rc = 0;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		row_to_record(st, &r);
		rc = fn(&r, arg);
		if (rc != 0)
			break;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = mf_qsql_fail(s, "listing records");
	sqlite3_finalize(st);
	return rc;
}
