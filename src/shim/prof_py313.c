/*
 * prof_py313.c - CPython 3.13's frame layout for the profiler's walk
 * (prof_pylayout.h), read from the interpreter itself.
 */
#include <stdint.h>

#include "shim/prof_pylayout.h"

/*
 * Since 3.13 the runtime state starts with _Py_DebugOffsets
 * (Include/internal/pycore_runtime.h), the offsets of the fields debuggers
 * and profilers read, written by the interpreter's own compiler: with them
 * a patch release or a build option that moves a field is still read
 * right. Only this struct's layout is compiled in, and CPython keeps it
 * the same across 3.13.x. This is its beginning, up to the fields used.
 */
struct py313_debug_offsets {
	char cookie[8]; /* checked by prof_python.c, as free_threaded */
	uint64_t version, free_threaded;
	uint64_t runtime_state[3];
	uint64_t interpreter_state[13];
	struct {
		uint64_t size, prev, next, interp, current_frame, thread_id, native_thread_id,
			datastack_chunk, status;
	} thread_state;
	struct {
		uint64_t size, previous, executable, instr_ptr, localsplus, owner;
	} interpreter_frame;
	struct {
		uint64_t size, filename, name, qualname, linetable, firstlineno, argcount,
			localsplusnames, localspluskinds, co_code_adaptive;
	} code_object;
};

/* A field of W bytes at OFF inside a struct of SIZE bytes, as an int. */
static int field(uint64_t off, uint64_t w, uint64_t size, bool *ok)
{
	if (off + w > size || size > (1u << 16))
		*ok = false;
	return (int)off;
}

static const char *runtime(const void *py_runtime, struct mf_py_offsets *o)
{
	const struct py313_debug_offsets *d = py_runtime;
	bool ok = true;

	if (d == NULL || (d->version >> 16) != 0x030d)
		return "mismatch";
	o->ts_cframe = -1;
	o->ts_frame = field(d->thread_state.current_frame, 8, d->thread_state.size, &ok);
	o->f_code = field(d->interpreter_frame.executable, 8, d->interpreter_frame.size, &ok);
	o->f_previous = field(d->interpreter_frame.previous, 8, d->interpreter_frame.size, &ok);
	o->f_instr = field(d->interpreter_frame.instr_ptr, 8, d->interpreter_frame.size, &ok);
	o->f_owner = field(d->interpreter_frame.owner, 1, d->interpreter_frame.size, &ok);
	o->co_firstline = field(d->code_object.firstlineno, 4, d->code_object.size, &ok);
	o->co_filename = field(d->code_object.filename, 8, d->code_object.size, &ok);
	o->co_qualname = field(d->code_object.qualname, 8, d->code_object.size, &ok);
	o->co_code_adaptive = field(d->code_object.co_code_adaptive, 2, d->code_object.size, &ok);
	/* Not published: in 3.13's PyCodeObject the int _co_firsttraceable and
	 * the pointer co_extra come just before co_code_adaptive. */
	o->co_firsttraceable = o->co_code_adaptive - 16;
	return ok && o->co_firsttraceable > o->co_qualname ? NULL : "mismatch";
}

const struct mf_py_layout mf_py_layout_313 = {
	.version = 0x030d,
	.runtime = runtime,
};
