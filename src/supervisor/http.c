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
 * buffer: no request waits for the main loop.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/sup.h"

#define HTTP_CONNECTIONS 64     /* connections at once, all clients */
#define HTTP_PER_IP 16          /* connections at once from one address */
#define HTTP_TIMEOUT_S 10       /* idle connections are closed after this */
#define HTTP_CONN_MEMORY 16384  /* request line + headers per connection */
#define METRICS_BUF (256 * 1024)

struct sup_http {
	struct MHD_Daemon *d;
};

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

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *upload,
			       size_t *upload_size, void **con_cls)
{
	(void)cls, (void)version, (void)upload, (void)con_cls;

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
		return text(c, view.live ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
			    view.live_reason);
	if (strcmp(url, "/readyz") == 0)
		return text(c, view.ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
			    view.ready_reason);
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
	return text(c, MHD_HTTP_NOT_FOUND, "not found: try /livez, /readyz, /metrics or /status");
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

struct sup_http *sup_http_start(const char *addr, char *err, size_t errlen)
{
	static struct sup_http h;
	struct sockaddr_storage ss;
	socklen_t sl;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;

	if (parse_addr(addr, &ss, &sl, err, errlen) < 0) {
		char why[256];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "--http %s", why);
		return NULL;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h.d = MHD_start_daemon(flags, 0, NULL, NULL, handler, NULL,
			       MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
			       MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONNECTIONS,
			       MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)HTTP_PER_IP,
			       MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S,
			       MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
			       MHD_OPTION_END);
	if (!h.d) {
		snprintf(err, errlen, "--http %s: cannot listen there (address in use or not local?)",
			 addr);
		return NULL;
	}
	return &h;
}

void sup_http_stop(struct sup_http *h)
{
	if (h && h->d)
		MHD_stop_daemon(h->d);
}
