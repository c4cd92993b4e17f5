/*
 * serving.h - what ready-means-serving needs from the options (serving.c):
 * --ready-tcp.
 */
#ifndef MF_SUP_SERVING_H
#define MF_SUP_SERVING_H

#include <netinet/in.h>

/* --ready-tcp: the program serves once this address accepts a connection. */
struct sup_ready_tcp {
	int on;
	struct sockaddr_in addr;
};

/* Parse "[ADDR:]PORT" (IPv4, 127.0.0.1 when no address): 0 or -1. */
int sup_ready_tcp_parse(const char *v, struct sup_ready_tcp *t);

#endif
