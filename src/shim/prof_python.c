/*
 * prof_python.c - the profiler's Python frames: which CPython layout to
 * read (prof_pylayout.h), the walk of the frames of the thread that holds
 * the GIL, the table of code objects the sites cite, and the PyMem hooks
 * that let the countdown see pymalloc's small objects.
 */
#include <dlfcn.h>
#include <string.h>
#include <sys/types.h>

#include "base/size.h"
#include "shim/prof_int.h"
#include "shim/prof_pylayout.h"

/* The layouts known, by version (prof_pylayout.h). */
static const struct mf_py_layout *const layouts[] = {
	&mf_py_layout_311,
	&mf_py_layout_312,
	&mf_py_layout_313,
};

/* enum _frameowner (Include/internal/pycore_frame.h) */
#define PY_OWNED_BY_GENERATOR 1
#define PY_OWNED_BY_CSTACK 3 /* 3.12 and later */
/* Frames looked at per sample, the skipped ones included: each call from
 * C into Python adds an entry frame to the chain since 3.12. */
#define PY_WALK_MAX (4 * MF_PROF_PY_MAX)

/* Resolved at start; read only with the GIL held. */
static struct {
	bool frames; /* off is the running interpreter's layout */
	struct mf_py_offsets off;
	const void *code_type; /* &PyCode_Type */
	int (*py_initialized)(void);
	void *(*py_this_ts)(void);
	void *(*py_current_ts)(void);
	int (*py_addr2line)(void *, int);
	const char *(*py_utf8)(void *, ssize_t *);
	void (*py_get_alloc)(int, void *);
	void (*py_set_alloc)(int, void *);
	int py_hook; /* 0 not yet, 1 installed, -1 not wanted */
	char pymalloc[16];
	char header[48]; /* the snapshot's "python" line, after the key */
} Y;

#define AT(p, off, type) (*(type *)((char *)(p) + (off)))

/* Pointers the walk follows must at least look like an object's. */
static bool py_ptr(const void *p)
{
	return (uintptr_t)p >= 4096 && ((uintptr_t)p & 7) == 0;
}

static void copy_str(char *dst, size_t n, void *unicode)
{
	ssize_t len = 0;
	const char *s = unicode != NULL ? Y.py_utf8(unicode, &len) : NULL;

	mf_strlcpy(dst, s != NULL ? s : "?", n);
	for (char *c = dst; *c; c++)
		if (*c == '\t' || *c == '\n')
			*c = ' ';
}

/*
 * Py_INCREF, with the GIL held. Since 3.12 an object whose reference
 * count's low 32 bits read negative is immortal (PEP 683: the code of
 * frozen modules, among others) and Py_INCREF leaves it alone; adding to
 * the whole word would make it mortal. Before 3.12 no count gets there.
 */
static void py_incref(void *obj)
{
	uint32_t *rc = obj;

	if ((int32_t)*rc >= 0)
		++*rc;
}

/* Index of a code object in the code table, adding it (and keeping a
 * reference, so that its address is not reused for other code); -1 full. */
static int code_index(void *code)
{
	uint64_t h = ((uintptr_t)code >> 4) * 0x9e3779b97f4a7c15ull;
	uint32_t i = (uint32_t)(h >> 40) & (MF_PROF_CODES_IDX - 1);

	for (;; i = (i + 1) & (MF_PROF_CODES_IDX - 1)) {
		int32_t c = mf_prof_st.code_idx[i];
		if (c < 0)
			break;
		if (mf_prof_st.codes[c].obj == (uintptr_t)code)
			return c;
	}
	if (mf_prof_st.ncodes >= MF_PROF_CODES_MAX) {
		mf_prof_st.over_codes++;
		return -1;
	}
	struct mf_prof_code *c = &mf_prof_st.codes[mf_prof_st.ncodes];
	c->obj = (uintptr_t)code;
	py_incref(code);
	c->firstline = AT(code, Y.off.co_firstline, int);
	copy_str(c->name, sizeof(c->name), AT(code, Y.off.co_qualname, void *));
	copy_str(c->file, sizeof(c->file), AT(code, Y.off.co_filename, void *));
	mf_prof_st.code_idx[i] = (int32_t)mf_prof_st.ncodes;
	return (int)mf_prof_st.ncodes++;
}

/* The thread's innermost frame, or NULL. */
static void *py_innermost(void *ts)
{
	if (Y.off.ts_cframe >= 0) {
		ts = AT(ts, Y.off.ts_cframe, void *);
		if (!py_ptr(ts))
			return NULL;
	}
	return AT(ts, Y.off.ts_frame, void *);
}

/*
 * What the walk makes of a frame, as CPython's own _PyFrame_IsIncomplete
 * and tracemalloc's walk do: the C stack's entry frames (3.12 and later)
 * and frames that have not reached their first traceable instruction (no
 * line yet; 3.13's shim frame of __init__ calls is one) are skipped. The
 * code object is checked for its type: anything else ends the walk.
 */
enum py_frame { PY_REPORT, PY_SKIP, PY_STOP };

static enum py_frame py_frame(void *f, void **code, int *lasti)
{
	unsigned char owner = AT(f, Y.off.f_owner, unsigned char);
	void *co = AT(f, Y.off.f_code, void *);
	intptr_t at;

	if (owner == PY_OWNED_BY_CSTACK)
		return PY_SKIP;
	if (!py_ptr(co) || AT(co, sizeof(void *), const void *) != Y.code_type)
		return PY_STOP;
	/* In bytes from the first code unit, as PyCode_Addr2Line takes it
	 * (_PyInterpreterFrame_LASTI counts 2-byte code units). */
	at = (intptr_t)AT(f, Y.off.f_instr, uintptr_t) - (intptr_t)co - Y.off.co_code_adaptive;
	if (owner != PY_OWNED_BY_GENERATOR && at < 2 * (intptr_t)AT(co, Y.off.co_firsttraceable, int))
		return PY_SKIP;
	*code = co;
	*lasti = (int)at;
	return PY_REPORT;
}

static void python_hook(void);

int mf_prof_python_stack(uint64_t *out)
{
	void *ts, *f;
	int k = 0;

	if (!Y.frames || !Y.py_initialized())
		return 0;
	ts = Y.py_this_ts();
	if (ts == NULL || ts != Y.py_current_ts())
		return 0;
	if (Y.py_hook == 0)
		python_hook();
	f = py_innermost(ts);
	for (int n = 0; py_ptr(f) && k < MF_PROF_PY_MAX && n < PY_WALK_MAX; n++) {
		void *code = NULL;
		int lasti = 0, line, ci;
		enum py_frame what = py_frame(f, &code, &lasti);

		if (what == PY_STOP)
			break;
		f = AT(f, Y.off.f_previous, void *);
		if (what == PY_SKIP || (ci = code_index(code)) < 0)
			continue;
		line = Y.py_addr2line(code, lasti);
		if (line < 0)
			line = mf_prof_st.codes[ci].firstline;
		out[k++] = MF_PROF_PY_FRAME_TAG | ((uint64_t)ci << 32) | (uint32_t)line;
	}
	return k;
}

/*
 * Python's small objects. pymalloc serves requests of up to 512 bytes from
 * its arenas without calling malloc, so the sampler would never see them.
 * Like tracemalloc, the profiler wraps the object and mem domains'
 * allocators (PyMem_SetAllocator, Include/cpython/pymem.h) with functions
 * that call the previous ones and add the block to the countdown; larger
 * requests are left alone, since pymalloc passes them on to malloc, which
 * the hooks already see. Installed at the first sample taken while the
 * thread holds the GIL, unless PYTHONMALLOC=malloc made this unnecessary.
 */
struct py_alloc {
	void *ctx;
	void *(*malloc)(void *, size_t);
	void *(*calloc)(void *, size_t, size_t);
	void *(*realloc)(void *, void *, size_t);
	void (*free)(void *, void *);
};

#define PY_SMALL 512
static struct py_alloc py_prev[2];

/*
 * The countdown runs before the call, on the requested size, so that an
 * allocation that is not sampled is a subtraction, a branch and a tail
 * call to pymalloc: nothing of the wrapper stays on the stack. The sampled
 * one (about one per rate bytes) takes the calls below.
 */
static __attribute__((noinline, cold)) void *py_malloc_sampled(struct py_alloc *a, size_t n)
{
	void *p = a->malloc(a->ctx, n);

	mf_prof_sample(p, n);
	return p;
}

static __attribute__((noinline, cold)) void *py_calloc_sampled(struct py_alloc *a, size_t k,
								size_t n)
{
	void *p = a->calloc(a->ctx, k, n);

	mf_prof_sample(p, k * n);
	return p;
}

static __attribute__((noinline, cold)) void *py_realloc_sampled(struct py_alloc *a, void *p,
								 size_t n)
{
	void *q = a->realloc(a->ctx, p, n);

	mf_prof_sample(q, n);
	return q;
}

static void *py_malloc(void *ctx, size_t n)
{
	struct py_alloc *a = ctx;

	if (n <= PY_SMALL && mf_prof_due(n))
		return py_malloc_sampled(a, n);
	return a->malloc(a->ctx, n);
}

static void *py_calloc(void *ctx, size_t k, size_t n)
{
	struct py_alloc *a = ctx;
	size_t total;

	if (!__builtin_mul_overflow(k, n, &total) && total <= PY_SMALL && mf_prof_due(total))
		return py_calloc_sampled(a, k, n);
	return a->calloc(a->ctx, k, n);
}

/* A block that may be a sampled one leaves the live view first. */
static __attribute__((noinline, cold)) void *py_realloc_live(struct py_alloc *a, void *p,
							      size_t n)
{
	mf_prof_free_slow(p);
	if (n <= PY_SMALL && mf_prof_due(n))
		return py_realloc_sampled(a, p, n);
	return a->realloc(a->ctx, p, n);
}

static __attribute__((noinline, cold)) void py_free_live(struct py_alloc *a, void *p)
{
	mf_prof_free_slow(p);
	a->free(a->ctx, p);
}

/* Every path ends in a tail call: the wrapper keeps no frame. */
static void *py_realloc(void *ctx, void *p, size_t n)
{
	struct py_alloc *a = ctx;

	if (p != NULL && mf_prof_maybe_live(p))
		return py_realloc_live(a, p, n);
	if (n <= PY_SMALL && mf_prof_due(n))
		return py_realloc_sampled(a, p, n);
	return a->realloc(a->ctx, p, n);
}

static void py_free(void *ctx, void *p)
{
	struct py_alloc *a = ctx;

	if (p != NULL && mf_prof_maybe_live(p))
		return py_free_live(a, p);
	a->free(a->ctx, p);
}

/* With the GIL held. PYMEM_DOMAIN_MEM = 1, PYMEM_DOMAIN_OBJ = 2. */
static void python_hook(void)
{
	struct py_alloc mine;

	for (int d = 0; d < 2; d++) {
		Y.py_get_alloc(d + 1, &py_prev[d]);
		mine = (struct py_alloc){&py_prev[d], py_malloc, py_calloc, py_realloc, py_free};
		Y.py_set_alloc(d + 1, &mine);
	}
	Y.py_hook = 1;
}

/* How _Py_DebugOffsets begins, at the start of _PyRuntime since 3.13
 * (Include/internal/pycore_runtime.h; pycore_debug_offsets.h from 3.14 on,
 * with the same head). */
struct py_debug_head {
	char cookie[8]; /* "xdebugpy" */
	uint64_t version, free_threaded;
};

static void header_add(const char *s)
{
	size_t n = strlen(Y.header);

	mf_strlcpy(Y.header + n, s, sizeof(Y.header) - n);
}

/* "1 3.12.1" when the frames are read; "0 3.13.0 WHY" when an interpreter
 * is there but they are not; "0" with no interpreter (docs/profiler.md). */
static void header_set(unsigned long ver, const char *why)
{
	char d[MF_U64_DEC_LEN];

	mf_strlcpy(Y.header, why == NULL ? "1 " : "0 ", sizeof(Y.header));
	header_add(mf_u64_dec(ver >> 24, d));
	header_add(".");
	header_add(mf_u64_dec((ver >> 16) & 0xff, d));
	header_add(".");
	header_add(mf_u64_dec((ver >> 8) & 0xff, d));
	if (why != NULL) {
		header_add(" ");
		header_add(why);
	}
}

static bool python_symbols(void)
{
	*(void **)&Y.py_initialized = dlsym(RTLD_DEFAULT, "Py_IsInitialized");
	*(void **)&Y.py_this_ts = dlsym(RTLD_DEFAULT, "PyGILState_GetThisThreadState");
	/* The same function, public since 3.13 under this name. */
	*(void **)&Y.py_current_ts = dlsym(RTLD_DEFAULT, "PyThreadState_GetUnchecked");
	if (Y.py_current_ts == NULL)
		*(void **)&Y.py_current_ts = dlsym(RTLD_DEFAULT, "_PyThreadState_UncheckedGet");
	*(void **)&Y.py_addr2line = dlsym(RTLD_DEFAULT, "PyCode_Addr2Line");
	*(void **)&Y.py_utf8 = dlsym(RTLD_DEFAULT, "PyUnicode_AsUTF8AndSize");
	Y.code_type = dlsym(RTLD_DEFAULT, "PyCode_Type");
	*(void **)&Y.py_get_alloc = dlsym(RTLD_DEFAULT, "PyMem_GetAllocator");
	*(void **)&Y.py_set_alloc = dlsym(RTLD_DEFAULT, "PyMem_SetAllocator");
	return Y.py_initialized && Y.py_this_ts && Y.py_current_ts && Y.py_addr2line && Y.py_utf8 &&
	       Y.code_type;
}

void mf_prof_python_init(const char *pymalloc)
{
	const unsigned long *ver = dlsym(RTLD_DEFAULT, "Py_Version");
	const struct py_debug_head *rt = NULL;
	const char *why = "unsupported";

	mf_strlcpy(Y.pymalloc, pymalloc != NULL && strncmp(pymalloc, "malloc", 6) == 0 ? "off" : "on",
		   sizeof(Y.pymalloc));
	mf_strlcpy(Y.header, "0", sizeof(Y.header));
	if (ver == NULL)
		return;
	if ((*ver >> 16) >= 0x030d) {
		rt = dlsym(RTLD_DEFAULT, "_PyRuntime");
		if (rt != NULL && memcmp(rt->cookie, "xdebugpy", 8) != 0)
			rt = NULL;
	}
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
		if (layouts[i]->version != (*ver >> 16))
			continue;
		Y.off = layouts[i]->off;
		why = layouts[i]->runtime != NULL ? layouts[i]->runtime(rt, &Y.off) : NULL;
	}
	/* Out of scope: without the GIL the walk could not tell whether the
	 * frames it reads are changing, and objects come from mimalloc. */
	if (rt != NULL && rt->free_threaded)
		why = "free-threaded";
	if (why == NULL && !python_symbols())
		why = "mismatch";
	header_set(*ver, why);
	Y.frames = why == NULL;
	if (Y.py_get_alloc == NULL || Y.py_set_alloc == NULL || strcmp(Y.pymalloc, "off") == 0)
		Y.py_hook = -1;
}

const char *mf_prof_python_header(void)
{
	return Y.header;
}

const char *mf_prof_pymalloc_state(void)
{
	return Y.py_hook == 1 ? "hooked" : Y.pymalloc;
}
