//! The `[deploy]` section: the store, garbage collection, aliases and metadata, the deploy state and lease.

use serde::{Deserialize, Deserializer, Serialize};

use super::{de_globs, de_range};
use crate::duration::HumanDuration;

/// The `[deploy]` section: where and how the build output is uploaded.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct DeployConfig {
    /// The object store: `file://PATH` (relative paths are relative to the config file's folder),
    /// `s3://BUCKET/PREFIX`, `gs://…`, `az://…`.
    #[serde(deserialize_with = "de_store_url")]
    pub store: String,
    /// Folder to deploy; empty = the build's output folder.
    pub dir: String,
    /// GC keeps every object referenced by the last this-many deploys.
    #[serde(deserialize_with = "de_keep_deploys")]
    pub keep_deploys: u32,
    /// …and every object that left the site less than this long ago (`90s`, `30m`, `12h`, `1d`, `2w`).
    pub keep_age: HumanDuration,
    /// GC refuses (and fails the deploy) when it would delete more objects than this.
    pub max_deletes: u64,
    /// Uploads in flight at once.
    #[serde(deserialize_with = "de_concurrency")]
    pub concurrency: u32,
    /// S3-compatible endpoint (MinIO, R2, moto…); empty = AWS, or `AWS_ENDPOINT_URL` from the environment.
    pub endpoint: String,
    /// Region; empty = `AWS_REGION`/`AWS_DEFAULT_REGION`, else us-east-1.
    pub region: String,
    /// Stable aliases for download channels: alias key → the key it copies (e.g.
    /// `"downloads/tool-latest.tar.gz" = "downloads/tool-1.4.2.tar.gz"`). Uploaded after their targets.
    pub aliases: std::collections::BTreeMap<String, String>,
    /// Key of a JSON file listing size and sha256 of every alias target and every `artifacts` match,
    /// written after them; empty = none.
    pub metadata: String,
    /// Globs (over keys) of artifacts to list in `metadata`, besides the alias targets.
    #[serde(deserialize_with = "de_globs")]
    pub artifacts: Vec<String>,
    /// Also publish the build's manifests and build info (`staleguard.manifest.json`, `staticfiles.json`,
    /// `build-info.json`) on the site. By default they are kept with the deploy state (`.staleguard/build/`),
    /// out of the site and of every purge; the build info is published when it is the version endpoint
    /// (`[verify] version-path = "/build-info.json"`).
    pub publish_manifests: bool,
    /// Where the deploy state (records, history, `current.json`, journal, rollback copies, purge marks,
    /// the manifests) is kept: empty = in the store under the site (`.staleguard/`), fine for a folder
    /// (`staleguard serve` never serves it) but public through a bucket the CDN serves; or a store URL of
    /// its own (`s3://private-bucket/staleguard/site`, `file://…`) that the CDN cannot reach.
    #[serde(deserialize_with = "de_store_url_or_empty")]
    pub state: String,
    /// One deploy or rollback at a time per store: a lease (an OS lock on a folder, a conditional
    /// `lock.json` on an object store). `false` deploys without one (never run two at once then).
    pub lock: bool,
    /// How long a deploy waits for another one's lease before failing, naming the holder (`0s`: fail
    /// at once).
    pub lock_timeout: HumanDuration,
    /// How long an object store's lease lives without renewal (renewed every third of it): a deploy
    /// killed while holding it blocks the next one this long at most.
    pub lock_ttl: HumanDuration,
    /// The build `deploy` runs first reuses the sidecars this store's current deploy already holds (a
    /// fresh CI runner compresses only what changed); `false` compresses everything the local cache
    /// lacks.
    pub reuse: bool,
}

impl Default for DeployConfig {
    fn default() -> Self {
        DeployConfig {
            store: "file://./.staleguard/public".into(),
            dir: String::new(),
            keep_deploys: 3,
            keep_age: HumanDuration::from_secs(86_400),
            max_deletes: 1000,
            concurrency: 16,
            endpoint: String::new(),
            region: String::new(),
            aliases: Default::default(),
            metadata: String::new(),
            artifacts: Vec::new(),
            publish_manifests: false,
            state: String::new(),
            lock: true,
            lock_timeout: HumanDuration::from_secs(600),
            lock_ttl: HumanDuration::from_secs(120),
            reuse: true,
        }
    }
}

impl DeployConfig {
    /// Why the deploy state would be public, when it would: it sits under the site in a bucket.
    pub fn state_warning(&self) -> Option<String> {
        if !self.state.is_empty() || self.store.starts_with("file://") {
            return None;
        }
        Some(format!(
            "the deploy state is kept under the site in `{}/.staleguard/`: a CDN or bucket website in front of it serves `/.staleguard/current.json` and `history.json` to anyone\nhint: set `[deploy] state = \"s3://…\"` to a location the CDN does not serve (another bucket or a prefix outside the CDN's origin path), or deny `/.staleguard/*` at the CDN",
            self.store.trim_end_matches('/')
        ))
    }
}

fn de_store_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    check_store_url(&s).map_err(serde::de::Error::custom)?;
    Ok(s)
}

pub(super) fn de_store_url_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if !s.is_empty() {
        check_store_url(&s).map_err(serde::de::Error::custom)?;
    }
    Ok(s)
}

/// Accepts the store URL schemes staleguard knows.
pub fn check_store_url(s: &str) -> Result<(), String> {
    let (scheme, rest) = match s.split_once("://") {
        Some((a, r)) => (Some(a), r),
        None => (None, ""),
    };
    match scheme {
        Some("file") if rest.is_empty() => Err(format!(
            "store `{s}` names no folder; use file://PATH (relative to the config file), e.g. file://./.staleguard/public"
        )),
        Some(k @ ("s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" | "azure"))
            if rest.split('/').next().unwrap_or("").is_empty() =>
        {
            let what = if k.starts_with('s') || k == "gs" {
                "bucket"
            } else {
                "container"
            };
            Err(format!(
                "store `{s}` names no {what}; use {k}://{}/PREFIX (the {what} first, then an optional prefix)",
                what.to_ascii_uppercase()
            ))
        }
        Some("file" | "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" | "azure") => Ok(()),
        _ => Err(format!(
            "store `{s}` is not a store URL; use file://PATH, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or az://CONTAINER/PREFIX"
        )),
    }
}

fn de_keep_deploys<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de_range(d, "keep-deploys", 1, 1000).map(|v| v as u32)
}

fn de_concurrency<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    de_range(d, "concurrency", 1, 256).map(|v| v as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_in_a_served_bucket_is_warned_about() {
        let mut d = DeployConfig {
            store: "s3://b/site".into(),
            ..Default::default()
        };
        assert!(
            d.state_warning()
                .unwrap()
                .contains("s3://b/site/.staleguard/")
        );
        d.state = "s3://private/state".into();
        assert!(d.state_warning().is_none());
        let local = DeployConfig::default();
        assert!(local.state_warning().is_none());
    }

    #[test]
    fn a_store_without_a_bucket_says_so() {
        for (url, needle) in [
            ("s3://", "names no bucket"),
            ("s3:///site", "names no bucket"),
            ("gs://", "names no bucket"),
            ("az://", "names no container"),
            ("file://", "names no folder"),
        ] {
            let e = check_store_url(url).unwrap_err();
            assert!(e.contains(needle), "{url}: {e}");
        }
        for ok in ["s3://b", "s3://b/site", "file://public", "gs://b/x"] {
            check_store_url(ok).unwrap();
        }
    }
}
