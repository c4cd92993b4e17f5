"""memfence.scope figures, with the accounting shim (MEMFENCE_EXPECT_SHIM=1,
run under it by tests/integration/python_shim.sh) or without (rss)."""
import asyncio
import os
import threading
import unittest
import warnings

import memfence
from memfence import _core

MIB = 1 << 20
EXPECT_SHIM = os.environ.get("MEMFENCE_EXPECT_SHIM") == "1"


def build(mib):
    return [b"\x02" * MIB for _ in range(mib)]


class TestScope(unittest.TestCase):
    def test_source(self):
        self.assertEqual(memfence.shim_active(), EXPECT_SHIM)
        with memfence.scope("src") as s:
            pass
        self.assertEqual(s.figures.source, "shim" if EXPECT_SHIM else "rss")
        self.assertEqual(memfence.stats()["source"], s.figures.source)

    def test_retained_and_freed(self):
        # Without the shim the figures are resident-memory deltas, and the
        # allocator reuses what earlier tests freed: sizes well above that.
        with memfence.scope("keep", id="r1") as s:
            kept = build(128)
            tmp = build(64)
            del tmp
        f = s.figures
        self.assertGreaterEqual(f.net, 80 * MIB)
        self.assertLess(f.net, 140 * MIB)
        self.assertGreaterEqual(f.peak, f.net)
        if EXPECT_SHIM:
            self.assertGreaterEqual(f.net, 128 * MIB)
            self.assertGreaterEqual(f.peak, 192 * MIB)
            self.assertGreaterEqual(f.allocated, 192 * MIB)
            self.assertGreaterEqual(f.freed, 64 * MIB)
            self.assertEqual(f.net, f.allocated - f.freed)
        del kept

    def test_current_and_nesting(self):
        with memfence.scope("outer") as outer:
            self.assertIs(memfence.current_scope(), outer)
            with memfence.scope("inner") as inner:
                x = build(8)
                self.assertIs(memfence.current_scope(), inner)
                mid = inner.current()
                self.assertEqual(mid.source, "shim" if EXPECT_SHIM else "rss")
                if EXPECT_SHIM:
                    self.assertGreaterEqual(mid.net, 8 * MIB)
            self.assertIs(memfence.current_scope(), outer)
            del x
        self.assertIsNone(memfence.current_scope())
        if EXPECT_SHIM:
            # The inner allocation counts in the outer scope too.
            self.assertGreaterEqual(outer.figures.allocated, inner.figures.allocated)

    def test_decorator(self):
        seen = []

        @memfence.scope("decorated")
        def work(n):
            seen.append(memfence.current_scope().name)
            return len(build(n))

        self.assertEqual(work(2), 2)
        self.assertEqual(seen, ["decorated"])

    def test_bad_budget(self):
        with self.assertRaises(ValueError):
            memfence.scope("x", budget="12 parsecs")
        with self.assertRaises(ValueError):
            memfence.scope("x", budget=-1)

    def test_budget(self):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            if EXPECT_SHIM:
                other = {}

                def neighbour():
                    other["n"] = len(build(32))

                with self.assertRaises(MemoryError):
                    with memfence.scope("capped", budget="16M") as s:
                        t = threading.Thread(target=neighbour)
                        t.start()
                        t.join()
                        build(64)
                # The refusal stayed in this scope: the neighbour's 32 MiB
                # (more than the budget) went through.
                self.assertEqual(other.get("n"), 32)
                self.assertGreaterEqual(s.figures.failed, 1)
                self.assertLessEqual(s.figures.peak, 16 * MIB)
                self.assertEqual([x for x in w if "cannot be enforced" in str(x.message)], [])
            else:
                _core._warned_budget = False
                with memfence.scope("capped", budget="16M"):
                    build(20)
                with memfence.scope("capped2", budget="16M"):
                    pass
                msgs = [str(x.message) for x in w if "cannot be enforced" in str(x.message)]
                self.assertEqual(len(msgs), 1, msgs)

    def test_asyncio_scopes_follow_their_task(self):
        """Two requests interleave on one thread; each scope follows its
        task across awaits."""
        async def request(name, mib, log):
            @memfence.scope(name)
            async def handler():
                kept = []
                for _ in range(mib):
                    kept.append(b"\x03" * MIB)
                    log.append(name)
                    self.assertEqual(memfence.current_scope().name, name)
                    await asyncio.sleep(0)
                return memfence.current_scope(), kept

            return await handler()

        async def main():
            log = []
            big, small = await asyncio.gather(request("big", 24, log), request("small", 4, log))
            return big, small, log

        (big_sc, big_data), (small_sc, small_data), log = asyncio.run(main())
        # They really interleaved.
        self.assertNotEqual(log[:4], ["big"] * 4)
        self.assertIn("small", log[:4])
        self.assertEqual(big_sc.figures.source, "shim" if EXPECT_SHIM else "rss")
        if EXPECT_SHIM:
            self.assertGreaterEqual(big_sc.figures.allocated, 24 * MIB)
            self.assertLess(big_sc.figures.allocated, 27 * MIB)
            self.assertGreaterEqual(small_sc.figures.allocated, 4 * MIB)
            # The small request did not get charged the big one's memory.
            self.assertLess(small_sc.figures.allocated, 7 * MIB)
        else:
            # Without the shim a scope sees the whole process: at least its own.
            self.assertGreaterEqual(small_sc.figures.net, 3 * MIB)
        del big_data, small_data

    def test_asyncio_budget_only_fails_its_request(self):
        if not EXPECT_SHIM:
            self.skipTest("budgets need the shim")

        async def req(mib, budget):
            kept = []
            for _ in range(mib):
                kept.append(b"\x04" * MIB)
                await asyncio.sleep(0)
            return len(kept)

        async def main():
            return await asyncio.gather(memfence.scoped(req(64, "16M"), "over", budget="16M"),
                                        memfence.scoped(req(24, "32M"), "fine", budget="32M"),
                                        return_exceptions=True)

        over, fine = asyncio.run(main())
        self.assertIsInstance(over, MemoryError)
        self.assertEqual(fine, 24)


if __name__ == "__main__":
    unittest.main()
