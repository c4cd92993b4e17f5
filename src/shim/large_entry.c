/*
 * large_entry.c - the hooks' entry to big blocks (large.c): admitted
 * (admit.c), served from the shim's mappings and their cache, counted
 * (account.c) and offered to the profiler, as the malloc family's hooks
 * do for glibc's blocks.
 */
#include <errno.h>
#include <string.h>

#include "shim/hooks_int.h"

void *mf_big_hook_alloc(struct mf_thread *t, size_t n, size_t align, bool zero)
{
	void *p;
	size_t u;

	if (mf_hook_big_pre(t, n))
		return NULL;
	p = mf_big_alloc(n, align, zero);
	if (p == NULL) {
		mf_hook_failed(t, MF_FAIL_ALLOC);
		errno = ENOMEM;
		return NULL;
	}
	u = mf_header_usable(p);
	if (MF_UNLIKELY(mf_need_checks(t)) && mf_hook_admit_post(t, u) != 0) {
		mf_big_free(p);
		errno = ENOMEM;
		return NULL;
	}
	mf_count_alloc(t, u);
	mf_prof_alloc(p, u);
	return p;
}

void mf_big_hook_free(struct mf_thread *t, void *p)
{
	size_t u = mf_header_usable(p);

	mf_prof_free(p);
	mf_big_free(p);
	mf_count_free(t, u);
}

/*
 * realloc of a big block, or to a big size. The shim's block is resized in
 * place or its mapping moved (mremap: no copy) when that cannot cross a
 * budget; otherwise, and for a block of glibc's, a new block is made and
 * checked before the old one is copied and given up, so that glibc never
 * holds a big block.
 */
void *mf_big_hook_realloc(struct mf_thread *t, void *p, size_t n, size_t old)
{
	int own = mf_own_big(p);
	void *q;
	size_t u;

	if (n == 0) {
		if (own) {
			mf_big_hook_free(t, p);
		} else {
			mf_prof_free(p);
			mf_real.free(p);
			mf_count(t, 0, old, 0, 1);
		}
		return NULL;
	}
	if (n > old && (MF_UNLIKELY(mf_need_checks(t)) || n - old >= MF_LARGE) &&
	    mf_hook_big_pre(t, n - old))
		return NULL;
	if (own && n >= MF_BIG && (n <= old || !mf_need_checks(t))) {
		q = mf_big_resize(p, n);
		if (q == NULL) {
			mf_hook_failed(t, MF_FAIL_ALLOC);
			errno = ENOMEM;
			return NULL;
		}
		u = mf_header_usable(q);
		mf_prof_free(p);
		mf_prof_alloc(q, u);
		mf_count_resize(t, old, u);
		return q;
	}
	q = mf_serve_big(n, 16) ? mf_big_alloc(n, 16, false) : mf_real.malloc(n);
	if (q == NULL) {
		mf_hook_failed(t, MF_FAIL_ALLOC);
		errno = ENOMEM;
		return NULL;
	}
	u = mf_usable_of(q);
	if (u > old && MF_UNLIKELY(mf_need_checks(t)) && mf_hook_admit_post(t, u - old) != 0) {
		if (mf_own_big(q))
			mf_big_free(q);
		else
			mf_real.free(q);
		errno = ENOMEM;
		return NULL;
	}
	memcpy(q, p, old < n ? old : n);
	mf_prof_free(p);
	if (own)
		mf_big_free(p);
	else
		mf_real.free(p);
	mf_prof_alloc(q, u);
	mf_count_resize(t, old, u);
	return q;
}
