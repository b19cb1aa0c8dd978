"""Settings, URLs and the view in one module. Environment:

- DEMO_CACHE: `redis` or `memcached`
- DEMO_CACHE_LOCATION: `redis://127.0.0.1:6379`, or `127.0.0.1:11211[,127.0.0.1:11212]`
- DEMO_DB: the SQLite file holding `content(body)`
"""
import os
import sqlite3

from django.core.cache import cache
from django.http import HttpResponse
from django.urls import path

DEBUG = False
ALLOWED_HOSTS = ["*"]
SECRET_KEY = "demo-not-secret"
ROOT_URLCONF = "demo"
INSTALLED_APPS = []
MIDDLEWARE = []
DATABASES = {}
USE_TZ = True

_kind = os.environ.get("DEMO_CACHE", "redis")
_location = os.environ.get("DEMO_CACHE_LOCATION", "redis://127.0.0.1:6379")
CACHES = {
    "default": {
        "BACKEND": "staleguard_cache.RedisCache" if _kind == "redis" else "staleguard_cache.PyMemcacheCache",
        "LOCATION": _location if _kind == "redis" else _location.split(","),
        "KEY_PREFIX": "demo",
        "TIMEOUT": 3600,
    }
}
STALEGUARD_CACHE_NAMESPACE = "global"


def home(request):
    html = cache.get("home")
    if html is None:
        with sqlite3.connect(os.environ["DEMO_DB"]) as db:
            (body,) = db.execute("SELECT body FROM content").fetchone()
        html = "<!doctype html><title>demo</title><p>%s</p>\n" % body
        cache.set("home", html)
    r = HttpResponse(html)
    # The CDN may keep it an hour: only a purge makes it fetch again.
    r["Cache-Control"] = "public, max-age=0, s-maxage=3600"
    return r


urlpatterns = [path("", home)]
