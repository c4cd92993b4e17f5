"""Build of the C extension (the rest is in pyproject.toml).

The extension takes code from the memfence source tree next to this
directory: the size parser and the boolean words (../src/base), so that a
size or a flag means the same in Python as on the command line, and the limit code (../src/host), so that
memfence.install() resolves limits exactly as `memfence exec` does. Without
../src/host it still builds, without install(); without ../src/base it
does not. The version is the tree's VERSION file.
"""
import os

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
BASE = [("base", "size.c"), ("base", "env.c"), ("base", "lines.c"), ("base", "logline.c")]
# The memory reader is several files (src/host/memory_int.h lists them).
CORE = [("host", "memory.c"), ("host", "memory_cgroup.c"), ("host", "memory_file.c"),
        ("host", "memory_parse.c"), ("host", "memory_v1.c"), ("host", "memory_v2.c"),
        ("host", "memory_sample.c"), ("host", "plan.c"), ("host", "options.c"), ("host", "msg.c")]

sources = ["memfence/_memfence.c"]
macros = [("_GNU_SOURCE", None), ("Py_LIMITED_API", "0x03080000")]
include = [os.path.join(TOP, "include"), os.path.join(TOP, "src")]
base = [os.path.join(TOP, "src", d, f) for d, f in BASE]
if not all(os.path.exists(p) for p in base + [os.path.join(TOP, "VERSION")]):
    raise SystemExit("memfence: the Python package is built from the memfence source tree "
                     "(%s or %s is missing)" % (os.path.join(TOP, "src", "base"),
                                                 os.path.join(TOP, "VERSION")))
sources += [os.path.relpath(p, HERE) for p in base]
with open(os.path.join(TOP, "VERSION")) as f:
    version = f.read().strip()
macros.append(("MF_VERSION", '"%s"' % version))
core = [os.path.join(TOP, "src", d, f) for d, f in CORE]
if all(os.path.exists(p) for p in core) and os.path.exists(os.path.join(TOP, "include", "memfence.h")):
    sources += [os.path.relpath(p, HERE) for p in core]
    macros.append(("MF_HAVE_LIMITS", None))

# The quarantine store and the segment reader: a module of its own, so that
# only the processes that use them load SQLite, hiredis and jansson.
# The store reads --quarantine-ttl with the options' duration parser.
HOST = [("store", "quarantine.c"), ("store", "qrecord.c"), ("store", "qsqlite.c"),
        ("store", "qredis.c"), ("host", "segread.c"), ("base", "segment.c"),
        ("host", "options.c"), ("host", "msg.c"), ("base", "size.c"), ("base", "env.c"),
        ("base", "logline.c")]
host = [os.path.join(TOP, "src", d, f) for d, f in HOST]
ext_modules = [Extension(
    "memfence._memfence", sources=sources, include_dirs=include, define_macros=macros,
    extra_compile_args=["-std=gnu11", "-fvisibility=hidden"], libraries=["dl", "pthread"],
    py_limited_api=True)]
if all(os.path.exists(p) for p in host):
    ext_modules.append(Extension(
        "memfence._host", sources=["memfence/_host.c"] + [os.path.relpath(p, HERE) for p in host],
        include_dirs=include + ["/usr/include/hiredis"], define_macros=macros[:3],
        extra_compile_args=["-std=gnu11", "-fvisibility=hidden"],
        libraries=["jansson", "sqlite3", "hiredis", "pthread", "m"], py_limited_api=True))

setup(version=version, ext_modules=ext_modules)
