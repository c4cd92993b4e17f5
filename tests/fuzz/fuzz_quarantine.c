/*
 * A quarantine database (the SQLite file `memfence quarantine` and the
 * supervisor open): listed, looked up, exported as JSON, then written to.
 */
#include "fuzz.h"
#include "store/quarantine.h"

static int each(const struct mf_quarantine_record *r, void *arg)
{
	json_t *j = mf_quarantine_to_json(r);
	struct mf_quarantine_record back;
	char err[256];

	(void)arg;
	if (j) {
		mf_quarantine_from_json(j, &back, err, sizeof(err));
		json_decref(j);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mf_qstore_opts opts = {.state_dir = fuzz_dir()};
	struct mf_quarantine_record rec;
	struct mf_quarantine_death d;
	struct mf_qstore *s;
	char path[256], err[512];

	/* A write-ahead log left by the last input would be replayed into
	 * this one: each input is the whole database. */
	for (size_t i = 0; i < 3; i++) {
		static const char *side[] = {"-wal", "-shm", "-journal"};

		snprintf(path, sizeof(path), "%s/quarantine.db%s", fuzz_dir(), side[i]);
		unlink(path);
	}
	fuzz_file("quarantine.db", data, size, path, sizeof(path));
	if (mf_qstore_open(path, &opts, &s, err, sizeof(err)) != 0)
		return 0;
	mf_qstore_list(s, each, NULL);
	mf_qstore_get(s, "task-1", &rec);
	memset(&d, 0, sizeof(d));
	d.id = "task-1";
	d.name = "tasks.fuzz";
	d.host = "fuzz";
	mf_qstore_record(s, &d, &rec);
	mf_qstore_close(s);
	return 0;
}
