/*
 * file.h - opening and reading files that anyone may have put where memfence
 * looks: a post-mortem, a journal, a profile, a segment named on the command
 * line or found in a state directory.
 *
 * Only regular files are read. A FIFO would block the reader until someone
 * writes to it (the supervisor's start, `memfence report`), and a device
 * such as /dev/zero never ends; opening is non-blocking, so even a FIFO
 * with no writer is refused at once. Whole-file reads are bounded.
 */
#ifndef MF_FILE_H
#define MF_FILE_H

#include <stddef.h>

/* Not a regular file (a FIFO, a device, a socket): -errno-like. */
#define MF_FILE_ENOTREG (-10100)

/* Open path read-only if it is a regular file: a descriptor (close-on-exec,
 * blocking), or -errno (-EISDIR for a directory, MF_FILE_ENOTREG). */
int mf_file_open(const char *path);

/* The whole of path, a regular file of at most max bytes, in a malloc'd
 * buffer with a NUL after its *len bytes. 0, or -errno (-EFBIG when the
 * file is larger than max, MF_FILE_ENOTREG, -ENOMEM...). */
int mf_file_read(const char *path, size_t max, char **buf, size_t *len);

/* What an error of these functions (or any -errno) means, for a message. */
const char *mf_file_strerror(int err);

#endif
