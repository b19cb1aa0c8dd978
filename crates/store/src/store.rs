//! A store opened from its URL, and the operations a deploy needs.
//!
//! `file://` is a folder (relative paths are relative to the config file's folder); writes go to a
//! temporary file renamed into place, so a reader never sees half an object. `s3://BUCKET/PREFIX` reads
//! credentials from the AWS chain (environment keys, shared profile with `credential_process` or an
//! assumed role, web identity, ECS/EKS, instance metadata: `staleguard-aws`), region and endpoint from
//! the usual AWS environment (`AWS_REGION`, `AWS_ENDPOINT_URL`), overridden by
//! `[deploy] endpoint` and `region`; requests are retried with backoff by `object_store` (up to 10 times
//! within 3 minutes) on 5xx, throttling and connection errors.

use std::collections::BTreeMap;
use std::path::Path as FsPath;
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{
    Attribute, AttributeValue, Attributes, GetOptions, ObjectStore, PutOptions, PutPayload,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use staleguard_core::DeployConfig;

use crate::{Result, StoreError};

/// Objects larger than this are sent as multipart uploads.
pub const MULTIPART_THRESHOLD: u64 = 64 * 1024 * 1024;
const PART_SIZE: usize = 16 * 1024 * 1024;

/// An open store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    /// Where the deploy state (`.staleguard/…` keys) lives when `[deploy] state` puts it apart from the
    /// site; `None`: in the store, under the site.
    state: Option<Arc<dyn ObjectStore>>,
    /// The URL as configured, for messages.
    pub url: String,
    /// Folders of `file://` locations (site, then state): where staging files of a killed write stay.
    local: Vec<(std::path::PathBuf, bool)>,
    /// Object metadata (Content-Type, Cache-Control, …) is stored with objects. A local folder has
    /// none: `staleguard serve` derives the same headers from the route table and the manifest.
    pub keeps_headers: bool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("url", &self.url).finish()
    }
}

impl Store {
    /// Opens the store `url`; `base` resolves relative `file://` paths.
    pub fn open(url: &str, config: &DeployConfig, base: &FsPath) -> Result<Store> {
        let (inner, keeps_headers) = Self::open_inner(url, config, base)?;
        let folder = |u: &str| u.strip_prefix("file://").map(|rest| base.join(rest));
        let mut local: Vec<(std::path::PathBuf, bool)> =
            folder(url).into_iter().map(|p| (p, false)).collect();
        let state = if config.state.is_empty() {
            None
        } else {
            local.extend(folder(&config.state).map(|p| (p, true)));
            Some(Self::open_inner(&config.state, config, base)?.0)
        };
        Ok(Store {
            inner,
            state,
            url: url.to_string(),
            local,
            keeps_headers,
        })
    }

    fn open_inner(
        url: &str,
        config: &DeployConfig,
        base: &FsPath,
    ) -> Result<(Arc<dyn ObjectStore>, bool)> {
        let fail = |reason: String| StoreError::Open {
            url: url.to_string(),
            reason,
        };
        staleguard_core::config::check_store_url(url).map_err(&fail)?;
        let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
        let (inner, keeps_headers): (Arc<dyn ObjectStore>, bool) = match scheme {
            "file" => {
                let dir = base.join(rest);
                std::fs::create_dir_all(&dir)
                    .map_err(|e| fail(format!("cannot create `{}`: {e}", dir.display())))?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| fail(e.to_string()))?;
                (Arc::new(fs), false)
            }
            "s3" | "s3a" => (open_s3(url, config).map_err(&fail)?, true),
            "gs" => (open_gcs(url).map_err(&fail)?, true),
            _ => (open_azure(url).map_err(&fail)?, true),
        };
        // The path part of a bucket URL is a prefix inside the bucket.
        let inner = match scheme {
            "file" => inner,
            _ => {
                let prefix = rest
                    .split_once('/')
                    .map_or("", |(_, p)| p.trim_matches('/'));
                if prefix.is_empty() {
                    inner
                } else {
                    Arc::new(object_store::prefix::PrefixStore::new(inner, prefix))
                        as Arc<dyn ObjectStore>
                }
            }
        };
        Ok((inner, keeps_headers))
    }

    /// The store and path a key lives at: state keys (`.staleguard/…`) in the state location when one
    /// is configured, everything else in the site's store.
    fn route(&self, key: &str) -> Result<(&Arc<dyn ObjectStore>, Path)> {
        if let Some(state) = &self.state
            && let Some(rest) = key.strip_prefix(".staleguard/")
        {
            return Ok((state, Self::path(rest)?));
        }
        Ok((&self.inner, Self::path(key)?))
    }

    fn path(key: &str) -> Result<Path> {
        Path::parse(key)
            .map_err(|e| StoreError::Config(format!("`{key}` is not a valid object key: {e}")))
    }

    /// Reads a JSON state file (gunzipped when the key ends in `.gz`); `None` when it does not exist.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let Some(bytes) = self.get(key).await? else {
            return Ok(None);
        };
        let bytes = if key.ends_with(".gz") {
            use std::io::Read;
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_end(&mut out)
                .map_err(|e| StoreError::State {
                    key: key.to_string(),
                    reason: format!("not gzip: {e}"),
                })?;
            Bytes::from(out)
        } else {
            bytes
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::State {
                key: key.to_string(),
                reason: e.to_string(),
            })
    }

    /// The file a key is at when its location is a local folder (`file://`): where an OS lock can be
    /// taken. `None` for object stores.
    pub fn local_file(&self, key: &str) -> Option<std::path::PathBuf> {
        match (key.strip_prefix(".staleguard/"), &self.state) {
            (Some(rest), Some(_)) => self
                .local
                .iter()
                .find(|(_, is_state)| *is_state)
                .map(|(root, _)| root.join(rest)),
            (_, None) | (None, _) => self
                .local
                .iter()
                .find(|(_, is_state)| !*is_state)
                .map(|(root, _)| root.join(key)),
        }
    }

    /// Reads a small object with the version a conditional [`Store::update`] needs.
    pub async fn get_versioned(
        &self,
        key: &str,
    ) -> Result<Option<(Bytes, object_store::UpdateVersion)>> {
        let read = |error| StoreError::Read {
            key: key.to_string(),
            error,
        };
        let (store, path) = self.route(key)?;
        match store.get(&path).await {
            Ok(r) => {
                let version = object_store::UpdateVersion {
                    e_tag: r.meta.e_tag.clone(),
                    version: r.meta.version.clone(),
                };
                let bytes = r.bytes().await.map_err(read)?;
                Ok(Some((bytes, version)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(read(e)),
        }
    }

    /// Writes `bytes` at `key` only if nothing is there (`If-None-Match: *`): `Ok(None)` when something
    /// is. Fails with [`StoreError::NoConditional`] where the store has no conditional writes.
    pub async fn create(
        &self,
        key: &str,
        bytes: Bytes,
    ) -> Result<Option<object_store::UpdateVersion>> {
        self.put_mode(key, bytes, object_store::PutMode::Create)
            .await
    }

    /// Replaces `key` only if it is still at `version` (`If-Match`): `Ok(None)` when it changed since.
    pub async fn update(
        &self,
        key: &str,
        bytes: Bytes,
        version: object_store::UpdateVersion,
    ) -> Result<Option<object_store::UpdateVersion>> {
        self.put_mode(key, bytes, object_store::PutMode::Update(version))
            .await
    }

    async fn put_mode(
        &self,
        key: &str,
        bytes: Bytes,
        mode: object_store::PutMode,
    ) -> Result<Option<object_store::UpdateVersion>> {
        let headers = json_headers(key);
        let what = match mode {
            object_store::PutMode::Create => "create-if-absent",
            _ => "update-if-unchanged",
        };
        let opts = PutOptions {
            mode,
            attributes: self.attributes(&headers),
            ..Default::default()
        };
        let (store, path) = self.route(key)?;
        match store.put_opts(&path, PutPayload::from(bytes), opts).await {
            Ok(r) => Ok(Some(object_store::UpdateVersion {
                e_tag: r.e_tag,
                version: r.version,
            })),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(None),
            Err(object_store::Error::NotImplemented) => Err(StoreError::NoConditional {
                url: self.url.clone(),
                what,
            }),
            Err(error) => Err(StoreError::Write {
                key: key.to_string(),
                error,
            }),
        }
    }

    /// Reads an object; `None` when it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let read = |error| StoreError::Read {
            key: key.to_string(),
            error,
        };
        let (store, path) = self.route(key)?;
        match store.get(&path).await {
            Ok(r) => r.bytes().await.map(Some).map_err(read),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(read(e)),
        }
    }

    /// Reads a byte range of an object; `None` when the object does not exist.
    pub async fn get_range(&self, key: &str, range: std::ops::Range<u64>) -> Result<Option<Bytes>> {
        let (store, path) = self.route(key)?;
        match store.get_range(&path, range).await {
            Ok(b) => Ok(Some(b)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(StoreError::Read {
                key: key.to_string(),
                error,
            }),
        }
    }

    /// Writes a JSON state file (never cached by anything in between): pretty when small, compact and
    /// gzipped when the key ends in `.gz`.
    pub async fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let bytes = json_body(key, value)?;
        self.put(key, bytes, &json_headers(key)).await.map(|_| ())
    }

    /// Writes an object with its headers (when the store keeps headers); returns the store's ETag.
    pub async fn put(
        &self,
        key: &str,
        bytes: Bytes,
        headers: &BTreeMap<String, String>,
    ) -> Result<Option<String>> {
        let opts = PutOptions {
            attributes: self.attributes(headers),
            ..Default::default()
        };
        let (store, path) = self.route(key)?;
        store
            .put_opts(&path, PutPayload::from(bytes), opts)
            .await
            .map(|r| r.e_tag)
            .map_err(|error| StoreError::Write {
                key: key.to_string(),
                error,
            })
    }

    /// Uploads a local file: one request when small, a multipart upload in 16 MiB parts when large.
    pub async fn put_file(
        &self,
        key: &str,
        file: &FsPath,
        size: u64,
        headers: &BTreeMap<String, String>,
    ) -> Result<Option<String>> {
        let local = |source| StoreError::Local {
            path: file.to_path_buf(),
            source,
        };
        if size <= MULTIPART_THRESHOLD {
            let bytes = tokio::fs::read(file).await.map_err(local)?;
            return self.put(key, Bytes::from(bytes), headers).await;
        }
        use tokio::io::AsyncReadExt;
        let write = |error| StoreError::Write {
            key: key.to_string(),
            error,
        };
        let opts = object_store::PutMultipartOptions {
            attributes: self.attributes(headers),
            ..Default::default()
        };
        let (store, path) = self.route(key)?;
        let upload = store.put_multipart_opts(&path, opts).await.map_err(write)?;
        let mut w = object_store::WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut f = tokio::fs::File::open(file).await.map_err(local)?;
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            let n = f.read(&mut buf).await.map_err(local)?;
            if n == 0 {
                break;
            }
            w.wait_for_capacity(4).await.map_err(write)?;
            w.write(&buf[..n]);
        }
        w.finish().await.map(|r| r.e_tag).map_err(write)
    }

    /// Size, ETag and (when the store keeps them) headers of an object; `None` when it does not exist.
    pub async fn head(&self, key: &str) -> Result<Option<Head>> {
        let opts = GetOptions {
            head: true,
            ..Default::default()
        };
        let (store, path) = self.route(key)?;
        match store.get_opts(&path, opts).await {
            Ok(r) => {
                let mut headers = BTreeMap::new();
                for (k, v) in r.attributes.iter() {
                    if let Some(name) = header_name(k) {
                        headers.insert(name, v.as_ref().to_string());
                    }
                }
                Ok(Some(Head {
                    size: r.meta.size,
                    etag: r.meta.e_tag,
                    headers,
                }))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(StoreError::Read {
                key: key.to_string(),
                error,
            }),
        }
    }

    /// Removes the staging files (`page.html#1`) that a killed write left in a local store, except keys
    /// `known` to a record; returns the keys removed. Object stores have none: an upload is atomic there.
    pub async fn remove_staging(&self, known: &dyn Fn(&str) -> bool) -> Result<Vec<String>> {
        let mut found = Vec::new();
        for (root, is_state) in &self.local {
            for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
                let Ok(entry) = entry else { continue };
                if !entry.file_type().is_file() {
                    continue;
                }
                let Some(rel) = entry
                    .path()
                    .strip_prefix(root)
                    .ok()
                    .and_then(|p| p.to_str())
                    .map(|s| s.replace('\\', "/"))
                else {
                    continue;
                };
                let key = if *is_state {
                    format!(".staleguard/{rel}")
                } else {
                    rel
                };
                if staleguard_core::deploy::is_staging_name(&key) && !known(&key) {
                    found.push((entry.path().to_path_buf(), key));
                }
            }
        }
        let mut removed = Vec::with_capacity(found.len());
        for (path, key) in found {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => removed.push(key),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::Local { path, source: e }),
            }
        }
        if !removed.is_empty() {
            tracing::info!(count = removed.len(), first = %removed[0], "removed staging files of an interrupted write");
        }
        Ok(removed)
    }

    /// Deletes an object; a missing one is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        let (store, path) = self.route(key)?;
        match store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(StoreError::Delete {
                key: key.to_string(),
                error,
            }),
        }
    }

    /// Headers as object attributes: the four standard ones, the rest as user metadata (S3 sends those
    /// back as `x-amz-meta-NAME`; a CDN or edge function can turn them into response headers).
    fn attributes(&self, headers: &BTreeMap<String, String>) -> Attributes {
        let mut a = Attributes::new();
        if !self.keeps_headers {
            return a;
        }
        for (k, v) in headers {
            let attr = match k.as_str() {
                "content-type" => Attribute::ContentType,
                "cache-control" => Attribute::CacheControl,
                "content-encoding" => Attribute::ContentEncoding,
                "content-disposition" => Attribute::ContentDisposition,
                "content-language" => Attribute::ContentLanguage,
                other => Attribute::Metadata(other.to_string().into()),
            };
            a.insert(attr, AttributeValue::from(v.clone()));
        }
        a
    }
}

/// What a HEAD tells.
/// A state file's bytes: gzipped JSON when the key ends in `.gz`, else pretty JSON with a final newline.
pub(crate) fn json_body<T: Serialize>(key: &str, value: &T) -> Result<Bytes> {
    let state = |e: String| StoreError::State {
        key: key.to_string(),
        reason: e,
    };
    if key.ends_with(".gz") {
        use std::io::Write;
        let json = serde_json::to_vec(value).map_err(|e| state(e.to_string()))?;
        let mut gz = flate2::write::GzEncoder::new(
            Vec::with_capacity(json.len() / 3),
            flate2::Compression::new(6),
        );
        gz.write_all(&json)
            .and_then(|()| gz.finish())
            .map(Bytes::from)
            .map_err(|e| state(e.to_string()))
    } else {
        let mut b = serde_json::to_vec_pretty(value).map_err(|e| state(e.to_string()))?;
        b.push(b'\n');
        Ok(Bytes::from(b))
    }
}

/// A state file's headers: never cached.
fn json_headers(key: &str) -> BTreeMap<String, String> {
    let kind = if key.ends_with(".gz") {
        "application/gzip"
    } else {
        "application/json"
    };
    BTreeMap::from([
        ("content-type".to_string(), kind.to_string()),
        ("cache-control".to_string(), "no-store".to_string()),
    ])
}

#[derive(Debug, Clone)]
pub struct Head {
    pub size: u64,
    pub etag: Option<String>,
    /// Lower-case header names, as in deploy records.
    pub headers: BTreeMap<String, String>,
}

fn header_name(a: &Attribute) -> Option<String> {
    Some(match a {
        Attribute::ContentType => "content-type".into(),
        Attribute::CacheControl => "cache-control".into(),
        Attribute::ContentEncoding => "content-encoding".into(),
        Attribute::ContentDisposition => "content-disposition".into(),
        Attribute::ContentLanguage => "content-language".into(),
        Attribute::Metadata(k) => k.to_ascii_lowercase(),
        _ => return None,
    })
}

#[cfg(feature = "s3")]
fn open_s3(url: &str, config: &DeployConfig) -> Result<Arc<dyn ObjectStore>, String> {
    let mut b = object_store::aws::AmazonS3Builder::from_env().with_url(url);
    let endpoint = if config.endpoint.is_empty() {
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_default()
    } else {
        config.endpoint.clone()
    };
    if !config.endpoint.is_empty() {
        b = b.with_endpoint(&config.endpoint);
    }
    if endpoint.starts_with("http://") {
        b = b.with_allow_http(true);
    }
    let region = if config.region.is_empty() {
        std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|_| "us-east-1".into())
    } else {
        config.region.clone()
    };
    b = b.with_region(region);
    // object_store reads the environment's keys, web identity, ECS/EKS and instance metadata itself;
    // a shared profile (`AWS_PROFILE`, `~/.aws/credentials`) it does not, so that one comes from
    // staleguard-aws's chain, the same one the CloudFront provider uses.
    let profile = staleguard_aws::Credentials::profile_from_env().map_err(|e| match e.hint() {
        Some(h) => format!("{e}\nhint: {h}"),
        None => e.to_string(),
    })?;
    if let Some(credentials) = profile {
        b = b.with_credentials(credentials.provider());
    }
    b.build()
        .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        .map_err(|e| format!("{e}\nhint: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or a profile's session credentials) and AWS_REGION"))
}

#[cfg(not(feature = "s3"))]
fn open_s3(_: &str, _: &DeployConfig) -> Result<Arc<dyn ObjectStore>, String> {
    Err("this staleguard was built without S3 support (cargo feature `s3`)".into())
}

#[cfg(feature = "gcs")]
fn open_gcs(url: &str) -> Result<Arc<dyn ObjectStore>, String> {
    object_store::gcp::GoogleCloudStorageBuilder::from_env()
        .with_url(url)
        .build()
        .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "gcs"))]
fn open_gcs(_: &str) -> Result<Arc<dyn ObjectStore>, String> {
    Err(
        "this staleguard was built without Google Cloud Storage support (cargo feature `gcs`)"
            .into(),
    )
}

#[cfg(feature = "azure")]
fn open_azure(url: &str) -> Result<Arc<dyn ObjectStore>, String> {
    object_store::azure::MicrosoftAzureBuilder::from_env()
        .with_url(url)
        .build()
        .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "azure"))]
fn open_azure(_: &str) -> Result<Arc<dyn ObjectStore>, String> {
    Err("this staleguard was built without Azure support (cargo feature `azure`)".into())
}
