#!/usr/bin/env bash
# make wheel, then `pip install --no-index` of it into a new virtual
# environment is the whole installation: from a directory outside the tree,
# with no build tree on PATH, PYTHONPATH or LD_LIBRARY_PATH, the
# environment's memfence finds its libraries and the Python bootstrap
# (bin/../lib/memfence), `memfence run` gives the environment's python a
# MemoryError under a real cgroup limit, `exec` and `profile` work, a gRPC
# server (Debian's grpcio, --system-site-packages) gets the interceptor with
# no code change, and pip uninstall leaves nothing.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/installed.bash"
"$PY" -m venv --help >/dev/null 2>&1 || skip "python3-venv is not installed"
[ -f "$MF_BUILD/python/memfence/_memfence.abi3.so" ] || fail "the Python package is not built"

v=$(cat "$MF_ROOT_DIR/VERSION")
make -s -C "$MF_ROOT_DIR" B="$MF_BUILD" wheel DIST="$MF_TMP/dist" >"$MF_TMP/log" 2>&1 ||
	fail "make wheel failed: $(tail -n 20 "$MF_TMP/log")"
# The name the documentation (and a Dockerfile) can rely on.
whl=$MF_TMP/dist/memfence-$v-cp38-abi3-linux_x86_64.whl
[ -f "$whl" ] || fail "make wheel made $(ls "$MF_TMP/dist"), not $(basename "$whl")"
grep -q "pip install $(basename "$whl")" "$MF_ROOT_DIR/README.md" ||
	fail "README.md does not say: pip install $(basename "$whl")"
out=$("$PY" - "$whl" "$v" <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = {i.filename: i for i in z.infolist()}
d = "memfence-%s.data/" % sys.argv[2]
for n in (d + "scripts/memfence", d + "data/lib/memfence/libmemfence.so",
          d + "data/lib/memfence/libmemfence-stack.so",
          d + "data/lib/memfence/python/memfence/_bootstrap/sitecustomize.py",
          "memfence/_memfence.abi3.so", "memfence/_host.abi3.so", "memfence/grpc.py",
          "memfence-%s.dist-info/RECORD" % sys.argv[2]):
    if n not in names:
        print("missing " + n)
if (names[d + "scripts/memfence"].external_attr >> 16) & 0o111 != 0o111:
    print("the command is not executable")
if any("__pycache__" in n or n.endswith(".pyc") for n in names):
    print("bytecode in the wheel")
print("checked")
PY
)
expect_eq "wheel contents" checked "$out"

install_wheel() {
	"$PY" -m venv "$@" || fail "cannot make a virtual environment"
	timeout 120 "${@: -1}/bin/pip" install --no-index --disable-pip-version-check "$whl" \
		>"$MF_TMP/pip.log" 2>&1 || fail "pip install of the wheel failed: $(tail -n 20 "$MF_TMP/pip.log")"
}
mkdir -p "$MF_TMP/home" "$MF_TMP/work"
cd "$MF_TMP/work" || fail "cd"

# The core in a plain environment: nothing from Debian's site-packages.
venv=$MF_TMP/venv
install_wheel "$venv"
expect_eq "command" "$venv/bin/memfence" "$(mf_clean "$venv" sh -c 'command -v memfence')"
expect_eq "--version" "memfence $v" "$(mf_clean "$venv" memfence --version)"

mf_need_cgroup wheel $((256 << 20))
mf_installed_run "$venv" python \
	"$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("platlib"))')/memfence"

out=$(mf_clean "$venv" memfence exec --limit 1G -- sh -c 'echo "$LD_PRELOAD"') ||
	fail "memfence exec from the environment failed"
expect_eq "memfence exec" "$venv/lib/memfence/libmemfence-stack.so" "$out"

mf_clean "$venv" timeout 120 memfence profile -o "$MF_TMP/p.prof" -- \
	python -c 'x = [bytearray(1 << 20) for _ in range(64)]' >"$MF_TMP/out" 2>"$MF_TMP/err"
rc=$?
[ "$rc" = 124 ] && fail "memfence profile: still running after 120 s"
[ "$rc" = 0 ] || fail "memfence profile from the environment: exit $rc: $(cat "$MF_TMP/err")"
[ -s "$MF_TMP/p.prof" ] || fail "memfence profile wrote no profile: $(cat "$MF_TMP/err")"
mf_clean "$venv" memfence report "$MF_TMP/p.prof" >"$MF_TMP/report" 2>&1 ||
	fail "memfence report of the profile failed: $(cat "$MF_TMP/report")"
grep -q . "$MF_TMP/report" || fail "empty report of the profile"

timeout 60 "$venv/bin/pip" uninstall -y memfence >"$MF_TMP/pip.log" 2>&1 ||
	fail "pip uninstall failed: $(cat "$MF_TMP/pip.log")"
left=$(find "$venv" -name '*memfence*')
[ -z "$left" ] || fail "pip uninstall left: $left"

# A gRPC server, with Debian's grpcio: the bootstrap adds the interceptor,
# and a call that asks for more than the limit is the one that fails.
"$PY" -c 'import grpc' 2>/dev/null || fail "python3-grpcio is not installed"
venv=$MF_TMP/venv-grpc
install_wheel --system-site-packages "$venv"
mf_bounded 120 "gRPC server" bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$MF_CG" \
	env -i PATH="$venv/bin:/usr/bin:/bin" HOME="$MF_TMP/home" memfence run --http off -- python -c '
import sys
from concurrent import futures
import grpc

def alloc(request, context):
    b = bytearray(int(request))
    return b"%d" % len(b)

s = grpc.server(futures.ThreadPoolExecutor(2))
s.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
    "t.T", {"Alloc": grpc.unary_unary_rpc_method_handler(alloc)})])
port = s.add_insecure_port("127.0.0.1:0")
s.start()
print(any(getattr(i, "memfence_interceptor", False) for i in s._state.interceptor_pipeline.interceptors))
print(sys.modules["memfence"].__file__.startswith(sys.prefix + "/lib/"))
with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
    call = ch.unary_unary("/t.T/Alloc")
    for n in (1 << 20, 1 << 30, 1 << 20):
        try:
            print(call(b"%d" % n, timeout=30).decode())
        except grpc.RpcError as e:
            print(e.code().name)
s.stop(None)
'
[ "$rc" = 0 ] || fail "gRPC server from the environment: exit $rc: $(cat "$MF_TMP/err")"
expect_eq "gRPC under memfence run" "True
True
1048576
RESOURCE_EXHAUSTED
1048576" "$(cat "$MF_TMP/out")"
echo ok
