//! `Vary: Accept-Encoding` (RFC 9111 §4.1): each client gets the variant of its own
//! `Accept-Encoding`, each variant is stored once, and never served to another client.

use crate::origin::{Reply, Seen};
use crate::{Kind, Rig};

/// The body of the variant in `coding`: the text `body in CODING`, and for gzip that text really
/// gzipped (Varnish checks a gzip body it stores even with `http_gzip_support` off, and fails a
/// fetch whose body is not gzip); the brotli one is only labelled (nothing decodes it).
fn body(coding: &str) -> Vec<u8> {
    let text = format!("body in {coding}");
    if coding == "gzip" {
        gzip_stored(text.as_bytes())
    } else {
        text.into_bytes()
    }
}

/// `data` as a gzip member (RFC 1952) holding one stored (uncompressed) deflate block.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(data.len()).expect("a short body");
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.push(1); // BFINAL, BTYPE = stored
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// CRC-32 (IEEE, reflected), bit by bit: the bodies are a few bytes.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The origin's variant for a request: brotli when accepted, else gzip when accepted, else
/// identity.
fn variant(req: &Seen) -> Reply {
    let ae = req.header("accept-encoding").unwrap_or("");
    let accepts = |c: &str| {
        ae.split(',').any(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case(c)
        })
    };
    let reply = |coding: &str| {
        let r = Reply::ok(body(coding))
            .cc("max-age=60")
            .header("vary", "Accept-Encoding");
        if coding == "identity" {
            r
        } else {
            r.header("content-encoding", coding)
        }
    };
    if accepts("br") {
        reply("br")
    } else if accepts("gzip") {
        reply("gzip")
    } else {
        reply("identity")
    }
}

/// Clients sending `br, gzip`, `gzip` and no `Accept-Encoding` get br, gzip and identity: three
/// origin fetches, then every repeat (in another order) from the cache, each its own variant.
pub fn encoding(kind: &Kind) {
    let rig = Rig::start(kind);
    rig.origin.set_fn("/v", variant);
    let clients: [(Option<&str>, &str); 3] = [
        (Some("br, gzip"), "br"),
        (Some("gzip"), "gzip"),
        (None, "identity"),
    ];
    let check = |ae: Option<&str>, coding: &str, round: usize| {
        let headers: Vec<(&str, &str)> = ae.map(|v| ("accept-encoding", v)).into_iter().collect();
        let got = rig.client.send("GET", "/v", &headers);
        let what = format!("round {round}, Accept-Encoding {ae:?}");
        assert_eq!(got.status, 200, "{what}");
        assert_eq!(got.bytes, body(coding), "{what}: another's variant");
        let ce = (coding != "identity").then_some(coding);
        assert_eq!(got.header("content-encoding"), ce, "{what}");
        got
    };

    for (ae, coding) in clients {
        check(ae, coding, 0);
    }
    assert_eq!(rig.origin.count("/v"), 3, "one fetch per variant");
    for round in 1..=2 {
        for &(ae, coding) in clients.iter().rev() {
            let got = check(ae, coding, round);
            assert_eq!(
                got.x_cache(),
                "HIT",
                "round {round}, Accept-Encoding {ae:?}"
            );
        }
        for (ae, coding) in clients {
            check(ae, coding, round);
        }
    }
    assert_eq!(
        rig.origin.count("/v"),
        3,
        "a stored variant was fetched again"
    );
}
