/*
 * pprof.c - see pprof.h.
 *
 * One round serves every request queued while it runs: the processes the
 * requests name are asked for a snapshot (SIGUSR2, the signal the profiler
 * already answers), their files are watched until each has been replaced
 * or SUP_PPROF_FRESH_MS has passed, then each file is loaded once and every
 * request gets its merge. So concurrent scrapes share one snapshot, and a
 * program that does not answer (stopped, the signal off, a process at its
 * limit) costs a scrape the bound and an older snapshot, never a hang.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "host/file.h"
#include "supervisor/pprof.h"

#define POLL_MS 20

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	int running, stopping;
	struct sup_pprof_job *head;
	char dir[MF_PATH_MAX];
	int ask_signal;
} P = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* A process's snapshot in this round. */
struct snap {
	int32_t pid;
	int asked;
	ino_t ino;            /* before the round; 0 = no file */
	struct timespec mtime;
	int loaded;           /* 1 loaded, -1 cannot be read */
	struct mf_profile prof;
	uint64_t age_s;
};

static void snap_path(int32_t pid, char *buf, size_t len)
{
	snprintf(buf, len, "%s/memfence-%d.prof", P.dir, (int)pid);
}

static void snap_stat(struct snap *s, ino_t *ino, struct timespec *mtime)
{
	char path[MF_PATH_MAX + 32];
	struct stat st;

	snap_path(s->pid, path, sizeof(path));
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
		*ino = st.st_ino;
		*mtime = st.st_mtim;
	} else {
		*ino = 0;
		memset(mtime, 0, sizeof(*mtime));
	}
}

/* Replaced since the round began (written through a new file renamed over
 * the old one: a new inode), or its process has gone. */
static int snap_fresh(struct snap *s)
{
	ino_t ino;
	struct timespec m;

	if (!s->asked)
		return 1;
	snap_stat(s, &ino, &m);
	if (ino && (ino != s->ino || m.tv_sec != s->mtime.tv_sec || m.tv_nsec != s->mtime.tv_nsec))
		return 1;
	return kill(s->pid, 0) < 0 && errno == ESRCH;
}

static struct snap *snap_find(struct snap *snaps, int n, int32_t pid)
{
	for (int i = 0; i < n; i++)
		if (snaps[i].pid == pid)
			return &snaps[i];
	return NULL;
}

static void snap_load(struct snap *s)
{
	char path[MF_PATH_MAX + 32], err[256];
	struct stat st;

	if (s->loaded)
		return;
	snap_path(s->pid, path, sizeof(path));
	s->loaded = -1;
	if (stat(path, &st) != 0 || mf_profile_load(path, &s->prof, err, sizeof(err)) != 0)
		return;
	s->loaded = 1;
	s->age_s = (uint64_t)(time(NULL) > st.st_mtime ? time(NULL) - st.st_mtime : 0);
}

static void answer_text(struct sup_pprof_job *j, unsigned code, const char *msg)
{
	size_t n = strlen(msg);

	j->code = code;
	j->body = malloc(n + 2);
	j->body_len = j->body ? n + 1 : 0;
	if (j->body)
		snprintf(j->body, n + 2, "%s\n", msg);
}

static void answer(struct sup_pprof_job *j, struct snap *snaps, int *nsnaps)
{
	struct mf_profile ps[SUP_MAX_PROCS];
	int n = 0;
	char err[256];
	FILE *f;

	j->age_s = 0;
	for (int i = 0; i < j->npids; i++) {
		struct snap *s = snap_find(snaps, *nsnaps, j->pids[i]);

		/* Queued while the round waited: its newest snapshot. */
		if (!s && *nsnaps < SUP_MAX_PROCS) {
			s = &snaps[(*nsnaps)++];
			memset(s, 0, sizeof(*s));
			s->pid = j->pids[i];
		}
		if (!s)
			continue;
		snap_load(s);
		if (s->loaded != 1)
			continue;
		ps[n++] = s->prof;
		if (s->age_s > j->age_s)
			j->age_s = s->age_s;
	}
	if (n == 0) {
		answer_text(j, 503, j->npids ? "no snapshot yet: the program's processes have written "
						"none (is the profiler on in them?)"
					     : "the program is not running");
		return;
	}
	f = open_memstream(&j->body, &j->body_len);
	if (!f) {
		answer_text(j, 500, "cannot make the profile: out of memory");
		return;
	}
	if (mf_profile_write_heap(ps, n, j->view, f, err, sizeof(err)) != 0) {
		fclose(f);
		free(j->body);
		answer_text(j, 500, err);
		return;
	}
	fclose(f);
	j->code = 200;
}

static uint64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void round_once(void)
{
	static struct snap snaps[SUP_MAX_PROCS];
	struct sup_pprof_job *jobs, *j;
	int n = 0;
	uint64_t end;

	pthread_mutex_lock(&P.lock);
	for (j = P.head; j; j = j->next)
		for (int i = 0; i < j->npids; i++) {
			struct snap *s = snap_find(snaps, n, j->pids[i]);

			if (!s && n < SUP_MAX_PROCS) {
				s = &snaps[n++];
				memset(s, 0, sizeof(*s));
				s->pid = j->pids[i];
			}
			if (s && j->alive[i])
				s->asked = P.ask_signal;
		}
	pthread_mutex_unlock(&P.lock);

	for (int i = 0; i < n; i++)
		if (snaps[i].asked) {
			snap_stat(&snaps[i], &snaps[i].ino, &snaps[i].mtime);
			if (kill(snaps[i].pid, SIGUSR2) < 0)
				snaps[i].asked = 0;
		}
	end = mono_ms() + SUP_PPROF_FRESH_MS;
	for (;;) {
		int all = 1;

		for (int i = 0; i < n && all; i++)
			all = snap_fresh(&snaps[i]);
		if (all || mono_ms() >= end || __atomic_load_n(&P.stopping, __ATOMIC_RELAXED))
			break;
		usleep(POLL_MS * 1000);
	}

	/* Every request queued by now shares what was just taken. */
	pthread_mutex_lock(&P.lock);
	jobs = P.head;
	P.head = NULL;
	pthread_mutex_unlock(&P.lock);
	while (jobs) {
		j = jobs;
		jobs = j->next;
		answer(j, snaps, &n);
		j->done(j);
	}
	for (int i = 0; i < n; i++)
		if (snaps[i].loaded == 1)
			mf_profile_free(&snaps[i].prof);
}

static void *run(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&P.lock);
	for (;;) {
		while (!P.head && !P.stopping)
			pthread_cond_wait(&P.wake, &P.lock);
		if (P.stopping)
			break;
		pthread_mutex_unlock(&P.lock);
		round_once();
		pthread_mutex_lock(&P.lock);
	}
	pthread_mutex_unlock(&P.lock);
	return NULL;
}

int sup_pprof_start(const char *dir, int ask_signal)
{
	sigset_t all, old;
	int e;

	snprintf(P.dir, sizeof(P.dir), "%s", dir);
	P.ask_signal = ask_signal;
	P.stopping = 0;
	/* The supervisor takes its signals through a signalfd: none for
	 * this thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	e = pthread_create(&P.thread, NULL, run, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e) {
		errno = e;
		return -1;
	}
	P.running = 1;
	return 0;
}

void sup_pprof_submit(struct sup_pprof_job *job)
{
	pthread_mutex_lock(&P.lock);
	if (!P.running || P.stopping) {
		pthread_mutex_unlock(&P.lock);
		answer_text(job, 503, "the supervisor is stopping");
		job->done(job);
		return;
	}
	job->next = P.head;
	P.head = job;
	pthread_cond_signal(&P.wake);
	pthread_mutex_unlock(&P.lock);
}

void sup_pprof_stop(void)
{
	struct sup_pprof_job *jobs;

	if (!P.running)
		return;
	pthread_mutex_lock(&P.lock);
	__atomic_store_n(&P.stopping, 1, __ATOMIC_RELAXED);
	pthread_cond_signal(&P.wake);
	pthread_mutex_unlock(&P.lock);
	pthread_join(P.thread, NULL);
	pthread_mutex_lock(&P.lock);
	jobs = P.head;
	P.head = NULL;
	P.running = 0;
	pthread_mutex_unlock(&P.lock);
	while (jobs) {
		struct sup_pprof_job *j = jobs;

		jobs = j->next;
		answer_text(j, 503, "the supervisor is stopping");
		j->done(j);
	}
}
