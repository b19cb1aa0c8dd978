"""Sends the workload as Celery tasks from one process, as the app does on each save; writes each
acknowledgement (apply_async returned: the broker has it) as `<unix time> <scope> <path>`.
Usage: produce_celery.py EVENTS_FILE ACKS_FILE"""
import sys
import time

from celery_app import invalidate_workspace_cache_async

events = [l.split() for l in open(sys.argv[1]) if l.strip()]
out = open(sys.argv[2], "w")
t0 = time.time()
for scope, path in events:
    ws = scope.split(":", 1)[1]
    invalidate_workspace_cache_async.apply_async(args=[ws, "theme_edit"], countdown=5)
    out.write(f"{time.time():.6f} {scope} {path}\n")
out.close()
dt = time.time() - t0
print(f"sent={len(events)} seconds={dt:.3f} per_second={len(events) / dt:.0f}")
