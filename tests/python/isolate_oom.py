"""Run inside a small memory cgroup: an isolated function that the kernel
OOM-kills comes back as MemoryError, and this process lives on."""
import sys

import memfence

MIB = 1 << 20


def hog(mib):
    return len([b"\x08" * MIB for _ in range(mib)])


def main():
    # No rlimit: only the cgroup can stop it.
    try:
        memfence.isolate(hog, int(sys.argv[1]), timeout=60)
    except MemoryError as e:
        print("MemoryError:", e)
    else:
        print("no error")
        return 1
    # Still alive, and a normal isolated call works in the same cgroup.
    r = memfence.isolate(hog, 8, timeout=60)
    print("after:", r.value, r.figures.source)
    return 0


sys.exit(main())
