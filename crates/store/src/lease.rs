//! The deploy lease: one `deploy` or `rollback` at a time per store, and state files updated without
//! lost writes.
//!
//! - A local folder (`file://`): an OS lock (`flock`) on `.staleguard/lock.json`, released by the kernel
//!   when the process ends however it ends (a `kill -9` included), so it never needs to expire. The file
//!   says who holds it, for the message a waiting deploy prints.
//! - An object store: `.staleguard/lock.json` created with `If-None-Match: *` (only one creator wins),
//!   holding its owner, host, pid, start and expiry, renewed every third of its TTL with `If-Match` on the
//!   version it last wrote. A holder that died stops renewing: once expired, the next deploy takes it
//!   over with `If-Match` on the version it read (only one taker wins) and resumes the dead one's journal.
//!   A renewal that finds the lock changed means the lease was lost: the deploy stops before its commit.
//! - A store without conditional writes says so ([`StoreError::NoConditional`]); nothing pretends.
//!
//! Lease times are the machine's real clock, never the deploy clock (`STALEGUARD_NOW`).

use std::io::{Read, Seek, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::UpdateVersion;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::store::Store;
use crate::{Result, StoreError};

pub const LOCK_KEY: &str = ".staleguard/lock.json";

/// Who holds (or held) a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub format: u32,
    /// Random per acquisition: a holder recognises its own lock.
    pub token: String,
    /// `deploy` or `rollback`.
    pub op: String,
    /// `user@host`.
    pub owner: String,
    pub pid: u32,
    /// Unix seconds.
    pub started: i64,
    /// Unix seconds; 0 for an OS lock (held exactly as long as the process).
    pub expires: i64,
}

impl Holder {
    fn new(op: &str, ttl: Duration, local: bool) -> Holder {
        let now = unix_now();
        Holder {
            format: 1,
            token: token(),
            op: op.to_string(),
            owner: owner(),
            pid: std::process::id(),
            started: now,
            expires: if local {
                0
            } else {
                now + ttl.as_secs().max(1) as i64
            },
        }
    }

    /// `deploy by ci@runner-7 (pid 4242), started 40 s ago, lease expires in 80 s`.
    pub fn describe(&self) -> String {
        let now = unix_now();
        let mut s = format!(
            "`{}` by {} (pid {}), started {} ago",
            self.op,
            self.owner,
            self.pid,
            ago(now - self.started)
        );
        if self.expires > 0 {
            if self.expires > now {
                s.push_str(&format!(", lease expires in {}", ago(self.expires - now)));
            } else {
                s.push_str(", lease expired");
            }
        }
        s
    }
}

fn ago(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn token() -> String {
    let seed = format!(
        "{}-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
        std::thread::current().id()
    );
    blake3::hash(seed.as_bytes()).to_hex()[..16].to_string()
}

fn owner() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "?".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "?".into());
    format!("{user}@{host}")
}

/// How long a lease lives without renewal, and how long to wait for another holder.
#[derive(Debug, Clone, Copy)]
pub struct LeaseOptions {
    pub ttl: Duration,
    pub wait: Duration,
}

enum Inner {
    Local(std::fs::File),
    Remote {
        version: Arc<tokio::sync::Mutex<UpdateVersion>>,
        renewer: tokio::task::JoinHandle<()>,
    },
}

/// A held lease; [`Lease::release`] it when done (a dropped local lease is released by the OS).
pub struct Lease {
    inner: Inner,
    store: Store,
    holder: Holder,
    lost: Arc<AtomicBool>,
    /// The expired lease this one took over, if any.
    pub took_over: Option<Holder>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("holder", &self.holder)
            .finish()
    }
}

fn locked(store: &Store, holder: String, waited: Duration, remote: bool) -> StoreError {
    StoreError::Locked {
        url: store.url.clone(),
        holder,
        hint: format!(
            "waited {}; another deploy or rollback is running on this store: let it finish, or raise --lock-timeout{}",
            ago(waited.as_secs() as i64),
            if remote {
                "; if its process is gone, the lease frees itself when it expires, or `staleguard deploys --unlock` removes it now"
            } else {
                ""
            }
        ),
    }
}

/// Takes the store's lease for `op`, waiting up to `opts.wait` for a holder to finish.
pub async fn acquire(store: &Store, op: &str, opts: &LeaseOptions) -> Result<Lease> {
    let started = Instant::now();
    let deadline = started + opts.wait;
    let pause = |left: Duration| tokio::time::sleep(left.min(Duration::from_millis(250)));
    if let Some(path) = store.local_file(LOCK_KEY) {
        let local = |source| StoreError::Local {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(local)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(local)?;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    let now = Instant::now();
                    if now >= deadline {
                        let mut text = String::new();
                        let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
                        let who = serde_json::from_str::<Holder>(&text)
                            .map_or_else(|_| "another process".to_string(), |h| h.describe());
                        return Err(locked(store, who, started.elapsed(), false));
                    }
                    pause(deadline - now).await;
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(local(e)),
            }
        }
        let holder = Holder::new(op, opts.ttl, true);
        let json = serde_json::to_vec_pretty(&holder).unwrap_or_default();
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(&json))
            .map_err(local)?;
        return Ok(Lease {
            inner: Inner::Local(file),
            store: store.clone(),
            holder,
            lost: Arc::new(AtomicBool::new(false)),
            took_over: None,
        });
    }
    loop {
        let holder = Holder::new(op, opts.ttl, false);
        let json = Bytes::from(serde_json::to_vec_pretty(&holder).unwrap_or_default());
        let mut took_over = None;
        let version = match store.create(LOCK_KEY, json.clone()).await? {
            Some(v) => Some(v),
            None => match store.get_versioned(LOCK_KEY).await? {
                None => continue, // released between the two requests
                Some((bytes, v)) => {
                    let current = serde_json::from_slice::<Holder>(&bytes).ok();
                    let expired = current.as_ref().is_none_or(|h| h.expires <= unix_now());
                    if expired {
                        took_over = current.clone();
                        store.update(LOCK_KEY, json, v).await?
                    } else {
                        let now = Instant::now();
                        if now >= deadline {
                            let who = current.map_or_else(String::new, |h| h.describe());
                            return Err(locked(store, who, started.elapsed(), true));
                        }
                        pause(deadline - now).await;
                        continue;
                    }
                }
            },
        };
        let Some(version) = version else { continue }; // lost a race: look again
        if let Some(h) = &took_over {
            tracing::warn!(holder = %h.describe(), "took over an expired deploy lease; resuming its journal");
        }
        let version = Arc::new(tokio::sync::Mutex::new(version));
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = tokio::spawn(renew(
            store.clone(),
            holder.clone(),
            opts.ttl,
            version.clone(),
            lost.clone(),
        ));
        return Ok(Lease {
            inner: Inner::Remote { version, renewer },
            store: store.clone(),
            holder,
            lost,
            took_over,
        });
    }
}

/// Extends a remote lease every third of its TTL, with `If-Match` on the version it last wrote.
async fn renew(
    store: Store,
    mut holder: Holder,
    ttl: Duration,
    version: Arc<tokio::sync::Mutex<UpdateVersion>>,
    lost: Arc<AtomicBool>,
) {
    let every = (ttl / 3).max(Duration::from_millis(200));
    loop {
        tokio::time::sleep(every).await;
        holder.expires = unix_now() + ttl.as_secs().max(1) as i64;
        let json = Bytes::from(serde_json::to_vec_pretty(&holder).unwrap_or_default());
        let mut v = version.lock().await;
        match store.update(LOCK_KEY, json, v.clone()).await {
            Ok(Some(next)) => *v = next,
            Ok(None) => {
                tracing::error!(
                    "the deploy lease was taken over by another deploy; stopping before the commit"
                );
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) => tracing::warn!(error = %e, "could not renew the deploy lease; retrying"),
        }
    }
}

impl Lease {
    /// Fails when the lease was lost (a remote one not renewed in time and taken over): the caller must
    /// not commit.
    pub fn check(&self) -> Result<()> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(StoreError::Locked {
                url: self.store.url.clone(),
                holder: "another deploy, which took over this deploy's expired lease".into(),
                hint: "nothing was committed; run the deploy again (raise [deploy] lock-ttl if the store is slow to answer)".into(),
            });
        }
        Ok(())
    }

    /// Gives the lease back.
    pub async fn release(self) -> Result<()> {
        match self.inner {
            Inner::Local(file) => {
                let _ = file.set_len(0);
                drop(file); // closing the file releases the OS lock
                Ok(())
            }
            Inner::Remote { version, renewer } => {
                renewer.abort();
                drop(version);
                // Delete only our own lock: read it back and compare the token first.
                if let Some(bytes) = self.store.get(LOCK_KEY).await?
                    && serde_json::from_slice::<Holder>(&bytes)
                        .is_ok_and(|h| h.token == self.holder.token)
                {
                    self.store.delete(LOCK_KEY).await?;
                }
                Ok(())
            }
        }
    }
}

/// Who holds the store's lease now, if anyone (a local lock is held only while its process runs).
pub async fn holder(store: &Store) -> Result<Option<Holder>> {
    if let Some(path) = store.local_file(LOCK_KEY) {
        let Ok(file) = std::fs::File::open(&path) else {
            return Ok(None);
        };
        return Ok(match file.try_lock_shared() {
            Ok(()) => None,
            Err(_) => std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok()),
        });
    }
    Ok(store
        .get(LOCK_KEY)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

/// Removes a remote lease by hand (`staleguard deploys --unlock`), returning who held it. A local lock
/// needs no unlocking: the OS frees it when its process ends.
pub async fn unlock(store: &Store) -> Result<Option<Holder>> {
    if store.local_file(LOCK_KEY).is_some() {
        return holder(store).await;
    }
    let h = holder(store).await?;
    store.delete(LOCK_KEY).await?;
    Ok(h)
}

/// Read-modify-write of a JSON state file without lost updates: on a local folder under an OS lock
/// (`KEY.lock`); on an object store with `If-Match` (or `If-None-Match: *` for a new file), re-reading
/// and re-applying `f` when another writer got there first.
pub async fn update_json<T, F>(store: &Store, key: &str, mut f: F) -> Result<T>
where
    T: Serialize + DeserializeOwned + Default,
    F: FnMut(T) -> T,
{
    if let Some(path) = store.local_file(key) {
        let lock_path = path.with_extension("lock");
        let local = |source| StoreError::Local {
            path: lock_path.clone(),
            source,
        };
        if let Some(dir) = lock_path.parent() {
            std::fs::create_dir_all(dir).map_err(local)?;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(local)?;
        // Held for one read and one write; blocking is brief.
        let file = tokio::task::spawn_blocking(move || file.lock().map(|()| file))
            .await
            .map_err(|e| StoreError::Config(format!("lock task failed: {e}")))?
            .map_err(local)?;
        let value = f(store.get_json::<T>(key).await?.unwrap_or_default());
        store.put_json(key, &value).await?;
        drop(file);
        return Ok(value);
    }
    for _ in 0..64 {
        let read = store.get_versioned(key).await?;
        let (old, version) = match read {
            Some((bytes, v)) => (
                serde_json::from_slice::<T>(&bytes).map_err(|e| StoreError::State {
                    key: key.to_string(),
                    reason: e.to_string(),
                })?,
                Some(v),
            ),
            None => (T::default(), None),
        };
        let value = f(old);
        let json = crate::store::json_body(key, &value)?;
        let done = match version {
            Some(v) => store.update(key, json, v).await?,
            None => store.create(key, json).await?,
        };
        if done.is_some() {
            return Ok(value);
        }
        tracing::debug!(key, "another writer changed the state file; re-reading");
    }
    Err(StoreError::State {
        key: key.to_string(),
        reason: "changed by other writers 64 times in a row while updating it".into(),
    })
}

/// [`holder`] of the store at `url`.
pub async fn holder_at(
    url: &str,
    config: &staleguard_core::DeployConfig,
    base: &std::path::Path,
) -> Result<Option<Holder>> {
    holder(&Store::open(url, config, base)?).await
}

/// [`unlock`] of the store at `url`.
pub async fn unlock_at(
    url: &str,
    config: &staleguard_core::DeployConfig,
    base: &std::path::Path,
) -> Result<Option<Holder>> {
    unlock(&Store::open(url, config, base)?).await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn folder() -> (tempfile::TempDir, Store) {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(
            "file://store",
            &staleguard_core::DeployConfig::default(),
            t.path(),
        )
        .unwrap();
        (t, s)
    }

    /// Many writers at once, each adding its own key: none is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_updates_of_a_state_file_lose_nothing() {
        let (_t, store) = folder();
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    update_json(
                        &store,
                        ".staleguard/purged.json",
                        |mut m: BTreeMap<String, u32>| {
                            m.insert(format!("cdn{i}"), i);
                            m
                        },
                    )
                    .await
                    .unwrap();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let m: BTreeMap<String, u32> = store
            .get_json(".staleguard/purged.json")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.len(), 24, "{m:?}");
    }

    /// A folder's lease: a second taker waits, then fails naming the holder; the lease is free again
    /// once released.
    #[tokio::test]
    async fn a_folder_lease_is_exclusive_and_names_its_holder() {
        let (_t, store) = folder();
        let opts = LeaseOptions {
            ttl: Duration::from_secs(60),
            wait: Duration::from_millis(300),
        };
        let first = acquire(&store, "deploy", &opts).await.unwrap();
        let held = holder(&store).await.unwrap().expect("held");
        assert_eq!(held.pid, std::process::id());
        let err = acquire(&store, "rollback", &opts)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("is locked by `deploy` by"), "{err}");
        first.release().await.unwrap();
        assert!(holder(&store).await.unwrap().is_none());
        acquire(&store, "rollback", &opts)
            .await
            .unwrap()
            .release()
            .await
            .unwrap();
    }
}
