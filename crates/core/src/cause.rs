//! Error cause chains as message text: what a library error wraps (an HTTP client's `hyper` and `io`
//! errors, an SDK's dispatch failure) said once each, for messages that name the real cause.

/// An error and its sources as one text each, first to last, skipping empty texts and those an earlier
/// one (or one of `seen`) already contains (`dispatch failure`, `io error: … Connection refused`): the one
/// cause-chain flattener of staleguard's messages.
pub fn cause_chain(err: &(dyn std::error::Error + 'static), seen: &[&str]) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        let text = e.to_string();
        if !text.is_empty()
            && !parts.iter().any(|p| p.contains(&text))
            && !seen.iter().any(|p| p.contains(&text))
        {
            parts.push(text);
        }
        cur = e.source();
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    fn chain(texts: &[&'static str]) -> E {
        let mut e: Option<Box<E>> = None;
        for t in texts.iter().rev() {
            e = Some(Box::new(E(t, e)));
        }
        *e.expect("at least one text")
    }

    #[test]
    fn each_text_once_in_order() {
        let cases: [(&[&str], &[&str], &[&str]); 5] = [
            (&["a"], &[], &["a"]),
            (
                &["dispatch failure", "io error: refused", "refused"],
                &[],
                &["dispatch failure", "io error: refused"],
            ),
            (&["top", "", "cause"], &[], &["top", "cause"]),
            (
                &["cannot connect", "connection refused"],
                &["cannot connect"],
                &["connection refused"],
            ),
            (&["x", "x"], &[], &["x"]),
        ];
        for (texts, seen, want) in cases {
            assert_eq!(
                cause_chain(&chain(texts), seen),
                want,
                "{texts:?} seen {seen:?}"
            );
        }
    }
}
