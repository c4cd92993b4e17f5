/*
 * prof_py311.c - CPython 3.11's frame layout for the profiler's walk
 * (prof_pylayout.h).
 */
#include "shim/prof_pylayout.h"

/* Offsets in CPython 3.11's structures (Include/internal/pycore_frame.h,
 * Include/cpython/pystate.h, Include/cpython/code.h), the same in every
 * 3.11.x: tstate->cframe->current_frame, f_code, prev_instr. */
const struct mf_py_layout mf_py_layout_311 = {
	.version = 0x030b,
	.off = {
		.ts_cframe = 56,
		.ts_frame = 8,
		.f_code = 32,
		.f_previous = 48,
		.f_instr = 56,
		.f_owner = 69,
		.co_firstline = 72,
		.co_filename = 112,
		.co_qualname = 128,
		.co_firsttraceable = 168,
		.co_code_adaptive = 184,
	},
};
