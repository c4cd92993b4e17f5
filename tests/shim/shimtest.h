/*
 * shimtest.h - what the programs run under the shim share: the checks of
 * tests/unit/unit.h and a few helpers around the public API.
 */
#ifndef MF_SHIMTEST_H
#define MF_SHIMTEST_H

#include <stdlib.h>

#include "../unit/unit.h"
#include "memfence.h"

static inline struct memfence_process_stats ps(void)
{
	struct memfence_process_stats s;

	if (memfence_process_stats(&s) != MEMFENCE_OK) {
		fprintf(stderr, "memfence_process_stats failed: is the shim preloaded?\n");
		exit(2);
	}
	return s;
}

static inline struct memfence_scope_stats cur(void)
{
	struct memfence_scope_stats s;

	if (memfence_scope_current(&s) != MEMFENCE_OK) {
		fprintf(stderr, "memfence_scope_current failed\n");
		exit(2);
	}
	return s;
}

/* Refuse to run (exit 2) unless accounting is on: a test that passes
 * because nothing was counted would prove nothing. */
static inline void need_active(void)
{
	if (!memfence_active()) {
		fprintf(stderr, "accounting is not active (run with LD_PRELOAD=libmemfence.so)\n");
		exit(2);
	}
}

#endif
