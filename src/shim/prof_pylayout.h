/*
 * prof_pylayout.h - how the profiler reads one CPython version's frames.
 *
 * The frame walk (prof_python.c) reads the interpreter's private structures
 * with the GIL held; their layout changes with each minor version. Each
 * version the profiler knows is one constant of this type in a file of its
 * own (prof_py311.c), listed in prof_python.c's table: supporting another
 * version is a new file and a row there. A version not in the table gets
 * native frames only (docs/profiler.md).
 */
#ifndef MF_PROF_PYLAYOUT_H
#define MF_PROF_PYLAYOUT_H

#include "shim/util.h"

struct mf_py_layout {
	unsigned version; /* Py_Version >> 16: 0x030b for 3.11 */
	/* The thread's innermost frame (a _PyInterpreterFrame), or NULL. */
	void *(*innermost)(void *tstate);
	void *(*previous)(void *frame);
	/* The frame's code object; NULL ends the walk. */
	void *(*code)(void *frame);
	/* The offset of the frame's instruction, as PyCode_Addr2Line takes it. */
	int (*lasti)(void *frame, void *code);
	int (*firstline)(void *code);
	void *(*qualname)(void *code); /* str objects */
	void *(*filename)(void *code);
};

extern const struct mf_py_layout mf_py_layout_311 MF_HIDDEN;

#endif
