"""An allocation-heavy pure-Python workload: dicts, lists, strings, json.

    py_alloc.py [ROUNDS]

What a request handler of a data service does, many times over: build
records, index them, serialise and parse them, keep a few.
"""
import json
import sys

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
kept = []
total = 0
for r in range(rounds):
    rows = [{"id": i, "name": "customer-%d" % i, "tags": ["a", "b", str(i % 7)],
             "amount": i * 1.5} for i in range(4000)]
    index = {row["name"]: row for row in rows}
    text = json.dumps(rows)
    back = json.loads(text)
    words = " ".join(row["name"] for row in back).split()
    total += len(index) + len(words) + len(text)
    if r % 10 == 0:
        kept.append(back[:100])
print(total, len(kept))
