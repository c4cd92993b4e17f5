/*
 * _host.c - the memfence host library inside a Python process: the
 * poison-task quarantine store and the stats-segment reader.
 *
 * A module of its own, not part of _memfence: it links SQLite, hiredis and
 * jansson, and every Python program under `memfence run` imports _memfence
 * at start-up; only the processes that check or record a death (a Celery
 * worker, a server with request quarantine) load these libraries.
 *
 * The store is the command's own code (src/store), so a check here and
 * `memfence quarantine check` agree on everything: the file locking, the
 * Redis script, the local copy when Redis is away, the answers' JSON and
 * their messages. Blocking store calls run without the GIL: a Redis that
 * hangs holds up its caller, up to the timeout, and no other thread.
 *
 * A handle is one connection: one per thread, and never used in a process
 * other than the one that opened it (after a fork the child opens its own;
 * the inherited one is left alone rather than closed, since closing a
 * SQLite connection that another process shares could checkpoint its log).
 */
#define PY_SSIZE_T_CLEAN
#define Py_LIMITED_API 0x03080000
#include <Python.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "host/segread.h"
#include "store/quarantine.h"

#define STORE_CAPSULE "memfence._host.store"

struct store_handle {
	struct mf_qstore *s;
	pid_t pid;
};

static void store_free(PyObject *cap)
{
	struct store_handle *h = PyCapsule_GetPointer(cap, STORE_CAPSULE);

	if (h == NULL)
		return;
	if (h->pid == getpid())
		mf_qstore_close(h->s);
	free(h);
}

static struct mf_qstore *store_of(PyObject *cap)
{
	struct store_handle *h = PyCapsule_GetPointer(cap, STORE_CAPSULE);

	if (h == NULL)
		return NULL;
	if (h->pid != getpid()) {
		PyErr_SetString(PyExc_RuntimeError,
				"memfence: a quarantine store handle was used after fork");
		return NULL;
	}
	return h->s;
}

/* The answer as text: the Python side parses it with json, as it would
 * the command's output. */
static PyObject *json_text(json_t *j)
{
	char *text;
	PyObject *o;

	if (j == NULL)
		return PyErr_NoMemory();
	text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (text == NULL)
		return PyErr_NoMemory();
	o = PyUnicode_FromString(text);
	free(text);
	return o;
}

static PyObject *str_or_none(const char *s)
{
	if (s == NULL || *s == '\0')
		Py_RETURN_NONE;
	return PyUnicode_FromString(s);
}

/* open(spec, state_dir, timeout_ms) -> handle; ValueError for a malformed
 * spec (the command's usage error), OSError for a store it cannot use. */
static PyObject *py_open(PyObject *self, PyObject *args)
{
	const char *spec, *dir;
	int timeout_ms, rc;
	char err[1024];
	struct mf_qstore_opts o = {0};
	struct store_handle *h;
	PyObject *cap;

	(void)self;
	if (!PyArg_ParseTuple(args, "zzi", &spec, &dir, &timeout_ms))
		return NULL;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return PyErr_NoMemory();
	o.state_dir = dir;
	o.timeout_ms = timeout_ms;
	err[0] = '\0';
	Py_BEGIN_ALLOW_THREADS
	rc = mf_qstore_open(spec, &o, &h->s, err, sizeof(err));
	Py_END_ALLOW_THREADS
	if (rc != 0) {
		free(h);
		PyErr_SetString(rc == -EINVAL ? PyExc_ValueError : PyExc_OSError, err);
		return NULL;
	}
	h->pid = getpid();
	cap = PyCapsule_New(h, STORE_CAPSULE, store_free);
	if (cap == NULL) {
		mf_qstore_close(h->s);
		free(h);
	}
	return cap;
}

/* store_file(spec, state_dir) -> the SQLite store's file, or None for
 * Redis; ValueError for a malformed spec. Touches nothing. */
static PyObject *py_store_file(PyObject *self, PyObject *args)
{
	const char *spec, *dir;
	char path[4096], err[1024];
	struct mf_qstore_opts o = {0};
	int rc;

	(void)self;
	if (!PyArg_ParseTuple(args, "zz", &spec, &dir))
		return NULL;
	o.state_dir = dir;
	err[0] = '\0';
	rc = mf_qstore_spec_file(spec, &o, path, sizeof(path), err, sizeof(err));
	if (rc < 0) {
		PyErr_SetString(rc == -EINVAL ? PyExc_ValueError : PyExc_OSError, err);
		return NULL;
	}
	if (rc == 0)
		Py_RETURN_NONE;
	return PyUnicode_DecodeFSDefault(path);
}

/* describe(handle) -> "sqlite:PATH" or "redis://..." */
static PyObject *py_describe(PyObject *self, PyObject *args)
{
	PyObject *cap;
	struct mf_qstore *s;

	(void)self;
	if (!PyArg_ParseTuple(args, "O", &cap) || (s = store_of(cap)) == NULL)
		return NULL;
	return Py_BuildValue("(sO)", mf_qstore_describe(s),
			     mf_qstore_is_redis(s) ? Py_True : Py_False);
}

/* The command's checks of what it is given: "invalid id: ..." */
static int valid(const char *id, const char *name)
{
	char why[256];

	if (mf_quarantine_id_check(id, why, sizeof(why)) != 0) {
		PyErr_Format(PyExc_ValueError, "invalid id: %s", why);
		return 0;
	}
	if (name != NULL && mf_quarantine_name_check(name, why, sizeof(why)) != 0) {
		PyErr_Format(PyExc_ValueError, "invalid name: %s", why);
		return 0;
	}
	return 1;
}

/* absent(file, id) -> True when the SQLite store's file does not exist: no
 * death was ever recorded, and the check is answered without opening it
 * (which would create it). False when it exists or cannot be told: the
 * opening says what is wrong. ValueError "invalid id: ..." as check() would
 * say. One call, on the path of every task. */
static PyObject *py_absent(PyObject *self, PyObject *args)
{
	PyObject *file = NULL;
	const char *id, *path;
	struct stat st;
	int gone;

	(void)self;
	if (!PyArg_ParseTuple(args, "O&s", PyUnicode_FSConverter, &file, &id))
		return NULL;
	if (!valid(id, NULL)) {
		Py_DECREF(file);
		return NULL;
	}
	if ((path = PyBytes_AsString(file)) == NULL) {
		Py_DECREF(file);
		return NULL;
	}
	gone = stat(path, &st) != 0 && errno == ENOENT;
	Py_DECREF(file);
	return PyBool_FromLong(gone);
}

/* check(handle, id, threshold) -> (quarantined, answer JSON, degraded, synced).
 * OSError with the store's message when it cannot answer. */
static PyObject *py_check(PyObject *self, PyObject *args)
{
	PyObject *cap;
	struct mf_qstore *s;
	const char *id;
	unsigned int threshold;
	struct mf_quarantine_record r;
	bool q;
	int found;
	PyObject *text;

	(void)self;
	if (!PyArg_ParseTuple(args, "OsI", &cap, &id, &threshold) || (s = store_of(cap)) == NULL ||
	    !valid(id, NULL))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	found = mf_qstore_check(s, id, threshold, &r, &q);
	Py_END_ALLOW_THREADS
	if (found < 0) {
		PyErr_SetString(found == -EINVAL ? PyExc_ValueError : PyExc_OSError,
				mf_qstore_error(s));
		return NULL;
	}
	text = json_text(mf_qstore_check_answer(s, &r, found, q));
	if (text == NULL)
		return NULL;
	return Py_BuildValue("(ONNK)", q ? Py_True : Py_False, text,
			     str_or_none(mf_qstore_degraded(s)),
			     (unsigned long long)mf_qstore_synced(s));
}

static int figure(PyObject *o, uint64_t *out)
{
	if (o == Py_None) {
		*out = MF_QUARANTINE_UNKNOWN;
		return 0;
	}
	*out = PyLong_AsUnsignedLongLong(o);
	return PyErr_Occurred() ? -1 : 0;
}

/* record(handle, id, name, cause, peak, allocated, net, host, threshold)
 *   -> (answer JSON, degraded, synced) */
static PyObject *py_record(PyObject *self, PyObject *args)
{
	PyObject *cap, *peak, *allocated, *net, *text;
	struct mf_qstore *s;
	const char *cause;
	struct mf_quarantine_death d = {0};
	struct mf_quarantine_record r;
	unsigned int threshold;
	int rc;

	(void)self;
	if (!PyArg_ParseTuple(args, "OszsOOOzI", &cap, &d.id, &d.name, &cause, &peak, &allocated,
			      &net, &d.host, &threshold) ||
	    (s = store_of(cap)) == NULL || !valid(d.id, d.name))
		return NULL;
	if (mf_quarantine_cause_parse(cause, &d.cause) != 0) {
		PyErr_Format(PyExc_ValueError,
			     "invalid cause '%s': expected oom_kill, sigkill, signal, "
			     "allocation_failure, exit or unknown", cause);
		return NULL;
	}
	if (figure(peak, &d.peak) || figure(allocated, &d.allocated) || figure(net, &d.net))
		return NULL;
	d.threshold = threshold;
	Py_BEGIN_ALLOW_THREADS
	rc = mf_qstore_record(s, &d, &r);
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		PyErr_SetString(rc == -EINVAL ? PyExc_ValueError : PyExc_OSError,
				mf_qstore_error(s));
		return NULL;
	}
	text = json_text(mf_qstore_record_answer(s, &r, rc));
	if (text == NULL)
		return NULL;
	return Py_BuildValue("(NNK)", text, str_or_none(rc == 1 ? mf_qstore_degraded(s) : NULL),
			     (unsigned long long)mf_qstore_synced(s));
}

struct ids_ctx {
	PyObject *list;
	int failed;
};

static int add_id(const struct mf_quarantine_record *r, void *arg)
{
	struct ids_ctx *c = arg;
	PyGILState_STATE g = PyGILState_Ensure();
	PyObject *o = PyUnicode_FromString(r->id);

	if (o == NULL || PyList_Append(c->list, o) != 0)
		c->failed = 1;
	Py_XDECREF(o);
	PyGILState_Release(g);
	return c->failed;
}

/* ids(handle) -> the ids the store holds a record of. */
static PyObject *py_ids(PyObject *self, PyObject *args)
{
	PyObject *cap;
	struct mf_qstore *s;
	struct ids_ctx c = {0};
	int rc;

	(void)self;
	if (!PyArg_ParseTuple(args, "O", &cap) || (s = store_of(cap)) == NULL)
		return NULL;
	c.list = PyList_New(0);
	if (c.list == NULL)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = mf_qstore_list(s, add_id, &c);
	Py_END_ALLOW_THREADS
	if (c.failed) {
		Py_DECREF(c.list);
		return NULL;
	}
	if (rc < 0) {
		Py_DECREF(c.list);
		PyErr_SetString(PyExc_OSError, mf_qstore_error(s));
		return NULL;
	}
	return c.list;
}

/* scopes_in_flight(segment, id) -> [(pid, depth, peak, allocated, net)] for
 * every scope with that id in the segment, in slot order; None when the
 * segment cannot be read. What `memfence stat --json` lists as in_flight. */
static PyObject *py_scopes_in_flight(PyObject *self, PyObject *args)
{
	const char *path, *id;
	struct mf_segread r;
	struct mf_seg_header hdr;
	struct mf_seg_scope *scopes;
	PyObject *out;
	int rc;

	(void)self;
	if (!PyArg_ParseTuple(args, "ss", &path, &id))
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rc = mf_segread_open(&r, path, 0);
	Py_END_ALLOW_THREADS
	if (rc != 0)
		Py_RETURN_NONE;
	mf_segread_header(&r, &hdr);
	scopes = calloc(hdr.scopes_per_slot ? hdr.scopes_per_slot : 1, sizeof(*scopes));
	out = PyList_New(0);
	if (scopes == NULL || out == NULL) {
		free(scopes);
		Py_XDECREF(out);
		mf_segread_close(&r);
		return PyErr_NoMemory();
	}
	for (uint32_t i = 0; i < hdr.nslots; i++) {
		struct mf_segread_slot v;

		if (mf_segread_slot(&r, i, &v, scopes, hdr.scopes_per_slot) != 0 ||
		    v.view == MF_SLOT_VIEW_FREE)
			continue;
		for (uint32_t k = 0; k < v.nscopes; k++) {
			PyObject *t;

			if (strncmp(scopes[k].id, id, sizeof(scopes[k].id)) != 0)
				continue;
			t = Py_BuildValue("(iIKKL)", (int)v.slot.pid, scopes[k].depth,
					  (unsigned long long)scopes[k].peak,
					  (unsigned long long)scopes[k].allocated,
					  (long long)scopes[k].net);
			if (t == NULL || PyList_Append(out, t) != 0) {
				Py_XDECREF(t);
				Py_DECREF(out);
				out = NULL;
				goto done;
			}
			Py_DECREF(t);
		}
	}
done:
	free(scopes);
	mf_segread_close(&r);
	return out;
}

static PyMethodDef methods[] = {
	{"open", py_open, METH_VARARGS, "open(spec, state_dir, timeout_ms) -> store handle."},
	{"describe", py_describe, METH_VARARGS, "describe(handle) -> (description, is_redis)."},
	{"store_file", py_store_file, METH_VARARGS,
	 "store_file(spec, state_dir) -> the SQLite store's file, or None for Redis."},
	{"absent", py_absent, METH_VARARGS,
	 "absent(file, id) -> whether the SQLite store's file does not exist yet."},
	{"check", py_check, METH_VARARGS,
	 "check(handle, id, threshold) -> (quarantined, answer, degraded, synced)."},
	{"record", py_record, METH_VARARGS,
	 "record(handle, id, name, cause, peak, allocated, net, host, threshold) -> "
	 "(answer, degraded, synced)."},
	{"ids", py_ids, METH_VARARGS, "ids(handle) -> ids with a record."},
	{"scopes_in_flight", py_scopes_in_flight, METH_VARARGS,
	 "scopes_in_flight(segment, id) -> [(pid, depth, peak, allocated, net)] or None."},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
	PyModuleDef_HEAD_INIT, "_host", "memfence's quarantine store and segment reader.", -1,
	methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__host(void);

PyMODINIT_FUNC PyInit__host(void)
{
	return PyModule_Create(&module);
}
