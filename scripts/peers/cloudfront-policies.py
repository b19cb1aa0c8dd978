#!/usr/bin/env python3
"""A stand-in for the CloudFront API calls moto lacks: cache policies and response-headers policies.

    python3 scripts/peers/cloudfront-policies.py --upstream http://127.0.0.1:MOTO_PORT [--port 0]

Serves, on 127.0.0.1, CreateCachePolicy / GetCachePolicy / UpdateCachePolicy / ListCachePolicies and
the same four for response-headers policies (REST-XML, API version 2020-05-31), with the checks
CloudFront documents for them: a Name and MinTTL are required, MinTTL <= DefaultTTL <= MaxTTL, a
policy with every TTL 0 (caching disabled) may put nothing in the cache key, names are unique
(CachePolicyAlreadyExists), and an update must send the current ETag as If-Match
(PreconditionFailed otherwise). Every other request is forwarded unchanged to the upstream (moto),
so one endpoint serves the whole CloudFront API to a client. Prints `URL=http://127.0.0.1:PORT` on
stdout once listening. Used by crates/testkit (cloudfront_policies.rs); it stops when its parent's
stdin closes or on SIGTERM.
"""
import argparse
import datetime
import http.server
import itertools
import sys
import threading
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET

NS = "http://cloudfront.amazonaws.com/doc/2020-05-31/"
PREFIX = "/2020-05-31/"
KINDS = {
    "cache-policy": ("CachePolicy", "CachePolicyConfig", "CachePolicyList", "CachePolicySummary"),
    "response-headers-policy": (
        "ResponseHeadersPolicy",
        "ResponseHeadersPolicyConfig",
        "ResponseHeadersPolicyList",
        "ResponseHeadersPolicySummary",
    ),
}
STORE = {k: {} for k in KINDS}  # kind -> id -> dict(config=Element, etag=str, modified=str)
LOCK = threading.Lock()
COUNTER = itertools.count(1)


def local(tag):
    return tag.split("}", 1)[-1]


def child(el, name):
    for c in el:
        if local(c.tag) == name:
            return c
    return None


def text(el, *path):
    for p in path:
        el = child(el, p) if el is not None else None
    return (el.text or "").strip() if el is not None else None


def validate(kind, config):
    """None when valid, else (code, message) as CloudFront answers."""
    if text(config, "Name") in (None, ""):
        return ("InvalidArgument", "Name is required")
    if kind != "cache-policy":
        return None
    try:
        mn = int(text(config, "MinTTL"))
    except (TypeError, ValueError):
        return ("InvalidArgument", "MinTTL is required and must be a number")
    df = int(text(config, "DefaultTTL") or 86400)
    mx = int(text(config, "MaxTTL") or 31536000)
    if not (mn <= df <= mx):
        return ("InvalidArgument", f"MinTTL {mn} <= DefaultTTL {df} <= MaxTTL {mx} does not hold")
    params = child(config, "ParametersInCacheKeyAndForwardedToOrigin")
    if params is None:
        return ("InvalidArgument", "ParametersInCacheKeyAndForwardedToOrigin is required")
    for required in ("EnableAcceptEncodingGzip", "HeadersConfig", "CookiesConfig", "QueryStringsConfig"):
        if child(params, required) is None:
            return ("InvalidArgument", f"{required} is required")
    if mx == 0:
        keyed = [
            text(params, "EnableAcceptEncodingGzip") == "true",
            text(params, "EnableAcceptEncodingBrotli") == "true",
            text(params, "HeadersConfig", "HeaderBehavior") != "none",
            text(params, "CookiesConfig", "CookieBehavior") != "none",
            text(params, "QueryStringsConfig", "QueryStringBehavior") != "none",
        ]
        if any(keyed):
            return (
                "InvalidArgument",
                "The parameter ParametersInCacheKeyAndForwardedToOrigin cannot be set when caching is disabled (all TTLs 0)",
            )
    return None


def resource_xml(kind, rid, entry):
    root_name, config_name, _, _ = KINDS[kind]
    root = ET.Element(root_name, xmlns=NS)
    ET.SubElement(root, "Id").text = rid
    ET.SubElement(root, "LastModifiedTime").text = entry["modified"]
    config = ET.SubElement(root, config_name)
    for c in entry["config"]:
        config.append(c)
    return root


def strip_ns(el):
    for e in el.iter():
        e.tag = local(e.tag)
    return el


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = ""

    def log_message(self, *a):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def error(self, status, code, message):
        body = (
            f'<?xml version="1.0"?><ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type>'
            f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        ).encode()
        self.reply(status, body, [("Content-Type", "text/xml")])

    def xml(self, status, el, etag=None):
        body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(el)
        headers = [("Content-Type", "text/xml")]
        if etag:
            headers.append(("ETag", etag))
        self.reply(status, body, headers)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def route(self):
        path = self.path.split("?", 1)[0]
        if not path.startswith(PREFIX):
            return None
        parts = path[len(PREFIX):].strip("/").split("/")
        if parts[0] in KINDS and len(parts) <= 2:
            return parts[0], (parts[1] if len(parts) == 2 else None)
        return None

    def handle_policy(self, kind, rid):
        root_name, config_name, list_name, summary_name = KINDS[kind]
        method = self.command
        with LOCK:
            store = STORE[kind]
            if method == "GET" and rid is None:
                lst = ET.Element(list_name, xmlns=NS)
                ET.SubElement(lst, "MaxItems").text = "100"
                ET.SubElement(lst, "Quantity").text = str(len(store))
                if store:
                    items = ET.SubElement(lst, "Items")
                    for i, e in store.items():
                        s = ET.SubElement(items, summary_name)
                        ET.SubElement(s, "Type").text = "custom"
                        s.append(strip_ns(resource_xml(kind, i, e)))
                return self.xml(200, lst)
            if method == "POST" and rid is None:
                try:
                    config = strip_ns(ET.fromstring(self.body()))
                except ET.ParseError as e:
                    return self.error(400, "MalformedXML", str(e))
                if local(config.tag) != config_name:
                    return self.error(400, "MalformedInput", f"expected {config_name}")
                bad = validate(kind, config)
                if bad:
                    return self.error(400, *bad)
                name = text(config, "Name")
                if any(text(e["config"], "Name") == name for e in store.values()):
                    return self.error(409, f"{root_name}AlreadyExists", f"a {kind} named {name} exists")
                new_id = f"{next(COUNTER):08d}-{uuid.uuid4().hex[:4]}-sg-standin"
                entry = {"config": config, "etag": uuid.uuid4().hex[:14].upper(), "modified": now()}
                store[new_id] = entry
                return self.xml(201, resource_xml(kind, new_id, entry), entry["etag"])
            entry = store.get(rid or "")
            if entry is None:
                return self.error(404, f"NoSuch{root_name}", f"no {kind} {rid}")
            if method == "GET":
                return self.xml(200, resource_xml(kind, rid, entry), entry["etag"])
            if method == "PUT":
                if self.headers.get("If-Match") != entry["etag"]:
                    return self.error(412, "PreconditionFailed", "If-Match is not the current ETag")
                try:
                    config = strip_ns(ET.fromstring(self.body()))
                except ET.ParseError as e:
                    return self.error(400, "MalformedXML", str(e))
                bad = validate(kind, config)
                if bad:
                    return self.error(400, *bad)
                entry.update(config=config, etag=uuid.uuid4().hex[:14].upper(), modified=now())
                return self.xml(200, resource_xml(kind, rid, entry), entry["etag"])
            return self.error(405, "MethodNotAllowed", method)

    def forward(self):
        data = self.body()
        req = urllib.request.Request(self.upstream + self.path, data=data or None, method=self.command)
        for k, v in self.headers.items():
            if k.lower() not in ("host", "content-length", "connection", "accept-encoding"):
                req.add_header(k, v)
        if data and not req.has_header("Content-type"):
            # urllib would send a form content type, which moto then parses the body as.
            req.add_header("Content-Type", "text/xml")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, headers, body = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, headers, body = e.code, e.headers, e.read()
        keep = [(k, v) for k, v in headers.items() if k.lower() in ("content-type", "etag", "location")]
        self.reply(status, body, keep)

    def dispatch(self):
        r = self.route()
        if r:
            self.handle_policy(*r)
        else:
            self.forward()

    do_GET = do_POST = do_PUT = do_DELETE = dispatch


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    Handler.upstream = a.upstream.rstrip("/")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print(f"URL=http://127.0.0.1:{srv.server_address[1]}", flush=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    # Stop when the parent goes away (stdin closes).
    sys.stdin.read()


if __name__ == "__main__":
    main()
