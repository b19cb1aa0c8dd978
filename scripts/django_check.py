#!/usr/bin/env python3
"""Prove that Django itself reads the `staticfiles.json` staleguard wrote.

Usage:
    source scripts/pyenv.sh && ensure_venv
    python scripts/django_check.py OUT_DIR

OUT_DIR is a staleguard build output (the directory holding `staticfiles.json`). Django is configured
in-process with STATIC_ROOT=OUT_DIR and ManifestStaticFilesStorage (manifest_strict, DEBUG=False), the
manifest is loaded through Django's own storage, and for every key in `paths` the template
`{% load static %}{% static "KEY" %}` must render to `/static/` + the mapped value (Django returns it
percent-decoded; the output is HTML-unescaped before comparing) and the mapped file must exist under OUT_DIR. A key that is not in the
manifest must raise ValueError.

Prints one line per failure, then `django: N passed, M failed`. Exit status: 0 if every check passed
(and at least one did), 1 on any failure, 2 on usage errors or a missing/unreadable manifest.
"""

import html
import json
import os
import sys
import uuid

MANIFEST_NAME = "staticfiles.json"
STATIC_URL = "/static/"


def usage_error(msg):
    print(f"django_check: error: {msg}", file=sys.stderr)
    print("usage: python scripts/django_check.py OUT_DIR", file=sys.stderr)
    sys.exit(2)


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        usage_error("expected exactly one argument, the build output directory")
    out_dir = os.path.abspath(argv[1])
    if not os.path.isdir(out_dir):
        usage_error(f"OUT_DIR {out_dir!r} is not a directory")
    manifest_path = os.path.join(out_dir, MANIFEST_NAME)
    if not os.path.isfile(manifest_path):
        usage_error(
            f"{manifest_path} not found: build with the Django manifest enabled "
            f"(it must be written at the root of OUT_DIR as {MANIFEST_NAME})"
        )

    try:
        import django
        from django.conf import settings
    except ImportError:
        usage_error("Django is not importable; run `source scripts/pyenv.sh && ensure_venv` first")

    settings.configure(
        DEBUG=False,
        SECRET_KEY="staleguard-django-check",
        INSTALLED_APPS=["django.contrib.staticfiles"],
        STATIC_ROOT=out_dir,
        STATIC_URL=STATIC_URL,
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
        },
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [],
                "APP_DIRS": False,
                "OPTIONS": {},
            }
        ],
        USE_TZ=True,
    )
    django.setup()

    from django.contrib.staticfiles.storage import ManifestStaticFilesStorage, staticfiles_storage
    from django.template import engines

    passed = 0
    failures = []

    def ok():
        nonlocal passed
        passed += 1

    def fail(msg):
        failures.append(msg)
        print(f"FAIL {msg}")

    def finish():
        print(f"django: {passed} passed, {len(failures)} failed")
        return 1 if failures or passed == 0 else 0

    # --- the raw file: valid JSON object with Django's "paths"/"version"/"hash" layout --------------------
    try:
        with open(manifest_path, encoding="utf-8") as f:
            raw = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        print(f"django_check: error: cannot read {manifest_path}: {e}", file=sys.stderr)
        return 2
    if not isinstance(raw, dict) or not isinstance(raw.get("paths"), dict):
        fail(f'{MANIFEST_NAME}: top level must be an object with a "paths" object')
        return finish()
    if raw.get("version") == "1.1":
        ok()
    else:
        fail(f'{MANIFEST_NAME}: "version" is {raw.get("version")!r}, expected "1.1"')

    # --- through Django's own storage -------------------------------------------------------------------
    try:
        # First attribute access instantiates the configured backend; ManifestFilesMixin.__init__ loads the
        # manifest and raises ValueError itself when it cannot parse it or does not know its version.
        is_manifest_storage = isinstance(staticfiles_storage, ManifestStaticFilesStorage)
        paths, manifest_hash = staticfiles_storage.load_manifest()
    except ValueError as e:
        fail(f"Django refused the manifest: {e}")
        return finish()
    if is_manifest_storage:
        ok()
    else:
        fail(f"staticfiles_storage is {type(staticfiles_storage).__name__}, not ManifestStaticFilesStorage")
        return finish()
    hashed_files = staticfiles_storage.hashed_files  # what ManifestFilesMixin.__init__ loaded
    if paths == hashed_files and paths == raw["paths"]:
        ok()
    else:
        fail("staticfiles_storage.hashed_files differs from load_manifest() / the raw JSON paths")
    if staticfiles_storage.manifest_version == "1.1":
        ok()
    else:
        fail(f"Django's manifest_version is {staticfiles_storage.manifest_version!r}, expected '1.1'")
    if isinstance(staticfiles_storage.manifest_hash, str) and staticfiles_storage.manifest_hash == manifest_hash != "":
        ok()
    else:
        fail(f'manifest hash is empty: "hash" in {MANIFEST_NAME} must be a non-empty string')
    if staticfiles_storage.manifest_strict:
        ok()
    else:
        fail("ManifestStaticFilesStorage.manifest_strict is off; the missing-key check would be meaningless")

    if not hashed_files:
        fail(f'{MANIFEST_NAME}: "paths" is empty')

    engine = engines["django"]

    def render_static(key):
        # A string literal when possible (how templates are written); a variable for keys containing quotes.
        if '"' not in key and "\\" not in key:
            tpl = engine.from_string('{%% load static %%}{%% static "%s" %%}' % key)
            return tpl.render({})
        tpl = engine.from_string("{% load static %}{% static key %}")
        return tpl.render({"key": key})

    # --- every manifest entry ---------------------------------------------------------------------------
    for key in sorted(hashed_files):
        value = hashed_files[key]
        problems = []
        if not isinstance(value, str) or not value:
            fail(f"{key!r}: mapped value {value!r} is not a non-empty string")
            continue
        # HashedFilesMixin._url() percent-decodes its result, so the URL is STATIC_URL + the mapped path as-is.
        expected = STATIC_URL + value
        try:
            rendered = html.unescape(render_static(key))  # {% static %} autoescapes its output
        except Exception as e:  # noqa: BLE001 - report whatever Django raised for this key
            problems.append(f"{{% static %}} raised {type(e).__name__}: {e}")
        else:
            if rendered != expected:
                problems.append(f"{{% static %}} rendered {rendered!r}, expected {expected!r}")
        if not staticfiles_storage.exists(value) or not os.path.isfile(os.path.join(out_dir, value)):
            problems.append(f"mapped file {value!r} does not exist under {out_dir}")
        if problems:
            for p in problems:
                fail(f"{key!r}: {p}")
        else:
            ok()

    # --- manifest_strict: an unknown key must raise ValueError ------------------------------------------
    missing = f"staleguard-django-check/not-in-manifest-{uuid.uuid4().hex}.css"
    assert missing not in hashed_files
    try:
        rendered = render_static(missing)
    except ValueError:
        ok()
    except Exception as e:  # noqa: BLE001
        fail(f"{missing!r} (not in manifest): expected ValueError, got {type(e).__name__}: {e}")
    else:
        fail(f"{missing!r} (not in manifest): expected ValueError, rendered {rendered!r}")

    return finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
