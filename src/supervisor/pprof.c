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
 *
 * The push (--profile-push) is a round of its own every interval, its
 * profile posted as Pyroscope's ingest API takes pprof: POST
 * BASE/ingest?name=NAME&from=T0&until=T1&format=pprof, a multipart form
 * whose field "profile" is the gzipped pprof, "prev_profile" the previous
 * push's (Pyroscope subtracts it from the cumulative allocation types) and
 * "sample_type_config" how each sample type aggregates. libcurl is loaded
 * by soname when the push starts (host/dynlib.h): runs without a push
 * never load it.
 */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/env.h"
#include "base/envspec.h"
#include "host/dynlib.h"
#include "host/file.h"
#include "host/msg.h"
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
	/* The push: its configuration, the program's processes (published
	 * by the main loop), when it is due, the previous profile sent. */
	char push_url[1024], push_name[256];
	uint64_t push_every_ms, push_due_ms, push_from_s;
	int32_t procs[SUP_MAX_PROCS];
	int nprocs;
	char *prev;
	size_t prev_len;
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

/* ---- the push ---- */

static struct {
	__typeof__(curl_easy_init) *easy_init;
	__typeof__(curl_easy_setopt) *easy_setopt;
	__typeof__(curl_easy_perform) *easy_perform;
	__typeof__(curl_easy_getinfo) *easy_getinfo;
	__typeof__(curl_easy_cleanup) *easy_cleanup;
	__typeof__(curl_easy_strerror) *easy_strerror;
	__typeof__(curl_easy_escape) *easy_escape;
	__typeof__(curl_free) *free;
	__typeof__(curl_mime_init) *mime_init;
	__typeof__(curl_mime_addpart) *mime_addpart;
	__typeof__(curl_mime_name) *mime_name;
	__typeof__(curl_mime_filename) *mime_filename;
	__typeof__(curl_mime_data) *mime_data;
	__typeof__(curl_mime_type) *mime_type;
	__typeof__(curl_mime_free) *mime_free;
} cu;

static int curl_load(char *err, size_t errlen)
{
	const struct mf_dynsym syms[] = {
		{"curl_easy_init", (void **)&cu.easy_init},
		{"curl_easy_setopt", (void **)&cu.easy_setopt},
		{"curl_easy_perform", (void **)&cu.easy_perform},
		{"curl_easy_getinfo", (void **)&cu.easy_getinfo},
		{"curl_easy_cleanup", (void **)&cu.easy_cleanup},
		{"curl_easy_strerror", (void **)&cu.easy_strerror},
		{"curl_easy_escape", (void **)&cu.easy_escape},
		{"curl_free", (void **)&cu.free},
		{"curl_mime_init", (void **)&cu.mime_init},
		{"curl_mime_addpart", (void **)&cu.mime_addpart},
		{"curl_mime_name", (void **)&cu.mime_name},
		{"curl_mime_filename", (void **)&cu.mime_filename},
		{"curl_mime_data", (void **)&cu.mime_data},
		{"curl_mime_type", (void **)&cu.mime_type},
		{"curl_mime_free", (void **)&cu.mime_free},
	};

	return mf_dynlib_need(MF_DYNLIB_CURL, syms, sizeof(syms) / sizeof(syms[0]),
			      "--profile-push", NULL, err, errlen);
}

/* How Pyroscope aggregates each sample type: the in-use ones are a level
 * (averaged over the pushes merged), the allocation ones a running total
 * (the difference from prev_profile). */
static const char sample_types[] =
	"{\"inuse_space\":{\"units\":\"bytes\",\"aggregation\":\"average\"},"
	"\"inuse_objects\":{\"units\":\"objects\",\"aggregation\":\"average\"},"
	"\"alloc_space\":{\"units\":\"bytes\",\"cumulative\":true},"
	"\"alloc_objects\":{\"units\":\"objects\",\"cumulative\":true}}";

static void part(curl_mime *m, const char *name, const char *file, const char *type,
		 const char *data, size_t len)
{
	curl_mimepart *p = cu.mime_addpart(m);

	cu.mime_name(p, name);
	if (file)
		cu.mime_filename(p, file);
	cu.mime_type(p, type);
	cu.mime_data(p, data, len);
}

/* Each kind of failure is logged once: a server that stays away must not
 * fill the log. kind: a libcurl code, or 1000 + an HTTP status. */
static void push_failed(long kind, const char *what)
{
	static long logged[32];
	static int nlogged;

	for (int i = 0; i < nlogged; i++)
		if (logged[i] == kind)
			return;
	if (nlogged < (int)(sizeof(logged) / sizeof(logged[0])))
		logged[nlogged++] = kind;
	mf_warn("--profile-push %s: %s (the profiles are still served and written; this kind "
		"of failure is not logged again)", P.push_url, what);
}

/* A push under way ends when the supervisor stops, not at its timeout. */
static int push_progress(void *cls, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)cls, (void)dt, (void)dn, (void)ut, (void)un;
	return __atomic_load_n(&P.stopping, __ATOMIC_RELAXED);
}

static void post(const char *body, size_t len, uint64_t from_s, uint64_t until_s)
{
	CURL *h = cu.easy_init();
	curl_mime *m;
	char url[1400], why[300];
	char *name;
	CURLcode rc;
	long status = 0;

	if (!h) {
		push_failed(CURLE_FAILED_INIT, "libcurl cannot start a request");
		return;
	}
	name = cu.easy_escape(h, P.push_name, 0);
	snprintf(url, sizeof(url), "%s/ingest?name=%s&from=%llu&until=%llu&format=pprof&spyName=memfence",
		 P.push_url, name ? name : "memfence", (unsigned long long)from_s,
		 (unsigned long long)until_s);
	cu.free(name);
	m = cu.mime_init(h);
	part(m, "profile", "profile.pprof", "application/octet-stream", body, len);
	if (P.prev)
		part(m, "prev_profile", "profile.pprof", "application/octet-stream", P.prev, P.prev_len);
	part(m, "sample_type_config", "sample_type_config.json", "application/json", sample_types,
	     sizeof(sample_types) - 1);
	cu.easy_setopt(h, CURLOPT_URL, url);
	cu.easy_setopt(h, CURLOPT_MIMEPOST, m);
	/* A thread of a process with signal handling of its own: no alarms. */
	cu.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	cu.easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)SUP_PPROF_PUSH_TIMEOUT_MS);
	cu.easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)SUP_PPROF_PUSH_TIMEOUT_MS / 2);
	cu.easy_setopt(h, CURLOPT_USERAGENT, "memfence/" MF_VERSION);
	cu.easy_setopt(h, CURLOPT_XFERINFOFUNCTION, push_progress);
	cu.easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	rc = cu.easy_perform(h);
	if (rc == CURLE_ABORTED_BY_CALLBACK) {
		/* Stopping: not a failure of the server. */
	} else if (rc != CURLE_OK) {
		snprintf(why, sizeof(why), "%s", cu.easy_strerror(rc));
		push_failed(rc, why);
	} else {
		cu.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		if (status < 200 || status > 299) {
			snprintf(why, sizeof(why), "the server answered HTTP %ld", status);
			push_failed(1000 + status, why);
		}
	}
	cu.mime_free(m);
	cu.easy_cleanup(h);
}

static void push_done(struct sup_pprof_job *j)
{
	(void)j;
}

static void push_once(void)
{
	struct sup_pprof_job *j = calloc(1, sizeof(*j));
	uint64_t now_s = (uint64_t)time(NULL);

	if (!j)
		return;
	j->view = MF_VIEW_ALLOCATED;
	j->done = push_done;
	pthread_mutex_lock(&P.lock);
	for (int i = 0; i < P.nprocs; i++) {
		j->pids[i] = P.procs[i];
		j->alive[i] = 1;
	}
	j->npids = P.nprocs;
	j->next = P.head;
	P.head = j;
	pthread_mutex_unlock(&P.lock);
	round_once();
	if (j->code == 200) {
		post(j->body, j->body_len, P.push_from_s, now_s);
		free(P.prev);
		P.prev = j->body;
		P.prev_len = j->body_len;
		j->body = NULL;
		P.push_from_s = now_s;
	} else if (j->npids) {
		push_failed(-1, "no snapshot of the program to push yet");
	}
	free(j->body);
	free(j);
}

static void *run(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&P.lock);
	for (;;) {
		while (!P.head && !P.stopping) {
			if (!P.push_every_ms) {
				pthread_cond_wait(&P.wake, &P.lock);
				continue;
			}
			if (mono_ms() >= P.push_due_ms)
				break;
			struct timespec until;
			uint64_t wait = P.push_due_ms - mono_ms();

			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_sec += (time_t)(wait / 1000);
			until.tv_nsec += (long)(wait % 1000) * 1000000;
			if (until.tv_nsec >= 1000000000) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&P.wake, &P.lock, &until);
		}
		if (P.stopping)
			break;
		pthread_mutex_unlock(&P.lock);
		if (P.push_every_ms && mono_ms() >= P.push_due_ms) {
			P.push_due_ms = mono_ms() + P.push_every_ms;
			push_once();
		} else {
			round_once();
		}
		pthread_mutex_lock(&P.lock);
	}
	pthread_mutex_unlock(&P.lock);
	return NULL;
}

int sup_pprof_running(void)
{
	return __atomic_load_n(&P.running, __ATOMIC_ACQUIRE);
}

void sup_pprof_procs(const struct sup_state *st)
{
	pthread_mutex_lock(&P.lock);
	P.nprocs = 0;
	for (uint32_t i = 0; i < st->nprocs && i < SUP_MAX_PROCS; i++)
		if (st->procs[i].alive)
			P.procs[P.nprocs++] = st->procs[i].pid;
	pthread_mutex_unlock(&P.lock);
}

int sup_pprof_start(const char *dir, const struct sup_pprof_push *push, char *err, size_t errlen)
{
	const char *sig = getenv(MF_ENV(PROFILE_SIGNAL));
	sigset_t all, old;
	int e, on = 1;

	/* The program's processes answer SIGUSR2 unless the user turned the
	 * signal off (child.c sets it otherwise). */
	if (sig && mf_env_bool(sig, &on) != 0)
		on = 0;
	snprintf(P.dir, sizeof(P.dir), "%s", dir);
	P.ask_signal = on;
	P.stopping = 0;
	P.push_every_ms = 0;
	if (push && push->url) {
		if (curl_load(err, errlen) < 0)
			return -1;
		snprintf(P.push_url, sizeof(P.push_url), "%s", push->url);
		/* "http://host:4040/" and "http://host:4040" are one server. */
		for (size_t n = strlen(P.push_url); n > 0 && P.push_url[n - 1] == '/'; n--)
			P.push_url[n - 1] = '\0';
		snprintf(P.push_name, sizeof(P.push_name), "%s", push->name);
		P.push_every_ms = push->interval_ms;
		P.push_due_ms = mono_ms() + push->interval_ms;
		P.push_from_s = (uint64_t)time(NULL);
	}
	/* The supervisor takes its signals through a signalfd: none for
	 * this thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	e = pthread_create(&P.thread, NULL, run, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e) {
		snprintf(err, errlen, "--profile: cannot start the profiles' thread: %s", strerror(e));
		return -1;
	}
	__atomic_store_n(&P.running, 1, __ATOMIC_RELEASE);
	return 0;
}

void sup_pprof_submit(struct sup_pprof_job *job)
{
	pthread_mutex_lock(&P.lock);
	if (!sup_pprof_running() || P.stopping) {
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

	if (!sup_pprof_running())
		return;
	pthread_mutex_lock(&P.lock);
	__atomic_store_n(&P.stopping, 1, __ATOMIC_RELAXED);
	pthread_cond_signal(&P.wake);
	pthread_mutex_unlock(&P.lock);
	pthread_join(P.thread, NULL);
	pthread_mutex_lock(&P.lock);
	jobs = P.head;
	P.head = NULL;
	__atomic_store_n(&P.running, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&P.lock);
	free(P.prev);
	P.prev = NULL;
	while (jobs) {
		struct sup_pprof_job *j = jobs;

		jobs = j->next;
		answer_text(j, 503, "the supervisor is stopping");
		j->done(j);
	}
}
