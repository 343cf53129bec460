//! Cards (卡券) over HTTP: card tickets kept apart from jsapi tickets, `card/create` checks, the
//! review / whitelist rule, get_limit and stock, decrypt / get / consume (then 40099), and the
//! shim's `addCard` / `chooseCard` endpoints with cardExt / cardSign checked (a wrong ticket is
//! refused). Signatures here are computed independently (sha1 over byte-sorted values).

mod common;

use common::*;
use serde_json::{json, Value};
use sha1::Digest as _;
use wechat_sandbox::{CardStatus, CodeStatus};

fn sorted_sha1(values: &[&str]) -> String {
    let mut v: Vec<Vec<u8>> = values.iter().map(|s| s.as_bytes().to_vec()).collect();
    v.sort();
    hex::encode(sha1::Sha1::digest(v.concat()))
}

async fn get(r: &Running, pq: &str) -> Value {
    r.http
        .get(format!("{}{pq}", r.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn post(r: &Running, path: &str, body: &Value) -> Value {
    post_as(r, path, body, None).await
}

async fn post_as(r: &Running, path: &str, body: &Value, user_key: Option<&str>) -> Value {
    let mut rb = r.http.post(format!("{}{path}", r.base)).json(body);
    if let Some(k) = user_key {
        rb = rb.header("cookie", format!("wxsandbox_user={k}"));
    }
    rb.send().await.unwrap().json().await.unwrap()
}

struct Tokens {
    access: String,
    jsapi: String,
    card: String,
}

async fn tokens(r: &Running) -> Tokens {
    let c = creds();
    let tok = get(
        r,
        &format!(
            "/api/cgi-bin/token?grant_type=client_credential&appid={}&secret={}",
            c.appid, c.appsecret
        ),
    )
    .await;
    let access = tok["access_token"].as_str().unwrap().to_string();
    let jsapi = get(
        r,
        &format!("/api/cgi-bin/ticket/getticket?access_token={access}&type=jsapi"),
    )
    .await["ticket"]
        .as_str()
        .unwrap()
        .to_string();
    let card = get(
        r,
        &format!("/api/cgi-bin/ticket/getticket?access_token={access}&type=wx_card"),
    )
    .await;
    assert_eq!(card["errcode"], 0, "{card}");
    let card = card["ticket"].as_str().unwrap().to_string();
    assert_ne!(card, jsapi);
    Tokens {
        access,
        jsapi,
        card,
    }
}

fn cash_card(quantity: i64, get_limit: i64) -> Value {
    json!({"card": {"card_type": "CASH", "cash": {
        "base_info": {
            "logo_url": "https://mmbiz.qpic.cn/logo.png",
            "brand_name": "微信小店",
            "code_type": "CODE_TYPE_QRCODE",
            "title": "满100减10",
            "color": "Color010",
            "notice": "结账时使用",
            "description": "不可与其他优惠同享",
            "date_info": {"type": "DATE_TYPE_FIX_TIME_RANGE",
                          "begin_timestamp": now_secs() - 60, "end_timestamp": now_secs() + 86_400},
            "sku": {"quantity": quantity},
            "get_limit": get_limit,
            "use_custom_code": false, "can_share": false, "can_give_friend": false
        },
        "least_cost": 10000, "reduce_cost": 1000
    }}})
}

async fn create(r: &Running, t: &Tokens, body: &Value) -> Value {
    post(
        r,
        &format!("/api/card/create?access_token={}", t.access),
        body,
    )
    .await
}

#[tokio::test]
async fn create_whitelist_limit_stock_consume() {
    let r = start().await;
    let t = tokens(&r).await;
    assert_eq!(r.sandbox.card_ticket_fetches(), 1);
    assert_eq!(r.sandbox.ticket_fetches(), 1);
    let users = r.sandbox.users();

    // Refusals.
    let mut bad = cash_card(10, 1);
    bad["card"]["card_type"] = json!("BOGUS");
    assert_eq!(create(&r, &t, &bad).await["errcode"], 40071);
    let mut bad = cash_card(10, 1);
    bad["card"]["cash"]["base_info"]["color"] = json!("Color011");
    assert_ne!(create(&r, &t, &bad).await["errcode"], 0);
    let mut bad = cash_card(10, 1);
    bad["card"]["cash"]["reduce_cost"] = json!(0);
    assert_ne!(create(&r, &t, &bad).await["errcode"], 0);
    let mut bad = cash_card(100_000_001, 1);
    assert_eq!(create(&r, &t, &bad).await["errcode"], 40122);
    bad = cash_card(10, 1);
    bad["card"]["cash"]["base_info"]["title"] = json!("一二三四五六七八九十");
    assert_ne!(create(&r, &t, &bad).await["errcode"], 0);
    bad = cash_card(10, 1);
    bad["card"]["cash"]["base_info"]["date_info"]["end_timestamp"] = json!(1);
    assert_eq!(create(&r, &t, &bad).await["errcode"], 40079);
    let disc = json!({"card": {"card_type": "DISCOUNT", "discount": {
        "base_info": cash_card(5, 0)["card"]["cash"]["base_info"].clone(), "discount": 100}}});
    assert_ne!(create(&r, &t, &disc).await["errcode"], 0);
    let no_token = post(&r, "/api/card/create?access_token=nope", &cash_card(1, 1)).await;
    assert_eq!(no_token["errcode"], 40001);

    // Create: not verified yet.
    let created = create(&r, &t, &cash_card(3, 1)).await;
    assert_eq!(created["errcode"], 0, "{created}");
    let card_id = created["card_id"].as_str().unwrap().to_string();
    assert_eq!(card_id.len(), 28);
    assert!(card_id.starts_with('p'));
    assert_eq!(r.sandbox.cards()[0].status, CardStatus::NotVerify);

    // Not whitelisted: refused; whitelisted by openid and by username alias: allowed.
    assert!(r.sandbox.give_card(&users[0].openid, &card_id).is_err());
    let wl = post(
        &r,
        &format!("/api/card/testwhitelist/set?access_token={}", t.access),
        &json!({"openid": [users[0].openid], "username": ["wxsandbox_2"]}),
    )
    .await;
    assert_eq!(wl["errcode"], 0, "{wl}");
    let code = r.sandbox.give_card(&users[0].openid, &card_id).unwrap();
    assert!(code.len() == 12 && code.bytes().all(|b| b.is_ascii_digit()));
    // get_limit 1.
    let again = r.sandbox.give_card(&users[0].openid, &card_id).unwrap_err();
    assert!(again.contains("get_limit"), "{again}");
    r.sandbox.give_card(&users[1].openid, &card_id).unwrap();
    assert!(r.sandbox.give_card(&users[2].openid, &card_id).is_err());
    // Approved: anyone; then out of stock (3).
    assert!(r.sandbox.verify_card(&card_id));
    r.sandbox.give_card(&users[2].openid, &card_id).unwrap();
    let card = r.sandbox.card(&card_id).unwrap();
    assert_eq!((card.quantity, card.taken), (0, 3));
    assert_eq!(card.status, CardStatus::VerifyOk);

    // decrypt / get / consume, then 40099.
    let enc = r.sandbox.encrypt_code(&code);
    assert_eq!(enc, r.sandbox.encrypt_code(&code));
    let q = format!("?access_token={}", t.access);
    let d = post(
        &r,
        &format!("/api/card/code/decrypt{q}"),
        &json!({"encrypt_code": enc}),
    )
    .await;
    assert_eq!(d["code"], json!(code));
    let g = post(
        &r,
        &format!("/api/card/code/get{q}"),
        &json!({"card_id": card_id, "code": code, "check_consume": true}),
    )
    .await;
    assert_eq!(g["errcode"], 0);
    assert_eq!(g["card"]["card_id"], json!(card_id));
    assert_eq!(g["openid"], json!(users[0].openid));
    assert_eq!(g["can_consume"], true);
    assert_eq!(g["user_card_status"], "NORMAL");
    let c1 = post(
        &r,
        &format!("/api/card/code/consume{q}"),
        &json!({"code": code, "card_id": card_id}),
    )
    .await;
    assert_eq!(c1["errcode"], 0, "{c1}");
    assert_eq!(c1["openid"], json!(users[0].openid));
    let c2 = post(
        &r,
        &format!("/api/card/code/consume{q}"),
        &json!({"code": code}),
    )
    .await;
    assert_eq!(c2["errcode"], 40099);
    assert!(c2["errmsg"]
        .as_str()
        .unwrap()
        .starts_with("invalid code, this code has consumed."));
    let g = post(
        &r,
        &format!("/api/card/code/get{q}"),
        &json!({"code": code, "check_consume": false}),
    )
    .await;
    assert_eq!(g["can_consume"], false);
    assert_eq!(g["user_card_status"], "CONSUMED");
    assert_eq!(r.sandbox.card(&card_id).unwrap().consumed, 1);
    assert_eq!(
        r.sandbox.wallet(&users[0].openid)[0].status,
        CodeStatus::Consumed
    );
    let unknown = post(
        &r,
        &format!("/api/card/code/get{q}"),
        &json!({"code": "000000000000"}),
    )
    .await;
    assert_eq!(unknown["errcode"], 40056);

    // Stock and delete.
    let st = post(
        &r,
        &format!("/api/card/modifystock{q}"),
        &json!({"card_id": card_id, "increase_stock_value": 5}),
    )
    .await;
    assert_eq!(st["errcode"], 0);
    let st = post(
        &r,
        &format!("/api/card/modifystock{q}"),
        &json!({"card_id": card_id, "reduce_stock_value": 6}),
    )
    .await;
    assert_eq!(st["errcode"], 40122);
    let del = post(
        &r,
        &format!("/api/card/delete{q}"),
        &json!({"card_id": card_id}),
    )
    .await;
    assert_eq!(del["errcode"], 0);
    assert_eq!(
        r.sandbox.card(&card_id).unwrap().status,
        CardStatus::Deleted
    );
    // Codes taken before the card was deleted stay usable, as at WeChat; taking it is over.
    assert_eq!(
        r.sandbox.wallet(&users[1].openid)[0].status,
        CodeStatus::Normal
    );
    assert!(r.sandbox.give_card(&users[1].openid, &card_id).is_err());
    // No mp server URL set: nothing was pushed, nothing failed.
    assert!(r.sandbox.card_pushes().is_empty());
}

/// `wx.config` with `jsApiList`, signed with the jsapi ticket; the config id.
async fn config(r: &Running, ticket: &str, apis: &[&str]) -> Value {
    let c = creds();
    let url = "https://shop.example/cart";
    let (ts, nonce) = ("1700000000", "cfgnonce");
    post(
        r,
        "/jsapi/config",
        &json!({"appId": c.appid, "timestamp": ts, "nonceStr": nonce,
                "signature": jsapi_sha1(ticket, nonce, ts, url), "url": url, "jsApiList": apis}),
    )
    .await
}

fn card_ext(ticket: &str, card_id: &str, openid: &str, nonce: &str, outer: &str) -> String {
    let ts = now_secs().to_string();
    let sig = sorted_sha1(&[ticket, &ts, card_id, "", openid, nonce]);
    let mut v = json!({"timestamp": ts, "nonce_str": nonce, "signature": sig});
    if !openid.is_empty() {
        v["openid"] = json!(openid);
    }
    if !outer.is_empty() {
        v["outer_str"] = json!(outer);
    }
    v.to_string()
}

#[tokio::test]
async fn shim_add_and_choose_check_signatures() {
    let r = start().await;
    let t = tokens(&r).await;
    let c = creds();
    let users = r.sandbox.users();
    let card_id = create(&r, &t, &cash_card(10, 2)).await["card_id"]
        .as_str()
        .unwrap()
        .to_string();
    r.sandbox.verify_card(&card_id);

    // A card ticket does not sign wx.config.
    assert_eq!(config(&r, &t.card, &["addCard"]).await["ok"], false);
    let cfg = config(&r, &t.jsapi, &["addCard", "chooseCard"]).await;
    assert_eq!(cfg["ok"], true, "{cfg}");
    let config_id = cfg["configId"].as_str().unwrap().to_string();
    let narrow = config(&r, &t.jsapi, &["chooseWXPay"]).await["configId"]
        .as_str()
        .unwrap()
        .to_string();

    let add = |config_id: &str, ext: String| {
        json!({"configId": config_id, "url": "https://shop.example/cart",
               "cardList": [{"cardId": card_id, "cardExt": ext}]})
    };
    // Not in jsApiList.
    let p = post(
        &r,
        "/jsapi/card/add/prepare",
        &add(&narrow, card_ext(&t.card, &card_id, "", "n1", "")),
    )
    .await;
    assert_eq!(
        (p["ok"].clone(), p["kind"].clone()),
        (json!(false), json!("permission"))
    );
    // Signed with the jsapi ticket: signature error.
    let p = post(
        &r,
        "/jsapi/card/add/prepare",
        &add(&config_id, card_ext(&t.jsapi, &card_id, "", "n2", "")),
    )
    .await;
    assert_eq!(p["ok"], false);
    assert_eq!(p["reason"], "signature error");
    // Tampered: signed for another card.
    let p = post(
        &r,
        "/jsapi/card/add/prepare",
        &add(&config_id, card_ext(&t.card, "pOtherCard", "", "n3", "")),
    )
    .await;
    assert_eq!(p["reason"], "signature error");
    // cardExt as an object, not a string.
    let p = post(
        &r,
        "/jsapi/card/add/prepare",
        &json!({"configId": config_id, "cardList": [{"cardId": card_id, "cardExt": {"timestamp": "1"}}]}),
    )
    .await;
    assert_eq!(p["ok"], false);
    // Missing cardList.
    let p = post(
        &r,
        "/jsapi/card/add/prepare",
        &json!({"configId": config_id}),
    )
    .await;
    assert_eq!(p["ok"], false);
    // openid of another user than the current one (cookie user 2).
    let p = post_as(
        &r,
        "/jsapi/card/add/prepare",
        &add(
            &config_id,
            card_ext(&t.card, &card_id, &users[0].openid, "n4", ""),
        ),
        Some("2"),
    )
    .await;
    assert_eq!(p["ok"], false, "{p}");
    assert!(r.sandbox.wallet(&users[0].openid).is_empty());
    assert!(r.sandbox.wallet(&users[1].openid).is_empty());

    // Good: prepare, then 领取.
    let ext = card_ext(&t.card, &card_id, &users[0].openid, "n5", "poster");
    let p = post_as(
        &r,
        "/jsapi/card/add/prepare",
        &add(&config_id, ext.clone()),
        Some("1"),
    )
    .await;
    assert_eq!(p["ok"], true, "{p}");
    assert_eq!(p["cards"][0]["rule"], "满100.00元减10.00元");
    let done = post(
        &r,
        "/jsapi/card/add/confirm",
        &json!({"addToken": p["addToken"]}),
    )
    .await;
    assert_eq!(done["ok"], true, "{done}");
    let item = &done["cardList"][0];
    assert_eq!(item["cardId"], json!(card_id));
    assert_eq!(item["cardExt"], json!(ext));
    assert_eq!(item["isSuccess"], true);
    let wallet = r.sandbox.wallet(&users[0].openid);
    assert_eq!(wallet.len(), 1);
    assert_eq!(wallet[0].outer_str.as_deref(), Some("poster"));
    // The answer's code is the encrypted one.
    assert_eq!(item["code"], json!(r.sandbox.encrypt_code(&wallet[0].code)));
    // The token is single use.
    let again = post(
        &r,
        "/jsapi/card/add/confirm",
        &json!({"addToken": p["addToken"]}),
    )
    .await;
    assert_eq!(again["ok"], false);

    // chooseCard: a cardSign with the card ticket.
    let choose = |ticket: &str, card_type: &str| {
        let ts = now_secs().to_string();
        let sig = sorted_sha1(&[ticket, &c.appid, "", &ts, "cn", "", card_type]);
        json!({"configId": config_id, "shopId": "", "cardType": card_type, "cardId": "",
               "timestamp": ts, "nonceStr": "cn", "signType": "SHA1", "cardSign": sig,
               "url": "https://shop.example/cart"})
    };
    let bad = post_as(
        &r,
        "/jsapi/card/choose/prepare",
        &choose(&t.jsapi, ""),
        Some("1"),
    )
    .await;
    assert_eq!(bad["reason"], "signature error");
    let none = post_as(
        &r,
        "/jsapi/card/choose/prepare",
        &choose(&t.card, "DISCOUNT"),
        Some("1"),
    )
    .await;
    assert_eq!(none["ok"], true);
    assert_eq!(none["cards"].as_array().unwrap().len(), 0);
    let list = post_as(
        &r,
        "/jsapi/card/choose/prepare",
        &choose(&t.card, ""),
        Some("1"),
    )
    .await;
    assert_eq!(list["ok"], true, "{list}");
    assert_eq!(list["cards"].as_array().unwrap().len(), 1);
    // Another user sees nothing.
    let other = post_as(
        &r,
        "/jsapi/card/choose/prepare",
        &choose(&t.card, ""),
        Some("3"),
    )
    .await;
    assert_eq!(other["cards"].as_array().unwrap().len(), 0);
    let picked = post(
        &r,
        "/jsapi/card/choose/pick",
        &json!({"chooseToken": list["chooseToken"], "index": 0}),
    )
    .await;
    assert_eq!(picked["ok"], true);
    // WeChat gives cardList as a JSON string.
    let s = picked["cardList"].as_str().unwrap();
    let arr: Value = serde_json::from_str(s).unwrap();
    assert_eq!(arr[0]["card_id"], json!(card_id));
    let enc = arr[0]["encrypt_code"].as_str().unwrap();
    let d = post(
        &r,
        &format!("/api/card/code/decrypt?access_token={}", t.access),
        &json!({"encrypt_code": enc}),
    )
    .await;
    assert_eq!(d["code"], json!(wallet[0].code));
    // 不使用.
    let list = post_as(
        &r,
        "/jsapi/card/choose/prepare",
        &choose(&t.card, ""),
        Some("1"),
    )
    .await;
    let skip = post(
        &r,
        "/jsapi/card/choose/pick",
        &json!({"chooseToken": list["chooseToken"]}),
    )
    .await;
    assert_eq!(skip["cancel"], true);
}

#[tokio::test]
async fn card_events_are_pushed_when_a_server_is_set() {
    let r = start().await;
    let t = tokens(&r).await;
    let rx = receiver(false, 0).await;
    r.sandbox.set_mp_server_url(&rx.url);
    let users = r.sandbox.users();
    let card_id = create(&r, &t, &cash_card(10, 0)).await["card_id"]
        .as_str()
        .unwrap()
        .to_string();
    r.sandbox.verify_card(&card_id);
    let code = r.sandbox.give_card(&users[0].openid, &card_id).unwrap();
    r.sandbox.user_delete_card(&users[0].openid, &code).unwrap();
    assert!(
        wait_until(|| r.sandbox.card_pushes().len() >= 2, 3000).await,
        "{:?}",
        r.sandbox.card_pushes()
    );
    // Pushed in the background: in any order.
    let p = r.sandbox.card_pushes();
    let got = p.iter().find(|x| x.event == "user_get_card").unwrap();
    assert!(got
        .xml
        .contains(&format!("<UserCardCode><![CDATA[{code}]]></UserCardCode>")));
    assert!(got
        .xml
        .contains(&format!("<CardId><![CDATA[{card_id}]]></CardId>")));
    assert!(p.iter().any(|x| x.event == "user_del_card"));
    assert_eq!(rx.received().len(), 2);
    assert_eq!(
        r.sandbox.wallet(&users[0].openid)[0].status,
        CodeStatus::Deleted
    );
}

/// tests/card_shim_test.js (node): `wx.addCard` / `wx.chooseCard` through the shim, with its
/// sheets (领取 / 取消, a picker with 不使用), jsApiList and signature refusals.
#[tokio::test]
async fn card_shim_in_node() {
    use std::process::Command;
    if Command::new("node").arg("--version").output().is_err() {
        eprintln!("node not found: skipping the card shim test");
        return;
    }
    let r = start().await;
    let t = tokens(&r).await;
    let c = creds();
    let openid = r.sandbox.users()[0].openid.clone();
    let card_id = create(&r, &t, &cash_card(10, 1)).await["card_id"]
        .as_str()
        .unwrap()
        .to_string();
    r.sandbox.verify_card(&card_id);
    let input = json!({"base": r.base, "appid": c.appid, "ticket": t.jsapi,
                       "cardTicket": t.card, "cardId": card_id, "openid": openid});
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/card_shim_test.js");
    let env = input.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .env("SANDBOX_TEST", env)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.trim().lines().last().unwrap_or("{}"))
        .unwrap_or_else(|_| {
            panic!(
                "node output: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let failed: Vec<&Value> = report["checks"]
        .as_array()
        .map(|a| a.iter().filter(|c| c["ok"] != true).collect())
        .unwrap_or_default();
    assert!(
        report["ok"] == true && failed.is_empty(),
        "failed checks: {failed:#?}\n{report:#}"
    );
    // One code taken (the cancelled sheet took nothing), and chooseCard's encrypt_code is it.
    let wallet = r.sandbox.wallet(&openid);
    assert_eq!(wallet.len(), 1);
    assert_eq!(wallet[0].outer_str.as_deref(), Some("shim"));
    assert_eq!(
        report["encryptCode"],
        json!(r.sandbox.encrypt_code(&wallet[0].code))
    );
}

// ------------------------------------------------------------------ card events in /mp

/// A fake shop's official-account server: answers the pushes with `statuses` in turn (200 is
/// `success`), then 200.
async fn fake_shop(statuses: &[u16]) -> String {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    let queue = Arc::new(Mutex::new(
        statuses.iter().copied().collect::<VecDeque<u16>>(),
    ));
    let app = axum::Router::new().route(
        "/wechat/mp",
        axum::routing::post(move || {
            let queue = queue.clone();
            async move {
                let status = queue.lock().unwrap().pop_front().unwrap_or(200);
                let body = if status == 200 { "success" } else { "busy" };
                (axum::http::StatusCode::from_u16(status).unwrap(), body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/wechat/mp")
}

async fn mp_page(r: &Running, user_key: &str) -> String {
    let res = r
        .http
        .get(format!("{}/mp?user={user_key}", r.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

/// The chat's card-event lines (`<div class="msg ev…">…</div>`), oldest first.
fn card_lines(page: &str) -> Vec<String> {
    page.split("<div class=\"msg ev")
        .skip(1)
        .map(|s| s[..s.find("</div>").unwrap()].to_string())
        .collect()
}

/// The wallet's entry for `code`.
fn wallet_line(page: &str, code: &str) -> String {
    let at = page
        .find(&format!("<li id=\"mp-card-{code}\""))
        .unwrap_or_else(|| panic!("{code} not in the wallet: {page}"));
    page[at..at + page[at..].find("</li>").unwrap()].to_string()
}

async fn pushes_answered(r: &Running, n: usize) {
    assert!(
        wait_until(|| r.sandbox.card_pushes().len() >= n, 3000).await,
        "{:?}",
        r.sandbox.card_pushes()
    );
}

#[tokio::test]
async fn card_events_show_in_the_mp_chat_with_the_shops_answer_and_the_wallet_deletes() {
    let r = start().await;
    let t = tokens(&r).await;
    // The shop takes the first push, fails the second (HTTP 500), takes the rest.
    r.sandbox.set_mp_server_url(&fake_shop(&[200, 500]).await);
    let user = r.sandbox.users()[0].clone();
    // The merchant's title is escaped wherever it is shown.
    let mut body = cash_card(10, 0);
    body["card"]["cash"]["base_info"]["title"] = json!("<i>券&</i>");
    let card_id = create(&r, &t, &body).await["card_id"]
        .as_str()
        .unwrap()
        .to_string();
    r.sandbox.verify_card(&card_id);
    let title = "《&lt;i&gt;券&amp;&lt;/i&gt;》";

    let page = mp_page(&r, &user.key).await;
    assert!(page.contains("id=\"mp-wallet\""), "{page}");
    assert!(card_lines(&page).is_empty());

    // 领取: the chat says so, with the shop's 200.
    let code = r.sandbox.give_card(&user.openid, &card_id).unwrap();
    pushes_answered(&r, 1).await;
    let page = mp_page(&r, &user.key).await;
    assert!(!page.contains("<i>券"), "escaped: {page}");
    let lines = card_lines(&page);
    assert_eq!(lines.len(), 1, "{page}");
    assert!(
        lines[0].contains(&format!("领取了卡券{title}（code {code}）")),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("商家服务器已接收（HTTP 200）"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("data-event=\"user_get_card\""));
    let entry = wallet_line(&page, &code);
    assert!(
        entry.contains("&lt;i&gt;券&amp;&lt;/i&gt;") && entry.contains("可用"),
        "{entry}"
    );
    assert!(entry.contains("满100.00元减10.00元"), "{entry}");
    assert!(entry.contains(&format!("id=\"mp-del-{code}\"")), "{entry}");

    // 核销 (the shop's own card/code/consume): the chat shows the shop's HTTP 500.
    let consumed = post(
        &r,
        &format!("/api/card/code/consume?access_token={}", t.access),
        &json!({"code": code, "card_id": card_id}),
    )
    .await;
    assert_eq!(consumed["errcode"], 0, "{consumed}");
    pushes_answered(&r, 2).await;
    let page = mp_page(&r, &user.key).await;
    let lines = card_lines(&page);
    assert_eq!(lines.len(), 2, "{page}");
    assert!(
        lines[1].contains(&format!("卡券{title}已核销（code {code}）")),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].starts_with(" err") && lines[1].contains("商家服务器出错：HTTP 500"),
        "{}",
        lines[1]
    );
    let entry = wallet_line(&page, &code);
    assert!(entry.contains("已核销"), "{entry}");
    assert!(
        !entry.contains("mp-del-"),
        "a redeemed code cannot be deleted: {entry}"
    );

    // 删除 from the wallet on the page: the code goes, user_del_card is pushed.
    let second = r.sandbox.give_card(&user.openid, &card_id).unwrap();
    pushes_answered(&r, 3).await;
    let res = r
        .http
        .post(format!("{}/mp/card/delete", r.base))
        .form(&[("user", user.key.as_str()), ("code", second.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        format!("../../mp?user={}", user.key).as_str(),
        "back to /mp from /mp/card/delete"
    );
    let deleted = r
        .sandbox
        .wallet(&user.openid)
        .into_iter()
        .find(|c| c.code == second)
        .unwrap();
    assert_eq!(deleted.status, CodeStatus::Deleted);
    pushes_answered(&r, 4).await;
    let push = r.sandbox.card_pushes().pop().unwrap();
    assert_eq!(push.event, "user_del_card");
    assert!(push.xml.contains(&format!(
        "<UserCardCode><![CDATA[{second}]]></UserCardCode>"
    )));
    assert_eq!(push.result, Ok(200));
    let page = mp_page(&r, &user.key).await;
    let lines = card_lines(&page);
    assert_eq!(lines.len(), 4, "{page}");
    assert!(
        lines[3].contains(&format!("删除了卡券{title}（code {second}）"))
            && lines[3].contains("商家服务器已接收（HTTP 200）"),
        "{}",
        lines[3]
    );
    assert!(wallet_line(&page, &second).contains("已删除"));

    // Bad deletions are refused with why, and push nothing.
    let delete = |user: &str, code: &str| {
        r.http
            .post(format!("{}/mp/card/delete", r.base))
            .form(&[("user", user), ("code", code)])
            .send()
    };
    assert_eq!(delete(&user.key, &second).await.unwrap().status(), 409);
    assert_eq!(
        delete(&user.key, "123456789012").await.unwrap().status(),
        404
    );
    let other = r.sandbox.users()[1].key.clone();
    assert_eq!(
        delete(&other, &code).await.unwrap().status(),
        404,
        "another user's code"
    );
    assert_eq!(delete("nobody", &code).await.unwrap().status(), 400);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(r.sandbox.card_pushes().len(), 4);
    // Another user's chat shows none of it.
    assert!(card_lines(&mp_page(&r, &other).await).is_empty());
}

#[tokio::test]
async fn a_card_event_that_cannot_reach_the_shop_says_why_in_the_chat() {
    let r = start().await;
    let t = tokens(&r).await;
    let user = r.sandbox.users()[2].clone();
    let card_id = create(&r, &t, &cash_card(10, 0)).await["card_id"]
        .as_str()
        .unwrap()
        .to_string();
    r.sandbox.verify_card(&card_id);

    // No official-account server set: nothing is pushed, and the chat says so.
    let code = r.sandbox.give_card(&user.openid, &card_id).unwrap();
    let lines = card_lines(&mp_page(&r, &user.key).await);
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].contains(&format!("领取了卡券《满100减10》（code {code}）"))
            && lines[0].contains("推送失败：the shop set no official-account server URL"),
        "{}",
        lines[0]
    );

    // A server that does not answer: the transport error.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/wechat/mp", closed.local_addr().unwrap());
    drop(closed);
    r.sandbox.set_mp_server_url(&url);
    r.sandbox.give_card(&user.openid, &card_id).unwrap();
    pushes_answered(&r, 1).await;
    let lines = card_lines(&mp_page(&r, &user.key).await);
    assert_eq!(lines.len(), 2);
    assert!(
        lines[1].starts_with(" err")
            && lines[1].contains("推送失败：")
            && lines[1].contains(&format!("push to {url}")),
        "{}",
        lines[1]
    );
}
