/*
 * proc.h - small /proc files read without stdio.
 *
 * The reader only reads (open/read/close, retried on EINTR); what the bytes
 * mean is for parsers that take a buffer, so that tests can feed them
 * samples. Shim-safe: libc only, no allocation.
 */
#ifndef MF_PROC_H
#define MF_PROC_H

#include <stddef.h>
#include <stdint.h>

/* Read the file at path into buf: at most len - 1 bytes (len >= 1),
 * NUL-terminated, their number in *got. 0, or -errno. */
int mf_read_file(const char *path, char *buf, size_t len, size_t *got);

/* Fields of /proc/PID/statm (proc(5)), in pages. */
enum { MF_STATM_SIZE = 0, MF_STATM_RESIDENT = 1, MF_STATM_DATA = 5 };

/* Field `field` (0-based) of a statm line in buf[0..len): 0, or -EINVAL
 * when the line has no such field. */
int mf_statm_parse(const char *buf, size_t len, int field, uint64_t *pages);

/* Field `field` of /proc/self/statm, in bytes. 0, or -errno. */
int mf_statm_read(int field, uint64_t *bytes);

#endif
