"""The CDN stand-in both sides purge: answers PURGE and BAN (the wire format of staleguard's varnish
provider: `PURGE /path`, `BAN /` with `x-ban-url: ^/ws/1/`) with 200 and logs each with its time:
`<unix time> <method> <path> <x-ban-url or ->`. Usage: recorder.py PORT LOGFILE"""
import http.server
import sys
import threading
import time

lock = threading.Lock()
log = open(sys.argv[2], "a", buffering=1)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_one(self):
        n = int(self.headers.get("content-length") or 0)
        if n:
            self.rfile.read(n)
        with lock:
            log.write(f"{time.time():.6f} {self.command} {self.path} {self.headers.get('x-ban-url') or '-'}\n")
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    do_PURGE = do_BAN = do_GET = handle_one

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
