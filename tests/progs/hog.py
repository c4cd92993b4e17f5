"""Allocate until memory runs out, the way a request that loads too much does.

    hog.py big        10 MiB buffers, touched, until MemoryError
    hog.py small      many small objects (pymalloc arenas) until MemoryError
    hog.py threads N  start N threads that wait, then stop them

Prints one line saying what happened and exits 0 when it caught MemoryError
(or started every thread); exits 3 when it could not start a thread. A
process the kernel kills prints nothing after "start".
"""
import sys
import threading


def big():
    held = []
    try:
        while True:
            b = bytearray(10 << 20)
            b[::4096] = b"x" * len(b[::4096])  # touch every page
            held.append(b)
    except MemoryError:
        n = len(held)
        held.clear()
        print(f"MemoryError caught after {n * 10} MiB")


def small():
    held = []
    try:
        while True:
            held.append([str(i) for i in range(1000)])
    except MemoryError:
        n = len(held)
        held.clear()
        print(f"MemoryError caught after {n} thousand small objects")


def threads(n):
    stop = threading.Event()
    started = []
    try:
        for _ in range(n):
            t = threading.Thread(target=stop.wait)
            t.start()
            started.append(t)
    except RuntimeError as e:
        print(f"started {len(started)} threads, then: {e}")
        stop.set()
        sys.exit(3)
    stop.set()
    for t in started:
        t.join()
    print(f"started {len(started)} threads")


print("start", flush=True)
mode = sys.argv[1]
if mode == "big":
    big()
elif mode == "small":
    small()
elif mode == "threads":
    threads(int(sys.argv[2]))
else:
    sys.exit(f"unknown mode {mode}")
