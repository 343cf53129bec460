//! The gate between the internet and the shop: who the client is, where a write comes from,
//! how often it may come, and the headers every answer carries.
//!
//! - **Client address**: the TCP peer, unless the peer is one of `WXMALL_TRUSTED_PROXIES`; then
//!   the right-most `X-Forwarded-For` entry that is not a trusted proxy (the left-most entries
//!   are whatever the client wrote). Put in the request as [`ClientIp`].
//! - **Where writes come from**: `POST /api/…` with `Sec-Fetch-Site: cross-site` or an `Origin`
//!   other than the shop's own (`WXMALL_PUBLIC_URL`) → 403 `forbidden`; the JSON endpoints take
//!   `Content-Type: application/json` only → 415 `unsupported_media_type` (a `text/plain` body is
//!   what a cross-site form can send without asking).
//! - **Rate limits** (`governor`, per client address and per session): order creation, pay,
//!   order status, JS-SDK signing, the OAuth entry and WeChat's notifications → 429
//!   `rate_limited` with `Retry-After`. Per-address limits are generous (many shoppers share a
//!   carrier's address). `WXMALL_RATE_LIMIT=off` turns them off; `WXMALL_RATE_LIMITS` sets them.
//!   With `WXMALL_REDIS_URL` they are kept in Redis, one budget for every instance.
//! - **Headers**: no framing (`frame-ancestors 'none'`; pages carry a full CSP with a script
//!   nonce, see `app::content_security_policy`), HSTS on https, and
//!   `Cache-Control: private, no-store` on JSON, personalised pages and anything that sets a cookie.

use app::error::{ApiError, ErrorCode};
use app::port::{ClientIp, SessionId};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

/// `WXMALL_TRUSTED_PROXIES`: addresses or CIDRs of the reverse proxies in front of the shop.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// Comma- or space-separated addresses (`10.0.0.5`) and networks (`10.0.0.0/8`).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in raw
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let net = match item.parse::<ipnet::IpNet>() {
                Ok(n) => n,
                Err(_) => match item.parse::<IpAddr>() {
                    Ok(ip) => ipnet::IpNet::from(ip),
                    Err(_) => return Err(format!("{item:?} is not an address or a CIDR")),
                },
            };
            nets.push(net);
        }
        Ok(Self(nets))
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }
}

/// The client's address (see the module docs).
pub fn client_ip(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &TrustedProxies,
) -> IpAddr {
    let peer = peer.unwrap_or(IpAddr::from([127, 0, 0, 1]));
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = forwarded_for
        .unwrap_or_default()
        .split(',')
        .filter_map(|h| h.trim().parse().ok())
        .collect();
    hops.iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .or(hops.first())
        .copied()
        .unwrap_or(peer)
}

/// What a limit protects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// `create_order` and the checkout form.
    Order,
    /// `pay_order`.
    Pay,
    /// `order_status` (the page polls it after paying).
    Status,
    /// `jssdk_config`.
    Jssdk,
    /// The OAuth entry (a redirect to WeChat writes a state) and callback.
    OAuth,
    /// WeChat Pay's notifications.
    Notify,
}

impl Class {
    const ALL: [Class; 6] = [
        Class::Order,
        Class::Pay,
        Class::Status,
        Class::Jssdk,
        Class::OAuth,
        Class::Notify,
    ];

    fn name(self) -> &'static str {
        match self {
            Class::Order => "order",
            Class::Pay => "pay",
            Class::Status => "status",
            Class::Jssdk => "jssdk",
            Class::OAuth => "oauth",
            Class::Notify => "notify",
        }
    }

    /// Requests per minute per client address and per session (0: no per-session limit).
    fn defaults(self) -> (u32, u32) {
        match self {
            Class::Order => (120, 12),
            Class::Pay => (240, 30),
            Class::Status => (1200, 120),
            Class::Jssdk => (1200, 120),
            Class::OAuth => (240, 0),
            Class::Notify => (3000, 0),
        }
    }

    /// The limit that applies to a request path, if any.
    pub fn of_path(path: &str) -> Option<Class> {
        match path {
            "/api/create_order" | "/api/checkout" => Some(Class::Order),
            "/api/pay_order" => Some(Class::Pay),
            "/api/order_status" => Some(Class::Status),
            "/api/jssdk_config" => Some(Class::Jssdk),
            p if p.starts_with("/wechat/oauth/") => Some(Class::OAuth),
            p if p.starts_with("/wechat/notify/") => Some(Class::Notify),
            _ => None,
        }
    }
}

/// Requests per minute, per client address and per session, for each [`Class`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitSettings {
    pub per_minute: Vec<(Class, u32, u32)>,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            per_minute: Class::ALL
                .iter()
                .map(|c| {
                    let (ip, session) = c.defaults();
                    (*c, ip, session)
                })
                .collect(),
        }
    }
}

impl RateLimitSettings {
    /// `WXMALL_RATE_LIMITS`: `class=IP[/SESSION],…` in requests per minute, e.g.
    /// `order=60/6,notify=6000`; classes: order, pay, status, jssdk, oauth, notify.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut s = Self::default();
        for item in raw.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?}: expected class=per_ip[/per_session]"))?;
            let class = Class::ALL
                .into_iter()
                .find(|c| c.name() == name.trim())
                .ok_or_else(|| {
                    format!("{name:?} is not one of order, pay, status, jssdk, oauth, notify")
                })?;
            let (ip, session) = match value.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (value, None),
            };
            let num = |v: &str| {
                v.trim().parse::<u32>().map_err(|_| {
                    format!("{item:?}: {v:?} is not a whole number of requests per minute")
                })
            };
            let ip = num(ip)?;
            let entry = s
                .per_minute
                .iter_mut()
                .find(|(c, _, _)| *c == class)
                .expect("every class has an entry");
            entry.1 = ip;
            if let Some(session) = session {
                entry.2 = num(session)?;
            }
        }
        Ok(s)
    }
}

fn quota(per_minute: u32) -> Option<Quota> {
    let n = NonZeroU32::new(per_minute)?;
    // A burst of a quarter of a minute's worth: a page's few quick calls pass, a loop does not.
    let burst = NonZeroU32::new((per_minute / 4).max(1)).unwrap_or(NonZeroU32::MIN);
    Some(Quota::per_minute(n).allow_burst(burst))
}

/// The rate limiters: in process, or shared by every instance through Redis
/// (`WXMALL_REDIS_URL`, see [`Limits::shared_through`]).
pub struct Limits {
    by_ip: Vec<(Class, DefaultKeyedRateLimiter<IpAddr>)>,
    by_session: Vec<(Class, DefaultKeyedRateLimiter<String>)>,
    /// Requests per minute per class: (per address, per session).
    per_minute: Vec<(Class, u32, u32)>,
    shared: Option<SharedLimits>,
}

/// The same limits (GCRA, as `governor` computes them in process) kept in Redis, so several
/// instances behind one load balancer spend one budget. One Lua script per check: atomic, one
/// round trip, the clock is Redis's (instances' clocks may differ).
struct SharedLimits {
    conn: redis::aio::ConnectionManager,
    script: redis::Script,
    prefix: String,
}

/// KEYS[1]: the key; ARGV[1]: emission interval (ms per request); ARGV[2]: burst (requests).
/// Returns 0 when the request is admitted, else the milliseconds to wait.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat + interval - burst * interval - now
if wait > 0 then return wait end
redis.call('SET', KEYS[1], tat + interval, 'PX', tat + interval - now)
return 0
"#;

/// The Redis keys of the shared limits start with this.
pub const SHARED_LIMITS_PREFIX: &str = "wxmall:rl";

/// How long a Redis check may take before the in-process limiter decides instead.
const SHARED_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(250);

/// A refusal: wait this many seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

impl Limits {
    pub fn new(settings: &RateLimitSettings) -> Self {
        let mut by_ip = Vec::new();
        let mut by_session = Vec::new();
        for (class, ip, session) in &settings.per_minute {
            if let Some(q) = quota(*ip) {
                by_ip.push((*class, RateLimiter::keyed(q)));
            }
            if let Some(q) = quota(*session) {
                by_session.push((*class, RateLimiter::keyed(q)));
            }
        }
        Self {
            by_ip,
            by_session,
            per_minute: settings.per_minute.clone(),
            shared: None,
        }
    }

    /// Keeps the limits in Redis at `url` (keys `PREFIX:CLASS:ip:…` / `PREFIX:CLASS:s:…`), shared
    /// by every instance that uses the same Redis and prefix. Should Redis fail or be slow later,
    /// each instance falls back to its own in-process limits (logged), never to none.
    pub async fn shared_through(mut self, url: &str, prefix: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let cfg = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(2)))
            .set_response_timeout(Some(SHARED_TIMEOUT))
            .set_number_of_retries(1);
        let conn = tokio::time::timeout(
            std::time::Duration::from_secs(4),
            client.get_connection_manager_with_config(cfg),
        )
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
        self.shared = Some(SharedLimits {
            conn,
            script: redis::Script::new(GCRA),
            prefix: prefix.to_string(),
        });
        Ok(self)
    }

    /// Counts one request (in Redis when shared, else in process); `Err` when over a limit.
    pub async fn admit(
        &self,
        class: Class,
        ip: IpAddr,
        session: Option<&str>,
    ) -> Result<(), RetryAfter> {
        let Some(shared) = &self.shared else {
            return self.check(class, ip, session);
        };
        let Some(&(_, per_ip, per_session)) = self.per_minute.iter().find(|(c, _, _)| *c == class)
        else {
            return Ok(());
        };
        let mut checks: Vec<(String, u32)> = Vec::with_capacity(2);
        if let (Some(s), true) = (session, per_session > 0) {
            checks.push((
                format!("{}:{}:s:{s}", shared.prefix, class.name()),
                per_session,
            ));
        }
        if per_ip > 0 {
            checks.push((
                format!("{}:{}:ip:{ip}", shared.prefix, class.name()),
                per_ip,
            ));
        }
        for (key, per_minute) in checks {
            let interval_ms = (60_000 / u64::from(per_minute.max(1))).max(1);
            let burst = (per_minute / 4).max(1);
            let mut conn = shared.conn.clone();
            let answer: Result<redis::RedisResult<i64>, _> = tokio::time::timeout(
                SHARED_TIMEOUT,
                shared
                    .script
                    .key(&key)
                    .arg(interval_ms)
                    .arg(burst)
                    .invoke_async(&mut conn),
            )
            .await;
            match answer {
                Ok(Ok(0)) => {}
                Ok(Ok(wait_ms)) => return Err(RetryAfter(wait_ms.max(0) as u64 / 1000 + 1)),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "shared rate limits unavailable: limiting in process");
                    return self.check(class, ip, session);
                }
                Err(_) => {
                    tracing::warn!("shared rate limits too slow: limiting in process");
                    return self.check(class, ip, session);
                }
            }
        }
        Ok(())
    }

    fn wait(not_until: &governor::NotUntil<governor::clock::QuantaInstant>) -> RetryAfter {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        RetryAfter(wait.as_secs() + 1)
    }

    /// Counts one request of `class` from `ip` (and `session`); `Err` when over a limit.
    /// The session is counted first: a session over its own limit does not spend the budget
    /// its address shares with other shoppers.
    pub fn check(&self, class: Class, ip: IpAddr, session: Option<&str>) -> Result<(), RetryAfter> {
        if let (Some(session), Some((_, l))) =
            (session, self.by_session.iter().find(|(c, _)| *c == class))
        {
            if l.len() > 100_000 {
                l.retain_recent();
            }
            l.check_key(&session.to_string())
                .map_err(|e| Self::wait(&e))?;
        }
        if let Some((_, l)) = self.by_ip.iter().find(|(c, _)| *c == class) {
            if l.len() > 100_000 {
                l.retain_recent();
            }
            l.check_key(&ip).map_err(|e| Self::wait(&e))?;
        }
        Ok(())
    }
}

/// The 429 answer.
pub fn too_many(retry: RetryAfter) -> Response {
    let body = ApiError::new(ErrorCode::RateLimited, "操作太频繁，请稍后再试");
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            (header::RETRY_AFTER, HeaderValue::from(retry.0)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        axum::Json(body),
    )
        .into_response()
}

fn refuse(code: ErrorCode, message: &str) -> Response {
    let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(ApiError::new(code, message))).into_response()
}

/// What the gate needs to know.
#[derive(Clone)]
pub struct Gate {
    /// `scheme://host[:port]` of `WXMALL_PUBLIC_URL`.
    pub origin: String,
    pub https: bool,
    pub trusted_proxies: TrustedProxies,
    /// `None`: `WXMALL_RATE_LIMIT=off`.
    pub limits: Option<Arc<Limits>>,
}

impl Gate {
    /// The origin part of a public URL.
    pub fn origin_of(public_url: &str) -> String {
        match url::Url::parse(public_url) {
            Ok(u) => u.origin().ascii_serialization(),
            Err(_) => public_url.trim_end_matches('/').to_string(),
        }
    }
}

/// Outermost: works out the client's address.
pub async fn identify(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let ip = client_ip(peer, forwarded, &gate.trusted_proxies);
    req.extensions_mut().insert(ClientIp(ip));
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    // Pages set their own, with the render's script nonce (`app::content_security_policy`).
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        );
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if gate.https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    let personal = h.contains_key(header::SET_COOKIE)
        || h.get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/json") || t.starts_with("text/html"));
    if personal {
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
    }
    res
}

/// On `/api/…`: where a write comes from, and what it is.
pub async fn api_writes(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if req.method() == Method::POST && path.starts_with("/api/") {
        let h = req.headers();
        let cross_site = h
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"));
        let foreign = h
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|o| o != gate.origin);
        if cross_site || foreign {
            tracing::warn!(path, "cross-site API write refused");
            return refuse(ErrorCode::Forbidden, "请求来源不被允许");
        }
        // JSON (a type no cross-site page can send without asking first), or, on the endpoints
        // of the pages' plain forms, a URL-encoded form (the Origin checks above cover those).
        let content_type = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let json = content_type.is_some_and(|t| {
            t.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
        let form = app::api::form_or_json::is_form(content_type)
            && app::api::form_or_json::FORM_ENDPOINTS.contains(&path);
        if !json && !form {
            return refuse(
                ErrorCode::UnsupportedMediaType,
                "请求须为 JSON（Content-Type: application/json）",
            );
        }
    }
    next.run(req).await
}

/// Rate limits by path (inside the session layer, so the session is known).
pub async fn rate_limit(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    if let (Some(limits), Some(class)) = (&gate.limits, Class::of_path(req.uri().path())) {
        let ip = req
            .extensions()
            .get::<ClientIp>()
            .map(|c| c.0)
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let session = req.extensions().get::<SessionId>().map(|s| s.0.clone());
        if let Err(retry) = limits.admit(class, ip, session.as_deref()).await {
            tracing::warn!(class = class.name(), %ip, "rate limited");
            return too_many(retry);
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy() {
        let none = TrustedProxies::default();
        let proxies = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1").unwrap();
        // A client writing its own X-Forwarded-For changes nothing.
        assert_eq!(
            client_ip(Some(ip("203.0.113.9")), Some("1.2.3.4"), &none),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(Some(ip("203.0.113.9")), Some("1.2.3.4"), &proxies),
            ip("203.0.113.9")
        );
        // Through the proxy: the right-most untrusted entry, not the client's own first one.
        assert_eq!(
            client_ip(
                Some(ip("10.0.0.5")),
                Some("1.2.3.4, 198.51.100.7, 10.0.0.9"),
                &proxies
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(Some(ip("127.0.0.1")), None, &proxies),
            ip("127.0.0.1")
        );
        assert_eq!(
            client_ip(Some(ip("10.0.0.5")), Some("garbage"), &proxies),
            ip("10.0.0.5")
        );
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("nope").is_err());
    }

    #[test]
    fn limits_count_per_address_and_per_session() {
        let settings = RateLimitSettings::parse("order=8/4").unwrap();
        let limits = Limits::new(&settings);
        let a = ip("198.51.100.1");
        // Per session: a burst of 1 (4/min), then refused with a wait.
        assert!(limits.check(Class::Order, a, Some("s1")).is_ok());
        let wait = limits.check(Class::Order, a, Some("s1")).unwrap_err();
        assert!(wait.0 >= 1 && wait.0 <= 16, "{wait:?}");
        // Another session from the same address: its own budget, until the address's runs out.
        assert!(limits.check(Class::Order, a, Some("s2")).is_ok());
        assert!(
            limits.check(Class::Order, a, Some("s3")).is_err(),
            "address burst of 2 spent"
        );
        assert!(limits
            .check(Class::Order, ip("198.51.100.2"), Some("s4"))
            .is_ok());
        // Classes are separate.
        assert!(limits.check(Class::Status, a, Some("s1")).is_ok());
        assert!(RateLimitSettings::parse("nope=1").is_err());
        assert!(RateLimitSettings::parse("order=x").is_err());
    }
}
