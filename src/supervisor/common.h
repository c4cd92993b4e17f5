/*
 * common.h - what every part of the supervisor shares (common.c): how a
 * program's end is named, names of causes and reasons, text cleaned for JSON
 * and Prometheus, the clocks. It uses no other part.
 */
#ifndef MF_SUP_COMMON_H
#define MF_SUP_COMMON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* How the program (or one of its processes) ended. */
enum sup_cause {
	SUP_CAUSE_NONE = 0,
	SUP_CAUSE_EXIT,              /* exited with a status */
	SUP_CAUSE_OOM_KILL,          /* SIGKILL and the oom_kill counter rose */
	SUP_CAUSE_SIGKILL,           /* other SIGKILL */
	SUP_CAUSE_SIGNAL,            /* another signal */
	SUP_CAUSE_LOST,              /* found after an unclean end of a supervisor */
	SUP_CAUSE_NCAUSES
};

struct sup_scope;

/* "leak", "unclean", "stuck" */
const char *sup_recycle_reason_name(int r);
/* "running", "exit", "oom-kill", "sigkill", "signal", "lost" */
const char *sup_cause_name(enum sup_cause c);
/* An allocation failure's cause (MF_FAIL_*): "allocator", "budget", ... */
const char *sup_fail_name(int c);
/* Copy s into out (len bytes) keeping printable ASCII only: scope names
 * come from programs and must stay valid in JSON and Prometheus labels. */
void sup_clean(char *out, size_t len, const char *s);
/* One in-flight scope as JSON (age against now_ns, CLOCK_REALTIME). */
json_t *sup_scope_json(const struct sup_scope *s, uint64_t now_ns);
uint64_t sup_now_ms(void);       /* CLOCK_MONOTONIC */
uint64_t sup_real_ns(void);      /* CLOCK_REALTIME */

#endif
