/*
 * prof_py311.c - CPython 3.11's frame layout for the profiler's walk
 * (prof_pylayout.h).
 */
#include <stddef.h>

#include "shim/prof_pylayout.h"

/* Offsets in CPython 3.11's structures (Include/internal/pycore_frame.h,
 * Include/cpython/code.h), chosen by Py_Version at start. */
#define TS_CFRAME 56
#define CFRAME_CURRENT 8
#define IF_CODE 32
#define IF_PREVIOUS 48
#define IF_PREV_INSTR 56
#define CODE_FIRSTLINE 72
#define CODE_FILENAME 112
#define CODE_QUALNAME 128
#define CODE_ADAPTIVE 184

#define AT(p, off, type) (*(type *)((char *)(p) + (off)))

static void *innermost(void *ts)
{
	void *cf = AT(ts, TS_CFRAME, void *);

	return cf != NULL ? AT(cf, CFRAME_CURRENT, void *) : NULL;
}

static void *previous(void *f)
{
	return AT(f, IF_PREVIOUS, void *);
}

static void *code(void *f)
{
	return AT(f, IF_CODE, void *);
}

static int lasti(void *f, void *co)
{
	return (int)(AT(f, IF_PREV_INSTR, char *) - ((char *)co + CODE_ADAPTIVE));
}

static int firstline(void *co)
{
	return AT(co, CODE_FIRSTLINE, int);
}

static void *qualname(void *co)
{
	return AT(co, CODE_QUALNAME, void *);
}

static void *filename(void *co)
{
	return AT(co, CODE_FILENAME, void *);
}

const struct mf_py_layout mf_py_layout_311 = {
	.version = 0x030b,
	.innermost = innermost,
	.previous = previous,
	.code = code,
	.lasti = lasti,
	.firstline = firstline,
	.qualname = qualname,
	.filename = filename,
};
