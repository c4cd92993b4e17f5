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

/*
 * The largest file of each kind that memfence reads back, in one place so
 * that every reader of a kind agrees (`report`, `diagnose`, the supervisor's
 * start). Each is far above what memfence writes: its tables are bounded
 * (SUP_MAX_*, MF_MODEL_*), so a larger file is someone else's, and reading
 * it whole would cost the reader memory and time in proportion to it.
 */
#define MF_FILE_MAX_REPORT ((size_t)4 << 20)    /* a post-mortem, the journal */
#define MF_FILE_MAX_MODEL ((size_t)4 << 20)     /* model.json: some 100 KiB at most */
/* A profile: the profiler's tables are bounded (4096 sites of at most 56
 * frames, 4096 code objects), its files far smaller than this. */
#define MF_FILE_MAX_PROFILE ((size_t)64 << 20)

/* Open path read-only if it is a regular file: a descriptor (close-on-exec,
 * blocking), or -errno (-EISDIR for a directory, MF_FILE_ENOTREG). */
int mf_file_open(const char *path);

/* The same for name in the directory dirfd (AT_FDCWD for the working
 * directory), never through a symbolic link: -ELOOP for one. For files in
 * a directory memfence made, where a link is someone else's doing. */
int mf_file_openat_nofollow(int dirfd, const char *name);

/* The whole of path, a regular file of at most max bytes, in a malloc'd
 * buffer with a NUL after its *len bytes. 0, or -errno (-EFBIG when the
 * file is larger than max, MF_FILE_ENOTREG, -ENOMEM...). */
int mf_file_read(const char *path, size_t max, char **buf, size_t *len);

/* The same from an open descriptor of a regular file (not closed). */
int mf_file_read_fd(int fd, size_t max, char **buf, size_t *len);

/* path made absolute against the working directory (a path handed to the
 * program must mean the same file after it changes directory: gunicorn
 * --chdir, Celery --workdir). No symbolic link is resolved. 0, or -errno
 * (-ENAMETOOLONG). */
int mf_path_absolute(const char *path, char *out, size_t len);

/* What an error of these functions (or any -errno) means, for a message. */
const char *mf_file_strerror(int err);

#endif
