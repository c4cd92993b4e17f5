/*
 * qredis.c - the quarantine store on Redis, shared by a fleet; every action
 * also keeps the local SQLite copy (qsqlite.c).
 *
 * Redis: one hash per id (memfence:q:r:<id>), a set of ids
 * (memfence:q:index) for listing without KEYS/SCAN, and one short-lived key
 * per recorded death (memfence:q:sync:<token>) so that a death pushed twice
 * (sent, but the reply lost to a timeout, then replayed from the local
 * copy) counts once. A single-node Redis (or a primary) is assumed: the
 * scripts touch several keys, which Redis Cluster would refuse.
 */
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
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "store/qstore.h"

#define MF_Q_TOKEN_TTL (7 * 24 * 3600) /* s: longer than any Redis outage we replay */
#define MF_Q_KEY_RECORD MF_QUARANTINE_REDIS_PREFIX "r:"
#define MF_Q_KEY_INDEX MF_QUARANTINE_REDIS_PREFIX "index"
#define MF_Q_KEY_SYNC MF_QUARANTINE_REDIS_PREFIX "sync:"

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
int mf_qredis_parse_url(struct mf_qstore *s, const char *url, char *err, size_t errlen)
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

static void rd_drop(struct mf_qstore *s, const char *why)
{
	char tmp[256];

	/* why may point into s->err or s->rc, both about to change. */
	snprintf(tmp, sizeof(tmp), "%s", why);
	mf_qmsg(s->degraded, sizeof(s->degraded), "cannot reach %s: %s", s->desc, tmp);
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

/* Connected, authenticated, database selected, local deaths pushed: 0.
 * Otherwise -EHOSTUNREACH with s->degraded set. */
int mf_qredis_ready(struct mf_qstore *s)
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
	mf_qredis_sync_pending(s);
	return s->rc != NULL ? 0 : -EHOSTUNREACH;
}

/* HGETALL reply -> record; -ENOENT for an empty hash. */
static int rd_parse_record(const redisReply *rep, const char *id, struct mf_quarantine_record *r)
{
	mf_qrecord_init(r);
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
	mf_qrecord_finish(r);
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
int mf_qredis_record(struct mf_qstore *s, const struct mf_quarantine_death *d, const char *token,
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
int mf_qredis_sync_pending(struct mf_qstore *s)
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
			return mf_qsql_fail(s, "reading deaths kept locally");
		step = sqlite3_step(st);
		if (step != SQLITE_ROW) {
			rc = step == SQLITE_DONE ? 0 : mf_qsql_fail(s, "reading deaths kept locally");
			sqlite3_finalize(st);
			return rc;
		}
		memset(&d, 0, sizeof(d));
		seq = sqlite3_column_int64(st, 0);
		mf_qsql_column_text(st, 1, token, sizeof(token));
		mf_qsql_column_text(st, 2, id, sizeof(id));
		mf_qsql_column_text(st, 3, name, sizeof(name));
		mf_qsql_column_text(st, 4, host, sizeof(host));
		mf_qsql_column_text(st, 5, cause, sizeof(cause));
		d.id = id;
		d.name = name;
		d.host = host;
		if (mf_quarantine_cause_parse(cause, &d.cause) != 0)
			d.cause = MF_QCAUSE_UNKNOWN;
		d.at_ms = sqlite3_column_int64(st, 6);
		d.peak = mf_qsql_column_figure(st, 7);
		d.allocated = mf_qsql_column_figure(st, 8);
		d.net = mf_qsql_column_figure(st, 9);
		d.threshold = (uint32_t)sqlite3_column_int64(st, 10);
		sqlite3_finalize(st);

		rc = mf_qredis_record(s, &d, token, &r);
		if (rc != 0 && rc != -ENOENT)
			return rc;
		snprintf(del, sizeof(del), "DELETE FROM pending WHERE seq = %lld", (long long)seq);
		rc = mf_qsql_exec(s, "BEGIN IMMEDIATE", "marking a death as sent");
		if (rc == 0)
			rc = mf_qsql_exec(s, del, "marking a death as sent");
		if (rc == 0 && r.deaths != 0)
			rc = mf_qsql_put(s, &r);
		else if (rc == 0)
			mf_qsql_forget_copy(s, id);
		if (rc != 0) {
			mf_qsql_rollback(s);
			return rc;
		}
		rc = mf_qsql_exec(s, "COMMIT", "marking a death as sent");
		if (rc != 0)
			return rc;
		s->synced++;
	}
}

int mf_qredis_expire(struct mf_qstore *s, const struct mf_quarantine_record *rec)
{
	char key[sizeof(MF_Q_KEY_RECORD) + MF_QUARANTINE_ID_MAX], at[24];
	const char *av[] = {"PEXPIREAT", key, at};
	redisReply *r;

	snprintf(key, sizeof(key), MF_Q_KEY_RECORD "%s", rec->id);
	snprintf(at, sizeof(at), "%" PRId64, rec->last_death_ms + s->ttl_ms);
	r = rd_cmd(s, 3, av, NULL);
	if (r == NULL)
		return s->rc == NULL ? -EHOSTUNREACH : -EIO;
	freeReplyObject(r);
	return 0;
}

int mf_qredis_get(struct mf_qstore *s, const char *id, struct mf_quarantine_record *out)
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

int mf_qredis_list(struct mf_qstore *s, int (*fn)(const struct mf_quarantine_record *, void *),
		   void *arg)
{
	const char *av[] = {"SMEMBERS", MF_Q_KEY_INDEX};
	struct mf_quarantine_record *recs = NULL;
	const char **gone = NULL;
	size_t *gone_len = NULL;
	redisReply *ids, *r;
	size_t n = 0, ngone = 2;
	int rc = 0;

	ids = rd_cmd(s, 2, av, NULL);
	if (ids == NULL)
		return s->rc == NULL ? -EHOSTUNREACH : -EIO;
	if (ids->type != REDIS_REPLY_ARRAY)
		goto out;
	recs = calloc(ids->elements + 1, sizeof(*recs));
	gone = calloc(ids->elements + 2, sizeof(*gone));
	gone_len = calloc(ids->elements + 2, sizeof(*gone_len));
	if (recs == NULL || gone == NULL || gone_len == NULL) {
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
		/* A record cleared since SMEMBERS, or expired: skip it, and
		 * drop its id from the index, which does not expire. */
		if (rd_parse_record(r, ids->element[i]->str, &recs[n]) == 0)
			n++;
		else if (r->type == REDIS_REPLY_ARRAY && r->elements == 0) {
			gone[ngone] = ids->element[i]->str;
			gone_len[ngone++] = ids->element[i]->len;
		}
		freeReplyObject(r);
	}
	if (ngone > 2) {
		gone[0] = "SREM";
		gone[1] = MF_Q_KEY_INDEX;
		gone_len[0] = 4;
		gone_len[1] = strlen(MF_Q_KEY_INDEX);
		r = rd_cmd(s, (int)ngone, gone, gone_len);
		if (r != NULL)
			freeReplyObject(r);
	}
	qsort(recs, n, sizeof(*recs), cmp_last_death);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = fn(&recs[i], arg);
out:
	free(recs);
	free(gone);
	free(gone_len);
	freeReplyObject(ids);
	return rc;
}

int mf_qredis_put(struct mf_qstore *s, const struct mf_quarantine_record *rec)
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

int mf_qredis_clear(struct mf_qstore *s, const char *id, long long *n)
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

int mf_qredis_clear_all(struct mf_qstore *s, long long *n)
{
	const char *av[] = {"EVAL", lua_clear_all, "1", MF_Q_KEY_INDEX, MF_Q_KEY_RECORD};
	redisReply *r = rd_cmd(s, 5, av, NULL);

	if (r == NULL)
		return s->rc == NULL ? -EHOSTUNREACH : -EIO;
	*n = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
	freeReplyObject(r);
	return 0;
}
