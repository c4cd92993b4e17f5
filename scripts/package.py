#!/usr/bin/python3
"""Package what `make` built: a wheel (make wheel) or a Debian package (make deb).

    scripts/package.py wheel|deb --out DIR --version V --command FILE --man FILE
        --lib FILE... --pyroot DIR --py FILE... [--dlopen SONAME...] [--doc FILE...]

Both packages hold what `make install install-python` installs for running
programs (the C header, the pkg-config file and the link library stay with
make install), in the layout the command looks for its files in
(src/host/launch.h): PREFIX/bin/memfence, PREFIX/lib/memfence/ (the preload
libraries, and python/memfence, whose _bootstrap `memfence run` puts on a
Python program's PYTHONPATH), and the man page.

The wheel installs that under the environment's prefix (its .data
directory), and the Python package into site-packages too, so that the
environment's interpreter imports it without `memfence run`. A wheel cannot
hold a link, so lib/memfence/python is a copy: it is what the bootstrap
falls back on for an interpreter that has no memfence of its own. The Debian
package puts it under /usr, the Python package in Debian's dist-packages,
with lib/memfence/python/memfence a link to it.

Native files are copied with their debug information stripped (as
dh_strip does). Only the standard library, dpkg-deb and dpkg-shlibdeps are
used: nothing is downloaded.
"""
import argparse
import base64
import gzip
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import tomllib
import zipfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "memfence"


def die(msg):
    sys.exit("package: " + msg)


def is_elf(path):
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def copy(src, dst, mode=None):
    """src to dst (directories made), ELF files without debug information."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if is_elf(src):
        subprocess.run(["strip", "--strip-debug", "-o", dst, src], check=True)
    else:
        shutil.copyfile(src, dst)
    if mode is None:
        mode = 0o755 if os.access(src, os.X_OK) else 0o644
    os.chmod(dst, mode)


def install(args, bindir, libdir):
    """The command into bindir, the preload libraries into libdir."""
    copy(args.command, os.path.join(bindir, NAME), 0o755)
    for f in args.lib:
        copy(f, os.path.join(libdir, os.path.basename(f)), 0o755)


def install_python(args, parent):
    """The Python package (memfence/...) into the directory parent."""
    for f in args.py:
        rel = os.path.relpath(f, args.pyroot)
        if rel.startswith(".."):
            die("%s is not under %s" % (f, args.pyroot))
        copy(f, os.path.join(parent, rel))


def project():
    with open(os.path.join(TOP, "python", "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]


# --- wheel (PEP 427) ----------------------------------------------------------

def limited_api_tag():
    """cp3X from the Py_LIMITED_API the extension is compiled for."""
    with open(os.path.join(TOP, "python", "memfence", "_memfence.c")) as f:
        m = re.search(r"#define Py_LIMITED_API 0x03([0-9a-fA-F]{2})", f.read())
    if not m:
        die("python/memfence/_memfence.c defines no Py_LIMITED_API")
    return "cp3%d" % int(m.group(1), 16)


def metadata(version):
    """Core metadata 2.1 from python/pyproject.toml."""
    p = project()
    lines = ["Metadata-Version: 2.1", "Name: " + p["name"], "Version: " + version,
             "Summary: " + p["description"], "License: " + p["license"]["text"],
             "Requires-Python: " + p["requires-python"]]
    lines += ["Classifier: " + c for c in p.get("classifiers", [])]
    for extra, reqs in p.get("optional-dependencies", {}).items():
        lines.append("Provides-Extra: " + extra)
        lines += ['Requires-Dist: %s ; extra == "%s"' % (r, extra) for r in reqs]
    lines.append("Description-Content-Type: text/markdown")
    with open(os.path.join(TOP, "python", p["readme"])) as f:
        return "\n".join(lines) + "\n\n" + f.read()


def wheel(args, work):
    tag = "%s-abi3-%s" % (limited_api_tag(), re.sub(r"[-.]", "_", sysconfig.get_platform()))
    dist = "%s-%s" % (NAME, args.version)
    data = os.path.join(work, dist + ".data")
    # The data scheme is the environment's prefix: the command goes through
    # scripts (pip installs a file that is not a "#!python" script as it is,
    # with its mode), the rest through data.
    lib = os.path.join(data, "data", "lib", NAME)
    install(args, os.path.join(data, "scripts"), lib)
    install_python(args, os.path.join(lib, "python"))
    copy(args.man, os.path.join(data, "data", "share", "man", "man1", "memfence.1"))
    install_python(args, work)
    info = os.path.join(work, dist + ".dist-info")
    os.makedirs(info)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write(metadata(args.version))
    with open(os.path.join(info, "WHEEL"), "w") as f:
        f.write("Wheel-Version: 1.0\nGenerator: memfence scripts/package.py\n"
                "Root-Is-Purelib: false\nTag: %s\n" % tag)
    copy(os.path.join(TOP, "LICENSE"), os.path.join(info, "LICENSE"))

    files = []
    for d, _, names in os.walk(work):
        for n in names:
            rel = os.path.relpath(os.path.join(d, n), work)
            files.append(rel)
    # The dist-info last, RECORD at the very end (PEP 427's recommendation).
    files.sort(key=lambda r: (r.startswith(dist + ".dist-info"), r))
    record = []
    os.makedirs(args.out, exist_ok=True)
    out = os.path.join(args.out, "%s-%s.whl" % (dist, tag))
    # Zip's earliest time unless SOURCE_DATE_EPOCH says otherwise: the same
    # files make the same wheel.
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    stamp = time.gmtime(max(epoch, 315532800))[:6]
    with zipfile.ZipFile(out + ".tmp", "w", zipfile.ZIP_DEFLATED) as z:
        def add(rel, body, mode):
            zi = zipfile.ZipInfo(rel, stamp)
            zi.external_attr = (0o100000 | mode) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, body)
            digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=")
            record.append("%s,sha256=%s,%d" % (rel, digest.decode(), len(body)))
        for rel in files:
            path = os.path.join(work, rel)
            with open(path, "rb") as f:
                add(rel, f.read(), os.stat(path).st_mode & 0o777)
        rec = dist + ".dist-info/RECORD"
        record.append(rec + ",,")
        zi = zipfile.ZipInfo(rec, stamp)
        zi.external_attr = 0o100644 << 16
        z.writestr(zi, "\n".join(record) + "\n", zipfile.ZIP_DEFLATED)
    os.replace(out + ".tmp", out)
    return out


# --- Debian package -----------------------------------------------------------

def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if r.returncode != 0:
        die("%s failed: %s" % (cmd[0], r.stderr.strip()))
    return r.stdout


def soname_package(soname):
    """The Debian package that holds the library a soname names here (for
    the architecture built for: ldconfig lists the others too)."""
    multiarch = "/%s/" % run(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"]).strip()
    for line in run(["ldconfig", "-p"]).splitlines():
        m = re.match(r"\s*(\S+) \(.*\) => (\S+)$", line)
        if not m or m.group(1) != soname or multiarch not in m.group(2):
            continue
        for path in (m.group(2), os.path.realpath(m.group(2))):
            r = subprocess.run(["dpkg-query", "-S", path], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
            if r.returncode == 0:
                return r.stdout.split(":")[0].strip()
    die("no installed Debian package holds %s (the build loads it by that name)" % soname)


def depends(tree, elves, dlopened):
    """dpkg-shlibdeps' Depends for the linked libraries, then the packages of
    the libraries the command loads by soname (src/host/dynlib.c)."""
    src = os.path.join(tree, "..", "src")
    os.makedirs(os.path.join(src, "debian"), exist_ok=True)
    with open(os.path.join(src, "debian", "control"), "w") as f:
        f.write("Source: %s\n\nPackage: %s\nArchitecture: any\n" % (NAME, NAME))
    out = run(["dpkg-shlibdeps", "-O"] + ["-e" + os.path.abspath(e) for e in elves], cwd=src)
    deps = [d.strip() for d in out.split("=", 1)[1].split(",") if d.strip()]
    have = {d.split()[0] for d in deps}
    for soname in dlopened:
        pkg = soname_package(soname)
        if pkg not in have:
            deps.append(pkg)
            have.add(pkg)
    # The Python package, and py3compile for it (postinst).
    return ", ".join(deps + ["python3"])


COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: memfence

Files: *
Copyright: {holder}
License: MIT

License: MIT
{text}
"""

DESCRIPTION = """Description: out-of-memory kills turned into per-request allocation errors
 A process in a container does not know its memory limit: past it, the
 kernel kills it with every request in flight. memfence applies the limit
 so that the allocation that would cross it fails in the request that
 asked (MemoryError in Python), supervises the program with health probes,
 metrics and post-mortems, and profiles its heap.
 .
 The memfence command, its preloaded libraries, and the Python package for
 gRPC, WSGI, ASGI and Celery services.
"""

# What dh_python3 writes: byte-compile the package's Python files for the
# installed interpreters, and remove what that made before the files go.
POSTINST = """#!/bin/sh
set -e
if [ "$1" = configure ] && command -v py3compile >/dev/null 2>&1; then
	py3compile -p memfence
fi
"""
PRERM = """#!/bin/sh
set -e
if command -v py3clean >/dev/null 2>&1; then
	py3clean -p memfence
fi
"""


def gz(src, dst):
    """gzip -9n: no name or time inside, so that the file is reproducible."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with open(src, "rb") as f, open(dst, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as g:
            g.write(f.read())
    os.chmod(dst, 0o644)


def deb(args, work):
    arch = run(["dpkg", "--print-architecture"]).strip()
    tree = os.path.join(work, "root")
    usr = os.path.join(tree, "usr")
    lib = os.path.join(usr, "lib", NAME)
    dist_packages = os.path.join(usr, "lib", "python3", "dist-packages")
    install(args, os.path.join(usr, "bin"), lib)
    install_python(args, dist_packages)
    # One copy of the package: the bootstrap's directory is a link to it.
    os.makedirs(os.path.join(lib, "python"))
    os.symlink("../../python3/dist-packages/memfence", os.path.join(lib, "python", NAME))
    gz(args.man, os.path.join(usr, "share", "man", "man1", "memfence.1.gz"))
    doc = os.path.join(usr, "share", "doc", NAME)
    with open(os.path.join(TOP, "LICENSE")) as f:
        lic = f.read().strip().splitlines()
    holder = next((l.split("Copyright (c)", 1)[1].strip() for l in lic if l.startswith("Copyright (c)")),
                  None)
    if holder is None:
        die("LICENSE names no copyright holder")
    body = [l for l in lic[1:] if not l.startswith("Copyright (c)")]
    while body and not body[0].strip():
        body.pop(0)
    os.makedirs(doc)
    with open(os.path.join(doc, "copyright"), "w") as f:
        f.write(COPYRIGHT.format(holder=holder, text="\n".join(" " + l if l.strip() else " ."
                                                             for l in body)))
    gz(os.path.join(TOP, "CHANGELOG.md"), os.path.join(doc, "changelog.gz"))
    for f in args.doc:
        gz(f, os.path.join(doc, os.path.basename(f) + ".gz"))

    elves = []
    for d, _, names in os.walk(tree):
        for n in names:
            p = os.path.join(d, n)
            if not os.path.islink(p) and is_elf(p):
                elves.append(p)
    control = os.path.join(tree, "DEBIAN")
    os.makedirs(control)
    size = sum(os.lstat(os.path.join(d, n)).st_size for d, _, ns in os.walk(usr) for n in ns)
    with open(os.path.join(control, "control"), "w") as f:
        f.write("Package: %s\nVersion: %s-1\nArchitecture: %s\nMaintainer: %s\n"
                "Installed-Size: %d\nDepends: %s\nSection: admin\nPriority: optional\n%s" % (
                    NAME, args.version, arch, args.maintainer, (size + 1023) // 1024,
                    depends(tree, elves, args.dlopen), DESCRIPTION))
    for name, text in (("postinst", POSTINST), ("prerm", PRERM)):
        with open(os.path.join(control, name), "w") as f:
            f.write(text)
        os.chmod(os.path.join(control, name), 0o755)
    with open(os.path.join(control, "md5sums"), "w") as f:
        for d, _, names in sorted(os.walk(usr)):
            for n in sorted(names):
                path = os.path.join(d, n)
                if not os.path.islink(path):
                    with open(path, "rb") as g:
                        f.write("%s  %s\n" % (hashlib.md5(g.read()).hexdigest(),
                                              os.path.relpath(path, tree)))
    os.chmod(os.path.join(control, "md5sums"), 0o644)
    for d, dirs, _ in os.walk(tree):
        for n in dirs:
            os.chmod(os.path.join(d, n), 0o755)
    os.makedirs(args.out, exist_ok=True)
    out = os.path.join(args.out, "%s_%s-1_%s.deb" % (NAME, args.version, arch))
    run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", tree, out])
    return out


def main():
    ap = argparse.ArgumentParser(description="Package what make built.")
    ap.add_argument("kind", choices=("wheel", "deb"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--man", required=True)
    ap.add_argument("--lib", nargs="+", required=True)
    ap.add_argument("--pyroot", required=True)
    ap.add_argument("--py", nargs="+", required=True)
    ap.add_argument("--dlopen", nargs="*", default=[])
    ap.add_argument("--doc", nargs="*", default=[])
    ap.add_argument("--maintainer", default="The memfence authors")
    args = ap.parse_args()
    for f in [args.command, args.man] + args.lib + args.py + args.doc:
        if not os.path.isfile(f):
            die("%s is missing: run make first (the Python package needs python3-dev)" % f)
    with tempfile.TemporaryDirectory(prefix="memfence-package.") as work:
        print((wheel if args.kind == "wheel" else deb)(args, work))


if __name__ == "__main__":
    main()
