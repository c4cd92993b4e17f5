/*
 * prof_table.c - the profiler's tables: sites (a stack and a scope, with
 * their weighted sums), scope names, the live samples by address, and the
 * counting filter the free path reads (prof.h). Fixed sizes, mapped at
 * start; what does not fit is counted as overflow. Called with the
 * profiler's lock held.
 */
#include <string.h>

#include "shim/prof_int.h"

static uint64_t frames_hash(const uint64_t *f, int n, unsigned scope)
{
	uint64_t h = 0xcbf29ce484222325ull ^ scope;

	for (int i = 0; i < n; i++)
		h = (h ^ f[i]) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

int mf_prof_scope_index(const char *name)
{
	if (name == NULL || name[0] == '\0')
		return 0;
	for (uint32_t i = 1; i < mf_prof_st.nscopes; i++)
		if (strncmp(mf_prof_st.scopes[i], name, MF_SEG_NAME_LEN) == 0)
			return (int)i;
	if (mf_prof_st.nscopes >= MF_PROF_SCOPES_MAX) {
		mf_prof_st.over_scopes++;
		return 0;
	}
	mf_strlcpy(mf_prof_st.scopes[mf_prof_st.nscopes], name, MF_SEG_NAME_LEN);
	return (int)mf_prof_st.nscopes++;
}

int mf_prof_site_find(const uint64_t *f, int nn, int np, unsigned scope)
{
	uint64_t h = frames_hash(f, nn + np, scope);
	uint32_t i = (uint32_t)h & (MF_PROF_SITES_IDX - 1);

	for (;; i = (i + 1) & (MF_PROF_SITES_IDX - 1)) {
		int32_t c = mf_prof_st.site_idx[i];
		if (c < 0)
			break;
		struct mf_prof_site *s = &mf_prof_st.sites[c];
		if (s->hash == h && s->nnative == nn && s->npy == np && s->scope == scope &&
		    memcmp(s->frames, f, (size_t)(nn + np) * sizeof(*f)) == 0)
			return c;
	}
	if (mf_prof_st.nsites >= MF_PROF_SITES_MAX) {
		mf_prof_st.over_sites++;
		return -1;
	}
	struct mf_prof_site *s = &mf_prof_st.sites[mf_prof_st.nsites];
	s->hash = h;
	s->nnative = (uint16_t)nn;
	s->npy = (uint16_t)np;
	s->scope = (uint16_t)scope;
	memcpy(s->frames, f, (size_t)(nn + np) * sizeof(*f));
	mf_prof_st.site_idx[i] = (int32_t)mf_prof_st.nsites;
	return (int)mf_prof_st.nsites++;
}

static uint32_t live_slot(uintptr_t p)
{
	return (uint32_t)((p >> 4) * 0x9e3779b97f4a7c15ull >> 40) & (MF_PROF_LIVE_MAX - 1);
}

/* Saturating: a counter at 255 no longer knows how many blocks it stands
 * for, so it stays set. */
static void filter_inc(uintptr_t p)
{
	uint8_t *c = &mf_prof_filter[mf_prof_hash((void *)p)];

	if (*c != 255)
		__atomic_store_n(c, (uint8_t)(*c + 1), __ATOMIC_RELAXED);
}

static void filter_dec(uintptr_t p)
{
	uint8_t *c = &mf_prof_filter[mf_prof_hash((void *)p)];

	if (*c != 255 && *c != 0)
		__atomic_store_n(c, (uint8_t)(*c - 1), __ATOMIC_RELAXED);
}

int mf_prof_live_add(uintptr_t p, uint32_t site, double w, double n)
{
	uint32_t i = live_slot(p);

	/* Keep a quarter free so that probes stay short. */
	if (mf_prof_st.nlive >= MF_PROF_LIVE_MAX - MF_PROF_LIVE_MAX / 4) {
		mf_prof_st.over_live++;
		return -1;
	}
	while (mf_prof_st.live[i].ptr != 0 && mf_prof_st.live[i].ptr != p)
		i = (i + 1) & (MF_PROF_LIVE_MAX - 1);
	if (mf_prof_st.live[i].ptr == 0)
		mf_prof_st.nlive++;
	else
		filter_dec(p); /* stale entry replaced */
	mf_prof_st.live[i] = (struct mf_prof_live){.ptr = p, .site = site, .w = w, .n = n};
	filter_inc(p);
	return 0;
}

/* Remove p's entry (backward-shift deletion: no tombstones to pile up). */
int mf_prof_live_remove(uintptr_t p, struct mf_prof_live *out)
{
	uint32_t i = live_slot(p), j, k;

	while (mf_prof_st.live[i].ptr != p) {
		if (mf_prof_st.live[i].ptr == 0)
			return -1;
		i = (i + 1) & (MF_PROF_LIVE_MAX - 1);
	}
	*out = mf_prof_st.live[i];
	filter_dec(p);
	mf_prof_st.nlive--;
	j = i;
	for (;;) {
		mf_prof_st.live[i].ptr = 0;
		for (;;) {
			j = (j + 1) & (MF_PROF_LIVE_MAX - 1);
			if (mf_prof_st.live[j].ptr == 0)
				return 0;
			k = live_slot(mf_prof_st.live[j].ptr);
			/* Move j back to i unless its home lies cyclically in (i, j]. */
			if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
				continue;
			break;
		}
		mf_prof_st.live[i] = mf_prof_st.live[j];
		i = j;
	}
}

void mf_prof_take_view(int fail)
{
	for (uint32_t i = 0; i < mf_prof_st.nsites; i++) {
		struct mf_prof_site *s = &mf_prof_st.sites[i];
		if (fail) {
			s->fb = s->lb;
			s->fn = s->ln;
		} else {
			s->pb = s->lb;
			s->pn = s->ln;
		}
	}
	if (fail)
		mf_prof_st.fail_w = mf_prof_st.live_w;
	else
		mf_prof_st.peak_w = mf_prof_st.live_w;
}