/*
 * The journal a lost run left in its state directory, as the next
 * `memfence run` reads it at start (sup_journal_recover): it turns it into
 * a report in the report directory.
 */
#include "fuzz.h"
#include "supervisor/journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[256], reports[256], out[4096];

	fuzz_file(SUP_JOURNAL, data, size, path, sizeof(path));
	snprintf(reports, sizeof(reports), "%s/reports", fuzz_dir());
	sup_journal_recover(fuzz_dir(), reports, out, sizeof(out));
	return 0;
}
