/*
 * _memfence.c - the C side of the memfence Python package.
 *
 * The accounting shim is found at import with dlsym(RTLD_DEFAULT, ...), never
 * linked: a program imports memfence the same way whether or not `memfence
 * run` preloaded libmemfence.so, and when the shim is absent every call here
 * says so (None) and the Python side falls back to /proc figures.
 *
 * Sizes are parsed by the command's own parser (src/base/size.c), so that
 * "512M" means the same in Python as on the command line. The limits
 * (install) are the host library's code, linked in statically so that
 * in-process limits resolve exactly as `memfence exec` resolves them.
 * MF_HAVE_LIMITS is defined by the build when the host library has them.
 */
#define PY_SSIZE_T_CLEAN
#define Py_LIMITED_API 0x03080000
#include <Python.h>

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#include "memfence.h"
#include "base/envspec.h"
#include "base/size.h"

#ifndef MF_VERSION
#error "MF_VERSION is defined by the build, from the VERSION file"
#endif

#ifdef MF_HAVE_LIMITS
#include "host/memory.h"
#include "host/plan.h"
#endif

static int (*mf_active_fn)(void);
static int (*mf_begin_fn)(const char *, const char *, size_t);
static int (*mf_end_fn)(struct memfence_scope_stats *);
static int (*mf_current_fn)(struct memfence_scope_stats *);
static int (*mf_pstats_fn)(struct memfence_process_stats *);
static int (*mf_terrno_fn)(void);
static int (*mf_suspend_fn)(struct memfence_saved_scope *);
static int (*mf_resume_fn)(struct memfence_saved_scope *);
static int (*mf_genter_fn)(struct memfence_gate *, const char *, size_t, int);
static int (*mf_gwait_fn)(struct memfence_gate *, int);
static int (*mf_gleave_fn)(struct memfence_gate *);
static int (*mf_gmax_fn)(void);
static int (*mf_refusal_fn)(void);

/* dlsym returns void *; POSIX guarantees it converts to a function pointer. */
#define MF_RESOLVE(var, name) (*(void **)(&(var)) = dlsym(RTLD_DEFAULT, (name)))

static void mf_resolve_shim(void)
{
	MF_RESOLVE(mf_active_fn, "memfence_active");
	MF_RESOLVE(mf_begin_fn, "memfence_scope_begin");
	MF_RESOLVE(mf_end_fn, "memfence_scope_end");
	MF_RESOLVE(mf_current_fn, "memfence_scope_current");
	MF_RESOLVE(mf_pstats_fn, "memfence_process_stats");
	MF_RESOLVE(mf_terrno_fn, "memfence_thread_errno");
	MF_RESOLVE(mf_suspend_fn, "memfence_scope_suspend");
	MF_RESOLVE(mf_resume_fn, "memfence_scope_resume");
	if (!mf_suspend_fn || !mf_resume_fn)
		mf_suspend_fn = NULL;
	MF_RESOLVE(mf_genter_fn, "memfence_gate_enter");
	MF_RESOLVE(mf_gwait_fn, "memfence_gate_wait");
	MF_RESOLVE(mf_gleave_fn, "memfence_gate_leave");
	MF_RESOLVE(mf_gmax_fn, "memfence_gate_max_wait");
	MF_RESOLVE(mf_refusal_fn, "memfence_scope_refusal");
	/* A shim without the gate: requests are never held. */
	if (!mf_genter_fn || !mf_gwait_fn || !mf_gleave_fn || !mf_gmax_fn)
		mf_genter_fn = NULL;
	/* A partial set (an older shim) is treated as no shim at all. */
	if (!mf_active_fn || !mf_begin_fn || !mf_end_fn || !mf_current_fn || !mf_pstats_fn)
		mf_active_fn = NULL;
}

static int mf_shim_on(void)
{
	return mf_active_fn != NULL && mf_active_fn() == 1;
}

static PyObject *mf_py_active(PyObject *self, PyObject *args)
{
	(void)self;
	(void)args;
	return PyBool_FromLong(mf_shim_on());
}

static PyObject *mf_py_symbols(PyObject *self, PyObject *args)
{
	(void)self;
	(void)args;
	return PyBool_FromLong(mf_active_fn != NULL);
}

static int mf_dict_set(PyObject *d, const char *key, PyObject *v)
{
	int rc;

	if (v == NULL)
		return -1;
	rc = PyDict_SetItemString(d, key, v);
	Py_DECREF(v);
	return rc;
}

static PyObject *mf_scope_dict(const struct memfence_scope_stats *s)
{
	PyObject *d = PyDict_New();

	if (d == NULL)
		return NULL;
	if (mf_dict_set(d, "allocated", PyLong_FromUnsignedLongLong(s->allocated)) ||
	    mf_dict_set(d, "freed", PyLong_FromUnsignedLongLong(s->freed)) ||
	    mf_dict_set(d, "net", PyLong_FromLongLong(s->net)) ||
	    mf_dict_set(d, "peak", PyLong_FromUnsignedLongLong(s->peak)) ||
	    mf_dict_set(d, "failed", PyLong_FromUnsignedLongLong(s->failed)) ||
	    mf_dict_set(d, "calls", PyLong_FromUnsignedLongLong(s->calls)) ||
	    mf_dict_set(d, "duration_ns", PyLong_FromUnsignedLongLong(s->duration_ns))) {
		Py_DECREF(d);
		return NULL;
	}
	return d;
}

/* scope_begin(name, id_or_None, budget) -> the shim's return code, or None
 * when there is no shim. */
static PyObject *mf_py_scope_begin(PyObject *self, PyObject *args)
{
	const char *name, *id = NULL;
	unsigned long long budget = 0;
	int rc;

	(void)self;
	if (!PyArg_ParseTuple(args, "sz|K", &name, &id, &budget))
		return NULL;
	if (!mf_shim_on())
		Py_RETURN_NONE;
	rc = mf_begin_fn(name, id, (size_t)budget);
	return PyLong_FromLong(rc);
}

/* Figures of the innermost scope from fn (end or current), or None. */
static PyObject *mf_scope_call(int (*fn)(struct memfence_scope_stats *))
{
	struct memfence_scope_stats s;

	if (!mf_shim_on())
		Py_RETURN_NONE;
	memset(&s, 0, sizeof(s));
	if (fn(&s) != MEMFENCE_OK)
		Py_RETURN_NONE;
	return mf_scope_dict(&s);
}

static PyObject *mf_py_scope_end(PyObject *self, PyObject *args)
{
	(void)self;
	(void)args;
	return mf_scope_call(mf_end_fn);
}

static PyObject *mf_py_scope_current(PyObject *self, PyObject *args)
{
	(void)self;
	(void)args;
	return mf_scope_call(mf_current_fn);
}

static PyObject *mf_py_process_stats(PyObject *self, PyObject *args)
{
	struct memfence_process_stats s;
	PyObject *d;

	(void)self;
	(void)args;
	if (!mf_shim_on())
		Py_RETURN_NONE;
	memset(&s, 0, sizeof(s));
	if (mf_pstats_fn(&s) != MEMFENCE_OK)
		Py_RETURN_NONE;
	d = PyDict_New();
	if (d == NULL)
		return NULL;
	if (mf_dict_set(d, "live", PyLong_FromUnsignedLongLong(s.live)) ||
	    mf_dict_set(d, "peak", PyLong_FromUnsignedLongLong(s.peak)) ||
	    mf_dict_set(d, "allocated", PyLong_FromUnsignedLongLong(s.allocated)) ||
	    mf_dict_set(d, "freed", PyLong_FromUnsignedLongLong(s.freed)) ||
	    mf_dict_set(d, "alloc_calls", PyLong_FromUnsignedLongLong(s.alloc_calls)) ||
	    mf_dict_set(d, "free_calls", PyLong_FromUnsignedLongLong(s.free_calls)) ||
	    mf_dict_set(d, "failed_alloc", PyLong_FromUnsignedLongLong(s.failed_alloc)) ||
	    mf_dict_set(d, "failed_budget", PyLong_FromUnsignedLongLong(s.failed_budget)) ||
	    mf_dict_set(d, "failed_heap", PyLong_FromUnsignedLongLong(s.failed_heap)) ||
	    mf_dict_set(d, "failed_container", PyLong_FromUnsignedLongLong(s.failed_container)) ||
	    mf_dict_set(d, "failed_fault", PyLong_FromUnsignedLongLong(s.failed_fault)) ||
	    mf_dict_set(d, "thread_failed", PyLong_FromUnsignedLongLong(s.thread_failed)) ||
	    mf_dict_set(d, "thread_last_errno", PyLong_FromLong(s.thread_last_errno)) ||
	    mf_dict_set(d, "scopes_open", PyLong_FromLong(s.scopes_open))) {
		Py_DECREF(d);
		return NULL;
	}
	return d;
}

/* errno of the calling thread's last failed pthread_create, as the shim saw
 * it (Python's "can't start new thread" drops it); None without a shim. */
static PyObject *mf_py_thread_errno(PyObject *self, PyObject *args)
{
	(void)self;
	(void)args;
	if (!mf_shim_on() || mf_terrno_fn == NULL)
		Py_RETURN_NONE;
	return PyLong_FromLong(mf_terrno_fn());
}

/*
 * Give free heap back to the kernel: glibc keeps what a failed request freed
 * in its arenas, resident and counted by the container, until it is reused.
 * malloc_trim(0) shrinks every arena's top and, since glibc 2.8, releases the
 * whole free pages inside them too (madvise MADV_DONTNEED). The GIL is let
 * go: it walks every arena and takes their locks. True when memory was
 * released; False when there was none or the C library is not glibc.
 */
static PyObject *mf_py_trim(PyObject *self, PyObject *args)
{
	int released = 0;

	(void)self;
	(void)args;
#ifdef __GLIBC__
	Py_BEGIN_ALLOW_THREADS
	released = malloc_trim(0);
	Py_END_ALLOW_THREADS
#endif
	return PyBool_FromLong(released);
}

/*
 * Saved(): storage for one scope taken off its thread, so that a request
 * that waits (an asyncio task between two awaits, a WSGI body between two
 * chunks) stays one scope, ranked by the shim's pressure policy as large
 * as it is, instead of one scope per step. suspend() takes the thread's
 * innermost scope into it, resume() puts it back on the calling thread.
 * Both return the shim's code, or None when the shim (or this part of its
 * API) is absent; the Python side then falls back to a scope per step.
 */
typedef struct {
	PyObject_HEAD
	struct memfence_saved_scope saved;
} mf_saved_obj;

static PyObject *mf_saved_call(PyObject *self, int (*fn)(struct memfence_saved_scope *))
{
	if (!mf_shim_on() || mf_suspend_fn == NULL)
		Py_RETURN_NONE;
	return PyLong_FromLong(fn(&((mf_saved_obj *)self)->saved));
}

static PyObject *mf_saved_suspend(PyObject *self, PyObject *args)
{
	(void)args;
	return mf_saved_call(self, mf_suspend_fn);
}

static PyObject *mf_saved_resume(PyObject *self, PyObject *args)
{
	(void)args;
	return mf_saved_call(self, mf_resume_fn);
}

static PyObject *mf_py_suspend_supported(PyObject *self, PyObject *args)
{
	(void)self;
	(void)args;
	return PyBool_FromLong(mf_shim_on() && mf_suspend_fn != NULL);
}

static PyMethodDef mf_saved_methods[] = {
	{"suspend", mf_saved_suspend, METH_NOARGS, "Take the innermost scope off this thread."},
	{"resume", mf_saved_resume, METH_NOARGS, "Put the saved scope back on this thread."},
	{NULL, NULL, 0, NULL}
};

static PyType_Slot mf_saved_slots[] = {
	{Py_tp_doc, "Storage for a suspended memfence scope."},
	{Py_tp_methods, mf_saved_methods},
	{Py_tp_new, PyType_GenericNew},
	{0, NULL}
};

static PyType_Spec mf_saved_spec = {
	"memfence._memfence.Saved", sizeof(mf_saved_obj), 0, Py_TPFLAGS_DEFAULT, mf_saved_slots
};

/*
 * The admission gate. A request's place is a capsule (gate_new()) the
 * caller keeps for the request's life; one dropped without gate_leave()
 * leaves the gate then. Waiting releases the GIL: other threads, and the
 * requests they hold, go on meanwhile.
 */
#define MF_GATE_CAPSULE "memfence.gate"

static void mf_gate_free(PyObject *cap)
{
	struct memfence_gate *g = PyCapsule_GetPointer(cap, MF_GATE_CAPSULE);

	if (g == NULL)
		return;
	if (mf_genter_fn != NULL)
		mf_gleave_fn(g);
	PyMem_Free(g);
}

static PyObject *mf_py_gate_new(PyObject *self, PyObject *args)
{
	struct memfence_gate *g;
	PyObject *cap;

	(void)self;
	(void)args;
	g = PyMem_Malloc(sizeof(*g));
	if (g == NULL)
		return PyErr_NoMemory();
	memset(g, 0, sizeof(*g));
	cap = PyCapsule_New(g, MF_GATE_CAPSULE, mf_gate_free);
	if (cap == NULL)
		PyMem_Free(g);
	return cap;
}

static struct memfence_gate *mf_gate_of(PyObject *cap)
{
	return PyCapsule_GetPointer(cap, MF_GATE_CAPSULE);
}

/* gate_enter(gate, name, need, timeout_ms) -> rc, or None without a gate. */
static PyObject *mf_py_gate_enter(PyObject *self, PyObject *args)
{
	PyObject *obj;
	const char *name;
	unsigned long long need = 0;
	int timeout_ms = -1, rc;
	struct memfence_gate *g;

	(void)self;
	if (!PyArg_ParseTuple(args, "Os|Ki", &obj, &name, &need, &timeout_ms))
		return NULL;
	if ((g = mf_gate_of(obj)) == NULL)
		return NULL;
	if (!mf_shim_on() || mf_genter_fn == NULL)
		Py_RETURN_NONE;
	Py_BEGIN_ALLOW_THREADS
	rc = mf_genter_fn(g, name, (size_t)need, timeout_ms);
	Py_END_ALLOW_THREADS
	return PyLong_FromLong(rc);
}

/* gate_wait(gate, timeout_ms) -> rc, or None without a gate. */
static PyObject *mf_py_gate_wait(PyObject *self, PyObject *args)
{
	PyObject *obj;
	int timeout_ms = -1, rc;
	struct memfence_gate *g;

	(void)self;
	if (!PyArg_ParseTuple(args, "O|i", &obj, &timeout_ms))
		return NULL;
	if ((g = mf_gate_of(obj)) == NULL)
		return NULL;
	if (!mf_shim_on() || mf_genter_fn == NULL)
		Py_RETURN_NONE;
	Py_BEGIN_ALLOW_THREADS
	rc = mf_gwait_fn(g, timeout_ms);
	Py_END_ALLOW_THREADS
	return PyLong_FromLong(rc);
}

static PyObject *mf_py_gate_leave(PyObject *self, PyObject *args)
{
	PyObject *obj;
	struct memfence_gate *g;

	(void)self;
	if (!PyArg_ParseTuple(args, "O", &obj))
		return NULL;
	if ((g = mf_gate_of(obj)) == NULL)
		return NULL;
	if (mf_shim_on() && mf_genter_fn != NULL)
		mf_gleave_fn(g);
	Py_RETURN_NONE;
}

/* The gate's maximum wait in ms, or None when it is off. */
static PyObject *mf_py_gate_max_wait(PyObject *self, PyObject *args)
{
	int ms;

	(void)self;
	(void)args;
	if (!mf_shim_on() || mf_genter_fn == NULL || (ms = mf_gmax_fn()) < 0)
		Py_RETURN_NONE;
	return PyLong_FromLong(ms);
}

/* enum memfence_refusal of the innermost scope, or None (no shim, no scope,
 * or a shim older than the call). */
static PyObject *mf_py_scope_refusal(PyObject *self, PyObject *args)
{
	int rc;

	(void)self;
	(void)args;
	if (!mf_shim_on() || mf_refusal_fn == NULL || (rc = mf_refusal_fn()) < 0)
		Py_RETURN_NONE;
	return PyLong_FromLong(rc);
}

/* Default stack of threads created from now on; the main thread and threads
 * already running keep theirs. */
static PyObject *mf_py_set_default_stack(PyObject *self, PyObject *args)
{
	unsigned long long n;
	pthread_attr_t attr;
	int rc;

	(void)self;
	if (!PyArg_ParseTuple(args, "K", &n))
		return NULL;
	rc = pthread_getattr_default_np(&attr);
	if (rc == 0) {
		rc = pthread_attr_setstacksize(&attr, (size_t)n);
		if (rc == 0)
			rc = pthread_setattr_default_np(&attr);
		pthread_attr_destroy(&attr);
	}
	if (rc != 0) {
		errno = rc;
		return PyErr_SetFromErrno(PyExc_OSError);
	}
	Py_RETURN_NONE;
}

/* parse_size(text, percent_base=0) -> bytes, or ValueError with the reason. */
static PyObject *mf_py_parse_size(PyObject *self, PyObject *args)
{
	const char *s, *err = "invalid size";
	unsigned long long base = 0;
	uint64_t v;

	(void)self;
	if (!PyArg_ParseTuple(args, "s|K", &s, &base))
		return NULL;
	if (mf_size_parse(s, base, &v, &err) != 0) {
		PyErr_SetString(PyExc_ValueError, err);
		return NULL;
	}
	return PyLong_FromUnsignedLongLong(v);
}

/* Ask the kernel to send sig to this process when its parent dies: an
 * isolate() child must not outlive the caller. */
static PyObject *mf_py_set_pdeathsig(PyObject *self, PyObject *args)
{
	int sig;

	(void)self;
	if (!PyArg_ParseTuple(args, "i", &sig))
		return NULL;
	if (prctl(PR_SET_PDEATHSIG, (unsigned long)sig, 0, 0, 0) != 0)
		return PyErr_SetFromErrno(PyExc_OSError);
	Py_RETURN_NONE;
}

#ifdef MF_HAVE_LIMITS
static PyObject *mf_u64(uint64_t v)
{
	if (v == MF_UNKNOWN)
		Py_RETURN_NONE;
	return PyLong_FromUnsignedLongLong(v);
}

static PyObject *mf_memory_dict(const struct mf_memory *m)
{
	PyObject *d = PyDict_New(), *w;
	int i;

	if (d == NULL)
		return NULL;
	if (mf_dict_set(d, "cgroup_version", PyLong_FromLong(m->cgroup_version)) ||
	    mf_dict_set(d, "cgroup_dir", PyUnicode_FromString(m->cgroup_dir)) ||
	    mf_dict_set(d, "limit", mf_u64(m->limit)) ||
	    mf_dict_set(d, "limit_source", PyUnicode_FromString(mf_limit_source_name(m->limit_source))) ||
	    mf_dict_set(d, "limit_file", PyUnicode_FromString(m->limit_file)) ||
	    mf_dict_set(d, "usage", mf_u64(m->usage)) ||
	    mf_dict_set(d, "working_set", mf_u64(m->working_set)) ||
	    mf_dict_set(d, "headroom", mf_u64(m->headroom)) ||
	    mf_dict_set(d, "oom_kill", mf_u64(m->oom_kill))) {
		Py_DECREF(d);
		return NULL;
	}
	w = PyList_New(0);
	if (w == NULL || mf_dict_set(d, "warnings", w)) {
		Py_DECREF(d);
		return NULL;
	}
	for (i = 0; i < m->nwarnings && i < MF_MAX_WARNINGS; i++) {
		PyObject *s = PyUnicode_FromString(m->warnings[i]);
		if (s == NULL || PyList_Append(w, s)) {
			Py_XDECREF(s);
			Py_DECREF(d);
			return NULL;
		}
		Py_DECREF(s);
	}
	return d;
}

/* memory() -> what the core found about this process's limit and usage. */
static PyObject *mf_py_memory(PyObject *self, PyObject *args)
{
	struct mf_memory *m;
	char err[256] = "";
	PyObject *d;

	(void)self;
	(void)args;
	/* Several KiB of paths: not for the stack of a thread that may be
	 * one of the small ones install() just asked for. */
	m = PyMem_Calloc(1, sizeof(*m));
	if (m == NULL)
		return PyErr_NoMemory();
	if (mf_memory_read(mf_root_default(), 0, m, err, sizeof(err)) != 0) {
		PyMem_Free(m);
		PyErr_Format(PyExc_OSError, "cannot read this process's memory limit: %s", err);
		return NULL;
	}
	d = mf_memory_dict(m);
	PyMem_Free(m);
	return d;
}

/* plan(limit, reserve, rlimit, stack, apply) -> the plan as a dict; with
 * apply true the rlimit is set on this process. ValueError for bad input. */
static PyObject *mf_py_plan(PyObject *self, PyObject *args)
{
	struct mf_plan_opts o = {0};
	struct mf_memory *m;
	struct mf_plan p;
	char err[512] = "";
	int apply = 0;
	PyObject *d = NULL;

	(void)self;
	if (!PyArg_ParseTuple(args, "zzzzp", &o.limit, &o.reserve, &o.rlimit, &o.stack, &apply))
		return NULL;
	mf_plan_opts_from_env(&o);
	m = PyMem_Calloc(1, sizeof(*m));
	if (m == NULL)
		return PyErr_NoMemory();
	if (mf_memory_read(mf_root_default(), 0, m, err, sizeof(err)) != 0) {
		/* A limit given in bytes needs no reading; let resolve decide. */
		m->limit = MF_UNKNOWN;
	}
	if (mf_plan_resolve(&o, m, &p, err, sizeof(err)) != 0) {
		PyErr_SetString(PyExc_ValueError, err);
		goto free_memory;
	}
	if (apply && mf_plan_apply_rlimit(&p, err, sizeof(err)) != 0) {
		PyErr_SetString(PyExc_OSError, err);
		goto free_memory;
	}
	d = PyDict_New();
	if (d == NULL)
		goto free_memory;
	if (mf_dict_set(d, "limit", PyLong_FromUnsignedLongLong(p.limit)) ||
	    mf_dict_set(d, "limit_from", PyUnicode_FromString(p.limit_from)) ||
	    mf_dict_set(d, "reserve", PyLong_FromUnsignedLongLong(p.reserve)) ||
	    mf_dict_set(d, "budget", PyLong_FromUnsignedLongLong(p.budget)) ||
	    mf_dict_set(d, "rlimit", PyUnicode_FromString(mf_rlimit_name(p.rlimit))) ||
	    mf_dict_set(d, "stack", PyLong_FromUnsignedLongLong(p.stack)) ||
	    mf_dict_set(d, "memory", mf_memory_dict(m))) {
		Py_CLEAR(d);
	}
free_memory:
	PyMem_Free(m);
	return d;
}
#endif

static PyMethodDef mf_methods[] = {
	{"active", mf_py_active, METH_NOARGS, "True when the accounting shim is loaded and counting."},
	{"shim_loaded", mf_py_symbols, METH_NOARGS, "True when the shim's API was found in the process."},
	{"scope_begin", mf_py_scope_begin, METH_VARARGS, "scope_begin(name, id, budget) -> rc or None."},
	{"scope_end", mf_py_scope_end, METH_NOARGS, "Close the innermost scope: figures or None."},
	{"scope_current", mf_py_scope_current, METH_NOARGS, "Figures of the innermost scope or None."},
	{"process_stats", mf_py_process_stats, METH_NOARGS, "Process figures from the shim or None."},
	{"suspend_supported", mf_py_suspend_supported, METH_NOARGS, "True when scopes can be suspended."},
	{"gate_new", mf_py_gate_new, METH_NOARGS, "A request's place at the gate."},
	{"gate_enter", mf_py_gate_enter, METH_VARARGS, "gate_enter(gate, name, need, timeout_ms) -> rc or None."},
	{"gate_wait", mf_py_gate_wait, METH_VARARGS, "gate_wait(gate, timeout_ms) -> rc or None."},
	{"gate_leave", mf_py_gate_leave, METH_VARARGS, "gate_leave(gate): done, or give up the place."},
	{"gate_max_wait", mf_py_gate_max_wait, METH_NOARGS, "The gate's maximum wait (ms) or None."},
	{"scope_refusal", mf_py_scope_refusal, METH_NOARGS, "Refusal kind of the innermost scope or None."},
	{"thread_errno", mf_py_thread_errno, METH_NOARGS, "errno of this thread's last failed thread start."},
	{"trim", mf_py_trim, METH_NOARGS, "malloc_trim(0): free heap back to the kernel."},
	{"set_default_stack", mf_py_set_default_stack, METH_VARARGS, "Stack size of new threads."},
	{"set_pdeathsig", mf_py_set_pdeathsig, METH_VARARGS, "prctl(PR_SET_PDEATHSIG)."},
	{"parse_size", mf_py_parse_size, METH_VARARGS, "parse_size(text, percent_base=0) -> bytes."},
#ifdef MF_HAVE_LIMITS
	{"memory", mf_py_memory, METH_NOARGS, "Memory limit and usage of this process."},
	{"plan", mf_py_plan, METH_VARARGS, "Resolve (and apply) limits."},
#endif
	{NULL, NULL, 0, NULL}
};

static struct PyModuleDef mf_module = {
	PyModuleDef_HEAD_INIT, "_memfence", "memfence's C side.", -1, mf_methods,
	NULL, NULL, NULL, NULL
};

/* ENV: {"SEGMENT": "MEMFENCE_SEGMENT", ...}, the names of the MEMFENCE_*
 * variables (src/base/envspec.h), which the package's modules look up by id
 * instead of spelling them out. */
static int add_env(PyObject *m)
{
	PyObject *d = PyDict_New(), *v;
	int bad = d == NULL;

#define MF_ENV_ADD_(id, type, def, set_by, read_by)                                       \
	if (!bad) {                                                                       \
		v = PyUnicode_FromString(MF_ENV(id));                                     \
		bad = v == NULL || PyDict_SetItemString(d, #id, v) != 0;                  \
		Py_XDECREF(v);                                                            \
	}
	MF_ENV_TABLE(MF_ENV_ADD_)
#undef MF_ENV_ADD_
	if (bad || PyModule_AddObject(m, "ENV", d) != 0) {
		Py_XDECREF(d);
		return -1;
	}
	return 0;
}

PyMODINIT_FUNC PyInit__memfence(void);

PyMODINIT_FUNC PyInit__memfence(void)
{
	PyObject *m, *saved;

	mf_resolve_shim();
	m = PyModule_Create(&mf_module);
	if (m == NULL)
		return NULL;
	saved = PyType_FromSpec(&mf_saved_spec);
	if (saved == NULL || PyModule_AddObject(m, "Saved", saved) != 0) {
		Py_XDECREF(saved);
		Py_DECREF(m);
		return NULL;
	}
	if (add_env(m) != 0) {
		Py_DECREF(m);
		return NULL;
	}
#ifdef MF_HAVE_LIMITS
	PyModule_AddIntConstant(m, "HAVE_LIMITS", 1);
	/* install()'s defaults are the command's. */
	PyModule_AddStringConstant(m, "RESERVE_RULE", MF_RESERVE_RULE);
	PyModule_AddIntConstant(m, "STACK_DEFAULT", (long)MF_STACK_DEFAULT);
#else
	PyModule_AddIntConstant(m, "HAVE_LIMITS", 0);
#endif
	PyModule_AddIntConstant(m, "API_VERSION", MEMFENCE_API_VERSION);
	PyModule_AddStringConstant(m, "VERSION", MF_VERSION);
	return m;
}
