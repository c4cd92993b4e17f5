"""isolate() in every outcome that needs no cgroup (the OOM kill is in
tests/integration/python_isolate_oom.sh)."""
import os
import signal
import time
import unittest

import memfence


class Custom(Exception):
    def __init__(self, code, detail):
        super().__init__(code, detail)
        self.code, self.detail = code, detail


def add(a, b, scale=1):
    return (a + b) * scale


def allocate(mib):
    # Progressively, as a request builds its data, and written to.
    chunks = [b"\x01" * (1 << 20) for _ in range(mib)]
    return sum(len(c) for c in chunks)


def raise_custom():
    raise Custom(42, {"why": "bad request"})


def sleep_forever():
    while True:
        time.sleep(1)


def crash():
    os.kill(os.getpid(), signal.SIGSEGV)


def big_result(n):
    return b"z" * n


def unpicklable():
    return lambda: None


def exit_now():
    os._exit(3)


def no_children():
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


class TestIsolate(unittest.TestCase):
    def tearDown(self):
        self.assertTrue(no_children(), "isolate() left a child behind")

    def test_result_and_figures(self):
        r = memfence.isolate(add, 2, 3, scale=10, limit="256M", timeout=30)
        self.assertEqual(r.value, 50)
        self.assertIn(r.figures.source, ("shim", "rss"))
        self.assertEqual(r.pid != os.getpid(), True)

    def test_figures_see_the_allocation(self):
        r = memfence.isolate(allocate, 64, limit="512M", timeout=30)
        self.assertEqual(r.value, 64 << 20)
        # 64 MiB written: whatever the source, the peak saw most of it.
        self.assertGreater(r.figures.peak, 48 << 20)
        self.assertGreaterEqual(r.figures.allocated, r.figures.peak if r.figures.source == "shim" else 0)

    def test_exception_crosses_intact(self):
        with self.assertRaises(Custom) as cm:
            memfence.isolate(raise_custom, timeout=30)
        self.assertEqual(cm.exception.code, 42)
        self.assertEqual(cm.exception.detail, {"why": "bad request"})
        notes = "\n".join(getattr(cm.exception, "__notes__", []))
        self.assertIn("raise_custom", notes)

    def test_memory_error_at_limit(self):
        with self.assertRaises(MemoryError):
            memfence.isolate(allocate, 1024, limit="128M", timeout=30)
        # And the parent is unharmed: the same allocation fits here.
        self.assertEqual(allocate(8), 8 << 20)

    def test_timeout_kills_the_child(self):
        t0 = time.monotonic()
        with self.assertRaises(memfence.IsolationTimeout) as cm:
            memfence.isolate(sleep_forever, timeout=0.5)
        self.assertIn("did not finish", str(cm.exception))
        self.assertLess(time.monotonic() - t0, 20)

    def test_crash(self):
        with self.assertRaises(memfence.IsolationError) as cm:
            memfence.isolate(crash, timeout=30)
        self.assertIn("SIGSEGV", str(cm.exception))
        self.assertNotIsInstance(cm.exception, MemoryError)

    def test_exit_without_result(self):
        with self.assertRaises(memfence.IsolationError) as cm:
            memfence.isolate(exit_now, timeout=30)
        self.assertIn("exit status 3", str(cm.exception))

    def test_large_result(self):
        r = memfence.isolate(big_result, 5 << 20, timeout=30)
        self.assertEqual(len(r.value), 5 << 20)

    def test_unpicklable_result(self):
        with self.assertRaises(memfence.IsolationError) as cm:
            memfence.isolate(unpicklable, timeout=30)
        self.assertIn("could not be pickled", str(cm.exception))

    def test_bad_arguments(self):
        with self.assertRaises(ValueError):
            memfence.isolate(add, 1, 2, limit="lots")
        with self.assertRaises(ValueError):
            memfence.isolate(add, 1, 2, timeout=0)


if __name__ == "__main__":
    unittest.main()
