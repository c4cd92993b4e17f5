/*
 * prof_py312.c - CPython 3.12's frame layout for the profiler's walk
 * (prof_pylayout.h).
 */
#include "shim/prof_pylayout.h"

/* Offsets in CPython 3.12's structures (Include/internal/pycore_frame.h,
 * Include/cpython/pystate.h, Include/cpython/code.h), the same in every
 * 3.12.x. As in 3.11 the frame hangs off tstate->cframe, but f_code and
 * previous moved to the front of _PyInterpreterFrame, and the C stack's
 * entry frames are in the chain (owner FRAME_OWNED_BY_CSTACK). 3.12
 * publishes no description of these (_Py_DebugOffsets came in 3.13). */
const struct mf_py_layout mf_py_layout_312 = {
	.version = 0x030c,
	.off = {
		.ts_cframe = 56,
		.ts_frame = 0,
		.f_code = 0,
		.f_previous = 8,
		.f_instr = 56,
		.f_owner = 70,
		.co_firstline = 68,
		.co_filename = 112,
		.co_qualname = 128,
		.co_firsttraceable = 176,
		.co_code_adaptive = 192,
	},
};
