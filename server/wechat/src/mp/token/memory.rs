//! In-process [`TokenCache`]: for a single instance (or tests).
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{now_ms, CacheError, CachedToken, TokenCache};

/// A [`TokenCache`] in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryTokenCache {
    entries: Mutex<HashMap<String, CachedToken>>,
    locks: Mutex<HashMap<String, (String, Instant)>>,
}

impl MemoryTokenCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }
}

fn poisoned<T>(_: T) -> CacheError {
    CacheError::Backend("memory cache lock poisoned".into())
}

#[async_trait]
impl TokenCache for MemoryTokenCache {
    async fn get(&self, key: &str) -> Result<Option<CachedToken>, CacheError> {
        let mut m = self.entries.lock().map_err(poisoned)?;
        match m.get(key) {
            Some(t) if t.is_valid(now_ms()) => Ok(Some(t.clone())),
            Some(_) => {
                m.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn set(&self, key: &str, token: &CachedToken) -> Result<(), CacheError> {
        self.entries
            .lock()
            .map_err(poisoned)?
            .insert(key.to_owned(), token.clone());
        Ok(())
    }

    async fn delete_if_equals(&self, key: &str, value: &str) -> Result<bool, CacheError> {
        let mut m = self.entries.lock().map_err(poisoned)?;
        if m.get(key).is_some_and(|t| t.value.expose_str() == value) {
            m.remove(key);
            return Ok(true);
        }
        Ok(false)
    }

    async fn try_lock(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, CacheError> {
        let mut l = self.locks.lock().map_err(poisoned)?;
        let now = Instant::now();
        if l.get(key).is_some_and(|(_, until)| *until > now) {
            return Ok(false);
        }
        l.insert(key.to_owned(), (owner.to_owned(), now + ttl));
        Ok(true)
    }

    async fn unlock(&self, key: &str, owner: &str) -> Result<bool, CacheError> {
        let mut l = self.locks.lock().map_err(poisoned)?;
        if l.get(key).is_some_and(|(o, _)| o == owner) {
            l.remove(key);
            return Ok(true);
        }
        Ok(false)
    }
}
