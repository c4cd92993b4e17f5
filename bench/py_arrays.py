"""Large array allocations, as numerical code makes them.

    py_arrays.py [ROUNDS]

numpy arrays of 1 to 64 MiB, created, filled, combined and dropped. Uses
numpy when it is installed (Debian's python3-numpy), else bytearrays of the
same sizes, and says which.
"""
import sys

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 150
try:
    import numpy as np
except ImportError:
    np = None

total = 0
sizes = [1, 4, 16, 64, 8, 2, 32]
for r in range(rounds):
    mib = sizes[r % len(sizes)]
    if np is not None:
        a = np.ones(mib * 131072)          # float64: 8 bytes each
        b = a * 2.0
        total += int(b[-1]) + a.size
        del a, b
    else:
        a = bytearray(mib << 20)
        b = bytes(a)
        total += len(b)
        del a, b
print("numpy" if np is not None else "bytearray", total)
