/*
 * config.h - the shim's MEMFENCE_* variables, read once at start-up
 * (config.c lists them).
 */
#ifndef MF_SHIM_CONFIG_H
#define MF_SHIM_CONFIG_H

#include <stdint.h>

#include "base/lines.h"
#include "shim/util.h"

struct mf_fault {
	int alloc_on;        /* some allocation fault is configured */
	uint64_t nth;        /* fail the nth matching allocation (1-based) */
	uint64_t every;      /* fail every nth matching allocation */
	uint64_t after;      /* fail once matching bytes would pass this */
	int after_set;
	uint64_t min_size;   /* only allocations of at least this */
	int thread_errno;    /* pthread_create fails with this, 0 = off */
	char scope[64];      /* glob on open scope names, "" = any */
};

struct mf_config {
	int account;         /* 1 count, 0 forward only */
	uint64_t heap_limit; /* 0 = none */
	/* Zero-collateral policy (policy.c): 0 soft = off. */
	uint64_t press_limit; /* the limit it protects, 0 = unknown */
	uint64_t press_soft;  /* above: only the largest scope is refused */
	uint64_t press_hard;  /* above: the largest, or all when it is too small */
	uint64_t press_last;  /* above: every scope's large allocations */
	int press_measure_size; /* measure VmSize (RLIMIT_AS), not VmData */
	int press_mmap;       /* set glibc's mmap threshold (none given by the user) */
	int press_trim;       /* and its trim threshold (likewise) */
	const char *segment; /* MEMFENCE_SEGMENT, NULL = own */
	int segment_make;    /* make MEMFENCE_SEGMENT when it is not there */
	int segment_fd;      /* MEMFENCE_SEGMENT_FD, -1 = none */
	struct mf_fault fault;
};

extern struct mf_config mf_cfg MF_HIDDEN;

/* Read MEMFENCE_* from envp (not the libc environment: this may run before
 * libc has set it up). Problems are reported on stderr, one line each. */
void mf_config_read(char **envp) MF_HIDDEN;

/* Parse a MEMFENCE_FAULT spec into *f: 0, or -1 with a static message in
 * *err (*f is then cleared). */
int mf_fault_parse(const char *spec, struct mf_fault *f, const char **err) MF_HIDDEN;

/* The zero-collateral lines for MEMFENCE_PRESSURE=spec (NULL or "" for the
 * default) below a limit (0 = unknown): all 0 when the policy is off.
 * 0, or -1 with a static message in *err when spec does not parse (the
 * lines then 0). */
int mf_pressure_lines(uint64_t limit, const char *spec, struct mf_lines *lines,
		      const char **err) MF_HIDDEN;

/* '*' any run, '?' one byte, everything else literal: 1 on a match. */
int mf_glob(const char *pat, const char *s) MF_HIDDEN;

#endif
