/*
 * model_json.c - the model as JSON, so that it outlives the supervisor
 * (saved in the state directory) and `memfence diagnose` can read it after
 * the container died.
 *
 *   {"memfence_model": 1, "window_s": 10, "dropped": 0,
 *    "names": [{"name": "GET /a", "count": 41, "failed": 1,
 *               "peak": {"count": 41, "sum": ..., "max": ..., "b": [[idx, n], ...]},
 *               "retained": {...}, "retained_sum": 0, "recent": [..],
 *               "first_s": .., "last_s": .., "max_peak": .., "max_id": "..",
 *               "max_at_s": .., "max_failed": false}],
 *    "floors": [[t_s, floor, high, max_in_flight, load, load_n, load_top,
 *                ws_high, floor_load, gate_waited, gate_timed_out,
 *                gate_queue, gate_full_n], ...],
 *    "big": [{"name": .., "id": .., "peak": .., "net": .., "t_s": ..,
 *             "failed": false, "typical": .., "rule": "gate", "asked": ..,
 *             "need": ..}],
 *    "events": [{"t_s": .., "kind": "refused", "count": 3, "bytes": ..,
 *                "name": .., "id": ..}],
 *    "event_totals": {"refused": 3, "oom-kill": 0, ...},
 *    "gate": {"waited": 120, "timed_out": 0, "hist": [0, 4, ...]}}
 *
 * Buckets are written sparse (index, count). A reader refuses another
 * version and anything malformed, with the reason; it never trusts sizes.
 * Fields added since version 1 first came out (the last eight of a floor,
 * "big", "events", "event_totals", "gate", a big one's "rule", "asked" and
 * "need") may be absent: they read as zero.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/file.h"
#include "host/model.h"
#include "host/model_json.h"

void mf_model_path_for_segment(const char *segment, char *out, size_t len)
{
	const char *base = strrchr(segment, '/');
	size_t n = strlen(segment);

	base = base ? base + 1 : segment;
	if (strcmp(base, "segment.seg") == 0)
		snprintf(out, len, "%.*s%s", (int)(base - segment), segment, MF_MODEL_FILE);
	else if (n > 4 && strcmp(segment + n - 4, ".seg") == 0)
		snprintf(out, len, "%.*s.model.json", (int)(n - 4), segment);
	else
		snprintf(out, len, "%s.model.json", segment);
}

static json_t *dist_json(const struct mf_dist *d)
{
	json_t *b = json_array();

	for (unsigned i = 0; i < MF_DIST_BUCKETS; i++)
		if (d->b[i])
			json_array_append_new(b, json_pack("[iI]", (int)i, (json_int_t)d->b[i]));
	return json_pack("{sIsIsIso}", "count", (json_int_t)d->count, "sum", (json_int_t)d->sum,
			 "max", (json_int_t)d->max, "b", b);
}

json_t *mf_model_json(const struct mf_model *m)
{
	json_t *names = json_array(), *floors = json_array();

	for (uint32_t i = 0; i < m->nnames; i++) {
		const struct mf_model_name *n = &m->names[i];
		json_t *recent = json_array();
		/* Oldest first, so a reader can append in order. */
		for (uint32_t k = 0; k < n->nrecent; k++) {
			uint32_t at = (n->recent_pos + MF_MODEL_RECENT - n->nrecent + k) % MF_MODEL_RECENT;
			json_array_append_new(recent, json_integer(n->recent[at]));
		}
		json_array_append_new(
			names, json_pack("{sssIsIsosos IsosIsIsIsssIsb}", "name", n->name, "count",
					 (json_int_t)n->count, "failed", (json_int_t)n->failed, "peak",
					 dist_json(&n->peak), "retained", dist_json(&n->retained),
					 "retained_sum", (json_int_t)n->retained_sum, "recent", recent,
					 "first_s", (json_int_t)n->first_s, "last_s", (json_int_t)n->last_s,
					 "max_peak", (json_int_t)n->max_peak, "max_id", n->max_id,
					 "max_at_s", (json_int_t)n->max_at_s, "max_failed", n->max_failed));
	}
	for (uint32_t i = 0; i < m->nfloors; i++) {
		const struct mf_model_floor *f = mf_model_floor_at(m, i);
		json_array_append_new(floors, json_pack("[IIIiIiIIIIIii]", (json_int_t)f->t_s,
							(json_int_t)f->floor, (json_int_t)f->high,
							(int)f->max_in_flight, (json_int_t)f->load,
							(int)f->load_n, (json_int_t)f->load_top,
							(json_int_t)f->ws_high,
							(json_int_t)f->floor_load,
							(json_int_t)f->gate_waited,
							(json_int_t)f->gate_timed_out,
							(int)f->gate_queue, (int)f->gate_full_n));
	}
	json_t *gate_hist = json_array();
	for (unsigned b = 0; b < MF_MODEL_GATE_HIST; b++)
		json_array_append_new(gate_hist, json_integer((json_int_t)m->gate.hist[b]));
	json_t *big = json_array(), *events = json_array(), *totals = json_object();
	for (uint32_t i = 0; i < m->nbig; i++) {
		const struct mf_model_big *b = &m->big[i];
		json_array_append_new(big, json_pack("{sssssIsIsIsbsIsssIsI}", "name", b->name, "id",
						     b->id, "peak", (json_int_t)b->peak, "net",
						     (json_int_t)b->net, "t_s", (json_int_t)b->t_s,
						     "failed", (int)b->failed, "typical",
						     (json_int_t)b->typical, "rule",
						     mf_model_rule_name(b->rule), "asked",
						     (json_int_t)b->asked, "need", (json_int_t)b->need));
	}
	for (uint32_t i = 0; i < m->nevents; i++) {
		const struct mf_model_event *e = mf_model_event_at(m, i);
		json_array_append_new(events,
				      json_pack("{sIsssisIssss}", "t_s", (json_int_t)e->t_s, "kind",
						mf_model_event_name(e->kind), "count", (int)e->count,
						"bytes", (json_int_t)e->bytes, "name", e->name, "id",
						e->id));
	}
	for (int k = 0; k < MF_EV_NKINDS; k++)
		json_object_set_new(totals, mf_model_event_name(k),
				    json_integer((json_int_t)m->event_total[k]));
	return json_pack("{sisIsIsosososos os{sIsIso}}", "memfence_model", MF_MODEL_VERSION,
			 "window_s", (json_int_t)m->window_s, "dropped", (json_int_t)m->dropped,
			 "names", names, "floors", floors, "big", big, "events", events,
			 "event_totals", totals, "gate", "waited", (json_int_t)m->gate.waited,
			 "timed_out", (json_int_t)m->gate.timed_out, "hist", gate_hist);
}

static int kind_of(const char *s)
{
	for (int k = 0; k < MF_EV_NKINDS; k++)
		if (s && strcmp(s, mf_model_event_name(k)) == 0)
			return k;
	return -1;
}

static int u64_of(json_t *o, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int dist_from(json_t *o, struct mf_dist *d)
{
	json_t *b = json_object_get(o, "b"), *e;
	size_t i;

	memset(d, 0, sizeof(*d));
	if (!json_is_object(o) || u64_of(o, "count", &d->count) || u64_of(o, "sum", &d->sum) ||
	    u64_of(o, "max", &d->max) || !json_is_array(b))
		return -1;
	json_array_foreach(b, i, e) {
		json_int_t idx, n;
		if (json_unpack(e, "[II]", &idx, &n) != 0 || idx < 0 || idx >= MF_DIST_BUCKETS || n < 0)
			return -1;
		d->b[idx] = (uint64_t)n;
	}
	return 0;
}

static int name_from(json_t *o, struct mf_model_name *n)
{
	json_t *recent = json_object_get(o, "recent"), *e;
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *id = json_string_value(json_object_get(o, "max_id"));
	json_t *rs = json_object_get(o, "retained_sum");
	size_t i;

	memset(n, 0, sizeof(*n));
	if (!name || !json_is_integer(rs) || !json_is_array(recent) ||
	    u64_of(o, "count", &n->count) || u64_of(o, "failed", &n->failed) ||
	    u64_of(o, "first_s", &n->first_s) || u64_of(o, "last_s", &n->last_s) ||
	    u64_of(o, "max_peak", &n->max_peak) || u64_of(o, "max_at_s", &n->max_at_s) ||
	    dist_from(json_object_get(o, "peak"), &n->peak) ||
	    dist_from(json_object_get(o, "retained"), &n->retained))
		return -1;
	snprintf(n->name, sizeof(n->name), "%s", name);
	snprintf(n->max_id, sizeof(n->max_id), "%s", id ? id : "");
	n->retained_sum = json_integer_value(rs);
	n->max_failed = json_is_true(json_object_get(o, "max_failed"));
	json_array_foreach(recent, i, e) {
		if (!json_is_integer(e))
			return -1;
		n->recent[n->recent_pos] = json_integer_value(e);
		n->recent_pos = (n->recent_pos + 1) % MF_MODEL_RECENT;
		if (n->nrecent < MF_MODEL_RECENT)
			n->nrecent++;
	}
	return 0;
}

int mf_model_from_json(json_t *j, struct mf_model *m, char *err, size_t errlen)
{
	json_t *names = json_object_get(j, "names"), *floors = json_object_get(j, "floors"), *e;
	uint64_t window;
	size_t i;

	if (!json_is_object(j) || !json_is_integer(json_object_get(j, "memfence_model"))) {
		snprintf(err, errlen, "not a memfence model (no \"memfence_model\" field)");
		return -1;
	}
	if (json_integer_value(json_object_get(j, "memfence_model")) != MF_MODEL_VERSION) {
		snprintf(err, errlen, "model version %lld, this memfence reads %d",
			 (long long)json_integer_value(json_object_get(j, "memfence_model")),
			 MF_MODEL_VERSION);
		return -1;
	}
	if (u64_of(j, "window_s", &window) || window == 0 || !json_is_array(names) ||
	    !json_is_array(floors)) {
		snprintf(err, errlen, "malformed model (window_s, names, floors)");
		return -1;
	}
	mf_model_init(m, window);
	u64_of(j, "dropped", &m->dropped);
	json_array_foreach(names, i, e) {
		if (m->nnames >= MF_MODEL_NAMES) {
			m->dropped++;
			continue;
		}
		if (name_from(e, &m->names[m->nnames]) != 0) {
			snprintf(err, errlen, "malformed model: names[%zu]", i);
			return -1;
		}
		m->nnames++;
	}
	json_array_foreach(floors, i, e) {
		json_int_t t, f, h, load = 0, top = 0, ws = 0, fl = 0, gw = 0, gt = 0;
		int inflight, load_n = 0, gq = 0, gn = 0;
		size_t len = json_array_size(e);
		int ok = len >= 13   ? json_unpack(e, "[IIIiIiIIIIIii]", &t, &f, &h, &inflight,
						   &load, &load_n, &top, &ws, &fl, &gw, &gt, &gq,
						   &gn) == 0
			 : len >= 9 ? json_unpack(e, "[IIIiIiIII]", &t, &f, &h, &inflight, &load,
						  &load_n, &top, &ws, &fl) == 0
				    : json_unpack(e, "[IIIi]", &t, &f, &h, &inflight) == 0;
		if (!ok || t < 0 || f < 0 || h < 0 || inflight < 0 || load < 0 || load_n < 0 ||
		    top < 0 || ws < 0 || fl < 0 || gw < 0 || gt < 0 || gq < 0 || gn < 0) {
			snprintf(err, errlen, "malformed model: floors[%zu]", i);
			return -1;
		}
		m->floors[m->floor_pos] = (struct mf_model_floor){
			.t_s = (uint64_t)t, .floor = (uint64_t)f, .high = (uint64_t)h,
			.max_in_flight = (uint32_t)inflight, .load_n = (uint32_t)load_n,
			.load = (uint64_t)load, .load_top = (uint64_t)top, .ws_high = (uint64_t)ws,
			.floor_load = (uint64_t)fl, .gate_waited = (uint64_t)gw,
			.gate_timed_out = (uint64_t)gt, .gate_queue = (uint32_t)gq,
			.gate_full_n = (uint32_t)gn};
		m->floor_pos = (m->floor_pos + 1) % MF_MODEL_FLOORS;
		if (m->nfloors < MF_MODEL_FLOORS)
			m->nfloors++;
	}
	json_array_foreach(json_object_get(j, "big"), i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *id = json_string_value(json_object_get(e, "id"));
		json_t *net = json_object_get(e, "net");
		struct mf_model_big *b;

		if (m->nbig >= MF_MODEL_BIG)
			break;
		b = &m->big[m->nbig];
		memset(b, 0, sizeof(*b));
		if (!name || !json_is_integer(net) || u64_of(e, "peak", &b->peak) ||
		    u64_of(e, "t_s", &b->t_s) || u64_of(e, "typical", &b->typical)) {
			snprintf(err, errlen, "malformed model: big[%zu]", i);
			return -1;
		}
		snprintf(b->name, sizeof(b->name), "%s", name);
		snprintf(b->id, sizeof(b->id), "%s", id ? id : "");
		b->net = json_integer_value(net);
		b->failed = json_is_true(json_object_get(e, "failed"));
		/* Absent in models written before refusals said why. */
		b->rule = mf_model_rule_of(json_string_value(json_object_get(e, "rule")));
		if (json_object_get(e, "asked") &&
		    (u64_of(e, "asked", &b->asked) || u64_of(e, "need", &b->need))) {
			snprintf(err, errlen, "malformed model: big[%zu]", i);
			return -1;
		}
		m->nbig++;
	}
	json_array_foreach(json_object_get(j, "events"), i, e) {
		int kind = kind_of(json_string_value(json_object_get(e, "kind")));
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *id = json_string_value(json_object_get(e, "id"));
		uint64_t count;
		struct mf_model_event *ev = &m->events[m->event_pos];

		memset(ev, 0, sizeof(*ev));
		if (kind < 0 || u64_of(e, "t_s", &ev->t_s) || u64_of(e, "count", &count) ||
		    u64_of(e, "bytes", &ev->bytes) || count > UINT32_MAX) {
			snprintf(err, errlen, "malformed model: events[%zu]", i);
			return -1;
		}
		ev->kind = (uint32_t)kind;
		ev->count = (uint32_t)count;
		snprintf(ev->name, sizeof(ev->name), "%s", name ? name : "");
		snprintf(ev->id, sizeof(ev->id), "%s", id ? id : "");
		m->event_pos = (m->event_pos + 1) % MF_MODEL_EVENTS;
		if (m->nevents < MF_MODEL_EVENTS)
			m->nevents++;
	}
	for (int k = 0; k < MF_EV_NKINDS; k++)
		u64_of(json_object_get(j, "event_totals"), mf_model_event_name(k), &m->event_total[k]);
	{
		json_t *g = json_object_get(j, "gate"), *hist = json_object_get(g, "hist");

		u64_of(g, "waited", &m->gate.waited);
		u64_of(g, "timed_out", &m->gate.timed_out);
		json_array_foreach(hist, i, e) {
			if (i >= MF_MODEL_GATE_HIST || !json_is_integer(e) ||
			    json_integer_value(e) < 0) {
				snprintf(err, errlen, "malformed model: gate.hist[%zu]", i);
				return -1;
			}
			m->gate.hist[i] = (uint64_t)json_integer_value(e);
		}
	}
	return 0;
}

json_t *mf_json_load_file(const char *path, size_t max, size_t flags, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *j;
	char *buf;
	size_t len;
	int e = mf_file_read(path, max, &buf, &len);

	if (e) {
		snprintf(err, errlen, "%s", mf_file_strerror(e));
		return NULL;
	}
	j = json_loadb(buf, len, flags, &jerr);
	free(buf);
	if (!j)
		snprintf(err, errlen, "%s (line %d)", jerr.text, jerr.line);
	return j;
}
