/*
 * state.c - the supervisor's picture of the program (struct sup_state):
 * filled from the cgroup and the stats segment at each sample, and written
 * out as the journal and as post-mortems.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/proc.h"
#include "host/msg.h"
#include "supervisor/supervisor.h"

uint64_t sup_failures_total(const struct sup_state *st)
{
	uint64_t n = st->threads_failed;

	for (int c = 0; c < MF_FAIL_NCAUSES; c++)
		n += st->failed[c];
	return n;
}

static void on_record(void *ctx, const struct sup_record *r)
{
	struct sup *s = ctx;

	sup_hist_add(&s->st, r);
	sup_health_record(&s->health, r);
	sup_model_record(r);
}

/*
 * The process nearest its rlimit, by what the kernel counts against it
 * (/proc/PID/statm: "size" for RLIMIT_AS, "data" for RLIMIT_DATA, in pages;
 * O(1) in the kernel): each process of a pre-fork server has its own.
 *   /proc/PID/statm: 61234 25011 3100 700 0 50210 0
 */
static void sample_rlimit_use(struct sup *s, struct sup_state *st)
{
	int field = s->cfg.plan.rlimit == MF_RLIMIT_AS ? MF_STATM_SIZE : MF_STATM_DATA;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);

	st->rlimit_used = 0;
	st->rlimit_pid = 0;
	if (s->cfg.plan.rlimit == MF_RLIMIT_NONE || !st->child_up)
		return;
	for (uint32_t i = 0; i < st->nprocs; i++) {
		char path[64], buf[160];
		uint64_t pages;
		size_t n;

		if (!st->procs[i].alive)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/statm", (int)st->procs[i].pid);
		if (mf_read_file(path, buf, sizeof(buf), &n) != 0 ||
		    mf_statm_parse(buf, n, field, &pages) != 0)
			continue;
		if (pages * page > st->rlimit_used) {
			st->rlimit_used = pages * page;
			st->rlimit_pid = st->procs[i].pid;
		}
	}
}

void sup_state_sample(struct sup *s)
{
	struct mf_cgroup_sample cs;
	struct sup_state *st = &s->st;
	siginfo_t si = {0};

	s->fig_prev = sup_at_state(st);
	s->seg.oom_prev = st->oom_kill;
	sup_gate_before_sample(&s->seg, st);
	mf_cgroup_sample(&s->cg, &cs);
	st->usage = cs.usage;
	st->working_set = cs.working_set;
	st->oom_kill = cs.oom_kill;
	st->headroom = st->limit > cs.working_set ? st->limit - cs.working_set : 0;
	st->usable = st->budget > cs.working_set ? st->budget - cs.working_set : 0;
	st->psi_ok = s->cg.version == 2 && mf_psi_read(s->cg.dir, &st->psi) == 0;
	if (s->seg.open)
		sup_seg_read(&s->seg, st, 1, on_record, s);
	sample_rlimit_use(s, st);
	sup_gate_after_sample(&s->seg, st);
	st->now_s = sup_real_ns() / 1000000000u;
	/* Read while the program had not ended (it may have been dying):
	 * the figures a post-mortem of its end shows. */
	if (st->child_up &&
	    waitid(P_PID, (id_t)st->child_pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	    si.si_pid == 0)
		s->fig_alive = sup_at_state(st);
	sup_model_sample(st);
}

void sup_timeline_push(struct sup_state *st)
{
	struct sup_point *p = &st->timeline[st->tl_pos];

	p->t_s = st->now_s;
	p->usage = st->usage;
	p->working_set = st->working_set;
	p->heap_live = st->heap_live;
	st->tl_pos = (st->tl_pos + 1) % SUP_TIMELINE;
	if (st->tl_len < SUP_TIMELINE)
		st->tl_len++;
}

void sup_journal_update(struct sup *s, const struct sup_death *d)
{
	json_t *j;
	int err;

	if (!s->cfg.state_dir)
		return;
	j = sup_report_json(&s->st, d, s->cfg.argv);
	err = j ? sup_journal_write(s->cfg.state_dir, j) : -ENOMEM;
	json_decref(j);
	if (err) {
		static int warned;

		if (!warned++)
			mf_warn("cannot write the state journal in %s: %s", s->cfg.state_dir,
				strerror(-err));
	}
}

/* The summary on stderr, a line at a time through host/msg.h so that it
 * takes the log format too. */
static void say_report(json_t *j)
{
	static const char pre[] = "memfence: ";
	char *buf = NULL, *line, *save = NULL;
	size_t n = 0;
	FILE *m = open_memstream(&buf, &n);

	if (m == NULL)
		return;
	sup_report_print(m, j, 0);
	if (fclose(m) != 0) {
		free(buf);
		return;
	}
	for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save))
		mf_log(MF_LOG_ERROR, NULL, NULL, "%s",
		       strncmp(line, pre, sizeof(pre) - 1) == 0 ? line + sizeof(pre) - 1 : line);
	free(buf);
}

void sup_write_report(struct sup *s, const struct sup_death *d)
{
	json_t *j = sup_report_json(&s->st, d, s->cfg.argv);
	char path[MF_PATH_MAX];
	int err;

	if (!j) {
		mf_warn("cannot build the post-mortem report");
		return;
	}
	say_report(j);
	err = sup_report_write(j, s->cfg.report_dir, path, sizeof(path));
	if (err)
		mf_warn("cannot write the post-mortem report in %s: %s", s->cfg.report_dir,
			strerror(-err));
	else {
		mf_log(MF_LOG_ERROR, NULL, NULL, "  report: %s", path);
		s->st.reports_written++;
	}
	json_decref(j);
}
