#!/usr/bin/env bash
# The documented Kubernetes manifest (examples/kubernetes/deployment.yaml)
# passes Pod Security "restricted" and memfence's own two rules (a
# read-only root filesystem; the state directory on a disk-backed emptyDir
# with a size limit), as tests/integration/pod_security.py checks them. The
# checker itself is tested first: each change below breaks the rule it
# names, as the manifest documented before did (it added SYS_RESOURCE and
# IPC_LOCK).
. "$(dirname "$0")/../lib.sh"
$PY -c 'import yaml' 2>/dev/null || skip "no PyYAML for $PY (Debian: python3-yaml; scripts/deps.sh check)"
CHECK=$MF_ROOT_DIR/tests/integration/pod_security.py
M=$MF_ROOT_DIR/examples/kubernetes/deployment.yaml

# mutate NAME PYTHON: a copy of the manifest changed by PYTHON (on c, the
# container, p, the pod spec, and v, the volumes) in $MF_TMP/NAME.yaml.
mutate() {
	$PY - "$M" "$MF_TMP/$1.yaml" "$2" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
p = doc["spec"]["template"]["spec"]
c, v = p["containers"][0], p["volumes"]
exec(sys.argv[3])
yaml.safe_dump(doc, open(sys.argv[2], "w"))
PY
}
n=0
while IFS='|' read -r rule change; do
	[ -n "$rule" ] || continue
	n=$((n + 1))
	mutate "m$n" "$change" || fail "cannot change the manifest: $change"
	$PY "$CHECK" "$MF_TMP/m$n.yaml" >"$MF_TMP/m$n.out" 2>&1
	rc=$?
	expect_eq "the checker on '$change' ($(cat "$MF_TMP/m$n.out"))" 1 "$rc"
	grep -q ": $rule: " "$MF_TMP/m$n.out" || fail "'$change' is not reported as '$rule': $(cat "$MF_TMP/m$n.out")"
done <<'CASES'
Capabilities|c["securityContext"]["capabilities"]["add"] = ["SYS_RESOURCE", "IPC_LOCK"]
Capabilities|del c["securityContext"]["capabilities"]["drop"]
Privilege Escalation|del c["securityContext"]["allowPrivilegeEscalation"]
Running as Non-root|del p["securityContext"]["runAsNonRoot"]
Running as Non-root user|c["securityContext"]["runAsUser"] = 0
Seccomp|del p["securityContext"]["seccompProfile"]
Seccomp|c["securityContext"]["seccompProfile"] = {"type": "Unconfined"}
Privileged Containers|c["securityContext"]["privileged"] = True
Host Namespaces|p["hostPID"] = True
Host Ports|c["ports"][0]["hostPort"] = 50051
HostPath Volumes|v.append({"name": "h", "hostPath": {"path": "/var/lib/memfence"}})
Volume Types|v.append({"name": "n", "nfs": {"server": "nfs", "path": "/"}})
Sysctls|p["securityContext"]["sysctls"] = [{"name": "vm.overcommit_memory", "value": "1"}]
memfence: read-only root filesystem|c["securityContext"]["readOnlyRootFilesystem"] = False
memfence: state directory|del v[0]["emptyDir"]["sizeLimit"]
memfence: state directory|v[0]["emptyDir"]["medium"] = "Memory"
memfence: state directory|c["env"] = [e for e in c["env"] if e["name"] != "MEMFENCE_STATE_DIR"]
CASES

$PY "$CHECK" "$M" >"$MF_TMP/out" 2>&1 || fail "the manifest is not restricted: $(cat "$MF_TMP/out")"
echo "ok: $M passes; $n broken copies are refused by the rule they break"
