#!/usr/bin/env python3
"""Hammer a running copy of this Django fixture and check that no asset URL a page handed out breaks.

Usage:
    python3 examples/django/check_live.py BASE_URL DURATION [--interval SECONDS] [--timeout SECONDS] [-v]

    BASE_URL   the server's root, e.g. http://127.0.0.1:8123 (loopback only: 127.0.0.0/8, ::1, localhost)
    DURATION   seconds to keep going (a float; > 0)

For DURATION seconds it loops: fetch BASE_URL + "/", parse every asset URL out of the HTML (<link href>,
<script src>, <img src>; same origin only) and fetch each of them; and in every round also re-fetch the
asset URLs of the FIRST page it saw, so a deploy that removes or breaks what an already-loaded page still
references (old hashed names) is caught. A request passes when it answers 2xx (redirects followed);
anything else (404, 500, a refused or reset connection, a timeout) fails. Rounds are --interval apart
(default 0.05 s).

Prints one line per failure (the first 50; then only the count), `distinct pages: K` (how many different
asset sets "/" returned, e.g. 2 when a deploy switched versions during the run), and last
`live: N passed, M failed`. Exit status: 0 when every request passed (and at least one was made), 1 on any
failure, 2 on usage errors. Standard library only.
"""

import argparse
import ipaddress
import sys
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

MAX_PRINTED_FAILURES = 50


class AssetParser(HTMLParser):
    """Collects link href, script src and img src, in document order."""

    WANTED = {"link": "href", "script": "src", "img": "src"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attr = self.WANTED.get(tag)
        if attr is None:
            return
        for name, value in attrs:
            if name == attr and value:
                self.urls.append(value.strip())

    handle_startendtag = handle_starttag


def is_loopback(host):
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def same_origin(url, base):
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def asset_urls(html, page_url):
    parser = AssetParser()
    parser.feed(html)
    parser.close()
    urls = []
    for raw in parser.urls:
        url = urljoin(page_url, raw).split("#", 1)[0]
        if urlsplit(url).scheme in ("http", "https") and same_origin(url, page_url) and url not in urls:
            urls.append(url)
    return urls


class Checker:
    def __init__(self, timeout):
        self.timeout = timeout
        self.passed = 0
        self.failed = 0

    def fail(self, url, why):
        self.failed += 1
        if self.failed <= MAX_PRINTED_FAILURES:
            print(f"FAIL {url}: {why}", flush=True)
        elif self.failed == MAX_PRINTED_FAILURES + 1:
            print("(further failures are only counted)", flush=True)

    def get(self, url):
        """Fetch url; returns the body (bytes) on a 2xx, None on a failure (counted)."""
        request = urllib.request.Request(url, headers={"User-Agent": "staleguard-check-live"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
                status = response.status
        except urllib.error.HTTPError as err:
            self.fail(url, f"HTTP {err.code}")
            return None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            self.fail(url, f"no answer ({reason})")
            return None
        if 200 <= status < 300:
            self.passed += 1
            return body
        self.fail(url, f"HTTP {status}")
        return None


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="check_live.py", description="Re-fetch a live Django fixture's page and assets for a while."
    )
    parser.add_argument("base_url")
    parser.add_argument("duration", type=float)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between rounds (0.05)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request (5)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each new asset set of /")
    args = parser.parse_args(argv)
    base = urlsplit(args.base_url)
    if base.scheme not in ("http", "https") or not base.hostname:
        parser.error(f"BASE_URL must be http(s)://HOST[:PORT], not {args.base_url!r}")
    if not is_loopback(base.hostname):
        parser.error(f"BASE_URL must be a loopback address (127.0.0.0/8, ::1, localhost), not {base.hostname!r}")
    if not args.duration > 0:
        parser.error("DURATION must be > 0")
    if args.interval < 0 or not args.timeout > 0:
        parser.error("--interval must be >= 0 and --timeout > 0")
    return args


def main(argv):
    args = parse_args(argv)
    page_url = args.base_url.rstrip("/") + "/"
    checker = Checker(args.timeout)
    first_assets = None
    seen_sets = []
    deadline = time.monotonic() + args.duration
    while True:
        body = checker.get(page_url)
        urls = []
        if body is not None:
            urls = asset_urls(body.decode("utf-8", "replace"), page_url)
            if first_assets is None:
                first_assets = urls
                if not urls:
                    checker.fail(page_url, "the first page references no asset")
            key = tuple(sorted(urls))
            if key not in seen_sets:
                seen_sets.append(key)
                if args.verbose:
                    print(f"page {len(seen_sets)}: " + " ".join(urls), flush=True)
        for url in urls:
            checker.get(url)
        for url in first_assets or []:
            if url not in urls:
                checker.get(url)
        if time.monotonic() >= deadline:
            break
        time.sleep(args.interval)
    print(f"distinct pages: {len(seen_sets)}")
    print(f"live: {checker.passed} passed, {checker.failed} failed")
    return 0 if checker.failed == 0 and checker.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
