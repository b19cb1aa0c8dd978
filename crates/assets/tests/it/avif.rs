//! AVIF variants (feature `avif`): the library's build on two photos of the corpus with
//! `formats = ["avif", "webp"]`. Headless Chromium (Debian's `chromium`) opens the built page from
//! disk and picks the AVIF `<source>` of each `<picture>`; a second page draws every AVIF variant and
//! its original, scaled to the variant's size, to canvases: each decodes at its declared size, and its
//! pixels are within a few levels of the original's.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use staleguard_assets::{BuildOptions, NoProgress, build};
use staleguard_core::config::{BuildConfig, ImageFormat, ImagesConfig};

fn photos() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../staleguard/tests/it/fixtures/photos")
}

/// What the page's script wrote between `SEEN` and `END`, from Chromium's DOM dump of `page`.
fn seen(page: &Path, width: u32) -> Value {
    let profile = tempfile::tempdir().unwrap();
    let o = Command::new("/usr/bin/chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--allow-file-access-from-files",
            // Canvases drawn from file:// images would be tainted (no getImageData) otherwise.
            "--disable-web-security",
            "--force-device-scale-factor=1",
            "--virtual-time-budget=10000",
            &format!("--window-size={width},900"),
            &format!("--user-data-dir={}", profile.path().display()),
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("cannot run /usr/bin/chromium");
    assert!(
        o.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let dom = String::from_utf8_lossy(&o.stdout);
    let json = dom
        .split_once("<pre id=\"out\">SEEN")
        .and_then(|(_, r)| r.split_once("END</pre>"))
        .map(|(j, _)| j.replace("&quot;", "\""))
        .unwrap_or_else(|| panic!("the page's script did not run:\n{dom}"));
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}\n{dom}"))
}

#[test]
fn chromium_picks_and_decodes_the_avif_variants() {
    assert!(
        Path::new("/usr/bin/chromium").is_file(),
        "headless Chromium is missing: run `scripts/peers/chromium.sh install` (scripts/test.sh does)"
    );
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir_all(src.join("img")).unwrap();
    for p in ["adwaita.webp", "truchet.png"] {
        std::fs::copy(photos().join(p), src.join("img").join(p)).unwrap();
    }
    std::fs::write(
        src.join("index.html"),
        r#"<!doctype html><html><body>
<img src="img/adwaita.webp" alt="adwaita">
<img src="img/truchet.png" alt="truchet">
<pre id="out"></pre>
<script>
addEventListener('load', () => {
  const seen = [...document.images].map(i => ({src: i.currentSrc, w: i.naturalWidth}));
  document.getElementById('out').textContent = 'SEEN' + JSON.stringify(seen) + 'END';
});
</script></body></html>"#,
    )
    .unwrap();
    let config = BuildConfig {
        images: ImagesConfig {
            enabled: true,
            widths: vec![320],
            formats: vec![ImageFormat::Avif, ImageFormat::Webp],
            min_bytes: 0,
            eager: 10,
            ..Default::default()
        },
        ..Default::default()
    };
    let out = t.path().join("out");
    let opts = BuildOptions {
        source: src.clone(),
        out: out.clone(),
        cache_dir: t.path().join("cache"),
        config,
        git: None,
        now_unix: 0,
        builder: "avif-test".into(),
        clock_unix: 0,
    };
    let started = std::time::Instant::now();
    let report = build(&opts, &NoProgress).unwrap();
    eprintln!("build with AVIF (dev profile): {:?}", started.elapsed());
    assert_eq!(report.images, 2, "{:?}", report.warnings);
    let m: Value =
        serde_json::from_slice(&std::fs::read(out.join("staleguard.manifest.json")).unwrap())
            .unwrap();
    // Each AVIF variant with its original, which the page scales to the variant's size.
    let mut pairs = Vec::new();
    for logical in ["img/adwaita.webp", "img/truchet.png"] {
        let vs = m["images"][logical].as_array().unwrap();
        let original = &m["files"][logical]["path"];
        for a in vs.iter().filter(|v| v["format"] == "avif") {
            let bytes = std::fs::read(out.join(a["path"].as_str().unwrap())).unwrap();
            assert_eq!(&bytes[4..12], b"ftypavif", "{a}");
            assert_eq!(bytes.len() as u64, a["bytes"].as_u64().unwrap());
            pairs.push(serde_json::json!([
                a["path"],
                original,
                a["width"],
                a["height"]
            ]));
        }
    }
    // The full width and 320 px of each.
    assert_eq!(pairs.len(), 4, "{pairs:?}");

    // The page: the browser takes AVIF, at the width its viewport calls for.
    let seen_page = seen(&out.join("index.html"), 600);
    for s in seen_page.as_array().unwrap() {
        let src = s["src"].as_str().unwrap();
        assert!(src.ends_with(".avif"), "{seen_page}");
    }

    // Every variant decodes at its size and shows what the WebP shows.
    let check = out.join("check.html");
    let imgs: String = pairs
        .iter()
        .map(|p| {
            format!(
                "<img src=\"{}\"><img src=\"{}\">",
                p[0].as_str().unwrap(),
                p[1].as_str().unwrap()
            )
        })
        .collect();
    std::fs::write(
        &check,
        format!(
            r#"<!doctype html><html><body>{imgs}<pre id="out"></pre><script>
const pairs = {};
const pixels = (img, w, h) => {{
  const c = document.createElement('canvas'); c.width = w; c.height = h;
  const g = c.getContext('2d'); g.imageSmoothingQuality = 'high'; g.drawImage(img, 0, 0, w, h);
  return g.getImageData(0, 0, w, h).data;
}};
addEventListener('load', () => {{
  const out = document.getElementById('out');
  try {{
    const imgs = [...document.images];
    const seen = pairs.map(([avif, original, w, h], k) => {{
      const [i, o] = [imgs[2 * k], imgs[2 * k + 1]];
      const [a, b] = [pixels(i, w, h), pixels(o, w, h)];
      let sum = 0, n = 0;
      for (let p = 0; p < a.length; p += 4) {{
        for (let c = 0; c < 3; c++) {{ sum += Math.abs(a[p + c] - b[p + c]); n++; }}
      }}
      return {{avif, w: i.naturalWidth, h: i.naturalHeight, want: [w, h], diff: sum / n}};
    }});
    out.textContent = 'SEEN' + JSON.stringify(seen) + 'END';
  }} catch (e) {{ out.textContent = 'ERROR ' + e; }}
}});
</script></body></html>"#,
            serde_json::to_string(&pairs).unwrap()
        ),
    )
    .unwrap();
    let seen_check = seen(&check, 800);
    let rows = seen_check.as_array().unwrap();
    assert_eq!(rows.len(), pairs.len(), "{seen_check}");
    for r in rows {
        assert_eq!(serde_json::json!([r["w"], r["h"]]), r["want"], "{r}");
        let diff = r["diff"].as_f64().unwrap();
        // A wrong decode is tens of levels off; encoding and the browser's scaling, a few.
        assert!(
            diff < 8.0,
            "{}: {diff:.2} levels from its original",
            r["avif"]
        );
    }
}
