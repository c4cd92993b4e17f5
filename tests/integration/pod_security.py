"""Check the pod specs of Kubernetes manifests against Pod Security "restricted".

    pod_security.py FILE...    one line per violation, "FILE: KIND/NAME: RULE: why";
                               exit 0 when none, 1 otherwise, 2 when a file cannot be read

The rules are those of the Pod Security Standards page of the Kubernetes
documentation (kubernetes.io/docs/concepts/security/pod-security-standards/),
named as it names them: every "baseline" control, then what "restricted"
adds. Two rules of memfence's own follow ("memfence: ..."): a read-only root
filesystem, and the state directory on a disk-backed emptyDir with a size
limit, so that what must outlive an OOM kill is written there and nowhere
else.
"""
import sys

import yaml

# Baseline, "Capabilities": what may be added.
BASELINE_CAPS = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                 "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
# Baseline, "Sysctls": the safe set.
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
                "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
# Restricted, "Volume Types".
VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                "persistentVolumeClaim", "projected", "secret"}
POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def pod_spec(doc):
    kind = doc.get("kind")
    if kind == "Pod":
        return doc.get("spec") or {}
    if kind == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"].get("spec") or {}
    if kind in POD_KINDS:
        return doc["spec"]["template"].get("spec") or {}
    return None


def pod_annotations(doc):
    if doc.get("kind") == "Pod":
        return (doc.get("metadata") or {}).get("annotations") or {}
    tmpl = doc.get("spec", {}).get("template", {})
    if doc.get("kind") == "CronJob":
        tmpl = doc["spec"]["jobTemplate"]["spec"]["template"]
    return (tmpl.get("metadata") or {}).get("annotations") or {}


def check_pod(spec, annotations):
    """(rule, why) for every violation of one pod spec."""
    out = []
    psc = spec.get("securityContext") or {}
    containers = [c for key in ("initContainers", "containers", "ephemeralContainers")
                  for c in spec.get(key) or []]
    contexts = [("pod", psc)] + [(c.get("name", "?"), c.get("securityContext") or {})
                                 for c in containers]

    # --- baseline ---
    for who, sc in contexts:
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            out.append(("HostProcess", f"{who}: windowsOptions.hostProcess is true"))
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            out.append(("Host Namespaces", f"{field} is true"))
    for who, sc in contexts[1:]:
        if sc.get("privileged"):
            out.append(("Privileged Containers", f"{who}: privileged is true"))
        added = set((sc.get("capabilities") or {}).get("add") or [])
        if added - BASELINE_CAPS:
            out.append(("Capabilities", f"{who}: adds {sorted(added - BASELINE_CAPS)}"))
        if sc.get("procMount", "Default") != "Default":
            out.append(("/proc Mount Type", f"{who}: procMount {sc['procMount']}"))
    for v in spec.get("volumes") or []:
        if "hostPath" in v:
            out.append(("HostPath Volumes", f"volume {v.get('name')} is a hostPath"))
    for c in containers:
        for p in c.get("ports") or []:
            if p.get("hostPort", 0):
                out.append(("Host Ports", f"{c.get('name')}: hostPort {p['hostPort']}"))
    for who, sc in contexts:
        t = (sc.get("appArmorProfile") or {}).get("type")
        if t is not None and t not in ("RuntimeDefault", "Localhost"):
            out.append(("AppArmor", f"{who}: appArmorProfile {t}"))
        se = sc.get("seLinuxOptions") or {}
        if se.get("type", "") not in SELINUX_TYPES or se.get("user") or se.get("role"):
            out.append(("SELinux", f"{who}: seLinuxOptions {se}"))
        if (sc.get("seccompProfile") or {}).get("type") == "Unconfined":
            out.append(("Seccomp", f"{who}: seccompProfile Unconfined"))
    for key, value in annotations.items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and \
                value != "runtime/default" and not value.startswith("localhost/"):
            out.append(("AppArmor", f"annotation {key}: {value}"))
    for s in psc.get("sysctls") or []:
        if s.get("name") not in SAFE_SYSCTLS:
            out.append(("Sysctls", f"sysctl {s.get('name')} is not in the safe set"))

    # --- restricted ---
    for v in spec.get("volumes") or []:
        kinds = set(v) - {"name"}
        if not kinds <= VOLUME_TYPES:
            out.append(("Volume Types", f"volume {v.get('name')} is {sorted(kinds - VOLUME_TYPES)}"))
    for who, sc in contexts[1:]:
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(("Privilege Escalation", f"{who}: allowPrivilegeEscalation is not false"))
    for who, sc in contexts[1:]:
        if sc.get("runAsNonRoot") is False or \
                (psc.get("runAsNonRoot") is not True and sc.get("runAsNonRoot") is not True):
            out.append(("Running as Non-root", f"{who}: runAsNonRoot is not true"))
    for who, sc in contexts:
        if sc.get("runAsUser") == 0:
            out.append(("Running as Non-root user", f"{who}: runAsUser is 0"))
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    for who, sc in contexts[1:]:
        t = (sc.get("seccompProfile") or {}).get("type") or pod_seccomp
        if t not in ("RuntimeDefault", "Localhost"):
            out.append(("Seccomp", f"{who}: seccompProfile is {t or 'unset'}"))
    for who, sc in contexts[1:]:
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(("Capabilities", f"{who}: does not drop ALL"))
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(("Capabilities", f"{who}: adds {sorted(set(caps['add']) - {'NET_BIND_SERVICE'})}"))

    # --- memfence's own ---
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    for c in spec.get("containers") or []:
        sc = c.get("securityContext") or {}
        who = c.get("name", "?")
        if sc.get("readOnlyRootFilesystem") is not True:
            out.append(("memfence: read-only root filesystem",
                        f"{who}: readOnlyRootFilesystem is not true"))
        state = state_dir(c)
        if state is None:
            out.append(("memfence: state directory", f"{who}: no MEMFENCE_STATE_DIR or --state-dir"))
            continue
        mounts = [m for m in c.get("volumeMounts") or [] if m.get("mountPath") == state]
        vol = volumes.get(mounts[0].get("name")) if mounts else None
        empty = (vol or {}).get("emptyDir")
        if empty is None:
            out.append(("memfence: state directory", f"{who}: {state} is not on an emptyDir"))
        elif not empty.get("sizeLimit") or empty.get("medium") == "Memory":
            out.append(("memfence: state directory",
                        f"{who}: the emptyDir at {state} needs a sizeLimit and no medium Memory"))
    return out


def state_dir(container):
    for e in container.get("env") or []:
        if e.get("name") == "MEMFENCE_STATE_DIR":
            return e.get("value")
    argv = list(container.get("command") or []) + list(container.get("args") or [])
    for i, a in enumerate(argv):
        if a == "--":
            break
        if a == "--state-dir" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--state-dir="):
            return a.split("=", 1)[1]
    return None


def check_file(path):
    problems, pods = [], 0
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        pods += 1
        name = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name', '?')}"
        for rule, why in dict.fromkeys(check_pod(spec, pod_annotations(doc))):
            problems.append(f"{path}: {name}: {rule}: {why}")
    if pods == 0:
        problems.append(f"{path}: no pod spec in it")
    return problems


def main(paths):
    problems = []
    for p in paths:
        try:
            problems += check_file(p)
        except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as e:
            print(f"{p}: cannot read: {e}", file=sys.stderr)
            return 2
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
