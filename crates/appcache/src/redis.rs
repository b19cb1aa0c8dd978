//! Redis, on the `redis` crate's multiplexed async connection (made on first use, made again after
//! a broken one).

use std::time::Duration;

use redis::{
    AsyncConnectionConfig, Client, IntoConnectionInfo, RedisError, aio::MultiplexedConnection,
};
use tokio::sync::Mutex;

use crate::{Backend, Fault, within};

pub(crate) struct Redis {
    client: Client,
    timeout: Duration,
    conn: Mutex<Option<MultiplexedConnection>>,
}

fn fault(e: RedisError) -> Fault {
    let text = e.to_string();
    let upper = text.to_ascii_uppercase();
    if upper.contains("NOAUTH")
        || upper.contains("WRONGPASS")
        || upper.contains("INVALID PASSWORD")
        || upper.contains("AUTHENTICATION")
        || upper.contains("NOPERM")
    {
        Fault::Auth(text)
    } else if e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_timeout()
    {
        Fault::Unreachable(text)
    } else {
        Fault::Other(text)
    }
}

impl Redis {
    pub(crate) fn open(
        url: &str,
        password: Option<String>,
        timeout: Duration,
    ) -> Result<Redis, String> {
        let mut info = url
            .into_connection_info()
            .map_err(|e| format!("not a Redis URL: {e}"))?;
        if let Some(p) = password {
            let settings = info.redis_settings().clone().set_password(p);
            info = info.set_redis_settings(settings);
        }
        let client = Client::open(info).map_err(|e| e.to_string())?;
        Ok(Redis {
            client,
            timeout,
            conn: Mutex::new(None),
        })
    }

    async fn conn(&self) -> Result<MultiplexedConnection, Fault> {
        let mut held = self.conn.lock().await;
        if let Some(c) = held.as_ref() {
            return Ok(c.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let c = within(self.timeout, async {
            self.client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .map_err(fault)
        })
        .await?;
        // A PING first: a server that wants a password says so here (NOAUTH), before a transaction
        // (the crate's pipeline handling does not survive an error on every command).
        let mut probe = c.clone();
        within(self.timeout, async {
            redis::cmd("PING")
                .query_async::<String>(&mut probe)
                .await
                .map_err(fault)
        })
        .await?;
        *held = Some(c.clone());
        Ok(c)
    }

    /// Runs `f` on the connection; a broken connection is dropped (the next call connects again).
    async fn with<T>(
        &self,
        f: impl AsyncFnOnce(&mut MultiplexedConnection) -> Result<T, RedisError>,
    ) -> Result<T, Fault> {
        let mut c = self.conn().await?;
        let r = within(self.timeout, async { f(&mut c).await.map_err(fault) }).await;
        if matches!(r, Err(Fault::Unreachable(_))) {
            *self.conn.lock().await = None;
        }
        r
    }
}

#[async_trait::async_trait]
impl Backend for Redis {
    async fn bump(&self, key: &str, seed: u64) -> Result<u64, Fault> {
        self.with(async |c| {
            // One transaction: the seed only if the counter is missing, then the increment.
            let (v,): (u64,) = redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(key)
                .arg(seed)
                .arg("NX")
                .ignore()
                .cmd("INCR")
                .arg(key)
                .query_async(c)
                .await?;
            Ok(v)
        })
        .await
    }

    async fn read(&self, key: &str) -> Result<Option<u64>, Fault> {
        let v: Option<String> = self
            .with(async |c| redis::cmd("GET").arg(key).query_async(c).await)
            .await?;
        match v {
            None => Ok(None),
            Some(s) => s.trim().parse().map(Some).map_err(|_| {
                Fault::Other(format!(
                    "`{key}` holds `{}`, not a version number: is another program using this key?",
                    s.chars().take(40).collect::<String>()
                ))
            }),
        }
    }

    async fn delete_matching(&self, pattern: &str, count: u32) -> Result<u64, Fault> {
        let mut cursor: u64 = 0;
        let mut deleted = 0u64;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = self
                .with(async |c| {
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(pattern)
                        .arg("COUNT")
                        .arg(count)
                        .query_async(c)
                        .await
                })
                .await?;
            if !keys.is_empty() {
                let n: u64 = self
                    .with(async |c| redis::cmd("UNLINK").arg(&keys).query_async(c).await)
                    .await?;
                deleted += n;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }

    async fn flush(&self) -> Result<(), Fault> {
        self.with(async |c| redis::cmd("FLUSHDB").query_async::<()>(c).await)
            .await
    }
}
