"""Sizes in Python mean what they mean on the command line: every case of
tests/data/sizes.tsv (the C parser's cases) through the package, then what
only the Python side adds (ints, None, bools, the name in the message)."""
import os
import unittest

import memfence
from memfence import _memfence

CASES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "sizes.tsv")


def cases():
    """(line number, input, percent base, bytes or None, reason or None)"""
    out = []
    with open(CASES) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            assert line.startswith('"'), "sizes.tsv:%d: input not quoted" % n
            end = line.index('"', 1)
            text = line[1:end]
            base, want = line[end + 2:].split("\t")
            if want.startswith("error: "):
                out.append((n, text, int(base), None, want[len("error: "):]))
            else:
                out.append((n, text, int(base), int(want), None))
    return out


class SizeCases(unittest.TestCase):
    def test_file_is_read(self):
        # A file cut short must not pass for a few good lines.
        self.assertGreaterEqual(len(cases()), 75)

    def test_extension(self):
        for n, text, base, want, why in cases():
            with self.subTest(line=n, text=text):
                if why is None:
                    self.assertEqual(_memfence.parse_size(text, base), want)
                else:
                    with self.assertRaises(ValueError) as cm:
                        _memfence.parse_size(text, base)
                    self.assertTrue(str(cm.exception).startswith(why), str(cm.exception))

    def test_package(self):
        # memfence.parse_size takes no percentages; otherwise the same answers.
        for n, text, base, want, why in cases():
            with self.subTest(line=n, text=text):
                if why is None and "%" not in text:
                    self.assertEqual(memfence.parse_size(text), want)
                    continue
                with self.assertRaises(ValueError) as cm:
                    memfence.parse_size(text, "budget")
                self.assertTrue(str(cm.exception).startswith("invalid budget %r: " % text),
                                str(cm.exception))
                if "%" not in text:
                    self.assertIn(": " + why, str(cm.exception))

    def test_what_python_used_to_accept(self):
        for text, why in ((" 5M", "a size starts with a number"),
                          ("5 M", "unknown size suffix"),
                          ("1.5", "a byte count has no fraction")):
            with self.assertRaises(ValueError) as cm:
                memfence.parse_size(text)
            self.assertIn(why, str(cm.exception))


class PythonValues(unittest.TestCase):
    def test_ints_and_none(self):
        self.assertIsNone(memfence.parse_size(None))
        self.assertEqual(memfence.parse_size(0), 0)
        self.assertEqual(memfence.parse_size(1 << 40), 1 << 40)
        with self.assertRaises(ValueError):
            memfence.parse_size(-1)
        with self.assertRaises(ValueError):
            memfence.parse_size(True)

    def test_budget_of_a_scope(self):
        self.assertEqual(memfence.scope("x", budget="1.5K").budget, 1536)
        with self.assertRaises(ValueError):
            memfence.scope("x", budget="5 M")


if __name__ == "__main__":
    unittest.main()
