"""Settings of the staleguard Django fixture (Django 5.2, WhiteNoise 6).

Everything a test varies comes from the environment:
    SG_STATIC_ROOT   STATIC_ROOT: where collectstatic writes and WhiteNoise serves from
                     (default: <tmp>/staleguard-django-static)
    SG_STORAGE       the "staticfiles" storage backend (default: the plain StaticFilesStorage; staleguard's
                     output is served with django.contrib.staticfiles.storage.ManifestStaticFilesStorage,
                     which reads STATIC_ROOT/staticfiles.json)
    SG_STATIC_URL    STATIC_URL (default: /static/)
    SG_SECRET_KEY    SECRET_KEY (default: a fixed development key)
    SG_DB_PATH       the sqlite file (default: <tmp>/staleguard-django-fixture.sqlite3); the home view and
                     collectstatic never open it
    SG_WHITENOISE_AUTOREFRESH=1   WhiteNoise re-scans STATIC_ROOT on every request (default: off, i.e. the
                     file list is read once at startup, as in production)
"""

import os
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("SG_SECRET_KEY", "django-insecure-staleguard-fixture-development-key")

DEBUG = False

ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "site_app",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "fixture_site.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "fixture_site.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get(
            "SG_DB_PATH", os.path.join(tempfile.gettempdir(), "staleguard-django-fixture.sqlite3")
        ),
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = os.environ.get("SG_STATIC_URL", "/static/")
STATIC_ROOT = os.environ.get(
    "SG_STATIC_ROOT", os.path.join(tempfile.gettempdir(), "staleguard-django-static")
)

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": os.environ.get("SG_STORAGE", "django.contrib.staticfiles.storage.StaticFilesStorage"),
    },
}

WHITENOISE_AUTOREFRESH = os.environ.get("SG_WHITENOISE_AUTOREFRESH") == "1"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
