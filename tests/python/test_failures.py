"""is_allocation_failure on the shapes failures really take."""
import errno
import unittest

import memfence


class NumpyLikeMemoryError(MemoryError):
    """numpy's _ArrayMemoryError is a MemoryError subclass."""


class ServiceError(Exception):
    pass


def chained(inner, outer=None, explicit=True):
    if outer is None:
        outer = ServiceError("feature computation failed")
    try:
        try:
            raise inner
        except BaseException as e:
            if explicit:
                raise outer from e
            raise outer
    except BaseException as e:
        return e


class TestIsAllocationFailure(unittest.TestCase):
    def test_plain(self):
        self.assertTrue(memfence.is_allocation_failure(MemoryError()))
        self.assertTrue(memfence.is_allocation_failure(NumpyLikeMemoryError("Unable to allocate 8 GiB")))
        self.assertFalse(memfence.is_allocation_failure(ValueError("bad input")))
        self.assertFalse(memfence.is_allocation_failure(KeyError("memory")))
        self.assertFalse(memfence.is_allocation_failure(None))
        self.assertFalse(memfence.is_allocation_failure("MemoryError"))

    def test_cause_and_context(self):
        self.assertTrue(memfence.is_allocation_failure(chained(MemoryError())))
        self.assertTrue(memfence.is_allocation_failure(chained(MemoryError(), explicit=False)))
        deep = chained(chained(chained(NumpyLikeMemoryError())), outer=RuntimeError("rpc failed"))
        self.assertTrue(memfence.is_allocation_failure(deep))
        self.assertFalse(memfence.is_allocation_failure(chained(ValueError("x"))))

    def test_suppressed_context_still_counts(self):
        # `raise X from None` hides the context from tracebacks, not from us:
        # the request still failed because memory ran out.
        try:
            try:
                raise MemoryError()
            except MemoryError:
                raise ServiceError("wrapped") from None
        except ServiceError as e:
            self.assertTrue(memfence.is_allocation_failure(e))

    def test_cycles(self):
        a, b = ServiceError("a"), ServiceError("b")
        a.__context__, b.__context__ = b, a
        self.assertFalse(memfence.is_allocation_failure(a))
        b.__cause__ = MemoryError()
        self.assertTrue(memfence.is_allocation_failure(a))
        selfref = ServiceError("self")
        selfref.__cause__ = selfref
        self.assertFalse(memfence.is_allocation_failure(selfref))

    def test_groups(self):
        g = ExceptionGroup("tasks", [ValueError("a"), ExceptionGroup("inner", [chained(MemoryError())])])
        self.assertTrue(memfence.is_allocation_failure(g))
        self.assertFalse(memfence.is_allocation_failure(ExceptionGroup("t", [ValueError(), KeyError()])))
        self.assertTrue(memfence.is_allocation_failure(chained(g)))

    def test_thread_start(self):
        e = RuntimeError("can't start new thread")
        self.assertTrue(memfence.is_allocation_failure(e))
        self.assertEqual(memfence.allocation_failure_kind(chained(e)), "thread")
        self.assertIn("can't start new thread", memfence.describe_failure(chained(e)))

    def test_oserror_enomem(self):
        self.assertTrue(memfence.is_allocation_failure(OSError(errno.ENOMEM, "Cannot allocate memory")))
        self.assertFalse(memfence.is_allocation_failure(OSError(errno.ENOENT, "No such file")))
        self.assertFalse(memfence.is_allocation_failure(OSError(errno.EAGAIN, "again")))

    def test_library_messages(self):
        torch = RuntimeError("[enforce fail at alloc_cpu.cpp:75] data. DefaultCPUAllocator: can't "
                             "allocate memory: you tried to allocate 8000000000 bytes. Error code 12 "
                             "(Cannot allocate memory)")
        self.assertTrue(memfence.is_allocation_failure(torch))
        self.assertEqual(memfence.allocation_failure_kind(torch), "library")
        self.assertTrue(memfence.is_allocation_failure(RuntimeError("std::bad_alloc")))
        self.assertTrue(memfence.is_allocation_failure(chained(RuntimeError("std::bad_alloc"))))
        self.assertFalse(memfence.is_allocation_failure(RuntimeError("division by zero")))

    def test_real_memory_error(self):
        # A real refusal, not a constructed exception: more than the address
        # space can hold.
        try:
            bytearray(1 << 62)
        except MemoryError as e:
            self.assertTrue(memfence.is_allocation_failure(chained(e)))
        else:
            self.fail("a 4 EiB allocation succeeded")

    def test_describe(self):
        self.assertEqual(memfence.describe_failure(ValueError()), None)
        self.assertEqual(memfence.describe_failure(chained(MemoryError("x"))), "MemoryError: x")

    def test_long_chain_is_bounded(self):
        head = e = ServiceError("0")
        for i in range(5000):
            n = ServiceError(str(i))
            e.__context__ = n
            e = n
        e.__context__ = MemoryError()
        # Past the walk's bound: answered (False), not hung.
        self.assertIn(memfence.is_allocation_failure(head), (True, False))


if __name__ == "__main__":
    unittest.main()
