"""numpy arrays of 8 KiB to 30 MiB reused in a loop, as numerical code
makes them: np.ones, arithmetic temporaries, concatenate, copy, astype,
and many small arrays.

    py_numpy.py [ROUNDS]

Each size is worked on several times in a row before the next one, every
array dropped at the end of its step, so the allocator sees the same sizes
freed and asked for again: what glibc's dynamic mmap threshold is for.
Needs numpy (Debian's python3-numpy).
"""
import sys

import numpy as np

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
# The largest stays under 32 MiB, the most glibc's dynamic threshold
# follows: larger blocks are mapped on their own whatever the setting.
sizes_kib = [8, 64, 256, 1024, 2048, 4096, 8192, 16384, 30720]
total = 0.0
for r in range(rounds):
    for kib in sizes_kib:
        n = kib * 1024 // 8                 # float64
        for _ in range(max(2, 8192 // kib)):
            a = np.ones(n)
            a *= 2.0
            a += 1.0
            b = a.astype(np.float32)        # half the size
            t = a * 0.5                     # a temporary of the full size
            total += float(t[-1])
            del a, t
            c = np.concatenate((b, b))
            del b
            d = c[: n // 2].copy()
            total += float(c[-1]) + float(d[0])
            del c, d
    small = [np.arange(64) * i for i in range(2000)]
    total += float(sum(int(s[-1]) for s in small))
print("numpy", int(total))
