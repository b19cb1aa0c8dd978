"""Django's cache framework, keyed by staleguard's app-cache namespace version.

staleguard bumps a counter per namespace (``[[app-cache]] strategy = "namespace"``, the default) before it
purges the CDN; these backends put the counter's current value in every cache key, so the first request
after a bump misses the old entries (which age out by TTL/LRU) and renders fresh content, which the CDN
then caches. Nothing is deleted, so there is no delete race.

settings.py::

    CACHES = {
        "default": {
            # Redis (Django >= 4.0, redis-py):
            "BACKEND": "staleguard_cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379",
            # or memcached (pymemcache):
            # "BACKEND": "staleguard_cache.PyMemcacheCache",
            # "LOCATION": ["10.0.0.1:11211", "10.0.0.2:11211"],
        }
    }
    STALEGUARD_CACHE_NAMESPACE = "global"        # the namespace this site's keys follow
    STALEGUARD_COUNTER_PREFIX = "staleguard:ns:"  # [[app-cache]] counter-prefix

staleguard.toml::

    [[app-cache]]
    name = "django"
    kind = "redis"                  # or "memcached", with servers = [every LOCATION]
    url = "redis://127.0.0.1:6379"

The counter is read on every cache operation (one small GET): a per-request or time-based memo would let
a request that starts right after the bump read the old version and hand the old page to the CDN just
purged. ``cache.get(key, version=...)`` and ``KEY_PREFIX`` keep working; for a per-scope namespace
(``ws:42``), use ``namespaced(cache, "ws:42").get(key)``. A missing counter is seeded with the current
time in milliseconds, as staleguard does, so a counter lost to a restart never goes back to a version
used before.
"""

import time

from django.conf import settings
from django.core.cache.backends.memcached import PyMemcacheCache as _PyMemcacheCache
from django.core.cache.backends.redis import RedisCache as _RedisCache


def _prefix():
    return getattr(settings, "STALEGUARD_COUNTER_PREFIX", "staleguard:ns:")


def _namespace():
    return getattr(settings, "STALEGUARD_CACHE_NAMESPACE", "global")


class _Versioned:
    """Mixed into a Django cache backend: ``_raw_version(counter_key)`` reads (or seeds) the counter."""

    staleguard_namespace = None

    def make_key(self, key, version=None):
        ns = self.staleguard_namespace or _namespace()
        current = self._raw_version(_prefix() + ns)
        return super().make_key("%s:%s:%s" % (ns, current, key), version=version)

    def make_and_validate_key(self, key, version=None):
        k = self.make_key(key, version=version)
        self.validate_key(k)
        return k


class RedisCache(_Versioned, _RedisCache):
    def _raw_version(self, counter):
        client = self._cache.get_client(counter, write=True)
        value = client.get(counter)
        if value is None:
            client.set(counter, int(time.time() * 1000), nx=True)
            value = client.get(counter)
        return int(value)


class PyMemcacheCache(_Versioned, _PyMemcacheCache):
    def _raw_version(self, counter):
        # The pool's HashClient picks the server this key lives on; staleguard bumps it on every server.
        value = self._cache.get(counter)
        if value is None:
            self._cache.add(counter, str(int(time.time() * 1000)).encode(), noreply=False)
            value = self._cache.get(counter)
        if isinstance(value, bytes):
            value = value.decode()
        return int(value)


class _Namespaced:
    def __init__(self, cache, namespace):
        self._cache, self._namespace = cache, namespace

    def __getattr__(self, name):
        original = getattr(self._cache, name)
        if not callable(original):
            return original

        def call(*args, **kwargs):
            previous = self._cache.staleguard_namespace
            self._cache.staleguard_namespace = self._namespace
            try:
                return original(*args, **kwargs)
            finally:
                self._cache.staleguard_namespace = previous

        return call


def namespaced(cache, namespace):
    """``cache`` with its keys under ``namespace`` (``ws:42``) instead of the site's."""
    return _Namespaced(cache, namespace)
