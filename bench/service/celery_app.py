"""The anchor: the user's own pattern (../shared/seeds, "Debounced invalidation"): each save queues
`invalidate_workspace_cache_async.apply_async(args=[ws], countdown=5)`; the task takes a Redis lock
`cache_invalidation_lock:ws:<id>` with a 30 s TTL (`cache.add`), skips when it is held ("debounced"),
else purges the workspace (here: a BAN of its prefix on the same recorder staleguard purges)."""
import os

import redis
import requests
from celery import Celery

BROKER = os.environ["BENCH_REDIS_URL"]
CDN = os.environ["BENCH_CDN_URL"]
app = Celery("bench", broker=BROKER)
app.conf.worker_prefetch_multiplier = 4
app.conf.task_acks_late = False
cache = redis.Redis.from_url(BROKER)
session = requests.Session()


@app.task(name="invalidate_workspace_cache_async")
def invalidate_workspace_cache_async(workspace_id, reason):
    lock_key = f"cache_invalidation_lock:ws:{workspace_id}"
    # cache.add(key, "locked", timeout=30): set only if absent, with a TTL.
    if not cache.set(lock_key, "locked", nx=True, ex=30):
        return {"skipped": True, "reason": "debounced"}
    session.request("BAN", f"{CDN}/", headers={"x-ban-url": f"^/ws/{workspace_id}/"}, timeout=10)
    return {"invalidated": workspace_id}
