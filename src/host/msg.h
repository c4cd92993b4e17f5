/*
 * msg.h - one-line messages of the memfence command and its supervisor.
 *
 * Every message is "memfence: ..." on stderr, written with one call so that
 * lines from many processes do not interleave. The shim has its own
 * non-allocating writer (shim/config.c): this one uses stdio.
 */
#ifndef MF_MSG_H
#define MF_MSG_H

/* Exit statuses of memfence itself (a program it runs keeps its own). */
#define MF_EXIT_USAGE 2    /* bad option, size, missing command */
#define MF_EXIT_FAILURE 1  /* could not do what was asked */
#define MF_EXIT_NOEXEC 126 /* command found but not executable */
#define MF_EXIT_NOTFOUND 127

/* "memfence: <message>\n" on stderr. */
void mf_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "memfence: warning: <message>\n" on stderr. */
void mf_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
