#!/usr/bin/env bash
# The MEMFENCE_* environment has one declaration, src/base/envspec.h:
# - no other file of src/ or python/ spells a variable's name in a string
#   (C: MF_ENV(ID) or MF_ENV_LIT(ID); Python: memfence._memfence.ENV["ID"]),
#   but the Python bootstrap, which reads one before memfence is imported
#   and whose name must then be the table's;
# - every MF_ENV_LIT(ID) and ENV["ID"] names a row (MF_ENV(ID) does not
#   compile otherwise);
# - the extension's ENV is the table;
# - the man page names every variable, and no page of the documentation
#   names one that is not in the table (the C API's MEMFENCE_* constants
#   apart).
. "$(dirname "$0")/../lib.sh"
[ -f "$MF_BUILD/python/memfence/_memfence.abi3.so" ] || fail "the Python package is not built (make python)"

ROOT=$MF_ROOT_DIR PYTHONPATH=$MF_BUILD/python timeout 60 "$PY" - <<'EOF' || fail "the MEMFENCE_* contract is broken"
import glob, io, os, re, sys, tokenize

root = os.environ["ROOT"]
spec = "src/base/envspec.h"
bootstrap = "python/memfence/_bootstrap/sitecustomize.py"
problems = []
NAME = re.compile(r"MEMFENCE_[A-Z0-9_]*[A-Z0-9]")

ids = re.findall(r"^\tX\((\w+),", open(os.path.join(root, spec)).read(), re.M)
names = {"MEMFENCE_" + i for i in ids}
if len(ids) < 40 or len(set(ids)) != len(ids):
    problems.append("%s: %d rows, %d distinct" % (spec, len(ids), len(set(ids))))


def c_strings(text):
    """(line, contents) of every string literal of C source text."""
    out, i, line, n = [], 0, 1, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            line += text.count("\n", i, j)
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            if c == '"':
                out.append((line, text[i + 1:j]))
            line += text.count("\n", i, j)
            i = j + 1
        else:
            line += c == "\n"
            i += 1
    return out


def py_strings(text):
    """(line, contents) of the string tokens of Python source that are
    not docstrings (a string alone on its logical line)."""
    out, toks = [], list(tokenize.generate_tokens(io.StringIO(text).readline))
    skip = (tokenize.NL, tokenize.COMMENT)
    for k, t in enumerate(toks):
        if t.type != tokenize.STRING:
            continue
        before = [u for u in toks[:k] if u.type not in skip][-1:]
        after = [u for u in toks[k + 1:] if u.type not in skip][:1]
        alone = (not before or before[0].type in (tokenize.NEWLINE, tokenize.INDENT,
                                                  tokenize.DEDENT)) and \
            (not after or after[0].type in (tokenize.NEWLINE, tokenize.ENDMARKER))
        if not alone:
            out.append((t.start[0], t.string))
    return out


sources = sorted(glob.glob(os.path.join(root, "src/**/*.[ch]"), recursive=True) +
                 glob.glob(os.path.join(root, "python/**/*.[ch]"), recursive=True))
pys = sorted(glob.glob(os.path.join(root, "python/**/*.py"), recursive=True))
used = set()
for path in sources + pys:
    rel = os.path.relpath(path, root)
    text = open(path).read()
    if rel == spec:
        continue
    used |= {(rel, i) for i in re.findall(r"\bMF_ENV_LIT\((\w+)\)", text)}
    used |= {(rel, i) for i in re.findall(r"\bENV\[\"(\w+)\"\]", text)}
    for line, s in (py_strings(text) if path.endswith(".py") else c_strings(text)):
        for name in NAME.findall(s):
            if rel == bootstrap and name in names:
                continue
            problems.append("%s:%d spells out %s (use the table of %s)" % (rel, line, name, spec))
for rel, i in sorted(used):
    if i not in ids:
        problems.append("%s names %s, which is not a row of %s" % (rel, i, spec))

from memfence import _memfence
if _memfence.ENV != {i: "MEMFENCE_" + i for i in ids}:
    problems.append("memfence._memfence.ENV is not the table of %s" % spec)

# The C API's constants are not variables.
api = set(NAME.findall(open(os.path.join(root, "include/memfence.h")).read()))
man = open(os.path.join(root, "docs/memfence.1")).read().replace("\\-", "-")
for n in sorted(names - set(NAME.findall(man))):
    problems.append("docs/memfence.1 does not name %s" % n)
docs = sorted(p for p in glob.glob(os.path.join(root, "docs/**/*"), recursive=True) if os.path.isfile(p)) + \
    [os.path.join(root, f) for f in ("README.md", "python/README.md")]
for path in docs:
    for n in sorted(set(NAME.findall(open(path).read().replace("\\-", "-"))) - names - api):
        problems.append("%s names %s, which is not a variable (%s)" %
                        (os.path.relpath(path, root), n, spec))

print("%d variables; %d C and %d Python files checked" % (len(ids), len(sources), len(pys)))
for p in problems:
    print("FAIL: " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
