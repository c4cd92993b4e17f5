/*
 * serving.c - ready means serving: after each start of the program,
 * /readyz stays failed until the program answers work, not only until
 * memory allows.
 *
 * Two witnesses, either enough:
 *  - --ready-tcp [ADDR:]PORT: a connection to the program's own port is
 *    accepted (the kernel completes it once the program listens). Any
 *    program.
 *  - the serving file: a program that reports its own state writes one
 *    line, "PID starting|serving WHAT", to the file MEMFENCE_SERVING_FILE
 *    names (STATE_DIR/serving, else next to the segment), through a
 *    temporary file and rename(2). memfence's Python integrations do it for
 *    gunicorn, uvicorn, gRPC servers and Celery workers (memfence/serving.py).
 *    It is honoured only for programs that use it: a program that has
 *    written no valid line keeps memory-only readiness, and once one run
 *    has written one, every later start (restart, recycle) waits for
 *    "serving" again -- its first lines come from the same code. So does
 *    the first start of a command the integration is known to speak for
 *    (python.c: gunicorn, uvicorn, a Celery worker). A line
 *    counts only from a process of the program (its pid, or a descendant
 *    of it): the file lies where another user of the machine cannot write,
 *    but a stale line of a process that is gone must not make a new
 *    program ready.
 *
 * Once serving, the program stays so until its next start: what it serves
 * afterwards is for the memory rules to judge.
 *
 * The other way, the program is told when it is drained, so that servers
 * whose clients keep long-lived connections (gRPC over HTTP/2: readiness
 * only stops new connections through a Service) move their clients away:
 * the file MEMFENCE_DRAIN_FILE names (STATE_DIR/drain, else next to the
 * segment) holds one line while the program is drained,
 *   "unready REASON" while readiness fails for memory (it may come back), or
 *   "recycling GRACE_MS REASON" once a recycle of the whole program has
 *   begun (it will be stopped; in-flight calls get GRACE_MS), or
 *   "stopping GRACE_MS SIGNAL" once memfence itself is told to stop, written
 *   before the signal is passed on: a program that drains on that signal
 *   learns the grace from it,
 * and is absent otherwise. memfence.grpc reads it (docs/python.md).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/proc.h"
#include "host/file.h"
#include "host/msg.h"
#include "supervisor/supervisor.h"

#define CONNECT_WAIT_MS 20  /* a loopback connect completes at once or not at all */
#define ANCESTRY_MAX 32     /* parents walked up from a pid, at most */

int sup_ready_tcp_parse(const char *v, struct sup_ready_tcp *t)
{
	const char *colon = strrchr(v, ':');
	char addr[INET_ADDRSTRLEN];
	char *end;
	unsigned long port;

	memset(t, 0, sizeof(*t));
	snprintf(addr, sizeof(addr), "127.0.0.1");
	if (colon) {
		size_t n = (size_t)(colon - v);

		if (n == 0 || n >= sizeof(addr))
			return -1;
		memcpy(addr, v, n);
		addr[n] = '\0';
		v = colon + 1;
	}
	port = strtoul(v, &end, 10);
	if (end == v || *end || port == 0 || port > 65535)
		return -1;
	t->addr.sin_family = AF_INET;
	t->addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &t->addr.sin_addr) != 1)
		return -1;
	t->on = 1;
	return 0;
}

/* STATE_DIR/NAME, else SEGMENT.NAME; "" when neither (or too long). */
static void path_of(const struct sup *s, const char *name, char *out, size_t len)
{
	int n = -1;

	if (s->cfg.state_dir)
		n = snprintf(out, len, "%s/%s", s->cfg.state_dir, name);
	else if (s->cfg.launch.segment)
		n = snprintf(out, len, "%s.%s", s->cfg.launch.segment, name);
	if (n < 0 || (size_t)n >= len)
		out[0] = '\0';
}

void sup_serving_init(struct sup *s)
{
	path_of(s, "serving", s->serving_file, sizeof(s->serving_file));
	path_of(s, "drain", s->drain_file, sizeof(s->drain_file));
	/* A server the integration knows will say when it serves. */
	s->serving_used = s->serving_file[0] && sup_python_server(s);
	/* A file a previous supervisor left must not drain a new program. */
	if (s->drain_file[0])
		unlink(s->drain_file);
}

void sup_serving_started(struct sup *s)
{
	s->st.serving = 0;
	s->st.serving_gate_open = !s->cfg.ready_tcp.on && !s->serving_used;
	s->st.serving_said[0] = '\0';
	if (s->serving_file[0])
		unlink(s->serving_file);
	/* The last program's drain is not the new one's. */
	if (s->drain_file[0] && s->drain_said[0] && unlink(s->drain_file) == 0)
		s->drain_said[0] = '\0';
}

void sup_serving_stop(struct sup *s)
{
	if (s->serving_file[0])
		unlink(s->serving_file);
	if (s->drain_file[0])
		unlink(s->drain_file);
}

/* Write line to path through a temporary file and rename(2); 0 or -errno. */
static int write_line(const char *path, const char *line)
{
	char tmp[MF_PATH_MAX + 8];
	size_t len = strlen(line);
	int fd, err = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, line, len) != (ssize_t)len)
		err = errno ? -errno : -EIO;
	close(fd);
	if (!err && rename(tmp, path) != 0)
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

void sup_drain_tick(struct sup *s)
{
	const struct sup_state *st = &s->st;
	char line[sizeof(s->drain_said)];
	int err;

	if (!s->drain_file[0])
		return;
	line[0] = '\0';
	if (st->child_up && s->stopping) {
		const char *sig = sigabbrev_np(s->stopping);

		snprintf(line, sizeof(line), "stopping %llu SIG%s\n",
			 (unsigned long long)s->cfg.recycle.drain_timeout_ms, sig ? sig : "?");
	/* Not running, or not serving yet: nobody to drain. */
	} else if (st->child_up && !st->health.ready && st->serving_gate_open) {
		if (st->recycle.under_way && st->recycle.whole)
			snprintf(line, sizeof(line), "recycling %llu %.150s\n",
				 (unsigned long long)s->cfg.recycle.drain_timeout_ms, st->recycle.reason);
		else
			snprintf(line, sizeof(line), "unready %.150s\n", st->health.ready_reason);
	}
	/* Rewritten when the state (its first word) changes, not when the
	 * figures of its reason do. */
	if (strncmp(line, s->drain_said, strcspn(line, " ") + 1) == 0)
		return;
	if (!line[0]) {
		err = unlink(s->drain_file) == 0 || errno == ENOENT ? 0 : -errno;
	} else {
		err = write_line(s->drain_file, line);
	}
	if (err) {
		if (!s->drain_warned++)
			mf_warn("cannot write %s: %s; the program is not told when it is drained",
				s->drain_file, strerror(-err));
		return;
	}
	snprintf(s->drain_said, sizeof(s->drain_said), "%s", line);
}

static int tcp_accepts(const struct sup_ready_tcp *t)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), err = 0;
	socklen_t len = sizeof(err);
	struct pollfd pf;

	if (fd < 0)
		return 0;
	if (connect(fd, (const struct sockaddr *)&t->addr, sizeof(t->addr)) != 0) {
		if (errno != EINPROGRESS)
			goto no;
		pf = (struct pollfd){.fd = fd, .events = POLLOUT};
		if (poll(&pf, 1, CONNECT_WAIT_MS) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err)
			goto no;
	}
	close(fd);
	return 1;
no:
	close(fd);
	return 0;
}

/* Is pid root or one of its descendants?
 *   /proc/PID/stat: 4712 (gunicorn) S 4711 ...
 */
static int of_program(pid_t pid, pid_t root)
{
	for (int i = 0; i < ANCESTRY_MAX && pid > 1; i++) {
		char path[64], buf[512], *p;
		size_t n;

		if (pid == root)
			return 1;
		snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
		if (mf_read_file(path, buf, sizeof(buf), &n) < 0 || !(p = strrchr(buf, ')')) ||
		    sscanf(p + 1, " %*c %d", &pid) != 1)
			return 0;
	}
	return pid == root;
}

/* The program's line: 1 serving, 0 starting, -1 none (or not valid). */
static int read_said(struct sup *s, char *what, size_t len)
{
	char buf[256], *end, *word;
	ssize_t n;
	long pid;
	int fd = mf_file_open(s->serving_file), serving;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	pid = strtol(buf, &end, 10);
	if (end == buf || *end != ' ' || pid <= 1 || !of_program((pid_t)pid, s->st.child_pid))
		return -1;
	word = end + 1;
	if (strncmp(word, "serving", 7) == 0)
		serving = 1;
	else if (strncmp(word, "starting", 8) == 0)
		serving = 0;
	else
		return -1;
	word += serving ? 7 : 8;
	if (*word && *word != ' ')
		return -1;
	sup_clean(what, len, *word ? word + 1 : "");
	return serving;
}

void sup_serving_tick(struct sup *s, uint64_t now_ms)
{
	struct sup_state *st = &s->st;
	int said = -1;

	if (!st->child_up || st->serving)
		return;
	if (s->serving_file[0]) {
		char what[sizeof(st->serving_said)];

		said = read_said(s, what, sizeof(what));
		if (said >= 0) {
			s->serving_used = 1;
			snprintf(st->serving_said, sizeof(st->serving_said), "%s", what);
		}
	}
	if (said == 1 || (s->cfg.ready_tcp.on && tcp_accepts(&s->cfg.ready_tcp))) {
		st->serving = st->serving_gate_open = 1;
		st->recycle.restarting = 0;
		mf_info("the program serves after %.1fs%s%s",
			(double)(now_ms - s->child_start_ms) / 1000.0, st->serving_said[0] ? ": " : "",
			st->serving_said);
		return;
	}
	st->serving_gate_open = !s->cfg.ready_tcp.on && !s->serving_used;
	if (st->serving_gate_open) {
		st->recycle.restarting = 0;
		return;    /* nothing says what serving is: memory only */
	}
	if (!st->health.ready)
		return;    /* the memory rules' reason comes first */
	st->health.ready = 0;
	if (st->recycle.restarting)
		snprintf(st->health.ready_reason, sizeof(st->health.ready_reason),
			 "not ready: recycling: %.150s; started again %.1fs ago, not serving yet",
			 st->recycle.reason, (double)(now_ms - s->child_start_ms) / 1000.0);
	else if (s->cfg.ready_tcp.on && !st->serving_said[0])
		snprintf(st->health.ready_reason, sizeof(st->health.ready_reason),
			 "not ready: not serving yet: port %u accepts no connection (started %.1fs ago)",
			 (unsigned)ntohs(s->cfg.ready_tcp.addr.sin_port),
			 (double)(now_ms - s->child_start_ms) / 1000.0);
	else
		snprintf(st->health.ready_reason, sizeof(st->health.ready_reason),
			 "not ready: not serving yet: %.100s (started %.1fs ago)",
			 st->serving_said[0] ? st->serving_said : "the program has not said it serves",
			 (double)(now_ms - s->child_start_ms) / 1000.0);
}
