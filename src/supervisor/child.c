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
static void quarantine_env(const struct sup *s, struct mf_envp *env)
{
	if (!s->st.quarantine_on) {
		/* Off for the whole program: its own client checks and records
		 * nothing either (it would otherwise open the default store). */
		mf_envp_set(env, MF_ENV(QUARANTINE), "off");
		mf_envp_unset(env, MF_ENV(QUARANTINE_RECORDER));
		return;
	}
	mf_envp_set(env, MF_ENV(STATE_DIR), s->quar_dir);
	mf_envp_set(env, MF_ENV(QUARANTINE), s->quar_spec);
	if (s->seg.open)
		mf_envp_set(env, MF_ENV(QUARANTINE_RECORDER), "supervisor");
}

/*
 * The segment is mode 0600, the supervisor's: a program that drops its
 * privileges (setpriv, gosu, celery --uid) cannot open it by name. It gets
 * the supervisor's own descriptor instead, open across exec in the program
 * only (close-on-exec in the supervisor, mf_spawn's inherit_fd), and its
 * shim maps that when the path is refused. Loosening the file's mode would
 * let any local user write it. docs/failure.md says which descendants keep
 * it. Returns the descriptor to inherit, or -1.
 */
static int segment_fd_env(const struct sup *s, struct mf_envp *env)
{
	mf_envp_unset(env, MF_ENV(SEGMENT_FD));
	if (!s->seg.open || s->cfg.launch.account != 1 || s->seg.r.fd < 0)
		return -1;
	mf_envp_set_u64(env, MF_ENV(SEGMENT_FD), (uint64_t)s->seg.r.fd);
	return s->seg.r.fd;
}

/*
 * Everything the program is started with, made here before it starts so
 * that its child only applies it (mf_spawn): the plan and the launch's
 * environment, then what only the supervisor knows. The first start takes
 * the plan resolved as the supervisor started; a restart resolves it again
 * from the cgroup as it is now (a container given a new limit). Returns 0,
 * or an exit status after printing why; *keep_fd is the descriptor the
 * program inherits (segment_fd_env).
 */
static int program_env(struct sup *s, struct mf_plan *plan, struct mf_envp *env, int *keep_fd)
{
	struct mf_launch launch = s->cfg.launch;
	struct mf_memory mem;
	const struct mf_memory *from = s->cfg.mem;
	char err[512];
	int status;

	*plan = s->cfg.plan;
	if (s->st.restarts > 0) {
		from = mf_memory_read_limits(launch.root, &mem, err, sizeof(err)) == 0 ? &mem : NULL;
		if (mf_plan_resolve(&launch.plan_opts, from, plan, err, sizeof(err)) != 0) {
			mf_err("%s", err);
			return MF_EXIT_USAGE;
		}
	}
	if (mf_envp_init(env, environ) != 0) {
		mf_err("cannot set the program's environment: %s", strerror(ENOMEM));
		return MF_EXIT_FAILURE;
	}
	if (launch.account == 1 && !s->seg.open) {
		/* No segment this time: the shim must not make one where the
		 * supervisor found no room, nor join a file of someone else. */
		launch.segment = NULL;
		mf_envp_unset(env, MF_ENV(SEGMENT));
	}
	if (mf_launch_setup(&launch, from, plan, env, &status) != 0)
		return status;
	quarantine_env(s, env);
	if (s->rc.dir[0])
		mf_envp_set(env, MF_ENV(RECYCLE_DIR), s->rc.dir);
	if (s->serving_file[0])
		mf_envp_set(env, MF_ENV(SERVING_FILE), s->serving_file);
	else
		mf_envp_unset(env, MF_ENV(SERVING_FILE));
	if (s->drain_file[0])
		mf_envp_set(env, MF_ENV(DRAIN_FILE), s->drain_file);
	else
		mf_envp_unset(env, MF_ENV(DRAIN_FILE));
	/* The segment is ours to make: a process of the program that outlives
	 * us must not make it again (shim/segw.c). */
	if (s->seg.open)
		mf_envp_set(env, MF_ENV(SEGMENT_MAKE), "0");
	*keep_fd = segment_fd_env(s, env);
	sup_python_env(s, env);
	if (s->cfg.profile) {
		/* Beside the post-mortems, so that both outlive the program. */
		mf_envp_set(env, MF_ENV(PROFILE_DIR), s->cfg.report_dir);
		if (mf_envp_get(env, MF_ENV(PROFILE_SIGNAL)) == NULL)
			mf_envp_set(env, MF_ENV(PROFILE_SIGNAL), "1");
	}
	if (env->err) {
		mf_err("cannot set the program's environment: %s", strerror(-env->err));
		return MF_EXIT_FAILURE;
	}
	return 0;
}

/*
 * Start the program from what program_env() made: the child undoes what
 * only the supervisor wants (its signal handling and mask, its
 * oom_score_adj), applies the rlimit and execs; nothing of the
 * supervisor's memory is copied for it. Returns the pid, or -1 after
 * printing why no process could be made; a child that could not become
 * the program has ended with the status it would have had (126, 127, 1)
 * and its reason is printed here.
 */
static pid_t program_spawn(struct sup *s, const struct mf_plan *plan, char **envp, int keep_fd)
{
	int sigs[sizeof(sup_forwarded) / sizeof(sup_forwarded[0]) + 2];
	char oom_adj[16], err[512];
	struct mf_spawn sp = {
		.argv = s->cfg.argv,
		.envp = envp,
		.sigdfl = sigs,
		.rlimit = -1,
		.inherit_fd = keep_fd,
	};
	struct mf_spawn_result r;
	size_t n = 0;
	pid_t pid;
	int rc;

	for (size_t i = 0; i < sup_nforwarded; i++)
		sigs[n++] = sup_forwarded[i];
	sigs[n++] = SIGPIPE;
	sigs[n++] = SIGCHLD;
	sp.nsigdfl = n;
	/* The supervisor killed (SIGKILL) leaves the program without probes,
	 * reaping or reports: it is told to end (SIGTERM) rather than live
	 * on as an orphan. As PID 1 the supervisor's end is the container's
	 * anyway. The kernel forgets this when the program changes its
	 * credentials (setpriv, gosu): docs/failure.md. */
	if (!s->st.pid1) {
		sp.pdeathsig = SIGTERM;
		sp.parent = s->st.sup_pid;
	}
	sp.oom_score_adj = sup_protect_undo(s, oom_adj, sizeof(oom_adj));
	rc = mf_plan_rlimit(plan, &sp.rlimit, &sp.rl, err, sizeof(err));
	if (rc < 0) {
		mf_err("%s", err);
		return -1;
	}
	if (rc == 0)
		sp.rlimit = -1;
	pid = mf_spawn(&sp, &r);
	if (pid < 0) {
		mf_err("cannot start the program: %s", strerror((int)-pid));
		return -1;
	}
	if (r.oom_adj_err)
		mf_warn("cannot reset the program's oom_score_adj: %s", strerror(r.oom_adj_err));
	switch (r.stage) {
	case MF_SPAWN_RLIMIT:
		mf_plan_rlimit_error(sp.rlimit, &sp.rl, r.err, err, sizeof(err));
		mf_err("%s", err);
		break;
	case MF_SPAWN_EXEC:
		mf_err("cannot run '%s': %s", s->cfg.argv[0], strerror(r.err));
		break;
	default:
		break;
	}
	return pid;
}

int sup_child_start(struct sup *s)
{
	struct mf_envp env = {0};
	struct mf_plan plan;
	pid_t pid;
	int status, keep_fd = -1;

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
	status = program_env(s, &plan, &env, &keep_fd);
	if (status != 0) {
		mf_envp_free(&env);
		return status;
	}
	fflush(NULL);
	pid = program_spawn(s, &plan, env.v, keep_fd);
	mf_envp_free(&env);
	if (pid < 0)
		return MF_EXIT_FAILURE;
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
