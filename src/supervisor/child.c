/*
 * child.c - the program the supervisor runs: start it, tell how each of its
 * processes ended, and decide whether to start it again.
 *
 * A death is classified in one place (classify below) for both its
 * witnesses: the wait status of the program when it is reaped, and a slot
 * of the stats segment found dead with scopes in flight.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/envspec.h"
#include "host/launch.h"
#include "host/msg.h"
#include "supervisor/supervisor.h"

const int sup_forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
const size_t sup_nforwarded = sizeof(sup_forwarded) / sizeof(sup_forwarded[0]);

/*
 * What wait status ws says, with the cgroup's OOM-kill counter before and
 * after: a SIGKILL while the counter rose is the kernel's OOM killer. The
 * cause, status, core flag and a sentence go into d. Returns 1 when the end
 * was a stop memfence passed on (a signal it forwarded), not a death.
 */
static int classify(const struct sup *s, int ws, uint64_t oom_before, uint64_t oom_after,
		    struct sup_death *d)
{
	d->oom_before = oom_before;
	d->oom_after = oom_after;
	if (WIFEXITED(ws)) {
		d->cause = SUP_CAUSE_EXIT;
		d->status = WEXITSTATUS(ws);
		snprintf(d->detail, sizeof(d->detail), "the program exited with status %d", d->status);
		return 0;
	}
	d->status = WTERMSIG(ws);
	d->core = WCOREDUMP(ws);
	if (d->status == SIGKILL && oom_after > oom_before) {
		d->cause = SUP_CAUSE_OOM_KILL;
		snprintf(d->detail, sizeof(d->detail),
			 "the program was OOM-killed by the kernel (SIGKILL; cgroup oom_kill %llu -> %llu)",
			 (unsigned long long)oom_before, (unsigned long long)oom_after);
	} else if (d->status == SIGKILL) {
		d->cause = SUP_CAUSE_SIGKILL;
		snprintf(d->detail, sizeof(d->detail),
			 "the program was killed by SIGKILL, not by the OOM killer (oom_kill counter unchanged at %llu)",
			 (unsigned long long)oom_after);
	} else {
		d->cause = SUP_CAUSE_SIGNAL;
		snprintf(d->detail, sizeof(d->detail), "the program was killed by SIG%s%s",
			 sigabbrev_np(d->status) ? sigabbrev_np(d->status) : "?",
			 d->core ? " (core dumped)" : "");
	}
	return d->cause == SUP_CAUSE_SIGNAL && d->status == s->last_forwarded;
}

/*
 * A process of the program died without its normal exit, with scopes in
 * flight: each scope with an id counts one death in the quarantine. The
 * program itself has a wait status to tell the cause; any other process
 * (a pre-fork worker) is its parent's to reap, so only the cgroup's
 * OOM-kill counter speaks for it: oom_kill when it rose since the process
 * was last seen alive, else unknown.
 */
void sup_child_on_dead(void *ctx, const struct mf_seg_slot *slot, uint64_t oom_alive,
		       const struct mf_seg_scope *sc, uint32_t n)
{
	struct sup *s = ctx;
	struct mf_cgroup_sample cs;
	uint64_t oom = s->st.oom_kill;
	enum sup_cause cause = SUP_CAUSE_NONE;

	/* Its scopes are in this read only (add_scopes ran for the slot). */
	for (uint32_t i = 0; i < s->st.nscopes; i++)
		if (s->st.scopes[i].pid == slot->pid &&
		    s->ndead_scopes < sizeof(s->dead_scopes) / sizeof(s->dead_scopes[0]))
			s->dead_scopes[s->ndead_scopes++] = s->st.scopes[i];
	if (!s->st.quarantine_on)
		return;
	/* memfence's own kill ends no scope's chances: not a death. */
	if (sup_recycle_ended(s, slot->pid))
		return;
	/* The kernel counts the kill before the victim is gone, but the
	 * counter was read a moment before the slot: read it again. */
	if (mf_cgroup_sample(&s->cg, &cs) == 0 && cs.oom_kill > oom)
		oom = cs.oom_kill;
	if (s->dying_pid && slot->pid == s->dying_pid) {
		struct sup_death d = {0};

		if (classify(s, s->dying_ws, s->oom_at_start, oom, &d))
			return;    /* a stop memfence passed on, not a death */
		cause = d.cause;
	} else if (oom > oom_alive) {
		cause = SUP_CAUSE_OOM_KILL;
	} else if (s->stopping || sup_recycle_whole_ending(s)) {
		/* Workers ending with a stop that was asked for, or with the
		 * program a recycle ended. */
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct sup_qdeath d = {.cause = (int)cause, .pid = slot->pid};

		if (!sc[i].id[0])
			continue;
		sup_clean(d.id, sizeof(d.id), sc[i].id);
		sup_clean(d.name, sizeof(d.name), sc[i].name);
		if (!d.id[0])
			continue;
		d.peak = sc[i].peak;
		d.allocated = sc[i].allocated;
		d.net = sc[i].net < 0 ? 0 : (uint64_t)sc[i].net;
		sup_quar_push(&d);
	}
}

/*
 * The program's own quarantine client (python/memfence) uses the store the
 * supervisor writes, and leaves the recording of deaths to the supervisor
 * when it can see them (in the stats segment): one death counts once.
 */
static void quarantine_env(const struct sup *s)
{
	if (!s->st.quarantine_on) {
		/* Off for the whole program: its own client checks and records
		 * nothing either (it would otherwise open the default store). */
		setenv(MF_ENV(QUARANTINE), "off", 1);
		unsetenv(MF_ENV(QUARANTINE_RECORDER));
		return;
	}
	setenv(MF_ENV(STATE_DIR), s->quar_dir, 1);
	setenv(MF_ENV(QUARANTINE), s->quar_spec, 1);
	if (s->seg.open)
		setenv(MF_ENV(QUARANTINE_RECORDER), "supervisor", 1);
}

/*
 * The segment is mode 0600, the supervisor's: a program that drops its
 * privileges (setpriv, gosu, celery --uid) cannot open it by name. It gets
 * the supervisor's own descriptor instead, open across exec in the program
 * only (close-on-exec in the supervisor), and its shim maps that when the
 * path is refused. Loosening the file's mode would let any local user
 * write it. docs/failure.md says which descendants keep it.
 */
static void segment_fd_env(const struct sup *s)
{
	char num[16];

	unsetenv(MF_ENV(SEGMENT_FD));
	if (!s->seg.open || s->cfg.launch.account != 1 || s->seg.r.fd < 0)
		return;
	if (fcntl(s->seg.r.fd, F_SETFD, 0) != 0)
		return;
	snprintf(num, sizeof(num), "%d", s->seg.r.fd);
	setenv(MF_ENV(SEGMENT_FD), num, 1);
}

/* In the forked child: undo what only the supervisor wants, then become
 * the program. Never returns. */
static void child_exec(struct sup *s)
{
	sigset_t none;
	int status;

	for (size_t i = 0; i < sup_nforwarded; i++)
		signal(sup_forwarded[i], SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* The supervisor killed (SIGKILL) leaves the program without probes,
	 * reaping or reports: it is told to end (SIGTERM) rather than live
	 * on as an orphan. As PID 1 the supervisor's end is the container's
	 * anyway. The kernel forgets this when the program changes its
	 * credentials (setpriv, gosu): docs/failure.md. */
	if (!s->st.pid1) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != s->st.sup_pid)
			_exit(MF_EXIT_FAILURE);  /* the supervisor is already gone */
	}
	sup_protect_undo(s);
	if (s->cfg.launch.account == 1 && !s->seg.open) {
		/* No segment this time: the shim must not make one where the
		 * supervisor found no room, nor join a file of someone else. */
		s->cfg.launch.segment = NULL;
		unsetenv(MF_ENV(SEGMENT));
	}
	if (mf_launch_prepare(&s->cfg.launch, &s->cfg.plan, &status) != 0)
		_exit(status);
	quarantine_env(s);
	if (s->rc.dir[0])
		setenv(MF_ENV(RECYCLE_DIR), s->rc.dir, 1);
	if (s->serving_file[0])
		setenv(MF_ENV(SERVING_FILE), s->serving_file, 1);
	else
		unsetenv(MF_ENV(SERVING_FILE));
	if (s->drain_file[0])
		setenv(MF_ENV(DRAIN_FILE), s->drain_file, 1);
	else
		unsetenv(MF_ENV(DRAIN_FILE));
	/* The segment is ours to make: a process of the program that outlives
	 * us must not make it again (shim/segw.c). */
	if (s->seg.open)
		setenv(MF_ENV(SEGMENT_MAKE), "0", 1);
	segment_fd_env(s);
	sup_python_env(s);
	if (s->cfg.profile) {
		/* Beside the post-mortems, so that both outlive the program. */
		setenv(MF_ENV(PROFILE_DIR), s->cfg.report_dir, 1);
		if (getenv(MF_ENV(PROFILE_SIGNAL)) == NULL)
			setenv(MF_ENV(PROFILE_SIGNAL), "1", 1);
	}
	_exit(mf_launch_exec(s->cfg.argv));
}

int sup_child_start(struct sup *s)
{
	pid_t pid;

	if (s->cfg.launch.account == 1) {
		int err;

		sup_seg_close(&s->seg, 1);
		err = sup_seg_create(&s->seg, s->cfg.launch.segment, (int32_t)getpid());
		/* No room for it (a full tmpfs or /dev/shm): the program runs
		 * anyway, its shim counting in private memory; what only the
		 * segment tells (scopes, heap figures, deaths for the
		 * quarantine) is missing until a restart finds room. */
		if (err && !s->seg_failed)
			mf_warn("cannot create the stats segment %s: %s; the program runs without it "
				"(accounting is off in the supervisor: no scopes, heap figures or "
				"quarantine deaths)",
				s->cfg.launch.segment, strerror(-err));
		s->seg_failed = err != 0;
		s->st.accounting = !err;
		if (!err)
			sup_gate_start(&s->seg, &s->cfg.gate);
	}
	sup_serving_started(s);
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		mf_err("cannot start the program: fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0)
		child_exec(s);
	s->st.child_pid = pid;
	s->st.child_up = 1;
	s->seg.hold_pid = pid;
	s->child_start_ms = sup_now_ms();
	s->st.child_started_s = sup_real_ns() / 1000000000u;
	memset(&s->fig_alive, 0, sizeof(s->fig_alive));
	sup_state_sample(s);
	s->oom_at_start = s->st.oom_kill;
	s->failed_at_start = sup_failures_total(&s->st);
	sup_recycle_started(s);
	return 0;
}

void sup_child_ended(struct sup *s, int ws, struct sup_death *d)
{
	struct sup_state *st = &s->st;
	int reportable;

	s->seg.hold_pid = 0;
	s->dying_pid = st->child_pid;
	s->dying_ws = ws;
	sup_state_sample(s);
	s->dying_pid = 0;
	memset(d, 0, sizeof(*d));
	d->runtime_ms = sup_now_ms() - s->child_start_ms;
	/* The figures at the death: after it, the victim's memory is freed
	 * (an OOM-killed program leaves a few MiB of usage). The cgroup as
	 * last read before the OOM kill, else while the program had not
	 * ended; the heap counting the dead processes' slots, which say
	 * more than a sample a fraction of a second older when the program
	 * died growing. */
	d->at = s->oom_pending_ms ? s->fig_oom : s->fig_alive;
	if (!d->at.set)
		d->at = sup_at_state(st);    /* ended before any sample saw it */
	if (st->heap_live + st->heap_live_dead > d->at.heap_live)
		d->at.heap_live = st->heap_live + st->heap_live_dead;
	/* A signal we passed on is a requested stop, not a death. */
	reportable = !classify(s, ws, s->oom_at_start, st->oom_kill, d);
	if (d->cause == SUP_CAUSE_EXIT) {
		uint64_t refused = sup_failures_total(st) - s->failed_at_start;

		reportable = d->status != 0 && refused > 0;
		if (reportable)
			snprintf(d->detail, sizeof(d->detail),
				 "the program exited with status %d after %llu refused allocation(s)",
				 d->status, (unsigned long long)refused);
	}
	/* Ended on purpose to be replaced: no post-mortem, even after SIGKILL.
	 * An end during the drain, before memfence said a word, is the
	 * program's own: reported, and --restart decides. */
	if (sup_recycle_whole_ending(s))
		reportable = 0;
	s->oom_pending_ms = 0;
	st->exits[d->cause]++;
	if (reportable)
		sup_write_report(s, d);
	st->child_up = 0;
	st->child_pid = 0;
	/* The dead program's scopes are in the report; start clean. */
	st->nscopes = 0;
	st->scopes_in_flight = 0;
}

int sup_child_should_restart(const struct sup *s, const struct sup_death *d)
{
	if (s->stopping)
		return 0;
	switch (s->cfg.restart) {
	case SUP_RESTART_ALWAYS: return 1;
	case SUP_RESTART_ON_OOM: return d->cause == SUP_CAUSE_OOM_KILL;
	default: return 0;
	}
}

uint64_t sup_child_backoff_ms(struct sup *s, uint64_t ran_ms)
{
	uint64_t d = s->cfg.delay_ms;

	/* A program that ran a good while before ending starts the series
	 * again: the backoff is for crash loops. */
	if (ran_ms >= 2 * s->cfg.max_delay_ms + 10000)
		s->quick_failures = 0;
	/* --restart-delay 0 restarts at once, the first time; a loop of
	 * quick failures still backs off, from SUP_RESTART_FLOOR_MS, however
	 * small the delays asked (hundreds of restarts a second otherwise). */
	if (s->quick_failures > 0 && d < SUP_RESTART_FLOOR_MS)
		d = SUP_RESTART_FLOOR_MS;
	for (unsigned i = 0; i < s->quick_failures && d < s->cfg.max_delay_ms; i++)
		d *= 2;
	if (d > s->cfg.max_delay_ms)
		d = s->cfg.max_delay_ms;
	if (s->quick_failures > 0 && d < SUP_RESTART_FLOOR_MS)
		d = SUP_RESTART_FLOOR_MS;
	s->quick_failures++;
	return d;
}
