//! WeChat end to end against the embedded sandbox, in process: OAuth entry, JS-SDK signing,
//! pay_order, notifications (duplicates, forgeries), expiry, reconciliation, and that no secret
//! ever reaches a page or an API answer.

mod common;

use common::{location, order_body, state_of, TestShop, WECHAT_UA};
use serde_json::{json, Value};
use server::wechat_config::PayVersion;
use std::time::Duration;
use wechat_sandbox::Forgery;

const ORANGE_SMALL: i64 = 1; // ¥39.90
const MUG_BLACK: i64 = 17; // stock 5

async fn bound_openid(shop: &TestShop) -> Vec<String> {
    server::sql!(&shop.pool, e => sqlx::query_scalar("SELECT openid FROM users WHERE openid IS NOT NULL ORDER BY id")
        .fetch_all(e).await)
        .unwrap()
}

/// A signed-in WeChat shopper with one unpaid order; returns (shopper, order_id, order_no).
async fn shopper_with_order(
    shop: &TestShop,
    items: &[(i64, i64)],
) -> (common::Shopper, i64, String) {
    let s = shop.wechat_shopper(0).await;
    let (st, created) = s.api("create_order", order_body(items)).await;
    assert_eq!(st, 200, "{created}");
    let id = created["order_id"].as_i64().unwrap();
    let no = shop.order_no(id).await;
    (s, id, no)
}

async fn wait_paid(shop: &TestShop, id: i64) -> bool {
    for _ in 0..200 {
        if shop.order_row(id).await.0 == "paid" {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

// ------------------------------------------------------------------ OAuth

#[tokio::test]
async fn first_visit_in_wechat_goes_through_oauth_and_binds_the_session() {
    let shop = TestShop::spawn().await;
    let s = shop.shopper_with_ua(WECHAT_UA);
    let res = s.raw_get("/cart").await;
    assert_eq!(res.status(), 302);
    let authorize = location(&res);
    let expected = format!(
        "{}/sandbox/open/connect/oauth2/authorize?appid={}&redirect_uri={}&response_type=code&scope=snsapi_base&state=",
        shop.base,
        shop.wechat.appid,
        url::form_urlencoded::byte_serialize(format!("{}/wechat/oauth/callback", shop.base).as_bytes()).collect::<String>()
    );
    assert!(authorize.starts_with(&expected), "{authorize}");
    assert!(authorize.ends_with("#wechat_redirect"));

    // The sandbox's picker, as a person would use it: pick 张小明 → back with a code.
    let picker = s.raw_get(authorize.split('#').next().unwrap()).await;
    assert_eq!(picker.status(), 200);
    assert!(picker.text().await.unwrap().contains("wx-user-1"));
    let state = state_of(&authorize);
    let res = s
        .http
        .post(format!(
            "{}/sandbox/open/connect/oauth2/sandbox_pick",
            shop.base
        ))
        .form(&[
            ("appid", shop.wechat.appid.as_str()),
            (
                "redirect_uri",
                &format!("{}/wechat/oauth/callback", shop.base),
            ),
            ("response_type", "code"),
            ("scope", "snsapi_base"),
            ("state", &state),
            ("user", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let callback = location(&res);
    assert!(
        callback.starts_with(&format!("{}/wechat/oauth/callback?code=", shop.base)),
        "{callback}"
    );
    let res = s.raw_get(&callback).await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), "/cart", "back to the page that started it");
    assert_eq!(
        bound_openid(&shop).await,
        vec![shop.sandbox.users()[0].openid.clone()]
    );

    // Signed in: pages render, with the sandbox banner.
    let res = s.raw_get("/cart").await;
    assert_eq!(res.status(), 200);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("沙箱模式：未连接真实微信支付"));
    // The state was single-use.
    let res = s.raw_get(&callback).await;
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn the_anonymous_cart_follows_the_shopper_into_the_wechat_account() {
    let shop = TestShop::spawn().await;
    let s = shop.shopper_with_ua(WECHAT_UA);
    let (st, _) = s
        .api(
            "add_to_cart",
            json!({"sku_id": ORANGE_SMALL, "quantity": 2}),
        )
        .await;
    assert_eq!(st, 200);
    s.login(&shop.sandbox, 1).await;
    let (_, cart) = s.api("get_cart", json!({})).await;
    assert_eq!(cart["lines"][0]["quantity"], 2, "{cart}");
}

#[tokio::test]
async fn tampered_foreign_or_replayed_states_are_refused_with_a_retry_link() {
    let shop = TestShop::spawn().await;
    let s = shop.shopper_with_ua(WECHAT_UA);
    let res = s.raw_get("/").await;
    let state = state_of(&location(&res));
    let code = shop.sandbox.issue_oauth_code(0, "snsapi_base");

    let mut tampered = state.clone();
    tampered.replace_range(0..1, if tampered.starts_with('A') { "B" } else { "A" });
    for bad in [tampered.as_str(), "", "not-alnum!", &"x".repeat(200)] {
        let res = s
            .raw_get(&format!("/wechat/oauth/callback?code={code}&state={bad}"))
            .await;
        assert_eq!(res.status(), 400, "{bad}");
        let page = res.text().await.unwrap();
        assert!(page.contains("oauth-retry"), "a way to try again");
    }
    // Another browser cannot use this browser's state.
    let other = shop.shopper_with_ua(WECHAT_UA);
    other.raw_get("/").await;
    let res = other
        .raw_get(&format!("/wechat/oauth/callback?code={code}&state={state}"))
        .await;
    assert_eq!(res.status(), 400);
    assert!(bound_openid(&shop).await.is_empty(), "nothing was bound");
}

#[tokio::test]
async fn an_openid_in_the_query_is_never_trusted() {
    let shop = TestShop::spawn().await;
    let s = shop.shopper_with_ua(WECHAT_UA);
    let victim = shop.sandbox.users()[2].openid.clone();
    let res = s.raw_get(&format!("/?openid={victim}")).await;
    assert_eq!(res.status(), 302, "still sent to WeChat");
    let res = s
        .raw_get(&format!("/wechat/oauth/callback?openid={victim}&state=abc"))
        .await;
    assert_eq!(res.status(), 400);
    assert!(bound_openid(&shop).await.is_empty());
}

#[tokio::test]
async fn the_return_path_is_only_ever_a_same_origin_path() {
    let shop = TestShop::spawn().await;
    let s = shop.shopper_with_ua(WECHAT_UA);
    let res = s.raw_get("/").await;
    let state = state_of(&location(&res));
    // Even a state row that somehow carries another origin goes home instead.
    server::sql!(&shop.pool, e => sqlx::query("UPDATE oauth_states SET return_to = '//evil.example/x' WHERE state = $1")
        .bind(&state)
        .execute(e).await.map(server::db::Done::from))
        .unwrap();
    let code = shop.sandbox.issue_oauth_code(0, "snsapi_base");
    let res = s
        .raw_get(&format!("/wechat/oauth/callback?code={code}&state={state}"))
        .await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), "/");
}

#[tokio::test]
async fn a_used_code_restarts_the_flow_once_and_never_loops() {
    let shop = TestShop::spawn().await;
    let first = shop.shopper_with_ua(WECHAT_UA);
    let res = first.raw_get("/orders").await;
    let state = state_of(&location(&res));
    let code = shop.sandbox.issue_oauth_code(0, "snsapi_base");
    let res = first
        .raw_get(&format!("/wechat/oauth/callback?code={code}&state={state}"))
        .await;
    assert_eq!(res.status(), 302);

    // Another browser replays the used code (the back button, a double redirect): 40163.
    let s = shop.shopper_with_ua(WECHAT_UA);
    let res = s.raw_get("/orders").await;
    let state = state_of(&location(&res));
    let res = s
        .raw_get(&format!("/wechat/oauth/callback?code={code}&state={state}"))
        .await;
    assert_eq!(res.status(), 302, "restarted");
    let again = location(&res);
    assert!(again.contains("/connect/oauth2/authorize?"), "{again}");
    let state2 = state_of(&again);
    assert_ne!(state, state2);
    let res = s
        .raw_get(&format!(
            "/wechat/oauth/callback?code={code}&state={state2}"
        ))
        .await;
    assert_eq!(res.status(), 400, "a second failure stops");
    // A good code on a fresh start still works.
    let res = s.raw_get("/orders").await;
    let state3 = state_of(&location(&res));
    let code = shop.sandbox.issue_oauth_code(1, "snsapi_base");
    let res = s
        .raw_get(&format!(
            "/wechat/oauth/callback?code={code}&state={state3}"
        ))
        .await;
    assert_eq!(
        (res.status().as_u16(), location(&res)),
        (302, "/orders".to_string())
    );
}

// ------------------------------------------------------------------ 我的: snsapi_userinfo

/// `(nickname, avatar_url, profile_declined_at)` of every WeChat user.
async fn profiles(shop: &TestShop) -> Vec<(Option<String>, Option<String>, Option<i64>)> {
    server::sql!(&shop.pool, e => sqlx::query_as(
        "SELECT nickname, avatar_url, profile_declined_at FROM users WHERE openid IS NOT NULL ORDER BY id",
    )
    .fetch_all(e).await)
    .unwrap()
}

/// WeChat coming back to the shop's callback for the flow started at `authorize_url`: with a
/// code (允许 / silent) or without one (拒绝).
async fn come_back(
    s: &common::Shopper,
    authorize_url: &str,
    code: Option<&str>,
) -> reqwest::Response {
    let state = state_of(authorize_url);
    match code {
        Some(code) => {
            s.raw_get(&format!("/wechat/oauth/callback?code={code}&state={state}"))
                .await
        }
        None => {
            s.raw_get(&format!("/wechat/oauth/callback?state={state}"))
                .await
        }
    }
}

fn scope_of(authorize_url: &str) -> String {
    let u = url::Url::parse(authorize_url.split('#').next().unwrap()).unwrap();
    u.query_pairs()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Finding 11: `/me` signs in with `snsapi_base` like every page (a first-visit
/// `snsapi_userinfo` is what makes WeChat show the snapshot page); the profile is asked for
/// with the page's button only.
#[tokio::test]
async fn the_me_page_signs_in_silently_and_asks_for_the_profile_with_its_button() {
    let shop = TestShop::spawn().await;
    let s = shop.shopper_with_ua(WECHAT_UA);
    let res = s.raw_get("/me").await;
    assert_eq!(res.status(), 302);
    let authorize = location(&res);
    assert_eq!(scope_of(&authorize), "snsapi_base", "{authorize}");
    let code = shop.sandbox.issue_oauth_code(0, "snsapi_base");
    let res = come_back(&s, &authorize, Some(&code)).await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), "/me");
    let (status, page) = s.get("/me").await;
    assert_eq!(status, 200, "signed in, no trip to the consent screen");
    assert!(page.contains("授权头像昵称"), "the button that asks");
    let stored = profiles(&shop).await;
    assert_eq!(stored.len(), 1, "signed in");
    assert_eq!(stored[0].0, None, "no profile yet");

    // The button: snsapi_userinfo, then back to 我的 with the profile.
    let res = s.raw_get("/wechat/oauth/profile").await;
    assert_eq!(res.status(), 302);
    let authorize = location(&res);
    assert_eq!(scope_of(&authorize), "snsapi_userinfo");
    let code = shop.sandbox.issue_oauth_code(0, "snsapi_userinfo");
    let res = come_back(&s, &authorize, Some(&code)).await;
    assert_eq!(location(&res), "/me");
    let who = &shop.sandbox.users()[0];
    let stored = profiles(&shop).await;
    assert_eq!(stored.len(), 1, "the same WeChat user");
    assert_eq!(stored[0].0.as_deref(), Some(who.nickname.as_str()));
    assert_eq!(stored[0].1.as_deref(), Some(who.headimgurl.as_str()));
    let (status, page) = s.get("/me").await;
    assert_eq!(status, 200);
    assert!(page.contains(&who.nickname), "the page shows the nickname");
    assert!(page.contains("data-testid=\"avatar\""));
    let (_, profile) = s.api("get_profile", json!({})).await;
    assert_eq!(profile["wechat"], true);
    assert_eq!(profile["nickname"], who.nickname.as_str());
}

#[tokio::test]
async fn declining_the_profile_keeps_the_shopper_signed_in_and_the_page_open() {
    let shop = TestShop::spawn().await;
    let s = shop.wechat_shopper(1).await;
    let authorize = location(&s.raw_get("/wechat/oauth/profile").await);
    assert_eq!(scope_of(&authorize), "snsapi_userinfo");
    // 拒绝: WeChat comes back with the state and no code.
    let res = come_back(&s, &authorize, None).await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), "/me", "straight back: already signed in");
    let stored = profiles(&shop).await;
    assert_eq!(stored.len(), 1, "signed in");
    assert_eq!(stored[0].0, None, "no profile");
    assert!(stored[0].2.is_some(), "the no is remembered");
    // The page never sends the shopper to the consent screen by itself, however long ago.
    server::sql!(&shop.pool, e => sqlx::query("UPDATE users SET profile_declined_at = profile_declined_at - 30 * 86400")
        .execute(e).await.map(server::db::Done::from))
        .unwrap();
    let (status, page) = s.get("/me").await;
    assert_eq!(status, 200);
    assert!(page.contains("授权头像昵称"));

    // The button asks again, at once; this time the shopper agrees.
    let authorize = location(&s.raw_get("/wechat/oauth/profile").await);
    let code = shop.sandbox.issue_oauth_code(1, "snsapi_userinfo");
    let res = come_back(&s, &authorize, Some(&code)).await;
    assert_eq!(location(&res), "/me");
    let stored = profiles(&shop).await;
    assert_eq!(
        stored[0].0.as_deref(),
        Some(shop.sandbox.users()[1].nickname.as_str())
    );
    assert_eq!(stored[0].2, None, "the earlier no is forgotten");
}

#[tokio::test]
async fn a_failing_userinfo_call_still_signs_the_shopper_in() {
    let shop = TestShop::spawn().await;
    let s = shop.shopper_with_ua(WECHAT_UA);
    // Not signed in yet, straight to the button.
    let authorize = location(&s.raw_get("/wechat/oauth/profile").await);
    assert_eq!(scope_of(&authorize), "snsapi_userinfo");
    shop.sandbox.fail_next(
        wechat_sandbox::Endpoint::SnsUserinfo,
        wechat_sandbox::Fault::errcode(-1, "system error"),
    );
    let code = shop.sandbox.issue_oauth_code(2, "snsapi_userinfo");
    let res = come_back(&s, &authorize, Some(&code)).await;
    assert_eq!(location(&res), "/me");
    let stored = profiles(&shop).await;
    assert_eq!(stored.len(), 1, "signed in");
    assert_eq!(stored[0].0, None);
    assert_eq!(s.raw_get("/me").await.status(), 200);
}

#[tokio::test]
async fn api_and_non_browser_clients_are_not_redirected() {
    let shop = TestShop::spawn().await;
    let s = shop.shopper_with_ua(WECHAT_UA);
    let (st, _) = s.api("list_products", json!({})).await;
    assert_eq!(st, 200);
    let plain = shop.shopper(); // no user agent at all
    let (st, _) = plain.get("/").await;
    assert_eq!(st, 200);
    let res = s.raw_get("/sandbox/jweixin.js").await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn outside_wechat_with_real_credentials_pages_ask_to_open_in_wechat() {
    let shop = TestShop::spawn_real().await;
    let desktop =
        shop.shopper_with_ua("Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36");
    let res = desktop.raw_get("/product/1").await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("请在微信中打开") && page.contains("<svg"),
        "{page}"
    );
    assert!(!page.contains("沙箱模式"));
    let phone = shop.shopper_with_ua(WECHAT_UA);
    let res = phone.raw_get("/product/1").await;
    assert_eq!(res.status(), 302);
    assert!(location(&res).starts_with("http://127.0.0.1:9/sandbox/open/connect/oauth2/authorize?"));
    // A page for a client that is no browser: its policy lets WeChat's JS-SDK host run, no other.
    let res = shop.shopper().raw_get("/product/1").await;
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    let script_src = csp
        .split(';')
        .find(|d| d.trim().starts_with("script-src"))
        .unwrap();
    assert!(script_src.contains("https://res.wx.qq.com"), "{csp}");
    assert!(
        !script_src.contains("http:") && !script_src.contains(" *"),
        "{csp}"
    );
}

// ------------------------------------------------------------------ JS-SDK

#[tokio::test]
async fn jssdk_config_signs_the_shops_own_urls_only() {
    let shop = TestShop::spawn().await;
    let s = shop.wechat_shopper(0).await;
    let url = format!("{}/orders/1?from=list", shop.base);
    let (st, cfg) = s
        .api("jssdk_config", json!({"url": format!("{url}#frag")}))
        .await;
    assert_eq!(st, 200, "{cfg}");
    assert_eq!(cfg["appId"], json!(shop.wechat.appid));
    let ticket = shop
        .sandbox
        .current_jsapi_ticket()
        .expect("a ticket was fetched");
    let expected = wechat::mp::jssdk::signature(
        &ticket,
        cfg["nonceStr"].as_str().unwrap(),
        &cfg["timestamp"].as_i64().unwrap().to_string(),
        &url,
    );
    assert_eq!(cfg["signature"], json!(expected));
    let keys: Vec<&String> = cfg.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 4, "{cfg}");
    for foreign in ["https://evil.example/", "http://127.0.0.1:1/", ""] {
        let (st, err) = s.api("jssdk_config", json!({"url": foreign})).await;
        assert_eq!(st, 400, "{foreign}: {err}");
    }
}

// ------------------------------------------------------------------ pay_order

#[tokio::test]
async fn pay_order_checks_owner_state_and_identity_and_reuses_the_prepay() {
    let shop = TestShop::spawn().await;
    let (alice, id, no) = shopper_with_order(&shop, &[(ORANGE_SMALL, 2)]).await;

    let (st, p) = alice.api("pay_order", json!({"order_id": id})).await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["appId"], json!(shop.wechat.appid));
    assert_eq!(p["signType"], "RSA");
    let package = p["package"].as_str().unwrap().to_string();
    assert!(package.starts_with("prepay_id="));
    let t = shop.sandbox.transaction(&no).expect("prepaid at WeChat");
    assert_eq!(t.total, 2 * 3990, "amount from the database");
    assert_eq!(t.openid, shop.sandbox.users()[0].openid);
    assert!(
        t.notify_url.ends_with("/wechat/notify/v3"),
        "{}",
        t.notify_url
    );

    // A second tap: same prepay, freshly signed.
    let (st, p2) = alice.api("pay_order", json!({"order_id": id})).await;
    assert_eq!(st, 200);
    assert_eq!(p2["package"], json!(package));
    assert_eq!(shop.sandbox.transactions().len(), 1);

    // Somebody else's order is not found; an anonymous shopper has no openid.
    let bob = shop.wechat_shopper(1).await;
    let (st, err) = bob.api("pay_order", json!({"order_id": id})).await;
    assert_eq!(
        (st, err["code"].as_str()),
        (404, Some("not_found")),
        "{err}"
    );
    let anon = shop.shopper();
    let (_, created) = anon
        .api("create_order", order_body(&[(ORANGE_SMALL, 1)]))
        .await;
    let (st, err) = anon
        .api("pay_order", json!({"order_id": created["order_id"]}))
        .await;
    assert_eq!(
        (st, err["code"].as_str()),
        (401, Some("unauthorized")),
        "{err}"
    );

    // Paid → no longer payable.
    shop.sandbox.pay(&no).await.unwrap();
    assert!(wait_paid(&shop, id).await);
    let (st, err) = alice.api("pay_order", json!({"order_id": id})).await;
    assert_eq!(
        (st, err["code"].as_str()),
        (409, Some("invalid_state")),
        "{err}"
    );
    let (_, status) = alice.api("order_status", json!({"order_id": id})).await;
    assert_eq!(status["status"], "paid");
}

#[tokio::test]
async fn pay_order_speaks_v2_when_configured() {
    let shop = TestShop::spawn_with(PayVersion::V2, |_| {}).await;
    let (s, id, no) = shopper_with_order(&shop, &[(ORANGE_SMALL, 1)]).await;
    let (st, p) = s.api("pay_order", json!({"order_id": id})).await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["signType"], "MD5");
    shop.sandbox.pay(&no).await.unwrap();
    assert!(wait_paid(&shop, id).await);
    let t = shop.sandbox.transaction(&no).unwrap();
    assert!(t.notify_url.ends_with("/wechat/notify/v2"));
}

// ------------------------------------------------------------------ notifications

#[tokio::test]
async fn a_v3_payment_is_applied_once_and_the_duplicate_is_acknowledged() {
    let shop = TestShop::spawn().await;
    let (s, id, no) = shopper_with_order(&shop, &[(ORANGE_SMALL, 1)]).await;
    s.api("pay_order", json!({"order_id": id})).await;
    shop.sandbox.pay(&no).await.unwrap();
    assert!(shop.sandbox.wait_for_ack(&no, Duration::from_secs(5)).await);
    let (status, txid, paid_at) = shop.order_row(id).await;
    assert_eq!(status, "paid");
    assert_eq!(txid, shop.sandbox.transaction(&no).unwrap().transaction_id);
    assert!(paid_at.is_some());
    // WeChat's extra copy arrives a second later.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let deliveries = shop.sandbox.deliveries(&no);
    assert!(deliveries.iter().all(|d| d.acknowledged), "{deliveries:?}");
    let events = shop.events().await;
    let accepted = events.iter().filter(|e| e.1 == "accepted").count();
    assert_eq!(accepted, 1, "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e.0 == "notify_v3" && e.1 == "duplicate"),
        "{events:?}"
    );

    // `wxmall payments`: the same history, found by order number or by id, read-only.
    let ro = server::db::open_read_only(&shop.database_url)
        .await
        .unwrap();
    let trail = server::payments::trail::trail(&ro, &no)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(trail.order_id, id);
    assert_eq!(trail.status, "paid");
    assert_eq!(trail.transaction_id, txid);
    assert_eq!(trail.events.len(), events.len(), "{:?}", trail.events);
    assert_eq!(
        trail
            .events
            .iter()
            .filter(|e| e.outcome == "accepted")
            .count(),
        1
    );
    let by_id = server::payments::trail::trail(&ro, &id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_id.order_no, no);
    assert!(server::payments::trail::trail(&ro, "nope")
        .await
        .unwrap()
        .is_none());
    assert!(
        server::sql!(&ro, e => sqlx::query("DELETE FROM oauth_states")
            .execute(e).await.map(server::db::Done::from))
        .is_err(),
        "read-only"
    );
}

#[tokio::test]
async fn the_payments_tool_never_creates_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("missing.db");
    let res = server::db::open_read_only(&format!("sqlite://{}?mode=rwc", file.display())).await;
    assert!(res.is_err());
    assert!(!file.exists());
}

#[tokio::test]
async fn twenty_concurrent_deliveries_change_the_order_exactly_once() {
    let shop = TestShop::spawn_with(PayVersion::V2, |_| {}).await;
    let (s, id, no) = shopper_with_order(&shop, &[(ORANGE_SMALL, 1)]).await;
    s.api("pay_order", json!({"order_id": id})).await;
    // Capture the signed notification without delivering it, then deliver it 20 times at once.
    shop.sandbox.set_drop_notifications(true);
    shop.sandbox.pay(&no).await.unwrap();
    let body = shop.sandbox.deliveries(&no)[0].request_body.clone();
    assert_eq!(shop.order_row(id).await.0, "unpaid");
    let http = reqwest::Client::new();
    let url = format!("{}/wechat/notify/v2", shop.base);
    let answers = futures_util::future::join_all((0..20).map(|_| {
        http.post(&url)
            .header("content-type", "text/xml")
            .body(body.clone())
            .send()
    }))
    .await;
    for a in answers {
        let a = a.unwrap();
        assert_eq!(a.status(), 200);
        assert!(a
            .text()
            .await
            .unwrap()
            .contains("<return_code><![CDATA[SUCCESS]]></return_code>"));
    }
    assert_eq!(shop.order_row(id).await.0, "paid");
    let events = shop.events().await;
    let notify: Vec<_> = events.iter().filter(|e| e.0 == "notify_v2").collect();
    assert_eq!(
        notify.iter().filter(|e| e.1 == "accepted").count(),
        1,
        "{events:?}"
    );
    assert_eq!(
        notify.iter().filter(|e| e.1 == "duplicate").count(),
        19,
        "{events:?}"
    );
}

#[tokio::test]
async fn forged_v3_notifications_are_refused_and_change_nothing() {
    let shop = TestShop::spawn().await;
    let (s, id, no) = shopper_with_order(&shop, &[(ORANGE_SMALL, 1)]).await;
    s.api("pay_order", json!({"order_id": id})).await;
    for forgery in [
        Forgery::BadSignature,
        Forgery::UnknownSerial,
        Forgery::StaleTimestamp,
        Forgery::WrongAmount,
        Forgery::MissingHeaders,
    ] {
        let d = shop.sandbox.forge_notification(&no, forgery).await.unwrap();
        assert!(!d.acknowledged, "{forgery:?} was accepted: {d:?}");
        let body: Value = serde_json::from_str(&d.response_body).unwrap_or(Value::Null);
        assert_eq!(body["code"], "FAIL", "{forgery:?}: {}", d.response_body);
        // A refusal is a client error (400), not the shop failing (500).
        assert_eq!(d.status, Some(400), "{forgery:?}: {d:?}");
        assert_eq!(
            shop.order_row(id).await,
            ("unpaid".into(), None, None),
            "{forgery:?}"
        );
    }
    // Only what verified is kept: the correctly signed notification with the wrong amount.
    // Forgeries are logged (bounded), never written: anyone can post them.
    let events = shop.events().await;
    let refused: Vec<_> = events
        .iter()
        .filter(|e| e.0 == "notify_v3" && e.1 == "refused")
        .collect();
    assert_eq!(refused.len(), 1, "{events:?}");
    assert!(refused[0].2.contains("amount"), "{events:?}");
    for e in &events {
        assert!(!e.2.contains(&common::sandbox_credentials().apiv3_key));
    }
    // A flood of junk writes nothing.
    let before = shop.events().await.len();
    let http = reqwest::Client::new();
    for _ in 0..50 {
        let res = http
            .post(format!("{}/wechat/notify/v3", shop.base))
            .body("{\"junk\":true}")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
    }
    assert_eq!(shop.events().await.len(), before);
    // The route of the Pay version that is not configured does not exist.
    let res = http
        .post(format!("{}/wechat/notify/v2", shop.base))
        .body("<xml></xml>")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn forged_v2_notifications_are_refused_and_change_nothing() {
    let shop = TestShop::spawn_with(PayVersion::V2, |_| {}).await;
    let (s, id, no) = shopper_with_order(&shop, &[(ORANGE_SMALL, 1)]).await;
    s.api("pay_order", json!({"order_id": id})).await;
    for forgery in [Forgery::BadSignature, Forgery::WrongAmount] {
        let d = shop.sandbox.forge_notification(&no, forgery).await.unwrap();
        assert!(!d.acknowledged, "{forgery:?}");
        assert!(d.response_body.contains("FAIL"), "{}", d.response_body);
    }
    // Correctly signed, but for another merchant.
    shop.sandbox.set_drop_notifications(true);
    shop.sandbox.pay(&no).await.unwrap();
    let body = shop
        .sandbox
        .deliveries(&no)
        .last()
        .unwrap()
        .request_body
        .clone();
    let mut fields = wechat::xml::parse_flat(body.as_bytes(), 65536).unwrap();
    fields.insert("mch_id".into(), "1900000000".into());
    fields.remove("sign");
    let key = common::sandbox_credentials().pay_key_v2;
    let sign = wechat::pay::v2::sign::v2_sign(
        fields.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &key,
        wechat::SignType::Md5,
    );
    fields.insert("sign".into(), sign);
    let forged = wechat::xml::to_xml(&fields).unwrap();
    let res = reqwest::Client::new()
        .post(format!("{}/wechat/notify/v2", shop.base))
        .body(forged)
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains("FAIL"));
    // Malformed and hostile bodies.
    for junk in [
        "",
        "not xml",
        "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><xml>&e;</xml>",
    ] {
        let res = reqwest::Client::new()
            .post(format!("{}/wechat/notify/v2", shop.base))
            .body(junk)
            .send()
            .await
            .unwrap();
        assert!(res.text().await.unwrap().contains("FAIL"), "{junk}");
    }
    assert_eq!(shop.order_row(id).await.0, "unpaid");
    // Kept: only the verified notification with the wrong amount.
    let events = shop.events().await;
    let refused: Vec<_> = events.iter().filter(|e| e.1 == "refused").collect();
    assert_eq!(refused.len(), 1, "{events:?}");
    assert!(refused[0].2.contains("amount"), "{events:?}");
    assert_eq!(events.iter().filter(|e| e.1 == "accepted").count(), 0);
}

// ------------------------------------------------------------------ expiry and reconciliation

#[tokio::test]
async fn expired_orders_are_closed_at_wechat_then_released() {
    let shop = TestShop::spawn_with(PayVersion::V3, |_| {}).await;
    let (s, id, no) = shopper_with_order(&shop, &[(MUG_BLACK, 3)]).await;
    let (_, anon_created) = shop
        .shopper()
        .api("create_order", order_body(&[(MUG_BLACK, 1)]))
        .await;
    assert_eq!(shop.stock(MUG_BLACK).await, 1);
    let (st, _) = s.api("pay_order", json!({"order_id": id})).await;
    assert_eq!(st, 200);
    // Both expire (aged in the database: a real wait is at the mercy of a busy machine).
    server::sql!(&shop.pool, e => sqlx::query("UPDATE orders SET expires_at = 0")
        .execute(e).await.map(server::db::Done::from))
    .unwrap();
    let report = shop.sweeper.run_once().await.unwrap();
    assert_eq!(report.expired, 2, "{report:?}");
    assert_eq!(shop.order_row(id).await.0, "closed");
    let anon_id = anon_created["order_id"].as_i64().unwrap();
    assert_eq!(shop.order_row(anon_id).await.0, "closed");
    assert_eq!(shop.stock(MUG_BLACK).await, 5);
    let t = shop.sandbox.transaction(&no).unwrap();
    assert_eq!(format!("{:?}", t.state), "Closed", "closed at WeChat first");
    // Nothing left to do.
    assert_eq!(shop.sweeper.run_once().await.unwrap(), Default::default());
}

#[tokio::test]
async fn a_lost_notification_is_caught_by_the_reconciler() {
    let shop = TestShop::spawn().await;
    let (s, id, no) = shopper_with_order(&shop, &[(ORANGE_SMALL, 1)]).await;
    s.api("pay_order", json!({"order_id": id})).await;
    shop.sandbox.set_drop_notifications(true);
    shop.sandbox.pay(&no).await.unwrap();
    assert_eq!(shop.order_row(id).await.0, "unpaid");
    let report = shop.sweeper.run_once().await.unwrap();
    assert_eq!(report.reconciled, 1, "{report:?}");
    assert_eq!(shop.order_row(id).await.0, "paid");
    let events = shop.events().await;
    assert!(
        events.iter().any(|e| e.0 == "query" && e.1 == "accepted"),
        "{events:?}"
    );
}

#[tokio::test]
async fn order_status_asks_wechat_while_unpaid_but_not_on_every_poll() {
    let shop = TestShop::spawn_with(PayVersion::V3, |s| {
        s.status_query_interval = Duration::from_millis(400)
    })
    .await;
    let (s, id, no) = shopper_with_order(&shop, &[(ORANGE_SMALL, 1)]).await;
    s.api("pay_order", json!({"order_id": id})).await;
    let (_, st) = s.api("order_status", json!({"order_id": id})).await;
    assert_eq!(st["status"], "unpaid");
    shop.sandbox.set_drop_notifications(true);
    shop.sandbox.pay(&no).await.unwrap();
    // Asked a moment ago: this poll does not reach WeChat (a polling loop cannot burn the
    // merchant's quota) …
    let (_, st) = s.api("order_status", json!({"order_id": id})).await;
    assert_eq!(st["status"], "unpaid");
    // … the next one after the interval does.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let (_, st) = s.api("order_status", json!({"order_id": id})).await;
    assert_eq!(st["status"], "paid");
}

// ------------------------------------------------------------------ secrets

fn secrets() -> Vec<String> {
    let c = common::sandbox_credentials();
    let mut v = vec![
        c.appsecret.clone(),
        c.pay_key_v2.clone(),
        c.apiv3_key.clone(),
    ];
    // Any line of the private keys' base64 bodies.
    for pem in [
        &c.merchant_private_key_pem,
        &c.wechatpay_private_key_pem,
        &c.platform_private_key_pem,
    ] {
        v.extend(
            pem.lines()
                .filter(|l| l.len() > 40 && !l.starts_with("-----"))
                .map(str::to_string),
        );
    }
    v
}

fn assert_clean(what: &str, text: &str) {
    for s in secrets() {
        assert!(!text.contains(&s), "{what} leaks a secret");
    }
}

#[tokio::test]
async fn no_page_api_answer_or_bundle_holds_a_secret() {
    let shop = TestShop::spawn().await;
    let (s, id, _) = shopper_with_order(&shop, &[(ORANGE_SMALL, 1)]).await;
    s.api("add_to_cart", json!({"sku_id": 2, "quantity": 1}))
        .await;
    // A shared profile, so that 我的 renders instead of asking WeChat for it.
    server::sql!(&shop.pool, e => sqlx::query("UPDATE users SET nickname = '张小明' WHERE openid IS NOT NULL")
        .execute(e).await.map(server::db::Done::from))
        .unwrap();
    for path in [
        "/",
        "/product/1",
        "/cart",
        "/checkout",
        "/orders",
        &format!("/orders/{id}"),
        "/me",
        "/nope",
    ] {
        let res = s.raw_get(path).await;
        let page = res.text().await.unwrap();
        assert!(
            page.contains("wxmall-jssdk"),
            "{path} carries the JS-SDK URL"
        );
        assert_clean(path, &page);
    }
    for (endpoint, body) in [
        ("list_products", json!({})),
        ("get_product", json!({"product_id": 1})),
        ("get_cart", json!({})),
        ("get_order", json!({"order_id": id})),
        ("order_status", json!({"order_id": id})),
        ("list_orders", json!({})),
        ("get_profile", json!({})),
        ("pay_order", json!({"order_id": id})),
        ("jssdk_config", json!({"url": format!("{}/", shop.base)})),
        ("pay_order", json!({"order_id": 9999})),
        ("jssdk_config", json!({"url": "https://evil.example/"})),
    ] {
        let (_, answer) = s.api(endpoint, body).await;
        assert_clean(endpoint, &answer.to_string());
    }
    // The built site (`cargo leptos build`): every file the browser can download. `.ci/test`
    // builds the site first and sets WXMALL_REQUIRE_SITE, so there the scan cannot be skipped.
    let pkg = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/site/pkg");
    let required = std::env::var_os("WXMALL_REQUIRE_SITE").is_some();
    let entries: Vec<_> = match std::fs::read_dir(&pkg) {
        Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
        Err(e) => {
            assert!(
                !required,
                "WXMALL_REQUIRE_SITE: no site at {}: {e}",
                pkg.display()
            );
            eprintln!("no site built at {}: bundle not scanned", pkg.display());
            Vec::new()
        }
    };
    if required {
        for ext in ["wasm", "js", "css"] {
            assert!(
                entries
                    .iter()
                    .any(|p| p.extension().is_some_and(|x| x == ext)),
                "the site has a .{ext} file to scan"
            );
        }
    }
    for path in entries {
        let bytes = std::fs::read(&path).expect("read a site file");
        assert_clean(
            &path.display().to_string(),
            &String::from_utf8_lossy(&bytes),
        );
    }
}

#[tokio::test]
async fn a_v3_notification_the_shop_cannot_store_is_answered_500_and_retried() {
    let shop = TestShop::spawn().await;
    let (s, id, no) = shopper_with_order(&shop, &[(ORANGE_SMALL, 1)]).await;
    s.api("pay_order", json!({"order_id": id})).await;
    shop.sandbox.set_drop_notifications(true);
    shop.sandbox.pay(&no).await.unwrap();
    // The database goes away: the notification is authentic, but the shop cannot apply it.
    shop.pool.close().await;
    let signed = shop.sandbox.signed_notification(&no).unwrap();
    let mut req = reqwest::Client::new().post(format!("{}{}", shop.base, signed.uri().path()));
    for (k, v) in signed.headers() {
        req = req.header(k.as_str(), v.as_bytes());
    }
    let req = req.body(signed.into_body());
    let res = req.send().await.unwrap();
    assert_eq!(
        res.status(),
        500,
        "the shop's own failure is a 5XX (WeChat retries)"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "FAIL");
    assert_eq!(body["message"], "internal error");
}
