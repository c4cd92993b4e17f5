#!/usr/bin/env bash
# --help, the man page and the parser agree, command by command: every
# option `memfence CMD --help` lists is documented in that command's part of
# docs/memfence.1 with the same default and accepted by the parser; every
# option the man page gives the command is in its --help; the MEMFENCE_*
# variables of the two are the same.
. "$(dirname "$0")/../lib.sh"

# command | sections of the man page with its options | argv of its parsers
table='
exec       | exec, Limit options, Accounting options, Log options | exec
inspect    | inspect, Limit options                  | inspect
run        | run, Limit options, Accounting options, Log options | run
stat       | stat                                    | stat
report     | report                                  | report
profile    | profile, Log options                    | profile; profile report
quarantine | quarantine                              | quarantine
diagnose   | diagnose                                | diagnose
'

# Commands run in a clean environment: no MEMFENCE_* variable may change
# what --help says, nor HOME or XDG_STATE_HOME the quarantine's default
# directory.
export MEMFENCE

MAN=$MF_ROOT_DIR/docs/memfence.1 TABLE=$table timeout 120 "$PY" - <<'EOF' || fail "--help, the man page and the parser disagree"
import os, re, subprocess, sys

memfence = os.environ["MEMFENCE"]
problems = []


def run(args):
    p = subprocess.run(["env", "-i", "PATH=/usr/bin:/bin", "timeout", "10", memfence] + args,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def roff_text(s):
    """Man page source to plain text: fonts, escapes and requests dropped."""
    s = re.sub(r"\\f[BIRP]", "", s)
    s = s.replace("\\-", "-").replace("\\&", "").replace("\\(mu", "x").replace('"', "")
    s = re.sub(r"^\.(B|I|BR|IR|RI|IB|BI)\s+", "", s, flags=re.M)
    return re.sub(r"\s+", " ", s).strip()


def man_sections(path):
    """{section name: [(tag, body)]} for the .TP entries of every .SH/.SS."""
    out, name, tag, body = {}, None, None, []
    lines = open(path).read().split("\n")
    i = 0

    def flush():
        if name is not None and tag is not None:
            out[name].append((tag, " ".join(body)))
    while i < len(lines):
        line = lines[i]
        if line.startswith((".SH", ".SS")):
            flush()
            name, tag, body = line[4:].strip().strip('"'), None, []
            out.setdefault(name, [])
            out[name].append(("", ""))
        elif line == ".TP":
            flush()
            i += 1
            tag, body = lines[i], []
        elif line == ".PP":
            flush()
            tag, body = "", []
        elif name is not None:
            body.append(line)
        i += 1
    flush()
    return out


def help_entries(text):
    """{--name: default or None} and the short letters of a --help text."""
    opts, shorts, cur = {}, set(), None
    for line in text.split("\n"):
        m = re.match(r"^  (?:-([A-Za-z]), |    )--([a-z][a-z0-9-]*)", line)
        if m:
            cur = "--" + m.group(2)
            opts.setdefault(cur, None)
            if m.group(1):
                shorts.add("-" + m.group(1))
            continue
        if not line.startswith(" " * 20):
            cur = None
        d = re.search(r"\[(?:MEMFENCE_[A-Z_]+; )?default (.*)\]$", line)
        if cur and d:
            opts[cur] = d.group(1)
    return opts, shorts


sections = man_sections(os.environ["MAN"])
rc, main_help, _ = run(["--help"])
commands = re.findall(r"^  ([a-z]+) ", main_help.split("Commands:")[1].split("\n\n")[0], re.M)
rows = [r for r in os.environ["TABLE"].strip().split("\n")]
table = {}
for r in rows:
    cmd, secs, parsers = [c.strip() for c in r.split("|")]
    table[cmd] = ([s.strip() for s in secs.split(",")], [p.split() for p in parsers.split(";")])
for c in commands:
    if c not in table:
        problems.append("memfence --help lists '%s', which this test does not check" % c)

for cmd, (secs, parsers) in table.items():
    rc, help_text, err = run([cmd, "--help"])
    if rc != 0:
        problems.append("%s --help: exit %d %s" % (cmd, rc, err))
        continue
    hopts, hshorts = help_entries(help_text)
    henv = set(re.findall(r"MEMFENCE_[A-Z_]+", help_text))
    mopts, mentries, menv = set(), [], set()
    for s in secs:
        if s not in sections:
            problems.append("%s: no section '%s' in the man page" % (cmd, s))
            continue
        for tag, body in sections[s]:
            names = set(re.findall(r"--[a-z][a-z0-9-]*", roff_text(tag)))
            mopts |= names
            mentries.append((names, roff_text(tag + " " + body)))
            menv |= set(re.findall(r"MEMFENCE_[A-Z_]+", roff_text(tag + " " + body)))
    for o in sorted(set(hopts) - mopts):
        problems.append("%s --help lists %s, its man page section does not" % (cmd, o))
    for o in sorted(mopts - set(hopts)):
        problems.append("the man page gives %s %s, its --help does not" % (cmd, o))
    for v in sorted(henv - menv):
        problems.append("%s --help names %s, its man page section does not" % (cmd, v))
    for v in sorted(menv - henv):
        problems.append("the man page names %s for %s, its --help does not" % (v, cmd))
    for o, d in sorted(hopts.items()):
        if d is None:
            continue
        texts = [t for names, t in mentries if o in names]
        if texts and not any("default " + d in t for t in texts):
            problems.append("%s %s: --help says 'default %s', the man page does not" % (cmd, o, d))
    # The parser: a listed option is never "unrecognized". A made-up one is,
    # which shows the check can see a refusal.
    for o in sorted(hopts) + sorted(hshorts) + ["--no-such-option"]:
        refused = []
        for p in parsers:
            rc, out, err = run(p + [o])
            refused.append("unrecognized option" in err or "invalid option" in err)
        if o == "--no-such-option":
            if not all(refused):
                problems.append("%s accepts --no-such-option" % cmd)
        elif all(refused):
            problems.append("%s --help lists %s, the parser refuses it" % (cmd, o))
    print("%-10s %2d options, %2d variables" % (cmd, len(hopts), len(henv)))

# The profile formats: one table in src/profile/profile.h, from which
# `profile --help` lists them. Each is named in the man page's --format
# entry of `profile report` and in docs/profiler.md's, and the parser takes
# it (a made-up one it refuses, which shows the check sees a refusal).
rc, help_text, _ = run(["profile", "--help"])
m = re.search(r"--format F +(.*)", help_text)
formats = [f.strip() for f in m.group(1).split(",")] if m else []
if len(formats) < 2:
    problems.append("profile --help lists no formats for --format")
man_fmt = " ".join(t for names, t in [(set(re.findall(r"--[a-z][a-z0-9-]*", roff_text(tag))),
                                       roff_text(tag + " " + body))
                                      for tag, body in sections.get("profile", [])]
                   if "--format" in names)
md = open(os.path.join(os.path.dirname(os.environ["MAN"]), "profiler.md")).read()
md_fmt = "".join(l for l in md.split("\n") if l.startswith("| `--format`"))
for f in formats + ["no-such-format"]:
    rc, out, err = run(["profile", "report", "/nonexistent.prof", "--format", f])
    refused = "unknown format" in err
    if f == "no-such-format":
        if not refused:
            problems.append("profile report accepts --format no-such-format")
        continue
    if refused:
        problems.append("profile --help lists the format %s, the parser refuses it" % f)
    if not re.search(r"\b%s\b" % re.escape(f), man_fmt):
        problems.append("the format %s is not in the man page's profile --format entry" % f)
    if "`%s`" % f not in md_fmt:
        problems.append("the format %s is not in docs/profiler.md's --format row" % f)
print("profile    %2d formats" % len(formats))

for p in problems:
    print("FAIL: " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
