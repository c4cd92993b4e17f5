/*
 * common.c - what every part of the supervisor shares: the names of causes,
 * strings made safe for JSON and Prometheus, a scope as JSON, the clocks.
 * It depends on no other file of the supervisor.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "host/model.h"
#include "supervisor/common.h"
#include "supervisor/state.h"

static const char *const cause_names[SUP_CAUSE_NCAUSES] = {
	"running", "exit", "oom-kill", "sigkill", "signal", "lost",
};

static const char *const fail_names[MF_FAIL_NCAUSES] = {
	"allocator", "budget", "heap_limit", "container", "fault",
};

static const char *const recycle_names[SUP_RECYCLE_NREASONS] = {"leak", "unclean", "stuck"};

const char *sup_recycle_reason_name(int r)
{
	return (unsigned)r < SUP_RECYCLE_NREASONS ? recycle_names[r] : "unknown";
}

const char *sup_cause_name(enum sup_cause c)
{
	return (unsigned)c < SUP_CAUSE_NCAUSES ? cause_names[c] : "unknown";
}

const char *sup_fail_name(int c)
{
	return (unsigned)c < MF_FAIL_NCAUSES ? fail_names[c] : "unknown";
}

void sup_clean(char *out, size_t len, const char *s)
{
	size_t i = 0;

	for (; s && *s && i + 1 < len; s++)
		out[i++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
	if (len)
		out[i] = '\0';
}

json_t *sup_scope_json(const struct sup_scope *s, uint64_t now_ns)
{
	char name[MF_SEG_NAME_LEN], id[MF_SEG_NAME_LEN];

	sup_clean(name, sizeof(name), s->name);
	sup_clean(id, sizeof(id), s->id);
	return json_pack("{s:i,s:i,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:s,s:I,s:I}", "pid",
			 (int)s->pid, "tid", (int)s->tid, "name", name, "id", id, "allocated",
			 (json_int_t)s->allocated, "freed", (json_int_t)s->freed, "net",
			 (json_int_t)s->net, "peak", (json_int_t)s->peak, "budget",
			 (json_int_t)s->budget, "failed", (json_int_t)s->failed, "age_s",
			 now_ns > s->start_ns && s->start_ns ? (double)(now_ns - s->start_ns) / 1e9 : 0.0,
			 "refused_by", mf_model_rule_name(s->refused_rule), "asked",
			 (json_int_t)s->refused_asked, "need", (json_int_t)s->refused_need);
}

uint64_t sup_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t sup_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
