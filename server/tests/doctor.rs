//! `wxmall doctor` against a shop on the sandbox: healthy, then with WeChat put into the
//! failures merchants meet (40164 with the IP WeChat saw, a Pay key/serial mismatch).

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
    ] {
        assert_eq!(status(&r, name), Status::Ok, "{name}:\n{}", r.text());
    }
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
