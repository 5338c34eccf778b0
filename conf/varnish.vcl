# Varnish in front of iiif-proxy, taking the purges iiif-proxy forwards
# (PurgeForward = ["ban http://127.0.0.1:6081"], or "purge …"). Tested with
# Debian's Varnish 7.1 by cmd/iiif-proxy/varnish_test.go, which runs this
# very file with its backend replaced.
#
# BAN:   iiif-proxy sends "BAN /" with X-Ban-Url: a regex matching every URL
#        of the purged image. Objects carry their URL in x-url so that the
#        ban lurker can test them in the background (a ban on req.url would
#        only be tested when each object is next requested, and would pile
#        up on the ban list).
# PURGE: iiif-proxy sends "PURGE /iiif/3/{id}/info.json" (and the other
#        forms, and the bases): return (purge) drops that object; its Host
#        is IIIFBaseURL's host when that is set, as Varnish's default hash
#        includes Host.
vcl 4.1;

import std;

backend iiif_proxy {
    .host = "127.0.0.1";
    .port = "12415";
}

# Who may purge and ban: iiif-proxy's address.
acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(405, "PURGE not allowed"));
        }
        return (purge);
    }
    if (req.method == "BAN") {
        if (client.ip !~ purgers) {
            return (synth(405, "BAN not allowed"));
        }
        if (!req.http.X-Ban-Url) {
            return (synth(400, "X-Ban-Url missing"));
        }
        if (std.ban("obj.http.x-url ~ " + req.http.X-Ban-Url)) {
            return (synth(200, "Banned"));
        }
        # A 400 is counted as a failed attempt by iiif-proxy.
        return (synth(400, std.ban_error()));
    }
}

sub vcl_backend_response {
    # For the ban lurker: bans test obj.http.x-url, never req.*.
    set beresp.http.x-url = bereq.url;
}

sub vcl_deliver {
    unset resp.http.x-url;
    # A stored object carries the X-Cache iiif-proxy sent when Varnish
    # fetched it (often MISS): on a Varnish hit that is history, and
    # dashboards reading X-Cache would count a hit as a render.
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
        set resp.http.X-Cache-Layer = "varnish";
    }
}
