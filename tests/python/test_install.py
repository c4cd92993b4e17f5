"""memfence.install() applies limits in-process (each case in its own
python3, since the limits stay for the life of the process)."""
import subprocess
import sys
import textwrap
import unittest

import memfence

PROG = textwrap.dedent(r"""
    import resource, sys, threading, time
    import memfence
    MIB = 1 << 20
    stack = None if sys.argv[1] == "none" else sys.argv[1]
    plan = memfence.install(limit="256M", reserve="64M", stack=stack)
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    print("budget", plan["budget"], "rlimit", soft, "limit_from", plan["limit_from"])
    try:
        kept = [b"\x09" * MIB for _ in range(400)]
        print("allocated 400M")
    except MemoryError:
        kept = None
        print("MemoryError")
    stop = threading.Event()
    threads, failed = [], None
    for i in range(64):
        t = threading.Thread(target=stop.wait)
        try:
            t.start()
        except RuntimeError as e:
            failed = e
            break
        threads.append(t)
    stop.set()
    for t in threads:
        t.join()
    print("threads", len(threads), memfence.is_allocation_failure(failed) if failed else "-")
""")


def run(stack):
    return subprocess.run([sys.executable, "-c", PROG, stack], capture_output=True, text=True,
                          timeout=60)


@unittest.skipUnless(memfence._memfence.HAVE_LIMITS, "built without the core's limits")
class TestInstall(unittest.TestCase):
    def test_limits_and_small_stacks(self):
        out = run("512K")
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertEqual(lines[0].split()[:4], ["budget", str(192 << 20), "rlimit", str(192 << 20)])
        self.assertIn("--limit 256M", lines[0])
        self.assertEqual(lines[1], "MemoryError")
        self.assertEqual(lines[2], "threads 64 -")

    def test_default_stacks_do_not_fit(self):
        # The contrast that makes stack= worth having: 64 threads of 8 MiB
        # stacks (Debian's default RLIMIT_STACK) are charged 512 MiB.
        import resource
        soft = resource.getrlimit(resource.RLIMIT_STACK)[0]
        if soft == resource.RLIM_INFINITY or soft < (4 << 20):
            self.skipTest("thread stacks here are not the usual 8 MiB")
        out = run("none")
        self.assertEqual(out.returncode, 0, out.stderr)
        count, recognised = out.stdout.splitlines()[2].split()[1:]
        self.assertLess(int(count), 64)
        self.assertEqual(recognised, "True")

    def test_bad_input(self):
        for kwargs, word in (({"limit": "lots"}, "limit"), ({"reserve": "300%"}, "reserve"),
                             ({"rlimit": "heap"}, "rlimit"), ({"stack": "1K"}, "stack")):
            prog = "import memfence; memfence.install(**%r)" % (kwargs,)
            out = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True,
                                 timeout=60)
            self.assertNotEqual(out.returncode, 0)
            last = out.stderr.strip().splitlines()[-1]
            self.assertTrue(last.startswith("ValueError: invalid") or "reserve" in last, last)
            self.assertIn(word, last)


if __name__ == "__main__":
    unittest.main()
