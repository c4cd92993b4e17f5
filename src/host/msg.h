/*
 * msg.h - one-line messages of the memfence command and its supervisor.
 *
 * Every message is "memfence: ..." on stderr, written with one call so that
 * lines from many processes do not interleave. The shim has its own
 * non-allocating writer (shim/config.c): this one uses stdio.
 */
#ifndef MF_MSG_H
#define MF_MSG_H

/* "memfence: <message>\n" on stderr. */
void mf_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "memfence: warning: <message>\n" on stderr. */
void mf_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
