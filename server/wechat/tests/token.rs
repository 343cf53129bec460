//! The token cache against a fake `api.weixin.qq.com` that counts upstream fetches: single flight
//! (in-process and across instances through Redis), refresh-ahead, compare-and-delete + one retry on
//! 40001, timeouts, malformed answers.
mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use common::*;
use wechat::mp::token::{
    MemoryTokenCache, RedisTokenCache, TokenCache, TokenEndpoint, TokenError, TokenKind,
    TokenManager, TokenOptions,
};
use wechat::{ApiError, Hosts, MpError, Secret};

const SECRET: &str = "SECRET-a1b2c3d4e5f6";

#[derive(Default)]
struct Mp {
    stable: AtomicUsize,
    classic: AtomicUsize,
    tickets: AtomicUsize,
    echo: AtomicUsize,
    seq: AtomicUsize,
    tseq: AtomicUsize,
    expires_in: AtomicU64,
    delay_ms: AtomicU64,
    mode: Mutex<&'static str>,
    echo_always_fails: Mutex<bool>,
    valid: Mutex<HashSet<String>>,
    last_stable_body: Mutex<serde_json::Value>,
}

impl Mp {
    fn revoke(&self, t: &str) {
        self.valid.lock().unwrap().remove(t);
    }
    async fn issue(&self) -> Response {
        let d = self.delay_ms.load(Ordering::SeqCst);
        if d > 0 {
            tokio::time::sleep(Duration::from_millis(d)).await;
        }
        match *self.mode.lock().unwrap() {
            "html" => return "<html>502 Bad Gateway</html>".into_response(),
            "40125" => {
                return Json(serde_json::json!({"errcode": 40125, "errmsg": "invalid appsecret"}))
                    .into_response()
            }
            "45009" => return Json(
                serde_json::json!({"errcode": 45009, "errmsg": "reach max api daily quota limit"}),
            )
            .into_response(),
            _ => {}
        }
        let n = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let t = format!("AT{n}");
        self.valid.lock().unwrap().insert(t.clone());
        Json(serde_json::json!({"access_token": t, "expires_in": self.expires_in.load(Ordering::SeqCst)})).into_response()
    }
}

type Q = Query<std::collections::HashMap<String, String>>;

async fn stable(State(mp): State<Arc<Mp>>, Json(body): Json<serde_json::Value>) -> Response {
    mp.stable.fetch_add(1, Ordering::SeqCst);
    *mp.last_stable_body.lock().unwrap() = body.clone();
    if body["secret"] != SECRET || body["appid"] != APPID {
        return Json(serde_json::json!({"errcode": 40001, "errmsg": "invalid credential"}))
            .into_response();
    }
    mp.issue().await
}

async fn classic(State(mp): State<Arc<Mp>>, Query(q): Q) -> Response {
    mp.classic.fetch_add(1, Ordering::SeqCst);
    if q.get("secret").map(String::as_str) != Some(SECRET)
        || q.get("grant_type").map(String::as_str) != Some("client_credential")
    {
        return Json(serde_json::json!({"errcode": 40001, "errmsg": "invalid credential"}))
            .into_response();
    }
    mp.issue().await
}

async fn ticket(State(mp): State<Arc<Mp>>, Query(q): Q) -> Response {
    mp.tickets.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(mp.delay_ms.load(Ordering::SeqCst))).await;
    let t = q.get("access_token").cloned().unwrap_or_default();
    if q.get("type").map(String::as_str) != Some("jsapi") || !mp.valid.lock().unwrap().contains(&t)
    {
        return Json(serde_json::json!({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"})).into_response();
    }
    let n = mp.tseq.fetch_add(1, Ordering::SeqCst) + 1;
    Json(serde_json::json!({"errcode": 0, "errmsg": "ok", "ticket": format!("TK{n}"), "expires_in": 7200})).into_response()
}

async fn echo(State(mp): State<Arc<Mp>>, Query(q): Q) -> Response {
    mp.echo.fetch_add(1, Ordering::SeqCst);
    let t = q.get("access_token").cloned().unwrap_or_default();
    if *mp.echo_always_fails.lock().unwrap() || !mp.valid.lock().unwrap().contains(&t) {
        return Json(serde_json::json!({"errcode": 40001, "errmsg": "invalid credential"}))
            .into_response();
    }
    Json(serde_json::json!({"errcode": 0, "errmsg": "ok"})).into_response()
}

async fn fake() -> (Arc<Mp>, Hosts) {
    let mp = Arc::new(Mp::default());
    mp.expires_in.store(7200, Ordering::SeqCst);
    *mp.mode.lock().unwrap() = "ok";
    let r = axum::Router::new()
        .route("/prefix/cgi-bin/stable_token", post(stable))
        .route("/prefix/cgi-bin/token", get(classic))
        .route("/prefix/cgi-bin/ticket/getticket", get(ticket))
        .route("/prefix/api/echo", get(echo))
        .with_state(mp.clone());
    let base = serve(r).await;
    (mp, Hosts::all(&format!("{base}/prefix")).unwrap())
}

fn manager(hosts: &Hosts, cache: Arc<dyn TokenCache>, opts: TokenOptions) -> TokenManager {
    TokenManager::with_options(APPID, Secret::from(SECRET), hosts, http(), cache, opts)
}

/// Calls the fake API with a token; WeChat's 40001 becomes `MpError::Api`.
async fn call_echo(hosts: &Hosts, token: Secret<String>) -> Result<(), MpError> {
    let v: serde_json::Value = http()
        .get(
            hosts
                .api
                .join(&format!("/api/echo?access_token={}", token.expose_str())),
        )
        .send()
        .await?
        .json()
        .await?;
    match v["errcode"].as_i64().unwrap_or(0) {
        0 => Ok(()),
        c => Err(ApiError::from_code(c, v["errmsg"].as_str().unwrap_or("")).into()),
    }
}

#[tokio::test]
async fn single_flight_in_process() {
    let (mp, hosts) = fake().await;
    mp.delay_ms.store(200, Ordering::SeqCst);
    let m = manager(
        &hosts,
        Arc::new(MemoryTokenCache::new()),
        TokenOptions::default(),
    );
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let m = m.clone();
        set.spawn(async move { m.access_token().await.map(|t| t.expose_str().to_owned()) });
    }
    let mut values = HashSet::new();
    while let Some(r) = set.join_next().await {
        values.insert(r.unwrap().expect("token"));
    }
    assert_eq!(
        mp.stable.load(Ordering::SeqCst),
        1,
        "exactly one upstream fetch"
    );
    assert_eq!(values, HashSet::from(["AT1".to_string()]));
    let body = mp.last_stable_body.lock().unwrap().clone();
    assert_eq!(body["grant_type"], "client_credential");
    assert_eq!(body["force_refresh"], false);
    assert_eq!(mp.classic.load(Ordering::SeqCst), 0);
}

async fn redis_or_skip() -> Option<RedisTokenCache> {
    match RedisTokenCache::connect("redis://127.0.0.1:6379/").await {
        Ok(c) => Some(c),
        Err(e) => {
            println!("SKIPPED: Redis at 127.0.0.1:6379 unreachable: {e}");
            None
        }
    }
}

fn unique_prefix() -> TokenOptions {
    TokenOptions {
        key_prefix: format!("wechat-test-{}", wechat::nonce()),
        ..TokenOptions::default()
    }
}

#[tokio::test]
async fn single_flight_across_instances_with_redis() {
    let Some(_probe) = redis_or_skip().await else {
        return;
    };
    let (mp, hosts) = fake().await;
    mp.delay_ms.store(300, Ordering::SeqCst);
    let opts = unique_prefix();
    // Four "instances": separate managers (separate local locks) with separate Redis connections.
    let mut managers = Vec::new();
    for _ in 0..4 {
        let c = RedisTokenCache::connect("redis://127.0.0.1:6379/")
            .await
            .unwrap();
        managers.push(manager(&hosts, Arc::new(c), opts.clone()));
    }
    let mut set = tokio::task::JoinSet::new();
    for i in 0..100 {
        let m = managers[i % 4].clone();
        set.spawn(async move { m.access_token().await.map(|t| t.expose_str().to_owned()) });
    }
    let mut values = HashSet::new();
    while let Some(r) = set.join_next().await {
        values.insert(r.unwrap().expect("token"));
    }
    assert_eq!(
        mp.stable.load(Ordering::SeqCst),
        1,
        "one fetch for four instances"
    );
    assert_eq!(values.len(), 1);
    // The ticket too.
    let mut set = tokio::task::JoinSet::new();
    for i in 0..40 {
        let m = managers[i % 4].clone();
        set.spawn(async move { m.jsapi_ticket().await.map(|t| t.expose_str().to_owned()) });
    }
    while let Some(r) = set.join_next().await {
        assert_eq!(r.unwrap().expect("ticket"), "TK1");
    }
    assert_eq!(mp.tickets.load(Ordering::SeqCst), 1);
    // Compare-and-delete through Redis: a stale instance cannot drop the fresh token.
    let a = &managers[0];
    let b = &managers[1];
    let t1 = a.access_token().await.unwrap();
    mp.revoke(t1.expose_str());
    assert!(b
        .invalidate(TokenKind::AccessToken, t1.expose_str())
        .await
        .unwrap());
    let t2 = b.access_token().await.unwrap();
    assert_ne!(t1.expose_str(), t2.expose_str());
    assert!(
        !a.invalidate(TokenKind::AccessToken, t1.expose_str())
            .await
            .unwrap(),
        "stale value: nothing deleted"
    );
    assert_eq!(
        a.access_token().await.unwrap().expose_str(),
        t2.expose_str()
    );
    assert_eq!(mp.stable.load(Ordering::SeqCst), 2);
    // Leave nothing behind in the shared Redis.
    assert!(a
        .invalidate(TokenKind::AccessToken, t2.expose_str())
        .await
        .unwrap());
    assert!(a.invalidate(TokenKind::JsapiTicket, "TK1").await.unwrap());
}

#[tokio::test]
async fn redis_lock_and_cas_primitives() {
    let Some(c) = redis_or_skip().await else {
        return;
    };
    let k = format!("wechat-test-{}", wechat::nonce());
    let lock = format!("{k}:lock");
    assert!(c
        .try_lock(&lock, "owner-a", Duration::from_millis(300))
        .await
        .unwrap());
    assert!(
        !c.try_lock(&lock, "owner-b", Duration::from_secs(5))
            .await
            .unwrap(),
        "held"
    );
    assert!(!c.unlock(&lock, "owner-b").await.unwrap(), "not the owner");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        c.try_lock(&lock, "owner-b", Duration::from_secs(5))
            .await
            .unwrap(),
        "expired lock retaken"
    );
    assert!(
        !c.unlock(&lock, "owner-a").await.unwrap(),
        "a's lock expired; b's must survive"
    );
    assert!(c.unlock(&lock, "owner-b").await.unwrap());
    let t = wechat::mp::token::CachedToken {
        value: "V1".into(),
        expires_at_ms: wechat::mp::token::now_ms() + 10_000,
    };
    c.set(&k, &t).await.unwrap();
    let got = c.get(&k).await.unwrap().expect("stored");
    assert_eq!(got.value.expose_str(), "V1");
    assert!(got.expires_at_ms.abs_diff(t.expires_at_ms) < 1_000);
    assert!(!c.delete_if_equals(&k, "V0").await.unwrap());
    assert!(c.get(&k).await.unwrap().is_some());
    assert!(c.delete_if_equals(&k, "V1").await.unwrap());
    assert!(c.get(&k).await.unwrap().is_none());
}

#[tokio::test]
async fn refresh_ahead_keeps_serving_while_one_caller_refreshes() {
    let (mp, hosts) = fake().await;
    mp.expires_in.store(3, Ordering::SeqCst);
    let opts = TokenOptions {
        refresh_ahead: Duration::from_secs(2),
        refresh_ahead_retry: Duration::ZERO,
        ..TokenOptions::default()
    };
    let m = manager(&hosts, Arc::new(MemoryTokenCache::new()), opts);
    assert_eq!(m.access_token().await.unwrap().expose_str(), "AT1");
    tokio::time::sleep(Duration::from_millis(1200)).await; // inside the 2 s window, still valid
    mp.delay_ms.store(400, Ordering::SeqCst);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let m = m.clone();
        set.spawn(async move { m.access_token().await.map(|t| t.expose_str().to_owned()) });
    }
    let mut got = Vec::new();
    while let Some(r) = set.join_next().await {
        got.push(r.unwrap().expect("token"));
    }
    assert_eq!(
        mp.stable.load(Ordering::SeqCst),
        2,
        "exactly one refresh ahead of expiry"
    );
    assert!(
        got.iter().any(|t| t == "AT1"),
        "others kept the valid token: {got:?}"
    );
    assert!(
        got.iter().any(|t| t == "AT2"),
        "the refresher got the new one: {got:?}"
    );
    mp.delay_ms.store(0, Ordering::SeqCst);
    assert_eq!(m.access_token().await.unwrap().expose_str(), "AT2");
}

#[tokio::test]
async fn refresh_ahead_attempts_are_spaced() {
    // A token that is always inside the window (as stable_token re-issues an unchanged token) must
    // not cause a fetch per call.
    let (mp, hosts) = fake().await;
    mp.expires_in.store(100, Ordering::SeqCst);
    let m = manager(
        &hosts,
        Arc::new(MemoryTokenCache::new()),
        TokenOptions::default(),
    ); // ahead 300 s
    for _ in 0..20 {
        m.access_token().await.unwrap();
    }
    assert_eq!(
        mp.stable.load(Ordering::SeqCst),
        2,
        "initial fetch + one spaced refresh attempt"
    );
}

#[tokio::test]
async fn invalid_token_is_dropped_if_same_then_retried_once() {
    let (mp, hosts) = fake().await;
    let m = manager(
        &hosts,
        Arc::new(MemoryTokenCache::new()),
        TokenOptions::default(),
    );
    let t1 = m.access_token().await.unwrap();
    mp.revoke(t1.expose_str()); // e.g. the secret was reset, or another party force-refreshed
    let h = hosts.clone();
    m.with_access_token(|t| call_echo(&h, t))
        .await
        .expect("retried with a fresh token");
    assert_eq!(mp.stable.load(Ordering::SeqCst), 2);
    assert_eq!(mp.echo.load(Ordering::SeqCst), 2);
    // Still valid: no refetch.
    m.with_access_token(|t| call_echo(&h, t)).await.unwrap();
    assert_eq!(mp.stable.load(Ordering::SeqCst), 2);

    // Retry exactly once: an API that keeps answering 40001 fails after two attempts.
    *mp.echo_always_fails.lock().unwrap() = true;
    let e = m.with_access_token(|t| call_echo(&h, t)).await.unwrap_err();
    assert!(
        matches!(e, TokenError::Mp(MpError::Api(ApiError::InvalidCredential))),
        "{e:?}"
    );
    assert_eq!(mp.echo.load(Ordering::SeqCst), 5);
    assert_eq!(mp.stable.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn stale_instance_cannot_drop_fresh_token() {
    let (mp, hosts) = fake().await;
    let shared: Arc<dyn TokenCache> = Arc::new(MemoryTokenCache::new());
    let a = manager(&hosts, shared.clone(), TokenOptions::default());
    let b = manager(&hosts, shared, TokenOptions::default());
    let t1 = a.access_token().await.unwrap();
    mp.revoke(t1.expose_str());
    // b sees the failure first, drops t1 and fetches t2.
    let h = hosts.clone();
    b.with_access_token(|t| call_echo(&h, t)).await.unwrap();
    assert_eq!(mp.stable.load(Ordering::SeqCst), 2);
    // a reports its old failure late: t2 must survive.
    assert!(!a
        .invalidate(TokenKind::AccessToken, t1.expose_str())
        .await
        .unwrap());
    assert_eq!(a.access_token().await.unwrap().expose_str(), "AT2");
    assert_eq!(mp.stable.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn jsapi_ticket_single_flight_and_retry_on_rejected_token() {
    let (mp, hosts) = fake().await;
    let m = manager(
        &hosts,
        Arc::new(MemoryTokenCache::new()),
        TokenOptions::default(),
    );
    mp.delay_ms.store(100, Ordering::SeqCst);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let m = m.clone();
        set.spawn(async move { m.jsapi_ticket().await.map(|t| t.expose_str().to_owned()) });
    }
    while let Some(r) = set.join_next().await {
        assert_eq!(r.unwrap().expect("ticket"), "TK1");
    }
    assert_eq!(
        (
            mp.stable.load(Ordering::SeqCst),
            mp.tickets.load(Ordering::SeqCst)
        ),
        (1, 1)
    );
    let cfg = m
        .jssdk_config("https://shop.example.com/p?a=1#frag")
        .await
        .unwrap();
    assert_eq!(
        cfg.signature,
        wechat::mp::jssdk::signature(
            "TK1",
            &cfg.nonce_str,
            &cfg.timestamp.to_string(),
            "https://shop.example.com/p?a=1"
        )
    );

    // A ticket fetch with a rejected token: drop it, fetch a fresh token, retry once.
    let m2 = manager(
        &hosts,
        Arc::new(MemoryTokenCache::new()),
        TokenOptions::default(),
    );
    mp.delay_ms.store(0, Ordering::SeqCst);
    let t = m2.access_token().await.unwrap();
    mp.revoke(t.expose_str());
    assert_eq!(m2.jsapi_ticket().await.unwrap().expose_str(), "TK2");
    assert_eq!(mp.tickets.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn timeouts_and_bad_answers_are_typed() {
    let (mp, hosts) = fake().await;
    mp.delay_ms.store(3000, Ordering::SeqCst);
    // Every failure typed, one after another: no backoff between them here.
    let opts = TokenOptions {
        timeout: Duration::from_millis(300),
        failure_backoff: Duration::ZERO,
        ..TokenOptions::default()
    };
    let m = manager(&hosts, Arc::new(MemoryTokenCache::new()), opts);
    let t0 = std::time::Instant::now();
    let e = m.access_token().await.unwrap_err();
    assert!(
        matches!(
            e,
            TokenError::Mp(MpError::Http(wechat::http::HttpError::Timeout))
        ),
        "{e:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(2));
    mp.delay_ms.store(0, Ordering::SeqCst);
    for (mode, check) in [
        (
            "html",
            (|e: &TokenError| matches!(e, TokenError::Mp(MpError::Malformed(_))))
                as fn(&TokenError) -> bool,
        ),
        ("40125", |e| {
            matches!(e.api(), Some(ApiError::InvalidAppSecret))
        }),
        ("45009", |e| {
            matches!(e.api(), Some(ApiError::QuotaExceeded(45009)))
        }),
    ] {
        *mp.mode.lock().unwrap() = mode;
        let e = m.access_token().await.unwrap_err();
        assert!(check(&e), "{mode}: {e:?}");
        assert!(!format!("{e} {e:?}").contains(SECRET));
    }
}

#[tokio::test]
async fn classic_endpoint_selectable_and_secret_never_in_errors() {
    let (mp, hosts) = fake().await;
    let opts = TokenOptions {
        endpoint: TokenEndpoint::Classic,
        ..TokenOptions::default()
    };
    let m = manager(&hosts, Arc::new(MemoryTokenCache::new()), opts.clone());
    assert_eq!(m.access_token().await.unwrap().expose_str(), "AT1");
    assert_eq!(
        (
            mp.classic.load(Ordering::SeqCst),
            mp.stable.load(Ordering::SeqCst)
        ),
        (1, 0)
    );
    // Connection refused on a URL carrying ?secret=…: the error must not echo it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let dead = Hosts::all(&format!("http://127.0.0.1:{port}")).unwrap();
    let m = manager(&dead, Arc::new(MemoryTokenCache::new()), opts);
    let e = m.access_token().await.unwrap_err();
    let shown = format!("{e} | {e:?} | {m:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(matches!(e, TokenError::Mp(MpError::Http(_))));
}
