//! Ready for real traffic: each point of the abuse and misconfiguration review, over HTTP.

mod common;

use common::{order_body, TestShop, WECHAT_UA};
use serde_json::{json, Value};
use server::guard::{RateLimitSettings, TrustedProxies};
use server::wechat_config::PayVersion;

const MUG_BLACK: i64 = 17; // stock 5
const ORANGE_SMALL: i64 = 1;

async fn post_raw(
    shop: &TestShop,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", shop.base))
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

// 1. Orders need a WeChat identity with real credentials; a cap per shopper; rate limits.

#[tokio::test]
async fn with_real_credentials_orders_need_a_wechat_identity() {
    let shop = TestShop::spawn_real().await;
    let before = shop.stock(MUG_BLACK).await;
    let anonymous = shop.shopper();
    let (st, err) = anonymous
        .api("create_order", order_body(&[(MUG_BLACK, 5)]))
        .await;
    assert_eq!(st, 401, "{err}");
    assert_eq!(err["code"], "unauthorized");
    assert_eq!(err["message"], "请在微信中打开");
    assert_eq!(shop.stock(MUG_BLACK).await, before, "nothing reserved");
    let users: i64 = server::sql!(&shop.pool, e => sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(e).await)
    .unwrap();
    assert_eq!(users, 0, "nothing written");
}

#[tokio::test]
async fn a_shopper_holds_at_most_five_unpaid_orders() {
    let shop = TestShop::spawn().await;
    let s = shop.wechat_shopper(0).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (st, created) = s
            .api("create_order", order_body(&[(ORANGE_SMALL, 1)]))
            .await;
        assert_eq!(st, 200, "{created}");
        ids.push(created["order_id"].as_i64().unwrap());
    }
    let (st, err) = s
        .api("create_order", order_body(&[(ORANGE_SMALL, 1)]))
        .await;
    assert_eq!(st, 409, "{err}");
    assert_eq!(err["code"], "invalid_state");
    assert!(err["message"].as_str().unwrap().contains("待支付订单"));
    // Another shopper is not affected; cancelling one frees a place.
    let other = shop.wechat_shopper(1).await;
    let (st, _) = other
        .api("create_order", order_body(&[(ORANGE_SMALL, 1)]))
        .await;
    assert_eq!(st, 200);
    let (st, _) = s.api("cancel_order", json!({"order_id": ids[0]})).await;
    assert_eq!(st, 200);
    let (st, _) = s
        .api("create_order", order_body(&[(ORANGE_SMALL, 1)]))
        .await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn order_creation_is_rate_limited_per_session_with_retry_after() {
    let shop = TestShop::spawn_with(PayVersion::V3, |s| {
        s.rate_limits = Some(RateLimitSettings::parse("order=400/4").unwrap());
    })
    .await;
    let s = shop.wechat_shopper(0).await;
    let (st, _) = s
        .api("create_order", order_body(&[(ORANGE_SMALL, 1)]))
        .await;
    assert_eq!(st, 200);
    let res = s
        .http
        .post(format!("{}/api/create_order", shop.base))
        .json(&order_body(&[(ORANGE_SMALL, 1)]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=16).contains(&retry), "{retry}");
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["code"], "rate_limited");
    // Another shopper (own session, same address) still gets through.
    let other = shop.wechat_shopper(1).await;
    let (st, _) = other
        .api("create_order", order_body(&[(ORANGE_SMALL, 1)]))
        .await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn notifications_are_rate_limited_per_address_and_limits_can_be_off() {
    let shop = TestShop::spawn_with(PayVersion::V3, |s| {
        s.rate_limits = Some(RateLimitSettings::parse("notify=4").unwrap());
    })
    .await;
    let (st, _, _) = post_raw(&shop, "/wechat/notify/v3", &[], "{}").await;
    assert_eq!(st, 400, "refused as junk, but let through the limiter");
    let (st, headers, body) = post_raw(&shop, "/wechat/notify/v3", &[], "{}").await;
    assert_eq!(st, 429, "{body}");
    assert!(headers.contains_key("retry-after"));
    // WXMALL_RATE_LIMIT=off (test settings): nothing is limited.
    let off = TestShop::spawn().await;
    for _ in 0..20 {
        let (st, _, _) = post_raw(&off, "/wechat/notify/v3", &[], "{}").await;
        assert_eq!(st, 400);
    }
}

// 7. CSRF: JSON only, no cross-site writes.

#[tokio::test]
async fn json_endpoints_take_json_only_and_no_cross_site_writes() {
    let shop = TestShop::spawn().await;
    let body = r#"{"sku_id":1,"quantity":1}"#;
    let (st, _, err) = post_raw(
        &shop,
        "/api/add_to_cart",
        &[("content-type", "text/plain")],
        body,
    )
    .await;
    assert_eq!(st, 415, "{err}");
    assert_eq!(err["code"], "unsupported_media_type");
    let (st, _, err) = post_raw(
        &shop,
        "/api/add_to_cart",
        &[
            ("content-type", "application/json"),
            ("origin", "https://evil.example"),
        ],
        body,
    )
    .await;
    assert_eq!(st, 403, "{err}");
    assert_eq!(err["code"], "forbidden");
    let (st, _, _) = post_raw(
        &shop,
        "/api/add_to_cart",
        &[
            ("content-type", "application/json"),
            ("sec-fetch-site", "cross-site"),
        ],
        body,
    )
    .await;
    assert_eq!(st, 403);
    // The plain forms refuse a foreign Origin too.
    let (st, _, _) = post_raw(
        &shop,
        "/api/add_to_cart",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("origin", "https://evil.example"),
        ],
        "sku_id=1&quantity=1",
    )
    .await;
    assert_eq!(st, 403);
    // The shop's own pages (same Origin) are fine; so is a client that sends none.
    let origin = shop.base.clone();
    let (st, _, cart) = post_raw(
        &shop,
        "/api/add_to_cart",
        &[
            ("content-type", "application/json; charset=utf-8"),
            ("origin", &origin),
        ],
        body,
    )
    .await;
    assert_eq!(st, 200, "{cart}");
    let (st, _, _) = post_raw(
        &shop,
        "/api/add_to_cart",
        &[("content-type", "application/json")],
        body,
    )
    .await;
    assert_eq!(st, 200);
    let carts: i64 =
        server::sql!(&shop.pool, e => sqlx::query_scalar("SELECT COUNT(*) FROM cart_lines")
        .fetch_one(e).await)
        .unwrap();
    assert_eq!(carts, 2, "only the two allowed writes wrote");
}

/// `create_order` with an `X-Forwarded-For` the client wrote; the answer's status.
async fn order_from(shop: &TestShop, s: &common::Shopper, forwarded_for: &str) -> u16 {
    s.http
        .post(format!("{}/api/create_order", shop.base))
        .header("x-forwarded-for", forwarded_for)
        .json(&order_body(&[(ORANGE_SMALL, 1)]))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

// 10. The client's address: the peer, or behind a trusted proxy the right-most untrusted hop.

#[tokio::test]
async fn a_client_written_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
    // Per address only: 4 a minute, a burst of 1.
    let limits = RateLimitSettings::parse("order=4/0").unwrap();
    let shop = TestShop::spawn_with(PayVersion::V3, |s| s.rate_limits = Some(limits.clone())).await;
    let s = shop.wechat_shopper(0).await;
    assert_eq!(order_from(&shop, &s, "198.51.100.1").await, 200);
    // Writing another address does not buy a new budget: the peer (127.0.0.1) is the client.
    assert_eq!(order_from(&shop, &s, "198.51.100.2").await, 429);

    // Behind a trusted proxy (127.0.0.1), the right-most untrusted hop is the client.
    let shop = TestShop::spawn_with(PayVersion::V3, |s| {
        s.rate_limits = Some(limits.clone());
        s.trusted_proxies = TrustedProxies::parse("127.0.0.1").unwrap();
    })
    .await;
    let s = shop.wechat_shopper(0).await;
    assert_eq!(order_from(&shop, &s, "203.0.113.1").await, 200);
    assert_eq!(
        order_from(&shop, &s, "203.0.113.2").await,
        200,
        "another client behind the proxy"
    );
    // A client prepending a fake hop is still itself (the right-most untrusted entry).
    assert_eq!(order_from(&shop, &s, "203.0.113.9, 203.0.113.1").await, 429);
}

// 3. Unauthenticated requests do not write without bound.

#[tokio::test]
async fn idle_anonymous_shoppers_and_expired_oauth_states_are_pruned() {
    let shop = TestShop::spawn().await;
    // An anonymous shopper who put something in the cart and took it out again.
    let idle = shop.shopper();
    idle.api("add_to_cart", json!({"sku_id": 1, "quantity": 1}))
        .await;
    idle.api("update_cart", json!({"sku_id": 1, "quantity": 0}))
        .await;
    // One who keeps a cart, and a WeChat shopper with an order.
    let keeper = shop.shopper();
    keeper
        .api("add_to_cart", json!({"sku_id": 1, "quantity": 1}))
        .await;
    let buyer = shop.wechat_shopper(0).await;
    buyer
        .api("create_order", order_body(&[(ORANGE_SMALL, 1)]))
        .await;
    // A page visit in WeChat without a session leaves an OAuth state behind.
    let visitor = shop.shopper_with_ua(WECHAT_UA);
    assert_eq!(visitor.raw_get("/").await.status(), 302);
    server::sql!(&shop.pool, e => sqlx::query("UPDATE users SET created_at = 0")
        .execute(e).await.map(server::db::Done::from))
    .unwrap();
    server::sql!(&shop.pool, e => sqlx::query("UPDATE oauth_states SET expires_at = 0")
        .execute(e).await.map(server::db::Done::from))
    .unwrap();
    let count = |sql: &'static str| {
        let pool = shop.pool.clone();
        async move {
            server::sql!(&pool, e => sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(e).await)
            .unwrap()
        }
    };
    assert_eq!(count("SELECT COUNT(*) FROM users").await, 3);
    assert!(count("SELECT COUNT(*) FROM oauth_states").await >= 1);
    shop.sweeper.run_once().await.unwrap();
    assert_eq!(
        count("SELECT COUNT(*) FROM users").await,
        2,
        "the idle one is gone"
    );
    assert_eq!(count("SELECT COUNT(*) FROM oauth_states").await, 0);
    assert_eq!(count("SELECT COUNT(*) FROM cart_lines").await, 1);
    assert_eq!(count("SELECT COUNT(*) FROM orders").await, 1);
}

// 13. Headers.

#[tokio::test]
async fn answers_cannot_be_framed_and_personal_ones_are_not_cached() {
    let shop = TestShop::spawn().await;
    let s = shop.shopper();
    let page = s.raw_get("/").await;
    assert_eq!(page.status(), 200);
    let h = page.headers();
    let csp = h["content-security-policy"].to_str().unwrap().to_string();
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "private, no-store");
    assert!(
        !h.contains_key("strict-transport-security"),
        "http: no HSTS"
    );
    // A full policy, whose nonce is the one on every inline script of the page.
    for part in [
        "default-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "'wasm-unsafe-eval'",
    ] {
        assert!(csp.contains(part), "{part} in {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .expect("a script nonce")
        .to_string();
    assert!(nonce.len() >= 16, "{nonce}");
    let html = page.text().await.unwrap();
    let scripts: Vec<&str> = html.split("<script").skip(1).collect();
    assert!(!scripts.is_empty());
    for tag in scripts {
        let open = &tag[..tag.find('>').unwrap()];
        if open.contains(" src=") {
            continue; // from 'self' (the sandbox's JS-SDK shim here)
        }
        assert!(
            open.contains(&format!("nonce=\"{nonce}\"")),
            "inline script without the page's nonce: <script{open}>"
        );
    }
    // Each render has its own nonce.
    let again = s.raw_get("/").await;
    assert_ne!(
        again.headers()["content-security-policy"].to_str().unwrap(),
        csp
    );
    // Not a page: no framing all the same.
    let res = s
        .http
        .post(format!("{}/api/list_products", shop.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["cache-control"], "private, no-store");
    assert_eq!(
        res.headers()["content-security-policy"],
        "frame-ancestors 'none'"
    );
    let icon = s.raw_get("/favicon.svg").await;
    if icon.status() == 200 {
        assert_ne!(icon.headers()["cache-control"], "private, no-store");
    }
}

// 11. 朋友圈快照页 visitors are never bound.

#[tokio::test]
async fn a_snapshot_page_visitor_is_asked_to_open_the_full_page_and_never_bound() {
    let shop = TestShop::spawn().await;
    let visitor = shop.shopper_with_ua(WECHAT_UA);
    let res = visitor.raw_get("/product/1").await;
    assert_eq!(res.status(), 302);
    let state = common::state_of(&common::location(&res));
    let code = shop.sandbox.issue_snapshot_code(0);
    let res = visitor
        .raw_get(&format!("/wechat/oauth/callback?code={code}&state={state}"))
        .await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("请前往完整服务") && page.contains("使用完整服务"),
        "{page}"
    );
    let bound: i64 = server::sql!(&shop.pool, e => sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE openid IS NOT NULL")
        .fetch_one(e).await)
        .unwrap();
    assert_eq!(bound, 0, "the virtual openid is never bound");
    // The real sign-in afterwards works as usual.
    let s = shop.wechat_shopper(0).await;
    let (st, _) = s
        .api("create_order", order_body(&[(ORANGE_SMALL, 1)]))
        .await;
    assert_eq!(st, 200);
}

// Crashes lose nothing: a stop signal lets the shop finish and exit 0.

#[test]
fn sigterm_stops_the_shop_and_it_exits_cleanly() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wxmall"))
        .env("WXMALL_ADDR", &addr)
        .env("WXMALL_PUBLIC_URL", format!("http://{addr}"))
        .env("WXMALL_DATA_DIR", dir.path())
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let health = || -> Option<String> {
        let mut s = std::net::TcpStream::connect(&addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    };
    let started = Instant::now();
    while health().is_none_or(|h| !h.ends_with("ok")) {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the shop did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let stopping = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(15),
            "still running 15 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert!(health().is_none(), "no longer accepting");
}

/// A free port on 127.0.0.1.
fn free_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// `wxmall` with a fresh data directory in `dir`, serving `site` (no database URL: SQLite).
fn wxmall(dir: &std::path::Path, addr: &str, site: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wxmall"));
    cmd.env("WXMALL_ADDR", addr)
        .env("WXMALL_PUBLIC_URL", format!("http://{addr}"))
        .env("WXMALL_DATA_DIR", dir.join("data"))
        .env("LEPTOS_SITE_ROOT", site)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "info");
    cmd
}

#[test]
fn a_stop_signal_does_not_wait_for_the_start_s_compression_of_a_new_site() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    // A big new bundle file: brotli at quality 11 takes far longer than the stop may.
    let mut x: u64 = 88172645463325252;
    let mut js = String::with_capacity(24 << 20);
    while js.len() < 24 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        js.push_str(&format!("const v{} = {};\n", x % 100_000, x % 9_973));
    }
    std::fs::write(site.join("pkg/big.js"), js).unwrap();
    let addr = free_addr();
    let mut child = wxmall(dir.path(), &addr, &site)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(started.elapsed() < Duration::from_secs(90), "no start");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !site.join("pkg/big.js.br").exists(),
        "the compression is still running when the stop comes"
    );
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let stopping = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if stopping.elapsed() > Duration::from_secs(8) {
            let _ = child.kill();
            panic!("still running 8 s after SIGTERM: waiting for the compression");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    // Nothing half-written under the real name.
    assert!(!site.join("pkg/big.js.br").exists());
}

#[test]
fn wxmall_precompress_writes_a_site_s_siblings_ahead_of_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    std::fs::write(
        site.join("pkg/app.css"),
        "body { color: red }\n".repeat(100),
    )
    .unwrap();
    std::fs::write(site.join("logo.png"), b"\x89PNG not compressible").unwrap();
    let run = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_wxmall"))
            .arg("precompress")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[site.as_os_str()]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 file(s) compressed"), "{text}");
    assert!(site.join("pkg/app.css.br").exists() && site.join("pkg/app.css.gz").exists());
    assert!(!site.join("logo.png.br").exists());
    let again = run(&[site.as_os_str()]);
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(
        text.contains("0 file(s) compressed") && text.contains("1 already up to date"),
        "{text}"
    );
    let missing = run(&[dir.path().join("nowhere").as_os_str()]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("is not a directory"),
        "{missing:?}"
    );
}

#[test]
fn a_release_site_without_its_hash_file_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    std::fs::write(site.join("pkg/wxmall.8kfzd1rX2DqvHGRk2t1O7A.js"), "js").unwrap();
    let missing = dir.path().join("hash.txt");
    let mut child = wxmall(dir.path(), &free_addr(), &site)
        .env("LEPTOS_HASH_FILE_NAME", &missing)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if started.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the shop started and served pages that link a bundle it does not have");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains(&missing.display().to_string()) && err.contains("hash.txt"),
        "{err}"
    );
}

// 8. Sessions expire on the server.

#[tokio::test]
async fn a_session_idle_for_thirty_days_is_gone_and_a_visit_keeps_one_alive() {
    let shop = TestShop::spawn().await;
    let idle = shop.wechat_shopper(0).await;
    let (st, _) = idle
        .api("add_to_cart", json!({"sku_id": 1, "quantity": 2}))
        .await;
    assert_eq!(st, 200);
    let active = shop.wechat_shopper(1).await;
    let (st, _) = active
        .api("add_to_cart", json!({"sku_id": 1, "quantity": 1}))
        .await;
    assert_eq!(st, 200);
    // Both last seen 31 days ago; then the second one visits again.
    let month_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 31 * 86400;
    server::sql!(&shop.pool, e => sqlx::query("UPDATE sessions SET last_seen_at = $1").bind(month_ago)
        .execute(e).await.map(server::db::Done::from))
        .unwrap();
    let (_, cart) = active.api("get_cart", json!({})).await;
    assert_eq!(cart["lines"].as_array().unwrap().len(), 1, "{cart}");
    shop.sweeper.run_once().await.unwrap();
    // The idle one's cookie leads nowhere: an empty cart, no WeChat identity, and a page sends it
    // through WeChat's sign-in again.
    let (_, cart) = idle.api("get_cart", json!({})).await;
    assert_eq!(cart["lines"].as_array().unwrap().len(), 0, "{cart}");
    let (_, profile) = idle.api("get_profile", json!({})).await;
    assert_eq!(profile["wechat"], false);
    assert_eq!(idle.raw_get("/").await.status(), 302);
    // The one that visited is still signed in with its cart.
    let (_, cart) = active.api("get_cart", json!({})).await;
    assert_eq!(cart["lines"].as_array().unwrap().len(), 1, "{cart}");
    let (_, profile) = active.api("get_profile", json!({})).await;
    assert_eq!(profile["wechat"], true);
}

// 6. A failing WeChat is not asked on every request.

#[tokio::test]
async fn a_failing_ticket_fetch_is_remembered_for_a_short_growing_time() {
    let shop = TestShop::spawn().await;
    let url = format!("{}/", shop.base);
    shop.sandbox.fail_next(
        wechat_sandbox::Endpoint::GetTicket,
        wechat_sandbox::Fault::errcode(-1, "system error"),
    );
    let s = shop.shopper();
    let (st, err) = s.api("jssdk_config", json!({"url": url})).await;
    assert_eq!(st, 503, "{err}");
    let asked = shop.sandbox.ticket_fetches();
    // A loop of requests right after: answered at once, WeChat not asked again.
    for _ in 0..20 {
        let (st, _) = s.api("jssdk_config", json!({"url": url})).await;
        assert_eq!(st, 503);
    }
    assert_eq!(
        shop.sandbox.ticket_fetches(),
        asked,
        "no fetch during the backoff"
    );
    // After the backoff (1 s after a first failure), WeChat is asked again and it works.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (st, cfg) = s.api("jssdk_config", json!({"url": url})).await;
    assert_eq!(st, 200, "{cfg}");
    assert_eq!(shop.sandbox.ticket_fetches(), asked + 1);
}

// 13. Body limits.

#[tokio::test]
async fn an_oversized_body_is_refused_before_it_is_read() {
    let shop = TestShop::spawn().await;
    let huge = format!(
        r#"{{"items":[],"address":{{}},"remark":"{}"}}"#,
        "x".repeat(200 * 1024)
    );
    let (st, _, _) = post_raw(
        &shop,
        "/api/create_order",
        &[("content-type", "application/json")],
        &huge,
    )
    .await;
    assert_eq!(st, 413);
    let (st, _, _) = post_raw(
        &shop,
        "/api/checkout",
        &[("content-type", "application/x-www-form-urlencoded")],
        &format!("remark={}", "x".repeat(200 * 1024)),
    )
    .await;
    assert_eq!(st, 413);
}

// 13. A header-read timeout: a client that trickles its headers (slowloris) loses the
// connection; `axum::serve` sets no timer, so hyper never enforced one.

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    tokio::spawn(server::serve::serve(
        listener,
        router,
        Duration::from_millis(300),
        std::future::pending(),
    ));

    // A whole request is answered.
    let mut whole = tokio::net::TcpStream::connect(addr).await.unwrap();
    whole
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    whole.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Headers that never end: the connection is closed soon after the timeout.
    let started = Instant::now();
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let (mut r, mut w) = slow.split();
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        // Keep trickling, as slowloris does; the server must not wait for the end.
        loop {
            tokio::select! {
                n = r.read_to_end(&mut buf) => break n,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    if w.write_all(b"x-a: b\r\n").await.is_err() {
                        break Ok(0);
                    }
                }
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the connection is still open after 5 s of unfinished headers"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

// 1. (several instances) With `WXMALL_REDIS_URL` the rate limits are one budget for every
// instance: two shops on one Redis (this kind of machine runs one on 127.0.0.1:6379).

#[tokio::test]
async fn with_redis_two_instances_spend_one_rate_limit_budget() {
    let tweak = |s: &mut server::config::Settings| {
        // Per address: 8 a minute, a burst of 2; per session: plenty.
        s.rate_limits = Some(RateLimitSettings::parse("order=8/1000").unwrap());
        s.wechat.redis_url = Some("redis://127.0.0.1:6379/".into());
        s.trusted_proxies = TrustedProxies::parse("127.0.0.1").unwrap();
    };
    let a = TestShop::spawn_with(PayVersion::V3, tweak).await;
    let b = TestShop::spawn_with(PayVersion::V3, tweak).await;
    // A client address of this run's own (Redis outlives test runs).
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        ^ std::process::id();
    let client = format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255);
    let (sa, sb) = (a.shopper(), b.shopper());
    assert_ne!(order_from(&a, &sa, &client).await, 429);
    assert_ne!(order_from(&b, &sb, &client).await, 429);
    // Each instance on its own would still admit its second request; shared, the burst is spent.
    assert_eq!(order_from(&a, &sa, &client).await, 429);
    assert_eq!(order_from(&b, &sb, &client).await, 429);
    // Another address has its own budget.
    let other = format!(
        "10.{}.{}.{}",
        (n >> 16) & 255,
        (n >> 8) & 255,
        (n + 1) & 255
    );
    assert_ne!(order_from(&b, &sb, &other).await, 429);
}
