/*
 * journal.c - the state journal: the report document (report.c) with
 * "cause": "running", rewritten atomically about once a second under
 * --state-dir. A kernel OOM kill of the whole container (memory.oom.group
 * on cgroup v2) takes the supervisor too, before it can write anything: the
 * journal is then the last word, and the next start turns it into a report
 * (cause "lost"), with the scopes the segment still holds.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/file.h"
#include "host/msg.h"
#include "supervisor/journal.h"
#include "supervisor/quar.h"
#include "supervisor/report.h"
#include "supervisor/seg.h"
#include "supervisor/state.h"

int sup_journal_write(const char *state_dir, json_t *body)
{
	char path[MF_PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", state_dir, SUP_JOURNAL);
	return sup_write_atomic(body, path);
}

void sup_journal_close(const char *state_dir)
{
	char path[MF_PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", state_dir, SUP_JOURNAL);
	unlink(path);
}

/*
 * The segment of the lost run, when it lies in the state directory, says
 * what was in flight at the moment of death (the journal is up to a second
 * older): replace the journal's list with it. Only a segment created by the
 * same supervisor (owner pid) counts.
 */
static void scopes_from_segment(json_t *j, const char *state_dir, int sup_pid)
{
	static struct mf_seg_scope sc[MF_SEG_DEFAULT_SCOPES];
	char path[MF_PATH_MAX];
	struct mf_segread r;
	json_t *a;
	uint64_t now = sup_real_ns();
	uint32_t total = 0;

	snprintf(path, sizeof(path), "%s/%s", state_dir, SUP_STATE_SEGMENT);
	if (mf_segread_open(&r, path, 0) != 0)
		return;
	if (r.hdr->owner_pid != sup_pid) {
		mf_segread_close(&r);
		return;
	}
	a = json_array();
	for (uint32_t i = 0; i < r.hdr->nslots; i++) {
		struct mf_segread_slot v;

		if (mf_segread_slot(&r, i, &v, sc, MF_SEG_DEFAULT_SCOPES) != 0 ||
		    v.view == MF_SLOT_VIEW_FREE || v.view == MF_SLOT_VIEW_READ)
			continue;
		total += v.nscopes + v.ntorn + v.ndropped;
		for (uint32_t k = 0; k < v.nscopes; k++) {
			struct sup_scope x = {
				.pid = v.slot.pid, .tid = sc[k].tid, .start_ns = sc[k].start_ns,
				.allocated = sc[k].allocated, .freed = sc[k].freed,
				.peak = sc[k].peak, .budget = sc[k].budget, .failed = sc[k].failed,
				.net = sc[k].net,
			};

			memcpy(x.name, sc[k].name, sizeof(x.name));
			memcpy(x.id, sc[k].id, sizeof(x.id));
			/* They died with the run: count them in the quarantine
			 * (a no-op when it is off). A process that exited
			 * normally with a scope open killed nothing, and one
			 * that still runs (the supervisor alone was killed;
			 * mf_proc_is tells it from a later one with its pid)
			 * is still working on it. */
			if (v.view == MF_SLOT_VIEW_DEAD && sc[k].id[0]) {
				struct sup_qdeath qd = {.cause = SUP_CAUSE_LOST, .pid = v.slot.pid,
							.peak = sc[k].peak,
							.allocated = sc[k].allocated,
							.net = sc[k].net < 0 ? 0 : (uint64_t)sc[k].net};

				sup_clean(qd.id, sizeof(qd.id), sc[k].id);
				sup_clean(qd.name, sizeof(qd.name), sc[k].name);
				if (qd.id[0])
					sup_quar_push(&qd);
			}
			if (json_array_size(a) < SUP_MAX_SCOPES)
				json_array_append_new(a, sup_scope_json(&x, now));
		}
	}
	mf_segread_close(&r);
	json_object_set_new(j, "in_flight", a);
	json_object_set_new(j, "in_flight_total", json_integer(total));
	json_object_set_new(j, "in_flight_from", json_string("segment"));
}

int sup_journal_recover(const char *state_dir, const char *report_dir, char *out, size_t outlen)
{
	char path[MF_PATH_MAX], boot[64], detail[512], last[40], *buf;
	json_t *j, *sup, *child;
	json_error_t jerr;
	json_int_t cstart;
	size_t len;
	int pid, cpid, err;

	snprintf(path, sizeof(path), "%s/%s", state_dir, SUP_JOURNAL);
	if (access(path, F_OK) < 0)
		return 0;
	/* Only what the supervisor could have written: a FIFO there would
	 * block this start for good. */
	err = mf_file_read(path, MF_FILE_MAX_REPORT, &buf, &len);
	if (err) {
		mf_warn("state journal %s is unreadable (%s): ignored", path, mf_file_strerror(err));
		if (err == MF_FILE_ENOTREG || err == -EFBIG)
			unlink(path);
		return -1;
	}
	j = json_loadb(buf, len, 0, &jerr);
	free(buf);
	if (!j || !json_is_object(j)) {
		mf_warn("state journal %s is unreadable (%s): ignored", path,
			j ? "not a JSON object" : jerr.text);
		json_decref(j);
		unlink(path);
		return -1;
	}
	sup = json_object_get(j, "supervisor");
	pid = (int)json_integer_value(json_object_get(sup, "pid"));
	sup_boot_id(boot, sizeof(boot));
	if (strcmp(sup_json_str(sup, "boot_id"), boot) == 0 && pid > 0 && pid != getpid() &&
	    (kill(pid, 0) == 0 || errno == EPERM)) {
		mf_warn("state directory %s is in use by another memfence (pid %d): its journal is left alone",
			state_dir, pid);
		json_decref(j);
		return -1;
	}
	snprintf(last, sizeof(last), "%s", sup_json_str(j, "time"));
	child = json_object_get(j, "child");
	cpid = (int)json_integer_value(json_object_get(child, "pid"));
	/* When the program started, from the journal's time and the runtime
	 * it gives in whole seconds of samples: two seconds of slack. */
	cstart = json_integer_value(json_object_get(j, "time_unix")) -
		 (json_int_t)json_number_value(json_object_get(child, "runtime_s")) + 2;
	if (cpid > 0 && cstart > 2 && strcmp(sup_json_str(sup, "boot_id"), boot) == 0 &&
	    mf_proc_is(cpid, (uint64_t)cstart * 1000000000u))
		snprintf(detail, sizeof(detail),
			 "the previous run (supervisor pid %d) ended without a report; last journal "
			 "entry %s. Its program (pid %d) still runs: the supervisor alone was killed "
			 "(SIGKILL?), and the program did not end when it was told to (SIGTERM)",
			 pid, last, cpid);
	else
		snprintf(detail, sizeof(detail),
			 "the previous run (supervisor pid %d) ended without a report; last journal entry %s. "
			 "The supervisor was killed with the program: a kernel OOM kill of the whole container "
			 "(memory.oom.group) is the usual cause",
			 pid, last);
	json_object_set_new(j, "cause", json_string(sup_cause_name(SUP_CAUSE_LOST)));
	json_object_set_new(j, "detail", json_string(detail));
	json_object_set_new(j, "last_seen", json_string(last));
	scopes_from_segment(j, state_dir, pid);
	err = sup_report_write(j, report_dir, out, outlen);
	json_decref(j);
	if (err) {
		mf_warn("cannot write the post-mortem of the previous run to %s: %s", report_dir,
			strerror(-err));
		return -1;
	}
	unlink(path);
	return 1;
}
