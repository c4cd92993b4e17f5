/*
 * quar.c - the supervisor records quarantine deaths.
 *
 * When a process of the program dies with scopes in flight, each scope with
 * an id (a task id, a request's idempotency key) counts one death in the
 * quarantine store (core/quarantine.h). The main loop must not wait for
 * the store: a Redis that hangs costs up to its timeout per call, and the
 * loop samples the cgroup and publishes the container's headroom several
 * times a second. So the loop only copies the death into a fixed queue,
 * and one thread of its own opens the store and writes. Deaths are rare
 * (one batch per dead worker); a queue that is full drops the death and
 * counts it, rather than growing.
 *
 * Most runs record no death: the thread starts, and the store is opened
 * (SQLite loaded, the file created with its fsyncs), at the first one. A
 * short program pays none of it, at start or at exit (docs/performance.md).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/envspec.h"
#include "host/msg.h"
#include "host/memory.h"
#include "supervisor/common.h"
#include "supervisor/quar.h"
#include "store/quarantine.h"
#include "base/size.h"

#define QUEUE_LEN 128

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	int running, started, stop;
	struct sup_qdeath q[QUEUE_LEN];
	unsigned head, len;
	struct mf_qstore *store;   /* the writer thread's only, once started */
	char spec[MF_PATH_MAX + 16];
	char state_dir[MF_PATH_MAX];
	int timeout_ms;
	uint32_t threshold;
	char host[MF_QUARANTINE_HOST_MAX + 1];
	uint64_t recorded, errors, dropped;
} Q = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static enum mf_quarantine_cause qcause(enum sup_cause c)
{
	switch (c) {
	case SUP_CAUSE_OOM_KILL: return MF_QCAUSE_OOM_KILL;
	case SUP_CAUSE_SIGKILL: return MF_QCAUSE_SIGKILL;
	case SUP_CAUSE_SIGNAL: return MF_QCAUSE_SIGNAL;
	case SUP_CAUSE_EXIT: return MF_QCAUSE_EXIT;
	default: return MF_QCAUSE_UNKNOWN;
	}
}

static void fmt_size(char *buf, size_t len, uint64_t v)
{
	if (v == MF_QUARANTINE_UNKNOWN)
		snprintf(buf, len, "?");
	else
		mf_size_format(v, buf, len);
}

static void write_one(const struct sup_qdeath *d)
{
	struct mf_quarantine_death qd = {
		.id = d->id,
		.name = d->name[0] ? d->name : NULL,
		.host = Q.host[0] ? Q.host : NULL,
		.cause = qcause(d->cause),
		.peak = d->peak,
		.allocated = d->allocated,
		.net = d->net,
		.threshold = Q.threshold,
	};
	struct mf_quarantine_record r;
	char err[512], peak[32];
	int rc;

	if (!Q.store) {
		struct mf_qstore_opts o = {.state_dir = Q.state_dir, .timeout_ms = Q.timeout_ms};

		rc = mf_qstore_open(Q.spec, &o, &Q.store, err, sizeof(err));
		if (rc) {
			__atomic_add_fetch(&Q.errors, 1, __ATOMIC_RELAXED);
			mf_warn("quarantine: cannot record the death of %s: %s", d->id, err);
			return;
		}
	}
	rc = mf_qstore_record(Q.store, &qd, &r);
	if (rc < 0) {
		__atomic_add_fetch(&Q.errors, 1, __ATOMIC_RELAXED);
		mf_warn("quarantine: cannot record the death of %s: %s", d->id,
			mf_qstore_error(Q.store));
		return;
	}
	__atomic_add_fetch(&Q.recorded, 1, __ATOMIC_RELAXED);
	fmt_size(peak, sizeof(peak), d->peak);
	mf_log(MF_LOG_WARNING, "task", d->id,
	       "quarantine: %s (%s) died with pid %d (%s, peak %s): death %llu of %u%s%s",
		d->id, d->name[0] ? d->name : "-", (int)d->pid, mf_quarantine_cause_name(qd.cause),
		peak, (unsigned long long)r.deaths, r.threshold,
		mf_quarantine_is_quarantined(&r, 0) ? "; quarantined" : "",
		rc == 1 ? " (kept locally: the store is unreachable)" : "");
}

static void *writer(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&Q.lock);
	for (;;) {
		struct sup_qdeath d;

		while (Q.len == 0 && !Q.stop)
			pthread_cond_wait(&Q.cond, &Q.lock);
		if (Q.len == 0)
			break;
		d = Q.q[Q.head];
		Q.head = (Q.head + 1) % QUEUE_LEN;
		Q.len--;
		pthread_mutex_unlock(&Q.lock);
		write_one(&d);
		pthread_mutex_lock(&Q.lock);
	}
	pthread_mutex_unlock(&Q.lock);
	return NULL;
}

static uint64_t env_u64(const char *name, uint64_t def, uint64_t max)
{
	const char *v = getenv(name);
	char *end;
	unsigned long long n;

	if (!v || !*v)
		return def;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || end == v || *end || n == 0 || n > max) {
		mf_warn("ignoring %s='%s': expected a number from 1 to %llu", name, v,
			(unsigned long long)max);
		return def;
	}
	return n;
}

int sup_quar_start(const char *spec, const char *state_dir, char *err, size_t errlen)
{
	struct mf_qstore_opts o;
	int rc;

	snprintf(Q.state_dir, sizeof(Q.state_dir), "%s", state_dir);
	snprintf(Q.spec, sizeof(Q.spec), "%s", spec ? spec : "");
	Q.timeout_ms = (int)env_u64(MF_ENV(REDIS_TIMEOUT), MF_QUARANTINE_TIMEOUT_DEFAULT, 600000);
	Q.threshold = (uint32_t)env_u64(MF_ENV(QUARANTINE_THRESHOLD),
					MF_QUARANTINE_THRESHOLD_DEFAULT,
					MF_QUARANTINE_THRESHOLD_MAX);
	if (gethostname(Q.host, sizeof(Q.host)) < 0)
		Q.host[0] = '\0';
	Q.host[sizeof(Q.host) - 1] = '\0';
	/* Checked now, so that a malformed URL stops the start with its
	 * reason; the store itself is opened at the first death. */
	o = (struct mf_qstore_opts){.state_dir = Q.state_dir, .timeout_ms = Q.timeout_ms};
	rc = mf_qstore_spec_check(Q.spec, &o, err, errlen);
	if (rc == -EINVAL)
		return rc;
	if (rc)
		/* Retried at the first death: the path may change meanwhile. */
		mf_warn("quarantine: %s (retried at the first death)", err);
	Q.running = 1;
	return 0;
}

/* The writer, at the first death: 0, or an errno. Called with Q.lock. */
static int writer_start(void)
{
	sigset_t all, old;
	int rc;

	if (Q.started)
		return 0;
	/* With every signal blocked: the supervisor takes its signals through
	 * a signalfd, which a thread with SIGCHLD unblocked would rob. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&Q.thread, NULL, writer, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	Q.started = rc == 0;
	return rc;
}

void sup_quar_push(const struct sup_qdeath *d)
{
	int rc;

	if (!Q.running)
		return;
	pthread_mutex_lock(&Q.lock);
	if ((rc = writer_start()) != 0) {
		__atomic_add_fetch(&Q.errors, 1, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&Q.lock);
		mf_warn("quarantine: cannot start the quarantine writer (%s): the death of %s is not "
			"recorded", strerror(rc), d->id);
		return;
	}
	if (Q.len == QUEUE_LEN) {
		Q.dropped++;
		pthread_mutex_unlock(&Q.lock);
		mf_warn("quarantine: too many deaths waiting to be written: the death of %s is not recorded",
			d->id);
		return;
	}
	Q.q[(Q.head + Q.len) % QUEUE_LEN] = *d;
	Q.len++;
	pthread_cond_signal(&Q.cond);
	pthread_mutex_unlock(&Q.lock);
}

void sup_quar_stop(void)
{
	if (!Q.running)
		return;
	Q.running = 0;
	if (!Q.started)
		return;
	/* Deaths still queued are written first: the program's own death is
	 * queued just before the supervisor ends. */
	pthread_mutex_lock(&Q.lock);
	Q.stop = 1;
	pthread_cond_signal(&Q.cond);
	pthread_mutex_unlock(&Q.lock);
	pthread_join(Q.thread, NULL);
	Q.started = 0;
	mf_qstore_close(Q.store);
	Q.store = NULL;
}

void sup_quar_counts(uint64_t *recorded, uint64_t *errors, uint64_t *dropped)
{
	*recorded = __atomic_load_n(&Q.recorded, __ATOMIC_RELAXED);
	*errors = __atomic_load_n(&Q.errors, __ATOMIC_RELAXED);
	pthread_mutex_lock(&Q.lock);
	*dropped = Q.dropped;
	pthread_mutex_unlock(&Q.lock);
}
