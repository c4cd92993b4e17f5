/*
 * http.h - the probes' and metrics' HTTP server (http.c), on a thread of
 * its own that serves the last published state.
 */
#ifndef MF_SUP_HTTP_H
#define MF_SUP_HTTP_H

#include <stddef.h>

struct sup_state;

struct sup_http;
/* Check an --http address as sup_http_start() will read it: 0, or -1 with
 * a message in err. */
int sup_http_check(const char *addr, char *err, size_t errlen);
/* Start serving on addr ("HOST:PORT", "[V6]:PORT", ":PORT"). Returns NULL
 * with a message in err. */
struct sup_http *sup_http_start(const char *addr, char *err, size_t errlen);
void sup_http_stop(struct sup_http *h);
/* Replace the published state (copied under the lock). */
void sup_publish(const struct sup_state *st);

#endif
