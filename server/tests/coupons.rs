//! Coupons from the WeChat card wallet (issue 14), against a shop on the embedded sandbox: the
//! console creates the card at WeChat, shoppers take it, checkout applies it (minimum spend,
//! rounding, whose code, one code per open order), and a paid order redeems it exactly once.

mod common;

use common::{address, wait_for, TestShop};
use serde_json::{json, Value};
use server::admin::accounts::{self, Role};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";
const ORANGE_SMALL: i64 = 1; // ¥39.90

struct Console {
    base: String,
    http: reqwest::Client,
}

impl Console {
    async fn signed_in(shop: &TestShop, username: &str, role: Role) -> Self {
        accounts::add(&shop.pool, username, role, PASSWORD)
            .await
            .unwrap();
        let c = Self {
            base: shop.base.clone(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap(),
        };
        let (st, body) = c
            .post("login", json!({"username": username, "password": PASSWORD}))
            .await;
        assert_eq!(st, 200, "{body}");
        c
    }

    async fn post(&self, name: &str, body: Value) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}/admin/api/{name}", self.base))
            .header("origin", &self.base)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

/// The owner creates a coupon; WeChat (the sandbox) reviews it at once.
async fn coupon(console: &Console, shop: &TestShop, body: Value) -> String {
    let (st, c) = console.post("save_coupon", body).await;
    assert_eq!(st, 200, "{c}");
    let card_id = c["card_id"].as_str().unwrap().to_string();
    shop.sandbox.verify_card(&card_id);
    card_id
}

fn cash(least: i64, reduce: i64) -> Value {
    json!({"title": "新人券", "kind": "cash", "least_cost_fen": least,
           "reduce_cost_fen": reduce, "quantity": 100, "days": 7})
}

fn openid(shop: &TestShop, user: usize) -> String {
    shop.sandbox.users()[user].openid.clone()
}

/// Sandbox user `user` takes the card into the wallet; the page's `{card_id, encrypt_code}`.
fn take(shop: &TestShop, user: usize, card_id: &str) -> Value {
    let code = shop
        .sandbox
        .give_card(&openid(shop, user), card_id)
        .expect("card taken");
    json!({"card_id": card_id, "encrypt_code": shop.sandbox.encrypt_code(&code)})
}

fn order_with(items: &[(i64, i64)], coupon: &Value) -> Value {
    json!({
        "items": items.iter().map(|(s, q)| json!({"sku_id": s, "quantity": q})).collect::<Vec<_>>(),
        "address": address(),
        "coupon": coupon,
    })
}

fn items(list: &[(i64, i64)]) -> Value {
    json!(list
        .iter()
        .map(|(s, q)| json!({"sku_id": s, "quantity": q}))
        .collect::<Vec<_>>())
}

async fn coupon_columns(shop: &TestShop, id: i64) -> (i64, i64, Option<String>, Option<i64>) {
    server::sql!(&shop.pool, e => sqlx::query_as(
        "SELECT total_fee, discount_fen, coupon_code, coupon_redeemed_at FROM orders WHERE id = $1",
    )
    .bind(id)
    .fetch_one(e).await)
    .unwrap()
}

#[tokio::test]
async fn a_cash_coupon_needs_its_minimum_spend_and_takes_its_amount_off() {
    let shop = TestShop::spawn().await;
    let owner = Console::signed_in(&shop, "boss", Role::Owner).await;
    let card_id = coupon(&owner, &shop, cash(5_000, 1_000)).await;
    let s = shop.wechat_shopper(0).await;
    let chosen = take(&shop, 0, &card_id);

    // ¥39.90 < ¥50: refused with why, and no order.
    let (st, e) = s
        .api(
            "quote_order",
            json!({"items": items(&[(ORANGE_SMALL, 1)]), "coupon": chosen}),
        )
        .await;
    assert_eq!(st, 409, "{e}");
    assert_eq!(e["code"], "coupon_not_applicable");
    assert!(e["message"].as_str().unwrap().contains("未满 ¥50"), "{e}");
    let (st, e) = s
        .api("create_order", order_with(&[(ORANGE_SMALL, 1)], &chosen))
        .await;
    assert_eq!(st, 409, "{e}");
    let orders: i64 = server::sql!(&shop.pool, e => sqlx::query_scalar("SELECT COUNT(*) FROM orders").fetch_one(e).await).unwrap();
    assert_eq!(orders, 0, "a coupon that does not apply creates no order");

    // ¥79.80 ≥ ¥50: ¥10 off.
    let (st, q) = s
        .api(
            "quote_order",
            json!({"items": items(&[(ORANGE_SMALL, 2)]), "coupon": chosen}),
        )
        .await;
    assert_eq!(st, 200, "{q}");
    assert_eq!(q["discount_fen"], 1_000);
    assert_eq!(q["total_fen"], 6_980);
    assert_eq!(q["coupon"]["rule"], "满50减10");
    let (st, created) = s
        .api("create_order", order_with(&[(ORANGE_SMALL, 2)], &chosen))
        .await;
    assert_eq!(st, 200, "{created}");
    assert_eq!(
        created["total_fee"], 6_980,
        "WeChat collects the amount after"
    );
    let id = created["order_id"].as_i64().unwrap();
    let (_, order) = s.api("get_order", json!({"order_id": id})).await;
    assert_eq!(order["discount_fen"], 1_000);
    assert_eq!(order["coupon_title"], "新人券");
    // What WeChat is asked to collect.
    let (st, _) = s.api("pay_order", json!({"order_id": id})).await;
    assert_eq!(st, 200);
    let t = shop.sandbox.transaction(&shop.order_no(id).await).unwrap();
    assert_eq!(t.total, 6_980);
}

#[tokio::test]
async fn a_discount_coupon_rounds_the_discount_down_to_the_fen() {
    let shop = TestShop::spawn().await;
    let owner = Console::signed_in(&shop, "boss", Role::Owner).await;
    // 15% off (8.5折), no minimum: ¥39.90 × 15% = ¥5.985 → ¥5.98 off, ¥33.92 to pay.
    let card_id = coupon(
        &owner,
        &shop,
        json!({"title": "八五折", "kind": "discount", "least_cost_fen": 0,
               "discount_percent": 15, "quantity": 10, "days": 30}),
    )
    .await;
    let s = shop.wechat_shopper(0).await;
    let chosen = take(&shop, 0, &card_id);
    let (st, q) = s
        .api(
            "quote_order",
            json!({"items": items(&[(ORANGE_SMALL, 1)]), "coupon": chosen}),
        )
        .await;
    assert_eq!(st, 200, "{q}");
    assert_eq!(q["discount_fen"], 598);
    assert_eq!(q["total_fen"], 3_392);
    assert_eq!(q["coupon"]["rule"], "8.5折");
}

#[tokio::test]
async fn another_shoppers_code_and_a_foreign_card_are_refused() {
    let shop = TestShop::spawn().await;
    let owner = Console::signed_in(&shop, "boss", Role::Owner).await;
    let card_id = coupon(&owner, &shop, cash(0, 500)).await;
    let theirs = take(&shop, 1, &card_id);
    let s = shop.wechat_shopper(0).await;
    let (st, e) = s
        .api("create_order", order_with(&[(ORANGE_SMALL, 1)], &theirs))
        .await;
    assert_eq!(st, 409, "{e}");
    assert!(e["message"].as_str().unwrap().contains("不属于您"), "{e}");

    // A made-up encrypted code: WeChat refuses to decrypt it.
    let forged = json!({"card_id": card_id, "encrypt_code": "bm90LWEtY29kZQ=="});
    let (st, e) = s
        .api("create_order", order_with(&[(ORANGE_SMALL, 1)], &forged))
        .await;
    assert_eq!(st, 409, "{e}");
    assert_eq!(e["code"], "coupon_not_applicable");

    // A card that is not one of the shop's coupons.
    let other = json!({"card_id": "pNotOurs000000000000000000000", "encrypt_code": "x"});
    let (st, e) = s
        .api("create_order", order_with(&[(ORANGE_SMALL, 1)], &other))
        .await;
    assert_eq!(st, 409, "{e}");
    assert!(e["message"].as_str().unwrap().contains("本店"), "{e}");
}

#[tokio::test]
async fn one_code_holds_one_open_order_and_is_free_again_when_that_order_closes() {
    let shop = TestShop::spawn().await;
    let owner = Console::signed_in(&shop, "boss", Role::Owner).await;
    let card_id = coupon(&owner, &shop, cash(0, 500)).await;
    let s = shop.wechat_shopper(0).await;
    let chosen = take(&shop, 0, &card_id);
    let (st, first) = s
        .api("create_order", order_with(&[(ORANGE_SMALL, 1)], &chosen))
        .await;
    assert_eq!(st, 200, "{first}");
    let first = first["order_id"].as_i64().unwrap();

    // The same code on a second order, and on two at once: refused while the first is open.
    let (st, e) = s
        .api("create_order", order_with(&[(ORANGE_SMALL, 1)], &chosen))
        .await;
    assert_eq!(st, 409, "{e}");
    assert!(e["message"].as_str().unwrap().contains("另一个订单"), "{e}");
    let (st, e) = s
        .api(
            "quote_order",
            json!({"items": items(&[(ORANGE_SMALL, 1)]), "coupon": chosen}),
        )
        .await;
    assert_eq!(st, 409, "the quote says so too: {e}");

    // Closing the first order frees the code.
    let (st, _) = s.api("cancel_order", json!({"order_id": first})).await;
    assert_eq!(st, 200);
    assert_eq!(shop.order_row(first).await.0, "closed");
    let (st, second) = s
        .api("create_order", order_with(&[(ORANGE_SMALL, 1)], &chosen))
        .await;
    assert_eq!(st, 200, "{second}");
}

#[tokio::test]
async fn two_checkouts_racing_with_one_code_make_one_order() {
    let shop = TestShop::spawn().await;
    let owner = Console::signed_in(&shop, "boss", Role::Owner).await;
    let card_id = coupon(&owner, &shop, cash(0, 500)).await;
    let s = shop.wechat_shopper(0).await;
    let chosen = take(&shop, 0, &card_id);
    let body = order_with(&[(ORANGE_SMALL, 1)], &chosen);
    let answers =
        futures_util::future::join_all((0..6).map(|_| s.api("create_order", body.clone()))).await;
    let ok = answers.iter().filter(|(st, _)| *st == 200).count();
    let refused = answers.iter().filter(|(st, _)| *st == 409).count();
    assert_eq!((ok, refused), (1, 5), "{answers:?}");
}

#[tokio::test]
async fn a_paid_order_redeems_its_code_once_under_twenty_duplicate_notifications() {
    let shop = TestShop::spawn().await;
    let owner = Console::signed_in(&shop, "boss", Role::Owner).await;
    let card_id = coupon(&owner, &shop, cash(0, 500)).await;
    let s = shop.wechat_shopper(0).await;
    let chosen = take(&shop, 0, &card_id);
    let (_, created) = s
        .api("create_order", order_with(&[(ORANGE_SMALL, 1)], &chosen))
        .await;
    let id = created["order_id"].as_i64().unwrap();
    let (st, _) = s.api("pay_order", json!({"order_id": id})).await;
    assert_eq!(st, 200);
    let no = shop.order_no(id).await;
    shop.sandbox.set_drop_notifications(true);
    shop.sandbox.pay(&no).await.unwrap();
    shop.sandbox.set_drop_notifications(false);

    let http = reqwest::Client::new();
    let answers = futures_util::future::join_all((0..20).map(|_| {
        let req = shop.sandbox.signed_notification(&no).unwrap();
        let url = format!("{}{}", shop.base, req.uri().path());
        let mut rb = http.post(url);
        for (k, v) in req.headers() {
            rb = rb.header(k.as_str(), v.as_bytes());
        }
        rb.body(req.into_body()).send()
    }))
    .await;
    for a in answers {
        assert_eq!(a.unwrap().status(), 200);
    }
    assert!(
        wait_for(|| async { coupon_columns(&shop, id).await.3.is_some() }).await,
        "redeemed"
    );
    // Give any stray second attempt time to show itself.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        shop.sandbox.card_consume_calls(),
        1,
        "one card/code/consume"
    );
    let wallet = shop.sandbox.wallet(&openid(&shop, 0));
    assert_eq!(wallet.len(), 1);
    assert_eq!(wallet[0].status, wechat_sandbox::CodeStatus::Consumed);
    // The sweeper finds nothing more to do.
    let report = shop.sweeper.run_once().await.unwrap();
    assert_eq!(report.coupons, 0);
    assert_eq!(shop.sandbox.card_consume_calls(), 1);
}

#[tokio::test]
async fn a_redemption_wechat_refuses_is_done_by_the_sweeper_later() {
    let shop = TestShop::spawn().await;
    let owner = Console::signed_in(&shop, "boss", Role::Owner).await;
    let card_id = coupon(&owner, &shop, cash(0, 500)).await;
    let s = shop.wechat_shopper(0).await;
    let chosen = take(&shop, 0, &card_id);
    let (_, created) = s
        .api("create_order", order_with(&[(ORANGE_SMALL, 1)], &chosen))
        .await;
    let id = created["order_id"].as_i64().unwrap();
    s.api("pay_order", json!({"order_id": id})).await;
    let no = shop.order_no(id).await;
    shop.sandbox.fail_next(
        wechat_sandbox::Endpoint::CardApi,
        wechat_sandbox::Fault::errcode(-1, "system error"),
    );
    shop.sandbox.pay(&no).await.unwrap();
    assert!(shop.sandbox.wait_for_ack(&no, Duration::from_secs(5)).await);
    assert!(
        wait_for(|| async { shop.sandbox.card_consume_calls() == 1 }).await,
        "one failed attempt"
    );
    assert_eq!(coupon_columns(&shop, id).await.3, None, "not redeemed yet");
    // The attempt's lease (60 s) has to run out first.
    server::sql!(&shop.pool, e => sqlx::query("UPDATE orders SET coupon_claimed_at = coupon_claimed_at - 61 WHERE id = $1")
        .bind(id)
        .execute(e).await.map(server::db::Done::from))
    .unwrap();
    let report = shop.sweeper.run_once().await.unwrap();
    assert_eq!(report.coupons, 1);
    assert!(coupon_columns(&shop, id).await.3.is_some());
    assert_eq!(
        shop.sandbox.wallet(&openid(&shop, 0))[0].status,
        wechat_sandbox::CodeStatus::Consumed
    );
}

#[tokio::test]
async fn an_expired_unpaid_order_lets_its_code_go_and_redeems_nothing() {
    let shop = TestShop::spawn().await;
    let owner = Console::signed_in(&shop, "boss", Role::Owner).await;
    let card_id = coupon(&owner, &shop, cash(0, 500)).await;
    let s = shop.wechat_shopper(0).await;
    let chosen = take(&shop, 0, &card_id);
    let (_, created) = s
        .api("create_order", order_with(&[(ORANGE_SMALL, 1)], &chosen))
        .await;
    let id = created["order_id"].as_i64().unwrap();
    server::sql!(&shop.pool, e => sqlx::query("UPDATE orders SET expires_at = 0 WHERE id = $1")
        .bind(id)
        .execute(e).await.map(server::db::Done::from))
    .unwrap();
    let report = shop.sweeper.run_once().await.unwrap();
    assert_eq!(report.expired, 1);
    assert_eq!(shop.sandbox.card_consume_calls(), 0);
    assert_eq!(
        shop.sandbox.wallet(&openid(&shop, 0))[0].status,
        wechat_sandbox::CodeStatus::Normal
    );
    let (st, e) = s
        .api("create_order", order_with(&[(ORANGE_SMALL, 1)], &chosen))
        .await;
    assert_eq!(st, 200, "the code serves a new order: {e}");
}

#[tokio::test]
async fn the_console_creates_lists_and_stops_coupons_and_only_the_owner_may() {
    let shop = TestShop::spawn().await;
    let owner = Console::signed_in(&shop, "boss", Role::Owner).await;
    let clerk = Console::signed_in(&shop, "clerk", Role::Staff).await;
    let (st, _) = clerk.post("save_coupon", cash(5_000, 1_000)).await;
    assert_eq!(st, 403);
    assert!(shop.sandbox.cards().is_empty(), "nothing created at WeChat");

    let (st, e) = owner
        .post(
            "save_coupon",
            json!({"title": "", "kind": "cash", "least_cost_fen": 100,
                   "reduce_cost_fen": 500, "quantity": 0, "days": 7}),
        )
        .await;
    assert_eq!(st, 400, "{e}");
    let fields: Vec<&str> = e["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["title", "reduce_cost_fen", "quantity"]);
    assert!(shop.sandbox.cards().is_empty());

    let card_id = coupon(&owner, &shop, cash(5_000, 1_000)).await;
    let cards = shop.sandbox.cards();
    assert_eq!(cards.len(), 1);
    assert_eq!(cards[0].card_id, card_id);

    // Taken by a shopper (WeChat pushes user_get_card to the official-account server).
    take(&shop, 0, &card_id);
    let listed = || async {
        let (st, list) = clerk.post("list_coupons", json!({})).await;
        assert_eq!(st, 200);
        list[0].clone()
    };
    assert!(
        wait_for(|| async { listed().await["taken"] == 1 }).await,
        "{}",
        listed().await
    );
    let c = listed().await;
    assert_eq!(c["rule"], "满50减10");
    assert_eq!(c["redeemed"], 0);
    assert_eq!(c["status"], "active");

    // On offer to shoppers until stopped.
    let s = shop.wechat_shopper(1).await;
    let (_, offers) = s.api("coupon_offers", json!({})).await;
    assert_eq!(offers[0]["card_id"], card_id.as_str());
    let (st, ext) = s.api("card_ext", json!({"card_id": card_id})).await;
    assert_eq!(st, 200, "{ext}");
    assert_eq!(ext["cardId"], card_id.as_str());
    let inner: Value = serde_json::from_str(ext["cardExt"].as_str().unwrap()).unwrap();
    assert_eq!(inner["signature"].as_str().unwrap().len(), 40);

    let id = c["coupon_id"].clone();
    let (st, _) = clerk.post("stop_coupon", json!({"coupon_id": id})).await;
    assert_eq!(st, 403);
    let (st, stopped) = owner.post("stop_coupon", json!({"coupon_id": id})).await;
    assert_eq!(st, 200, "{stopped}");
    assert_eq!(listed().await["status"], "stopped");
    let (_, offers) = s.api("coupon_offers", json!({})).await;
    assert_eq!(offers, json!([]));
    let (st, _) = s.api("card_ext", json!({"card_id": card_id})).await;
    assert_eq!(st, 409);

    // A code taken before the stop still works at checkout (WeChat keeps it).
    let chosen = json!({"card_id": card_id, "encrypt_code":
        shop.sandbox.encrypt_code(&shop.sandbox.wallet(&openid(&shop, 0))[0].code)});
    let s0 = shop.wechat_shopper(0).await;
    let (st, q) = s0
        .api(
            "quote_order",
            json!({"items": items(&[(ORANGE_SMALL, 2)]), "coupon": chosen}),
        )
        .await;
    assert_eq!(st, 200, "{q}");

    let audit: Vec<String> = server::sql!(&shop.pool, e => sqlx::query_scalar(
        "SELECT action FROM admin_audit ORDER BY id",
    )
    .fetch_all(e).await)
    .unwrap();
    assert!(audit.contains(&"save_coupon".to_string()), "{audit:?}");
    assert!(audit.contains(&"stop_coupon".to_string()), "{audit:?}");
}

#[tokio::test]
async fn goods_refunded_from_a_couponed_order_go_back_at_what_was_paid_for_them() {
    let shop = TestShop::spawn().await;
    let owner = Console::signed_in(&shop, "boss", Role::Owner).await;
    let card_id = coupon(&owner, &shop, cash(0, 500)).await;
    let s = shop.wechat_shopper(0).await;
    let chosen = take(&shop, 0, &card_id);
    // 3 × ¥39.90 = ¥119.70, ¥5 off: ¥114.70 paid.
    let (_, created) = s
        .api("create_order", order_with(&[(ORANGE_SMALL, 3)], &chosen))
        .await;
    let id = created["order_id"].as_i64().unwrap();
    assert_eq!(created["total_fee"], 11_470);
    s.api("pay_order", json!({"order_id": id})).await;
    let no = shop.order_no(id).await;
    shop.sandbox.pay(&no).await.unwrap();
    assert!(shop.sandbox.wait_for_ack(&no, Duration::from_secs(5)).await);

    let by_line = |quantity| server::payments::RefundRequest {
        order: no.clone(),
        amount_fen: None,
        lines: vec![server::payments::RefundLine {
            line_no: 1,
            quantity,
        }],
        reason: "少发".into(),
        restock: false,
    };
    // One unit: ¥39.90 × 114.70 / 119.70 = ¥38.2333… → ¥38.23.
    let first = shop.payments.refund(&by_line(1)).await.unwrap();
    assert_eq!(first.refund.amount_fen, 3_823);
    // The last two units: the rest of what was paid, so the total is exactly the payment.
    let rest = shop.payments.refund(&by_line(2)).await.unwrap();
    assert_eq!(rest.refund.amount_fen, 11_470 - 3_823);
    // Nothing more.
    assert!(shop.payments.refund(&by_line(1)).await.is_err());
}
