/*
 * qrecord.c - quarantine records without a store: cause and state names,
 * id and name checks, the quarantined rule, times, JSON.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/qstore.h"

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

int mf_qrecord_text_check(const char *what, const char *s, size_t min, size_t max, char *err,
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
	return mf_qrecord_text_check("id", id, 1, MF_QUARANTINE_ID_MAX, err, errlen);
}

int mf_quarantine_name_check(const char *name, char *err, size_t errlen)
{
	return mf_qrecord_text_check("name", name, 0, MF_QUARANTINE_NAME_MAX, err, errlen);
}

bool mf_quarantine_is_quarantined(const struct mf_quarantine_record *r, uint32_t threshold)
{
	uint32_t t = threshold != 0 ? threshold : r->threshold;

	if (t == 0)
		t = MF_QUARANTINE_THRESHOLD_DEFAULT;
	return r->deaths >= t;
}

void mf_qrecord_finish(struct mf_quarantine_record *r)
{
	if (r->threshold == 0)
		r->threshold = MF_QUARANTINE_THRESHOLD_DEFAULT;
	r->state = mf_quarantine_is_quarantined(r, 0) ? MF_QSTATE_QUARANTINED : MF_QSTATE_COUNTING;
}

void mf_qrecord_init(struct mf_quarantine_record *r)
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

	mf_qrecord_init(r);
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
	mf_qrecord_finish(r);
	return 0;
}

void mf_qmsg(char *dst, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, len, fmt, ap);
	va_end(ap);
}
