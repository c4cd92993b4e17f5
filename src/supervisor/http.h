/*
 * http.h - the probes' and metrics' HTTP server (http.c), on a thread of
 * its own that serves the last published state.
 */
#ifndef MF_SUP_HTTP_H
#define MF_SUP_HTTP_H

#include <stddef.h>

struct sup_state;

struct sup_http;
/* Check an --http address as sup_http_listen() will read it: 0, or -1 with
 * a message in err. */
int sup_http_check(const char *addr, char *err, size_t errlen);
/* Listen on addr ("HOST:PORT", "[V6]:PORT", ":PORT"), before the program
 * starts. Returns NULL with a message in err. */
struct sup_http *sup_http_listen(const char *addr, char *err, size_t errlen);
/* Load libmicrohttpd and serve on the socket, once the program is started:
 * 0, or -1 with a message in err. */
int sup_http_serve(struct sup_http *h, char *err, size_t errlen);
/* The socket bound and not served yet (to poll for a first connection), or
 * -1 once served. */
int sup_http_pending_fd(const struct sup_http *h);
/* Stop serving, after answering the profile requests under way (or close the socket that was never served). */
void sup_http_stop(struct sup_http *h);
/* Replace the published state (copied under the lock). */
void sup_publish(const struct sup_state *st);

#endif
