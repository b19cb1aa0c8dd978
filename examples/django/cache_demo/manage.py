#!/usr/bin/env python
"""The app-cache demo: one view that renders a row of a database and caches the page in Django's cache
(Redis or memcached, keyed by staleguard's namespace version through ../staleguard_cache.py)."""
import os
import sys

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:0] = [here, os.path.dirname(here)]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
