"""The workload both sides get: 20,000 saves over 100 workspaces, in bursts (a user saving a page
several times in a row), interleaved across workspaces; seeded, so both sides send the same events in
the same order. Prints one line per event: `scope path`."""
import random
import sys

events = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
scopes = int(sys.argv[2]) if len(sys.argv) > 2 else 100
rng = random.Random(15)
out = []
while len(out) < events:
    s = rng.randrange(scopes)
    page = rng.randrange(50)
    for _ in range(rng.randint(1, 20)):
        if len(out) == events:
            break
        out.append(f"ws:{s} /ws/{s}/page-{page}.html")
        if rng.random() < 0.3:
            page = rng.randrange(50)
print("\n".join(out))
