//! The official account's server (`/wechat/mp`) against the sandbox, which pushes as WeChat does
//! (signed; in safe mode encrypted with its own AES code) and checks the shop's encrypted replies.

mod common;

use common::TestShop;
use server::wechat_config::{MpSettings, PayVersion};
use wechat_sandbox::{MpAction, MpPush};

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn push(shop: &TestShop, user: usize, action: MpAction, at: i64) -> Option<String> {
    let p = shop.sandbox.mp_message(user, &action, at);
    let answer = shop
        .sandbox
        .push_to_mp(&format!("{}/wechat/mp", shop.base), &p)
        .await
        .expect("the shop's reply verifies and decrypts");
    assert_eq!(answer.status, 200);
    answer.content
}

async fn count(shop: &TestShop, sql: &str) -> i64 {
    server::sql!(&shop.pool, e => sqlx::query_scalar(sql).fetch_one(e).await).unwrap()
}

#[tokio::test]
async fn wechat_verifies_the_server_url_with_the_token() {
    let shop = TestShop::spawn().await;
    let token = shop.sandbox.credentials().mp_token.clone();
    let sig = wechat::mp::server::signature(&token, "1700000000", "n0nce");
    let http = reqwest::Client::new();
    let res = http
        .get(format!(
            "{}/wechat/mp?signature={sig}&timestamp=1700000000&nonce=n0nce&echostr=5837391",
            shop.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "5837391", "echostr exactly");
    let res = http
        .get(format!(
            "{}/wechat/mp?signature={sig}&timestamp=1700000001&nonce=n0nce&echostr=5837391",
            shop.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn a_follow_gets_the_welcome_and_a_scanned_product_its_link_in_safe_mode() {
    let shop = TestShop::spawn().await;
    let t = now();
    let welcome = push(&shop, 0, MpAction::Subscribe { scene: None }, t)
        .await
        .expect("a welcome");
    assert!(welcome.contains("欢迎关注"), "{welcome}");
    assert!(
        welcome.contains(&format!("href=\"{}/\"", shop.base)),
        "the shop's link: {welcome}"
    );

    // Through a product's parametric QR code: the product, and the channel kept.
    let reply = push(
        &shop,
        1,
        MpAction::Subscribe {
            scene: Some("product:3".into()),
        },
        t,
    )
    .await
    .unwrap();
    assert!(reply.contains("/product/3\""), "{reply}");
    let openid = shop.sandbox.users()[1].openid.clone();
    let channel: Option<String> =
        server::sql!(&shop.pool, e => sqlx::query_scalar("SELECT first_channel FROM mp_followers WHERE openid = $1")
            .bind(&openid)
            .fetch_one(e).await)
            .unwrap();
    assert_eq!(channel.as_deref(), Some("product:3"));
    // A later scan links its own scene but the first channel stays.
    let reply = push(
        &shop,
        1,
        MpAction::Scan {
            scene: "page:/orders".into(),
        },
        t + 1,
    )
    .await
    .unwrap();
    assert!(reply.contains("/orders\""), "{reply}");
    let channel: Option<String> =
        server::sql!(&shop.pool, e => sqlx::query_scalar("SELECT first_channel FROM mp_followers WHERE openid = $1")
            .bind(&openid)
            .fetch_one(e).await)
            .unwrap();
    assert_eq!(channel.as_deref(), Some("product:3"));
    // A scene that is no safe path links nothing.
    let reply = push(
        &shop,
        1,
        MpAction::Scan {
            scene: "page://evil.example/".into(),
        },
        t + 2,
    )
    .await;
    assert_eq!(reply, None);

    // 取消关注 is recorded.
    assert_eq!(push(&shop, 1, MpAction::Unsubscribe, t + 3).await, None);
    let gone: Option<i64> =
        server::sql!(&shop.pool, e => sqlx::query_scalar("SELECT unsubscribed_at FROM mp_followers WHERE openid = $1")
            .bind(&openid)
            .fetch_one(e).await)
            .unwrap();
    assert!(gone.is_some());
}

#[tokio::test]
async fn keywords_and_menu_keys_answer_and_a_repeated_push_is_handled_once() {
    let shop = TestShop::spawn().await;
    let t = now();
    let orders = push(
        &shop,
        0,
        MpAction::Text {
            content: "我的订单在哪".into(),
        },
        t,
    )
    .await
    .unwrap();
    assert!(orders.contains("/orders\""), "{orders}");
    let help = push(&shop, 0, MpAction::Click { key: "HELP".into() }, t)
        .await
        .unwrap();
    assert!(help.contains("客服"), "{help}");
    assert_eq!(
        push(
            &shop,
            0,
            MpAction::Text {
                content: "你好".into()
            },
            t + 1
        )
        .await,
        None,
        "nothing to say: success"
    );

    // WeChat sends the same follow again (its answer was slow): answered once, recorded once.
    let p = shop
        .sandbox
        .mp_message(2, &MpAction::Subscribe { scene: None }, t + 5);
    let url = format!("{}/wechat/mp", shop.base);
    let first = shop.sandbox.push_to_mp(&url, &p).await.unwrap();
    assert!(first.content.is_some());
    let again = shop.sandbox.push_to_mp(&url, &p).await.unwrap();
    assert_eq!((again.status, again.content), (200, None));
    assert_eq!(
        count(
            &shop,
            "SELECT COUNT(*) FROM mp_messages WHERE dedupe_key LIKE 'event:%:subscribe'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn forged_pushes_are_refused_and_change_nothing() {
    let shop = TestShop::spawn().await;
    let before = count(&shop, "SELECT COUNT(*) FROM mp_messages").await;
    let p = shop
        .sandbox
        .mp_message(0, &MpAction::Subscribe { scene: None }, now());
    let http = reqwest::Client::new();
    // Plaintext with a made-up signature.
    let res = http
        .post(format!(
            "{}/wechat/mp?signature=0000000000000000000000000000000000000000&timestamp=1&nonce=2",
            shop.base
        ))
        .body(p.xml.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // The right `signature` but an encrypted body signed with another token's msg_signature.
    let token = shop.sandbox.credentials().mp_token.clone();
    let sig = wechat::mp::server::signature(&token, "1", "2");
    let res = http
        .post(format!(
            "{}/wechat/mp?signature={sig}&timestamp=1&nonce=2&encrypt_type=aes&msg_signature=ffff",
            shop.base
        ))
        .body("<xml><ToUserName>gh</ToUserName><Encrypt>AAAA</Encrypt></xml>")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Signed, but with a DOCTYPE (XXE): refused before anything is read.
    let res = http
        .post(format!(
            "{}/wechat/mp?signature={sig}&timestamp=1&nonce=2",
            shop.base
        ))
        .body("<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><xml><ToUserName>&e;</ToUserName></xml>")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        count(&shop, "SELECT COUNT(*) FROM mp_messages").await,
        before
    );
    assert_eq!(count(&shop, "SELECT COUNT(*) FROM mp_followers").await, 0);
}

#[tokio::test]
async fn plaintext_mode_with_only_a_token() {
    let token = common::sandbox_credentials().mp_token;
    let shop = TestShop::spawn_with(PayVersion::V3, move |s| {
        s.wechat.mp = Some(MpSettings {
            token: token.into(),
            encoding_aes_key: None,
        })
    })
    .await;
    let mut p: MpPush = shop
        .sandbox
        .mp_message(0, &MpAction::Subscribe { scene: None }, now());
    p.encrypted = false;
    let answer = shop
        .sandbox
        .push_to_mp(&format!("{}/wechat/mp", shop.base), &p)
        .await
        .unwrap();
    assert!(answer.content.unwrap().contains("欢迎关注"));
    // An encrypted push to a plaintext server cannot be read: refused.
    p.encrypted = true;
    let answer = shop
        .sandbox
        .push_to_mp(&format!("{}/wechat/mp", shop.base), &p)
        .await
        .unwrap();
    assert_eq!(answer.status, 400);
}

// ------------------------------------------------------------------ menu, QR codes, templates

#[tokio::test]
async fn the_menu_file_is_pushed_shown_and_deleted() {
    let shop = TestShop::spawn().await;
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/wechat-menu.json");
    let menu = server::mp_cli::read_menu(&file, &shop.wechat.public_url).unwrap();
    let mut out = Vec::new();
    server::mp_cli::menu_push(&shop.wechat, &menu, &mut out)
        .await
        .unwrap();
    let at_wechat = shop.sandbox.menu().expect("a menu at WeChat");
    assert_eq!(at_wechat["button"], menu["button"], "sent as it is");
    assert_eq!(
        at_wechat["button"][0]["url"],
        format!("{}/", shop.wechat.public_url),
        "{{shop}} is the public URL"
    );
    let mut shown = Vec::new();
    server::mp_cli::menu_show(&shop.wechat, &mut shown)
        .await
        .unwrap();
    assert!(String::from_utf8(shown).unwrap().contains("我的订单"));
    // WeChat's own checks come back as a clear refusal with its errcode.
    let bad = serde_json::json!({"button": [{"type": "view", "name": "首页"}]});
    let err = server::mp_cli::menu_push(&shop.wechat, &bad, &mut Vec::new())
        .await
        .unwrap_err();
    assert_eq!(err.status, 1);
    assert!(err.message.contains("40055"), "{}", err.message);
    server::mp_cli::menu_delete(&shop.wechat, &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(shop.sandbox.menu(), None);
}

#[tokio::test]
async fn a_product_qr_code_leads_a_scan_to_the_product() {
    use server::mp_cli::QrTarget;
    let shop = TestShop::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("product-3.svg");
    let mut out = Vec::new();
    server::mp_cli::qrcode(
        &shop.wechat,
        &QrTarget::Product(3),
        Some(7),
        Some(&svg),
        &mut out,
    )
    .await
    .unwrap();
    let printed = String::from_utf8(out).unwrap();
    assert!(printed.contains("scene   product:3"), "{printed}");
    assert!(printed.contains("expires in 7 days"), "{printed}");
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.contains("<svg"), "an SVG picture");
    let ticket = printed
        .lines()
        .find_map(|l| l.split("ticket=").nth(1))
        .unwrap();
    let ticket = percent_decode(ticket);
    assert_eq!(shop.sandbox.qr_scene(&ticket).as_deref(), Some("product:3"));
    // Scanning it (a follower): the product's link.
    let reply = push(
        &shop,
        0,
        MpAction::Scan {
            scene: "product:3".into(),
        },
        now(),
    )
    .await
    .unwrap();
    assert!(reply.contains("/product/3\""));
    // Bad targets are refused before WeChat is asked.
    for bad in [
        QrTarget::Page("https://evil.example/".into()),
        QrTarget::Channel("两个 words".into()),
    ] {
        let err = server::mp_cli::qrcode(&shop.wechat, &bad, None, None, &mut Vec::new())
            .await
            .unwrap_err();
        assert_eq!(err.status, 2, "{}", err.message);
    }
    let err = server::mp_cli::qrcode(
        &shop.wechat,
        &QrTarget::Channel("poster".into()),
        Some(31),
        None,
        &mut Vec::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.status, 2);
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("t={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_paid_order_sends_the_shopper_a_template_message() {
    let shop = TestShop::spawn().await;
    let s = shop.wechat_shopper(0).await;
    let (st, created) = s
        .api("create_order", common::order_body(&[(1, 2), (2, 1)]))
        .await;
    assert_eq!(st, 200, "{created}");
    let id = created["order_id"].as_i64().unwrap();
    let (st, _) = s
        .api("pay_order", serde_json::json!({"order_id": id}))
        .await;
    assert_eq!(st, 200);
    let no = shop.order_no(id).await;
    shop.sandbox.pay(&no).await.unwrap();
    let mut sent = Vec::new();
    for _ in 0..200 {
        sent = shop.sandbox.template_messages();
        if !sent.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(sent.len(), 1, "one message");
    let m = &sent[0];
    assert_eq!(m.touser, shop.sandbox.users()[0].openid);
    assert_eq!(m.template_id, "sandbox-order-paid");
    assert_eq!(m.data["keyword1"], no);
    assert!(m.data["keyword2"].starts_with('¥'), "{:?}", m.data);
    assert!(m.data["keyword3"].ends_with("等 3 件"), "{:?}", m.data);
    assert_eq!(
        m.url.as_deref(),
        Some(format!("{}/orders/{id}", shop.wechat.public_url).as_str())
    );
    // WeChat's duplicate notification sends nothing more.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(shop.sandbox.template_messages().len(), 1);
}

#[tokio::test]
async fn a_qr_code_is_written_as_png_too_and_other_pictures_are_refused() {
    use server::mp_cli::QrTarget;
    let shop = TestShop::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("channel.png");
    server::mp_cli::qrcode(
        &shop.wechat,
        &QrTarget::Channel("poster".into()),
        None,
        Some(&png),
        &mut Vec::new(),
    )
    .await
    .unwrap();
    let img = image::load_from_memory(&std::fs::read(&png).unwrap()).unwrap();
    assert_eq!(img.width(), img.height());
    assert!(img.width() >= 200, "{}", img.width());
    let gif = dir.path().join("channel.gif");
    let err = server::mp_cli::qrcode(
        &shop.wechat,
        &QrTarget::Channel("poster".into()),
        None,
        Some(&gif),
        &mut Vec::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.status, 2);
    assert!(!gif.exists());
}
