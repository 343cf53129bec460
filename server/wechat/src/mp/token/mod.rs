//! The base `access_token` and the `jsapi_ticket`: one per appid, shared by every server instance.
//!
//! [`TokenManager`] implements the algorithm; [`TokenCache`] is the storage it runs on —
//! [`MemoryTokenCache`] for one process, [`RedisTokenCache`] for several (a drop-in: same trait).
//!
//! * **Refresh ahead**: a token within `refresh_ahead` (5 min) of expiry is refreshed by one caller
//!   while everyone else keeps using it; attempts are spaced by `refresh_ahead_retry` so a token WeChat
//!   re-issues unchanged (stable_token does that until its last 5 minutes) cannot cause a fetch storm.
//! * **Single flight**: an in-process mutex per token queues local callers, and a lock in the cache
//!   (`SET NX PX` in Redis, released only by its owner) serialises instances; whoever takes a lock
//!   re-reads the cache first, so 100 concurrent callers on N instances cause exactly one fetch.
//! * **Invalid token** (40001/40014/42001): [`TokenManager::invalidate`] deletes the cached value only
//!   if it is still the one that failed (compare-and-delete), so an instance holding a stale copy cannot
//!   throw away the fresh token another instance just stored; [`TokenManager::with_access_token`] then
//!   retries exactly once.
//! * `POST /cgi-bin/stable_token` by default (it does not invalidate tokens already handed out);
//!   `GET /cgi-bin/token` is selectable.
mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tracing::{debug, instrument, warn};

pub use self::memory::MemoryTokenCache;
#[cfg(feature = "redis")]
pub use self::redis::RedisTokenCache;
use crate::config::{BaseUrl, Hosts};
use crate::error::{parse_mp, ApiError, MpError};
use crate::http::{encode, read_capped, HttpError, DEFAULT_TIMEOUT, MAX_ANSWER_BYTES};
use crate::mp::jssdk::{self, WxConfig};
use crate::secret::Secret;

/// A cached token and when it expires (Unix milliseconds, meaningful across instances).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedToken {
    /// The token or ticket.
    pub value: Secret<String>,
    /// Expiry, Unix milliseconds.
    pub expires_at_ms: u64,
}

impl CachedToken {
    /// Still usable at `now_ms`.
    pub fn is_valid(&self, now_ms: u64) -> bool {
        now_ms < self.expires_at_ms
    }
    /// Usable and not yet inside the refresh-ahead window.
    pub fn is_fresh(&self, now_ms: u64, ahead: Duration) -> bool {
        now_ms.saturating_add(ahead.as_millis() as u64) < self.expires_at_ms
    }
}

/// The current time in Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A token-cache backend failure.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The backend failed (connection, command).
    #[error("token cache error: {0}")]
    Backend(String),
    /// The backend did not answer in time.
    #[error("token cache timed out")]
    Timeout,
}

/// Storage for tokens, plus the lock that makes refreshes single-flight across instances.
///
/// Implementations must make `delete_if_equals` and `unlock` atomic compare-and-delete operations,
/// and `try_lock` an atomic set-if-absent with expiry.
#[async_trait]
pub trait TokenCache: Send + Sync {
    /// Reads a token (`None` if absent or expired).
    async fn get(&self, key: &str) -> Result<Option<CachedToken>, CacheError>;
    /// Stores a token until its expiry.
    async fn set(&self, key: &str, token: &CachedToken) -> Result<(), CacheError>;
    /// Deletes the token only if its value is still `value`. Returns whether it deleted.
    async fn delete_if_equals(&self, key: &str, value: &str) -> Result<bool, CacheError>;
    /// Takes the lock `key` for `owner` if free; it expires after `ttl`. Returns whether taken.
    async fn try_lock(&self, key: &str, owner: &str, ttl: Duration) -> Result<bool, CacheError>;
    /// Releases the lock only if `owner` still holds it. Returns whether it released.
    async fn unlock(&self, key: &str, owner: &str) -> Result<bool, CacheError>;
}

/// Failure getting a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// WeChat refused or could not be reached.
    #[error(transparent)]
    Mp(#[from] MpError),
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// Another instance held the refresh lock for longer than `lock_wait`.
    #[error("timed out waiting for another instance to refresh the token")]
    LockTimeout,
    /// The last fetch failed a moment ago: WeChat is not asked again until the backoff passes
    /// (a loop of requests must not burn the daily quota).
    #[error("WeChat failed {failures} time(s) in a row ({last}); next try in {retry_in_ms} ms")]
    Backoff {
        /// Consecutive failures so far.
        failures: u32,
        /// The last failure, as text (never a secret).
        last: String,
        /// How long until WeChat is asked again.
        retry_in_ms: u64,
    },
}

impl TokenError {
    /// The typed WeChat error, if any.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Mp(e) => e.api(),
            _ => None,
        }
    }
}

/// Which endpoint issues the base access_token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenEndpoint {
    /// `POST /cgi-bin/stable_token` (`force_refresh: false`): does not invalidate earlier tokens.
    #[default]
    Stable,
    /// `GET /cgi-bin/token`: each call invalidates the previous token after a short overlap.
    Classic,
}

/// Which token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// The base access_token.
    AccessToken,
    /// The JS-SDK jsapi_ticket.
    JsapiTicket,
    /// The cards (卡券) api_ticket (`getticket?type=wx_card`), which signs `cardExt` / `cardSign`.
    CardTicket,
}

impl TokenKind {
    fn idx(self) -> usize {
        match self {
            Self::AccessToken => 0,
            Self::JsapiTicket => 1,
            Self::CardTicket => 2,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::JsapiTicket => "jsapi_ticket",
            Self::CardTicket => "wx_card_ticket",
        }
    }
}

/// Tuning of [`TokenManager`].
#[derive(Debug, Clone)]
pub struct TokenOptions {
    /// Endpoint for the access_token.
    pub endpoint: TokenEndpoint,
    /// Refresh this long before expiry (default 5 min).
    pub refresh_ahead: Duration,
    /// Smallest gap between two refresh-ahead attempts (default 30 s).
    pub refresh_ahead_retry: Duration,
    /// Lifetime of the cross-instance refresh lock (default 25 s; longer than a fetch).
    pub lock_ttl: Duration,
    /// How long to wait for another instance's refresh (default 30 s).
    pub lock_wait: Duration,
    /// How often to re-check while waiting (default 50 ms).
    pub poll_interval: Duration,
    /// Per-request timeout (default 10 s).
    pub timeout: Duration,
    /// Cache key prefix (default `wechat`): keys are `{prefix}:{appid}:access_token` etc.
    pub key_prefix: String,
    /// After a failed fetch, WeChat is not asked again for this long, doubling with each
    /// further failure up to `failure_backoff_max` (default 1 s … 60 s).
    pub failure_backoff: Duration,
    /// The longest wait after failures (default 60 s).
    pub failure_backoff_max: Duration,
}

impl Default for TokenOptions {
    fn default() -> Self {
        Self {
            endpoint: TokenEndpoint::Stable,
            refresh_ahead: Duration::from_secs(300),
            refresh_ahead_retry: Duration::from_secs(30),
            lock_ttl: Duration::from_secs(25),
            lock_wait: Duration::from_secs(30),
            poll_interval: Duration::from_millis(50),
            timeout: DEFAULT_TIMEOUT,
            key_prefix: "wechat".to_owned(),
            failure_backoff: Duration::from_secs(1),
            failure_backoff_max: Duration::from_secs(60),
        }
    }
}

struct Inner {
    appid: String,
    secret: Secret<String>,
    api: BaseUrl,
    http: reqwest::Client,
    cache: Arc<dyn TokenCache>,
    opts: TokenOptions,
    flights: [tokio::sync::Mutex<()>; 3],
    ahead_attempts: [std::sync::Mutex<Option<Instant>>; 3],
    failures: [std::sync::Mutex<Option<Failure>>; 3],
}

/// The last failed fetches of one token, remembered for a short, growing time.
#[derive(Debug, Clone)]
struct Failure {
    count: u32,
    until: Instant,
    last: String,
}

/// Gets, caches and refreshes the base access_token and jsapi_ticket of one appid. Clone freely.
#[derive(Clone)]
pub struct TokenManager {
    inner: Arc<Inner>,
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManager")
            .field("appid", &self.inner.appid)
            .field("api", &self.inner.api)
            .field("opts", &self.inner.opts)
            .finish_non_exhaustive()
    }
}

impl TokenManager {
    /// A manager with default options.
    pub fn new(
        appid: impl Into<String>,
        secret: Secret<String>,
        hosts: &Hosts,
        http: reqwest::Client,
        cache: Arc<dyn TokenCache>,
    ) -> Self {
        Self::with_options(appid, secret, hosts, http, cache, TokenOptions::default())
    }

    /// A manager with explicit options.
    pub fn with_options(
        appid: impl Into<String>,
        secret: Secret<String>,
        hosts: &Hosts,
        http: reqwest::Client,
        cache: Arc<dyn TokenCache>,
        opts: TokenOptions,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                appid: appid.into(),
                secret,
                api: hosts.api.clone(),
                http,
                cache,
                opts,
                flights: std::array::from_fn(|_| tokio::sync::Mutex::new(())),
                ahead_attempts: std::array::from_fn(|_| std::sync::Mutex::new(None)),
                failures: std::array::from_fn(|_| std::sync::Mutex::new(None)),
            }),
        }
    }

    /// The appid.
    pub fn appid(&self) -> &str {
        &self.inner.appid
    }

    /// The cache key of a token.
    pub fn cache_key(&self, kind: TokenKind) -> String {
        format!(
            "{}:{}:{}",
            self.inner.opts.key_prefix,
            self.inner.appid,
            kind.name()
        )
    }

    /// The base access_token.
    pub async fn access_token(&self) -> Result<Secret<String>, TokenError> {
        self.get(TokenKind::AccessToken).await
    }

    /// The jsapi_ticket.
    pub async fn jsapi_ticket(&self) -> Result<Secret<String>, TokenError> {
        self.get(TokenKind::JsapiTicket).await
    }

    /// The cards (卡券) api_ticket (`getticket?type=wx_card`), cached and single-flighted like the
    /// jsapi_ticket under its own key (`…:wx_card_ticket`).
    pub async fn card_api_ticket(&self) -> Result<Secret<String>, TokenError> {
        self.get(TokenKind::CardTicket).await
    }

    /// `wx.config` parameters for `url` (fragment stripped, fresh nonce and timestamp).
    pub async fn jssdk_config(&self, url: &str) -> Result<WxConfig, TokenError> {
        let ticket = self.jsapi_ticket().await?;
        Ok(jssdk::config(&self.inner.appid, ticket.expose_str(), url))
    }

    /// Drops the cached token if it is still `failed` (compare-and-delete). Returns whether it did.
    pub async fn invalidate(&self, kind: TokenKind, failed: &str) -> Result<bool, TokenError> {
        let deleted = self
            .inner
            .cache
            .delete_if_equals(&self.cache_key(kind), failed)
            .await?;
        debug!(token = kind.name(), deleted, "invalidated rejected token");
        Ok(deleted)
    }

    /// Runs `f` with the access_token; if WeChat rejects the token (40001/40014/42001), invalidates it
    /// (only if still cached) and runs `f` once more with a fresh one.
    pub async fn with_access_token<T, F, Fut>(&self, f: F) -> Result<T, TokenError>
    where
        F: Fn(Secret<String>) -> Fut,
        Fut: Future<Output = Result<T, MpError>>,
    {
        let token = self.access_token().await?;
        match f(token.clone()).await {
            Err(MpError::Api(e)) if e.is_access_token_invalid() => {
                self.invalidate(TokenKind::AccessToken, token.expose_str())
                    .await?;
                let fresh = self.access_token().await?;
                Ok(f(fresh).await?)
            }
            other => Ok(other?),
        }
    }

    /// Boxed because the jsapi_ticket refresh needs the access_token (the future type would otherwise
    /// be recursive).
    fn get(
        &self,
        kind: TokenKind,
    ) -> Pin<Box<dyn Future<Output = Result<Secret<String>, TokenError>> + Send + '_>> {
        Box::pin(self.get_inner(kind))
    }

    #[instrument(level = "debug", skip(self), fields(appid = %self.inner.appid))]
    async fn get_inner(&self, kind: TokenKind) -> Result<Secret<String>, TokenError> {
        let inner = &self.inner;
        let key = self.cache_key(kind);
        if let Some(t) = inner.cache.get(&key).await? {
            let now = now_ms();
            if t.is_fresh(now, inner.opts.refresh_ahead) {
                return Ok(t.value);
            }
            if t.is_valid(now) {
                // Refresh ahead: one local caller tries (spaced attempts), everyone else keeps the
                // still-valid token.
                if self.ahead_attempt_allowed(kind) {
                    if let Ok(_guard) = inner.flights[kind.idx()].try_lock() {
                        match self.refresh_locked(kind, false).await {
                            Ok(v) => return Ok(v),
                            Err(e) => {
                                if !matches!(e, TokenError::LockTimeout) {
                                    warn!(token = kind.name(), error = %e, "refresh-ahead failed; using the current token");
                                }
                            }
                        }
                    }
                }
                return Ok(t.value);
            }
        }
        self.check_backoff(kind)?;
        let _guard = inner.flights[kind.idx()].lock().await;
        // Callers queued behind a fetch that just failed get its backoff, not a fetch of their own.
        self.check_backoff(kind)?;
        let result = self.refresh_locked(kind, true).await;
        self.note_result(kind, &result);
        result
    }

    /// `Err(Backoff)` while a recent failure is remembered.
    fn check_backoff(&self, kind: TokenKind) -> Result<(), TokenError> {
        let failures = self.inner.failures[kind.idx()]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match &*failures {
            Some(f) if f.until > Instant::now() => Err(TokenError::Backoff {
                failures: f.count,
                last: f.last.clone(),
                retry_in_ms: f
                    .until
                    .saturating_duration_since(Instant::now())
                    .as_millis() as u64,
            }),
            _ => Ok(()),
        }
    }

    /// Remembers a failed fetch (with WeChat's errcode in the log), or forgets them after a success.
    fn note_result(&self, kind: TokenKind, result: &Result<Secret<String>, TokenError>) {
        let mut failures = self.inner.failures[kind.idx()]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(_) => *failures = None,
            Err(TokenError::LockTimeout | TokenError::Backoff { .. }) => {}
            Err(e) => {
                let count = failures.as_ref().map_or(0, |f| f.count).saturating_add(1);
                let opts = &self.inner.opts;
                let wait = opts
                    .failure_backoff
                    .saturating_mul(1u32 << (count - 1).min(16))
                    .min(opts.failure_backoff_max);
                warn!(
                    token = kind.name(),
                    errcode = e.api().map(|a| a.code()),
                    error = %e,
                    failures = count,
                    backoff_ms = wait.as_millis() as u64,
                    "token fetch failed; not asking WeChat again before the backoff"
                );
                *failures = Some(Failure {
                    count,
                    until: Instant::now() + wait,
                    last: e.to_string().chars().take(200).collect(),
                });
            }
        }
    }

    fn ahead_attempt_allowed(&self, kind: TokenKind) -> bool {
        let Ok(mut last) = self.inner.ahead_attempts[kind.idx()].lock() else {
            return false;
        };
        if last.is_some_and(|t| t.elapsed() < self.inner.opts.refresh_ahead_retry) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// Under the local flight lock: re-check, take the shared lock, re-check, fetch, store, release.
    /// With `wait == false` (refresh-ahead) it gives up at once if another instance holds the lock.
    async fn refresh_locked(
        &self,
        kind: TokenKind,
        wait: bool,
    ) -> Result<Secret<String>, TokenError> {
        let inner = &self.inner;
        let key = self.cache_key(kind);
        let lock_key = format!("{key}:lock");
        let deadline = Instant::now() + inner.opts.lock_wait;
        loop {
            if let Some(t) = inner.cache.get(&key).await? {
                if t.is_fresh(now_ms(), inner.opts.refresh_ahead) {
                    return Ok(t.value);
                }
            }
            let owner = crate::nonce();
            if inner
                .cache
                .try_lock(&lock_key, &owner, inner.opts.lock_ttl)
                .await?
            {
                let result = self.fetch_and_store(kind, &key).await;
                if let Err(e) = inner.cache.unlock(&lock_key, &owner).await {
                    warn!(error = %e, "could not release the token refresh lock (it will expire)");
                }
                return result;
            }
            if !wait || Instant::now() >= deadline {
                return Err(TokenError::LockTimeout);
            }
            tokio::time::sleep(inner.opts.poll_interval).await;
        }
    }

    async fn fetch_and_store(
        &self,
        kind: TokenKind,
        key: &str,
    ) -> Result<Secret<String>, TokenError> {
        // Re-check after acquiring: another instance may have stored a fresh token just before.
        if let Some(t) = self.inner.cache.get(key).await? {
            if t.is_fresh(now_ms(), self.inner.opts.refresh_ahead) {
                return Ok(t.value);
            }
        }
        let started = now_ms();
        let (value, expires_in) = match kind {
            TokenKind::AccessToken => self.fetch_access_token().await?,
            TokenKind::JsapiTicket => {
                self.with_access_token(|at| async move { self.fetch_ticket(&at, "jsapi").await })
                    .await?
            }
            TokenKind::CardTicket => {
                self.with_access_token(|at| async move { self.fetch_ticket(&at, "wx_card").await })
                    .await?
            }
        };
        let token = CachedToken {
            value,
            expires_at_ms: started.saturating_add(expires_in.saturating_mul(1000)),
        };
        self.inner.cache.set(key, &token).await?;
        debug!(token = kind.name(), expires_in, "fetched token");
        Ok(token.value)
    }

    async fn fetch_access_token(&self) -> Result<(Secret<String>, u64), MpError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            access_token: Secret<String>,
            expires_in: u64,
        }
        let inner = &self.inner;
        let rb = match inner.opts.endpoint {
            TokenEndpoint::Stable => {
                let body = serde_json::json!({
                    "grant_type": "client_credential",
                    "appid": inner.appid,
                    "secret": inner.secret.expose_str(),
                    "force_refresh": false,
                });
                inner
                    .http
                    .post(inner.api.join("/cgi-bin/stable_token"))
                    .json(&body)
            }
            TokenEndpoint::Classic => inner.http.get(inner.api.join(&format!(
                "/cgi-bin/token?grant_type=client_credential&appid={}&secret={}",
                encode(&inner.appid),
                encode(inner.secret.expose_str())
            ))),
        };
        let a: Answer = self.send(rb).await?;
        if a.access_token.expose_str().is_empty() || a.expires_in == 0 {
            return Err(MpError::Malformed(
                "empty access_token or expires_in".into(),
            ));
        }
        Ok((a.access_token, a.expires_in))
    }

    async fn fetch_ticket(
        &self,
        access_token: &Secret<String>,
        ty: &str,
    ) -> Result<(Secret<String>, u64), MpError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            ticket: Secret<String>,
            expires_in: u64,
        }
        let inner = &self.inner;
        let rb = inner.http.get(inner.api.join(&format!(
            "/cgi-bin/ticket/getticket?access_token={}&type={ty}",
            encode(access_token.expose_str())
        )));
        let a: Answer = self.send(rb).await?;
        if a.ticket.expose_str().is_empty() || a.expires_in == 0 {
            return Err(MpError::Malformed("empty ticket or expires_in".into()));
        }
        Ok((a.ticket, a.expires_in))
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        rb: reqwest::RequestBuilder,
    ) -> Result<T, MpError> {
        let resp = rb.timeout(self.inner.opts.timeout).send().await?;
        if !resp.status().is_success() {
            return Err(HttpError::Status {
                status: resp.status().as_u16(),
            }
            .into());
        }
        let body = read_capped(resp, MAX_ANSWER_BYTES).await?;
        parse_mp(&body)
    }
}
