//! Where a case deploys: a store URL and a work folder (`site/` sources, `out/` the build, and for
//! `file://store` the store itself), with the deploy options the binary would pass for a default
//! config, and blocking wrappers around the store's async API.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use staleguard_core::config::{BuildConfig, DeployConfig, ServeConfig};
use staleguard_core::deploy::{self as d, Current, DeployRecord, History};
use staleguard_store::{DeployOptions, DeployReport, Progress, Store};

/// The environment a child process finds its target in.
pub const URL_VAR: &str = "STORE_IT_URL";
pub const WORK_VAR: &str = "STORE_IT_WORK";

struct Quiet;
impl Progress for Quiet {}

pub struct Target {
    pub url: String,
    pub work: PathBuf,
    pub config: DeployConfig,
    rt: tokio::runtime::Runtime,
}

impl Target {
    /// `url` with its work folder `work`; relative `file://` URLs are relative to `work`.
    pub fn new(url: &str, work: PathBuf) -> Target {
        let config = DeployConfig {
            store: url.to_string(),
            // A deploy killed while holding an S3 lease blocks the next one this long at most.
            lock_ttl: "2s".parse().expect("a duration"),
            lock_timeout: "1m".parse().expect("a duration"),
            ..DeployConfig::default()
        };
        Target {
            url: url.to_string(),
            work,
            config,
            rt: tokio::runtime::Runtime::new().unwrap(),
        }
    }

    /// The target a parent process handed down ([`Target::env`]).
    pub fn from_env() -> Target {
        let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
        Target::new(&var(URL_VAR), PathBuf::from(var(WORK_VAR)))
    }

    /// What a child needs to find this target again.
    pub fn env(&self) -> [(&'static str, String); 2] {
        [
            (URL_VAR, self.url.clone()),
            (WORK_VAR, self.work.to_string_lossy().to_string()),
        ]
    }

    /// The options `staleguard deploy` passes for a default config, at deploy time `now`.
    pub fn options(&self, now: i64) -> DeployOptions {
        let b = BuildConfig::default();
        let serve = ServeConfig::default();
        let pointers: Vec<String> = [&b.manifest, &b.django_manifest, &b.build_info]
            .into_iter()
            .filter(|n| !n.is_empty())
            .cloned()
            .collect();
        DeployOptions {
            dir: self.work.join("out"),
            base: self.work.clone(),
            config: self.config.clone(),
            routes: Vec::new(),
            default_headers: serve.effective_headers(),
            cors_fonts: serve.cors_fonts,
            tag_header: serve.tag_header.clone(),
            manifest_name: b.manifest.clone(),
            private: pointers.clone(),
            pointers,
            git_commit: None,
            dry_run: false,
            verify_remote: false,
            gc: true,
            now,
        }
    }

    /// Deploys `out/` at `now`.
    pub fn deploy(&self, now: i64) -> DeployReport {
        self.rt
            .block_on(staleguard_store::deploy(
                &self.options(now),
                Arc::new(Quiet),
            ))
            .unwrap_or_else(|e| panic!("deploy to `{}`: {e}", self.url))
    }

    /// Deploys `out/` at `now`, the error as its message and hint.
    pub fn try_deploy(&self, now: i64) -> Result<DeployReport, String> {
        self.rt
            .block_on(staleguard_store::deploy(
                &self.options(now),
                Arc::new(Quiet),
            ))
            .map_err(|e| format!("{e}\nhint: {}", e.hint().unwrap_or_default()))
    }

    /// The current deploy's record, as `build --reuse-from` reads it.
    pub fn current_record(&self) -> Option<DeployRecord> {
        self.rt
            .block_on(staleguard_store::deploy::current_record(
                &self.url,
                &self.config,
                &self.work,
            ))
            .unwrap_or_else(|e| panic!("current record of `{}`: {e}", self.url))
    }

    /// Rolls back to `to` (`None`: the deploy before the current one) at `now`.
    pub fn rollback(&self, now: i64, to: Option<&str>) -> DeployReport {
        self.rt
            .block_on(staleguard_store::rollback(
                &self.options(now),
                to,
                Arc::new(Quiet),
            ))
            .unwrap_or_else(|e| panic!("rollback on `{}`: {e}", self.url))
    }

    /// The committed history, oldest first, and the current deploy's id.
    pub fn history(&self) -> (History, Option<String>) {
        self.rt
            .block_on(staleguard_store::history(
                &self.url,
                &self.config,
                &self.work,
            ))
            .unwrap_or_else(|e| panic!("history of `{}`: {e}", self.url))
    }

    /// The ids in [`Target::history`].
    pub fn history_ids(&self) -> Vec<String> {
        self.history().0.deploys.into_iter().map(|e| e.id).collect()
    }

    fn store(&self) -> Store {
        Store::open(&self.url, &self.config, &self.work)
            .unwrap_or_else(|e| panic!("open `{}`: {e}", self.url))
    }

    /// An object's bytes, `None` when the store has no such key.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.rt
            .block_on(self.store().get(key))
            .unwrap_or_else(|e| panic!("get `{key}`: {e}"))
            .map(|b| b.to_vec())
    }

    /// What `current.json` names, read directly.
    pub fn current(&self) -> Option<String> {
        self.rt
            .block_on(self.store().get_json::<Current>(d::CURRENT_KEY))
            .unwrap_or_else(|e| panic!("get `{}`: {e}", d::CURRENT_KEY))
            .map(|c| c.id)
    }

    /// A deploy's record.
    pub fn record(&self, id: &str) -> DeployRecord {
        self.rt
            .block_on(self.store().get_json::<DeployRecord>(&d::record_key(id)))
            .unwrap_or_else(|e| panic!("get the record of {id}: {e}"))
            .unwrap_or_else(|| panic!("no record of {id} in `{}`", self.url))
    }

    /// Every object of a deploy's record is in the store; the ones the build output has (the site's
    /// files, and the manifests under `.staleguard/build/`) with the output's bytes.
    pub fn assert_serves(&self, id: &str) {
        let record = self.record(id);
        assert!(!record.objects.is_empty(), "{id} has no objects");
        let out = self.work.join("out");
        for key in record.objects.keys() {
            let got = self
                .get(key)
                .unwrap_or_else(|| panic!("`{key}` of {id} is missing from `{}`", self.url));
            let local = out.join(key.strip_prefix(".staleguard/build/").unwrap_or(key));
            if !key.starts_with(".staleguard/bundles/") && local.is_file() {
                assert!(
                    got == std::fs::read(&local).unwrap(),
                    "`{key}` in the store differs from {}",
                    local.display()
                );
            }
        }
    }

    /// Every object of a deploy's record is in the store (whatever build `out/` holds now).
    pub fn assert_complete(&self, id: &str) {
        for key in self.record(id).objects.keys() {
            assert!(
                self.get(key).is_some(),
                "`{key}` of {id} is missing from `{}`",
                self.url
            );
        }
    }

    /// The keys a report uploaded, the rollback copies (bundles) aside.
    pub fn uploaded(report: &DeployReport) -> BTreeSet<String> {
        report
            .plan
            .uploads
            .iter()
            .map(|u| u.key.clone())
            .filter(|k| !k.starts_with(".staleguard/bundles/"))
            .collect()
    }
}
