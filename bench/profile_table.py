"""Print the profiler benchmark table (wall time, and CPU time, which a
busy machine disturbs less) from hyperfine's JSON exports and
/usr/bin/time -v outputs (bench/profile_bench.sh).

    profile_table.py DIR WORKLOAD...
"""
import json
import os
import sys


def peak_rss(path):
    try:
        for line in open(path):
            if "Maximum resident set size" in line:
                return int(line.split()[-1]) / 1024
    except OSError:
        pass
    return None


def main():
    d, workloads = sys.argv[1], sys.argv[2:]
    print("| workload | variant | median wall s | wall vs none | CPU s (user+sys, mean) "
          "| CPU vs none | peak RSS MiB | RSS vs none |")
    print("|---|---|---|---|---|---|---|---|")
    for w in workloads:
        res = json.load(open(os.path.join(d, w + ".json")))["results"]
        base = res[0]["median"]
        base_cpu = res[0]["user"] + res[0]["system"]
        base_rss = peak_rss(os.path.join(d, f"{w}.{res[0]['command']}.time"))
        for r in res:
            rss = peak_rss(os.path.join(d, f"{w}.{r['command']}.time"))
            rss_s = "%.1f" % rss if rss is not None else "n/a"
            rr = "%+.1f MiB" % (rss - base_rss) if rss is not None and base_rss is not None else "n/a"
            cpu = r["user"] + r["system"]
            print(f"| {w} | {r['command']} | {r['median']:.3f} | "
                  f"{100 * (r['median'] / base - 1):+.1f} % | {cpu:.3f} | "
                  f"{100 * (cpu / base_cpu - 1):+.1f} % | {rss_s} | {rr} |")


main()
