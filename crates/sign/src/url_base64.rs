//! CloudFront's URL-safe base64: standard base64 (with padding) whose `+`, `=` and `/` become `-`, `_`
//! and `~`, exactly as botocore's `CloudFrontSigner._url_b64encode` writes it (not RFC 4648's
//! `base64url`, which uses `-` and `_` for `+` and `/` and drops the padding).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// `bytes` in CloudFront's alphabet.
pub fn encode(bytes: &[u8]) -> String {
    STANDARD
        .encode(bytes)
        .chars()
        .map(|c| match c {
            '+' => '-',
            '=' => '_',
            '/' => '~',
            c => c,
        })
        .collect()
}

/// The bytes of a value in CloudFront's alphabet; `None` when it is not one (standard `+`, `/`, `=`
/// are refused too: CloudFront's values never hold them, and a URL would have mangled `+`).
pub fn decode(text: &str) -> Option<Vec<u8>> {
    if text.contains(['+', '/', '=']) {
        return None;
    }
    let standard: String = text
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '=',
            '~' => '/',
            c => c,
        })
        .collect();
    STANDARD.decode(standard).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_the_three_characters_and_round_trips() {
        // Bytes chosen so the standard encoding holds `+`, `/` and `=`.
        let cases: &[(&[u8], &str)] = &[
            (b"", ""),
            (b"f", "Zg__"),
            (b"fo", "Zm8_"),
            (b"foo", "Zm9v"),
            (&[0xfb, 0xff], "-~8_"),
            (&[0xfb, 0xef, 0xbe], "----"),
            (&[0xff, 0xff, 0xff], "~~~~"),
            (
                b"{\"Statement\":[{\"Resource\"",
                "eyJTdGF0ZW1lbnQiOlt7IlJlc291cmNlIg__",
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(encode(bytes), *want, "{bytes:?}");
            assert_eq!(decode(want).as_deref(), Some(*bytes), "{want}");
        }
    }

    #[test]
    fn refuses_other_alphabets_and_garbage() {
        for bad in ["Zg==", "+/8=", "Zm9v!", "Z"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
