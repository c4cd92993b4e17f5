"""A small service that handles a batch of requests on a thread pool.

Each request loads some data (allocates and touches memory) for a while,
then answers. One request in the batch asks for far more than the
container has, growing its data step by step as a real feature computation
loading rows from a database would.

    batch_service.py [--workers N]

Prints one line per finished request and a summary. When the kernel kills
the process, the lines stop and nothing is printed for the requests that
were in flight: that is the problem memfence solves.
"""
import argparse
import concurrent.futures
import sys
import threading
import time

MiB = 1 << 20
REQUESTS = [("r%02d" % i, 24) for i in range(1, 13)]
REQUESTS.insert(4, ("r-oversized", 4096))


def handle(rid, mib):
    rows = []
    # An ordinary request loads its rows slowly (a database answers in
    # pages); the oversized one streams them as fast as they come.
    pause = 0.4 if mib < 1024 else 0.005
    for _ in range(mib // 8):
        rows.append(b"x" * (8 * MiB))  # filled, so every page is really used
        time.sleep(pause)
    return sum(len(r) for r in rows) // MiB


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()
    ok = failed = 0
    lock = threading.Lock()
    print(f"handling {len(REQUESTS)} requests on {args.workers} threads", flush=True)
    with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
        futures = {pool.submit(handle, rid, mib): (rid, mib) for rid, mib in REQUESTS}
        for fut in concurrent.futures.as_completed(futures):
            rid, mib = futures[fut]
            try:
                fut.result()
                line = f"  {rid:<12} asked {mib:>5} MiB  OK"
                ok += 1
            except MemoryError:
                line = f"  {rid:<12} asked {mib:>5} MiB  MemoryError: refused, the process lives on"
                failed += 1
            with lock:
                print(line, flush=True)
    print(f"done: {ok} OK, {failed} refused with MemoryError, process alive", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
