/*
 * quarantine.c - the poison-task quarantine store: SQLite file, Redis.
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
 *
 * Redis: one hash per id (memfence:q:r:<id>), a set of ids
 * (memfence:q:index) for listing without KEYS/SCAN, and one short-lived key
 * per recorded death (memfence:q:sync:<token>) so that a death pushed twice
 * (sent, but the reply lost to a timeout, then replayed from the local
 * copy) counts once. A single-node Redis (or a primary) is assumed: the
 * scripts touch several keys, which Redis Cluster would refuse.
 */
#include "store/quarantine.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <hiredis.h>
#include <sqlite3.h>

#define MF_Q_APP_ID 0x6d665121 /* "mfQ!" */
#define MF_Q_SCHEMA 1
#define MF_Q_BUSY_MS 5000
#define MF_Q_TOKEN_TTL (7 * 24 * 3600) /* s: longer than any Redis outage we replay */
#define MF_Q_KEY_RECORD MF_QUARANTINE_REDIS_PREFIX "r:"
#define MF_Q_KEY_INDEX MF_QUARANTINE_REDIS_PREFIX "index"
#define MF_Q_KEY_SYNC MF_QUARANTINE_REDIS_PREFIX "sync:"

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

/* ---- records, names, JSON ---- */

static const char *const cause_names[] = {
	[MF_QCAUSE_UNKNOWN] = "unknown",
	[MF_QCAUSE_OOM_KILL] = "oom_kill",
	[MF_QCAUSE_SIGKILL] = "sigkill",
	[MF_QCAUSE_SIGNAL] = "signal",
	[MF_QCAUSE_ALLOC_FAILURE] = "allocation_failure",
	[MF_QCAUSE_EXIT] = "exit",
};

const char *mf_quarantine_cause_name(enum mf_quarantine_cause c)
{
	if ((size_t)c < sizeof(cause_names) / sizeof(cause_names[0]))
		return cause_names[c];
	return "unknown";
}

int mf_quarantine_cause_parse(const char *s, enum mf_quarantine_cause *out)
{
	for (size_t i = 0; i < sizeof(cause_names) / sizeof(cause_names[0]); i++) {
		if (s != NULL && strcmp(s, cause_names[i]) == 0) {
			*out = (enum mf_quarantine_cause)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *mf_quarantine_state_name(enum mf_quarantine_state st)
{
	return st == MF_QSTATE_QUARANTINED ? "quarantined" : "counting";
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0. Ids and names
 * end up in JSON, which cannot carry anything else. */
static size_t utf8_len(const unsigned char *p)
{
	size_t n;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0)
		n = 2, cp = p[0] & 0x1f;
	else if ((p[0] & 0xf0) == 0xe0)
		n = 3, cp = p[0] & 0x0f;
	else if ((p[0] & 0xf8) == 0xf0)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* Overlong forms, surrogates, beyond Unicode. */
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

static int text_check(const char *what, const char *s, size_t min, size_t max, char *err,
		      size_t errlen)
{
	size_t n;

	if (s == NULL) {
		snprintf(err, errlen, "no %s given", what);
		return -EINVAL;
	}
	n = strlen(s);
	if (n < min) {
		snprintf(err, errlen, "empty %s", what);
		return -EINVAL;
	}
	if (n > max) {
		snprintf(err, errlen, "%s too long: %zu bytes (at most %zu)", what, n, max);
		return -EINVAL;
	}
	for (size_t i = 0, len; i < n; i += len) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f) {
			snprintf(err, errlen, "%s contains a control character (byte %zu)", what,
				 i + 1);
			return -EINVAL;
		}
		len = utf8_len((const unsigned char *)s + i);
		if (len == 0) {
			snprintf(err, errlen, "%s is not valid UTF-8 (byte %zu)", what, i + 1);
			return -EINVAL;
		}
	}
	return 0;
}

int mf_quarantine_id_check(const char *id, char *err, size_t errlen)
{
	return text_check("id", id, 1, MF_QUARANTINE_ID_MAX, err, errlen);
}

int mf_quarantine_name_check(const char *name, char *err, size_t errlen)
{
	return text_check("name", name, 0, MF_QUARANTINE_NAME_MAX, err, errlen);
}

bool mf_quarantine_is_quarantined(const struct mf_quarantine_record *r, uint32_t threshold)
{
	uint32_t t = threshold != 0 ? threshold : r->threshold;

	if (t == 0)
		t = MF_QUARANTINE_THRESHOLD_DEFAULT;
	return r->deaths >= t;
}

static void record_finish(struct mf_quarantine_record *r)
{
	if (r->threshold == 0)
		r->threshold = MF_QUARANTINE_THRESHOLD_DEFAULT;
	r->state = mf_quarantine_is_quarantined(r, 0) ? MF_QSTATE_QUARANTINED : MF_QSTATE_COUNTING;
}

static void record_init(struct mf_quarantine_record *r)
{
	memset(r, 0, sizeof(*r));
	r->peak = r->allocated = r->net = MF_QUARANTINE_UNKNOWN;
	r->threshold = MF_QUARANTINE_THRESHOLD_DEFAULT;
}

char *mf_quarantine_time_format(int64_t ms, char *buf, size_t len)
{
	struct tm tm;
	time_t t;
	char tmp[32];

	if (ms <= 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	t = (time_t)(ms / 1000);
	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(buf, len, "-");
		return buf;
	}
	strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03dZ", tmp, (int)(ms % 1000));
	return buf;
}

static json_t *figure_json(uint64_t v)
{
	return v == MF_QUARANTINE_UNKNOWN ? json_null() : json_integer((json_int_t)v);
}

json_t *mf_quarantine_to_json(const struct mf_quarantine_record *r)
{
	char first[40], last[40];

	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:b, s:I, s:s, s:I, s:s, s:s,"
			 " s:o, s:o, s:o, s:I}",
			 "id", r->id, "name", r->name, "host", r->host,
			 "deaths", (json_int_t)r->deaths, "threshold", (json_int_t)r->threshold,
			 "state", mf_quarantine_state_name(r->state),
			 "quarantined", r->state == MF_QSTATE_QUARANTINED,
			 "first_death_ms", (json_int_t)r->first_death_ms,
			 "first_death", mf_quarantine_time_format(r->first_death_ms, first, sizeof(first)),
			 "last_death_ms", (json_int_t)r->last_death_ms,
			 "last_death", mf_quarantine_time_format(r->last_death_ms, last, sizeof(last)),
			 "cause", mf_quarantine_cause_name(r->cause),
			 "peak", figure_json(r->peak), "allocated", figure_json(r->allocated),
			 "net", figure_json(r->net), "unsynced", (json_int_t)r->unsynced);
}

static int json_text(const json_t *o, const char *key, char *dst, size_t cap,
		     int (*check)(const char *, char *, size_t), char *err, size_t errlen)
{
	const json_t *v = json_object_get(o, key);
	char why[128];

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		snprintf(err, errlen, "\"%s\" is not a string", key);
		return -EINVAL;
	}
	if (check != NULL && check(json_string_value(v), why, sizeof(why)) != 0) {
		snprintf(err, errlen, "\"%s\": %s", key, why);
		return -EINVAL;
	}
	if (strlen(json_string_value(v)) >= cap) {
		snprintf(err, errlen, "\"%s\" too long", key);
		return -EINVAL;
	}
	snprintf(dst, cap, "%s", json_string_value(v));
	return 0;
}

static int json_int(const json_t *o, const char *key, int64_t min, int64_t max, int64_t *out,
		    bool *present, char *err, size_t errlen)
{
	const json_t *v = json_object_get(o, key);

	*present = false;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		snprintf(err, errlen, "\"%s\" must be an integer from %" PRId64 " to %" PRId64,
			 key, min, max);
		return -EINVAL;
	}
	*out = json_integer_value(v);
	*present = true;
	return 0;
}

int mf_quarantine_from_json(const json_t *o, struct mf_quarantine_record *r, char *err,
			    size_t errlen)
{
	static const char *const figs[] = {"peak", "allocated", "net"};
	uint64_t *fig_dst[] = {&r->peak, &r->allocated, &r->net};
	const json_t *cause;
	int64_t v;
	bool have;

	record_init(r);
	if (!json_is_object(o)) {
		snprintf(err, errlen, "a record must be a JSON object");
		return -EINVAL;
	}
	if (json_object_get(o, "id") == NULL) {
		snprintf(err, errlen, "record without \"id\"");
		return -EINVAL;
	}
	if (json_text(o, "id", r->id, sizeof(r->id), mf_quarantine_id_check, err, errlen) != 0 ||
	    json_text(o, "name", r->name, sizeof(r->name), mf_quarantine_name_check, err, errlen) != 0 ||
	    json_text(o, "host", r->host, sizeof(r->host), mf_quarantine_name_check, err, errlen) != 0)
		return -EINVAL;
	if (json_int(o, "deaths", 0, INT64_MAX, &v, &have, err, errlen) != 0)
		return -EINVAL;
	if (!have) {
		snprintf(err, errlen, "record %s without \"deaths\"", r->id);
		return -EINVAL;
	}
	r->deaths = (uint64_t)v;
	if (json_int(o, "threshold", 1, MF_QUARANTINE_THRESHOLD_MAX, &v, &have, err, errlen) != 0)
		return -EINVAL;
	if (have)
		r->threshold = (uint32_t)v;
	if (json_int(o, "first_death_ms", 0, INT64_MAX, &v, &have, err, errlen) != 0)
		return -EINVAL;
	r->first_death_ms = have ? v : 0;
	if (json_int(o, "last_death_ms", 0, INT64_MAX, &v, &have, err, errlen) != 0)
		return -EINVAL;
	r->last_death_ms = have ? v : r->first_death_ms;
	cause = json_object_get(o, "cause");
	if (cause != NULL && !json_is_null(cause) &&
	    (!json_is_string(cause) ||
	     mf_quarantine_cause_parse(json_string_value(cause), &r->cause) != 0)) {
		snprintf(err, errlen, "\"cause\" must be one of oom_kill, sigkill, signal, "
				      "allocation_failure, exit, unknown");
		return -EINVAL;
	}
	for (size_t i = 0; i < 3; i++) {
		if (json_int(o, figs[i], 0, INT64_MAX, &v, &have, err, errlen) != 0)
			return -EINVAL;
		*fig_dst[i] = have ? (uint64_t)v : MF_QUARANTINE_UNKNOWN;
	}
	record_finish(r);
	return 0;
}

/* ---- paths and specs ---- */

const char *mf_quarantine_default_state_dir(void)
{
	static char buf[PATH_MAX];
	const char *v = getenv("MEMFENCE_STATE_DIR");

	if (v != NULL && *v != '\0')
		return v;
	if (geteuid() == 0)
		return "/var/lib/memfence";
	v = getenv("XDG_STATE_HOME");
	if (v != NULL && *v == '/') {
		snprintf(buf, sizeof(buf), "%s/memfence", v);
		return buf;
	}
	v = getenv("HOME");
	if (v != NULL && *v == '/') {
		snprintf(buf, sizeof(buf), "%s/.local/state/memfence", v);
		return buf;
	}
	return "/var/lib/memfence";
}

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

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Copy n bytes of a URL part, decoding %XX. */
static int url_decode(const char *s, size_t n, char *dst, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			int h, l;
			if (i + 2 >= n)
				return -1;
			h = hexval(s[i + 1]);
			l = hexval(s[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = (char)(h * 16 + l);
			if (c == '\0')
				return -1;
			i += 2;
		}
		if (o + 1 >= cap)
			return -1;
		dst[o++] = c;
	}
	dst[o] = '\0';
	return 0;
}

/*
 * redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], HOST a name, an IPv4 address
 * or [IPv6]. Port defaults to 6379, DB to 0.
 */
static int parse_redis_url(struct mf_qstore *s, const char *url, char *err, size_t errlen)
{
	const char *a = url + strlen("redis://");
	const char *end = a + strcspn(a, "/?#");
	const char *at = NULL, *h, *hend, *p;
	long v;

	for (p = a; p < end; p++)
		if (*p == '@')
			at = p;
	if (at != NULL) {
		const char *colon = memchr(a, ':', (size_t)(at - a));
		if (colon == NULL) {
			snprintf(err, errlen,
				 "invalid Redis URL '%s': write the password as :PASSWORD@ or USER:PASSWORD@",
				 url);
			return -EINVAL;
		}
		if (url_decode(a, (size_t)(colon - a), s->user, sizeof(s->user)) != 0 ||
		    url_decode(colon + 1, (size_t)(at - colon - 1), s->pass, sizeof(s->pass)) != 0) {
			snprintf(err, errlen, "invalid Redis URL '%s': bad user or password encoding", url);
			return -EINVAL;
		}
		h = at + 1;
	} else {
		h = a;
	}
	if (*h == '[') {
		hend = memchr(h, ']', (size_t)(end - h));
		if (hend == NULL) {
			snprintf(err, errlen, "invalid Redis URL '%s': unclosed '[' in the host", url);
			return -EINVAL;
		}
		h++;
		p = hend + 1;
	} else {
		hend = h;
		while (hend < end && *hend != ':')
			hend++;
		p = hend;
	}
	if (hend == h) {
		snprintf(err, errlen, "invalid Redis URL '%s': no host", url);
		return -EINVAL;
	}
	if ((size_t)(hend - h) >= sizeof(s->host)) {
		snprintf(err, errlen, "invalid Redis URL '%s': host too long", url);
		return -EINVAL;
	}
	for (const char *q = h; q < hend; q++) {
		if (!isalnum((unsigned char)*q) && *q != '.' && *q != '-' && *q != '_' && *q != ':') {
			snprintf(err, errlen, "invalid Redis URL '%s': bad character '%c' in the host",
				 url, *q);
			return -EINVAL;
		}
	}
	memcpy(s->host, h, (size_t)(hend - h));
	s->host[hend - h] = '\0';
	s->port = 6379;
	if (p < end) {
		if (*p != ':' || p + 1 == end) {
			snprintf(err, errlen, "invalid Redis URL '%s': expected :PORT after the host", url);
			return -EINVAL;
		}
		v = 0;
		for (p++; p < end; p++) {
			if (!isdigit((unsigned char)*p) || (v = v * 10 + (*p - '0')) > 65535) {
				snprintf(err, errlen, "invalid Redis URL '%s': port must be a number from 1 to 65535", url);
				return -EINVAL;
			}
		}
		if (v == 0) {
			snprintf(err, errlen, "invalid Redis URL '%s': port must be a number from 1 to 65535", url);
			return -EINVAL;
		}
		s->port = (int)v;
	}
	s->dbnum = 0;
	if (*end == '/' && end[1] != '\0') {
		v = 0;
		for (p = end + 1; *p != '\0'; p++) {
			if (!isdigit((unsigned char)*p) || (v = v * 10 + (*p - '0')) > 1000000) {
				snprintf(err, errlen, "invalid Redis URL '%s': the path must be a database number", url);
				return -EINVAL;
			}
		}
		s->dbnum = (int)v;
	} else if (*end != '\0' && !(*end == '/' && end[1] == '\0')) {
		snprintf(err, errlen,
			 "invalid Redis URL '%s': query strings and fragments are not supported", url);
		return -EINVAL;
	}
	snprintf(s->desc, sizeof(s->desc), "redis://%s%s%s:%d/%d", strchr(s->host, ':') ? "[" : "",
		 s->host, strchr(s->host, ':') ? "]" : "", s->port, s->dbnum);
	return 0;
}

/* ---- SQLite ---- */

static int sq_fail(struct mf_qstore *s, const char *what)
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

static int sq_exec(struct mf_qstore *s, const char *sql, const char *what)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return sq_fail(s, what);
	return 0;
}

static void sq_rollback(struct mf_qstore *s)
{
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static int64_t sq_pragma_int(struct mf_qstore *s, const char *sql, int *rc)
{
	sqlite3_stmt *st;
	int64_t v = 0;
	int step;

	*rc = 0;
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
		*rc = sq_fail(s, "reading the file header");
		return 0;
	}
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else if (step != SQLITE_DONE)
		*rc = sq_fail(s, "reading the file header");
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

static int sq_open(struct mf_qstore *s)
{
	int rc;
	int64_t app, ver, ntables;
	char sql[128];

	rc = mkdir_parents(s->path);
	if (rc != 0) {
		snprintf(s->err, sizeof(s->err), "cannot create the directory of %s: %s", s->path,
			 strerror(-rc));
		return rc;
	}
	if (sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK)
		return sq_fail(s, "opening");
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, MF_Q_BUSY_MS);

	/* The first statement reads the header: a file that is not SQLite
	 * fails here with SQLITE_NOTADB. */
	app = sq_pragma_int(s, "PRAGMA application_id", &rc);
	if (rc != 0)
		return rc;
	if (app != 0 && app != MF_Q_APP_ID) {
		snprintf(s->err, sizeof(s->err),
			 "%s is a SQLite database of another program, not a memfence quarantine file",
			 s->path);
		return -EILSEQ;
	}
	rc = sq_exec(s, "PRAGMA journal_mode=WAL", "switching to WAL mode");
	if (rc == 0)
		rc = sq_exec(s, "PRAGMA synchronous=FULL", "setting synchronous");
	if (rc != 0)
		return rc;
	/* Each command is a short-lived process: without this, every close
	 * checkpoints, deletes and the next open recreates the WAL, three
	 * fsyncs for a read-only check. Commits still checkpoint now and then
	 * (wal_autocheckpoint), which bounds the WAL. */
	sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	if (app == MF_Q_APP_ID) {
		ver = sq_pragma_int(s, "PRAGMA user_version", &rc);
		if (rc != 0)
			return rc;
		if (ver == MF_Q_SCHEMA)
			return 0;
	}

	rc = sq_exec(s, "BEGIN IMMEDIATE", "creating the schema");
	if (rc != 0)
		return rc;
	app = sq_pragma_int(s, "PRAGMA application_id", &rc);
	if (rc == 0)
		ver = sq_pragma_int(s, "PRAGMA user_version", &rc);
	if (rc == 0)
		ntables = sq_pragma_int(s, "SELECT count(*) FROM sqlite_master", &rc);
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
		rc = sq_exec(s, schema_sql, "creating the schema");
		if (rc == 0)
			rc = sq_exec(s, sql, "creating the schema");
		if (rc != 0)
			goto rollback;
	} else if (ver != MF_Q_SCHEMA) {
		snprintf(s->err, sizeof(s->err),
			 "quarantine file %s has schema version %lld; this memfence reads version %d",
			 s->path, (long long)ver, MF_Q_SCHEMA);
		rc = -EPROTO;
		goto rollback;
	}
	return sq_exec(s, "COMMIT", "creating the schema");

rollback:
	sq_rollback(s);
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

static uint64_t column_figure(sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return MF_QUARANTINE_UNKNOWN;
	return (uint64_t)sqlite3_column_int64(st, i);
}

static void column_text(sqlite3_stmt *st, int i, char *dst, size_t cap)
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

	record_init(r);
	column_text(st, 0, r->id, sizeof(r->id));
	column_text(st, 1, r->name, sizeof(r->name));
	column_text(st, 2, r->host, sizeof(r->host));
	r->deaths = (uint64_t)sqlite3_column_int64(st, 3);
	r->threshold = (uint32_t)sqlite3_column_int64(st, 4);
	r->first_death_ms = sqlite3_column_int64(st, 5);
	r->last_death_ms = sqlite3_column_int64(st, 6);
	column_text(st, 7, cause, sizeof(cause));
	if (mf_quarantine_cause_parse(cause, &r->cause) != 0)
		r->cause = MF_QCAUSE_UNKNOWN;
	r->peak = column_figure(st, 8);
	r->allocated = column_figure(st, 9);
	r->net = column_figure(st, 10);
	r->unsynced = (uint64_t)sqlite3_column_int64(st, 11);
	record_finish(r);
}

static int sq_get(struct mf_qstore *s, const char *id, struct mf_quarantine_record *r)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(s->db, "SELECT " RECORD_COLUMNS " FROM quarantine WHERE id = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		return sq_fail(s, "reading a record");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		row_to_record(st, r);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		snprintf(s->err, sizeof(s->err), "no quarantine record for id '%s'", id);
		rc = -ENOENT;
	} else {
		rc = sq_fail(s, "reading a record");
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
		return sq_fail(s, "recording a death");
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
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sq_fail(s, "recording a death");
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
		return sq_fail(s, "keeping a death locally");
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
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sq_fail(s, "keeping a death locally");
	sqlite3_finalize(st);
	return rc;
}

/* Record one death: in the file (SQLite store), or in the local copy with
 * its replay token (Redis unreachable). */
static int sq_record(struct mf_qstore *s, const struct mf_quarantine_death *d, const char *token,
		     struct mf_quarantine_record *out)
{
	int rc = sq_exec(s, "BEGIN IMMEDIATE", "recording a death");

	if (rc != 0)
		return rc;
	if (token != NULL)
		rc = sq_add_pending(s, d, token);
	if (rc == 0)
		rc = sq_add_death(s, d, token != NULL);
	if (rc == 0)
		rc = sq_get(s, d->id, out);
	if (rc != 0) {
		sq_rollback(s);
		return rc;
	}
	return sq_exec(s, "COMMIT", "recording a death");
}

/* Replace the local row of r->id (a copy of Redis' record, or an import);
 * unsynced counts the deaths of this id still waiting to be pushed. */
static int sq_put(struct mf_qstore *s, const struct mf_quarantine_record *r)
{
	static const char sql[] =
		"INSERT OR REPLACE INTO quarantine (" RECORD_COLUMNS ")"
		" VALUES (?1, ?2, ?3, ?4 + (SELECT count(*) FROM pending WHERE id = ?1),"
		" ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
		" (SELECT count(*) FROM pending WHERE id = ?1))";
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return sq_fail(s, "writing a record");
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
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sq_fail(s, "writing a record");
	sqlite3_finalize(st);
	return rc;
}

static int sq_delete(struct mf_qstore *s, const char *id, int *changed)
{
	sqlite3_stmt *st;
	int rc = 0;
	const char *sqls[] = {"DELETE FROM quarantine WHERE id = ?1", "DELETE FROM pending WHERE id = ?1"};

	*changed = 0;
	for (int i = 0; i < 2 && rc == 0; i++) {
		if (sqlite3_prepare_v2(s->db, sqls[i], -1, &st, NULL) != SQLITE_OK)
			return sq_fail(s, "clearing a record");
		sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sq_fail(s, "clearing a record");
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
static void sq_refresh(struct mf_qstore *s, struct mf_quarantine_record *r)
{
	struct mf_quarantine_record local;

	if (sq_get(s, r->id, &local) == 0 && same_record(&local, r))
		*r = local;
	else if (sq_put(s, r) == 0)
		sq_get(s, r->id, r);
	s->err[0] = '\0';
}

/* Drop the local copy of a record Redis no longer has, unless deaths of
 * it are still waiting to be sent. */
static void sq_forget_copy(struct mf_qstore *s, const char *id)
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

static int sq_list(struct mf_qstore *s, int (*fn)(const struct mf_quarantine_record *, void *),
		   void *arg)
{
	sqlite3_stmt *st;
	struct mf_quarantine_record r;
	int rc, step;

	if (sqlite3_prepare_v2(s->db,
			       "SELECT " RECORD_COLUMNS " FROM quarantine ORDER BY last_death_ms DESC, id",
			       -1, &st, NULL) != SQLITE_OK)
		return sq_fail(s, "listing records");
	rc = 0;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		row_to_record(st, &r);
		rc = fn(&r, arg);
		if (rc != 0)
			break;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = sq_fail(s, "listing records");
	sqlite3_finalize(st);
	return rc;
}

/* ---- Redis ---- */

/*
 * Count one death. KEYS: record, index, sync token. ARGV: id, name, host,
 * at_ms, cause, peak, allocated, net (empty = unknown), threshold, token
 * TTL. Returns the record's fields (HGETALL); a token already seen means
 * this death was counted before, so only the record is returned.
 */
static const char lua_record[] =
	"if not redis.call('SET', KEYS[3], '1', 'NX', 'EX', tonumber(ARGV[10])) then\n"
	"  return redis.call('HGETALL', KEYS[1])\n"
	"end\n"
	"local at = tonumber(ARGV[4])\n"
	"redis.call('HINCRBY', KEYS[1], 'deaths', 1)\n"
	"local first = tonumber(redis.call('HGET', KEYS[1], 'first_death_ms'))\n"
	"if first == nil or at < first then redis.call('HSET', KEYS[1], 'first_death_ms', ARGV[4]) end\n"
	"local last = tonumber(redis.call('HGET', KEYS[1], 'last_death_ms'))\n"
	"if last == nil or at >= last then\n"
	"  redis.call('HSET', KEYS[1], 'last_death_ms', ARGV[4], 'cause', ARGV[5], 'threshold', ARGV[9])\n"
	"  if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'host', ARGV[3]) end\n"
	"  if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'name', ARGV[2]) end\n"
	"  if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'peak', ARGV[6]) end\n"
	"  if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'allocated', ARGV[7]) end\n"
	"  if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'net', ARGV[8]) end\n"
	"elseif ARGV[2] ~= '' and redis.call('HEXISTS', KEYS[1], 'name') == 0 then\n"
	"  redis.call('HSET', KEYS[1], 'name', ARGV[2])\n"
	"end\n"
	"redis.call('HSET', KEYS[1], 'id', ARGV[1])\n"
	"redis.call('SADD', KEYS[2], ARGV[1])\n"
	"return redis.call('HGETALL', KEYS[1])\n";

/* KEYS: index. Deletes every record; returns how many there were. */
static const char lua_clear_all[] =
	"local ids = redis.call('SMEMBERS', KEYS[1])\n"
	"local n = 0\n"
	"for _, id in ipairs(ids) do\n"
	"  n = n + redis.call('DEL', ARGV[1] .. id)\n"
	"end\n"
	"redis.call('DEL', KEYS[1])\n"
	"return n\n";

/* A message that may be cut short: through a va_list, so the compiler does
 * not warn about truncation that is wanted. */
static void __attribute__((format(printf, 3, 4)))
set_msg(char *dst, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, len, fmt, ap);
	va_end(ap);
}

static void rd_drop(struct mf_qstore *s, const char *why)
{
	char tmp[256];

	/* why may point into s->err or s->rc, both about to change. */
	snprintf(tmp, sizeof(tmp), "%s", why);
	set_msg(s->degraded, sizeof(s->degraded), "cannot reach %s: %s", s->desc, tmp);
	if (s->rc != NULL) {
		redisFree(s->rc);
		s->rc = NULL;
	}
}

/*
 * hiredis writes with write(2): a connection Redis has closed (restart,
 * idle timeout) raises SIGPIPE, whose default action would kill a
 * long-lived caller such as the supervisor. A library must not change the
 * process's signal dispositions, so SIGPIPE is blocked in this thread for
 * the duration of a command and one raised meanwhile is consumed (the
 * write then fails with EPIPE, which is handled as a lost connection).
 */
struct pipe_guard {
	sigset_t old;
	bool was_pending;
};

static void pipe_guard_begin(struct pipe_guard *g)
{
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	g->was_pending = sigismember(&pending, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void pipe_guard_end(struct pipe_guard *g)
{
	sigset_t set, pending;
	const struct timespec zero = {0, 0};

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	if (!g->was_pending && sigismember(&pending, SIGPIPE) == 1)
		while (sigtimedwait(&set, NULL, &zero) == -1 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* Run a command; NULL after dropping the connection (I/O error, timeout)
 * or after an error reply (message in s->err). */
static redisReply *rd_cmd(struct mf_qstore *s, int argc, const char **argv, const size_t *lens)
{
	struct pipe_guard g;
	redisReply *r;

	pipe_guard_begin(&g);
	r = redisCommandArgv(s->rc, argc, argv, lens);
	pipe_guard_end(&g);

	if (r == NULL) {
		rd_drop(s, s->rc->errstr[0] != '\0' ? s->rc->errstr : "no reply");
		snprintf(s->err, sizeof(s->err), "%s", s->degraded);
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(s->err, sizeof(s->err), "%s answered %s to %s", s->desc, r->str, argv[0]);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

static int rd_sync_pending(struct mf_qstore *s);

/* Connected, authenticated, database selected, local deaths pushed: 0.
 * Otherwise -EHOSTUNREACH with s->degraded set. */
static int rd_ready(struct mf_qstore *s)
{
	struct timeval tv = {s->timeout_ms / 1000, (s->timeout_ms % 1000) * 1000};
	redisReply *r;
	char db[16];

	if (s->rc != NULL)
		return 0;
	s->rc = redisConnectWithTimeout(s->host, s->port, tv);
	if (s->rc == NULL) {
		rd_drop(s, "out of memory");
		return -EHOSTUNREACH;
	}
	if (s->rc->err != 0) {
		rd_drop(s, s->rc->errstr);
		return -EHOSTUNREACH;
	}
	if (redisSetTimeout(s->rc, tv) != REDIS_OK) {
		rd_drop(s, "cannot set the command timeout");
		return -EHOSTUNREACH;
	}
	if (s->pass[0] != '\0') {
		const char *av[] = {"AUTH", s->user, s->pass};
		int ac = s->user[0] != '\0' ? 3 : 2;
		if (ac == 2)
			av[1] = s->pass;
		r = rd_cmd(s, ac, av, NULL);
		if (r == NULL) {
			rd_drop(s, s->err);
			return -EHOSTUNREACH;
		}
		freeReplyObject(r);
	}
	if (s->dbnum != 0) {
		const char *av[] = {"SELECT", db};
		snprintf(db, sizeof(db), "%d", s->dbnum);
		r = rd_cmd(s, 2, av, NULL);
		if (r == NULL) {
			rd_drop(s, s->err);
			return -EHOSTUNREACH;
		}
		freeReplyObject(r);
	}
	s->degraded[0] = '\0';
	rd_sync_pending(s);
	return s->rc != NULL ? 0 : -EHOSTUNREACH;
}

/* HGETALL reply -> record; -ENOENT for an empty hash. */
static int rd_parse_record(const redisReply *rep, const char *id, struct mf_quarantine_record *r)
{
	record_init(r);
	snprintf(r->id, sizeof(r->id), "%s", id);
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0)
		return -ENOENT;
	for (size_t i = 0; i + 1 < rep->elements; i += 2) {
		const redisReply *k = rep->element[i], *v = rep->element[i + 1];
		const char *f, *val;
		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			continue;
		f = k->str;
		val = v->str;
		if (strcmp(f, "name") == 0)
			snprintf(r->name, sizeof(r->name), "%s", val);
		else if (strcmp(f, "host") == 0)
			snprintf(r->host, sizeof(r->host), "%s", val);
		else if (strcmp(f, "deaths") == 0)
			r->deaths = strtoull(val, NULL, 10);
		else if (strcmp(f, "threshold") == 0)
			r->threshold = (uint32_t)strtoul(val, NULL, 10);
		else if (strcmp(f, "first_death_ms") == 0)
			r->first_death_ms = strtoll(val, NULL, 10);
		else if (strcmp(f, "last_death_ms") == 0)
			r->last_death_ms = strtoll(val, NULL, 10);
		else if (strcmp(f, "cause") == 0 && mf_quarantine_cause_parse(val, &r->cause) != 0)
			r->cause = MF_QCAUSE_UNKNOWN;
		else if (strcmp(f, "peak") == 0)
			r->peak = strtoull(val, NULL, 10);
		else if (strcmp(f, "allocated") == 0)
			r->allocated = strtoull(val, NULL, 10);
		else if (strcmp(f, "net") == 0)
			r->net = strtoull(val, NULL, 10);
	}
	if (r->threshold == 0 || r->threshold > MF_QUARANTINE_THRESHOLD_MAX)
		r->threshold = MF_QUARANTINE_THRESHOLD_DEFAULT;
	record_finish(r);
	return 0;
}

static void figure_arg(char *buf, size_t len, uint64_t v)
{
	if (v == MF_QUARANTINE_UNKNOWN)
		buf[0] = '\0';
	else
		snprintf(buf, len, "%" PRIu64, v);
}

/* 0 and the record; -EHOSTUNREACH (connection lost: s->degraded), or
 * -EIO for an error reply. */
static int rd_record(struct mf_qstore *s, const struct mf_quarantine_death *d, const char *token,
		     struct mf_quarantine_record *out)
{
	char key[sizeof(MF_Q_KEY_RECORD) + MF_QUARANTINE_ID_MAX], tkey[sizeof(MF_Q_KEY_SYNC) + 40];
	char at[24], peak[24], alloc[24], net[24], thr[16], ttl[16];
	const char *av[] = {"EVAL", lua_record, "3", key, MF_Q_KEY_INDEX, tkey,
			    d->id, d->name != NULL ? d->name : "", d->host != NULL ? d->host : "",
			    at, mf_quarantine_cause_name(d->cause), peak, alloc, net, thr, ttl};
	redisReply *r;
	int rc;

	snprintf(key, sizeof(key), MF_Q_KEY_RECORD "%s", d->id);
	snprintf(tkey, sizeof(tkey), MF_Q_KEY_SYNC "%s", token);
	snprintf(at, sizeof(at), "%" PRId64, d->at_ms);
	figure_arg(peak, sizeof(peak), d->peak);
	figure_arg(alloc, sizeof(alloc), d->allocated);
	figure_arg(net, sizeof(net), d->net);
	snprintf(thr, sizeof(thr), "%u", d->threshold);
	snprintf(ttl, sizeof(ttl), "%d", MF_Q_TOKEN_TTL);
	r = rd_cmd(s, (int)(sizeof(av) / sizeof(av[0])), av, NULL);
	if (r == NULL)
		return s->rc == NULL ? -EHOSTUNREACH : -EIO;
	rc = rd_parse_record(r, d->id, out);
	freeReplyObject(r);
	if (rc != 0) {
		/* Only a replayed token can see no record: counted before, and
		 * the record cleared since. */
		snprintf(s->err, sizeof(s->err), "%s has no record of '%s' after counting a death",
			 s->desc, d->id);
		return -ENOENT;
	}
	return 0;
}

/* Push every death kept locally, oldest first, each once. Stops at the
 * first failure (the rest stay pending). */
static int rd_sync_pending(struct mf_qstore *s)
{
	static const char sql[] = "SELECT seq, token, id, name, host, cause, at_ms, peak, allocated, net,"
				  " threshold FROM pending ORDER BY seq LIMIT 1";
	for (;;) {
		sqlite3_stmt *st;
		struct mf_quarantine_death d;
		struct mf_quarantine_record r;
		char token[80], id[MF_QUARANTINE_ID_MAX + 1], name[MF_QUARANTINE_NAME_MAX + 1];
		char host[MF_QUARANTINE_HOST_MAX + 1], cause[32], del[64];
		int64_t seq;
		int rc, step;

		if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
			return sq_fail(s, "reading deaths kept locally");
		step = sqlite3_step(st);
		if (step != SQLITE_ROW) {
			rc = step == SQLITE_DONE ? 0 : sq_fail(s, "reading deaths kept locally");
			sqlite3_finalize(st);
			return rc;
		}
		memset(&d, 0, sizeof(d));
		seq = sqlite3_column_int64(st, 0);
		column_text(st, 1, token, sizeof(token));
		column_text(st, 2, id, sizeof(id));
		column_text(st, 3, name, sizeof(name));
		column_text(st, 4, host, sizeof(host));
		column_text(st, 5, cause, sizeof(cause));
		d.id = id;
		d.name = name;
		d.host = host;
		if (mf_quarantine_cause_parse(cause, &d.cause) != 0)
			d.cause = MF_QCAUSE_UNKNOWN;
		d.at_ms = sqlite3_column_int64(st, 6);
		d.peak = column_figure(st, 7);
		d.allocated = column_figure(st, 8);
		d.net = column_figure(st, 9);
		d.threshold = (uint32_t)sqlite3_column_int64(st, 10);
		sqlite3_finalize(st);

		rc = rd_record(s, &d, token, &r);
		if (rc != 0 && rc != -ENOENT)
			return rc;
		snprintf(del, sizeof(del), "DELETE FROM pending WHERE seq = %lld", (long long)seq);
		rc = sq_exec(s, "BEGIN IMMEDIATE", "marking a death as sent");
		if (rc == 0)
			rc = sq_exec(s, del, "marking a death as sent");
		if (rc == 0 && r.deaths != 0)
			rc = sq_put(s, &r);
		else if (rc == 0)
			sq_forget_copy(s, id);
		if (rc != 0) {
			sq_rollback(s);
			return rc;
		}
		rc = sq_exec(s, "COMMIT", "marking a death as sent");
		if (rc != 0)
			return rc;
		s->synced++;
	}
}

static int rd_get(struct mf_qstore *s, const char *id, struct mf_quarantine_record *out)
{
	char key[sizeof(MF_Q_KEY_RECORD) + MF_QUARANTINE_ID_MAX];
	const char *av[] = {"HGETALL", key};
	redisReply *r;
	int rc;

	snprintf(key, sizeof(key), MF_Q_KEY_RECORD "%s", id);
	r = rd_cmd(s, 2, av, NULL);
	if (r == NULL)
		return s->rc == NULL ? -EHOSTUNREACH : -EIO;
	rc = rd_parse_record(r, id, out);
	freeReplyObject(r);
	if (rc == -ENOENT)
		snprintf(s->err, sizeof(s->err), "no quarantine record for id '%s'", id);
	return rc;
}

static int cmp_last_death(const void *a, const void *b)
{
	const struct mf_quarantine_record *x = a, *y = b;

	if (x->last_death_ms != y->last_death_ms)
		return x->last_death_ms > y->last_death_ms ? -1 : 1;
	return strcmp(x->id, y->id);
}

static int rd_list(struct mf_qstore *s, int (*fn)(const struct mf_quarantine_record *, void *),
		   void *arg)
{
	const char *av[] = {"SMEMBERS", MF_Q_KEY_INDEX};
	struct mf_quarantine_record *recs = NULL;
	redisReply *ids, *r;
	size_t n = 0;
	int rc = 0;

	ids = rd_cmd(s, 2, av, NULL);
	if (ids == NULL)
		return s->rc == NULL ? -EHOSTUNREACH : -EIO;
	if (ids->type != REDIS_REPLY_ARRAY)
		goto out;
	recs = calloc(ids->elements + 1, sizeof(*recs));
	if (recs == NULL) {
		rc = -ENOMEM;
		snprintf(s->err, sizeof(s->err), "out of memory listing %zu records", ids->elements);
		goto out;
	}
	/* Pipelined: one round trip per batch, not per record. */
	for (size_t i = 0; i < ids->elements; i++)
		redisAppendCommand(s->rc, "HGETALL " MF_Q_KEY_RECORD "%b", ids->element[i]->str,
				   ids->element[i]->len);
	for (size_t i = 0; i < ids->elements; i++) {
		struct pipe_guard g;
		void *vr;
		int got;

		pipe_guard_begin(&g);
		got = redisGetReply(s->rc, &vr);
		pipe_guard_end(&g);
		if (got != REDIS_OK) {
			rd_drop(s, s->rc->errstr);
			snprintf(s->err, sizeof(s->err), "%s", s->degraded);
			rc = -EHOSTUNREACH;
			goto out;
		}
		r = vr;
		/* A record cleared since SMEMBERS: skip it. */
		if (rd_parse_record(r, ids->element[i]->str, &recs[n]) == 0)
			n++;
		freeReplyObject(r);
	}
	qsort(recs, n, sizeof(*recs), cmp_last_death);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = fn(&recs[i], arg);
out:
	free(recs);
	freeReplyObject(ids);
	return rc;
}

static int rd_put(struct mf_qstore *s, const struct mf_quarantine_record *rec)
{
	char key[sizeof(MF_Q_KEY_RECORD) + MF_QUARANTINE_ID_MAX];
	char deaths[24], thr[16], first[24], last[24], peak[24], alloc[24], net[24];
	const char *hset[] = {"HSET", key, "id", rec->id, "name", rec->name, "host", rec->host,
			      "deaths", deaths, "threshold", thr, "first_death_ms", first,
			      "last_death_ms", last, "cause", mf_quarantine_cause_name(rec->cause),
			      "peak", peak, "allocated", alloc, "net", net};
	const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"}, *del[] = {"DEL", key};
	const char *sadd[] = {"SADD", MF_Q_KEY_INDEX, rec->id};
	int n = (int)(sizeof(hset) / sizeof(hset[0]));
	redisReply *r;

	snprintf(key, sizeof(key), MF_Q_KEY_RECORD "%s", rec->id);
	snprintf(deaths, sizeof(deaths), "%" PRIu64, rec->deaths);
	snprintf(thr, sizeof(thr), "%u", rec->threshold);
	snprintf(first, sizeof(first), "%" PRId64, rec->first_death_ms);
	snprintf(last, sizeof(last), "%" PRId64, rec->last_death_ms);
	figure_arg(peak, sizeof(peak), rec->peak);
	figure_arg(alloc, sizeof(alloc), rec->allocated);
	figure_arg(net, sizeof(net), rec->net);
	/* Unknown figures are absent fields, not empty strings. */
	for (int i = 18; i < n; i += 2) {
		if (*hset[i + 1] == '\0') {
			memmove(&hset[i], &hset[i + 2], (size_t)(n - i - 2) * sizeof(hset[0]));
			n -= 2;
			i -= 2;
		}
	}
	const char **cmds[] = {multi, del, hset, sadd, exec};
	int argcs[] = {1, 2, n, 3, 1};
	for (size_t i = 0; i < 5; i++) {
		r = rd_cmd(s, argcs[i], cmds[i], NULL);
		if (r == NULL)
			return s->rc == NULL ? -EHOSTUNREACH : -EIO;
		freeReplyObject(r);
	}
	return 0;
}

static int rd_clear(struct mf_qstore *s, const char *id, long long *n)
{
	char key[sizeof(MF_Q_KEY_RECORD) + MF_QUARANTINE_ID_MAX];
	const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"}, *del[] = {"DEL", key};
	const char *srem[] = {"SREM", MF_Q_KEY_INDEX, id};
	const char **cmds[] = {multi, del, srem, exec};
	int argcs[] = {1, 2, 3, 1};
	redisReply *r;

	snprintf(key, sizeof(key), MF_Q_KEY_RECORD "%s", id);
	for (size_t i = 0; i < 4; i++) {
		r = rd_cmd(s, argcs[i], cmds[i], NULL);
		if (r == NULL)
			return s->rc == NULL ? -EHOSTUNREACH : -EIO;
		if (i == 3 && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
		    r->element[0]->type == REDIS_REPLY_INTEGER)
			*n = r->element[0]->integer;
		freeReplyObject(r);
	}
	return 0;
}

static int rd_clear_all(struct mf_qstore *s, long long *n)
{
	const char *av[] = {"EVAL", lua_clear_all, "1", MF_Q_KEY_INDEX, MF_Q_KEY_RECORD};
	redisReply *r = rd_cmd(s, 5, av, NULL);

	if (r == NULL)
		return s->rc == NULL ? -EHOSTUNREACH : -EIO;
	*n = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
	freeReplyObject(r);
	return 0;
}

/* ---- the handle ---- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int make_token(char *buf, size_t len)
{
	unsigned char raw[16];
	static const char hex[] = "0123456789abcdef";

	if (len < 33 || getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return -EIO;
	for (size_t i = 0; i < sizeof(raw); i++) {
		buf[2 * i] = hex[raw[i] >> 4];
		buf[2 * i + 1] = hex[raw[i] & 15];
	}
	buf[32] = '\0';
	return 0;
}

int mf_qstore_open(const char *spec, const struct mf_qstore_opts *o, struct mf_qstore **out,
		   char *err, size_t errlen)
{
	struct mf_qstore *s;
	const char *dir = (o != NULL && o->state_dir != NULL && *o->state_dir != '\0')
				  ? o->state_dir
				  : mf_quarantine_default_state_dir();
	const char *path = NULL;
	int rc, n;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->timeout_ms = (o != NULL && o->timeout_ms > 0) ? o->timeout_ms : MF_QUARANTINE_TIMEOUT_DEFAULT;

	if (spec == NULL || *spec == '\0') {
		s->kind = Q_SQLITE;
	} else if (strncmp(spec, "redis://", 8) == 0) {
		s->kind = Q_REDIS;
		rc = parse_redis_url(s, spec, err, errlen);
		if (rc != 0)
			goto fail;
	} else if (strncmp(spec, "sqlite:", 7) == 0) {
		s->kind = Q_SQLITE;
		path = spec + 7;
		if (strncmp(path, "//", 2) == 0)
			path += 2;
		if (*path == '\0') {
			snprintf(err, errlen, "invalid quarantine store '%s': no file after sqlite:", spec);
			rc = -EINVAL;
			goto fail;
		}
	} else if (strstr(spec, "://") != NULL || strncmp(spec, "redis:", 6) == 0) {
		snprintf(err, errlen,
			 "invalid quarantine store '%s': use a file path, sqlite:PATH or redis://HOST:PORT/DB%s",
			 spec, strncmp(spec, "rediss://", 9) == 0 ? " (TLS is not supported)" : "");
		rc = -EINVAL;
		goto fail;
	} else {
		s->kind = Q_SQLITE;
		path = spec;
	}
	if (path == NULL && o != NULL && o->local_path != NULL && *o->local_path != '\0')
		path = o->local_path;
	if (path != NULL)
		n = snprintf(s->path, sizeof(s->path), "%s", path);
	else
		n = snprintf(s->path, sizeof(s->path), "%s/%s", dir, MF_QUARANTINE_FILE);
	if (n >= (int)sizeof(s->path)) {
		snprintf(err, errlen, "quarantine file path too long");
		rc = -ENAMETOOLONG;
		goto fail;
	}
	if (s->kind == Q_SQLITE)
		snprintf(s->desc, sizeof(s->desc), "sqlite:%s", s->path);
	rc = sq_open(s);
	if (rc != 0) {
		snprintf(err, errlen, "%s", s->err);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	mf_qstore_close(s);
	return rc;
}

void mf_qstore_close(struct mf_qstore *s)
{
	if (s == NULL)
		return;
	if (s->rc != NULL)
		redisFree(s->rc);
	if (s->db != NULL)
		sqlite3_close(s->db);
	free(s);
}

const char *mf_qstore_describe(const struct mf_qstore *s)
{
	return s->desc;
}

bool mf_qstore_is_redis(const struct mf_qstore *s)
{
	return s->kind == Q_REDIS;
}

const char *mf_qstore_error(const struct mf_qstore *s)
{
	return s->err;
}

const char *mf_qstore_degraded(const struct mf_qstore *s)
{
	return s->degraded[0] != '\0' ? s->degraded : NULL;
}

uint64_t mf_qstore_synced(const struct mf_qstore *s)
{
	return s->synced;
}

static void begin_op(struct mf_qstore *s)
{
	s->err[0] = '\0';
	s->degraded[0] = '\0';
	s->synced = 0;
}

static int check_id(struct mf_qstore *s, const char *id)
{
	char why[128];

	if (mf_quarantine_id_check(id, why, sizeof(why)) != 0) {
		snprintf(s->err, sizeof(s->err), "invalid id: %s", why);
		return -EINVAL;
	}
	return 0;
}

int mf_qstore_record(struct mf_qstore *s, const struct mf_quarantine_death *din,
		     struct mf_quarantine_record *out)
{
	struct mf_quarantine_death d = *din;
	char token[40], why[128];
	int rc;

	begin_op(s);
	rc = check_id(s, d.id);
	if (rc != 0)
		return rc;
	if ((d.name != NULL && mf_quarantine_name_check(d.name, why, sizeof(why)) != 0) ||
	    (d.host != NULL &&
	     text_check("host", d.host, 0, MF_QUARANTINE_HOST_MAX, why, sizeof(why)) != 0)) {
		snprintf(s->err, sizeof(s->err), "invalid death record: %s", why);
		return -EINVAL;
	}
	if (d.threshold == 0)
		d.threshold = MF_QUARANTINE_THRESHOLD_DEFAULT;
	if (d.threshold > MF_QUARANTINE_THRESHOLD_MAX) {
		snprintf(s->err, sizeof(s->err), "threshold %u too large (at most %d)", d.threshold,
			 MF_QUARANTINE_THRESHOLD_MAX);
		return -EINVAL;
	}
	if (d.at_ms <= 0)
		d.at_ms = now_ms();
	if (s->kind == Q_SQLITE)
		return sq_record(s, &d, NULL, out);

	if (make_token(token, sizeof(token)) != 0) {
		snprintf(s->err, sizeof(s->err), "cannot draw a random token: %s", strerror(errno));
		return -EIO;
	}
	rc = rd_ready(s);
	if (rc == 0) {
		rc = rd_record(s, &d, token, out);
		if (rc == 0) {
			sq_refresh(s, out);
			return 0;
		}
		if (rc != -EHOSTUNREACH)
			set_msg(s->degraded, sizeof(s->degraded), "%s", s->err);
	}
	/* Unreachable, lost mid-command (perhaps after Redis counted it: the
	 * token makes the replay harmless), or refused (e.g. Redis over its
	 * maxmemory): a death is never dropped. */
	rc = sq_record(s, &d, token, out);
	return rc == 0 ? 1 : rc;
}

int mf_qstore_get(struct mf_qstore *s, const char *id, struct mf_quarantine_record *out)
{
	int rc;

	begin_op(s);
	rc = check_id(s, id);
	if (rc != 0)
		return rc;
	if (s->kind == Q_REDIS && rd_ready(s) == 0) {
		rc = rd_get(s, id, out);
		if (rc == 0) {
			sq_refresh(s, out);
			return 0;
		}
		if (rc == -ENOENT) {
			/* Cleared elsewhere: drop the stale local copy too. */
			sq_forget_copy(s, id);
			snprintf(s->err, sizeof(s->err), "no quarantine record for id '%s'", id);
			return -ENOENT;
		}
		if (rc != -EHOSTUNREACH)
			return rc;
	}
	return sq_get(s, id, out);
}

int mf_qstore_list(struct mf_qstore *s, int (*fn)(const struct mf_quarantine_record *, void *),
		   void *arg)
{
	int rc;

	begin_op(s);
	if (s->kind == Q_REDIS && rd_ready(s) == 0) {
		rc = rd_list(s, fn, arg);
		if (rc != -EHOSTUNREACH)
			return rc;
	}
	return sq_list(s, fn, arg);
}

static int need_redis(struct mf_qstore *s, const char *what)
{
	if (rd_ready(s) == 0)
		return 0;
	set_msg(s->err, sizeof(s->err), "%s; nothing %s", s->degraded, what);
	return -EHOSTUNREACH;
}

int mf_qstore_clear(struct mf_qstore *s, const char *id)
{
	long long n = 0;
	int rc, changed = 0;

	begin_op(s);
	rc = check_id(s, id);
	if (rc != 0)
		return rc;
	if (s->kind == Q_REDIS) {
		rc = need_redis(s, "cleared");
		if (rc == 0)
			rc = rd_clear(s, id, &n);
		if (rc != 0)
			return rc;
	}
	rc = sq_exec(s, "BEGIN IMMEDIATE", "clearing a record");
	if (rc == 0)
		rc = sq_delete(s, id, &changed);
	if (rc != 0) {
		sq_rollback(s);
		return rc;
	}
	rc = sq_exec(s, "COMMIT", "clearing a record");
	if (rc != 0)
		return rc;
	if ((s->kind == Q_REDIS ? n : changed) == 0) {
		snprintf(s->err, sizeof(s->err), "no quarantine record for id '%s'", id);
		return -ENOENT;
	}
	return 0;
}

int mf_qstore_clear_all(struct mf_qstore *s, uint64_t *count)
{
	long long n = 0;
	int rc;

	begin_op(s);
	if (s->kind == Q_REDIS) {
		rc = need_redis(s, "cleared");
		if (rc == 0)
			rc = rd_clear_all(s, &n);
		if (rc != 0)
			return rc;
	}
	rc = sq_exec(s, "BEGIN IMMEDIATE", "clearing all records");
	if (rc != 0)
		return rc;
	if (s->kind == Q_SQLITE) {
		int r2;
		n = sq_pragma_int(s, "SELECT count(*) FROM quarantine", &r2);
		rc = r2;
	}
	if (rc == 0)
		rc = sq_exec(s, "DELETE FROM quarantine; DELETE FROM pending;", "clearing all records");
	if (rc != 0) {
		sq_rollback(s);
		return rc;
	}
	*count = (uint64_t)n;
	return sq_exec(s, "COMMIT", "clearing all records");
}

int mf_qstore_put(struct mf_qstore *s, const struct mf_quarantine_record *rin)
{
	struct mf_quarantine_record r = *rin;
	int rc;

	begin_op(s);
	rc = check_id(s, r.id);
	if (rc != 0)
		return rc;
	if (r.threshold == 0 || r.threshold > MF_QUARANTINE_THRESHOLD_MAX)
		r.threshold = MF_QUARANTINE_THRESHOLD_DEFAULT;
	record_finish(&r);
	if (s->kind == Q_REDIS) {
		rc = need_redis(s, "imported");
		if (rc == 0)
			rc = rd_put(s, &r);
		if (rc != 0)
			return rc;
	}
	rc = sq_exec(s, "BEGIN IMMEDIATE", "importing a record");
	if (rc == 0) {
		int changed;
		/* An import replaces: drop deaths pending for this id first. */
		rc = sq_delete(s, r.id, &changed);
		if (rc == 0)
			rc = sq_put(s, &r);
		if (rc != 0) {
			sq_rollback(s);
			return rc;
		}
		rc = sq_exec(s, "COMMIT", "importing a record");
	}
	return rc;
}

int mf_qstore_sync(struct mf_qstore *s, uint64_t *pushed)
{
	int rc;

	begin_op(s);
	*pushed = 0;
	if (s->kind == Q_SQLITE)
		return 0;
	rc = need_redis(s, "sent");
	if (rc == 0) {
		/* rd_ready pushed what was pending when it connected; push
		 * anything recorded since by other processes. */
		rc = rd_sync_pending(s);
		if (rc == -EHOSTUNREACH)
			snprintf(s->err, sizeof(s->err), "%s", s->degraded);
	}
	*pushed = s->synced;
	return rc;
}
