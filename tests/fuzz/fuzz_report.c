/*
 * A post-mortem report, as `memfence report FILE` reads and prints it
 * (src/cli/report.c: JSON with duplicates refused, then sup_report_print in
 * both its forms) and as `memfence diagnose` takes its death from it.
 */
#include <jansson.h>

#include "fuzz.h"
#include "host/diagnose.h"
#include "supervisor/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *r = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	struct mf_diag_death d;

	if (!r)
		return 0;
	if (json_is_object(r) && json_is_integer(json_object_get(r, "memfence_report"))) {
		sup_report_print(fuzz_null(), r, 1);
		sup_report_print(fuzz_null(), r, 0);
	}
	mf_diag_death_from_report(r, &d);
	json_decref(r);
	return 0;
}
