/*
 * journal.h - the journal in the state directory (journal.c): rewritten
 * while the program runs, turned into a report by the next start when a
 * run did not end cleanly.
 */
#ifndef MF_SUP_JOURNAL_H
#define MF_SUP_JOURNAL_H

#include <jansson.h>
#include <stddef.h>

/* The journal's file name in the state directory. */
#define SUP_JOURNAL "journal.json"

/* The lock file of a state directory: one supervisor at a time. */
#define SUP_STATE_LOCK "lock"

/* The stats segment's name under --state-dir: there it survives a kill
 * of the whole container, and the next start reads what was in flight. */
#define SUP_STATE_SEGMENT "segment.seg"

/* Rewrite the journal atomically. 0 or -errno. */
int sup_journal_write(const char *state_dir, json_t *body);
/* Mark the run as ended cleanly (journal removed). */
void sup_journal_close(const char *state_dir);
/* A journal left by a run that did not end cleanly: turn it into a report.
 * Returns 1 when a report was written (its path in out), 0 when nothing to
 * do, -1 on error (warned). */
int sup_journal_recover(const char *state_dir, const char *report_dir, char *out,
			size_t outlen);

#endif
