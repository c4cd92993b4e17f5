#!/usr/bin/env python3
"""What `memfence run` adds to a program's start, and where it goes.

Each round starts every command once, in an order reversed every other
round, so that a machine whose load drifts weighs on all of them alike
(hyperfine runs one command's series after the other's). Prints, per
command, the median of its wall times and of its CPU (user + system of the
process and everything it waited for, the supervisor included) and what
each adds to the first command.

    python3 bench/startup.py --build build                 # the product as users start it
    python3 bench/startup.py --build NEW --old OLD         # two builds side by side
    python3 bench/startup.py --build build --parts         # the steps of a start, apart

spawn_wait (bench/spawn_wait.c) is a parent that only starts the program
and waits for it: what it adds is the price of any supervisor process on
the machine, the floor under `run`'s.

--parts times the pieces a start of `run` is made of: a process and its
exec (/bin/true), a parent that only waits (spawn_wait true), the
command's own start (--version), the limits applied
and one exec more (exec -- true), the supervisor (run -- true), and the
accounting library and the Python bootstrap in the interpreter without the
command (env LD_PRELOAD=... against env alone).
"""
import argparse
import os
import shlex
import statistics
import sys
import time

PY = "/usr/bin/python3"


def commands(args):
    mf = os.path.join(args.build, "memfence")
    parent = os.path.join(args.build, "bench", "spawn_wait")
    plain = [PY, "-c", "pass"]
    if args.parts:
        lib = os.path.join(args.build, "libmemfence.so")
        boot = os.path.join(args.build, "python", "memfence", "_bootstrap")
        return [
            ("true", ["/bin/true"]),
            ("spawn_wait true", [parent, "/bin/true"]),
            ("memfence --version", [mf, "--version"]),
            ("exec -- true", [mf, "exec", "--", "/bin/true"]),
            ("run --http off -- true", [mf, "run", "--http", "off", "--", "/bin/true"]),
            ("env python3 -c pass", ["/usr/bin/env"] + plain),
            ("env LD_PRELOAD=libmemfence.so MEMFENCE_ACCOUNT=1 python3",
             ["/usr/bin/env", "LD_PRELOAD=" + lib, "MEMFENCE_ACCOUNT=1"] + plain),
            ("env ... PYTHONPATH=_bootstrap python3",
             ["/usr/bin/env", "LD_PRELOAD=" + lib, "MEMFENCE_ACCOUNT=1", "PYTHONPATH=" + boot]
             + plain),
        ]
    out = [("python3 -c pass", plain), ("spawn_wait python3 -c pass", [parent] + plain)]
    builds = [("", mf)] + ([("old ", os.path.join(args.old, "memfence"))] if args.old else [])
    for variant in (["run"], ["run", "--http", "off"], ["exec", "--account"]):
        for tag, m in builds:
            out.append((tag + " ".join(variant), [m] + variant + ["--"] + plain))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="the build directory (default: build)")
    ap.add_argument("--old", metavar="BUILD", help="a second build, beside the first")
    ap.add_argument("--parts", action="store_true", help="time the steps of a start apart")
    ap.add_argument("--rounds", type=int, default=100, help="rounds (default: 100)")
    ap.add_argument("--warmup", type=int, default=3, help="rounds not counted (default: 3)")
    args = ap.parse_args()
    if args.rounds < 1 or args.warmup < 0:
        ap.error("--rounds must be at least 1 and --warmup at least 0")
    for b in [args.build] + ([args.old] if args.old else []):
        if not os.access(os.path.join(b, "memfence"), os.X_OK):
            ap.error("no memfence in %s: build it first (make)" % b)
    if not os.access(os.path.join(args.build, "bench", "spawn_wait"), os.X_OK):
        ap.error("no bench/spawn_wait in %s: build it first (make B=%s %s/bench/spawn_wait)"
                 % (args.build, args.build, args.build))
    cmds = commands(args)
    wall = [[] for _ in cmds]
    cpu = [[] for _ in cmds]
    null = os.open(os.devnull, os.O_RDWR)
    load = os.getloadavg()[0]
    for r in range(args.warmup + args.rounds):
        order = range(len(cmds)) if r % 2 == 0 else reversed(range(len(cmds)))
        for i in order:
            argv = cmds[i][1]
            t0 = time.perf_counter_ns()
            pid = os.posix_spawn(argv[0], argv, os.environ,
                                 file_actions=[(os.POSIX_SPAWN_DUP2, null, 1),
                                               (os.POSIX_SPAWN_DUP2, null, 2)])
            _, status, ru = os.wait4(pid, 0)
            t1 = time.perf_counter_ns()
            if os.waitstatus_to_exitcode(status) != 0:
                sys.exit("startup: %s exited with %d" % (shlex.join(argv),
                                                         os.waitstatus_to_exitcode(status)))
            if r >= args.warmup:
                wall[i].append((t1 - t0) / 1e6)
                cpu[i].append((ru.ru_utime + ru.ru_stime) * 1e3)
    w0, c0 = statistics.median(wall[0]), statistics.median(cpu[0])
    print("| command | wall median ms | added ms | CPU median ms | added ms |")
    print("|---|---|---|---|---|")
    for (name, _), w, c in zip(cmds, wall, cpu):
        mw, mc = statistics.median(w), statistics.median(c)
        print("| `%s` | %.2f | %+.2f | %.2f | %+.2f |" % (name, mw, mw - w0, mc, mc - c0))
    print()
    print("%d interleaved rounds after %d not counted; load average %.1f before, %.1f after "
          "(1 min); %d CPUs." % (args.rounds, args.warmup, load, os.getloadavg()[0],
                                 os.cpu_count()))


if __name__ == "__main__":
    main()
