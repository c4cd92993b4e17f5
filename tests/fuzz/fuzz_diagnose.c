/*
 * What `memfence diagnose` reads from a state or report directory, as it
 * reads it: a file within its bound (mf_json_load_file), then a model
 * (STATE_DIR/model.json) or a post-mortem (reports/memfence-report-*.json,
 * the journal) turned into the analysis's input, diagnosed and printed in
 * every form.
 */
#include <jansson.h>

#include "fuzz.h"
#include "host/diagnose.h"
#include "host/file.h"
#include "host/model_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mf_model m, empty;
	static struct mf_diag d;
	struct mf_diag_death death;
	struct mf_diag_input in = {.model = &empty, .now_s = 2000000000u};
	char path[300], err[256];
	json_t *j, *out;

	fuzz_file("input.json", data, size, path, sizeof(path));
	j = mf_json_load_file(path, MF_FILE_MAX_REPORT, 0, err, sizeof(err));
	unlink(path);
	if (!j)
		return 0;
	if (json_object_get(j, "memfence_model")) {
		if (mf_model_from_json(j, &m, err, sizeof(err)) == 0)
			in.model = &m;
	} else if (mf_diag_death_from_report(j, &death) == 0) {
		in.deaths = &death;
		in.ndeaths = 1;
		in.limit = death.limit;
	}
	json_decref(j);
	if (mf_diagnose(&in, &d) == 0) {
		mf_diag_print(fuzz_null(), &d);
		out = mf_diag_json(&d);
		json_decref(out);
		(void)mf_diag_problem(&d);
	}
	return 0;
}
