"""Checks for tests/integration/profile_*.sh: sampled estimates against the
exact figures, within a bound computed from the sampling math.

A block of s bytes is sampled with probability p = 1 - exp(-s/R) and then
stands for s/p bytes, so a site of n blocks of s bytes has an unbiased
estimate with variance n * s^2 * (1 - p) / p. Shares use the delta method.
Bounds are 5 standard deviations: a correct profiler fails such a check
with probability under 1e-6 per figure.
"""
import json
import math
import sys

K = 5.0


def var_of(n, s, rate):
    p = 1 - math.exp(-s / rate)
    return n * s * s * (1 - p) / p


def check(name, est, exact, var):
    sd = math.sqrt(var)
    ok = abs(est - exact) <= K * sd
    print(f"{name}: estimate {est:.0f} exact {exact:.0f} bound +-{K * sd:.0f} {'ok' if ok else 'FAIL'}")
    return ok


def site_bytes(prof, func, view_sites=None):
    """Bytes of the sites whose leaf function (native) or innermost Python
    frame is func; returns (bytes, frames of the heaviest such site)."""
    total, best, best_frames = 0.0, -1, None
    for s in prof["sites"]:
        fr = s["frames"]
        py = [f for f in fr if f["python"]]
        leaf = py[0] if py else fr[0]
        if leaf["function"].split(".")[0] == func:
            total += s["bytes"]
            if s["bytes"] > best:
                best, best_frames = s["bytes"], fr
    return total, best_frames


def shares(prof, sites, rate):
    """sites: {func: (n, [sizes of the blocks of one call])}."""
    sites = {f: (n, s if isinstance(s, list) else [s]) for f, (n, s) in sites.items()}
    est = {f: site_bytes(prof, f)[0] for f in sites}
    exact = {f: n * sum(s) for f, (n, s) in sites.items()}
    var = {f: sum(var_of(n, b, rate) for b in s) for f, (n, s) in sites.items()}
    T, Te = sum(exact.values()), sum(est.values())
    ok = True
    for f in sites:
        sh = exact[f] / T
        v = ((1 - 2 * sh) * var[f] + sh * sh * sum(var.values())) / (T * T)
        ok &= check(f"share {f}", est[f] / Te * 1e6, sh * 1e6, v * 1e12)
    return ok


def main():
    mode, path = sys.argv[1], sys.argv[2]
    prof = json.load(open(path))
    rate = prof["rate"]
    ok = True
    if mode == "c-alloc":
        # argv[3]: the program's output, "site BYTES COUNT SUMSQ" lines
        exact = {}
        for line in open(sys.argv[3]):
            f = line.split()
            if f[0].startswith("site_"):
                exact[f[0]] = (float(f[2]), float(f[1]) / float(f[2]))
        ok &= shares(prof, {k: exact[k] for k in ("site_a", "site_b", "site_c")}, rate)
        for k, (n, s) in exact.items():
            ok &= check(k, site_bytes(prof, k)[0], n * s, var_of(n, s, rate))
    elif mode == "c-live":
        n, s = float(sys.argv[3]), float(sys.argv[4])
        est, _ = site_bytes(prof, "site_leak")
        ok &= check("live site_leak", est, n * s, var_of(n, s, rate))
        top = max(prof["sites"], key=lambda x: x["bytes"])
        ok &= top["frames"][0]["function"].startswith("site_leak")
    elif mode == "child":
        n, s = float(sys.argv[3]), float(sys.argv[4])
        ok &= check("child site_child", site_bytes(prof, "site_child")[0], n * s, var_of(n, s, rate))
    elif mode == "python":
        # argv[3]: source file; argv[4:]: func:calls:usable,usable (blocks of one call)
        src = open(sys.argv[3]).read().splitlines()
        sites = {}
        for spec in sys.argv[4:]:
            func, n, s = spec.split(":")
            sites[func] = (float(n), [float(b) for b in s.split(",")])
            line = next(i + 1 for i, l in enumerate(src) if f"SITE-{func}" in l)
            _, frames = site_bytes(prof, func)
            if frames is None:
                print(f"{func}: no site found"); ok = False; continue
            py = [f for f in frames if f["python"]][0]
            good = py["function"] == func and py["line"] == line
            print(f"{func}: innermost Python frame {py['function']} line {py['line']} "
                  f"(expected line {line}) {'ok' if good else 'FAIL'}")
            ok &= good
        ok &= shares(prof, sites, rate)
    elif mode == "pyversion":
        # argv[3]: source file, argv[4]: the reference's python-heap bytes
        # or "-". The top Python function (sites summed by innermost Python
        # frame, as the text report does) is the SITE-top line's, called
        # from SITE-caller's; SITE-init's function has the top one as its
        # caller, with no frame between (3.13 runs __init__ under a shim
        # frame that must not show). The python-heap figure is printed and,
        # with a reference, within 10 % of it: the same objects on each
        # version, which the sampling estimates to +-1 % at the rate used.
        src = open(sys.argv[3]).read().splitlines()

        def where(tag):
            i = next(i for i, l in enumerate(src) if f"SITE-{tag}" in l)
            name = src[i].split("SITE-" + tag)[1].split()[0]
            return name, i + 1

        top, top_line = where("top")
        caller, _ = where("caller")
        init, init_line = where("init")
        by_func, py_heap = {}, 0.0
        for s in prof["sites"]:
            py = [f for f in s["frames"] if f["python"]]
            if py:
                py_heap += s["bytes"]
                by_func[py[0]["function"]] = by_func.get(py[0]["function"], 0) + s["bytes"]
        ok &= prof["python"] and prof["pymalloc"] == "hooked"
        print(f"python {prof['python']} pymalloc {prof['pymalloc']} "
              f"interpreter {prof.get('python_interpreter')}")
        best = max(by_func, key=by_func.get) if by_func else None
        good = best == top
        print(f"top Python function {best} ({by_func.get(best, 0):.0f} bytes), expected {top} "
              f"{'ok' if good else 'FAIL'}")
        ok &= good
        for func, line, up in ((top, top_line, caller), (init, init_line, top)):
            _, frames = site_bytes(prof, func.split(".")[0])
            py = [f for f in frames if f["python"]] if frames else []
            got = [(f["function"], f["line"]) for f in py[:2]]
            good = len(got) == 2 and got[0] == (func, line) and got[1][0] == up
            print(f"{func}: frames {got}, expected {func}:{line} < {up} {'ok' if good else 'FAIL'}")
            ok &= good
        print(f"python-heap {py_heap:.0f}")
        if sys.argv[4] != "-":
            ref = float(sys.argv[4])
            good = ref > 0 and abs(py_heap / ref - 1) <= 0.10
            print(f"python-heap {py_heap / ref:.3f} of the reference's {'ok' if good else 'FAIL'}")
            ok &= good
    sys.exit(0 if ok else 1)


main()
