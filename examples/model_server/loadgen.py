#!/usr/bin/env python3
"""Load generator for the model server: N calls at concurrency C, with mixed
sizes and a few oversized ones, then a summary.

    python3 loadgen.py --target 127.0.0.1:50051 --calls 300 --concurrency 16 \
        --oversized 5 --oversized-mib 3000
    python3 loadgen.py --protocol http --target 127.0.0.1:8080 ...   # http_server.py on gunicorn/uvicorn

Every call carries a request id "req-N" (x-request-id). The summary counts
OK, refused (gRPC RESOURCE_EXHAUSTED, HTTP 503), other errors, and calls lost
because the server process died (with --server-pid: UNAVAILABLE or a broken
connection with the server gone); --json FILE writes it for scripts.
Exit status: 0 when the run completed (whatever the outcomes), 2 for bad
arguments.
"""
import argparse
import http.client
import json
import os
import random
import sys
import threading
import time
from concurrent import futures

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import features_pb  # noqa: E402


def parse_range(text):
    try:
        lo, hi = (int(x) for x in text.split("-", 1))
    except ValueError:
        raise argparse.ArgumentTypeError("expected MIN-MAX in MiB, e.g. 5-40, got %r" % text)
    if not 0 < lo <= hi:
        raise argparse.ArgumentTypeError("expected 0 < MIN <= MAX, got %r" % text)
    return lo, hi


def server_alive(pid):
    if pid is None:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="127.0.0.1:50051", help="HOST:PORT")
    ap.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--sizes", type=parse_range, default=(5, 40), metavar="MIN-MAX",
                    help="MiB of history of normal calls (default 5-40)")
    ap.add_argument("--oversized", type=int, default=5, help="oversized calls among them")
    ap.add_argument("--oversized-mib", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per call")
    ap.add_argument("--retry", metavar="JSON", help="service config with a retry policy")
    ap.add_argument("--server-pid", type=int, help="the server's pid, to tell deaths apart")
    ap.add_argument("--json", metavar="FILE", help="write the summary as JSON")
    args = ap.parse_args(argv)
    if args.calls < 1 or args.concurrency < 1 or not 0 <= args.oversized <= args.calls:
        ap.error("need calls >= 1, concurrency >= 1 and 0 <= oversized <= calls")

    rng = random.Random(args.seed)
    sizes = [rng.randint(*args.sizes) for _ in range(args.calls)]
    big = set()
    if args.oversized:
        step = args.calls / args.oversized
        big = {int(step * i + step / 2) for i in range(args.oversized)}
    for i in big:
        sizes[i] = args.oversized_mib

    host, _, port = args.target.rpartition(":")
    if not host or not port.isdigit():
        ap.error("invalid --target %r: expected HOST:PORT" % args.target)
    if args.protocol == "http":
        results = run_http(args, sizes, big, host, int(port))
    else:
        results = run_grpc(args, sizes, big)
    return summarize(args, results, big)


def run_http(args, sizes, big, host, port):
    results = [None] * args.calls

    def one(i):
        rid = "req-%d" % i
        t0 = time.monotonic()
        conn = http.client.HTTPConnection(host, port, timeout=args.timeout)
        try:
            conn.request("GET", "/features?customer=cust-%d&history_mib=%d" % (i, sizes[i]),
                         headers={"X-Request-Id": rid})
            r = conn.getresponse()
            body = r.read().decode("utf-8", "replace")
            status = "OK" if r.status == 200 else "HTTP %d" % r.status
            details = "" if r.status == 200 else body.strip()
            if r.status == 503:
                details += " (Retry-After: %s)" % r.getheader("Retry-After")
        except (OSError, http.client.HTTPException) as e:
            status, details = "CONNECTION", "%s: %s" % (type(e).__name__, e)
        finally:
            conn.close()
        results[i] = {"id": rid, "mib": sizes[i], "oversized": i in big, "status": status,
                      "details": details[:300], "seconds": round(time.monotonic() - t0, 3)}

    with futures.ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(one, range(args.calls)))
    return results


def run_grpc(args, sizes, big):
    options = [("grpc.enable_retries", 1 if args.retry else 0)]
    if args.retry:
        with open(args.retry) as f:
            options.append(("grpc.service_config", json.dumps(json.load(f))))
    channel = grpc.insecure_channel(args.target, options=options)
    try:
        grpc.channel_ready_future(channel).result(timeout=20)
    except grpc.FutureTimeoutError:
        sys.exit("loadgen: the server at %s is not answering" % args.target)
    stub = channel.unary_unary(features_pb.COMPUTE,
                               request_serializer=features_pb.FeatureRequest.SerializeToString,
                               response_deserializer=features_pb.FeatureResponse.FromString)
    results = [None] * args.calls
    lock = threading.Lock()

    def one(i):
        rid = "req-%d" % i
        req = features_pb.FeatureRequest(customer_id="cust-%d" % i, history_mib=sizes[i])
        t0 = time.monotonic()
        try:
            stub(req, timeout=args.timeout, metadata=(("x-request-id", rid),))
            out = ("OK", "")
        except grpc.RpcError as e:
            out = (e.code().name, e.details() or "")
        with lock:
            results[i] = {"id": rid, "mib": sizes[i], "oversized": i in big, "status": out[0],
                          "details": out[1][:300], "seconds": round(time.monotonic() - t0, 3)}

    with futures.ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(one, range(args.calls)))
    channel.close()
    return results


REFUSED = ("RESOURCE_EXHAUSTED", "HTTP 503")
LOST = ("UNAVAILABLE", "CONNECTION")


def summarize(args, results, big):
    alive = server_alive(args.server_pid)
    died = alive is False
    summary = {"calls": args.calls, "ok": 0, "resource_exhausted": 0, "other_errors": 0,
               "lost_to_death": 0, "server_alive": alive,
               "normal_failed": 0, "oversized_failed": 0, "oversized": []}
    for r in results:
        if r["status"] == "OK":
            summary["ok"] += 1
        elif r["status"] in REFUSED:
            summary["resource_exhausted"] += 1
        elif died and r["status"] in LOST:
            summary["lost_to_death"] += 1
        else:
            summary["other_errors"] += 1
        if r["status"] != "OK":
            summary["oversized_failed" if r["oversized"] else "normal_failed"] += 1
        if r["oversized"]:
            summary["oversized"].append(r)
    summary["results"] = results

    print("calls %d at concurrency %d: %d of %d-%d MiB, %d oversized of %d MiB"
          % (args.calls, args.concurrency, args.calls - len(big), args.sizes[0], args.sizes[1],
             len(big), args.oversized_mib))
    print("  %-22s %5d" % ("OK", summary["ok"]))
    print("  %-22s %5d" % ("503 + Retry-After" if args.protocol == "http"
                           else "RESOURCE_EXHAUSTED", summary["resource_exhausted"]))
    print("  %-22s %5d" % ("other errors", summary["other_errors"]))
    print("  %-22s %5d" % ("lost (process died)", summary["lost_to_death"]))
    print("  normal calls failed: %d, oversized failed: %d of %d"
          % (summary["normal_failed"], summary["oversized_failed"], len(big)))
    if alive is not None:
        print("  server process: %s" % ("alive" if alive else "DEAD"))
    for r in summary["oversized"]:
        print("  oversized %-8s %-20s %s" % (r["id"], r["status"], r["details"][:120]))
    others = {}
    for r in results:
        if r["status"] != "OK" and r["status"] not in REFUSED:
            others.setdefault(r["status"], r["details"])
    for code, details in sorted(others.items()):
        print("  e.g. %s: %s" % (code, details[:160]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
