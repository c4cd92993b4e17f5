/*
 * quarantine.c - the poison-task quarantine store's API: the store a spec
 * names, the handle, and each action dispatched to SQLite (qsqlite.c) or
 * Redis (qredis.c); qstore.h says what lives where.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base/envspec.h"
#include "host/options.h"
#include "store/qstore.h"

/* ---- paths and specs ---- */

const char *mf_quarantine_default_state_dir(void)
{
	static char buf[PATH_MAX];
	const char *v = getenv(MF_ENV(STATE_DIR));

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

int mf_quarantine_ttl_parse(const char *s, int64_t *ms)
{
	uint64_t v;

	if (strcmp(s, "off") == 0) {
		*ms = 0;
		return 0;
	}
	if (mf_duration_parse(s, &v) != 0 || v < 1000)
		return -EINVAL;
	*ms = (int64_t)v;
	return 0;
}

/* Whether r has outlived the store's time to live. */
static bool expired(const struct mf_qstore *s, const struct mf_quarantine_record *r)
{
	return s->ttl_ms > 0 && r->last_death_ms < now_ms() - s->ttl_ms;
}

/* The store spec names, into s (its kind, Redis' address, the file), without
 * touching it: 0, or -errno with the reason in err (bad spec: -EINVAL). */
static int spec_parse(struct mf_qstore *s, const char *spec, const struct mf_qstore_opts *o,
		      char *err, size_t errlen)
{
	const char *dir = (o != NULL && o->state_dir != NULL && *o->state_dir != '\0')
				  ? o->state_dir
				  : mf_quarantine_default_state_dir();
	const char *path = NULL;
	int rc, n;

	const char *ttl = o != NULL && o->ttl != NULL ? o->ttl : getenv(MF_QUARANTINE_TTL_ENV);

	s->timeout_ms = (o != NULL && o->timeout_ms > 0) ? o->timeout_ms : MF_QUARANTINE_TIMEOUT_DEFAULT;
	if (ttl == NULL || *ttl == '\0')
		ttl = MF_QUARANTINE_TTL_DEFAULT;
	if (mf_quarantine_ttl_parse(ttl, &s->ttl_ms) != 0) {
		snprintf(err, errlen, "invalid quarantine time to live '%.40s' (%s, --quarantine-ttl): "
			 "a duration of at least 1s (7d, 12h) or off", ttl, MF_QUARANTINE_TTL_ENV);
		return -EINVAL;
	}
	if (spec == NULL || *spec == '\0') {
		s->kind = Q_SQLITE;
	} else if (strncmp(spec, "redis://", 8) == 0) {
		s->kind = Q_REDIS;
		rc = mf_qredis_parse_url(s, spec, err, errlen);
		if (rc != 0)
			return rc;
	} else if (strncmp(spec, "sqlite:", 7) == 0) {
		s->kind = Q_SQLITE;
		path = spec + 7;
		if (strncmp(path, "//", 2) == 0)
			path += 2;
		if (*path == '\0') {
			snprintf(err, errlen, "invalid quarantine store '%s': no file after sqlite:", spec);
			return -EINVAL;
		}
	} else if (strstr(spec, "://") != NULL || strncmp(spec, "redis:", 6) == 0) {
		snprintf(err, errlen,
			 "invalid quarantine store '%s': use a file path, sqlite:PATH or redis://HOST:PORT/DB%s",
			 spec, strncmp(spec, "rediss://", 9) == 0 ? " (TLS is not supported)" : "");
		return -EINVAL;
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
		return -ENAMETOOLONG;
	}
	if (s->kind == Q_SQLITE)
		snprintf(s->desc, sizeof(s->desc), "sqlite:%s", s->path);
	return 0;
}

int mf_qstore_open(const char *spec, const struct mf_qstore_opts *o, struct mf_qstore **out,
		   char *err, size_t errlen)
{
	struct mf_qstore *s;
	int rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = spec_parse(s, spec, o, err, errlen);
	if (rc != 0)
		goto fail;
	rc = mf_qlib_load(s->kind == Q_REDIS, err, errlen);
	if (rc != 0)
		goto fail;
	rc = mf_qsql_open(s);
	if (rc != 0) {
		snprintf(err, errlen, "%s", s->err);
		goto fail;
	}
	if (s->ttl_ms > 0)
		mf_qsql_expire(s, now_ms() - s->ttl_ms);
	*out = s;
	return 0;
fail:
	mf_qstore_close(s);
	return rc;
}

/* A store that spec names, parsed and not opened (spec_parse), or NULL
 * with *rc and err. */
static struct mf_qstore *spec_only(const char *spec, const struct mf_qstore_opts *o, int *rc,
				   char *err, size_t errlen)
{
	struct mf_qstore *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		*rc = -ENOMEM;
		return NULL;
	}
	*rc = spec_parse(s, spec, o, err, errlen);
	if (*rc != 0) {
		mf_qstore_close(s);
		return NULL;
	}
	return s;
}

int mf_qstore_spec_check(const char *spec, const struct mf_qstore_opts *o, char *err,
			 size_t errlen)
{
	int rc;
	struct mf_qstore *s = spec_only(spec, o, &rc, err, errlen);

	if (s != NULL && (rc = mf_qsql_check_file(s)) != 0)
		snprintf(err, errlen, "%s", s->err);
	mf_qstore_close(s);
	return rc;
}

int mf_qstore_spec_file(const char *spec, const struct mf_qstore_opts *o, char *buf, size_t len,
			char *err, size_t errlen)
{
	int rc;
	struct mf_qstore *s = spec_only(spec, o, &rc, err, errlen);

	if (s == NULL)
		return rc;
	rc = s->kind == Q_SQLITE;
	if (rc && snprintf(buf, len, "%s", s->path) >= (int)len) {
		snprintf(err, errlen, "quarantine file path too long");
		rc = -ENAMETOOLONG;
	}
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
	     mf_qrecord_text_check("host", d.host, 0, MF_QUARANTINE_HOST_MAX, why, sizeof(why)) != 0)) {
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
	/* An expired record's deaths count no more: gone before this one. */
	if (s->ttl_ms > 0)
		mf_qsql_expire(s, now_ms() - s->ttl_ms);
	if (s->kind == Q_SQLITE)
		return mf_qsql_record(s, &d, NULL, out);

	if (make_token(token, sizeof(token)) != 0) {
		snprintf(s->err, sizeof(s->err), "cannot draw a random token: %s", strerror(errno));
		return -EIO;
	}
	rc = mf_qredis_ready(s);
	if (rc == 0) {
		rc = mf_qredis_record(s, &d, token, out);
		if (rc == 0 && s->ttl_ms > 0)
			mf_qredis_expire(s, out);
		if (rc == 0) {
			mf_qsql_refresh(s, out);
			return 0;
		}
		if (rc != -EHOSTUNREACH)
			mf_qmsg(s->degraded, sizeof(s->degraded), "%s", s->err);
	}
	/* Unreachable, lost mid-command (perhaps after Redis counted it: the
	 * token makes the replay harmless), or refused (e.g. Redis over its
	 * maxmemory): a death is never dropped. */
	rc = mf_qsql_record(s, &d, token, out);
	return rc == 0 ? 1 : rc;
}

static int get_record(struct mf_qstore *s, const char *id, struct mf_quarantine_record *out)
{
	int rc;

	rc = check_id(s, id);
	if (rc != 0)
		return rc;
	if (s->kind == Q_REDIS && mf_qredis_ready(s) == 0) {
		rc = mf_qredis_get(s, id, out);
		if (rc == 0) {
			mf_qsql_refresh(s, out);
			return 0;
		}
		if (rc == -ENOENT) {
			/* Cleared elsewhere: drop the stale local copy too. */
			mf_qsql_forget_copy(s, id);
			snprintf(s->err, sizeof(s->err), "no quarantine record for id '%s'", id);
			return -ENOENT;
		}
		if (rc != -EHOSTUNREACH)
			return rc;
	}
	return mf_qsql_get(s, id, out);
}

int mf_qstore_get(struct mf_qstore *s, const char *id, struct mf_quarantine_record *out)
{
	int rc;

	begin_op(s);
	rc = get_record(s, id, out);
	/* Not deleted yet (the store was opened before it expired, or its
	 * Redis key outlived the local clock by a moment): gone all the same. */
	if (rc == 0 && expired(s, out)) {
		snprintf(s->err, sizeof(s->err), "no quarantine record for id '%s' (expired)", id);
		return -ENOENT;
	}
	return rc;
}

struct live_walk {
	const struct mf_qstore *s;
	int (*fn)(const struct mf_quarantine_record *r, void *arg);
	void *arg;
};

static int live_only(const struct mf_quarantine_record *r, void *arg)
{
	struct live_walk *w = arg;

	return expired(w->s, r) ? 0 : w->fn(r, w->arg);
}

int mf_qstore_list(struct mf_qstore *s, int (*fn)(const struct mf_quarantine_record *, void *),
		   void *arg)
{
	struct live_walk w = {s, fn, arg};
	int rc;

	begin_op(s);
	if (s->kind == Q_REDIS && mf_qredis_ready(s) == 0) {
		rc = mf_qredis_list(s, live_only, &w);
		if (rc != -EHOSTUNREACH)
			return rc;
	}
	return mf_qsql_list(s, live_only, &w);
}

static int need_redis(struct mf_qstore *s, const char *what)
{
	if (mf_qredis_ready(s) == 0)
		return 0;
	mf_qmsg(s->err, sizeof(s->err), "%s; nothing %s", s->degraded, what);
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
			rc = mf_qredis_clear(s, id, &n);
		if (rc != 0)
			return rc;
	}
	rc = mf_qsql_exec(s, "BEGIN IMMEDIATE", "clearing a record");
	if (rc == 0)
		rc = mf_qsql_delete(s, id, &changed);
	if (rc != 0) {
		mf_qsql_rollback(s);
		return rc;
	}
	rc = mf_qsql_exec(s, "COMMIT", "clearing a record");
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
			rc = mf_qredis_clear_all(s, &n);
		if (rc != 0)
			return rc;
	}
	rc = mf_qsql_exec(s, "BEGIN IMMEDIATE", "clearing all records");
	if (rc != 0)
		return rc;
	if (s->kind == Q_SQLITE) {
		int r2;
		n = mf_qsql_pragma_int(s, "SELECT count(*) FROM quarantine", &r2);
		rc = r2;
	}
	if (rc == 0)
		rc = mf_qsql_exec(s, "DELETE FROM quarantine; DELETE FROM pending;", "clearing all records");
	if (rc != 0) {
		mf_qsql_rollback(s);
		return rc;
	}
	*count = (uint64_t)n;
	return mf_qsql_exec(s, "COMMIT", "clearing all records");
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
	mf_qrecord_finish(&r);
	if (s->kind == Q_REDIS) {
		rc = need_redis(s, "imported");
		if (rc == 0)
			rc = mf_qredis_put(s, &r);
		if (rc == 0 && s->ttl_ms > 0)
			mf_qredis_expire(s, &r);
		if (rc != 0)
			return rc;
	}
	rc = mf_qsql_exec(s, "BEGIN IMMEDIATE", "importing a record");
	if (rc == 0) {
		int changed;
		/* An import replaces: drop deaths pending for this id first. */
		rc = mf_qsql_delete(s, r.id, &changed);
		if (rc == 0)
			rc = mf_qsql_put(s, &r);
		if (rc != 0) {
			mf_qsql_rollback(s);
			return rc;
		}
		rc = mf_qsql_exec(s, "COMMIT", "importing a record");
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
		/* mf_qredis_ready pushed what was pending when it connected; push
		 * anything recorded since by other processes. */
		rc = mf_qredis_sync_pending(s);
		if (rc == -EHOSTUNREACH)
			snprintf(s->err, sizeof(s->err), "%s", s->degraded);
	}
	*pushed = s->synced;
	return rc;
}

json_t *mf_qstore_answer(const struct mf_qstore *s)
{
	const char *deg = mf_qstore_degraded(s);

	return json_pack("{s:s, s:s, s:o}", "store", mf_qstore_describe(s), "source",
			 deg != NULL ? "local" : (mf_qstore_is_redis(s) ? "redis" : "sqlite"),
			 "degraded", deg != NULL ? json_string(deg) : json_null());
}

int mf_qstore_check(struct mf_qstore *s, const char *id, uint32_t threshold,
		    struct mf_quarantine_record *r, bool *quarantined)
{
	int rc = mf_qstore_get(s, id, r);

	*quarantined = false;
	if (rc == -ENOENT) {
		memset(r, 0, sizeof(*r));
		snprintf(r->id, sizeof(r->id), "%s", id);
		return 0;
	}
	if (rc != 0)
		return rc;
	*quarantined = mf_quarantine_is_quarantined(r, threshold);
	return 1;
}

json_t *mf_qstore_check_answer(const struct mf_qstore *s, const struct mf_quarantine_record *r,
			       int found, bool quarantined)
{
	json_t *o = mf_qstore_answer(s);

	json_object_set_new(o, "id", json_string(r->id));
	json_object_set_new(o, "quarantined", json_boolean(quarantined));
	json_object_set_new(o, "deaths", json_integer((json_int_t)r->deaths));
	json_object_set_new(o, "record", found ? mf_quarantine_to_json(r) : json_null());
	return o;
}

json_t *mf_qstore_record_answer(const struct mf_qstore *s, const struct mf_quarantine_record *r,
				int rc)
{
	json_t *o = mf_qstore_answer(s);

	json_object_set_new(o, "synced", json_boolean(rc == 0));
	json_object_set_new(o, "quarantined", json_boolean(r->state == MF_QSTATE_QUARANTINED));
	json_object_set_new(o, "record", mf_quarantine_to_json(r));
	return o;
}
