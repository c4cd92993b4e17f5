/*
 * msg.h - one-line messages of the memfence command and its supervisor.
 *
 * Every message is "memfence: ..." on stderr, or one JSON object
 * (base/logline.h) with --log-format json / MEMFENCE_LOG_FORMAT=json,
 * written with one call so that lines from many processes do not
 * interleave. The shim has its own
 * non-allocating writer (shim/util.c): this one uses stdio.
 */
#ifndef MF_MSG_H
#define MF_MSG_H

#include <stddef.h>

#include "base/logline.h"

/* Exit statuses of memfence itself (a program it runs keeps its own). */
#define MF_EXIT_USAGE 2    /* bad option, size, missing command */
#define MF_EXIT_FAILURE 1  /* could not do what was asked */
#define MF_EXIT_NOEXEC 126 /* command found but not executable */
#define MF_EXIT_NOTFOUND 127

/* "memfence: <message>\n" on stderr. */
void mf_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "memfence: warning: <message>\n" on stderr. */
void mf_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "memfence: <message>\n": what happened, not a problem. */
void mf_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "memfence: <message>\n" at any level (the text says "warning: " only
 * through mf_warn), with a field naming the task or request the line is
 * about (key "task" or "request", JSON only; or NULLs). */
void mf_log(enum mf_log_level level, const char *key, const char *id, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * The format of these lines: given (--log-format; also exported to
 * MEMFENCE_LOG_FORMAT for the program), else the variable, else text.
 * 0, or -1 after a message naming the bad value (exit 2). Without a call,
 * the first line reads the variable.
 */
int mf_log_format_set(const char *given);
/* The "source" field: "cli" unless set ("supervisor"). */
void mf_log_source(const char *source);

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
