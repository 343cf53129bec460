//! Redis [`TokenCache`]: several server instances share one token per appid.
//!
//! * Token: `SET key value PX ttl` — the key's TTL *is* the token's validity, read back atomically
//!   with `GET` + `PTTL` in one script.
//! * Compare-and-delete: a Lua script deletes the key only if it still holds the failed value.
//! * Lock: `SET lock owner NX PX ttl`; release with a Lua script that deletes only if the value is
//!   still our owner id (a lock that expired and was re-taken by another instance is not ours).
//! * Every command has a timeout ([`CacheError::Timeout`]); the connection manager reconnects.
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{now_ms, CacheError, CachedToken, TokenCache};
use crate::secret::Secret;

const GET_WITH_TTL: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.call('PTTL', KEYS[1])}
";

const DELETE_IF_EQUALS: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// A [`TokenCache`] in Redis.
#[derive(Clone)]
pub struct RedisTokenCache {
    conn: ConnectionManager,
    op_timeout: Duration,
    get_script: redis::Script,
    cad_script: redis::Script,
}

impl std::fmt::Debug for RedisTokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTokenCache")
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }
}

fn backend(e: redis::RedisError) -> CacheError {
    CacheError::Backend(format!(
        "{:?}: {}",
        e.kind(),
        e.detail().unwrap_or("redis error")
    ))
}

impl RedisTokenCache {
    /// Connects (`redis://127.0.0.1:6379/`), with 2-second connect and command timeouts.
    pub async fn connect(url: &str) -> Result<Self, CacheError> {
        Self::connect_with_timeout(url, Duration::from_secs(2)).await
    }

    /// Connects with the given connect and per-command timeout.
    pub async fn connect_with_timeout(url: &str, timeout: Duration) -> Result<Self, CacheError> {
        let client = redis::Client::open(url).map_err(backend)?;
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let conn =
            tokio::time::timeout(timeout * 2, client.get_connection_manager_with_config(cfg))
                .await
                .map_err(|_| CacheError::Timeout)?
                .map_err(backend)?;
        Ok(Self::from_manager(conn, timeout))
    }

    /// Wraps an existing connection manager.
    pub fn from_manager(conn: ConnectionManager, op_timeout: Duration) -> Self {
        Self {
            conn,
            op_timeout,
            get_script: redis::Script::new(GET_WITH_TTL),
            cad_script: redis::Script::new(DELETE_IF_EQUALS),
        }
    }

    async fn timed<T>(
        &self,
        f: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, CacheError> {
        tokio::time::timeout(self.op_timeout, f)
            .await
            .map_err(|_| CacheError::Timeout)?
            .map_err(backend)
    }
}

#[async_trait]
impl TokenCache for RedisTokenCache {
    async fn get(&self, key: &str) -> Result<Option<CachedToken>, CacheError> {
        let mut c = self.conn.clone();
        let got: Option<(String, i64)> = self
            .timed(self.get_script.key(key).invoke_async(&mut c))
            .await?;
        Ok(match got {
            Some((v, pttl)) if pttl > 0 => Some(CachedToken {
                value: Secret::new(v),
                expires_at_ms: now_ms().saturating_add(pttl as u64),
            }),
            _ => None,
        })
    }

    async fn set(&self, key: &str, token: &CachedToken) -> Result<(), CacheError> {
        let ttl = token.expires_at_ms.saturating_sub(now_ms());
        if ttl == 0 {
            return Ok(());
        }
        let mut c = self.conn.clone();
        self.timed(
            redis::cmd("SET")
                .arg(key)
                .arg(token.value.expose_str())
                .arg("PX")
                .arg(ttl)
                .query_async::<()>(&mut c),
        )
        .await
    }

    async fn delete_if_equals(&self, key: &str, value: &str) -> Result<bool, CacheError> {
        let mut c = self.conn.clone();
        let n: i64 = self
            .timed(self.cad_script.key(key).arg(value).invoke_async(&mut c))
            .await?;
        Ok(n > 0)
    }

    async fn try_lock(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, CacheError> {
        let mut c = self.conn.clone();
        let ok: Option<String> = self
            .timed(
                redis::cmd("SET")
                    .arg(key)
                    .arg(owner)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl.as_millis().max(1) as u64)
                    .query_async(&mut c),
            )
            .await?;
        Ok(ok.is_some())
    }

    async fn unlock(&self, key: &str, owner: &str) -> Result<bool, CacheError> {
        self.delete_if_equals(key, owner).await
    }
}
