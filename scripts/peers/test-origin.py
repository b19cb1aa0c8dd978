#!/usr/bin/env python3
"""scripts/peers/test-origin.py: a tiny origin for scripts/peers/ tests (standard library only).

    python3 scripts/peers/test-origin.py DOCROOT [PORT]     (PORT 0 or absent: a free one)

Binds 127.0.0.1 only and prints `listening on http://127.0.0.1:PORT` on stdout when ready.
Serves DOCROOT with what a cache needs to be tested against, unlike `python3 -m http.server`:
  - Cache-Control: $ORIGIN_CACHE_CONTROL (default "public, max-age=60"), or the text of a sidecar
    file `<file>.cache-control` for that one file
  - a strong ETag (sha256 of the bytes sent) and If-None-Match -> 304
  - Last-Modified, and If-Modified-Since -> 304 when there is no If-None-Match
  - Accept-Encoding negotiation over a `<file>.br` sidecar (Content-Encoding: br, Vary: Accept-Encoding)
  - `xkey:` with the words of a sidecar file `<file>.xkey` (for vmod_xkey)
  - `X-Origin-Hits: N` (requests this process served for that path)
Every request is appended to $ORIGIN_LOG, when set, as one line:
  METHOD PATH ae=<Accept-Encoding> inm=<If-None-Match> ims=<If-Modified-Since> -> STATUS
"""
import email.utils
import hashlib
import http.server
import os
import socketserver
import sys
import threading

ROOT = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else sys.exit(__doc__)
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 0
DEFAULT_CC = os.environ.get("ORIGIN_CACHE_CONTROL", "public, max-age=60")
LOG = os.environ.get("ORIGIN_LOG")
SIDECARS = (".br", ".xkey", ".cache-control")
hits = {}
lock = threading.Lock()


def read_text(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "test-origin"

    def log_message(self, *args):
        pass

    def log_request_line(self, status):
        if LOG:
            h = self.headers
            with lock, open(LOG, "a", encoding="utf-8") as f:
                f.write("%s %s ae=%s inm=%s ims=%s -> %s\n" % (
                    self.command, self.path, h.get("Accept-Encoding", "-"),
                    h.get("If-None-Match", "-"), h.get("If-Modified-Since", "-"), status))

    def do_GET(self):
        rel = self.path.split("?", 1)[0].lstrip("/")
        path = os.path.normpath(os.path.join(ROOT, rel))
        if rel.endswith("/") or rel == "":
            path = os.path.join(path, "index.html")
        if not path.startswith(ROOT) or not os.path.isfile(path) or path.endswith(SIDECARS):
            self.log_request_line(404)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with lock:
            hits[rel] = hits.get(rel, 0) + 1
            n = hits[rel]
        encoding = None
        body_path = path
        if "br" in self.headers.get("Accept-Encoding", "") and os.path.isfile(path + ".br"):
            encoding, body_path = "br", path + ".br"
        with open(body_path, "rb") as f:
            body = f.read()
        etag = '"%s"' % hashlib.sha256(body).hexdigest()[:32]
        mtime = int(os.stat(path).st_mtime)
        last_modified = email.utils.formatdate(mtime, usegmt=True)
        status = 200
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        if inm is not None:
            if etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*":
                status = 304
        elif ims is not None:
            try:
                if mtime <= email.utils.parsedate_to_datetime(ims).timestamp():
                    status = 304
            except (TypeError, ValueError):
                pass
        self.log_request_line(status)
        self.send_response(status)
        self.send_header("Cache-Control", read_text(path + ".cache-control") or DEFAULT_CC)
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", last_modified)
        self.send_header("Vary", "Accept-Encoding")
        self.send_header("X-Origin-Hits", str(n))
        xkey = read_text(path + ".xkey")
        if xkey:
            self.send_header("xkey", xkey)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        if status == 304:
            self.end_headers()
            return
        self.send_header("Content-Type", "text/css" if path.endswith(".css") else "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    server = Server(("127.0.0.1", PORT), Handler)
    print("listening on http://127.0.0.1:%d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
