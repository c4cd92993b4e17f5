/*
 * report.h - post-mortems (report.c): the document of a death, written
 * atomically, and its short summary (also `memfence report`'s).
 */
#ifndef MF_SUP_REPORT_H
#define MF_SUP_REPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "supervisor/common.h"

struct sup_state;

/*
 * What the report directory keeps of each kind of file memfence writes
 * there, post-mortems and profile snapshots: the newest SUP_KEEP_FILES of
 * them, fewer when those pass SUP_KEEP_BYTES together (the newest one is
 * always kept); older ones are removed. So a crash loop, or a pre-fork
 * server that replaces its workers, cannot fill the volume: at most
 * 2 x SUP_KEEP_BYTES, plus one file of each kind larger than that.
 * docs/supervisor.md quotes these, and sizes its emptyDir from them.
 */
#define SUP_KEEP_FILES 100
#define SUP_KEEP_BYTES (16ull << 20)
/* Profile snapshots are pruned this often, at the start and at the end. */
#define SUP_PRUNE_EVERY_S 10

/* The figures of a death as they were before it: the cgroup's last sample
 * before the death (after it, the victim's memory is already freed) and
 * the live heap counting the dead processes' last figures. */
struct sup_at_death {
	int set;                     /* 0: the report takes the state's */
	uint64_t usage, working_set, headroom, heap_live;
};

struct sup_death {
	enum sup_cause cause;
	int status;                  /* exit code, or signal number */
	int core;
	uint64_t oom_before, oom_after;
	uint64_t runtime_ms;
	struct sup_at_death at;
	char detail[256];
};

/* The figures of st as a death's. */
struct sup_at_death sup_at_state(const struct sup_state *st);
/* The report document for a death (also the journal's body, with cause
 * SUP_CAUSE_NONE while the child runs). argv: the command. */
json_t *sup_report_json(const struct sup_state *st, const struct sup_death *d,
			char *const *argv);
/* Write report to dir; path of the file into out. 0 or -errno. */
int sup_report_write(json_t *report, const char *dir, char *out, size_t outlen);
/* Prune the profile snapshots (memfence-PID.prof) in dir to the bounds
 * above. */
void sup_profiles_prune(const char *dir);
/* mkdir -p; 0 or -errno. */
int sup_mkdirs(const char *dir);
/* The short human summary for stderr (also used by `memfence report`). */
void sup_report_print(FILE *f, json_t *report, int full);
/* Write j to path through a temporary file and rename(2). 0 or -errno. */
int sup_write_atomic(json_t *j, const char *path);
/* This boot's id (/proc/sys/kernel/random/boot_id), "" if unreadable. */
void sup_boot_id(char *buf, size_t len);
/* The string at key k of object o, "" when absent. */
const char *sup_json_str(json_t *o, const char *k);

#endif
