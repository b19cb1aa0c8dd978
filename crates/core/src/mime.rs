//! Content types of served files and objects, shared by the server and the object metadata of a deploy.

/// The file's content type, with `charset=utf-8` for text.
pub fn content_type(path: &str) -> String {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let mime = match ext.as_str() {
        "js" | "mjs" | "cjs" => "text/javascript".to_string(),
        "map" | "json" => "application/json".to_string(),
        "webmanifest" => "application/manifest+json".to_string(),
        "wasm" => "application/wasm".to_string(),
        "woff2" => "font/woff2".to_string(),
        "woff" => "font/woff".to_string(),
        "ttf" => "font/ttf".to_string(),
        "otf" => "font/otf".to_string(),
        "eot" => "application/vnd.ms-fontobject".to_string(),
        "avif" => "image/avif".to_string(),
        _ => mime_guess::from_ext(&ext)
            .first_or_octet_stream()
            .essence_str()
            .to_string(),
    };
    let texty = mime.starts_with("text/")
        || matches!(
            mime.as_str(),
            "application/json"
                | "application/manifest+json"
                | "image/svg+xml"
                | "application/xml"
                | "application/xhtml+xml"
        );
    if texty {
        format!("{mime}; charset=utf-8")
    } else {
        mime
    }
}

/// Web fonts: browsers fetch them with CORS, so a cross-origin `@font-face` needs
/// `Access-Control-Allow-Origin`.
pub fn is_font(path: &str) -> bool {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    matches!(ext.as_str(), "woff2" | "woff" | "ttf" | "otf" | "eot")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        for (p, want) in [
            ("a.css", "text/css; charset=utf-8"),
            ("a.js", "text/javascript; charset=utf-8"),
            ("a.html", "text/html; charset=utf-8"),
            ("a.svg", "image/svg+xml; charset=utf-8"),
            ("a.json", "application/json; charset=utf-8"),
            ("a.js.map", "application/json; charset=utf-8"),
            ("a.woff2", "font/woff2"),
            ("a.png", "image/png"),
            ("LICENSE", "application/octet-stream"),
        ] {
            assert_eq!(content_type(p), want, "{p}");
        }
    }
}
