/*
 * http.c - /livez, /readyz, /metrics and /status, served by
 * libmicrohttpd (Debian's libmicrohttpd12) from its own thread, so that the
 * probes answer while the main loop is busy and while the program is out of
 * memory.
 *
 * Why libmicrohttpd: it bounds everything a hostile or broken client could
 * make grow: the number of connections (in total and per address), the
 * memory of each connection (headers past it get an error status and the
 * connection is closed), an idle timeout, and it polls every connection
 * from one epoll thread instead of a thread each. The handler only copies
 * the last published state under a mutex and formats it into a fixed
 * buffer: no request waits for the main loop. A heap profile
 * (/debug/pprof/heap, /debug/pprof/allocs, with --profile) is taken on the
 * profiles' thread (pprof.c) while its connection is suspended: the probes
 * keep answering while the program writes its snapshots.
 *
 * Its connection limits alone let other clients shut the probes out: 16
 * idle connections from the prober's address refused every probe from it,
 * and 64 connections trickling a header line every 3 s (never idle for its
 * timeout) made the probes wait for as long as they stayed, libmicrohttpd
 * no longer accepting at its limit. So the limits are ours (admit(), at
 * accept): a connection past the limit, in total or from one address,
 * closes the oldest connection that has been open for HTTP_EVICT_MS
 * (idle, or still sending its headers: a probe sends its request at once
 * and is answered in a millisecond), and is refused at once when there is
 * none. libmicrohttpd's own limit sits above ours, for the evicted
 * connections it has not closed yet.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "host/dynlib.h"
#include "supervisor/http.h"
#include "supervisor/metrics.h"
#include "supervisor/pprof.h"
#include "supervisor/state.h"

/* libmicrohttpd is loaded when the server starts (host/dynlib.h: a run with
 * --http off, and every other command, never loads it); its functions are
 * called through these, under their own names. */
static struct {
	__typeof__(MHD_start_daemon) *start_daemon;
	__typeof__(MHD_stop_daemon) *stop_daemon;
	__typeof__(MHD_create_response_from_buffer) *create_response_from_buffer;
	__typeof__(MHD_add_response_header) *add_response_header;
	__typeof__(MHD_queue_response) *queue_response;
	__typeof__(MHD_destroy_response) *destroy_response;
	__typeof__(MHD_get_connection_info) *get_connection_info;
	__typeof__(MHD_get_connection_values) *get_connection_values;
	__typeof__(MHD_suspend_connection) *suspend_connection;
	__typeof__(MHD_resume_connection) *resume_connection;
} mhd;
#define MHD_start_daemon (*mhd.start_daemon)
#define MHD_stop_daemon (*mhd.stop_daemon)
#define MHD_create_response_from_buffer (*mhd.create_response_from_buffer)
#define MHD_add_response_header (*mhd.add_response_header)
#define MHD_queue_response (*mhd.queue_response)
#define MHD_destroy_response (*mhd.destroy_response)
#define MHD_get_connection_info (*mhd.get_connection_info)
#define MHD_get_connection_values (*mhd.get_connection_values)
#define MHD_suspend_connection (*mhd.suspend_connection)
#define MHD_resume_connection (*mhd.resume_connection)

static int mhd_load(char *err, size_t errlen)
{
	const struct mf_dynsym syms[] = {
		{"MHD_start_daemon", (void **)&mhd.start_daemon},
		{"MHD_stop_daemon", (void **)&mhd.stop_daemon},
		{"MHD_create_response_from_buffer", (void **)&mhd.create_response_from_buffer},
		{"MHD_add_response_header", (void **)&mhd.add_response_header},
		{"MHD_queue_response", (void **)&mhd.queue_response},
		{"MHD_destroy_response", (void **)&mhd.destroy_response},
		{"MHD_get_connection_info", (void **)&mhd.get_connection_info},
		{"MHD_get_connection_values", (void **)&mhd.get_connection_values},
		{"MHD_suspend_connection", (void **)&mhd.suspend_connection},
		{"MHD_resume_connection", (void **)&mhd.resume_connection},
	};

	return mf_dynlib_need(MF_DYNLIB_MICROHTTPD, syms, sizeof(syms) / sizeof(syms[0]),
			      "the HTTP server", " or pass --http off", err, errlen);
}

#define HTTP_CONNECTIONS 64     /* connections at once, all clients */
#define HTTP_PER_IP 16          /* connections at once from one address */
#define HTTP_TIMEOUT_S 10       /* idle connections are closed after this */
#define HTTP_EVICT_MS 500       /* open this long: closed for a newcomer at a limit */
#define HTTP_EVICT_MARGIN 16    /* evicted, not closed yet */
#define HTTP_SLOTS (HTTP_CONNECTIONS + HTTP_EVICT_MARGIN)
#define HTTP_CONN_MEMORY 16384  /* request line + headers per connection */
#define METRICS_BUF (256 * 1024)

struct sup_http {
	struct MHD_Daemon *d;
	int fd;                 /* the listening socket, until the daemon owns it */
	char addr[128];
};

/* The connections open, as the daemon's one thread sees them (the accept
 * policy and the connection notifications run there: no lock). */
struct conn {
	int used, evicted;
	int fd;
	uint64_t since_ms;
	struct sockaddr_storage addr;
};
static struct conn conns[HTTP_SLOTS];

static pthread_mutex_t pub_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sup_state pub;
static int pub_set;
/* The daemon runs one thread: these are its private copies. */
static struct sup_state view;
static char metrics_buf[METRICS_BUF];

void sup_publish(const struct sup_state *st)
{
	pthread_mutex_lock(&pub_lock);
	memcpy(&pub, st, sizeof(pub));
	pub_set = 1;
	pthread_mutex_unlock(&pub_lock);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *type,
			     void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result text(struct MHD_Connection *c, unsigned code, const char *msg)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "%s\n", msg);

	return reply(c, code, "text/plain; charset=utf-8", line,
		     n < (int)sizeof(line) ? (size_t)n : sizeof(line) - 1, MHD_RESPMEM_MUST_COPY);
}

/* ---- /debug/pprof ---- */

struct query {
	long pid;               /* 0 = every process */
	char why[200];          /* "" = good */
};

static enum MHD_Result query_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				 const char *value)
{
	struct query *q = cls;
	char k[48];
	char *end;

	(void)kind;
	if (q->why[0])
		return MHD_NO;
	if (strcmp(key, "pid") != 0) {
		sup_clean(k, sizeof(k), key);
		snprintf(q->why, sizeof(q->why), "unknown query parameter '%s': only pid=N is taken", k);
		return MHD_NO;
	}
	if (q->pid) {
		snprintf(q->why, sizeof(q->why), "pid given twice");
		return MHD_NO;
	}
	/* Digits only, within a pid's range: strtol would take " 1", "+1". */
	if (!value || !*value || strlen(value) > 10 || strspn(value, "0123456789") != strlen(value) ||
	    (q->pid = strtol(value, &end, 10)) <= 0 || q->pid > INT32_MAX) {
		sup_clean(k, sizeof(k), value ? value : "");
		snprintf(q->why, sizeof(q->why), "pid '%s' is not a process id", k);
		q->pid = 0;
		return MHD_NO;
	}
	return MHD_YES;
}

static void pprof_done(struct sup_pprof_job *j)
{
	MHD_resume_connection(j->ctx);
}

/* The answer of a resumed request; the job is freed when the request
 * completes (completed()), whether or not the client waited for it. */
static enum MHD_Result pprof_reply(struct MHD_Connection *c, struct sup_pprof_job *j)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char age[32];

	if (j->code != 200 || !j->body)
		return reply(c, j->code ? j->code : MHD_HTTP_INTERNAL_SERVER_ERROR,
			     "text/plain; charset=utf-8", j->body ? j->body : "",
			     j->body ? j->body_len : 0, MHD_RESPMEM_MUST_COPY);
	r = MHD_create_response_from_buffer(j->body_len, j->body, MHD_RESPMEM_MUST_FREE);
	if (!r)
		return MHD_NO;
	j->body = NULL;
	snprintf(age, sizeof(age), "%llu", (unsigned long long)j->age_s);
	MHD_add_response_header(r, "Content-Type", "application/octet-stream");
	MHD_add_response_header(r, "Content-Disposition",
				j->view == MF_VIEW_ALLOCATED ? "attachment; filename=\"allocs\""
							     : "attachment; filename=\"heap\"");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Memfence-Snapshot-Age", age);
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result pprof(struct MHD_Connection *c, const char *name, void **con_cls)
{
	struct query q = {0};
	struct sup_pprof_job *j;
	enum mf_prof_view v;

	if (strcmp(name, "heap") == 0)
		v = MF_VIEW_LIVE;
	else if (strcmp(name, "allocs") == 0)
		v = MF_VIEW_ALLOCATED;
	else
		return text(c, MHD_HTTP_NOT_FOUND,
			    "not found: the profiles are /debug/pprof/heap and /debug/pprof/allocs");
	if (!sup_pprof_running())
		return text(c, MHD_HTTP_NOT_FOUND,
			    "no heap profiles: the program runs without --profile");
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, query_arg, &q);
	if (q.why[0])
		return text(c, MHD_HTTP_BAD_REQUEST, q.why);
	j = calloc(1, sizeof(*j));
	if (!j)
		return text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
	for (uint32_t i = 0; i < view.nprocs && i < SUP_MAX_PROCS; i++) {
		const struct sup_proc *p = &view.procs[i];

		if (q.pid ? p->pid != q.pid : !p->alive)
			continue;
		j->pids[j->npids] = p->pid;
		j->alive[j->npids++] = p->alive;
	}
	if (q.pid && !j->npids) {
		char why[96];

		free(j);
		snprintf(why, sizeof(why), "pid %ld is not a process of the program", q.pid);
		return text(c, MHD_HTTP_BAD_REQUEST, why);
	}
	j->view = v;
	j->done = pprof_done;
	j->ctx = c;
	*con_cls = j;
	MHD_suspend_connection(c);
	sup_pprof_submit(j);
	return MHD_YES;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct sup_pprof_job *j = *con_cls;

	(void)cls, (void)c, (void)toe;
	if (j) {
		free(j->body);
		free(j);
		*con_cls = NULL;
	}
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *upload,
			       size_t *upload_size, void **con_cls)
{
	(void)cls, (void)version, (void)upload;

	if (*con_cls)
		return pprof_reply(c, *con_cls);
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		/* Answer before any body is read: the connection is closed. */
		*upload_size = 0;
		return text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD are served");
	}
	pthread_mutex_lock(&pub_lock);
	if (pub_set)
		memcpy(&view, &pub, sizeof(view));
	pthread_mutex_unlock(&pub_lock);
	if (!pub_set)
		return text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "starting");

	if (strcmp(url, "/livez") == 0)
		return text(c, view.health.live ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
			    view.health.live_reason);
	if (strcmp(url, "/readyz") == 0)
		return text(c, view.health.ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
			    view.health.ready_reason);
	if (strcmp(url, "/metrics") == 0) {
		size_t n = sup_metrics_render(&view, metrics_buf, sizeof(metrics_buf));

		return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", metrics_buf,
			     n, MHD_RESPMEM_MUST_COPY);
	}
	if (strcmp(url, "/status") == 0) {
		json_t *j = sup_status_json(&view);
		char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;

		json_decref(j);
		if (!s)
			return text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot format the status");
		return reply(c, MHD_HTTP_OK, "application/json", s, strlen(s), MHD_RESPMEM_MUST_FREE);
	}
	if (strncmp(url, "/debug/pprof/", 13) == 0)
		return pprof(c, url + 13, con_cls);
	return text(c, MHD_HTTP_NOT_FOUND, "not found: try /livez, /readyz, /metrics or /status");
}

static int same_host(const struct sockaddr *a, const struct sockaddr_storage *b)
{
	if (a->sa_family != b->ss_family)
		return 0;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
	return 1;
}

/* Close the oldest connection (of host, when not NULL) open for at least
 * HTTP_EVICT_MS: 0, or -1 when there is none. The daemon sees the end of
 * its socket and closes it at its next turn. */
static int evict_oldest(const struct sockaddr *host, uint64_t now)
{
	struct conn *old = NULL;

	for (int i = 0; i < HTTP_SLOTS; i++) {
		struct conn *k = &conns[i];

		if (!k->used || k->evicted || now - k->since_ms < HTTP_EVICT_MS)
			continue;
		if (host && !same_host(host, &k->addr))
			continue;
		if (!old || k->since_ms < old->since_ms)
			old = k;
	}
	if (!old)
		return -1;
	shutdown(old->fd, SHUT_RDWR);
	old->evicted = 1;
	return 0;
}

/* The accept policy: room for a newcomer, made by eviction at a limit. */
static enum MHD_Result admit(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	uint64_t now = sup_now_ms();
	unsigned total = 0, same = 0;

	(void)cls, (void)addrlen;
	for (int i = 0; i < HTTP_SLOTS; i++) {
		if (!conns[i].used || conns[i].evicted)
			continue;
		total++;
		same += same_host(addr, &conns[i].addr);
	}
	if (same >= HTTP_PER_IP && evict_oldest(addr, now) != 0)
		return MHD_NO;
	if (same >= HTTP_PER_IP)
		total--;
	if (total >= HTTP_CONNECTIONS && evict_oldest(NULL, now) != 0)
		return MHD_NO;
	return MHD_YES;
}

static void notify(void *cls, struct MHD_Connection *c, void **ctx,
		   enum MHD_ConnectionNotificationCode what)
{
	(void)cls;
	if (what == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *fd =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		const union MHD_ConnectionInfo *ad =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

		*ctx = NULL;
		for (int i = 0; i < HTTP_SLOTS && fd && ad; i++) {
			struct conn *k = &conns[i];

			if (k->used)
				continue;
			memset(k, 0, sizeof(*k));
			k->used = 1;
			k->fd = fd->connect_fd;
			k->since_ms = sup_now_ms();
			memcpy(&k->addr, ad->client_addr,
			       ad->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
								      : sizeof(struct sockaddr_in));
			*ctx = k;
			break;
		}
	} else if (what == MHD_CONNECTION_NOTIFY_CLOSED && *ctx) {
		((struct conn *)*ctx)->used = 0;
		*ctx = NULL;
	}
}

/* "HOST:PORT", "[V6]:PORT" or ":PORT" (every address). */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *sl, char *err,
		      size_t errlen)
{
	char host[256];
	const char *colon, *port;
	struct addrinfo hints = {0}, *res;
	char *end;
	long p;
	int rc;

	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');

		if (!rb || rb[1] != ':')
			goto bad;
		snprintf(host, sizeof(host), "%.*s", (int)(rb - addr - 1), addr + 1);
		port = rb + 2;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || (size_t)(colon - addr) >= sizeof(host))
			goto bad;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
		port = colon + 1;
	}
	/* Digits only: strtol would take " 80" and "+80". */
	if (!*port || strspn(port, "0123456789") != strlen(port))
		goto bad;
	p = strtol(port, &end, 10);
	if (*end || p < 1 || p > 65535)
		goto bad;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "'%s': %s", addr, gai_strerror(rc));
		return -1;
	}
	if (!host[0]) {
		/* Every IPv4 address: what a container's probes reach. */
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		memset(ss, 0, sizeof(*ss));
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)p);
		in->sin_addr.s_addr = htonl(INADDR_ANY);
		*sl = sizeof(*in);
	} else {
		memcpy(ss, res->ai_addr, res->ai_addrlen);
		*sl = res->ai_addrlen;
	}
	freeaddrinfo(res);
	return 0;
bad:
	snprintf(err, errlen, "'%s': expected HOST:PORT, [IPV6]:PORT, :PORT or off", addr);
	return -1;
}

int sup_http_check(const char *addr, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	return parse_addr(addr, &ss, &sl, err, errlen);
}

/*
 * The server starts in two steps. The socket is bound before the program
 * starts, so that a port in use stops the start with its reason as it
 * always did; libmicrohttpd, and GnuTLS behind it (10-14 ms of CPU and 150
 * page faults, most of what the supervisor's start costs), is loaded when
 * the first connection arrives (supervisor.c polls the socket): a short
 * program nobody probes never pays for it, and a server pays once, at its
 * first probe. That connection waits in the listen backlog meanwhile.
 */
struct sup_http *sup_http_listen(const char *addr, char *err, size_t errlen)
{
	static struct sup_http h;
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, e;

	if (parse_addr(addr, &ss, &sl, err, errlen) < 0) {
		char why[256];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "--http %s", why);
		return NULL;
	}
	h.d = NULL;
	snprintf(h.addr, sizeof(h.addr), "%s", addr);
	/* As libmicrohttpd would make it: address reuse, IPv6 only on an IPv6
	 * address, the system's backlog. */
	h.fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (h.fd < 0)
		goto fail;
	setsockopt(h.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(h.fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(h.fd, (struct sockaddr *)&ss, sl) < 0 || listen(h.fd, SOMAXCONN) < 0)
		goto fail;
	return &h;
fail:
	e = errno;
	if (h.fd >= 0)
		close(h.fd);
	h.fd = -1;
	snprintf(err, errlen, "--http %s: cannot listen there: %s", addr, strerror(e));
	return NULL;
}

int sup_http_serve(struct sup_http *h, char *err, size_t errlen)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;

	if (mhd_load(err, errlen) < 0)
		return -1;
	memset(conns, 0, sizeof(conns));
	h->d = MHD_start_daemon(flags, 0, admit, NULL, handler, NULL,
				MHD_OPTION_LISTEN_SOCKET, h->fd,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_SLOTS,
				MHD_OPTION_NOTIFY_CONNECTION, notify, NULL,
				MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
				MHD_OPTION_END);
	if (!h->d) {
		snprintf(err, errlen, "--http %s: the HTTP server did not start", h->addr);
		return -1;
	}
	h->fd = -1;
	return 0;
}

int sup_http_pending_fd(const struct sup_http *h)
{
	return h && !h->d ? h->fd : -1;
}

void sup_http_stop(struct sup_http *h)
{
	/* Every suspended request answered first: libmicrohttpd refuses to
	 * stop with one still suspended. */
	sup_pprof_stop();
	if (h && h->d)
		MHD_stop_daemon(h->d);
	if (h && h->fd >= 0)
		close(h->fd);
	if (h) {
		h->d = NULL;    /* stopped twice: once is done */
		h->fd = -1;
	}
}
