//! memcached, on the `memcache` crate (ASCII protocol, TCP or a Unix socket): its client is
//! synchronous, so each step runs on tokio's blocking pool, under the target's deadline.

use std::sync::Arc;
use std::time::Duration;

use memcache::{Client, MemcacheError};

use crate::{Backend, Fault, within};

pub(crate) struct Memcached {
    url: String,
    timeout: Duration,
    client: Arc<std::sync::Mutex<Option<Arc<Client>>>>,
}

fn fault(e: MemcacheError) -> Fault {
    match e {
        MemcacheError::IOError(e) => Fault::Unreachable(e.to_string()),
        MemcacheError::PoolError(e) => Fault::Unreachable(e.to_string()),
        other => {
            let text = other.to_string();
            if text.to_ascii_lowercase().contains("auth") {
                Fault::Auth(text)
            } else {
                Fault::Other(text)
            }
        }
    }
}

impl Memcached {
    /// `memcached://HOST:PORT` (or `memcache://`), `memcached+unix:///PATH`.
    pub(crate) fn open(url: &str, timeout: Duration) -> Result<Memcached, String> {
        let rest = url
            .strip_prefix("memcached")
            .or_else(|| url.strip_prefix("memcache"))
            .ok_or_else(|| format!("`{url}` is not a memcached URL"))?;
        let secs = timeout.as_secs_f64().max(0.001);
        let sep = if rest.contains('?') { '&' } else { '?' };
        Ok(Memcached {
            url: format!("memcache{rest}{sep}protocol=ascii&timeout={secs}"),
            timeout,
            client: Arc::default(),
        })
    }

    /// Runs `f` with the client on the blocking pool (connecting first if needed; a broken client is
    /// dropped so the next step connects again).
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Client) -> Result<T, MemcacheError> + Send + 'static,
    ) -> Result<T, Fault> {
        let (url, slot, timeout) = (self.url.clone(), self.client.clone(), self.timeout);
        let run = async move {
            tokio::task::spawn_blocking(move || {
                let held = slot.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let client = match held {
                    Some(c) => c,
                    None => {
                        let c = Arc::new(
                            Client::builder()
                                .add_server(url.as_str())
                                .and_then(|b| {
                                    b.with_max_pool_size(1)
                                        .with_connection_timeout(timeout)
                                        .with_read_timeout(timeout)
                                        .with_write_timeout(timeout)
                                        .build()
                                })
                                .map_err(fault)?,
                        );
                        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
                        c
                    }
                };
                let r = f(&client).map_err(fault);
                if matches!(r, Err(Fault::Unreachable(_))) {
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
                }
                r
            })
            .await
            .map_err(|e| Fault::Other(format!("the memcached step stopped: {e}")))?
        };
        within(self.timeout, run).await
    }
}

/// memcached's answer to `incr`/`add` when the key is missing or present is an error value of the
/// crate's; these tell them apart from real failures.
fn not_found(e: &MemcacheError) -> bool {
    matches!(
        e,
        MemcacheError::CommandError(memcache::CommandError::KeyNotFound)
    ) || e.to_string().contains("NOT_FOUND")
}

fn not_stored(e: &MemcacheError) -> bool {
    matches!(
        e,
        MemcacheError::CommandError(memcache::CommandError::KeyExists)
    ) || e.to_string().contains("NOT_STORED")
}

#[async_trait::async_trait]
impl Backend for Memcached {
    async fn bump(&self, key: &str, seed: u64) -> Result<u64, Fault> {
        let key = key.to_string();
        self.with(move |c| {
            // Evicted between the add and the incr: once more.
            for _ in 0..3 {
                match c.add(&key, seed, 0) {
                    Ok(()) => {}
                    Err(e) if not_stored(&e) => {}
                    Err(e) => return Err(e),
                }
                match c.increment(&key, 1) {
                    Ok(v) => return Ok(v),
                    Err(e) if not_found(&e) => continue,
                    Err(e) => return Err(e),
                }
            }
            c.increment(&key, 1)
        })
        .await
    }

    async fn read(&self, key: &str) -> Result<Option<u64>, Fault> {
        let key = key.to_string();
        let v: Option<String> = self.with(move |c| c.get::<String>(&key)).await?;
        match v {
            None => Ok(None),
            Some(s) => s.trim().parse().map(Some).map_err(|_| {
                Fault::Other(format!(
                    "the counter holds `{}`, not a version number: is another program using this key?",
                    s.chars().take(40).collect::<String>()
                ))
            }),
        }
    }

    async fn delete_matching(&self, _pattern: &str, _count: u32) -> Result<u64, Fault> {
        // Refused when the config is loaded; kept total for the trait.
        Err(Fault::Other(
            "memcached cannot list its keys: delete-prefix is Redis only".into(),
        ))
    }

    async fn flush(&self) -> Result<(), Fault> {
        self.with(|c| c.flush()).await
    }
}
