//! `staleguard serve` behind a real Varnish (`scripts/peers/varnish.sh`, which `scripts/test.sh` installs):
//! fingerprinted files are cached and served as HITs; HTML is revalidated, so a new build shows through
//! the cache at once without any purge. The same through `staleguard edge`.

use std::path::Path;

use reqwest::blocking::Client;

use crate::nodes::{self, Kind};
use crate::serve::serve;
use crate::support::*;

fn fetch(c: &Client, url: &str, accept: &str) -> (u16, String, Vec<u8>) {
    let r = c.get(url).header("Accept-Encoding", accept).send().unwrap();
    let status = r.status().as_u16();
    let x_cache = r
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, x_cache, r.bytes().unwrap().to_vec())
}

fn bump(file: &Path, note: &str) {
    let mut text = std::fs::read_to_string(file).unwrap();
    text.push_str(note);
    std::fs::write(file, text).unwrap();
}

#[test]
fn immutable_files_are_hits_and_html_is_revalidated_through_varnish() {
    hits_and_revalidation(Kind::Varnish);
}

#[test]
fn immutable_files_are_hits_and_html_is_revalidated_through_the_edge() {
    hits_and_revalidation(Kind::Edge);
}

fn hits_and_revalidation(kind: Kind) {
    let t = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("examples/site"), &t.path().join("site"));
    build(t.path(), "site", "out", &[]);
    let out = t.path().join("out");
    let m = manifest(&out);
    let origin = serve(t.path(), &["out"]);
    let varnish = nodes::start(kind, &origin.base, t.path());
    let c = Client::new();

    // A fingerprinted file: MISS, then HIT, with the negotiated variant kept apart by Vary.
    let css = hashed(&m, "css/site.css");
    let url = format!("{}/{css}", varnish.url);
    let (st, x, body) = fetch(&c, &url, "br");
    assert_eq!((st, x.as_str()), (200, "MISS"));
    assert_eq!(body, std::fs::read(out.join(format!("{css}.br"))).unwrap());
    let (_, x, body) = fetch(&c, &url, "br");
    assert_eq!(x, "HIT");
    assert_eq!(body, std::fs::read(out.join(format!("{css}.br"))).unwrap());
    let (_, _, body) = fetch(&c, &url, "identity");
    assert_eq!(
        body,
        std::fs::read(out.join(&css)).unwrap(),
        "Vary kept the identity variant apart"
    );

    // HTML (no-cache): never a HIT, so a new build shows through at once.
    let page = format!("{}/index.html", varnish.url);
    let (_, x1, v1) = fetch(&c, &page, "identity");
    let (_, x2, _) = fetch(&c, &page, "identity");
    assert_ne!(x1, "HIT");
    assert_ne!(x2, "HIT");
    bump(&t.path().join("site/index.html"), "\n<!-- v2 -->\n");
    bump(&t.path().join("site/css/base.css"), "\n/* v2 */\n");
    build(t.path(), "site", "out", &[]);
    let m2 = manifest(&out);
    let want = m2["digest"].clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let v: serde_json::Value = serde_json::from_slice(
            &fetch(&c, &format!("{}/health/static-version", origin.base), "").2,
        )
        .unwrap();
        if v["digest"] == want {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "origin did not switch versions"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (_, _, v2) = fetch(&c, &page, "identity");
    assert_ne!(v1, v2, "Varnish served the old HTML after a new build");
    let new_css = hashed(&m2, "css/site.css");
    assert_ne!(new_css, css);
    assert!(
        String::from_utf8_lossy(&v2).contains(&new_css),
        "new HTML references the new CSS"
    );
    // The new CSS is a new URL: fetched once, then a HIT; the old one is still cached for old pages.
    let (st, x, _) = fetch(&c, &format!("{}/{new_css}", varnish.url), "br");
    assert_eq!((st, x.as_str()), (200, "MISS"));
    assert_eq!(
        fetch(&c, &format!("{}/{new_css}", varnish.url), "br").1,
        "HIT"
    );
    assert_eq!(fetch(&c, &url, "br").1, "HIT");
}
