/*
 * recycle.c - drain and replace the program, or the one process of a
 * pre-fork server that needs it, before memory runs out.
 *
 * Three reasons start a recycle:
 *  - leak: the model forecasts the heap's floor reaching the budget within
 *    --recycle-before (plus this run's jitter, so that replicas started
 *    together do not recycle together);
 *  - unclean: a process of the program said a failed scope left it
 *    unclean (python/memfence/recovery.py writes a file named after its pid,
 *    holding one line of reason, in the directory MEMFENCE_RECYCLE_DIR
 *    names; a file is a request that survives a process too busy or too
 *    short of memory to do more than write it);
 *  - stuck: the health rules found the program not ready for memory with
 *    nothing in flight for --stuck-after (health.c). Its traffic is already
 *    cut and nothing is in flight, so it is stopped without a drain, and
 *    --recycle-min-interval does not hold it back: a stuck process serves
 *    nobody, and waiting only keeps the service down longer.
 *
 * The one to replace: the process with the largest live heap. When that is
 * the program itself (or it is alone), the whole program: readiness fails
 * first ("not ready: recycling: ..."), for --drain-delay at least so that
 * load balancers see it, then the scopes in flight get up to
 * --drain-timeout to end, then SIGTERM, SIGKILL after --recycle-grace, and
 * the program is started again at once (whatever --restart says: the end
 * was memfence's doing). When it is another process (a gunicorn worker, a
 * Celery pool process), only that one: its own scopes get --drain-timeout,
 * then SIGTERM (a gunicorn worker ends after its request; its arbiter
 * starts a new one), SIGKILL after the grace; readiness does not change,
 * the other processes serve meanwhile.
 *
 * At most one recycle at a time, and one per --recycle-min-interval. Each
 * is logged with its reason, counted (memfence_recycles_total{reason}) and
 * recorded in the model as an event; the leak verdict starts over with the
 * new process.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/size.h"
#include "host/file.h"
#include "host/msg.h"
#include "supervisor/supervisor.h"

#define REQUESTS_READ 256   /* directory entries looked at per sample, at most */
#define KILL_WAIT_MS 5000   /* after SIGKILL, wait this long for the end */

enum { RC_IDLE, RC_DRAIN, RC_TERM, RC_KILL };

/* The directory next to the segment (or in the state directory) where the
 * program asks to be recycled. Everything in it is reached through the
 * descriptor opened here (O_NOFOLLOW, O_DIRECTORY, ours): a symbolic link
 * planted at its name would otherwise have the supervisor read and remove
 * files of another directory. */
void sup_recycle_init(struct sup *s)
{
	struct sup_recycle *rc = &s->rc;
	const char *why = NULL;
	struct stat st;
	int n, fd = -1;

	rc->dir[0] = '\0';
	rc->d = NULL;
	s->st.recycle.on = s->cfg.recycle.on;
	if (!s->cfg.recycle.on)
		return;
	if (s->cfg.state_dir)
		n = snprintf(rc->dir, sizeof(rc->dir), "%s/recycle", s->cfg.state_dir);
	else if (s->cfg.launch.segment)
		n = snprintf(rc->dir, sizeof(rc->dir), "%s.recycle", s->cfg.launch.segment);
	else
		return;
	if (n >= (int)sizeof(rc->dir))
		why = "name too long";
	else if (mkdir(rc->dir, 0700) != 0 && errno != EEXIST)
		why = strerror(errno);
	else if ((fd = open(rc->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		why = errno == ELOOP || errno == ENOTDIR ? "not a directory (a symbolic link?)"
							 : strerror(errno);
	else if (fstat(fd, &st) != 0 || st.st_uid != geteuid())
		why = "not a directory of this user";
	else if ((rc->d = fdopendir(fd)) == NULL)
		why = strerror(errno);
	if (why) {
		mf_warn("cannot use %s (%s): processes of the program cannot ask to be recycled",
			rc->dir, why);
		if (fd >= 0)
			close(fd);
		rc->dir[0] = '\0';
	}
}

/* PID or PID.tmp (python/memfence/recovery.py writes the second and renames
 * it to the first): the only names memfence puts in the directory, and the
 * only ones it removes. The pid, or 0 for any other name. */
static long request_pid(const char *name, int *tmp)
{
	char *end;
	long p;

	if (name[0] < '1' || name[0] > '9')
		return 0;
	errno = 0;
	p = strtol(name, &end, 10);
	if (errno || p <= 0 || p > INT32_MAX)
		return 0;
	*tmp = strcmp(end, ".tmp") == 0;
	return *end == '\0' || *tmp ? p : 0;
}

int sup_recycle_request_read(int dir, const char *name, pid_t *pid, char *why, size_t whylen)
{
	int tmp = 0, fd;
	long p = request_pid(name, &tmp);
	ssize_t n;

	/* A file being written (PID.tmp) is renamed when done. */
	if (!p || tmp || (fd = mf_file_openat_nofollow(dir, name)) < 0)
		return 0;
	n = read(fd, why, whylen - 1);
	close(fd);
	why[n > 0 ? n : 0] = '\0';
	why[strcspn(why, "\n")] = '\0';
	sup_clean(why, whylen, why);
	if (!why[0])
		snprintf(why, whylen, "a failed scope left the process unclean");
	*pid = (pid_t)p;
	return 1;
}

static void clear_requests(DIR *d)
{
	struct dirent *e;
	int tmp;

	rewinddir(d);
	while ((e = readdir(d)) != NULL)
		if (request_pid(e->d_name, &tmp))
			unlinkat(dirfd(d), e->d_name, 0);
	rewinddir(d);
}

void sup_recycle_stop(struct sup *s)
{
	if (!s->rc.d)
		return;
	clear_requests(s->rc.d);
	closedir(s->rc.d);
	s->rc.d = NULL;
	/* Empty unless someone else put files there: then it stays. */
	rmdir(s->rc.dir);
}

static uint64_t draw(uint64_t max)
{
	uint64_t r = 0;

	if (!max)
		return 0;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (uint64_t)getpid() * 2654435761u ^ sup_real_ns();
	return r % (max + 1);
}

static void finish(struct sup *s, uint64_t now_ms)
{
	s->rc.phase = RC_IDLE;
	s->rc.last_ms = now_ms;
	s->st.recycle.under_way = 0;
	s->st.recycle.whole = 0;
	s->st.recycle.pid = 0;
}

void sup_recycle_started(struct sup *s)
{
	struct sup_recycle *rc = &s->rc;
	uint64_t now = sup_now_ms();

	/* Readiness keeps saying why until the new program serves
	 * (serving.c): the gap is the recycle's, and a probe that lands in it
	 * should learn so. */
	s->st.recycle.restarting = rc->phase != RC_IDLE && rc->whole;
	if (rc->phase != RC_IDLE) {
		mf_info("recycle: the program started again after %.1fs",
			(double)(now - rc->since_ms) / 1000.0);
		finish(s, now);
	}
	/* Earlier by a random share: never later than asked. */
	s->st.recycle.threshold_s = s->cfg.recycle.before_s + draw(s->cfg.recycle.jitter_s);
	if (rc->d)
		clear_requests(rc->d);
	sup_model_epoch(&s->st);
}

int sup_recycle_whole_ending(const struct sup *s)
{
	return s->rc.phase >= RC_TERM && s->rc.whole && !s->stopping;
}

int sup_recycle_ended(const struct sup *s, pid_t pid)
{
	/* Also once the recycle is over: the segment may show the process
	 * dead a sample after the recycle saw it gone. */
	return pid > 0 && pid == s->rc.signalled;
}

static const struct sup_proc *proc_of(const struct sup_state *st, pid_t pid)
{
	for (uint32_t i = 0; i < st->nprocs; i++)
		if (st->procs[i].pid == pid && st->procs[i].alive)
			return &st->procs[i];
	return NULL;
}

/* A process that is not ours to reap is gone when /proc says so, or is a
 * zombie waiting for its parent.
 *   /proc/PID/stat: 4711 (gunicorn) Z 4700 ...
 */
static int gone(pid_t pid)
{
	char path[64], buf[256], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 1;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

/* The first request of a live process of the program: 1 with its pid and
 * reason; every request file read is removed. At most REQUESTS_READ entries
 * a sample, going on from where the last sample stopped: files of other
 * names (ignored, not ours to remove) cannot hide a request for good. A
 * request is a regular file, never followed through a link. */
static int take_request(struct sup *s, pid_t *pid, char *why, size_t whylen)
{
	DIR *d = s->rc.d;
	struct dirent *e = NULL;
	int found = 0, seen = 0, tmp;

	if (!d)
		return 0;
	while (!found && seen < REQUESTS_READ && (e = readdir(d)) != NULL) {
		long p = request_pid(e->d_name, &tmp);

		seen++;
		if (!p || tmp)
			continue;
		if (proc_of(&s->st, (pid_t)p) || (pid_t)p == s->st.child_pid)
			found = sup_recycle_request_read(dirfd(d), e->d_name, pid, why, whylen);
		unlinkat(dirfd(d), e->d_name, 0);
	}
	if (!e)
		rewinddir(d);    /* the end: the next sample starts over, new files too */
	return found;
}

/* The process to replace: the one with the largest heap. */
static pid_t leaker(const struct sup_state *st)
{
	pid_t pid = st->child_pid;
	uint64_t most = 0;
	unsigned alive = 0;

	for (uint32_t i = 0; i < st->nprocs; i++) {
		if (!st->procs[i].alive)
			continue;
		alive++;
		if (st->procs[i].live > most) {
			most = st->procs[i].live;
			pid = st->procs[i].pid;
		}
	}
	return alive <= 1 ? st->child_pid : pid;
}

static void start(struct sup *s, pid_t pid, int reason, const char *why, uint64_t now_ms)
{
	struct sup_recycle *rc = &s->rc;
	struct sup_state *st = &s->st;

	rc->phase = RC_DRAIN;
	rc->pid = pid;
	rc->signalled = 0;
	rc->whole = pid == st->child_pid;
	rc->since_ms = now_ms;
	rc->drain_ms = reason == SUP_RECYCLE_STUCK ? 0 : s->cfg.recycle.drain_delay_ms;
	st->recycle.under_way = 1;
	st->recycle.whole = rc->whole;
	st->recycle.pid = pid;
	snprintf(st->recycle.reason, sizeof(st->recycle.reason), "%s: %s",
		 sup_recycle_reason_name(reason), why);
	st->recycle.count[reason]++;
	sup_model_recycled(st, sup_recycle_reason_name(reason), st->model.floor);
	mf_info("recycling %s %d (%s); draining",
		rc->whole ? "the program" : "process", (int)pid, st->recycle.reason);
}

int sup_recycle_rules(const struct sup_recycle_cfg *c, const struct sup_state *st,
		      uint64_t last_ms, uint64_t now_ms, sup_recycle_take_fn take, void *ctx,
		      struct sup_recycle_pick *p)
{
	char a[32], b[32], t[32];

	if (!c->on || !st->child_up || st->child_stopped)
		return 0;
	if (st->health.stuck) {
		p->reason = SUP_RECYCLE_STUCK;
		p->pid = st->health.stuck_pid && proc_of(st, st->health.stuck_pid) ? st->health.stuck_pid
										 : leaker(st);
		p->why = st->health.stuck_reason;
		return 1;
	}
	if (last_ms && now_ms - last_ms < c->min_interval_ms)
		return 0;
	p->why = p->buf;
	if (take && take(ctx, &p->pid, p->buf, sizeof(p->buf))) {
		p->reason = SUP_RECYCLE_UNCLEAN;
		return 1;
	}
	if (!st->model.leaking || st->model.forecast_s < 0 ||
	    (uint64_t)st->model.forecast_s > st->recycle.threshold_s)
		return 0;
	snprintf(p->buf, sizeof(p->buf), "heap floor %s rising %s/s, reaches %s in %llds",
		 mf_size_format(st->model.floor, a, sizeof(a)),
		 mf_size_format(st->model.recent_slope > 0 ? (uint64_t)st->model.recent_slope : 0, b,
				sizeof(b)),
		 mf_size_format(st->model.target, t, sizeof(t)), (long long)st->model.forecast_s);
	p->reason = SUP_RECYCLE_LEAK;
	p->pid = leaker(st);
	return 1;
}

static int take(void *ctx, pid_t *pid, char *why, size_t whylen)
{
	struct sup *s = ctx;

	return s->rc.dir[0] && take_request(s, pid, why, whylen);
}

static void consider(struct sup *s, uint64_t now_ms)
{
	struct sup_recycle_pick p;

	if (!s->stopping &&
	    sup_recycle_rules(&s->cfg.recycle, &s->st, s->rc.last_ms, now_ms, take, s, &p))
		start(s, p.pid, p.reason, p.why, now_ms);
}

static void term(struct sup *s, uint64_t now_ms, const char *after)
{
	struct sup_recycle *rc = &s->rc;

	mf_info("recycle: SIGTERM to %d %s", (int)rc->pid, after);
	if (rc->whole)
		s->last_forwarded = SIGTERM;    /* its end is a stop, not a death */
	rc->signalled = rc->pid;
	kill(rc->pid, SIGTERM);
	kill(rc->pid, SIGCONT);
	rc->phase = RC_TERM;
	rc->term_ms = now_ms;
}

void sup_recycle_tick(struct sup *s, uint64_t now_ms)
{
	const struct sup_recycle_cfg *c = &s->cfg.recycle;
	struct sup_recycle *rc = &s->rc;
	struct sup_state *st = &s->st;
	const struct sup_proc *p;
	uint64_t age;

	if (rc->phase != RC_IDLE && s->stopping) {
		finish(s, now_ms);    /* a stop was asked for: that one wins */
		return;
	}
	if (rc->phase == RC_IDLE)
		consider(s, now_ms);
	if (rc->phase == RC_IDLE)
		return;
	age = now_ms - rc->since_ms;
	if (rc->whole) {
		st->health.ready = 0;
		snprintf(st->health.ready_reason, sizeof(st->health.ready_reason), "not ready: recycling: %.190s%s",
			 st->recycle.reason, st->child_up ? "" : "; the program ended and starts again");
		if (!st->child_up)
			return;    /* the loop starts it again */
	} else if (gone(rc->pid)) {
		mf_info("recycle: process %d ended after %.1fs", (int)rc->pid,
			(double)age / 1000.0);
		finish(s, now_ms);
		sup_model_epoch(st);
		return;
	}
	switch (rc->phase) {
	case RC_DRAIN:
		if (rc->whole) {
			char after[96];

			if (age < rc->drain_ms ||
			    (st->scopes_in_flight && age < rc->drain_ms + c->drain_timeout_ms))
				break;
			snprintf(after, sizeof(after), "after %.1fs not ready (%u scopes in flight)",
				 (double)age / 1000.0, st->scopes_in_flight);
			term(s, now_ms, after);
		} else {
			char after[96];

			p = proc_of(st, rc->pid);
			if (p && p->scopes_open && age < c->drain_timeout_ms)
				break;
			snprintf(after, sizeof(after), "after %.1fs (%u scopes in flight)",
				 (double)age / 1000.0, p ? p->scopes_open : 0);
			term(s, now_ms, after);
		}
		break;
	case RC_TERM:
		if (now_ms - rc->term_ms < c->grace_ms)
			break;
		mf_log(MF_LOG_WARNING, NULL, NULL, "recycle: %d still there %.1fs after SIGTERM: SIGKILL",
			(int)rc->pid, (double)(now_ms - rc->term_ms) / 1000.0);
		kill(rc->pid, SIGKILL);
		rc->phase = RC_KILL;
		break;
	case RC_KILL:
		if (now_ms - rc->term_ms < c->grace_ms + KILL_WAIT_MS)
			break;
		mf_warn("recycle: %d did not end after SIGKILL; giving up", (int)rc->pid);
		finish(s, now_ms);
		break;
	}
}
