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
