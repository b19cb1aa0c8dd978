//! Reusing a store's sidecars (`build --reuse-from`): what the current deploy record proves is already
//! compressed and deployed, so a build without a cache (a fresh CI runner) does not compress it again.
//!
//! A sidecar is reused only when the record proves all of it, for every output name the build gives the
//! content: the base key holds exactly this content (hash and size), the sidecar key is stored with the
//! codec's `Content-Encoding`, and the record names the codec and level it was compressed with (the
//! blob tag, `br11w22`). Then its bytes are what this build would compress (the compressors are
//! deterministic), and its size and hash come from the record. Anything else is compressed as usual: a
//! record entry is never trusted without the content hash, and a record of an older format (no levels)
//! proves no sidecar.
//!
//! The file itself is not written to the output: the store has it, and `deploy` to that store keeps it
//! there. The encodings file (`.staleguard.encodings.json`, hidden: never served or deployed) tells the
//! deploy the level of every sidecar the build listed, for the next record.

use std::collections::HashMap;

use staleguard_core::config::Codec;
use staleguard_core::deploy::DeployRecord;
pub use staleguard_core::deploy::{ENCODINGS_FILE, EncodingsFile};
use staleguard_core::manifest::Variant;

/// What a deploy record proves, indexed for the build.
#[derive(Debug, Clone, Default)]
pub struct Reuse {
    /// The deploy whose record this is.
    pub deploy: String,
    /// Key → (content hash, size).
    objects: HashMap<String, (String, u64)>,
    /// Sidecar key → (codec, level tag, variant; `None`: compressed at that level and not kept, saving
    /// too little).
    sidecars: HashMap<String, (Codec, String, Option<Variant>)>,
    /// Sidecar keys the record has without a level (an older record format, or a deploy of a folder
    /// built without one): never reused.
    pub unproven: usize,
}

impl Reuse {
    /// Indexes a deploy record. Sidecars without a recorded level, or whose `Content-Encoding` is not
    /// their codec's, are left out.
    pub fn from_record(record: &DeployRecord) -> Reuse {
        let mut r = Reuse {
            deploy: record.id.clone(),
            ..Default::default()
        };
        for (key, o) in &record.objects {
            r.objects.insert(key.clone(), (o.hash.clone(), o.size));
            let Some(enc) = o.headers.get("content-encoding") else {
                continue;
            };
            let Some((_, codec)) = Codec::split_sidecar(key) else {
                continue;
            };
            if enc != codec.content_encoding() {
                continue;
            }
            match record.encodings.get(key) {
                Some(tag) => {
                    r.sidecars.insert(
                        key.clone(),
                        (
                            codec,
                            tag.clone(),
                            Some(Variant {
                                size: o.size,
                                hash: o.hash.clone(),
                            }),
                        ),
                    );
                }
                None => r.unproven += 1,
            }
        }
        for (key, tag) in &record.not_kept {
            if let Some((base, codec)) = Codec::split_sidecar(key)
                && record.objects.contains_key(base)
                && !record.objects.contains_key(key)
            {
                r.sidecars.insert(key.clone(), (codec, tag.clone(), None));
            }
        }
        r
    }

    /// The stored sidecar of `codec` at level `tag` for a content (`hash`, `size`) the build writes under
    /// every one of `names`, when the record proves it for each of them (and they agree): `Some(None)`
    /// when it proves that compression was not worth keeping.
    pub fn sidecar(
        &self,
        names: &[String],
        hash: &str,
        size: u64,
        codec: Codec,
        tag: &str,
    ) -> Option<Option<Variant>> {
        let mut found: Option<&Option<Variant>> = None;
        for name in names {
            let (h, s) = self.objects.get(name)?;
            if h != hash || *s != size {
                return None;
            }
            let (c, t, v) = self.sidecars.get(&format!("{name}{}", codec.extension()))?;
            if *c != codec || t != tag || found.is_some_and(|f| f != v) {
                return None;
            }
            found = Some(v);
        }
        found.cloned()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use staleguard_core::deploy::{DeployKind, ObjectRecord, Rank};

    use super::*;

    fn obj(hash: &str, size: u64, enc: Option<&str>) -> ObjectRecord {
        let mut headers = BTreeMap::from([("content-type".to_string(), "text/css".to_string())]);
        if let Some(e) = enc {
            headers.insert("content-encoding".into(), e.into());
        }
        ObjectRecord {
            hash: hash.into(),
            size,
            mutable: false,
            headers,
            rank: Rank::Immutable,
            etag: None,
        }
    }

    fn record(encodings: &[(&str, &str)]) -> DeployRecord {
        DeployRecord {
            format: 1,
            id: "d1".into(),
            time: String::new(),
            unix: 0,
            kind: DeployKind::Deploy,
            restores: None,
            git_commit: None,
            version: String::new(),
            objects: BTreeMap::from([
                ("a.1.css".to_string(), obj("h", 100, None)),
                ("a.1.css.br".to_string(), obj("hb", 30, Some("br"))),
                ("a.css".to_string(), obj("h", 100, None)),
                ("a.css.br".to_string(), obj("hb", 30, Some("br"))),
                ("a.1.css.gz".to_string(), obj("hg", 40, Some("br"))),
            ]),
            copies: BTreeMap::new(),
            encodings: encodings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            not_kept: BTreeMap::new(),
        }
    }

    #[test]
    fn proves_only_what_the_record_says_for_every_name() {
        let r = Reuse::from_record(&record(&[
            ("a.1.css.br", "br11w22"),
            ("a.css.br", "br11w22"),
            ("a.1.css.gz", "gz9"),
        ]));
        let both = ["a.1.css".to_string(), "a.css".to_string()];
        let v = r
            .sidecar(&both, "h", 100, Codec::Br, "br11w22")
            .unwrap()
            .unwrap();
        assert_eq!((v.size, v.hash.as_str()), (30, "hb"));
        // Another level, another content, another size: compressed again.
        assert!(r.sidecar(&both, "h", 100, Codec::Br, "br5w22").is_none());
        assert!(r.sidecar(&both, "x", 100, Codec::Br, "br11w22").is_none());
        assert!(r.sidecar(&both, "h", 99, Codec::Br, "br11w22").is_none());
        // A name the record lacks (a moved file): its sidecar is not in the store.
        let moved = ["b.1.css".to_string()];
        assert!(r.sidecar(&moved, "h", 100, Codec::Br, "br11w22").is_none());
        // A sidecar stored with another codec's Content-Encoding proves nothing.
        assert!(
            r.sidecar(&both[..1], "h", 100, Codec::Gzip, "gz9")
                .is_none()
        );
    }

    #[test]
    fn an_older_record_without_levels_proves_no_sidecar() {
        let r = Reuse::from_record(&record(&[]));
        assert_eq!(r.unproven, 2);
        let one = ["a.1.css".to_string()];
        assert!(r.sidecar(&one, "h", 100, Codec::Br, "br11w22").is_none());
    }
}
