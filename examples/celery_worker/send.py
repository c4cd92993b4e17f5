"""Queue N ordinary tasks and one poison task, wait, print what happened.

    python3 send.py --normal 20 --poison 1 --timeout 60 [--poison-id ID]

Prints one JSON line: {"ok": [...ids...], "failed": {id: "Type: message"},
"pending": [...], "poison": [...ids...]}. Exit 0 when it could talk to the
broker.
"""
import argparse
import json
import sys
import time

from app import crunch, explode


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--normal", type=int, default=20)
    ap.add_argument("--poison", type=int, default=1)
    ap.add_argument("--poison-mib", type=int, default=2048)
    ap.add_argument("--poison-kind", choices=("blocks", "mixed"), default="blocks",
                    help="what the poison task builds (see tasks.explode)")
    ap.add_argument("--poison-id", default=None, help="task id of the first poison task")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--no-wait", action="store_true")
    a = ap.parse_args()

    sent, poison = [], []
    for i in range(a.poison):
        tid = a.poison_id if (a.poison_id and i == 0) else None
        r = explode.apply_async(kwargs={"mib": a.poison_mib, "kind": a.poison_kind}, task_id=tid)
        sent.append(r)
        poison.append(r.id)
    for i in range(a.normal):
        sent.append(crunch.apply_async(args=(i,)))
    if a.no_wait:
        print(json.dumps({"sent": [r.id for r in sent], "poison": poison}))
        return 0

    deadline = time.monotonic() + a.timeout
    ok, failed = [], {}
    todo = list(sent)
    while todo and time.monotonic() < deadline:
        rest = []
        for r in todo:
            st = r.state
            if st == "SUCCESS":
                ok.append(r.id)
            elif st == "FAILURE":
                e = r.result
                failed[r.id] = "%s: %s" % (type(e).__name__, e)
            else:
                rest.append(r)
        todo = rest
        if todo:
            time.sleep(0.2)
    print(json.dumps({"ok": ok, "failed": failed, "pending": [r.id for r in todo],
                      "poison": poison}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
