/*
 * A profile file, as `memfence profile report` reads it from a stream
 * (mf_profile_parse), then written in every format and view.
 */
#include "fuzz.h"
#include "profile/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *formats[] = {"text", "collapsed", "svg", "pprof", "json"};
	static const char *views[] = {"allocated", "live", "peak", "failures"};
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
		for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
			for (size_t k = 0; k < sizeof(views) / sizeof(views[0]); k++) {
				enum mf_prof_format fmt;
				enum mf_prof_view view;

				if (mf_profile_format_parse(formats[i], &fmt) != 0 ||
				    mf_profile_view_parse(views[k], &view) != 0)
					continue;
				mf_profile_write(&p, fmt, view, NULL, 20, fuzz_null(), err, sizeof(err));
			}
		}
		mf_profile_free(&p);
	}
	fclose(f);
	return 0;
}
