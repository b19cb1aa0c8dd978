"""WSGI config of the staleguard Django fixture (gunicorn fixture_site.wsgi:application)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fixture_site.settings")

application = get_wsgi_application()
