"""The poison-task quarantine, from Python.

A client of the store behind ``memfence quarantine`` (SQLite file by
default, Redis for a fleet; see docs/quarantine.md). Checks and records run
in this process, through the package's ``_host`` extension, which is the
command's own store code: the Python side and the supervisor count deaths
in exactly the same way (same file locking, same Redis script, same local
fallback when Redis is away), and no process is started per task. Store
calls run without the GIL.

A check costs one lookup at most, and usually less (docs/quarantine.md,
"What a check costs"): for a SQLite store each process keeps the set of ids
the file holds a record of, and while the file is unchanged (its and its
write-ahead log's size, time and inode) an id outside that set is answered
without a lookup; a new death changes the file and the next check reads
the set again. A Redis store is shared by hosts whose deaths this process
cannot see, so every check asks it (one round trip).

The store settings travel in the environment (``MEMFENCE_QUARANTINE``,
``MEMFENCE_STATE_DIR``, ``MEMFENCE_QUARANTINE_THRESHOLD``,
``MEMFENCE_REDIS_TIMEOUT``), or are given to :class:`Store`.
``MEMFENCE_QUARANTINE=off`` (what ``memfence run --no-quarantine`` gives its
program) turns every check and record off.

Listing the store (:meth:`Store.list`) runs the memfence command, found in
order: ``MEMFENCE_BIN``; ``memfence`` on PATH; the build tree this package
was built into (``build/python/memfence`` -> ``build/memfence``).
"""
import json
import logging
import os
import shutil
import socket
import subprocess
import threading
import time

from memfence._log import say as _say
from memfence._memfence import ENV

try:
    from memfence import _host
except ImportError:  # a package built without the store: the command answers
    _host = None

__all__ = ["Store", "QuarantineError", "Quarantined", "find_binary", "default_store",
           "check_request", "check_request_async", "record_request", "requests_enabled",
           "describe", "GRPC_STATUS", "HTTP_STATUS", "grpc_gate", "grpc_gate_async",
           "wsgi_gate", "asgi_gate", "request_counters", "OFF"]

# A check that cannot finish in this time is treated as a store error: the
# task runs (an unusable quarantine must not stop the queue).
_TIMEOUT = 15.0
#: The store spec that turns the quarantine off.
OFF = "off"
_THRESHOLD_DEFAULT = 2
_THRESHOLD_MAX = 1000000
_REDIS_TIMEOUT_DEFAULT = 1000
# A file changed less than this long ago may change again within the same
# tick of the kernel's file clock without its time moving: its set of ids is
# not trusted until then (point lookups meanwhile).
_SETTLED_NS = 1000000000


def _on(spec):
    """Whether a store spec leaves the quarantine on."""
    return spec is None or str(spec).strip().lower() != OFF


class QuarantineError(RuntimeError):
    """The store could not answer (unreachable file, bad URL, no command)."""


class Quarantined(Exception):
    """Raised by :func:`check_request` for a request id that is quarantined.

    ``record`` is the store's record (deaths, cause, peak, ...) as a dict.
    """

    def __init__(self, ident, record):
        self.ident = ident
        self.record = record or {}
        super().__init__(describe(ident, self.record))


def describe(ident, record):
    """One line for logs: why ident is refused."""
    r = record or {}
    parts = ["%s is quarantined after %s death(s)" % (ident, r.get("deaths", "?"))]
    if r.get("cause"):
        parts.append("last cause %s" % r["cause"])
    if r.get("peak"):
        parts.append("peak %.1f MiB" % (r["peak"] / 1048576.0))
    if r.get("name"):
        parts.append("name %s" % r["name"])
    return ", ".join(parts)


def find_binary():
    """Path of the memfence command, or None."""
    env = os.environ.get(ENV["BIN"])
    if env:
        return env
    found = shutil.which("memfence")
    if found:
        return found
    # build/python/memfence/quarantine.py -> build/memfence
    here = os.path.dirname(os.path.abspath(__file__))
    cand = os.path.join(os.path.dirname(os.path.dirname(here)), "memfence")
    if os.path.isfile(cand) and os.access(cand, os.X_OK):
        return cand
    return None


def child_env():
    """The environment for a memfence command started from a process under
    the accounting library: without the library, so that each short check
    does not take a process slot in the stats segment and show up in the
    supervisor's figures as one of the program's processes."""
    env = dict(os.environ)
    pre = env.get("LD_PRELOAD")
    if pre:
        keep = [p for p in pre.replace(":", " ").split() if "libmemfence" not in p]
        if keep:
            env["LD_PRELOAD"] = " ".join(keep)
        else:
            del env["LD_PRELOAD"]
    for k in (ENV["SEGMENT"], ENV["ACCOUNT"]):
        env.pop(k, None)
    return env


def _env_number(name, given, default, top):
    # The command's words for a bad value, so both sides fail alike.
    v = given if given is not None else os.environ.get(name) or None
    if v is None:
        return default
    try:
        n = int(str(v).strip(), 10)
    except ValueError:
        n = 0
    if not 1 <= n <= top:
        raise QuarantineError("memfence: invalid %s '%s': expected a number from 1 to %d"
                              % (name if given is None else "threshold", v, top))
    return n


def _file_state(path):
    try:
        st = os.stat(path)
    except OSError:
        return (0, 0, 0)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


# This process's pid, kept by a fork hook rather than asked for at every
# check (a system call; a check that needs no lookup makes two more, stat).
_pid = os.getpid()


def _after_fork():
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork)


class _Absent:
    """The ids a SQLite store holds a record of, as of one state of its
    files: anything else is not in the store while the files stay so."""

    __slots__ = ("state", "ids")

    def __init__(self, state, ids):
        self.state, self.ids = state, ids


class Store:
    """One quarantine store.

    store: a store spec (``sqlite:PATH``, ``PATH``, ``redis://HOST:PORT/DB``,
    ``off``) or None for the environment's (``MEMFENCE_QUARANTINE``, else the
    state directory's file). threshold: deaths that quarantine an id (None:
    the command's default, 2, or ``MEMFENCE_QUARANTINE_THRESHOLD``).
    """

    def __init__(self, store=None, state_dir=None, threshold=None, binary=None,
                 timeout=_TIMEOUT):
        self.store = store
        self.state_dir = state_dir
        self.threshold = threshold
        self.binary = binary
        self.timeout = timeout
        self.last_warning = None
        self._local = threading.local()
        self._absent = None      # (pid, _Absent) of a SQLite store
        self._file = None        # ((spec, state_dir), its file or None)
        self.lookups = 0         # checks that asked the store (this process)
        self.skipped = 0         # checks answered by the set of ids

    def _spec(self):
        return self.store if self.store is not None else os.environ.get(ENV["QUARANTINE"])

    @property
    def enabled(self):
        """False when the quarantine is off (``off`` as the store, as
        ``memfence run --no-quarantine`` sets MEMFENCE_QUARANTINE)."""
        return _on(self._spec())

    def _handle(self):
        # One connection per thread, opened in this process (not a parent's).
        loc = self._local
        pid = _pid
        if getattr(loc, "pid", None) != pid:
            spec = self._spec()
            timeout = _env_number(ENV["REDIS_TIMEOUT"], None, _REDIS_TIMEOUT_DEFAULT, 600000)
            try:
                loc.h = _host.open(str(spec) if spec else None,
                                   str(self.state_dir) if self.state_dir else None, timeout)
            except (ValueError, OSError) as e:
                raise QuarantineError("memfence: %s" % e) from None
            loc.desc, loc.redis = _host.describe(loc.h)
            loc.pid = pid
        return loc

    def _threshold(self):
        return _env_number(ENV["QUARANTINE_THRESHOLD"], self.threshold, 0, _THRESHOLD_MAX)

    def _warn(self, degraded, synced, desc, what):
        lines = []
        if synced:
            lines.append("memfence: sent %d death(s) kept locally to %s" % (synced, desc))
        if degraded:
            lines.append("memfence: " + what % degraded)
        self.last_warning = "\n".join(lines) or None

    def _files_state(self, loc):
        path = loc.desc[len("sqlite:"):]
        return (_file_state(path), _file_state(path + "-wal"))

    def _surely_absent(self, loc, ident):
        """True when the SQLite store has no record of ident, known without
        a lookup: its files are as they were when this process read the ids
        it holds."""
        if loc.redis:
            return False
        state = self._files_state(loc)
        pid = _pid
        cached = self._absent
        if cached is None or cached[0] != pid or cached[1].state != state:
            newest = max(state[0][0], state[1][0])
            if time.time_ns() - newest < _SETTLED_NS:
                return False
            try:
                ids = frozenset(_host.ids(loc.h))
            except OSError:
                return False
            if self._files_state(loc) != state:
                return False
            cached = self._absent = (pid, _Absent(state, ids))
        return ident not in cached[1].ids

    def _unopened_file(self, spec):
        """This SQLite store's file while this process has not opened it,
        else None (opened, a Redis store, or a spec the opening will say is
        wrong). While the file does not exist it holds no record, known from
        one stat (_host.absent) without opening it: opening creates it, and
        the first checks of a pool's processes would all race to, each
        waiting on the others' locks."""
        loc = self._local
        if getattr(loc, "pid", None) == _pid:
            return None
        # Worked out once per spec and state directory, as the handle is
        # opened once: a check is on the path of every task.
        key = (spec, self.state_dir)
        known = self._file
        if known is not None and known[0] == key:
            return known[1]
        try:
            path = _host.store_file(str(spec) if spec else None,
                                    str(self.state_dir) if self.state_dir else None)
        except (ValueError, OSError):
            return None
        self._file = (key, path)
        return path

    def check(self, ident):
        """(quarantined, record) for ident; record is None without one.

        Raises QuarantineError when the store cannot answer. Warnings of a
        degraded answer (Redis away: the local copy answered) are in
        ``self.last_warning``.
        """
        answer = self._check_on(ident)
        return (False, None) if answer is None else answer

    def _check_on(self, ident):
        """check()'s answer, or None when the quarantine is off: the store
        named once, for a caller that does nothing while it is off (a
        queue's check before every task)."""
        ident = str(ident)
        spec = self._spec()
        if not _on(spec):
            self.last_warning = None
            return None
        if _host is None:
            return self._check_command(ident)
        path = self._unopened_file(spec)
        if path is not None:
            try:
                absent = _host.absent(path, ident)
            except ValueError as e:
                raise QuarantineError("memfence: %s" % e) from None
            if absent:
                self.skipped += 1
                self.last_warning = None
                return False, None
        loc = self._handle()
        if self._surely_absent(loc, ident):
            self.skipped += 1
            self.last_warning = None
            return False, None
        threshold = self._threshold()
        self.lookups += 1
        try:
            bad, answer, degraded, synced = _host.check(loc.h, ident, threshold)
        except (ValueError, OSError) as e:
            raise QuarantineError("memfence: %s" % e) from None
        self._warn(degraded, synced, loc.desc, "warning: %s; answering from the local copy")
        return bad, json.loads(answer).get("record")

    def record(self, ident, name=None, cause="unknown", peak=None, allocated=None, net=None,
               host=None):
        """Count one death of ident; returns the command's JSON (a dict with
        ``record``, ``quarantined``, ``synced``), or None when the quarantine
        is off. A death kept only in the local copy (Redis away) is still a
        success; the warning is in ``self.last_warning``."""
        ident = str(ident)
        if not self.enabled:
            self.last_warning = None
            return None
        if _host is None:
            return self._record_command(ident, name, cause, peak, allocated, net, host)
        threshold = self._threshold()
        loc = self._handle()

        def figure(v):
            return int(v) if v is not None and v >= 0 else None
        try:
            answer, degraded, synced = _host.record(
                loc.h, ident, str(name) if name else None, cause, figure(peak),
                figure(allocated), figure(net), host or _host_name(), threshold)
        except ValueError as e:
            raise QuarantineError("memfence: %s" % e) from None
        except OSError as e:
            # A death is never dropped: when this process's long-lived
            # handle fails (its local copy busy, a connection left in a bad
            # state), the command opens the store afresh, as every record
            # did before the extension. Deaths are rare; checks stay here.
            try:
                return self._record_command(ident, name, cause, peak, allocated, net, host)
            except QuarantineError:
                raise QuarantineError("memfence: %s" % e) from None
        self._warn(degraded, synced, loc.desc,
                   "%%s; the death of '%s' is kept in the local copy and will be sent when "
                   "Redis answers again" % ident.replace("%", "%%"))
        return json.loads(answer)

    # --- through the command: listing, and a package built without _host ---

    def _run(self, verb, args, threshold=False):
        binary = self.binary or find_binary()
        if not binary:
            raise QuarantineError("memfence quarantine: the memfence command was not found "
                                  "(set %s or put it on PATH)" % ENV["BIN"])
        cmd = [binary, "quarantine", "--json"]
        if self.store:
            cmd += ["--quarantine", str(self.store)]
        if self.state_dir:
            cmd += ["--state-dir", str(self.state_dir)]
        if threshold and self.threshold is not None:
            cmd += ["--threshold", str(int(self.threshold))]
        cmd += [verb] + list(args)
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=self.timeout, env=child_env())
        except subprocess.TimeoutExpired:
            raise QuarantineError("memfence quarantine %s: no answer in %.0fs"
                                  % (verb, self.timeout)) from None
        except OSError as e:
            raise QuarantineError("memfence quarantine %s: cannot run %s: %s"
                                  % (verb, binary, e)) from None
        err = p.stderr.decode("utf-8", "replace").strip()
        try:
            doc = json.loads(p.stdout.decode("utf-8", "replace") or "null")
        except ValueError:
            doc = None
        return p.returncode, doc, err

    def _check_command(self, ident):
        rc, doc, err = self._run("check", ["--", ident], threshold=True)
        self.last_warning = err or None
        if rc not in (0, 3):
            raise QuarantineError(err.splitlines()[-1] if err else
                                  "memfence quarantine check: exit %d" % rc)
        rec = doc.get("record") if isinstance(doc, dict) else None
        return rc == 3, rec

    def _record_command(self, ident, name, cause, peak, allocated, net, host):
        args = []
        if name:
            args += ["--name", str(name)]
        args += ["--cause", cause]
        for flag, v in (("--peak", peak), ("--allocated", allocated), ("--net", net)):
            if v is not None and v >= 0:
                args += [flag, str(int(v))]
        args += ["--host", host or _host_name()]
        rc, doc, err = self._run("record", args + ["--", ident], threshold=True)
        self.last_warning = err or None
        if rc != 0 or not isinstance(doc, dict):
            raise QuarantineError(err.splitlines()[-1] if err else
                                  "memfence quarantine record: exit %d" % rc)
        return doc

    def list(self, quarantined_only=False):
        if not self.enabled:
            return []
        rc, doc, err = self._run("list", ["--quarantined"] if quarantined_only else [])
        if rc != 0 or not isinstance(doc, dict):
            raise QuarantineError(err.splitlines()[-1] if err else
                                  "memfence quarantine list: exit %d" % rc)
        return doc.get("records", [])


def _host_name():
    # In Kubernetes the pod name is the host name; HOSTNAME wins when a
    # deployment sets something more telling.
    return os.environ.get("HOSTNAME") or socket.gethostname()


_default = None


def default_store():
    """The store of this process's environment (shared, created once)."""
    global _default
    if _default is None:
        _default = Store()
    return _default


#: What a refused poison request gets. Not RESOURCE_EXHAUSTED / 503: clients
#: retry those, and retrying a poison request is what must stop.
GRPC_STATUS = "FAILED_PRECONDITION"
HTTP_STATUS = "422 Unprocessable Entity"


def requests_enabled():
    """True when request-side quarantine checks are switched on for servers
    that did not say (MEMFENCE_REQUEST_QUARANTINE=1): it is opt-in."""
    return os.environ.get(ENV["REQUEST_QUARANTINE"], "0").lower() in ("1", "yes", "true",
                                                                           "on")


def check_request(request_id, prefix="", store=None):
    """Opt-in quarantine check for a request carrying a stable id (an
    idempotency key or request id that the client sends again on retry).

    The id checked is prefix + request_id, and must be what the request's
    scope carries as its id: that is what the supervisor records when a
    process dies with the request in flight. None or "" -> nothing to check.
    Returns None when the request may run; raises :class:`Quarantined` when
    it must be refused (answer it with GRPC_STATUS / HTTP_STATUS and the
    exception's text). A store that cannot answer lets the request run; the
    error is returned as a string, for the caller to log: an unusable
    quarantine must not stop the service.

    This starts the memfence command (about 20 ms): call it
    only for requests that carry an id, and from asyncio code use
    :func:`check_request_async`.
    """
    if not request_id:
        return None
    st = store or default_store()
    ident = "%s%s" % (prefix, request_id)
    try:
        bad, rec = st.check(ident)
    except QuarantineError as e:
        return str(e)
    if bad:
        raise Quarantined(ident, rec)
    return None


async def check_request_async(request_id, prefix="", store=None):
    """:func:`check_request` off the event loop's thread."""
    if not request_id:
        return None
    import asyncio
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, check_request, request_id, prefix, store)


def record_request(request_id, prefix="", name=None, cause="unknown", store=None, **figures):
    """Count a death of a request (same id as :func:`check_request`)."""
    st = store or default_store()
    return st.record("%s%s" % (prefix, request_id), name=name, cause=cause, **figures)


# --- gates for servers: one call each in the interceptors and middleware -------
#
# Each checks the request id (when there is one) and, for a quarantined id,
# answers the request itself and logs it; a store that cannot answer is
# logged and the request goes on.

_log = logging.getLogger("memfence.quarantine")
_refused_lock = threading.Lock()
#: Requests refused by this process as quarantined, and store errors seen.
request_counters = {"refused": 0, "store_errors": 0}


def _note(result, request_id):
    with _refused_lock:
        if isinstance(result, Quarantined):
            request_counters["refused"] += 1
        else:
            request_counters["store_errors"] += 1
    if isinstance(result, Quarantined):
        _say(_log, logging.ERROR, "memfence: request refused, not run: %s", result,
             request=request_id)
    else:
        _say(_log, logging.ERROR, "memfence: quarantine check failed, serving the request: %s",
             result, request=request_id)


def _gate(request_id, prefix):
    try:
        err = check_request(request_id, prefix)
    except Quarantined as q:
        _note(q, request_id)
        return q
    if err:
        _note(err, request_id)
    return None


def grpc_gate(context, request_id, prefix=""):
    """grpc.server handlers: aborts the call with FAILED_PRECONDITION when
    its id is quarantined (context.abort raises); else returns."""
    q = _gate(request_id, prefix)
    if q is not None:
        import grpc
        context.abort(getattr(grpc.StatusCode, GRPC_STATUS), str(q))


async def grpc_gate_async(context, request_id, prefix=""):
    """grpc.aio handlers: the same, off the event loop's thread."""
    if not request_id:
        return
    import asyncio
    loop = asyncio.get_running_loop()
    q = await loop.run_in_executor(None, _gate, request_id, prefix)
    if q is not None:
        import grpc
        await context.abort(getattr(grpc.StatusCode, GRPC_STATUS), str(q))


def wsgi_gate(request_id, start_response, prefix=""):
    """WSGI: the response body (after calling start_response with 422) when
    the request's id is quarantined, else None."""
    q = _gate(request_id, prefix)
    if q is None:
        return None
    body = ("%s\n" % q).encode("utf-8")
    start_response(HTTP_STATUS, [("Content-Type", "text/plain; charset=utf-8"),
                                 ("Content-Length", str(len(body)))])
    return [body]


async def asgi_gate(request_id, send, prefix=""):
    """ASGI: True after answering 422 when the request's id is quarantined."""
    if not request_id:
        return False
    import asyncio
    loop = asyncio.get_running_loop()
    q = await loop.run_in_executor(None, _gate, request_id, prefix)
    if q is None:
        return False
    body = ("%s\n" % q).encode("utf-8")
    await send({"type": "http.response.start", "status": int(HTTP_STATUS.split()[0]),
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
    return True
