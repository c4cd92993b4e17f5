/*
 * scope.h - one scope (a request, a task) as its thread keeps it: exact
 * figures, its budget, and where it is listed in the segment.
 */
#ifndef MF_SHIM_SCOPE_H
#define MF_SHIM_SCOPE_H

#include <stdint.h>

#include "base/segment.h"

struct mf_scope {
	struct mf_seg_figures fig; /* as the segment shows them */
	uint64_t calls;
	uint64_t start_mono;
	uint64_t start_real;
	int32_t entry;        /* in-flight entry in the slot, -1 none */
	uint64_t gate_need;   /* what the gate admitted it with, 0 none */
	char name[MF_SEG_NAME_LEN];
	char id[MF_SEG_NAME_LEN];
};

#endif
