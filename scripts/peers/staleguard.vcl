vcl 4.1;
# scripts/peers/staleguard.vcl: a CDN node for staleguard's tests (a template: scripts/peers/varnish.sh
# replaces @BACKEND_HOST@ and @BACKEND_PORT@ and compiles the result with `varnishd -C`).
#
# Caching is Varnish's builtin behaviour, untouched: TTLs come from the origin's Cache-Control /
# Expires (s-maxage, max-age; no-store, no-cache, private, Set-Cookie and Vary: * are not cached;
# no header at all means default_ttl, 120 s), Vary is kept (one variant per distinct value of the
# varied request headers), and conditional requests (If-None-Match, If-Modified-Since) are answered
# from the cache on a hit and handled by Varnish's own fetch logic on a miss or pass. This file adds
# only invalidation and two response headers; every subroutine falls through to the builtin one.
#
# Invalidation, accepted from loopback only (ACL `purgers`, else 403):
#   PURGE /some/url                              drop that URL (every Vary variant)      -> 200 "Purged /some/url"
#   PURGE / with  xkey-purge: k1 k2              drop every object tagged k1 or k2       -> 200 "Invalidated N objects"
#   PURGE / with  xkey-softpurge: k1 k2          expire them, grace still serves them    -> 200 "Softpurged N objects"
#   BAN / with    x-ban-url: <regex>             ban URLs (of this Host) matching regex  -> 200 "Ban added"
# Keys for xkey come from the origin's `xkey:` response header (space-separated).
# The ban only reads obj.* fields, so the ban lurker evaluates and retires it in the background. The
# regex is spliced into the ban expression unquoted (std.ban() keeps quotes literally, and a quoted
# value then never matches), so it may not contain spaces.
#
# Response headers: X-Cache: HIT|MISS (MISS also for pass and hit-for-miss), X-Cache-Hits: N.
# One change to caching: a background refresh that gets a 5xx is abandoned (the stale object stays
# within its grace), as stale-if-error would have it.

import std;
import xkey;

backend origin {
    .host = "@BACKEND_HOST@";
    .port = "@BACKEND_PORT@";
}

acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        if (req.http.xkey-purge) {
            set req.http.x-n = xkey.purge(req.http.xkey-purge);
            return (synth(200, "Invalidated " + req.http.x-n + " objects"));
        }
        if (req.http.xkey-softpurge) {
            set req.http.x-n = xkey.softpurge(req.http.xkey-softpurge);
            return (synth(200, "Softpurged " + req.http.x-n + " objects"));
        }
        return (purge);
    }
    if (req.method == "BAN") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        if (!req.http.x-ban-url) {
            return (synth(400, "Missing x-ban-url header"));
        }
        if (std.ban("obj.http.x-host == " + req.http.host +
                    " && obj.http.x-url ~ " + req.http.x-ban-url)) {
            return (synth(200, "Ban added"));
        }
        return (synth(400, "Bad ban: " + std.ban_error()));
    }
    # Anything else: the builtin vcl_recv.
}

sub vcl_purge {
    return (synth(200, "Purged " + req.url));
}

sub vcl_backend_response {
    # Copies of the request's URL and Host on the object, for lurker-friendly bans.
    set beresp.http.x-url = bereq.url;
    set beresp.http.x-host = bereq.http.host;
    # A failed background refresh (a 5xx while serving from grace) keeps the stale object instead
    # of replacing it with the error, which the builtin VCL would make a hit-for-miss: what
    # stale-if-error asks for, within Varnish's grace (default_grace, 10 s; Varnish does not read
    # stale-if-error itself).
    if (bereq.is_bgfetch && beresp.status >= 500) {
        return (abandon);
    }
    # No TTL, grace or Vary changes: the builtin vcl_backend_response follows.
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    set resp.http.X-Cache-Hits = obj.hits;
    unset resp.http.x-url;
    unset resp.http.x-host;
}
