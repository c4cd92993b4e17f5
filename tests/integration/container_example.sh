#!/usr/bin/env bash
# The container example (examples/model_server/Dockerfile) agrees with the
# repository. No image is built here; what is checked is what could drift:
# - stage 1 builds from debian:bookworm with `scripts/deps.sh build` and
#   `make wheel`; stage 2 from debian:bookworm-slim with `scripts/deps.sh
#   runtime` and the wheel through `pip install --no-index`, so that the
#   package lists have one definition;
# - that runtime list holds the Debian package of every shared library the
#   build links (the command, the preload libraries, the Python extensions)
#   or loads by soname (src/host/dynlib.c), as found on this machine;
# - the image runs as a numeric uid that is not root, the Kubernetes
#   example's runAsUser, with the state directory the example mounts its
#   emptyDir on, and `memfence run --` as its entrypoint;
# - .dockerignore keeps the host's build out of the image.
. "$(dirname "$0")/../lib.sh"
[ -x "$MEMFENCE" ] || fail "build memfence first ($MEMFENCE)"
$PY -c 'import yaml' 2>/dev/null || skip "no PyYAML for $PY (Debian: python3-yaml; scripts/deps.sh check)"
command -v dpkg-query >/dev/null || skip "not a Debian system: no dpkg to name the libraries' packages"
D=$MF_ROOT_DIR/examples/model_server/Dockerfile
[ -f "$D" ] || fail "no $D"

"$MF_ROOT_DIR/scripts/deps.sh" --list runtime >"$MF_TMP/runtime" || fail "scripts/deps.sh --list runtime"
# Sonames the build needs: linked (NEEDED) and loaded by name (the strings
# dynlib.c passes to dlopen, compiled into the command).
for f in "$MEMFENCE" "$MF_BUILD"/libmemfence*.so "$MF_BUILD"/python/memfence/*.so; do
	objdump -p "$f" | awk '$1 == "NEEDED" { print $2 }'
done >"$MF_TMP/sonames"
strings "$MEMFENCE" | grep -E '^lib[a-z0-9_+-]+\.so\.[0-9.]+$' >>"$MF_TMP/sonames"
[ -s "$MF_TMP/sonames" ] || fail "no shared library found in the build (objdump, strings?)"
sort -u "$MF_TMP/sonames" | while read -r so; do
	case "$so" in libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | ld-linux*) continue ;; esac
	path=$(ldconfig -p | awk -v s="$so" '$1 == s { print $NF; exit }')
	[ -n "$path" ] || fail "$so: not found by ldconfig"
	pkg=$(dpkg-query -S "$(readlink -f "$path")" 2>/dev/null | head -n1 | cut -d: -f1)
	[ -n "$pkg" ] || pkg=$(dpkg-query -S "$path" 2>/dev/null | head -n1 | cut -d: -f1)
	[ -n "$pkg" ] || fail "$so ($path): no Debian package owns it"
	grep -qx "$pkg" "$MF_TMP/runtime" ||
		fail "$so comes from $pkg, which is not in scripts/deps.sh's runtime list: $(tr '\n' ' ' <"$MF_TMP/runtime")"
	echo "$so $pkg"
done >"$MF_TMP/libs" || exit 1

$PY - "$D" "$MF_ROOT_DIR/examples/kubernetes/deployment.yaml" "$MF_ROOT_DIR/.dockerignore" \
	>"$MF_TMP/out" 2>&1 <<'PY' ||
import json, re, sys
import yaml

dockerfile, manifest, ignore = sys.argv[1:4]
# Instructions, with continuation lines joined and comments left out.
text = re.sub(r"\\\n", " ", "".join(l for l in open(dockerfile) if not l.lstrip().startswith("#")))
ins = [l.split(None, 1) for l in text.splitlines() if l.strip()]
stages = []
for word, rest in ins:
    if word.upper() == "FROM":
        stages.append({"from": rest.split()[0], "run": [], "env": {}, "user": None, "entry": None})
    elif word.upper() == "RUN":
        stages[-1]["run"].append(rest)
    elif word.upper() == "ENV":
        stages[-1]["env"].update(dict(kv.split("=", 1) for kv in rest.split()))
    elif word.upper() == "USER":
        stages[-1]["user"] = rest.strip()
    elif word.upper() == "ENTRYPOINT":
        stages[-1]["entry"] = json.loads(rest)
bad = []
def want(cond, what):
    if not cond:
        bad.append(what)
want(len(stages) == 2, f"two stages, not {len(stages)}")
build, run = stages[0], stages[-1]
want(build["from"] == "debian:bookworm", f"stage 1 FROM debian:bookworm, not {build['from']}")
want(run["from"] == "debian:bookworm-slim", f"stage 2 FROM debian:bookworm-slim, not {run['from']}")
want(any(re.search(r"scripts/deps\.sh build\b.*make wheel", r) for r in build["run"]),
     "stage 1 runs scripts/deps.sh build, then make wheel")
want(any(re.search(r"deps\.sh runtime\b", r) for r in run["run"]), "stage 2 runs deps.sh runtime")
want(any(re.search(r"pip install --no-index\b.*memfence-\*\.whl", r) for r in run["run"]),
     "stage 2 installs the wheel with pip install --no-index")
user = (run["user"] or "").split(":")[0]
want(user.isdigit() and int(user) != 0, f"USER a numeric uid that is not 0, not {run['user']!r}")
want(run["entry"] == ["memfence", "run", "--"], f'ENTRYPOINT ["memfence", "run", "--"], not {run["entry"]}')

pod = yaml.safe_load(open(manifest))["spec"]["template"]["spec"]
c = pod["containers"][0]
want(str(pod["securityContext"].get("runAsUser")) == user,
     f"the manifest's runAsUser {pod['securityContext'].get('runAsUser')} is the image's USER {user}")
state = {e["name"]: e.get("value") for e in c.get("env", [])}.get("MEMFENCE_STATE_DIR")
want(state is not None and state == run["env"].get("MEMFENCE_STATE_DIR"),
     f"the manifest's MEMFENCE_STATE_DIR {state} is the image's {run['env'].get('MEMFENCE_STATE_DIR')}")
patterns = {l.strip() for l in open(ignore) if l.strip() and not l.startswith("#")}
want({"build", "dist", ".git"} <= patterns, f".dockerignore leaves out build, dist and .git: {sorted(patterns)}")
for b in bad:
    print("Dockerfile:", b)
sys.exit(1 if bad else 0)
PY
	fail "$D disagrees with the repository: $(cat "$MF_TMP/out")"
echo "ok: $(wc -l <"$MF_TMP/libs") libraries' packages in the runtime list: $(cut -d' ' -f2 "$MF_TMP/libs" | sort -u | tr '\n' ' ')"
