//! `wxmall doctor` against a shop on the sandbox: healthy, then with WeChat put into the
//! failures merchants meet (40164 with the IP WeChat saw, a Pay key/serial mismatch, a
//! platform certificate about to run out), a proxy that moves the payment pages, and a
//! database the shop cannot use.

mod common;

use common::TestShop;
use server::doctor::{examine, Inputs, Report, Status};
use wechat_sandbox::{Endpoint, Fault};

async fn doctor(shop: &TestShop, site_root: &std::path::Path) -> Report {
    examine(&Inputs {
        public_url: &shop.wechat.public_url,
        site_root,
        wechat: &shop.wechat,
        pool: &shop.pool,
        redis_url: None,
        http: reqwest::Client::new(),
    })
    .await
}

fn status(r: &Report, name: &str) -> Status {
    r.get(name)
        .unwrap_or_else(|| panic!("no check {name}: {}", r.text()))
        .status
}

#[tokio::test]
async fn a_healthy_sandbox_shop_passes_and_gets_the_values_to_paste() {
    let shop = TestShop::spawn().await;
    let site = tempfile::tempdir().unwrap();
    let r = doctor(&shop, site.path()).await;
    for name in [
        "shop_answers",
        "access_token",
        "jsapi_ticket",
        "pay",
        "pay_keys",
        "notify_url",
        "clock",
        "mp_server",
        "database",
        "pay_directory",
    ] {
        assert_eq!(status(&r, name), Status::Ok, "{name}:\n{}", r.text());
    }
    // The pages that pay are under the directory to register, and it says what iOS checks.
    let dir = format!("{}/", shop.wechat.public_url);
    let c = r.get("pay_directory").unwrap();
    assert!(
        c.detail
            .contains(&format!("register {dir} as 支付授权目录"))
            && c.detail.contains(&format!("{dir}checkout"))
            && c.detail.contains(&format!("{dir}orders/{{id}}"))
            && c.detail
                .contains("iOS checks the page the shopper landed on"),
        "{}",
        c.detail
    );
    assert_eq!(status(&r, "public_url"), Status::Warn, "local http");
    assert!(!r.failed(), "{}", r.text());
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["checks"][0]["status"], "warn");
    assert!(json["checks"][0]["fix"].as_str().unwrap().contains("https"));
    let paste = r.text();
    assert!(paste.contains(&format!(
        "支付授权目录 (商户平台 → 产品中心 → 开发配置): {}/",
        shop.wechat.public_url
    )));
    assert!(paste.contains("/wechat/mp"));
    // Pay v3's keys: the sandbox's 微信支付公钥 and its platform certificate, decrypted with the
    // APIv3 key.
    let keys = r.get("pay_keys").unwrap();
    assert!(
        keys.detail.contains("PUB_KEY_ID_")
            && keys.detail.contains("decrypted with WECHAT_APIV3_KEY"),
        "{}",
        keys.detail
    );
}

#[tokio::test]
async fn pay_v2_has_no_v3_key_check() {
    let shop = TestShop::spawn_with(server::wechat_config::PayVersion::V2, |_| {}).await;
    let site = tempfile::tempdir().unwrap();
    let r = doctor(&shop, site.path()).await;
    assert_eq!(status(&r, "pay"), Status::Ok, "{}", r.text());
    assert!(r.get("pay_keys").is_none(), "{}", r.text());
}

#[tokio::test]
async fn an_ip_missing_from_the_whitelist_is_named() {
    let shop = TestShop::spawn().await;
    // The shop asks `stable_token` (as WeChat recommends).
    shop.sandbox.fail_next(
        Endpoint::StableToken,
        Fault::errcode(
            40164,
            "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist",
        ),
    );
    let site = tempfile::tempdir().unwrap();
    let r = doctor(&shop, site.path()).await;
    let c = r.get("access_token").unwrap();
    assert_eq!(c.status, Status::Fail, "{}", r.text());
    assert!(
        c.fix.contains("203.0.113.7") && c.fix.contains("IP白名单"),
        "{}",
        c.fix
    );
    assert!(r.failed());
}

#[tokio::test]
async fn a_pay_key_that_does_not_match_fails_with_what_to_check() {
    let shop = TestShop::spawn().await;
    shop.sandbox
        .fail_next(Endpoint::V3Query, Fault::v3(401, "SIGN_ERROR", "签名错误"));
    let site = tempfile::tempdir().unwrap();
    let r = doctor(&shop, site.path()).await;
    let c = r.get("pay").unwrap();
    assert_eq!(c.status, Status::Fail, "{}", r.text());
    assert!(c.fix.contains("WECHAT_MCH_SERIAL"), "{}", c.fix);
    // The same shop, WeChat healthy again: ok.
    let r = doctor(&shop, site.path()).await;
    assert_eq!(status(&r, "pay"), Status::Ok);
}

#[tokio::test]
async fn verification_files_must_be_served() {
    let shop = TestShop::spawn().await;
    let site = tempfile::tempdir().unwrap();
    // A file the shop does not serve (its site root is another directory).
    std::fs::write(site.path().join("MP_verify_abc123.txt"), "abc123").unwrap();
    let r = doctor(&shop, site.path()).await;
    assert_eq!(status(&r, "verify_files"), Status::Fail, "{}", r.text());
}

/// The shop behind an https front whose certificate (from the sandbox CA) is valid for
/// `days`; the doctor's client trusts that CA and keeps the certificate it was shown.
async fn behind_https(shop: &TestShop, days: u64) -> (wechat_sandbox::HttpsFront, reqwest::Client) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front = wechat_sandbox::serve_https_front(
        &shop.sandbox,
        listener,
        shop.base.trim_start_matches("http://").parse().unwrap(),
        std::time::Duration::from_secs(days * 86_400),
    )
    .await
    .unwrap();
    let ca = reqwest::Certificate::from_pem(shop.sandbox.ca_certificate_pem().unwrap().as_bytes())
        .unwrap();
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_info(true)
        .add_root_certificate(ca)
        .build()
        .unwrap();
    (front, http)
}

async fn doctor_at(shop: &TestShop, public_url: &str, http: reqwest::Client) -> Report {
    let site = tempfile::tempdir().unwrap();
    examine(&Inputs {
        public_url,
        site_root: site.path(),
        wechat: &shop.wechat,
        pool: &shop.pool,
        redis_url: None,
        http,
    })
    .await
}

#[tokio::test]
async fn a_certificate_with_months_left_is_ok_and_one_about_to_expire_warns() {
    let shop = TestShop::spawn().await;

    let (front, http) = behind_https(&shop, 90).await;
    let r = doctor_at(&shop, &front.url, http).await;
    assert_eq!(status(&r, "public_url"), Status::Ok, "{}", r.text());
    assert_eq!(status(&r, "shop_answers"), Status::Ok, "{}", r.text());
    let c = r.get("certificate").unwrap();
    assert_eq!(c.status, Status::Ok, "{}", r.text());
    assert!(
        c.detail.contains("valid for 89 more days") || c.detail.contains("valid for 90 more days"),
        "{}",
        c.detail
    );

    let (front, http) = behind_https(&shop, 5).await;
    let r = doctor_at(&shop, &front.url, http).await;
    let c = r.get("certificate").unwrap();
    assert_eq!(c.status, Status::Warn, "{}", r.text());
    assert!(
        c.detail.contains("expires in 4 days") || c.detail.contains("expires in 5 days"),
        "{}",
        c.detail
    );
    assert!(c.fix.contains("renew"), "{}", c.fix);
}

#[tokio::test]
async fn an_expired_or_untrusted_certificate_fails() {
    let shop = TestShop::spawn().await;
    let (front, http) = behind_https(&shop, 30).await;
    // The certificate as the handshake presents it, read on a day after it expired.
    let resp = http
        .get(format!("{}/healthz", front.url))
        .send()
        .await
        .unwrap();
    let der = resp
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|t| t.peer_certificate())
        .expect("the handshake's certificate")
        .to_vec();
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(31);
    let c = server::doctor::certificate_check("127.0.0.1", &der, later);
    assert_eq!(c.status, Status::Fail, "{c:?}");
    assert!(c.detail.contains("expired"), "{}", c.detail);

    // A client that does not trust the issuer (as WeChat's browser would not trust a
    // self-made CA): no TLS connection, the check fails and says why.
    let r = doctor_at(&shop, &front.url, server::doctor::probe_client().unwrap()).await;
    let c = r.get("certificate").unwrap();
    assert_eq!(c.status, Status::Fail, "{}", r.text());
    assert!(c.detail.contains("no TLS connection"), "{}", c.detail);

    // Plain http on loopback: no certificate to check.
    let r = doctor_at(
        &shop,
        &shop.wechat.public_url,
        server::doctor::probe_client().unwrap(),
    )
    .await;
    assert!(r.get("certificate").is_none(), "{}", r.text());
}

#[tokio::test]
async fn a_ticket_wechat_refuses_fails_the_jsapi_check() {
    let shop = TestShop::spawn().await;
    shop.sandbox.expire_jsapi_tickets();
    shop.sandbox.fail_next(
        Endpoint::GetTicket,
        Fault::errcode(40164, "invalid ip 198.51.100.4, not in whitelist"),
    );
    let site = tempfile::tempdir().unwrap();
    let r = doctor(&shop, site.path()).await;
    let c = r.get("jsapi_ticket").unwrap();
    assert_eq!(c.status, Status::Fail, "{}", r.text());
    assert!(c.fix.contains("198.51.100.4"), "{}", c.fix);
}

/// A reverse proxy that passes only `/healthz` to the shop: every other path is its own 404.
#[tokio::test]
async fn a_proxy_that_does_not_pass_wechats_paths_fails_them() {
    let shop = TestShop::spawn().await;
    let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let r = doctor_at(&shop, &url, server::doctor::probe_client().unwrap()).await;
    assert_eq!(status(&r, "shop_answers"), Status::Ok, "{}", r.text());
    for name in ["notify_url", "mp_server"] {
        let c = r.get(name).unwrap();
        assert_eq!(c.status, Status::Fail, "{name}: {}", r.text());
        assert!(
            c.fix.contains("proxy") || c.fix.contains("WeChat"),
            "{}",
            c.fix
        );
    }
    assert!(r.failed());
}

#[tokio::test]
async fn a_public_url_on_plain_http_fails_and_an_unreachable_one_is_named() {
    let shop = TestShop::spawn().await;
    // Nothing listens on port 9 of this address (discard, never open on CI machines).
    let r = doctor_at(
        &shop,
        "http://192.0.2.1:9",
        reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_millis(300))
            .build()
            .unwrap(),
    )
    .await;
    let c = r.get("public_url").unwrap();
    assert_eq!(c.status, Status::Fail, "{}", r.text());
    assert!(c.fix.contains("https"), "{}", c.fix);
    let c = r.get("shop_answers").unwrap();
    assert_eq!(c.status, Status::Fail, "{}", r.text());
    assert!(c.detail.contains("cannot be reached"), "{}", c.detail);
}

#[tokio::test]
async fn redis_that_does_not_answer_fails() {
    let shop = TestShop::spawn().await;
    let site = tempfile::tempdir().unwrap();
    let r = examine(&Inputs {
        public_url: &shop.wechat.public_url,
        site_root: site.path(),
        wechat: &shop.wechat,
        pool: &shop.pool,
        redis_url: Some("redis://127.0.0.1:1/"),
        http: reqwest::Client::new(),
    })
    .await;
    assert_eq!(status(&r, "redis"), Status::Fail, "{}", r.text());
    let r = examine(&Inputs {
        public_url: &shop.wechat.public_url,
        site_root: site.path(),
        wechat: &shop.wechat,
        pool: &shop.pool,
        redis_url: Some("redis://127.0.0.1:6379/"),
        http: reqwest::Client::new(),
    })
    .await;
    assert_eq!(status(&r, "redis"), Status::Ok, "{}", r.text());
}

/// Where a front passes requests: the shop, through a client that follows no redirect.
#[derive(Clone)]
struct Upstream {
    http: reqwest::Client,
    base: String,
}

impl Upstream {
    /// Passes `req` to the shop as it is and its answer back.
    async fn pass(self, req: axum::extract::Request) -> axum::response::Response {
        use axum::http::header;
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut ask = self
            .http
            .request(parts.method.clone(), format!("{}{path}", self.base));
        for (k, v) in &parts.headers {
            if ![
                header::HOST,
                header::CONTENT_LENGTH,
                header::ACCEPT_ENCODING,
            ]
            .contains(k)
            {
                ask = ask.header(k, v);
            }
        }
        let answer = ask.body(body).send().await.unwrap();
        let mut out = axum::response::Response::builder().status(answer.status());
        for (k, v) in answer.headers() {
            if ![
                header::CONTENT_LENGTH,
                header::TRANSFER_ENCODING,
                header::CONNECTION,
            ]
            .contains(k)
            {
                out = out.header(k, v);
            }
        }
        out.body(axum::body::Body::from(answer.bytes().await.unwrap()))
            .unwrap()
    }
}

/// An HTTP front (a reverse proxy) that passes every request to the shop, except those to
/// `path`, which `answer(front's URL, the shop)` handles.
async fn front_with(
    shop: &TestShop,
    path: &str,
    answer: impl FnOnce(&str, Upstream) -> axum::routing::MethodRouter,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = Upstream {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        base: shop.base.clone(),
    };
    let shop = upstream.clone();
    let app = axum::Router::new()
        .route(path, answer(&url, upstream))
        .fallback(move |req: axum::extract::Request| shop.clone().pass(req));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// A 302 to `to`.
fn found(to: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::FOUND,
        [(axum::http::header::LOCATION, to.to_string())],
    )
        .into_response()
}

/// A front that answers `GET path` with a 302 to `to(front's URL)`.
async fn front_redirecting(shop: &TestShop, path: &str, to: impl FnOnce(&str) -> String) -> String {
    front_with(shop, path, |url, _| {
        let to = to(url);
        axum::routing::get(move || async move { found(&to) })
    })
    .await
}

#[tokio::test]
async fn a_front_that_moves_the_checkout_to_another_host_fails_the_payment_directory() {
    let shop = TestShop::spawn().await;
    let probe = || server::doctor::probe_client().unwrap();
    let front = front_redirecting(&shop, "/checkout", |_| {
        "https://m.example.com/checkout".into()
    })
    .await;
    let r = doctor_at(&shop, &front, probe()).await;
    // The rest passes through the front.
    for name in ["shop_answers", "mp_server"] {
        assert_eq!(status(&r, name), Status::Ok, "{name}: {}", r.text());
    }
    let c = r.get("pay_directory").unwrap();
    assert_eq!(c.status, Status::Fail, "{}", r.text());
    assert!(
        c.detail.contains(&format!(
            "{front}/checkout redirects to https://m.example.com/checkout, outside the 支付授权目录 {front}/"
        )),
        "{}",
        c.detail
    );
    assert!(c.fix.contains("当前页面的URL未注册"), "{}", c.fix);
    // The directory to paste is still the public URL's.
    assert!(r.text().contains(&format!(
        "支付授权目录 (商户平台 → 产品中心 → 开发配置): {front}/"
    )));

    // Another scheme on the same host and port is outside the directory too.
    let front = front_redirecting(&shop, "/checkout", |url| {
        format!("{}/checkout", url.replace("http://", "https://"))
    })
    .await;
    let r = doctor_at(&shop, &front, probe()).await;
    let c = r.get("pay_directory").unwrap();
    assert_eq!(c.status, Status::Fail, "{}", r.text());
    let https = front.replace("http://", "https://");
    assert!(
        c.detail.contains(&format!("redirects to {https}/checkout")),
        "{}",
        c.detail
    );

    // A redirect that stays inside the directory (a relative one, here adding a query) is
    // followed to the shop's page: fine.
    let front = front_with(&shop, "/checkout", |_, shop| {
        axum::routing::get(move |req: axum::extract::Request| async move {
            match req.uri().query() {
                None => found("/checkout?from=front"),
                Some(_) => shop.pass(req).await,
            }
        })
    })
    .await;
    let r = doctor_at(&shop, &front, probe()).await;
    assert_eq!(status(&r, "pay_directory"), Status::Ok, "{}", r.text());
}

/// A front whose own 404 page answers the order pages: not the shop's 404.
#[tokio::test]
async fn a_front_that_does_not_pass_the_order_page_fails_the_payment_directory() {
    let shop = TestShop::spawn().await;
    let front = front_with(&shop, "/orders/{id}", |_, _| {
        axum::routing::get(|| async {
            (
                axum::http::StatusCode::NOT_FOUND,
                axum::response::Html("<html><body><center>404 Not Found</center></body></html>"),
            )
        })
    })
    .await;
    let r = doctor_at(&shop, &front, server::doctor::probe_client().unwrap()).await;
    let c = r.get("pay_directory").unwrap();
    assert_eq!(c.status, Status::Fail, "{}", r.text());
    assert!(
        c.detail
            .contains(&format!("{front}/orders/0 answered HTTP 404")),
        "{}",
        c.detail
    );
    assert!(c.fix.contains("proxy"), "{}", c.fix);
}

// ---------------------------------------------------------------- the database

/// The doctor of `shop` run on another pool (the shop itself keeps its own).
async fn doctor_on(shop: &TestShop, pool: &server::db::Db) -> Report {
    let site = tempfile::tempdir().unwrap();
    examine(&Inputs {
        public_url: &shop.wechat.public_url,
        site_root: site.path(),
        wechat: &shop.wechat,
        pool,
        redis_url: None,
        http: server::doctor::probe_client().unwrap(),
    })
    .await
}

/// The checks that have nothing to do with the database came out as on a healthy shop, and
/// the values to paste are there.
fn rest_of_the_report_is_there(r: &Report) {
    for name in [
        "shop_answers",
        "pay_directory",
        "access_token",
        "jsapi_ticket",
        "pay",
        "pay_keys",
        "notify_url",
        "clock",
        "mp_server",
    ] {
        assert_eq!(status(r, name), Status::Ok, "{name}: {}", r.text());
    }
    assert!(r.text().contains("支付授权目录"), "{}", r.text());
}

#[tokio::test]
async fn a_read_only_database_fails_the_database_check_and_the_rest_still_runs() {
    let shop = TestShop::spawn().await;
    // DATABASE_URL on a read replica, a read-only user, or a file the shop's user cannot write.
    let read_only = server::db::open_read_only(&shop.database_url)
        .await
        .unwrap();
    let r = doctor_on(&shop, &read_only).await;
    let c = r.get("database").unwrap();
    assert_eq!(c.status, Status::Fail, "{}", r.text());
    assert!(
        c.detail.contains("is read-only for the shop"),
        "{}",
        c.detail
    );
    assert!(
        c.fix.contains("DATABASE_URL") && c.fix.contains("read replica"),
        "{}",
        c.fix
    );
    rest_of_the_report_is_there(&r);
    assert!(r.failed());
}

#[tokio::test]
async fn migrations_behind_the_build_fail_the_database_check_with_both_versions() {
    let shop = TestShop::spawn().await;
    let latest: i64 = server::sql!(&shop.pool, e => sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(e).await)
    .unwrap();
    // The database of an older build: its newest migration not applied yet.
    server::sql!(&shop.pool, e => sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
        .bind(latest)
        .execute(e).await.map(server::db::Done::from))
    .unwrap();
    let before: i64 = server::sql!(&shop.pool, e => sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(e).await)
    .unwrap();
    let r = doctor(&shop, tempfile::tempdir().unwrap().path()).await;
    let c = r.get("database").unwrap();
    assert_eq!(c.status, Status::Fail, "{}", r.text());
    assert!(
        c.detail.contains(&format!(
            "migrations applied up to {before}, this build has {latest}"
        )),
        "{}",
        c.detail
    );
    assert!(c.fix.contains("start the shop"), "{}", c.fix);
}

#[tokio::test]
async fn a_database_that_went_away_fails_the_database_check_at_once() {
    let shop = TestShop::spawn().await;
    let pool = server::db::open_existing(&shop.database_url).await.unwrap();
    pool.close().await;
    let started = std::time::Instant::now();
    let r = doctor_on(&shop, &pool).await;
    let c = r.get("database").unwrap();
    assert_eq!(c.status, Status::Fail, "{}", r.text());
    assert!(c.detail.contains("cannot be reached"), "{}", c.detail);
    assert!(c.fix.contains("DATABASE_URL"), "{}", c.fix);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    rest_of_the_report_is_there(&r);
}

/// Another session that holds the lock the doctor's test write needs, and keeps it.
enum LockHolder {
    Sqlite(#[allow(dead_code)] sqlx::SqliteConnection),
    Postgres(#[allow(dead_code)] sqlx::PgConnection),
}

async fn hold_the_write_lock(database_url: &str) -> LockHolder {
    use sqlx::Connection;
    if database_url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(database_url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut c).await.unwrap();
        sqlx::query("LOCK TABLE mp_messages IN ACCESS EXCLUSIVE MODE")
            .execute(&mut c)
            .await
            .unwrap();
        LockHolder::Postgres(c)
    } else {
        let mut c = sqlx::SqliteConnection::connect(database_url).await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut c)
            .await
            .unwrap();
        LockHolder::Sqlite(c)
    }
}

#[tokio::test]
async fn a_database_held_locked_fails_the_database_check_within_its_wait() {
    let shop = TestShop::spawn().await;
    let _holder = hold_the_write_lock(&shop.database_url).await;
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        doctor_on(&shop, &shop.pool),
    )
    .await
    .expect("the doctor answers although the database is locked");
    let took = started.elapsed();
    let c = r.get("database").unwrap();
    assert_eq!(c.status, Status::Fail, "{}", r.text());
    assert!(c.detail.contains("lock"), "{}", c.detail);
    assert!(c.fix.contains("long transaction"), "{}", c.fix);
    // SQLite's own busy timeout is 10 s; PostgreSQL would wait for ever.
    assert!(
        took < server::doctor::DATABASE_WAIT + std::time::Duration::from_secs(3),
        "{took:?}"
    );
    rest_of_the_report_is_there(&r);
}

// ---------------------------------------------------------------- Pay v3 platform certificates

/// A v3 shop with no 微信支付公钥, on a WeChat (a sandbox of its own) whose platform certificate
/// is valid for `validity` from now and signs every answer, as for a merchant not yet moved to
/// the public key. Returns the shop and the certificate's end (unix seconds).
async fn platform_certificate_only(validity: std::time::Duration) -> (TestShop, i64) {
    use server::wechat_config::{PayCredentials, PayVersion, WechatSource};
    let creds = common::sandbox_credentials()
        .with_platform_certificate_validity(validity)
        .unwrap();
    let not_after = wechat::pay::v3::certs::PlatformCert::from_pem(&creds.platform_certificate_pem)
        .unwrap()
        .not_after();
    let sandbox = wechat_sandbox::Sandbox::with_options(
        creds.clone(),
        wechat_sandbox::SandboxOptions {
            answer_signer: wechat_sandbox::AnswerSigner::PlatformCertificate,
            ..Default::default()
        },
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().nest_service("/sandbox", wechat_sandbox::router(sandbox));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let shop = TestShop::spawn_with(PayVersion::V3, |settings| {
        let mut c =
            server::wechat_config::sandbox_credentials(&creds, &origin, PayVersion::V3).unwrap();
        if let PayCredentials::V3 { public_key, .. } = &mut c.pay {
            *public_key = None;
        }
        settings.wechat.source = WechatSource::External(Box::new(c));
    })
    .await;
    (shop, not_after)
}

fn date_of(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .unwrap()
        .date()
        .to_string()
}

#[tokio::test]
async fn a_platform_certificate_with_ten_days_left_and_no_public_key_warns() {
    const DAY: u64 = 86_400;
    // An hour over, so that "days left" is 10 however long the test takes to get there.
    let (shop, not_after) =
        platform_certificate_only(std::time::Duration::from_secs(10 * DAY + 3_600)).await;
    let r = doctor(&shop, tempfile::tempdir().unwrap().path()).await;
    // Payments work in this mode: WeChat's answers are verified with the certificate.
    assert_eq!(status(&r, "pay"), Status::Ok, "{}", r.text());
    let c = r.get("pay_keys").unwrap();
    assert_eq!(c.status, Status::Warn, "{}", r.text());
    assert!(
        c.detail.contains(&format!(
            "is valid until {}: 10 days left",
            date_of(not_after)
        )),
        "{}",
        c.detail
    );
    assert!(
        c.fix.contains("微信支付公钥") && c.fix.contains("WECHAT_PAY_PUBLIC_KEY_ID"),
        "{}",
        c.fix
    );

    let (shop, not_after) =
        platform_certificate_only(std::time::Duration::from_secs(90 * DAY + 3_600)).await;
    let r = doctor(&shop, tempfile::tempdir().unwrap().path()).await;
    let c = r.get("pay_keys").unwrap();
    assert_eq!(c.status, Status::Ok, "{}", r.text());
    assert!(
        c.detail
            .contains(&format!("is valid until {}", date_of(not_after)))
            && !c.detail.contains("微信支付公钥"),
        "{}",
        c.detail
    );
}
