/*
 * prof_pylayout.h - where the profiler finds one CPython version's frames.
 *
 * The frame walk (prof_python.c) reads the interpreter's private structures
 * with the GIL held, as tracemalloc does from its allocator hook; their
 * layout changes with each minor version. Each version the profiler knows
 * is one constant of this type in a file of its own (prof_py311.c,
 * prof_py312.c, prof_py313.c), listed in prof_python.c's table: supporting
 * another version is a new file and a row there (docs/profiler.md says
 * what to read). A version not in the table gets native frames only.
 */
#ifndef MF_PROF_PYLAYOUT_H
#define MF_PROF_PYLAYOUT_H

#include <stdbool.h>

#include "shim/util.h"

/* Byte offsets of the fields the walk reads, -1 for none. */
struct mf_py_offsets {
	/* PyThreadState: the innermost _PyInterpreterFrame is at ts_frame, in
	 * the struct the pointer at ts_cframe points to when ts_cframe >= 0
	 * (3.11 and 3.12: tstate->cframe->current_frame). */
	int ts_cframe, ts_frame;
	/* _PyInterpreterFrame: its code object (f_code, f_executable), the
	 * caller's frame, the instruction pointer (prev_instr or instr_ptr:
	 * both give the line as CPython's _PyInterpreterFrame_LASTI does),
	 * and the owner byte (enum _frameowner). */
	int f_code, f_previous, f_instr, f_owner;
	/* PyCodeObject */
	int co_firstline, co_filename, co_qualname, co_firsttraceable, co_code_adaptive;
};

struct mf_py_layout {
	unsigned version; /* Py_Version >> 16: 0x030b for 3.11 */
	struct mf_py_offsets off;
	/* Optional: checks the running interpreter and may take the offsets
	 * from what it publishes about itself: py_runtime is its _PyRuntime
	 * when that starts with 3.13's _Py_DebugOffsets (cookie checked, not a
	 * free-threaded build), else NULL. Returns NULL when the frames can be
	 * read, else why not ("mismatch"). */
	const char *(*runtime)(const void *py_runtime, struct mf_py_offsets *off);
};

extern const struct mf_py_layout mf_py_layout_311 MF_HIDDEN;
extern const struct mf_py_layout mf_py_layout_312 MF_HIDDEN;
extern const struct mf_py_layout mf_py_layout_313 MF_HIDDEN;

#endif
