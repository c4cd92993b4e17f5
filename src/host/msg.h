/*
 * msg.h - one-line messages of the memfence command and its supervisor.
 *
 * Every message is "memfence: ..." on stderr, written with one call so that
 * lines from many processes do not interleave. The shim has its own
 * non-allocating writer (shim/util.c): this one uses stdio.
 */
#ifndef MF_MSG_H
#define MF_MSG_H

#include <stddef.h>

/* Exit statuses of memfence itself (a program it runs keeps its own). */
#define MF_EXIT_USAGE 2    /* bad option, size, missing command */
#define MF_EXIT_FAILURE 1  /* could not do what was asked */
#define MF_EXIT_NOEXEC 126 /* command found but not executable */
#define MF_EXIT_NOTFOUND 127

/* "memfence: <message>\n" on stderr. */
void mf_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "memfence: warning: <message>\n" on stderr. */
void mf_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Text from files anyone may write (a post-mortem, a profile, a segment,
 * a quarantine store) must not drive the terminal: control characters but
 * newline and tab, DEL, C1 controls (U+0080..U+009F) and bytes that are
 * not UTF-8 become '?'. The state carries a sequence cut between calls.
 */
struct mf_text_cleaner {
	unsigned need;  /* continuation bytes still expected */
	int held;       /* a 0xc2 lead byte not yet written */
};
/* Clean n bytes of in into out (room for n + 1); the bytes written. */
size_t mf_text_clean(const char *in, size_t n, char *out, struct mf_text_cleaner *c);
/* From now on, stdout is cleaned so (a text output of a command). 0 or
 * -errno. */
int mf_stdout_clean(void);

#endif
