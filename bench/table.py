"""Print the overhead table from hyperfine's JSON exports.

    table.py DIR WORKLOAD...

DIR/WORKLOAD.json holds two results (no shim, memfence) and
DIR/WORKLOAD.{base,shim}.rss the peak RSS in KiB from /usr/bin/time.
"""
import json
import os
import platform
import sys


def main():
    d, workloads = sys.argv[1], sys.argv[2:]
    print("| workload | no shim (median s) | memfence (median s) | time ratio | overhead "
          "| CPU overhead | peak RSS no shim | peak RSS memfence |")
    print("|---|---|---|---|---|---|---|---|")
    for w in workloads:
        with open(os.path.join(d, w + ".json")) as f:
            res = json.load(f)["results"]
        base, shim = res[0], res[1]
        ratio = shim["median"] / base["median"]
        # user+system time (means): less sensitive than wall time to other
        # load on the machine, which delays a run without making it work more
        cpu = (shim["user"] + shim["system"]) / (base["user"] + base["system"])
        rss = []
        for v in ("base", "shim"):
            try:
                with open(os.path.join(d, f"{w}.{v}.rss")) as f:
                    rss.append("%.1f MiB" % (int(f.read().split()[-1]) / 1024))
            except (OSError, ValueError, IndexError):
                rss.append("n/a")
        print(f"| {w} | {base['median']:.3f} | {shim['median']:.3f} | {ratio:.3f} "
              f"| {100 * (ratio - 1):+.1f} % | {100 * (cpu - 1):+.1f} % | {rss[0]} | {rss[1]} |")
    runs = len(res[0]["times"])
    print()
    print(f"{runs} runs of each command after 1 warm-up, medians; "
          f"{os.cpu_count()} CPUs, {platform.machine()}, Linux {platform.release()}.")


if __name__ == "__main__":
    main()
