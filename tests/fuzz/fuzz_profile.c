/*
 * A profile file, as `memfence profile report` reads it from a stream
 * (mf_profile_parse), then written in every format and view.
 */
#include "fuzz.h"
#include "profile/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mf_profile p;
	char err[512];
	FILE *f;

	if (size == 0)
		return 0;
	f = fmemopen((void *)data, size, "r");
	if (!f)
		return 0;
	memset(&p, 0, sizeof(p));
	if (mf_profile_parse(f, "fuzz", &p, err, sizeof(err)) == 0) {
		/* Every format of the table (profile/profile.h), in every view. */
		for (int fmt = 0; fmt < MF_FMT_COUNT; fmt++)
			for (int view = MF_VIEW_ALLOCATED; view <= MF_VIEW_FAILURE; view++)
				mf_profile_write(&p, (enum mf_prof_format)fmt, (enum mf_prof_view)view,
						 NULL, 20, fuzz_null(), err, sizeof(err));
		mf_profile_free(&p);
	}
	fclose(f);
	return 0;
}
