/*
 * supervisor.c - the supervisor of `memfence run`: its state and its loop.
 *
 * The supervisor is built to be a container's PID 1: it forwards the
 * signals a container runtime sends, reaps every zombie (as PID 1, or as a
 * child subreaper otherwise), exits with the program's status, and keeps
 * answering probes while the program is out of memory. Its own memory is
 * fixed: every table is sized at build time (see state.h); the only heap use
 * of the main loop (the journal's JSON, once a second) is freed at once.
 *
 * One thread runs the loop below (signalfd + timerfd, no signal handlers);
 * libmicrohttpd runs the HTTP side in a thread of its own and only reads a
 * copy of the state published at each sample.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/envspec.h"
#include "host/launch.h"
#include "host/msg.h"
#include "store/quarantine.h"
#include "supervisor/supervisor.h"
#include "supervisor/pprof.h"

static struct sup S;           /* static: the supervisor's size is fixed */

static void tick(struct sup *s)
{
	uint64_t now = sup_now_ms(), prev_oom = s->st.oom_kill;
	struct sup_state *st = &s->st;

	sup_state_sample(s);
	if (st->oom_kill > prev_oom && st->child_up && !s->oom_pending_ms) {
		s->oom_pending_ms = now;
		s->oom_pending_from = prev_oom;
		s->fig_oom = s->fig_prev;
	}
	if (s->oom_pending_ms && st->child_up) {
		siginfo_t si = {0};
		int seen = 0;

		/* Another process seen dead: not the main program, which an
		 * OOM kill may leave unreaped (but already dead to the segment's
		 * reader) while its memory is freed; taking its death for a
		 * worker's would make its own end a plain SIGKILL. */
		for (uint32_t i = 0; i < st->nprocs; i++)
			seen |= !st->procs[i].alive && st->procs[i].pid != st->child_pid;
		/* The main program's own death is classified when it is reaped;
		 * here, another process of the program. Wait for the victim to
		 * be seen dead (its scopes are in this sample), at most 2 s. */
		if (waitid(P_PID, (id_t)st->child_pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid == 0 && (seen || now - s->oom_pending_ms >= 2000)) {
			struct sup_death d = {.cause = SUP_CAUSE_OOM_KILL,
					      .oom_before = s->oom_pending_from,
					      .oom_after = st->oom_kill,
					      .status = SIGKILL,
					      .runtime_ms = now - s->child_start_ms,
					      .at = s->fig_oom};

			snprintf(d.detail, sizeof(d.detail),
				 "a process of the program was OOM-killed (cgroup oom_kill %llu -> %llu); "
				 "the main process %d lives on",
				 (unsigned long long)d.oom_before, (unsigned long long)d.oom_after,
				 (int)st->child_pid);
			/* The victim's scopes, when its slot was retired at an
			 * earlier sample than this one. */
			uint32_t had = st->nscopes;
			for (uint32_t k = 0; k < s->ndead_scopes && st->nscopes < SUP_MAX_SCOPES; k++) {
				int present = 0;
				for (uint32_t j = 0; j < had; j++)
					present |= st->scopes[j].pid == s->dead_scopes[k].pid;
				if (!present)
					st->scopes[st->nscopes++] = s->dead_scopes[k];
			}
			sup_write_report(s, &d);
			st->nscopes = had;
			s->ndead_scopes = 0;
			/* That kill is accounted for: the main program's own end
			 * is an OOM kill only if the counter rises again. */
			s->oom_at_start = st->oom_kill;
			s->oom_pending_ms = 0;
		}
	}
	/* Nothing pending: the scopes of the dead are of no report. */
	if (!s->oom_pending_ms)
		s->ndead_scopes = 0;
	if (st->now_s != s->last_second) {
		s->last_second = st->now_s;
		sup_timeline_push(st);
		st->sup_rss = mf_self_rss();
		if (st->quarantine_on)
			sup_quar_counts(&st->quarantine_recorded, &st->quarantine_errors,
					&st->quarantine_dropped);
		sup_journal_update(s, NULL);
		sup_model_save(st, 0);
		/* Each process of the program leaves its snapshot under its own
		 * pid: a server that replaces its workers makes new ones. */
		if (s->cfg.profile && st->now_s % SUP_PRUNE_EVERY_S == 0)
			sup_profiles_prune(s->cfg.report_dir);
		if (s->cfg.profile_push.url)
			sup_pprof_procs(st);
	}
	sup_health_eval(&s->health, st, now, st->now_s);
	sup_serving_tick(s, now);
	if (st->child_up && st->child_stopped) {
		/* A stopped program answers nobody: neither live nor ready. */
		const char *sig = sigabbrev_np(st->child_stopped);

		st->health.live = st->health.ready = 0;
		snprintf(st->health.live_reason, sizeof(st->health.live_reason),
			 "not live: the program is stopped (SIG%s)", sig ? sig : "?");
		snprintf(st->health.ready_reason, sizeof(st->health.ready_reason),
			 "not ready: the program is stopped (SIG%s)", sig ? sig : "?");
	}
	sup_recycle_tick(s, now);
	sup_drain_tick(s);
	if (s->seg.open)
		/* The limit always (the gate measures room against it); a
		 * min_size of 0 keeps the container check off. */
		sup_seg_publish(&s->seg, st->limit, st->working_set, st->reserve,
				s->cfg.container_min);
	if (s->http)
		sup_publish(st);
}

static int exit_code(int ws)
{
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws);
	return 128 + WTERMSIG(ws);
}

static int stop_signal(int sig)
{
	return sig == SIGTERM || sig == SIGINT || sig == SIGQUIT;
}

static int setup_fds(struct sup *s)
{
	sigset_t set;
	struct itimerspec its = {0};

	sigemptyset(&set);
	for (size_t i = 0; i < sup_nforwarded; i++)
		sigaddset(&set, sup_forwarded[i]);
	sigaddset(&set, SIGCHLD);
	/* Blocked before any thread starts, so the HTTP thread inherits the
	 * mask and every signal reaches the signalfd. */
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	s->sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (s->sfd < 0 || s->tfd < 0)
		return -1;
	its.it_value.tv_sec = (time_t)(s->cfg.interval_ms / 1000);
	its.it_value.tv_nsec = (long)(s->cfg.interval_ms % 1000) * 1000000;
	its.it_interval = its.it_value;
	return timerfd_settime(s->tfd, 0, &its, NULL);
}

/*
 * The first connection to the bound port: load libmicrohttpd and serve,
 * the state published first so that the first answer is current. A server
 * that cannot start says why once and closes its port (probes are refused,
 * so an orchestrator replaces the container); the program goes on.
 */
static void http_serve(struct sup *s)
{
	struct sup_http *h = s->http_pending;
	char err[512];

	s->http_pending = NULL;
	sup_publish(&s->st);
	if (sup_http_serve(h, err, sizeof(err)) < 0) {
		mf_err("%s; the port is closed, the program goes on", err);
		sup_http_stop(h);
		return;
	}
	s->http = h;
	sup_protect_relock(s);
	if (s->cfg.profile && !sup_pprof_running() &&
	    sup_pprof_start(s->cfg.report_dir, &s->cfg.profile_push, err, sizeof(err)) < 0)
		mf_err("%s; /debug/pprof is off", err);
}

/*
 * The loop: signals and the sampling timer, until the program has ended for
 * good (returns 0, its exit code in *code) or a restart is due (returns 1
 * once the backoff delay has passed; probes and metrics go on meanwhile).
 */
static int loop(struct sup *s, int *code)
{
	uint64_t restart_at = 0;
	struct pollfd pf[3] = {{.fd = s->sfd, .events = POLLIN}, {.fd = s->tfd, .events = POLLIN},
			       {.fd = -1, .events = POLLIN}};

	for (;;) {
		struct signalfd_siginfo si;
		uint64_t expirations;

		pf[2].fd = sup_http_pending_fd(s->http_pending);    /* -1: not polled */
		pf[2].revents = 0;
		if (poll(pf, 3, -1) < 0 && errno != EINTR) {
			mf_err("poll: %s", strerror(errno));
			*code = MF_EXIT_FAILURE;
			return 0;
		}
		while (read(s->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			int sig = (int)si.ssi_signo;

			if (sig != SIGCHLD) {
				if (stop_signal(sig)) {
					s->stopping = sig;
					sup_model_freeze();
					/* Before the signal: a program that drains
					 * on it reads its grace there. */
					sup_drain_tick(s);
				}
				if (s->st.child_up) {
					s->last_forwarded = sig;
					/* Ctrl-C, Ctrl-\, a resized or hung-up terminal:
					 * the kernel signals the whole foreground process
					 * group, the program included. Sending it again
					 * would deliver it twice. */
					if (!(si.ssi_code == SI_KERNEL &&
					      getpgid(s->st.child_pid) == getpgrp()))
						kill(s->st.child_pid, sig);
					/* A stopped program would hold a stop until someone
					 * continued it, and the supervisor with it. */
					if (stop_signal(sig))
						kill(s->st.child_pid, SIGCONT);
				} else if (s->stopping) {
					/* Waiting to restart: nothing to stop but us. */
					return 0;
				}
				continue;
			}
			/* SIGCHLD: reap everything, ours and adopted orphans, and
			 * hear when the program is stopped or continued. */
			for (;;) {
				int ws;
				pid_t p = waitpid(-1, &ws, WNOHANG | WUNTRACED | WCONTINUED);
				struct sup_death d;

				if (p <= 0)
					break;
				if (!s->st.child_up || p != s->st.child_pid)
					continue;
				if (WIFSTOPPED(ws) || WIFCONTINUED(ws)) {
					s->st.child_stopped = WIFSTOPPED(ws) ? WSTOPSIG(ws) : 0;
					tick(s);
					continue;
				}
				s->st.child_stopped = 0;
				sup_child_ended(s, ws, &d);
				*code = exit_code(ws);
				if (sup_recycle_whole_ending(s)) {
					/* Replaced on purpose: at once, no backoff. */
					restart_at = sup_now_ms();
					continue;
				}
				if (!sup_child_should_restart(s, &d))
					return 0;
				{
					uint64_t delay = sup_child_backoff_ms(s, d.runtime_ms);

					restart_at = sup_now_ms() + delay;
					mf_info("restarting the program in %.1fs",
						(double)delay / 1000.0);
				}
			}
		}
		if (pf[2].revents)
			http_serve(s);
		if (read(s->tfd, &expirations, sizeof(expirations)) > 0)
			tick(s);
		if (restart_at && sup_now_ms() >= restart_at)
			return 1;
	}
}

/* Open the quarantine store and spell it for the program's own client.
 * 0, or an exit status. */
static int quarantine_start(struct sup *s)
{
	char err[512];

	snprintf(s->quar_dir, sizeof(s->quar_dir), "%s",
		 s->cfg.state_dir ? s->cfg.state_dir : mf_quarantine_default_state_dir());
	if (sup_quar_start(s->cfg.quarantine, s->quar_dir, err, sizeof(err)) != 0) {
		mf_err("%s", err);
		return MF_EXIT_USAGE;
	}
	/* What the program gets, spelled so its client opens the same store. */
	if ((s->cfg.quarantine[0]
		     ? snprintf(s->quar_spec, sizeof(s->quar_spec), "%s", s->cfg.quarantine)
		     : snprintf(s->quar_spec, sizeof(s->quar_spec), "sqlite:%s/%s", s->quar_dir,
				MF_QUARANTINE_FILE)) >= (int)sizeof(s->quar_spec)) {
		mf_err("quarantine store name too long: %s", s->cfg.quarantine);
		sup_quar_stop();
		return MF_EXIT_USAGE;
	}
	return 0;
}

/* The state the endpoints and reports show from the start. */
static void state_init(struct sup *s)
{
	const struct mf_memory *mem = s->cfg.mem;

	mf_cgroup_sampler_init(&s->cg, mem, s->cfg.launch.root);
	s->st.limit = s->cfg.plan.limit;
	s->st.reserve = s->cfg.plan.reserve;
	s->st.budget = s->cfg.plan.budget;
	/* Without a memory cgroup limit (or one given), "the container" is
	 * the machine, whose usage the cgroup read does not describe: the
	 * check would refuse allocations on other processes' account. */
	if (s->cfg.plan.limit_source == MF_LIMIT_MEMTOTAL ||
	    s->cfg.plan.limit_source == MF_LIMIT_NONE)
		s->cfg.container_min = 0;
	s->st.container_min = s->cfg.container_min;
	memcpy(s->st.limit_from, s->cfg.plan.limit_from, sizeof(s->st.limit_from));
	s->st.limit_from[sizeof(s->st.limit_from) - 1] = '\0';
	snprintf(s->st.cgroup, sizeof(s->st.cgroup), "%s", mem->cgroup_path);
	s->st.cgroup_version = mem->cgroup_version;
	s->st.sup_pid = getpid();
	s->st.pid1 = getpid() == 1;
	s->st.started_s = sup_real_ns() / 1000000000u;
	s->st.accounting = s->cfg.launch.account == 1;
	s->st.quarantine_on = s->cfg.quarantine != NULL;
	if (s->cfg.health.fail_window_s == 0)
		s->cfg.health.fail_window_s = 60;
	sup_health_init(&s->health, &s->cfg.health);
}

int sup_run(const struct sup_config *cfg)
{
	struct sup *s = &S;
	struct sup_http *http = NULL;
	char err[512];
	int code = 0;
	static int ran;

	/* Static storage is zero at the first run: writing it whole would
	 * fault in every page of its tables before the program starts (and
	 * copy them at the fork). */
	if (ran)
		memset(s, 0, sizeof(*s));
	ran = 1;
	s->cfg = *cfg;
	mf_log_source("supervisor");
	s->sfd = s->tfd = s->lock_fd = -1;
	s->seg.on_dead = sup_child_on_dead;
	s->seg.dead_ctx = s;
	if (s->cfg.profile) {
		int e = sup_mkdirs(s->cfg.report_dir);
		if (e != 0) {
			mf_err("cannot create the report directory %s: %s", s->cfg.report_dir,
			       strerror(-e));
			return MF_EXIT_FAILURE;
		}
		sup_profiles_prune(s->cfg.report_dir);
	}
	if (s->cfg.launch.account == 1 && !mf_preload_path("libmemfence.so")) {
		mf_err("libmemfence.so not found (looked in " MF_PRELOAD_SEARCH "); "
		       "use --no-account to run without accounting");
		return MF_EXIT_FAILURE;
	}
	state_init(s);
	if (sup_state_dir_lock(s) < 0)
		return MF_EXIT_FAILURE;
	if (sup_segment_path(s) < 0) {
		code = MF_EXIT_USAGE;
		goto out_lock;
	}
	if (s->st.quarantine_on && (code = quarantine_start(s)) != 0)
		goto out_lock;
	if (sup_state_dir_prepare(s) < 0) {
		sup_quar_stop();
		code = MF_EXIT_FAILURE;
		goto out_lock;
	}
	if (!s->st.pid1) {
		s->st.subreaper = prctl(PR_SET_CHILD_SUBREAPER, 1) == 0;
		if (!s->st.subreaper)
			mf_warn("cannot become a child subreaper (%s): orphans of the program will not be reaped here",
				strerror(errno));
	}
	if (setup_fds(s) < 0) {
		mf_err("cannot set up signal handling: %s", strerror(errno));
		sup_quar_stop();
		return MF_EXIT_FAILURE;
	}
	if (s->cfg.http) {
		http = sup_http_listen(s->cfg.http, err, sizeof(err));
		if (!http) {
			mf_err("%s", err);
			code = MF_EXIT_FAILURE;
			goto out_fds;
		}
	}
	sup_model_start(&s->st, s->cfg.state_dir, s->cfg.report_dir, s->cfg.model_window_s);
	sup_recycle_init(s);
	sup_serving_init(s);
	for (;;) {
		if ((code = sup_child_start(s)) != 0)
			break;
		/* What the program's start does not wait for: it runs on another
		 * CPU meanwhile (docs/performance.md). The program started
		 * before the supervisor took oom_score_adj -1000 has nothing to
		 * undo; a restart does (sup_protect_undo()). */
		if (!s->started_once) {
			/* The first sample, taken as the program started. */
			s->st.oom_kill_at_start = s->oom_at_start;
			sup_protect(s);
			sup_segment_sweep(s);
			s->started_once = 1;
		}
		/* Served from its first connection on (sup_http_listen()). */
		if (http && !s->http)
			s->http_pending = http;
		/* The push: from the program's first start; /debug/pprof from
		 * the server's (http_serve()). */
		if (s->cfg.profile && s->cfg.profile_push.url && !sup_pprof_running() &&
		    sup_pprof_start(s->cfg.report_dir, &s->cfg.profile_push, err, sizeof(err)) < 0) {
			mf_err("%s", err);
			kill(s->st.child_pid, SIGKILL);
			waitpid(s->st.child_pid, NULL, 0);
			code = MF_EXIT_FAILURE;
			break;
		}
		tick(s);
		if (loop(s, &code) == 0)
			break;
		s->st.restarts++;
	}
	sup_pprof_stop();
	sup_http_stop(http);
	if (s->cfg.profile)
		sup_profiles_prune(s->cfg.report_dir);
	sup_model_stop(&s->st);
	sup_recycle_stop(s);
	sup_serving_stop(s);
	if (s->cfg.state_dir)
		sup_journal_close(s->cfg.state_dir);
out_fds:
	sup_quar_stop();
	sup_seg_close(&s->seg, 1);
	close(s->sfd);
	close(s->tfd);
out_lock:
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	return code;
}
