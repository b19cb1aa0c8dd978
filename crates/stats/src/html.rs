//! `--html FILE`: the report as one self-contained page (inline CSS and SVG; no script, font or image
//! from anywhere), readable offline and printable.

use std::fmt::Write;

use crate::report::{Report, Summary, TopList};

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".to_string(), |v| format!("{:.1} %", v * 100.0))
}

/// Bytes in B, kB, MB, GB (decimal).
pub fn human_bytes(b: u64) -> String {
    let f = b as f64;
    match b {
        0..1_000 => format!("{b} B"),
        1_000..1_000_000 => format!("{:.1} kB", f / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", f / 1e6),
        _ => format!("{:.2} GB", f / 1e9),
    }
}

const W: f64 = 720.0;
const H: f64 = 220.0;
const PAD_L: f64 = 48.0;
const PAD_B: f64 = 28.0;
const PAD_T: f64 = 12.0;

/// A line chart of a ratio over time (0-100 %), with the target as a dashed line.
fn ratio_chart(
    id: &str,
    title: &str,
    points: &[(i64, String, Option<f64>)],
    target: f64,
) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<figure><figcaption>{}</figcaption><svg id="{id}" class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        esc(title),
        esc(title)
    );
    let plot_w = W - PAD_L - 8.0;
    let plot_h = H - PAD_T - PAD_B;
    let y = |v: f64| PAD_T + plot_h * (1.0 - v.clamp(0.0, 1.0));
    for t in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let _ = write!(
            s,
            r##"<line x1="{PAD_L}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#555">{}%</text>"##,
            W - 8.0,
            PAD_L - 4.0,
            y(t) + 4.0,
            (t * 100.0) as u32,
            y = y(t)
        );
    }
    let _ = write!(
        s,
        r##"<line class="target" x1="{PAD_L}" x2="{}" y1="{t:.1}" y2="{t:.1}" stroke="#c0392b" stroke-dasharray="5 4"/>"##,
        W - 8.0,
        t = y(target)
    );
    // Placed by time, so a quiet stretch shows as a gap in the points, not as a steeper line.
    let t0 = points.first().map_or(0, |p| p.0);
    let t1 = points.last().map_or(0, |p| p.0);
    let x = |i: usize| {
        if t1 == t0 {
            PAD_L + plot_w / 2.0
        } else {
            PAD_L + plot_w * (points[i].0 - t0) as f64 / (t1 - t0) as f64
        }
    };
    let mut path = String::new();
    for (i, (_, _, v)) in points.iter().enumerate() {
        if let Some(v) = v {
            let cmd = if path.is_empty() { 'M' } else { 'L' };
            let _ = write!(path, "{cmd}{:.1},{:.1} ", x(i), y(*v));
        }
    }
    if !path.is_empty() {
        let _ = write!(
            s,
            r##"<path d="{}" fill="none" stroke="#2471a3" stroke-width="2"/>"##,
            path.trim_end()
        );
    }
    for (i, (_, label, v)) in points.iter().enumerate() {
        if let Some(v) = v {
            let _ = write!(
                s,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#2471a3"><title>{}: {}</title></circle>"##,
                x(i),
                y(*v),
                esc(label),
                pct(Some(*v))
            );
        }
    }
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = write!(
            s,
            r##"<text x="{PAD_L}" y="{}" font-size="11" fill="#555">{}</text><text x="{}" y="{}" font-size="11" text-anchor="end" fill="#555">{}</text>"##,
            H - 8.0,
            esc(&first.1),
            W - 8.0,
            H - 8.0,
            esc(&last.1)
        );
    }
    s.push_str("</svg></figure>");
    s
}

/// Horizontal bars of a top list.
fn bar_chart(id: &str, title: &str, list: &TopList) -> String {
    let rows = list.urls.len().max(1);
    let h = 24.0 * rows as f64 + 16.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<figure><figcaption>{}</figcaption><svg id="{id}" class="chart" viewBox="0 0 {W} {h}" width="{W}" height="{h}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        esc(title),
        esc(title)
    );
    let max = list.urls.iter().map(|u| u.count).max().unwrap_or(1).max(1) as f64;
    let label_w = 300.0;
    if list.urls.is_empty() {
        let _ = write!(
            s,
            r##"<text x="8" y="20" font-size="12" fill="#555">none</text>"##
        );
    }
    for (i, u) in list.urls.iter().enumerate() {
        let y = 8.0 + 24.0 * i as f64;
        let w = (W - label_w - 70.0) * u.count as f64 / max;
        let mut label = u.url.clone();
        if label.chars().count() > 44 {
            label = format!(
                "…{}",
                label
                    .chars()
                    .rev()
                    .take(43)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<String>()
            );
        }
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end" font-family="monospace">{}</text><rect x="{label_w}" y="{y:.1}" width="{w:.1}" height="16" fill="#e67e22"><title>{}: {} requests, {}</title></rect><text x="{:.1}" y="{:.1}" font-size="12">{}</text>"##,
            label_w - 6.0,
            y + 12.0,
            esc(&label),
            esc(&u.url),
            u.count,
            human_bytes(u.bytes),
            label_w + w + 6.0,
            y + 12.0,
            u.count
        );
    }
    s.push_str("</svg></figure>");
    s
}

fn summary_row(name: &str, s: &Summary) -> String {
    format!(
        "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(name),
        s.requests,
        human_bytes(s.bytes),
        pct(s.hit_ratio),
        pct(s.byte_hit_ratio),
        s.origin_requests,
        pct(s.origin_ratio),
        human_bytes(s.origin_bytes),
        pct(s.error_ratio)
    )
}

fn top_table(title: &str, list: &TopList, ages: bool) -> String {
    let mut s = format!(
        "<h3>{} <small>({} requests{})</small></h3>",
        esc(title),
        list.total,
        if list.max_error > 0 {
            format!(", counts may be low by up to {}", list.max_error)
        } else {
            String::new()
        }
    );
    if list.urls.is_empty() {
        s.push_str("<p class=\"ok\">none</p>");
        return s;
    }
    s.push_str("<table><tr><th>URL</th><th>requests</th><th>");
    s.push_str(if ages { "largest Age" } else { "bytes" });
    s.push_str("</th></tr>");
    for u in &list.urls {
        let _ = write!(
            s,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(&u.url),
            u.count,
            if ages {
                format!("{} s", u.max_age.unwrap_or(0))
            } else {
                human_bytes(u.bytes)
            }
        );
    }
    s.push_str("</table>");
    s
}

/// The page.
pub fn render(r: &Report, hit_target: f64, origin_target: f64) -> String {
    let mut s = String::from(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>staleguard stats</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:64em;padding:0 1em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}code{font-size:.95em}
.ok{color:#1e8449}.bad{color:#c0392b;font-weight:bold}.na{color:#777}
figure{margin:1em 0}figcaption{font-weight:bold;margin-bottom:.3em}svg.chart{max-width:100%;height:auto;background:#fcfcfc;border:1px solid #eee}
</style></head><body>
<h1>staleguard stats</h1>
"#,
    );
    let _ = write!(
        s,
        "<p>{} request(s) from {} file(s), {} to {} (UTC), buckets of {} s.</p>",
        r.total.requests,
        r.files.len(),
        esc(r.first.as_deref().unwrap_or("–")),
        esc(r.last.as_deref().unwrap_or("–")),
        r.bucket_seconds
    );
    s.push_str(if r.crossed {
        "<p class=\"bad\" id=\"verdict\">A threshold is crossed.</p>"
    } else {
        "<p class=\"ok\" id=\"verdict\">Every threshold is met.</p>"
    });
    s.push_str(
        "<h2>Thresholds</h2><table><tr><th>check</th><th>target</th><th>value</th><th></th></tr>",
    );
    for c in &r.checks {
        let value = match (c.name, c.value) {
            (_, None) => "–".to_string(),
            (n, Some(v)) if n.ends_with("ratio") => pct(Some(v)),
            (_, Some(v)) => format!("{v}"),
        };
        let (class, word) = match c.ok {
            Some(true) => ("ok", "met"),
            Some(false) => ("bad", "CROSSED"),
            None => ("na", "not judged"),
        };
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{word}</td></tr>",
            c.name,
            esc(&c.target),
            value
        );
    }
    s.push_str("</table>");
    s.push_str("<h2>Traffic by route class</h2><table><tr><th></th><th>requests</th><th>bandwidth</th><th>hit ratio</th><th>byte hit ratio</th><th>origin requests</th><th>origin ratio</th><th>origin bytes</th><th>5xx</th></tr>");
    s.push_str(&summary_row("all", &r.total));
    for (k, v) in &r.classes {
        s.push_str(&summary_row(k, v));
    }
    s.push_str("</table>");
    s.push_str("<p>Statuses: ");
    for (k, v) in &r.total.status {
        let _ = write!(s, "{k} {v} · ");
    }
    s.push_str("cache: ");
    for (k, v) in &r.total.cache {
        let _ = write!(s, "{k} {v} · ");
    }
    s.push_str("</p>");
    s.push_str("<h2>Over time</h2>");
    let hits: Vec<_> = r
        .buckets
        .iter()
        .map(|b| (b.unix, b.start.clone(), b.summary.hit_ratio))
        .collect();
    let origin: Vec<_> = r
        .buckets
        .iter()
        .map(|b| (b.unix, b.start.clone(), b.summary.origin_ratio))
        .collect();
    s.push_str(&ratio_chart(
        "chart-hit-ratio",
        "Hit ratio over time (dashed: the target)",
        &hits,
        hit_target,
    ));
    s.push_str(&ratio_chart(
        "chart-origin-ratio",
        "Origin requests over time (dashed: the ceiling)",
        &origin,
        origin_target,
    ));
    s.push_str("<h2>Top misses</h2>");
    s.push_str(&bar_chart(
        "chart-top-misses",
        "URLs fetched from the origin most often",
        &r.top_misses,
    ));
    s.push_str(&top_table("Top misses", &r.top_misses, false));
    s.push_str("<h2>Stale-content signals</h2>");
    if !r.stale.deploys_checked {
        s.push_str("<p class=\"na\">Fingerprinted names were not checked against kept deploys (no store reachable).</p>");
    } else {
        s.push_str(&top_table(
            "Fingerprinted names in no kept deploy",
            &r.stale.unknown_fingerprinted,
            false,
        ));
    }
    s.push_str(&top_table(
        "404s on fingerprinted names",
        &r.stale.fingerprinted_404,
        false,
    ));
    s.push_str(&top_table(
        "Mutable URLs served older than their s-maxage",
        &r.stale.mutable_over_age,
        true,
    ));
    s.push_str("<h2>Files</h2><table><tr><th>file</th><th>format</th><th>lines</th><th>requests</th><th>malformed</th></tr>");
    for f in &r.files {
        let _ = write!(
            s,
            "<tr><td><code>{}</code></td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&f.path),
            f.format,
            if f.gzip { " (gzip)" } else { "" },
            f.lines,
            f.records,
            f.malformed
        );
    }
    s.push_str("</table>");
    if !r.malformed_samples.is_empty() {
        s.push_str("<h3>Malformed lines</h3><ul>");
        for m in &r.malformed_samples {
            let _ = write!(
                s,
                "<li><code>{}:{}</code>: {} <br><code>{}</code></li>",
                esc(&m.file),
                m.line,
                esc(m.reason),
                esc(&m.text)
            );
        }
        s.push_str("</ul>");
    }
    s.push_str("</body></html>\n");
    s
}
