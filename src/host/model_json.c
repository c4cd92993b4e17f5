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
 *    "floors": [[t_s, floor, high, max_in_flight], ...]}
 *
 * Buckets are written sparse (index, count). A reader refuses another
 * version and anything malformed, with the reason; it never trusts sizes.
 */
#include <stdio.h>
#include <string.h>

#include "host/model.h"
#include "host/model_json.h"

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
		json_array_append_new(floors, json_pack("[IIIi]", (json_int_t)f->t_s, (json_int_t)f->floor,
							(json_int_t)f->high, (int)f->max_in_flight));
	}
	return json_pack("{sisIsIsoso}", "memfence_model", MF_MODEL_VERSION, "window_s",
			 (json_int_t)m->window_s, "dropped", (json_int_t)m->dropped, "names", names,
			 "floors", floors);
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
		json_int_t t, f, h;
		int inflight;
		if (json_unpack(e, "[IIIi]", &t, &f, &h, &inflight) != 0 || t < 0 || f < 0 || h < 0 ||
		    inflight < 0) {
			snprintf(err, errlen, "malformed model: floors[%zu]", i);
			return -1;
		}
		m->floors[m->floor_pos] = (struct mf_model_floor){(uint64_t)t, (uint64_t)f,
								  (uint64_t)h, (uint32_t)inflight};
		m->floor_pos = (m->floor_pos + 1) % MF_MODEL_FLOORS;
		if (m->nfloors < MF_MODEL_FLOORS)
			m->nfloors++;
	}
	return 0;
}
