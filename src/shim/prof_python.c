/*
 * prof_python.c - the profiler's Python frames: which CPython layout to
 * read (prof_pylayout.h), the walk of the frames of the thread that holds
 * the GIL, the table of code objects the sites cite, and the PyMem hooks
 * that let the countdown see pymalloc's small objects.
 */
#include <dlfcn.h>
#include <string.h>
#include <sys/types.h>

#include "shim/prof_int.h"
#include "shim/prof_pylayout.h"

/* The layouts known, by version (prof_pylayout.h). */
static const struct mf_py_layout *const layouts[] = {
	&mf_py_layout_311,
};

/* Resolved at start; read only with the GIL held. */
static struct {
	const struct mf_py_layout *layout; /* NULL: no Python frames */
	int (*py_initialized)(void);
	void *(*py_this_ts)(void);
	void *(*py_current_ts)(void);
	int (*py_addr2line)(void *, int);
	const char *(*py_utf8)(void *, ssize_t *);
	void (*py_get_alloc)(int, void *);
	void (*py_set_alloc)(int, void *);
	int py_hook; /* 0 not yet, 1 installed, -1 not wanted */
	char pymalloc[16];
} Y;

static void copy_str(char *dst, size_t n, void *unicode)
{
	ssize_t len = 0;
	const char *s = unicode != NULL ? Y.py_utf8(unicode, &len) : NULL;

	mf_strlcpy(dst, s != NULL ? s : "?", n);
	for (char *c = dst; *c; c++)
		if (*c == '\t' || *c == '\n')
			*c = ' ';
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
	(*(ssize_t *)code)++; /* Py_INCREF, with the GIL held */
	c->firstline = Y.layout->firstline(code);
	copy_str(c->name, sizeof(c->name), Y.layout->qualname(code));
	copy_str(c->file, sizeof(c->file), Y.layout->filename(code));
	mf_prof_st.code_idx[i] = (int32_t)mf_prof_st.ncodes;
	return (int)mf_prof_st.ncodes++;
}

static void python_hook(void);

int mf_prof_python_stack(uint64_t *out)
{
	const struct mf_py_layout *py = Y.layout;
	void *ts, *f;
	int k = 0;

	if (py == NULL || !Y.py_initialized())
		return 0;
	ts = Y.py_this_ts();
	if (ts == NULL || ts != Y.py_current_ts())
		return 0;
	if (Y.py_hook == 0)
		python_hook();
	for (f = py->innermost(ts); f != NULL && k < MF_PROF_PY_MAX; f = py->previous(f)) {
		void *code = py->code(f);
		int line, ci;

		if (code == NULL)
			break;
		ci = code_index(code);
		if (ci < 0)
			continue;
		line = Y.py_addr2line(code, py->lasti(f, code));
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

void mf_prof_python_init(const char *pymalloc)
{
	const unsigned long *ver = dlsym(RTLD_DEFAULT, "Py_Version");
	const struct mf_py_layout *layout = NULL;

	mf_strlcpy(Y.pymalloc, pymalloc != NULL && strncmp(pymalloc, "malloc", 6) == 0 ? "off" : "on",
		   sizeof(Y.pymalloc));
	for (size_t i = 0; ver != NULL && i < sizeof(layouts) / sizeof(layouts[0]); i++)
		if (layouts[i]->version == (*ver >> 16))
			layout = layouts[i];
	if (layout == NULL)
		return;
	*(void **)&Y.py_initialized = dlsym(RTLD_DEFAULT, "Py_IsInitialized");
	*(void **)&Y.py_this_ts = dlsym(RTLD_DEFAULT, "PyGILState_GetThisThreadState");
	*(void **)&Y.py_current_ts = dlsym(RTLD_DEFAULT, "_PyThreadState_UncheckedGet");
	*(void **)&Y.py_addr2line = dlsym(RTLD_DEFAULT, "PyCode_Addr2Line");
	*(void **)&Y.py_utf8 = dlsym(RTLD_DEFAULT, "PyUnicode_AsUTF8AndSize");
	*(void **)&Y.py_get_alloc = dlsym(RTLD_DEFAULT, "PyMem_GetAllocator");
	*(void **)&Y.py_set_alloc = dlsym(RTLD_DEFAULT, "PyMem_SetAllocator");
	if (Y.py_initialized && Y.py_this_ts && Y.py_current_ts && Y.py_addr2line && Y.py_utf8)
		Y.layout = layout;
	if (Y.py_get_alloc == NULL || Y.py_set_alloc == NULL || strcmp(Y.pymalloc, "off") == 0)
		Y.py_hook = -1;
}

bool mf_prof_python_seen(void)
{
	return Y.layout != NULL;
}

const char *mf_prof_pymalloc_state(void)
{
	return Y.py_hook == 1 ? "hooked" : Y.pymalloc;
}
