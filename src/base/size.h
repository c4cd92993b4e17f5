/*
 * size.h - parsing and printing of memory sizes.
 *
 * Accepted forms (case-insensitive suffix, optional spaces are not):
 *   1234            bytes
 *   64K 64KB 64KiB 64Ki   binary multiples: K, M, G, T are powers of 1024,
 *   512M 2GiB 1.5G        as in docker --memory and ulimit; a decimal point
 *                         is allowed before a suffix
 *   80%             a percentage of a base (the limit), where the caller
 *                   allows it
 * Shim-safe: libc only, no allocation.
 */
#ifndef MF_SIZE_H
#define MF_SIZE_H

#include <stddef.h>
#include <stdint.h>

/* Parse s into *out. percent_base: what 100% is; 0 refuses percentages.
 * Returns 0, or -1 with a static message in *err. */
int mf_size_parse(const char *s, uint64_t percent_base, uint64_t *out, const char **err);

/* 1.5 GiB style, into buf; returns buf. */
char *mf_size_format(uint64_t bytes, char *buf, size_t len);

/* The decimal digits of v in buf (no libc formatting: the shim uses it
 * inside hooks); returns where they start within buf. */
#define MF_U64_DEC_LEN 21
const char *mf_u64_dec(uint64_t v, char buf[MF_U64_DEC_LEN]);

#endif
