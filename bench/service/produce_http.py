"""Sends the workload to `staleguard service` from one process over one keep-alive connection, one
event per POST (as an app would on each save), and writes each acknowledgement (202) as
`<unix time> <scope> <path>`. Usage: produce_http.py BASE_URL TOKEN EVENTS_FILE ACKS_FILE"""
import http.client
import json
import sys
import time
import urllib.parse

base, token, events_file, acks_file = sys.argv[1:5]
u = urllib.parse.urlparse(base)
conn = http.client.HTTPConnection(u.hostname, u.port)
headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
events = [l.split() for l in open(events_file) if l.strip()]
out = open(acks_file, "w")
t0 = time.time()
for scope, path in events:
    conn.request("POST", f"/v1/scopes/{scope}/invalidations", json.dumps({"paths": [path]}), headers)
    r = conn.getresponse()
    r.read()
    if r.status != 202:
        sys.exit(f"POST for {scope} answered {r.status}")
    out.write(f"{time.time():.6f} {scope} {path}\n")
out.close()
dt = time.time() - t0
print(f"sent={len(events)} seconds={dt:.3f} per_second={len(events) / dt:.0f}")
