//! The console's access: accounts, login and its rate limit, the cookie, roles, CSRF, the audit
//! log — over HTTP against a shop on the sandbox.

mod common;

use common::{order_body, wait_for, TestShop};
use serde_json::{json, Value};
use server::admin::accounts::{self, Role};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";

struct Console {
    base: String,
    http: reqwest::Client,
}

impl Console {
    fn new(shop: &TestShop) -> Self {
        Self {
            base: shop.base.clone(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap(),
        }
    }

    async fn post(&self, name: &str, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
        let res = self
            .http
            .post(format!("{}/admin/api/{name}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let v = res.json().await.unwrap_or(Value::Null);
        (status, headers, v)
    }

    async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        self.post("login", json!({"username": username, "password": password}))
            .await
    }
}

async fn accounts(shop: &TestShop) {
    accounts::add(&shop.pool, "boss", Role::Owner, PASSWORD)
        .await
        .unwrap();
    accounts::add(&shop.pool, "clerk", Role::Staff, PASSWORD)
        .await
        .unwrap();
}

#[tokio::test]
async fn accounts_store_argon2id_and_refuse_weak_or_duplicate() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let hash: String =
        server::sql!(&shop.pool, e => sqlx::query_scalar("SELECT password_hash FROM admins WHERE username = 'boss'")
            .fetch_one(e).await)
            .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
    assert!(matches!(
        accounts::add(&shop.pool, "boss", Role::Staff, PASSWORD).await,
        Err(accounts::AccountError::Exists(_))
    ));
    assert!(matches!(
        accounts::add(&shop.pool, "tiny", Role::Staff, "short").await,
        Err(accounts::AccountError::WeakPassword)
    ));
    assert!(matches!(
        accounts::add(&shop.pool, "a b", Role::Staff, PASSWORD).await,
        Err(accounts::AccountError::BadUsername)
    ));
    // The password comes from standard input: one line, its end removed.
    let mut input = std::io::Cursor::new(b"s3cret password\r\nrest".to_vec());
    assert_eq!(
        accounts::read_password(&mut input).unwrap(),
        "s3cret password"
    );
}

#[tokio::test]
async fn login_sets_a_strict_httponly_cookie_and_wrong_or_unknown_get_the_same_401() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let c = Console::new(&shop);
    let (st, _, _) = c.post("me", json!({})).await;
    assert_eq!(st, 401, "not signed in");
    let (st, _, wrong) = c.login("boss", "not the password").await;
    assert_eq!(st, 401);
    let (st, _, unknown) = c.login("nobody", "not the password").await;
    assert_eq!(st, 401);
    assert_eq!(wrong, unknown, "nothing tells the two apart");

    let (st, headers, me) = c.login("boss", PASSWORD).await;
    assert_eq!(st, 200, "{me}");
    assert_eq!(me["role"], "owner");
    let cookie = headers["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("wxmall_admin="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "http: not Secure");
    let (st, _, me) = c.post("me", json!({})).await;
    assert_eq!((st, me["username"].as_str()), (200, Some("boss")));
    // What the database keeps is not the cookie's token.
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("wxmall_admin=");
    let stored: i64 =
        server::sql!(&shop.pool, e => sqlx::query_scalar("SELECT COUNT(*) FROM admin_sessions WHERE token_hash = $1")
            .bind(token)
            .fetch_one(e).await)
            .unwrap();
    assert_eq!(stored, 0);

    // 12 hours idle: gone.
    server::sql!(&shop.pool, e => sqlx::query("UPDATE admin_sessions SET last_seen_at = last_seen_at - 12 * 3600 - 1")
        .execute(e).await.map(server::db::Done::from))
        .unwrap();
    let (st, _, _) = c.post("me", json!({})).await;
    assert_eq!(st, 401);

    // Logout ends the session.
    let (st, _, _) = c.login("boss", PASSWORD).await;
    assert_eq!(st, 200);
    let (st, _, _) = c.post("logout", json!({})).await;
    assert_eq!(st, 200);
    let (st, _, _) = c.post("me", json!({})).await;
    assert_eq!(st, 401);

    // A disabled account can neither log in nor keep its session.
    let (st, _, _) = c.login("clerk", PASSWORD).await;
    assert_eq!(st, 200);
    accounts::disable(&shop.pool, "clerk").await.unwrap();
    let (st, _, _) = c.post("me", json!({})).await;
    assert_eq!(st, 401);
    let (st, _, _) = c.login("clerk", PASSWORD).await;
    assert_eq!(st, 401);
}

#[tokio::test]
async fn five_failures_for_a_username_make_the_next_attempt_wait() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let c = Console::new(&shop);
    for _ in 0..5 {
        let (st, _, _) = c.login("boss", "guess guess guess").await;
        assert_eq!(st, 401);
    }
    let (st, headers, err) = c.login("boss", PASSWORD).await;
    assert_eq!(st, 429, "even the right password waits: {err}");
    assert_eq!(err["code"], "rate_limited");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=15 * 60).contains(&wait), "{wait}");
    // The window passes.
    server::sql!(&shop.pool, e => sqlx::query("UPDATE admin_login_failures SET at = at - 15 * 60")
        .execute(e).await.map(server::db::Done::from))
    .unwrap();
    let (st, _, _) = c.login("boss", PASSWORD).await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn a_shopper_cookie_a_foreign_origin_and_text_plain_open_nothing() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    // A shopper with a session of the shop.
    let shopper = shop.wechat_shopper(0).await;
    let res = shopper
        .http
        .post(format!("{}/admin/api/me", shop.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/admin/api/login", shop.base))
        .header("origin", "https://evil.example")
        .json(&json!({"username": "boss", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = http
        .post(format!("{}/admin/api/login", shop.base))
        .header("content-type", "text/plain")
        .body(json!({"username": "boss", "password": PASSWORD}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
}

#[tokio::test]
async fn only_the_owner_refunds_and_every_refund_is_in_the_audit_log() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    // A paid order.
    let s = shop.wechat_shopper(0).await;
    let (_, created) = s.api("create_order", order_body(&[(1, 1)])).await;
    let id = created["order_id"].as_i64().unwrap();
    let (st, _) = s.api("pay_order", json!({"order_id": id})).await;
    assert_eq!(st, 200);
    let no = shop.order_no(id).await;
    shop.sandbox.pay(&no).await.unwrap();
    assert!(shop.sandbox.wait_for_ack(&no, Duration::from_secs(5)).await);

    let clerk = Console::new(&shop);
    clerk.login("clerk", PASSWORD).await;
    let body = json!({"order_id": id, "amount_fen": 1000, "reason": "少发赠品"});
    let (st, _, _) = clerk.post("refund_order", body.clone()).await;
    assert_eq!(st, 403, "staff may not refund");
    let (st, _, _) = clerk.post("audit_log", json!({})).await;
    assert_eq!(st, 403);
    assert!(shop.sandbox.refunds(&no).is_empty());

    let boss = Console::new(&shop);
    boss.login("boss", PASSWORD).await;
    let (st, _, refund) = boss.post("refund_order", body.clone()).await;
    assert_eq!(st, 200, "{refund}");
    assert_eq!(refund["amount_fen"], 1000);
    assert_eq!(shop.sandbox.refunds(&no).len(), 1);
    // Too much is refused with the payments service's message.
    let (st, _, err) = boss
        .post(
            "refund_order",
            json!({"order_id": id, "amount_fen": 999999, "reason": "x"}),
        )
        .await;
    assert_eq!(st, 400, "{err}");
    let (st, _, log) = boss.post("audit_log", json!({})).await;
    assert_eq!(st, 200);
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["who"], "boss");
    assert_eq!(log[0]["action"], "refund_order");
    assert_eq!(log[0]["detail"]["order_id"], id);
    assert_eq!(log[0]["detail"]["amount_fen"], 1000);
    assert_eq!(log[0]["detail"]["reason"], "少发赠品");
}

#[tokio::test]
async fn five_failures_from_one_address_make_every_name_wait() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let c = Console::new(&shop);
    for name in ["a1", "a2", "a3", "a4", "a5"] {
        let (st, _, _) = c.login(name, "guess guess guess").await;
        assert_eq!(st, 401);
    }
    let (st, _, _) = c.login("boss", PASSWORD).await;
    assert_eq!(st, 429, "the address has spent its tries");
}

async fn paid_order(
    shop: &TestShop,
    user: usize,
    items: &[(i64, i64)],
) -> (common::Shopper, i64, String) {
    let s = shop.wechat_shopper(user).await;
    let (_, created) = s.api("create_order", order_body(items)).await;
    let id = created["order_id"].as_i64().unwrap();
    let (st, _) = s.api("pay_order", json!({"order_id": id})).await;
    assert_eq!(st, 200);
    let no = shop.order_no(id).await;
    shop.sandbox.pay(&no).await.unwrap();
    assert!(shop.sandbox.wait_for_ack(&no, Duration::from_secs(5)).await);
    (s, id, no)
}

#[tokio::test]
async fn staff_find_orders_and_ship_them_once_and_the_shopper_sees_the_parcel() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let (shopper, id, no) = paid_order(&shop, 0, &[(1, 2)]).await;
    let unpaid = shop.wechat_shopper(1).await;
    let (_, other) = unpaid.api("create_order", order_body(&[(2, 1)])).await;
    let other_id = other["order_id"].as_i64().unwrap();

    let clerk = Console::new(&shop);
    clerk.login("clerk", PASSWORD).await;
    let (st, _, list) = clerk.post("list_orders", json!({})).await;
    assert_eq!(st, 200, "{list}");
    assert_eq!(list["orders"].as_array().unwrap().len(), 2);
    let (_, _, paid) = clerk.post("list_orders", json!({"status": "paid"})).await;
    let paid = paid["orders"].clone();
    assert_eq!(paid.as_array().unwrap().len(), 1);
    assert_eq!(paid[0]["order_no"], no.as_str());
    assert!(paid[0]["transaction_id"].is_string());
    // Search by order number, WeChat's transaction id, recipient, phone.
    let txid = paid[0]["transaction_id"].as_str().unwrap().to_string();
    for q in [no.as_str(), txid.as_str(), "13800138000"] {
        let (_, _, found) = clerk.post("list_orders", json!({"q": q})).await;
        assert!(
            found["orders"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o["order_id"] == id),
            "{q}: {found}"
        );
    }
    let (st, _, _) = clerk.post("list_orders", json!({"status": "nope"})).await;
    assert_eq!(st, 400);
    let (st, _, _) = clerk
        .post("list_orders", json!({"from": "yesterday"}))
        .await;
    assert_eq!(st, 400);
    let (_, _, none) = clerk.post("list_orders", json!({"to": "2020-01-01"})).await;
    assert!(none["orders"].as_array().unwrap().is_empty());
    let (st, _, order) = clerk.post("get_order", json!({"order_id": id})).await;
    assert_eq!(st, 200);
    assert_eq!(order["order_no"], no.as_str());

    // Ship: bad input, an unpaid order, then once.
    let (st, _, bad) = clerk
        .post(
            "ship_order",
            json!({"order_id": id, "carrier": "", "tracking_no": "x"}),
        )
        .await;
    assert_eq!(st, 400, "{bad}");
    assert_eq!(bad["fields"].as_array().unwrap().len(), 2);
    let (st, _, _) = clerk
        .post(
            "ship_order",
            json!({"order_id": other_id, "carrier": "顺丰", "tracking_no": "SF1234567890"}),
        )
        .await;
    assert_eq!(st, 409, "unpaid");
    let body = json!({"order_id": id, "carrier": "顺丰速运", "tracking_no": "SF1234567890"});
    let (first, second) = tokio::join!(
        clerk.post("ship_order", body.clone()),
        clerk.post("ship_order", body.clone())
    );
    let mut statuses = [first.0, second.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "shipped exactly once");
    assert_eq!(shop.order_row(id).await.0, "shipped");

    // The shopper sees the parcel, and WeChat tells them.
    let (_, mine) = shopper.api("get_order", json!({"order_id": id})).await;
    assert_eq!(mine["status"], "shipped");
    assert_eq!(mine["shipment"]["carrier"], "顺丰速运");
    assert_eq!(mine["shipment"]["tracking_no"], "SF1234567890");
    let (_, page) = shopper.get(&format!("/orders/{id}")).await;
    assert!(page.contains("顺丰速运 SF1234567890"));
    let mut shipped = None;
    for _ in 0..200 {
        shipped = shop
            .sandbox
            .template_messages()
            .into_iter()
            .find(|m| m.template_id == "sandbox-order-shipped");
        if shipped.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let m = shipped.expect("the shipped template message");
    assert_eq!(m.data["keyword1"], no);
    assert_eq!(m.data["keyword3"], "SF1234567890");

    // Audited.
    let boss = Console::new(&shop);
    boss.login("boss", PASSWORD).await;
    let (_, _, log) = boss.post("audit_log", json!({})).await;
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["who"], "clerk");
    assert_eq!(log[0]["action"], "ship_order");
    assert_eq!(log[0]["detail"]["tracking_no"], "SF1234567890");
}

#[tokio::test]
async fn the_shopper_confirms_receipt_once_and_old_parcels_complete_by_themselves() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let (shopper, id, _) = paid_order(&shop, 0, &[(1, 1)]).await;
    let (st, err) = shopper
        .api("confirm_receipt", json!({"order_id": id}))
        .await;
    assert_eq!(st, 409, "not shipped yet: {err}");
    let clerk = Console::new(&shop);
    clerk.login("clerk", PASSWORD).await;
    let (st, _, _) = clerk
        .post(
            "ship_order",
            json!({"order_id": id, "carrier": "中通", "tracking_no": "ZT0001"}),
        )
        .await;
    assert_eq!(st, 200);
    let stranger = shop.wechat_shopper(1).await;
    let (st, _) = stranger
        .api("confirm_receipt", json!({"order_id": id}))
        .await;
    assert_eq!(st, 404, "someone else's order");
    let (st, view) = shopper
        .api("confirm_receipt", json!({"order_id": id}))
        .await;
    assert_eq!(st, 200, "{view}");
    assert_eq!(view["status"], "completed");
    let (st, _) = shopper
        .api("confirm_receipt", json!({"order_id": id}))
        .await;
    assert_eq!(st, 409, "once");

    // Another order, shipped eleven days ago and never confirmed: the sweeper completes it.
    let (_, old, _) = paid_order(&shop, 0, &[(2, 1)]).await;
    let (st, _, _) = clerk
        .post(
            "ship_order",
            json!({"order_id": old, "carrier": "中通", "tracking_no": "ZT0002"}),
        )
        .await;
    assert_eq!(st, 200);
    shop.sweeper.run_once().await.unwrap();
    assert_eq!(shop.order_row(old).await.0, "shipped", "not yet");
    server::sql!(&shop.pool, e => sqlx::query("UPDATE orders SET shipped_at = shipped_at - 11 * 86400 WHERE id = $1")
        .bind(old)
        .execute(e).await.map(server::db::Done::from))
        .unwrap();
    shop.sweeper.run_once().await.unwrap();
    assert_eq!(shop.order_row(old).await.0, "completed");
}

#[tokio::test]
async fn the_sweeper_prunes_idle_console_sessions_and_old_login_failures() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let c = Console::new(&shop);
    let (st, _, _) = c.login("boss", PASSWORD).await;
    assert_eq!(st, 200);
    let (st, _, _) = c.login("boss", "guess guess guess").await;
    assert_eq!(st, 401);
    let rows = |sql: &'static str| {
        let pool = shop.pool.clone();
        async move {
            server::sql!(&pool, e => sqlx::query_scalar::<_, i64>(sql).fetch_one(e).await).unwrap()
        }
    };
    // Fresh ones stay.
    shop.sweeper.run_once().await.unwrap();
    assert_eq!(rows("SELECT COUNT(*) FROM admin_sessions").await, 1);
    // One failure counts against the name and the address.
    assert_eq!(rows("SELECT COUNT(*) FROM admin_login_failures").await, 2);
    // Past the console's 12 h idle timeout and the 15-minute failure window: gone.
    server::sql!(&shop.pool, e => sqlx::query("UPDATE admin_sessions SET last_seen_at = last_seen_at - 12 * 3600 - 1")
        .execute(e).await.map(server::db::Done::from))
    .unwrap();
    server::sql!(&shop.pool, e => sqlx::query("UPDATE admin_login_failures SET at = at - 15 * 60 - 1")
        .execute(e).await.map(server::db::Done::from))
    .unwrap();
    shop.sweeper.run_once().await.unwrap();
    assert_eq!(rows("SELECT COUNT(*) FROM admin_sessions").await, 0);
    assert_eq!(rows("SELECT COUNT(*) FROM admin_login_failures").await, 0);
    let (st, _, _) = c.post("list_orders", json!({})).await;
    assert_eq!(st, 401, "the pruned session opens nothing");
}

// ------------------------------------------------------------------ catalogue

async fn signed_in(shop: &TestShop, username: &str) -> Console {
    let c = Console::new(shop);
    let (st, _, body) = c.login(username, PASSWORD).await;
    assert_eq!(st, 200, "{body}");
    c
}

fn two_sku_product(category_id: i64) -> Value {
    json!({
        "name": "云南小粒咖啡豆",
        "category_id": category_id,
        "description": "中度烘焙",
        "images": ["/images/coffee.svg"],
        "on_sale": true,
        "skus": [
            {"name": "250g", "price_fen": 5900, "stock": 10},
            {"name": "500g", "price_fen": 9900, "stock": 3},
        ],
    })
}

#[tokio::test]
async fn the_owner_adds_a_product_shoppers_see_it_and_staff_cannot_change_its_prices() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let boss = signed_in(&shop, "boss").await;
    let clerk = signed_in(&shop, "clerk").await;

    let (st, _, cat) = boss
        .post("save_category", json!({"name": "咖啡", "sort": 9}))
        .await;
    assert_eq!(st, 200, "{cat}");
    let cat_id = cat["id"].as_i64().unwrap();
    let (st, _, dup) = clerk.post("save_category", json!({"name": "咖啡"})).await;
    assert_eq!(
        (st, dup["fields"][0]["field"].as_str()),
        (400, Some("name")),
        "{dup}"
    );

    let (st, _, p) = boss.post("save_product", two_sku_product(cat_id)).await;
    assert_eq!(st, 200, "{p}");
    let pid = p["id"].as_i64().unwrap();
    assert_eq!(p["skus"].as_array().unwrap().len(), 2);
    let sku_250 = p["skus"][0]["id"].as_i64().unwrap();

    // The shopper sees it at once, priced from the database.
    let shopper = shop.shopper();
    let (st, detail) = shopper.api("get_product", json!({"product_id": pid})).await;
    assert_eq!(st, 200, "{detail}");
    assert_eq!(detail["name"], "云南小粒咖啡豆");
    assert_eq!(detail["skus"][0]["price_fen"], 5900);

    // Staff may rename, not reprice, and may not add a SKU (a new price).
    let mut edit = p.clone();
    edit["name"] = json!("云南咖啡豆");
    let (st, _, renamed) = clerk.post("save_product", edit.clone()).await;
    assert_eq!(st, 200, "{renamed}");
    assert_eq!(renamed["name"], "云南咖啡豆");
    let mut reprice = renamed.clone();
    reprice["skus"][0]["price_fen"] = json!(1);
    let (st, _, err) = clerk.post("save_product", reprice.clone()).await;
    assert_eq!(
        (st, err["code"].as_str()),
        (403, Some("forbidden")),
        "{err}"
    );
    let mut more = renamed.clone();
    more["skus"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "1kg", "price_fen": 18800}));
    let (st, _, _) = clerk.post("save_product", more).await;
    assert_eq!(st, 403);
    assert_eq!(shop.price(sku_250).await, 5900, "nothing changed");

    // The owner reprices; the audit log has before and after.
    reprice["skus"][0]["price_fen"] = json!(5500);
    let (st, _, saved) = boss.post("save_product", reprice).await;
    assert_eq!(st, 200, "{saved}");
    assert_eq!(shop.price(sku_250).await, 5500);
    let (_, _, log) = boss.post("audit_log", json!({})).await;
    let entry = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["action"] == "save_product"
                && e["who"] == "boss"
                && !e["detail"]["new"].as_bool().unwrap()
        })
        .expect("the repricing is audited");
    assert_eq!(entry["detail"]["skus"][0]["price_fen"], json!([5900, 5500]));

    // Off the shelf: gone for shoppers, still in the console.
    let mut off = saved.clone();
    off["on_sale"] = json!(false);
    let (st, _, _) = clerk.post("save_product", off).await;
    assert_eq!(st, 200);
    let (st, _) = shopper.api("get_product", json!({"product_id": pid})).await;
    assert_eq!(st, 404);
    let (_, _, listed) = clerk
        .post("list_products", json!({"q": "咖啡", "category_id": cat_id}))
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["on_sale"], false);
}

#[tokio::test]
async fn bad_products_are_refused_with_the_fields_and_nobody_else_writes() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let boss = signed_in(&shop, "boss").await;
    let (_, _, cats) = boss.post("list_categories", json!({})).await;
    let cat_id = cats[0]["id"].as_i64().unwrap();
    let products_before = server::sql!(&shop.pool, e => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM products").fetch_one(e).await).unwrap();
    for (tweak, field) in [
        (json!({"name": "  "}), "name"),
        (json!({"images": []}), "images"),
        (json!({"images": ["https://evil.example/x.png"]}), "images"),
        (json!({"images": ["/images/../../etc/passwd"]}), "images"),
        (json!({"skus": []}), "skus"),
        (
            json!({"skus": [{"name": "250g", "price_fen": -100, "stock": 1}]}),
            "skus[0].price_fen",
        ),
        (
            json!({"skus": [{"name": "250g", "price_fen": 0, "stock": 1}]}),
            "skus[0].price_fen",
        ),
        (
            json!({"skus": [{"name": "250g", "price_fen": 100, "stock": -1}]}),
            "skus[0].stock",
        ),
        (
            json!({"skus": [{"name": "", "price_fen": 100}]}),
            "skus[0].name",
        ),
        (json!({"category_id": 999_999}), "category_id"),
    ] {
        let mut body = two_sku_product(cat_id);
        for (k, v) in tweak.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (st, _, err) = boss.post("save_product", body).await;
        assert_eq!(st, 400, "{tweak}: {err}");
        assert_eq!(err["code"], "validation", "{err}");
        assert!(
            err["fields"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["field"] == field),
            "{tweak}: {err}"
        );
    }
    // No cookie, a shopper's cookie, another site: nothing.
    let nobody = Console::new(&shop);
    let (st, _, _) = nobody.post("save_product", two_sku_product(cat_id)).await;
    assert_eq!(st, 401);
    let shopper = shop.wechat_shopper(0).await;
    let res = shopper
        .http
        .post(format!("{}/admin/api/save_product", shop.base))
        .json(&two_sku_product(cat_id))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = boss
        .http
        .post(format!("{}/admin/api/save_product", shop.base))
        .header("origin", "https://evil.example")
        .json(&two_sku_product(cat_id))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let products_after = server::sql!(&shop.pool, e => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM products").fetch_one(e).await).unwrap();
    assert_eq!(products_before, products_after, "nothing half-written");
}

#[tokio::test]
async fn a_removed_sku_that_orders_name_is_retired_and_a_category_goes_only_when_empty() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let boss = signed_in(&shop, "boss").await;
    let (_, _, cat) = boss.post("save_category", json!({"name": "咖啡"})).await;
    let cat_id = cat["id"].as_i64().unwrap();
    let (_, _, p) = boss.post("save_product", two_sku_product(cat_id)).await;
    let (sku_250, sku_500) = (
        p["skus"][0]["id"].as_i64().unwrap(),
        p["skus"][1]["id"].as_i64().unwrap(),
    );
    // A shopper orders the 250 g.
    let s = shop.wechat_shopper(2).await;
    let (st, created) = s.api("create_order", order_body(&[(sku_250, 1)])).await;
    assert_eq!(st, 200, "{created}");
    let order_id = created["order_id"].as_i64().unwrap();
    // Both removed, a new one added.
    let mut edit = p.clone();
    edit["skus"] = json!([{"name": "1kg", "price_fen": 18800, "stock": 2}]);
    let (st, _, saved) = boss.post("save_product", edit).await;
    assert_eq!(st, 200, "{saved}");
    assert_eq!(saved["skus"].as_array().unwrap().len(), 1);
    let retired: Option<i64> = server::sql!(&shop.pool, e => sqlx::query_scalar("SELECT retired_at FROM skus WHERE id = $1").bind(sku_250).fetch_one(e).await).unwrap();
    assert!(retired.is_some(), "named by an order: retired");
    let gone: Option<i64> = server::sql!(&shop.pool, e => sqlx::query_scalar("SELECT id FROM skus WHERE id = $1").bind(sku_500).fetch_optional(e).await).unwrap();
    assert_eq!(gone, None, "named by nothing: deleted");
    let (st, order) = s.api("get_order", json!({"order_id": order_id})).await;
    assert_eq!(st, 200, "the order still shows its line: {order}");
    let (st, _) = s.api("create_order", order_body(&[(sku_250, 1)])).await;
    assert_eq!(st, 404, "a retired SKU cannot be ordered");
    let (st, _) = s
        .api("add_to_cart", json!({"sku_id": sku_250, "quantity": 1}))
        .await;
    assert_eq!(st, 404, "nor put in a cart");

    let (st, _, err) = boss
        .post("delete_category", json!({"category_id": cat_id}))
        .await;
    assert_eq!(
        (st, err["code"].as_str()),
        (409, Some("invalid_state")),
        "{err}"
    );
    let (_, _, empty) = boss.post("save_category", json!({"name": "空分类"})).await;
    let (st, _, _) = boss
        .post("delete_category", json!({"category_id": empty["id"]}))
        .await;
    assert_eq!(st, 200);
    let (_, _, cats) = boss.post("list_categories", json!({})).await;
    assert!(cats
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["name"] != "空分类"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clerks_adjusting_one_stock_add_up_and_it_never_goes_below_zero() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    accounts::add(&shop.pool, "clerk2", Role::Staff, PASSWORD)
        .await
        .unwrap();
    let a = std::sync::Arc::new(signed_in(&shop, "clerk").await);
    let b = std::sync::Arc::new(signed_in(&shop, "clerk2").await);
    let sku = 17; // the black mug, stock 5
    assert_eq!(shop.stock(sku).await, 5);
    let adjustments: Vec<_> = (0..20)
        .map(|i| {
            let c = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                c.post(
                    "adjust_stock",
                    json!({"sku_id": sku, "delta": 1, "reason": "到货"}),
                )
                .await
                .0
            })
        })
        .collect();
    for r in adjustments {
        assert_eq!(r.await.unwrap(), 200);
    }
    assert_eq!(shop.stock(sku).await, 25, "20 concurrent +1s add up");
    let (st, _, err) = a
        .post(
            "adjust_stock",
            json!({"sku_id": sku, "delta": -26, "reason": "盘点"}),
        )
        .await;
    assert_eq!(st, 400, "{err}");
    assert_eq!(shop.stock(sku).await, 25);
    let (st, _, _) = a
        .post("adjust_stock", json!({"sku_id": sku, "delta": -1}))
        .await;
    assert_eq!(st, 400, "a reason is required");
    let (st, _, set) = b
        .post(
            "adjust_stock",
            json!({"sku_id": sku, "set": 2, "reason": "盘点"}),
        )
        .await;
    assert_eq!((st, set["stock"].as_i64()), (200, Some(2)), "{set}");
    let (_, _, low) = a.post("low_stock", json!({"threshold": 2})).await;
    assert!(
        low.as_array().unwrap().iter().any(|l| l["sku_id"] == sku),
        "{low}"
    );
    let (_, _, log) = signed_in(&shop, "boss")
        .await
        .post("audit_log", json!({}))
        .await;
    let last = &log[0];
    assert_eq!(last["action"], "adjust_stock");
    assert_eq!(last["detail"]["stock"], json!([25, 2]));
    assert_eq!(last["detail"]["reason"], "盘点");
}

// ------------------------------------------------------------------ after-sales (售后)

async fn refund_states(shop: &TestShop, order_id: i64) -> Vec<(String, i64, bool)> {
    server::sql!(&shop.pool, e => sqlx::query_as(
        "SELECT status, amount_fen, restock FROM refunds WHERE order_id = $1 ORDER BY id",
    )
    .bind(order_id)
    .fetch_all(e).await)
    .unwrap()
}

#[tokio::test]
async fn a_shopper_asks_for_a_refund_the_owner_approves_it_and_the_money_goes_back_once() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let stock_before = shop.stock(1).await;
    let (shopper, id, no) = paid_order(&shop, 0, &[(1, 2)]).await;
    assert_eq!(shop.stock(1).await, stock_before - 2);
    let total = shop.price(1).await * 2;

    // Checked: a return of goods that never left, no reason, someone else's order.
    let (st, err) = shopper
        .api(
            "request_aftersale",
            json!({"order_id": id, "kind": "return_refund", "reason": "不想要了"}),
        )
        .await;
    assert_eq!(st, 400, "{err}");
    assert_eq!(err["fields"][0]["field"], "kind");
    let (st, err) = shopper
        .api(
            "request_aftersale",
            json!({"order_id": id, "kind": "refund_only", "reason": " "}),
        )
        .await;
    assert_eq!(st, 400, "{err}");
    assert_eq!(err["fields"][0]["field"], "reason");
    let stranger = shop.wechat_shopper(1).await;
    let (st, _) = stranger
        .api(
            "request_aftersale",
            json!({"order_id": id, "kind": "refund_only", "reason": "不想要了"}),
        )
        .await;
    assert_eq!(st, 404);

    let (st, asked) = shopper
        .api(
            "request_aftersale",
            json!({"order_id": id, "kind": "refund_only", "reason": "不想要了", "note": "拍错了规格"}),
        )
        .await;
    assert_eq!(st, 200, "{asked}");
    assert_eq!(asked["status"], "pending");
    let aftersale_id = asked["aftersale_id"].as_i64().unwrap();
    let (st, err) = shopper
        .api(
            "request_aftersale",
            json!({"order_id": id, "kind": "refund_only", "reason": "其他"}),
        )
        .await;
    assert_eq!(st, 409, "one open request per order: {err}");

    // The clerk sees it, cannot ship past it, cannot approve it, and must say why to refuse.
    let clerk = signed_in(&shop, "clerk").await;
    let (st, _, list) = clerk
        .post("list_aftersales", json!({"status": "pending"}))
        .await;
    assert_eq!(st, 200, "{list}");
    let list = list["aftersales"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["order_no"], no.as_str());
    assert_eq!(list[0]["note"], "拍错了规格");
    let (st, _, err) = clerk
        .post(
            "ship_order",
            json!({"order_id": id, "carrier": "中通", "tracking_no": "ZT0009"}),
        )
        .await;
    assert_eq!(st, 409, "not while the request waits: {err}");
    let (st, _, _) = clerk
        .post(
            "decide_aftersale",
            json!({"aftersale_id": aftersale_id, "approve": true}),
        )
        .await;
    assert_eq!(st, 403, "staff may not send money back");
    let (st, _, err) = clerk
        .post(
            "decide_aftersale",
            json!({"aftersale_id": aftersale_id, "approve": false}),
        )
        .await;
    assert_eq!(st, 400, "{err}");
    assert_eq!(err["fields"][0]["field"], "reason");
    assert!(shop.sandbox.refunds(&no).is_empty());

    // The owner approves: everything paid goes back, the goods (never shipped) back on the shelf.
    let boss = signed_in(&shop, "boss").await;
    let (st, _, done) = boss
        .post(
            "decide_aftersale",
            json!({"aftersale_id": aftersale_id, "approve": true}),
        )
        .await;
    assert_eq!(st, 200, "{done}");
    assert_eq!(done["status"], "approved");
    assert_eq!(done["refund_fen"], total);
    let (st, _, again) = boss
        .post(
            "decide_aftersale",
            json!({"aftersale_id": aftersale_id, "approve": true}),
        )
        .await;
    assert_eq!(st, 409, "{again}");
    assert_eq!(shop.sandbox.refunds(&no).len(), 1, "one refund at WeChat");
    assert!(
        wait_for(|| async {
            refund_states(&shop, id).await == vec![("succeeded".to_string(), total, true)]
        })
        .await,
        "{:?}",
        refund_states(&shop, id).await
    );
    assert!(wait_for(|| async { shop.stock(1).await == stock_before }).await);

    // The shopper sees every step.
    let (st, order) = shopper.api("get_order", json!({"order_id": id})).await;
    assert_eq!(st, 200);
    assert_eq!(order["aftersale"]["status"], "approved");
    assert_eq!(order["aftersale"]["refund_fen"], total);
    assert_eq!(order["status"], "refunded");
    assert_eq!(order["refunds"][0]["state"], "succeeded");

    let (_, _, log) = boss.post("audit_log", json!({})).await;
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["aftersale_refund", "decide_aftersale"], "{log}");
}

#[tokio::test]
async fn a_return_waits_for_the_goods_and_a_refusal_reaches_the_shopper() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let boss = signed_in(&shop, "boss").await;
    let clerk = signed_in(&shop, "clerk").await;
    let ship = |id: i64, n: u32| json!({"order_id": id, "carrier": "顺丰", "tracking_no": format!("SF{n:06}")});

    // 退货退款 on a shipped order.
    let stock_before = shop.stock(2).await;
    let (shopper, id, no) = paid_order(&shop, 0, &[(2, 1)]).await;
    assert_eq!(clerk.post("ship_order", ship(id, 1)).await.0, 200);
    let (st, asked) = shopper
        .api(
            "request_aftersale",
            json!({"order_id": id, "kind": "return_refund", "reason": "商品破损或有瑕疵"}),
        )
        .await;
    assert_eq!(st, 200, "{asked}");
    let aftersale_id = asked["aftersale_id"].as_i64().unwrap();
    let (st, _, v) = boss
        .post(
            "decide_aftersale",
            json!({"aftersale_id": aftersale_id, "approve": true, "reason": "请寄回：深圳市南山区科技园 1 号"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["status"], "awaiting_return");
    assert!(
        shop.sandbox.refunds(&no).is_empty(),
        "no money before the goods"
    );
    let (_, order) = shopper.api("get_order", json!({"order_id": id})).await;
    assert_eq!(order["aftersale"]["status"], "awaiting_return");
    assert_eq!(
        order["aftersale"]["decision_reason"],
        "请寄回：深圳市南山区科技园 1 号"
    );
    // A parcel on its way back does not complete by itself.
    server::sql!(&shop.pool, e => sqlx::query("UPDATE orders SET shipped_at = shipped_at - 11 * 86400 WHERE id = $1")
        .bind(id)
        .execute(e).await.map(server::db::Done::from))
        .unwrap();
    shop.sweeper.run_once().await.unwrap();
    assert_eq!(shop.order_row(id).await.0, "shipped");
    assert_eq!(
        clerk
            .post("receive_return", json!({"aftersale_id": aftersale_id}))
            .await
            .0,
        403
    );
    let (st, _, v) = boss
        .post("receive_return", json!({"aftersale_id": aftersale_id}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["status"], "approved");
    assert_eq!(shop.sandbox.refunds(&no).len(), 1);
    assert!(
        wait_for(|| async { shop.stock(2).await == stock_before }).await,
        "the returned goods are back"
    );
    let (st, _, _) = boss
        .post("receive_return", json!({"aftersale_id": aftersale_id}))
        .await;
    assert_eq!(st, 409);

    // 仅退款 refused, with the reason the shopper reads; they may ask again, three times in all.
    let (shopper, id, no) = paid_order(&shop, 0, &[(1, 1)]).await;
    assert_eq!(clerk.post("ship_order", ship(id, 2)).await.0, 200);
    for round in 0..3 {
        let (st, asked) = shopper
            .api(
                "request_aftersale",
                json!({"order_id": id, "kind": "refund_only", "reason": "长时间未收到货"}),
            )
            .await;
        assert_eq!(st, 200, "round {round}: {asked}");
        let (st, _, v) = clerk
            .post(
                "decide_aftersale",
                json!({"aftersale_id": asked["aftersale_id"], "approve": false, "reason": "物流显示已签收"}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        let (_, order) = shopper.api("get_order", json!({"order_id": id})).await;
        assert_eq!(order["aftersale"]["status"], "refused");
        assert_eq!(order["aftersale"]["decision_reason"], "物流显示已签收");
    }
    let (st, err) = shopper
        .api(
            "request_aftersale",
            json!({"order_id": id, "kind": "refund_only", "reason": "其他"}),
        )
        .await;
    assert_eq!(st, 409, "{err}");
    assert!(shop.sandbox.refunds(&no).is_empty());
}

#[tokio::test]
async fn an_approval_cut_off_before_or_after_its_refund_is_retried_without_a_second_refund() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let boss = signed_in(&shop, "boss").await;
    let (shopper, id, no) = paid_order(&shop, 0, &[(1, 1)]).await;
    let (_, asked) = shopper
        .api(
            "request_aftersale",
            json!({"order_id": id, "kind": "refund_only", "reason": "不想要了"}),
        )
        .await;
    let aftersale_id = asked["aftersale_id"].as_i64().unwrap();
    let total = shop.price(1).await;
    let set = |status: &'static str, claimed_at: Option<i64>| {
        let pool = shop.pool.clone();
        async move {
            server::sql!(&pool, e => sqlx::query(
                "UPDATE aftersales SET status = $1, refund_fen = $2, restock = FALSE, out_refund_no = NULL, \
                 refund_claimed_at = $3 WHERE id = $4",
            )
            .bind(status)
            .bind(total)
            .bind(claimed_at)
            .bind(aftersale_id)
            .execute(e).await.map(server::db::Done::from))
            .unwrap();
        }
    };
    // Claimed, then the process died before WeChat was asked: while its claim is fresh a
    // second attempt waits, after a minute it takes over.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    set("refunding", Some(now)).await;
    let (st, _, busy) = boss
        .post(
            "decide_aftersale",
            json!({"aftersale_id": aftersale_id, "approve": true}),
        )
        .await;
    assert_eq!(st, 409, "{busy}");
    assert!(shop.sandbox.refunds(&no).is_empty());
    set("refunding", Some(now - 61)).await;
    let (_, order) = shopper.api("get_order", json!({"order_id": id})).await;
    assert_eq!(order["aftersale"]["status"], "refunding");
    let (st, _, first) = boss
        .post(
            "decide_aftersale",
            json!({"aftersale_id": aftersale_id, "approve": true}),
        )
        .await;
    assert_eq!(st, 200, "{first}");
    assert_eq!(shop.sandbox.refunds(&no).len(), 1);
    // Refunded, then the process died before the request was marked.
    set("refunding", None).await;
    let (st, _, second) = boss
        .post(
            "decide_aftersale",
            json!({"aftersale_id": aftersale_id, "approve": true}),
        )
        .await;
    assert_eq!(st, 200, "{second}");
    assert_eq!(second["out_refund_no"], first["out_refund_no"]);
    assert_eq!(shop.sandbox.refunds(&no).len(), 1, "still one refund");
    assert_eq!(refund_states(&shop, id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_owners_approving_at_once_send_one_refund() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    accounts::add(&shop.pool, "boss2", Role::Owner, PASSWORD)
        .await
        .unwrap();
    let (shopper, id, no) = paid_order(&shop, 0, &[(1, 1)]).await;
    let (_, asked) = shopper
        .api(
            "request_aftersale",
            json!({"order_id": id, "kind": "refund_only", "reason": "不想要了"}),
        )
        .await;
    let body = json!({"aftersale_id": asked["aftersale_id"], "approve": true});
    let a = signed_in(&shop, "boss").await;
    let b = signed_in(&shop, "boss2").await;
    let (ra, rb) = tokio::join!(
        a.post("decide_aftersale", body.clone()),
        b.post("decide_aftersale", body.clone())
    );
    let mut codes = [ra.0, rb.0];
    codes.sort();
    assert_eq!(codes, [200, 409], "{} / {}", ra.2, rb.2);
    assert_eq!(shop.sandbox.refunds(&no).len(), 1);
}

// ------------------------------------------------------------------ export and figures

#[tokio::test]
async fn the_csv_export_has_a_bom_the_filtered_orders_and_no_formulas() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let (_, _, paid_no) = paid_order(&shop, 0, &[(1, 2), (2, 1)]).await;
    let s = shop.wechat_shopper(1).await;
    let mut body = order_body(&[(2, 1)]);
    body["remark"] = json!("=HYPERLINK(\"http://evil.example\",\"点我\")");
    let (st, created) = s.api("create_order", body).await;
    assert_eq!(st, 200, "{created}");

    let clerk = signed_in(&shop, "clerk").await;
    let get = |query: &'static str| {
        let http = clerk.http.clone();
        let url = format!("{}/admin/api/export_orders.csv{query}", shop.base);
        async move { http.get(url).send().await.unwrap() }
    };
    let res = get("").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"orders-"));
    let bytes = res.bytes().await.unwrap();
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBF"),
        "a byte-order mark for Excel"
    );
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    assert_eq!(&reader.headers().unwrap()[0], "订单编号");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2, "one row per order, lines joined: {rows:?}");
    let paid_row = rows
        .iter()
        .find(|r| r[0].trim() == paid_no)
        .expect("the paid order");
    assert_eq!(&paid_row[1], "已支付");
    assert_eq!(
        &paid_row[4],
        &app::model::format_fen(shop.price(1).await * 2 + shop.price(2).await)
    );
    assert!(
        paid_row[6].contains("×2") && paid_row[6].contains('；'),
        "{:?}",
        &paid_row[6]
    );
    let unpaid_row = rows.iter().find(|r| r[0].trim() != paid_no).unwrap();
    assert!(
        unpaid_row[11].starts_with("'="),
        "a formula is defused: {:?}",
        &unpaid_row[11]
    );

    let only_paid = get("?status=paid").await.bytes().await.unwrap();
    assert_eq!(
        csv::Reader::from_reader(&only_paid[3..]).records().count(),
        1
    );
    assert_eq!(get("?status=nonsense").await.status(), 400);
    // Nobody signed in, or another site's page: nothing.
    let anon = reqwest::get(format!("{}/admin/api/export_orders.csv", shop.base))
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    let foreign = clerk
        .http
        .get(format!("{}/admin/api/export_orders.csv", shop.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
}

#[tokio::test]
async fn the_dashboard_counts_todays_sales_refunds_and_what_waits() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let (shopper, a, _) = paid_order(&shop, 0, &[(1, 2)]).await;
    let (_, _b, _) = paid_order(&shop, 0, &[(3, 1)]).await;
    let s = shop.wechat_shopper(1).await;
    let (st, _) = s.api("create_order", order_body(&[(2, 1)])).await;
    assert_eq!(st, 200);
    let (p1, p2) = (shop.price(1).await, shop.price(3).await);
    let sales = 2 * p1 + p2;

    let clerk = signed_in(&shop, "clerk").await;
    let (st, _, d) = clerk.post("dashboard", json!({})).await;
    assert_eq!(st, 200, "{d}");
    for window in ["today", "days_7", "days_30"] {
        assert_eq!(d[window]["paid_orders"], 2, "{window}: {d}");
        assert_eq!(d[window]["sales_fen"], sales);
        assert_eq!(d[window]["average_fen"], (sales + 1) / 2);
        assert_eq!(d[window]["created_orders"], 3);
        assert_eq!(d[window]["paid_share_permille"], 667);
        assert_eq!(d[window]["refunds_fen"], 0);
    }
    let daily = d["daily"].as_array().unwrap();
    assert_eq!(daily.len(), 30);
    assert_eq!(daily[29]["sales_fen"], sales, "today is the last bar");
    assert_eq!(
        daily[..29]
            .iter()
            .map(|x| x["sales_fen"].as_i64().unwrap())
            .sum::<i64>(),
        0
    );
    let svg = d["chart_svg"].as_str().unwrap();
    assert_eq!(svg.matches("<rect").count(), 30);
    assert_eq!(
        d["top_products"][0]["product_id"],
        shop_product_of(&shop, 1).await
    );
    assert_eq!(d["top_products"][0]["quantity"], 2);
    assert_eq!(d["orders_to_ship"], 2);
    assert_eq!(d["aftersales_waiting"], 0);

    // A request waits, then the refund it brings counts as today's refund.
    let (_, asked) = shopper
        .api(
            "request_aftersale",
            json!({"order_id": a, "kind": "refund_only", "reason": "不想要了"}),
        )
        .await;
    let (_, _, d) = clerk.post("dashboard", json!({})).await;
    assert_eq!(d["aftersales_waiting"], 1);
    let boss = signed_in(&shop, "boss").await;
    let (st, _, _) = boss
        .post(
            "decide_aftersale",
            json!({"aftersale_id": asked["aftersale_id"], "approve": true}),
        )
        .await;
    assert_eq!(st, 200);
    assert!(
        wait_for(|| async {
            refund_states(&shop, a)
                .await
                .first()
                .is_some_and(|r| r.0 == "succeeded")
        })
        .await
    );
    let (_, _, d) = clerk.post("dashboard", json!({})).await;
    assert_eq!(d["today"]["refunds_fen"], 2 * p1);
    assert_eq!(
        d["today"]["paid_orders"], 2,
        "a refunded order was still paid today"
    );
    assert_eq!(d["orders_to_ship"], 1, "the refunded order no longer waits");
    assert_eq!(d["aftersales_waiting"], 0);
    assert_eq!(
        Console::new(&shop).post("dashboard", json!({})).await.0,
        401
    );
}

async fn shop_product_of(shop: &TestShop, sku_id: i64) -> i64 {
    server::sql!(&shop.pool, e => sqlx::query_scalar("SELECT product_id FROM skus WHERE id = $1")
        .bind(sku_id)
        .fetch_one(e).await)
    .unwrap()
}

// ------------------------------------------------------------------ pictures

fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    }));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

impl Console {
    async fn upload(&self, bytes: Vec<u8>, file_name: &str, mime: &str) -> (u16, Value) {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(file_name.to_string())
            .mime_str(mime)
            .unwrap();
        let form = reqwest::multipart::Form::new().part("file", part);
        let res = self
            .http
            .post(format!("{}/admin/api/upload_image", self.base))
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn an_uploaded_picture_is_sniffed_resized_served_for_a_year_and_shown_to_shoppers() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let clerk = signed_in(&shop, "clerk").await;
    let picture = png(1200, 900);
    let (st, up) = clerk
        .upload(picture.clone(), "photo.png", "image/png")
        .await;
    assert_eq!(st, 200, "{up}");
    let path = up["path"].as_str().unwrap().to_string();
    assert!(
        path.starts_with("/uploads/") && path.ends_with(".jpg"),
        "{path}"
    );
    assert_eq!(up["sizes"].as_array().unwrap().len(), 2);
    let (_, again) = clerk.upload(picture, "other-name.png", "image/png").await;
    assert_eq!(again["path"], path.as_str(), "the same picture is one file");

    for (entry, side) in up["sizes"].as_array().unwrap().iter().zip([800, 240]) {
        let res = reqwest::get(format!("{}{}", shop.base, entry["path"].as_str().unwrap()))
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "image/jpeg");
        assert_eq!(
            res.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let img = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
        assert_eq!((img.width(), img.height()), (side, side));
    }

    // The product takes it, and the shopper's page shows it.
    let (_, _, cats) = clerk.post("list_categories", json!({})).await;
    let mut product = two_sku_product(cats[0]["id"].as_i64().unwrap());
    product["images"] = json!([path]);
    let boss = signed_in(&shop, "boss").await;
    let (st, _, saved) = boss.post("save_product", product).await;
    assert_eq!(st, 200, "{saved}");
    let (_, page) = shop
        .shopper()
        .get(&format!("/product/{}", saved["id"]))
        .await;
    assert!(page.contains(&path), "the product page shows the upload");
}

#[tokio::test]
async fn uploads_that_are_not_pictures_too_large_or_from_elsewhere_are_refused() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let clerk = signed_in(&shop, "clerk").await;
    // The name and the type say PNG; the bytes say otherwise.
    for body in [
        b"#!/bin/sh\necho hello\n".to_vec(),
        b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>".to_vec(),
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec(),
    ] {
        let (st, err) = clerk.upload(body, "photo.png", "image/png").await;
        assert_eq!(st, 400, "{err}");
        assert_eq!(err["code"], "validation");
        assert_eq!(err["fields"][0]["field"], "file");
    }
    let (st, err) = clerk.upload(png(50, 50), "tiny.png", "image/png").await;
    assert_eq!(st, 400, "{err}");
    // 20 MB: refused without being stored.
    let (st, err) = clerk
        .upload(vec![0x89; 20 * 1024 * 1024], "big.png", "image/png")
        .await;
    assert_eq!(st, 413, "{err}");
    let stored = std::fs::read_dir(shop.data_dir().join("uploads"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(stored, 0, "nothing refused was written");
    // JSON is not an upload; nobody signed in, or another site's page: nothing.
    let (st, _, _) = clerk.post("upload_image", json!({"file": "x"})).await;
    assert_eq!(st, 415);
    let (st, _) = Console::new(&shop)
        .upload(png(300, 300), "p.png", "image/png")
        .await;
    assert_eq!(st, 401);
    let part = reqwest::multipart::Part::bytes(png(300, 300)).file_name("p.png");
    let res = clerk
        .http
        .post(format!("{}/admin/api/upload_image", shop.base))
        .header("origin", "https://evil.example")
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

// ------------------------------------------------------------------ the console's pages

impl Console {
    /// Posts a console form as a browser does (urlencoded, following the 303); the final page.
    async fn form(&self, name: &str, fields: &[(&str, &str)]) -> (String, String) {
        let res = self
            .http
            .post(format!("{}/admin/form/{name}", self.base))
            .header("origin", self.base.clone())
            .form(fields)
            .send()
            .await
            .unwrap();
        let url = res.url().path().to_string();
        (url, res.text().await.unwrap())
    }

    /// A page's status, final path (after redirects) and body.
    async fn get(&self, path: &str) -> (u16, String, String) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let url = res.url().path().to_string();
        (status, url, res.text().await.unwrap())
    }

    async fn page(&self, path: &str) -> (String, reqwest::header::HeaderMap, String) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let url = res.url().path().to_string();
        let headers = res.headers().clone();
        (url, headers, res.text().await.unwrap())
    }
}

#[tokio::test]
async fn the_console_pages_sign_in_ship_and_decide_after_sales_with_plain_forms() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let c = Console::new(&shop);
    let (url, _, _) = c.page("/admin").await;
    assert_eq!(url, "/admin/login", "signed out: the login page");

    // A wrong password: back to the login page with the message, once.
    let (url, page) = c
        .form(
            "login",
            &[
                ("username", "boss"),
                ("password", "wrong password!"),
                ("next", "/admin"),
                ("back", "/admin/login"),
            ],
        )
        .await;
    assert_eq!(url, "/admin/login");
    assert!(page.contains("用户名或密码错误"), "{page}");
    let (_, _, again) = c.page("/admin/login").await;
    assert!(!again.contains("用户名或密码错误"), "shown once");

    let (url, page) = c
        .form(
            "login",
            &[
                ("username", "boss"),
                ("password", PASSWORD),
                ("next", "/admin"),
                ("back", "/admin/login"),
            ],
        )
        .await;
    assert_eq!(url, "/admin");
    assert!(page.contains("待发货 0") && page.contains("<svg"), "{page}");
    let (_, headers, _) = c.page("/admin").await;
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'none'"), "{csp}");
    assert!(!page.contains("<script"), "the console ships no script");

    // Orders: listed, shipped from the order page.
    let (shopper, id, no) = paid_order(&shop, 0, &[(1, 1)]).await;
    let (_, _, list) = c.page("/admin/orders?status=paid").await;
    assert!(list.contains(&no), "{list}");
    assert!(list.contains("/admin/api/export_orders.csv?status=paid"));
    let here = format!("/admin/orders/{id}");
    let (_, _, detail) = c.page(&here).await;
    assert!(
        detail.contains("data-testid=\"ship-form\"")
            && detail.contains("data-testid=\"refund-form\"")
    );
    assert!(
        detail.contains("data-testid=\"payment-events\""),
        "the payment log on the page"
    );
    let (_, _, api_view) = c.post("get_order", json!({"order_id": id})).await;
    let kinds: Vec<&str> = api_view["payment_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(!kinds.is_empty(), "{api_view}");
    assert!(api_view["transaction_id"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    let (url, page) = c
        .form(
            "ship_order",
            &[
                ("order_id", &id.to_string()),
                ("carrier", "顺丰"),
                ("tracking_no", "no"),
                ("next", &here),
            ],
        )
        .await;
    assert_eq!(url, here, "back to the form's page");
    assert!(
        page.contains("运单号为 4–40 位字母、数字或 -"),
        "the API's message: {page}"
    );
    let (url, page) = c
        .form(
            "ship_order",
            &[
                ("order_id", &id.to_string()),
                ("carrier", "顺丰"),
                ("tracking_no", "SF100200300"),
                ("next", &here),
            ],
        )
        .await;
    assert_eq!(url, here);
    assert!(
        page.contains("顺丰 SF100200300") && page.contains("已发货"),
        "{page}"
    );
    assert_eq!(shop.order_row(id).await.0, "shipped");

    // After-sales: the shopper asks, the owner approves from the list.
    let (st, asked) = shopper
        .api(
            "request_aftersale",
            json!({"order_id": id, "kind": "refund_only", "reason": "长时间未收到货"}),
        )
        .await;
    assert_eq!(st, 200, "{asked}");
    let (_, _, list) = c.page("/admin/aftersales?status=pending").await;
    assert!(
        list.contains(&no) && list.contains("长时间未收到货"),
        "{list}"
    );
    let aid = asked["aftersale_id"].to_string();
    let (_, page) = c
        .form(
            "decide_aftersale",
            &[
                ("aftersale_id", &aid),
                ("approve", "1"),
                ("next", "/admin/aftersales"),
            ],
        )
        .await;
    assert!(page.contains("商家已同意"), "{page}");
    assert_eq!(shop.sandbox.refunds(&no).len(), 1);

    // Staff see no refund form and cannot refund through one; another site's form does nothing.
    let clerk = Console::new(&shop);
    clerk
        .form(
            "login",
            &[
                ("username", "clerk"),
                ("password", PASSWORD),
                ("next", "/admin"),
            ],
        )
        .await;
    let (_, _, detail) = clerk.page(&here).await;
    assert!(!detail.contains("data-testid=\"refund-form\""));
    let (_, page) = clerk
        .form(
            "refund_order",
            &[
                ("order_id", &id.to_string()),
                ("reason", "x"),
                ("next", &here),
                ("back", &here),
            ],
        )
        .await;
    assert!(page.contains("只有店主可以退款"), "{page}");
    let res = clerk
        .http
        .post(format!("{}/admin/form/ship_order", shop.base))
        .header("origin", "https://evil.example")
        .form(&[("order_id", id.to_string())])
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains("请求来源不被允许"));
    // An open redirect is not: `next` elsewhere falls back to the console.
    let (url, _) = c.form("logout", &[("next", "https://evil.example/")]).await;
    assert!(url.starts_with("/admin"), "{url}");
    let (url, _, _) = c.page("/admin/orders").await;
    assert_eq!(url, "/admin/login", "signed out");
}

#[tokio::test]
async fn before_shipping_the_address_is_corrected_with_a_note_and_audited() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let (shopper, id, _) = paid_order(&shop, 0, &[(1, 1)]).await;
    let clerk = signed_in(&shop, "clerk").await;
    let body = |phone: &str| {
        json!({"order_id": id, "name": "李四", "phone": phone, "region": "浙江省 杭州市 西湖区",
               "detail": "文三路 100 号 2 单元", "note": "顾客来电改地址"})
    };
    let (st, _, err) = clerk.post("update_address", body("12345")).await;
    assert_eq!(st, 400, "{err}");
    assert_eq!(err["fields"][0]["field"], "phone");
    let (st, _, v) = clerk.post("update_address", body("13900139000")).await;
    assert_eq!(st, 200, "{v}");
    let (_, order) = shopper.api("get_order", json!({"order_id": id})).await;
    assert_eq!(order["address"]["name"], "李四");
    assert_eq!(order["address"]["detail"], "文三路 100 号 2 单元");
    let (_, _, admin_view) = clerk.post("get_order", json!({"order_id": id})).await;
    assert_eq!(admin_view["merchant_note"], "顾客来电改地址");
    assert!(
        order.get("merchant_note").is_none(),
        "the note is the merchant's own"
    );
    let boss = signed_in(&shop, "boss").await;
    let (_, _, log) = boss.post("audit_log", json!({})).await;
    assert_eq!(log[0]["action"], "update_address");
    assert_eq!(log[0]["detail"]["before"]["name"], "张三");
    assert_eq!(log[0]["detail"]["after"]["name"], "李四");
    let (st, _, _) = clerk
        .post(
            "ship_order",
            json!({"order_id": id, "carrier": "中通", "tracking_no": "ZT1234"}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _, err) = clerk.post("update_address", body("13900139000")).await;
    assert_eq!(st, 409, "after shipping: {err}");
}

#[tokio::test]
async fn the_catalogue_pages_create_a_product_with_a_picture_and_adjust_its_stock() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let c = Console::new(&shop);
    c.form(
        "login",
        &[
            ("username", "boss"),
            ("password", PASSWORD),
            ("next", "/admin"),
        ],
    )
    .await;
    let (_, _, page) = c.page("/admin/products/new").await;
    assert!(page.contains("data-testid=\"product-form\""), "{page}");

    // The picture, through the page's upload form: back with ?image=… in the product form.
    let part = reqwest::multipart::Part::bytes(png(600, 600))
        .file_name("bean.png")
        .mime_str("image/png")
        .unwrap();
    let res = c
        .http
        .post(format!(
            "{}/admin/form/upload_image?back=/admin/products/new",
            shop.base
        ))
        .header("origin", shop.base.clone())
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(res.url().path(), "/admin/products/new");
    let image = url::form_urlencoded::parse(res.url().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "image")
        .map(|(_, v)| v.into_owned())
        .expect("the uploaded path");
    assert!(
        res.text().await.unwrap().contains(&image),
        "the form lists the picture"
    );

    let (_, _, cats) = c.post("list_categories", json!({})).await;
    let category = cats[0]["id"].to_string();
    let fields = [
        ("name", "手冲咖啡豆"),
        ("category_id", category.as_str()),
        ("description", "浅烘"),
        ("images", image.as_str()),
        ("on_sale", "1"),
        ("sku_id", ""),
        ("sku_name", "200g"),
        ("sku_price", "49.90"),
        ("sku_stock", "12"),
        ("sku_id", ""),
        ("sku_name", "500g"),
        ("sku_price", "99"),
        ("sku_stock", "5"),
        ("back", "/admin/products/new"),
    ];
    let (url, page) = c.form("save_product", &fields).await;
    assert!(
        url.starts_with("/admin/products/") && url != "/admin/products/new",
        "{url}"
    );
    assert!(page.contains("200g") && page.contains("49.90"), "{page}");
    let product_id: i64 = url.rsplit('/').next().unwrap().parse().unwrap();
    let (_, _, products) = c.post("list_products", json!({"q": "手冲"})).await;
    let p = &products[0];
    assert_eq!(p["id"], product_id);
    assert_eq!(p["images"][0], image.as_str());
    assert_eq!(p["skus"][0]["price_fen"], 4990);
    assert_eq!(p["skus"][1]["price_fen"], 9900);
    // A price with three decimals is refused on the page, nothing saved.
    let mut bad = fields.to_vec();
    bad[7] = ("sku_price", "49.999");
    let (url, page) = c.form("save_product", &bad).await;
    assert_eq!(url, "/admin/products/new");
    assert!(page.contains("价格须为元"), "{page}");

    let sku = p["skus"][0]["id"].to_string();
    let here = format!("/admin/products/{product_id}");
    let (_, page) = c
        .form(
            "adjust_stock",
            &[
                ("sku_id", sku.as_str()),
                ("delta", "-2"),
                ("reason", "破损"),
                ("next", here.as_str()),
            ],
        )
        .await;
    assert!(page.contains("库存 10"), "{page}");
    let (_, _, audit) = c.page("/admin/audit").await;
    assert!(
        audit.contains("adjust_stock")
            && audit.contains("save_product")
            && audit.contains("upload_image")
    );
    // The shopper's page shows the new product with its picture.
    let (_, shop_page) = shop.shopper().get(&format!("/product/{product_id}")).await;
    assert!(shop_page.contains("手冲咖啡豆") && shop_page.contains(&image));
}

// ------------------------------------------------------------------ WeChat launch tools

#[tokio::test]
async fn a_products_qr_codes_and_the_setup_doctor_in_the_console() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let clerk = signed_in(&shop, "clerk").await;
    let (st, _, codes) = clerk.post("product_qrcode", json!({"product_id": 3})).await;
    assert_eq!(st, 200, "{codes}");
    assert_eq!(codes["plain"]["url"], format!("{}/product/3", shop.base));
    assert!(codes["plain"]["svg"].as_str().unwrap().contains("<svg"));
    assert!(codes.get("follow").is_none());
    let (st, _, codes) = clerk
        .post("product_qrcode", json!({"product_id": 3, "follow": true}))
        .await;
    assert_eq!(st, 200, "{codes}");
    assert_eq!(codes["follow"]["scene"], "product:3");
    let url = codes["follow"]["url"].as_str().unwrap();
    assert!(!url.is_empty());
    let (st, _, _) = clerk
        .post("product_qrcode", json!({"product_id": 99999}))
        .await;
    assert_eq!(st, 404);

    let (st, _, _) = clerk.post("doctor", json!({})).await;
    assert_eq!(st, 403, "the doctor is the owner's");
    let boss = signed_in(&shop, "boss").await;
    let (st, _, report) = boss.post("doctor", json!({})).await;
    assert_eq!(st, 200, "{report}");
    let checks = report["checks"].as_array().unwrap();
    assert!(checks.len() >= 5, "{report}");
    assert!(checks
        .iter()
        .all(|c| ["ok", "warn", "fail"].contains(&c["status"].as_str().unwrap())));

    // The pages.
    let c = Console::new(&shop);
    c.form(
        "login",
        &[
            ("username", "boss"),
            ("password", PASSWORD),
            ("next", "/admin"),
        ],
    )
    .await;
    let (_, _, page) = c.page("/admin/products/3").await;
    assert!(
        page.contains("data-testid=\"qrcodes\"") && page.contains("<svg"),
        "{page}"
    );
    assert!(!page.contains("data-testid=\"follow-qr\""));
    let (_, _, page) = c.page("/admin/products/3?follow=1").await;
    assert!(page.contains("data-testid=\"follow-qr\""), "{page}");
    let (_, _, page) = c.page("/admin/doctor").await;
    assert_eq!(
        page.matches("data-testid=\"check\"").count(),
        checks.len(),
        "{page}"
    );
}

/// The text of the element marked `data-testid="{id}"` (up to its first child tag).
fn testid_text(page: &str, id: &str) -> String {
    let at = page
        .find(&format!("data-testid=\"{id}\""))
        .unwrap_or_else(|| panic!("no {id} in {page}"));
    let rest = &page[at..];
    let rest = &rest[rest.find('>').unwrap() + 1..];
    rest[..rest.find('<').unwrap()].to_string()
}

#[tokio::test]
async fn printable_qr_cards_carry_the_product_or_coupon_and_the_code_of_its_url() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let anon = Console::new(&shop);
    for path in ["/admin/products/1/print", "/admin/coupons/1/print"] {
        let (_, url, _) = anon.get(path).await;
        assert_eq!(url, "/admin/login", "{path} signed out: the login page");
    }

    let boss = signed_in(&shop, "boss").await;
    let (_, _, cat) = boss.post("save_category", json!({"name": "咖啡"})).await;
    let (st, _, p) = boss
        .post("save_product", two_sku_product(cat["id"].as_i64().unwrap()))
        .await;
    assert_eq!(st, 200, "{p}");
    let pid = p["id"].as_i64().unwrap();

    // Staff print too. The product's card: its name, its prices in yuan, the code of its page.
    let clerk = signed_in(&shop, "clerk").await;
    let path = format!("/admin/products/{pid}/print");
    let (st, _, page) = clerk.get(&path).await;
    assert_eq!(st, 200, "{page}");
    assert_eq!(testid_text(&page, "print-title"), "云南小粒咖啡豆");
    assert_eq!(testid_text(&page, "print-headline"), "¥59.00 – ¥99.00");
    assert!(page.contains("微信扫一扫 购买"), "{page}");
    assert!(page.contains("用浏览器打印 (Ctrl+P)"), "{page}");
    assert!(
        page.contains("console-print"),
        "the print stylesheet's hook"
    );
    assert!(!page.contains("<script"), "no script");
    let product_url = format!("{}/product/{pid}", shop.base);
    assert_eq!(testid_text(&page, "print-url"), product_url);
    let code = server::qr::svg(&product_url, 240).unwrap();
    assert_ne!(
        code,
        server::qr::svg(&format!("{}/product/{}", shop.base, pid + 1), 240).unwrap(),
        "another URL draws another code"
    );
    assert!(
        page.contains(&code),
        "the code holds the product page's URL"
    );
    // Prices come from the database as they are now.
    server::sql!(&shop.pool, e => sqlx::query("UPDATE skus SET price_fen = 6050 WHERE id = $1")
        .bind(p["skus"][0]["id"].as_i64().unwrap())
        .execute(e).await.map(server::db::Done::from))
    .unwrap();
    let (_, _, page) = clerk.get(&path).await;
    assert_eq!(testid_text(&page, "print-headline"), "¥60.50 – ¥99.00");
    // The product page links to it.
    let (_, _, edit) = clerk.get(&format!("/admin/products/{pid}")).await;
    assert!(edit.contains(&format!("href=\"{path}\"")), "{edit}");

    // The follow-first code: WeChat's URL for the parametric code, not the product page's.
    let (st, _, page) = clerk.get(&format!("{path}?follow=1")).await;
    assert_eq!(st, 200, "{page}");
    let url = testid_text(&page, "print-url");
    assert!(url.starts_with("http://weixin.qq.com/q/"), "{url}");
    assert!(page.contains(&server::qr::svg(&url, 240).unwrap()));
    assert!(page.contains("微信扫一扫 关注后购买"), "{page}");

    // Unknown ids: the console's 404.
    for path in [
        "/admin/products/99999/print",
        "/admin/products/abc/print",
        "/admin/coupons/99999/print",
    ] {
        let (st, _, page) = clerk.get(path).await;
        assert_eq!(st, 404, "{path}");
        assert!(page.contains("data-testid=\"not-found\""), "{page}");
    }

    // The coupon's card: title, rule, minimum spend, validity, and WeChat's QR_CARD code.
    let (st, _, c) = boss
        .post(
            "save_coupon",
            json!({"title": "新人券", "kind": "cash", "least_cost_fen": 5000,
                   "reduce_cost_fen": 1000, "quantity": 100, "days": 7}),
        )
        .await;
    assert_eq!(st, 200, "{c}");
    let path = format!("/admin/coupons/{}/print", c["coupon_id"]);
    let (st, _, page) = clerk.get(&path).await;
    assert_eq!(st, 200, "{page}");
    assert_eq!(testid_text(&page, "print-title"), "新人券");
    assert_eq!(testid_text(&page, "print-headline"), "满50减10");
    assert!(page.contains("满 ¥50.00 可用"), "{page}");
    assert!(page.contains("领取后 7 天内有效"), "{page}");
    assert!(page.contains("微信扫一扫 领取"), "{page}");
    let url = testid_text(&page, "print-url");
    assert_eq!(
        shop.sandbox.card_qr_by_url(&url).map(|(card, _)| card),
        Some(c["card_id"].as_str().unwrap().to_string()),
        "scanning {url} opens the coupon's card"
    );
    assert!(page.contains(&server::qr::svg(&url, 240).unwrap()));
    let (_, _, list) = clerk.get("/admin/coupons").await;
    assert!(list.contains(&format!("href=\"{path}\"")), "{list}");

    // A stopped coupon has no code to print.
    let (st, _, _) = boss
        .post("stop_coupon", json!({"coupon_id": c["coupon_id"]}))
        .await;
    assert_eq!(st, 200);
    let (st, _, page) = clerk.get(&path).await;
    assert_eq!(st, 409);
    assert!(page.contains("优惠券已停发"), "{page}");
}

#[tokio::test]
async fn the_order_page_refunds_by_line_and_restocks() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let stock_before = shop.stock(3).await;
    let (_, id, no) = paid_order(&shop, 0, &[(1, 1), (3, 2)]).await;
    let c = Console::new(&shop);
    c.form(
        "login",
        &[
            ("username", "boss"),
            ("password", PASSWORD),
            ("next", "/admin"),
        ],
    )
    .await;
    let here = format!("/admin/orders/{id}");
    let (_, _, page) = c.page(&here).await;
    assert!(page.contains("name=\"line_qty\""), "{page}");
    let (_, page) = c
        .form(
            "refund_order",
            &[
                ("order_id", id.to_string().as_str()),
                ("line_no", "1"),
                ("line_qty", ""),
                ("line_no", "2"),
                ("line_qty", "1"),
                ("restock", "1"),
                ("reason", "少发一件"),
                ("next", here.as_str()),
            ],
        )
        .await;
    assert!(!page.contains("data-testid=\"flash\""), "{page}");
    let refunds = shop.sandbox.refunds(&no);
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].refund, shop.price(3).await, "one unit of line 2");
    assert!(
        wait_for(|| async { shop.stock(3).await == stock_before - 1 }).await,
        "the refunded unit is back on the shelf"
    );
}

#[tokio::test]
async fn the_categories_page_adds_renames_reorders_and_deletes_only_empty_ones() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let c = Console::new(&shop);
    c.form(
        "login",
        &[
            ("username", "clerk"),
            ("password", PASSWORD),
            ("next", "/admin"),
        ],
    )
    .await;
    let (url, page) = c
        .form(
            "save_category",
            &[
                ("name", "咖啡"),
                ("sort", "0"),
                ("next", "/admin/categories"),
            ],
        )
        .await;
    assert_eq!(url, "/admin/categories");
    assert!(page.contains("value=\"咖啡\""), "{page}");
    let (_, _, cats) = c.post("list_categories", json!({})).await;
    let coffee = cats
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "咖啡")
        .unwrap()
        .clone();
    let names: Vec<&str> = cats
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    let at = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(
        at("咖啡") < at("零食饮品"),
        "sort 0 comes before sort 1: {names:?}"
    );
    let id = coffee["id"].to_string();
    let (_, page) = c
        .form(
            "save_category",
            &[
                ("id", id.as_str()),
                ("name", "精品咖啡"),
                ("sort", "99"),
                ("next", "/admin/categories"),
            ],
        )
        .await;
    assert!(page.contains("value=\"精品咖啡\""));
    let (_, _, cats) = c.post("list_categories", json!({})).await;
    assert_eq!(cats.as_array().unwrap().last().unwrap()["name"], "精品咖啡");
    // A category with products cannot go: the API's message comes back.
    let full = cats[0]["id"].to_string();
    let (_, page) = c
        .form(
            "delete_category",
            &[
                ("category_id", full.as_str()),
                ("next", "/admin/categories"),
            ],
        )
        .await;
    assert!(page.contains("data-testid=\"flash\""), "{page}");
    let (_, page) = c
        .form(
            "delete_category",
            &[("category_id", id.as_str()), ("next", "/admin/categories")],
        )
        .await;
    assert!(!page.contains("精品咖啡"), "{page}");
}

#[tokio::test]
async fn a_sku_ticked_for_removal_on_the_product_form_leaves_the_shop() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let c = Console::new(&shop);
    c.form(
        "login",
        &[
            ("username", "boss"),
            ("password", PASSWORD),
            ("next", "/admin"),
        ],
    )
    .await;
    let (_, _, products) = c.post("list_products", json!({})).await;
    // The demo's first product has two SKUs (1 and 2); SKU 1 is in an order, SKU 2 is not.
    let p = products[0].clone();
    assert_eq!(p["skus"].as_array().unwrap().len(), 2, "{p}");
    let _ = paid_order(&shop, 0, &[(1, 1)]).await;
    let id = p["id"].to_string();
    let category = p["category_id"].to_string();
    let images = p["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let price = |k: &Value| app::model::format_fen(k["price_fen"].as_i64().unwrap());
    let (s1, s2) = (p["skus"][0].clone(), p["skus"][1].clone());
    let (id1, id2) = (s1["id"].to_string(), s2["id"].to_string());
    let (n1, n2) = (
        s1["name"].as_str().unwrap().to_string(),
        s2["name"].as_str().unwrap().to_string(),
    );
    let (p1, p2) = (price(&s1), price(&s2));
    let fields = [
        ("id", id.as_str()),
        ("name", p["name"].as_str().unwrap()),
        ("category_id", category.as_str()),
        ("description", p["description"].as_str().unwrap()),
        ("images", images.as_str()),
        ("on_sale", "1"),
        ("sku_id", id1.as_str()),
        ("sku_name", n1.as_str()),
        ("sku_price", p1.as_str()),
        ("sku_stock", ""),
        ("sku_remove", id1.as_str()),
        ("sku_id", id2.as_str()),
        ("sku_name", n2.as_str()),
        ("sku_price", p2.as_str()),
        ("sku_stock", ""),
        ("sku_remove", id2.as_str()),
        ("sku_id", ""),
        ("sku_name", "尝鲜装"),
        ("sku_price", "9.90"),
        ("sku_stock", "3"),
    ];
    let (url, page) = c.form("save_product", &fields).await;
    assert_eq!(url, format!("/admin/products/{id}"), "{page}");
    let (_, _, after) = c.post("list_products", json!({})).await;
    let skus: Vec<&str> = after[0]["skus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(skus, ["尝鲜装"], "both old SKUs gone from the product");
    let retired: Option<i64> = server::sql!(&shop.pool, e => sqlx::query_scalar("SELECT retired_at FROM skus WHERE id = 1")
        .fetch_one(e).await)
    .unwrap();
    assert!(retired.is_some(), "the ordered SKU is retired, not deleted");
    let gone: i64 =
        server::sql!(&shop.pool, e => sqlx::query_scalar("SELECT COUNT(*) FROM skus WHERE id = 2")
        .fetch_one(e).await)
        .unwrap();
    assert_eq!(gone, 0, "the never-ordered SKU is deleted");
}

// ------------------------------------------------------------------ accounts in the console

#[tokio::test]
async fn the_owner_manages_accounts_in_the_console_and_staff_cannot() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let boss = signed_in(&shop, "boss").await;
    let clerk = signed_in(&shop, "clerk").await;

    // Staff may not see or change accounts.
    for (name, body) in [
        ("list_admins", json!({})),
        ("save_admin", json!({"username": "clerk", "role": "owner"})),
        (
            "set_admin_password",
            json!({"username": "boss", "password": "x".repeat(12)}),
        ),
        ("disable_admin", json!({"username": "boss"})),
        ("enable_admin", json!({"username": "clerk"})),
    ] {
        let (st, _, v) = clerk.post(name, body).await;
        assert_eq!(st, 403, "{name}: {v}");
    }
    // Nobody signed in: 401.
    let (st, _, _) = Console::new(&shop).post("list_admins", json!({})).await;
    assert_eq!(st, 401);

    // The owner adds an account; bad ones are refused with the field.
    for (body, wrong) in [
        (
            json!({"username": "packer", "role": "staff", "password": "short"}),
            "password",
        ),
        (
            json!({"username": "a b", "role": "staff", "password": PASSWORD}),
            "username",
        ),
        (
            json!({"username": "packer", "role": "boss", "password": PASSWORD}),
            "role",
        ),
        (json!({"username": "packer", "role": "staff"}), "password"),
    ] {
        let (st, _, v) = boss.post("save_admin", body).await;
        assert_eq!(
            (st, v["fields"][0]["field"].as_str()),
            (400, Some(wrong)),
            "{v}"
        );
    }
    let (st, _, v) = boss
        .post(
            "save_admin",
            json!({"username": "packer", "role": "staff", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        (st, v["username"].as_str(), v["role"].as_str()),
        (200, Some("packer"), Some("staff")),
        "{v}"
    );
    let packer = signed_in(&shop, "packer").await;
    let (st, _, me) = packer.post("me", json!({})).await;
    assert_eq!((st, me["role"].as_str()), (200, Some("staff")));

    // A role change takes effect on the next call of a session already open.
    let (st, _, v) = boss
        .post("save_admin", json!({"username": "packer", "role": "owner"}))
        .await;
    assert_eq!((st, v["role"].as_str()), (200, Some("owner")), "{v}");
    let (st, _, _) = packer.post("list_admins", json!({})).await;
    assert_eq!(st, 200, "an owner now");

    // A new password ends the account's sessions; the new one signs in, the old one not.
    let new_password = "another long passphrase";
    let (st, _, _) = boss
        .post(
            "set_admin_password",
            json!({"username": "packer", "password": new_password}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _, _) = packer.post("me", json!({})).await;
    assert_eq!(st, 401, "signed out everywhere");
    assert_eq!(Console::new(&shop).login("packer", PASSWORD).await.0, 401);
    let packer = Console::new(&shop);
    assert_eq!(packer.login("packer", new_password).await.0, 200);

    // Disabling ends its sessions and its logins; enabling brings the logins back.
    let (st, _, v) = boss
        .post("disable_admin", json!({"username": "packer"}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert!(v["disabled_at"].as_i64().is_some(), "{v}");
    assert_eq!(packer.post("me", json!({})).await.0, 401);
    assert_eq!(
        Console::new(&shop).login("packer", new_password).await.0,
        401
    );
    let (st, _, v) = boss
        .post("enable_admin", json!({"username": "packer"}))
        .await;
    assert_eq!((st, v["disabled_at"].is_null()), (200, true), "{v}");
    assert_eq!(
        Console::new(&shop).login("packer", new_password).await.0,
        200
    );

    // Unknown accounts: 404.
    let (st, _, _) = boss
        .post("disable_admin", json!({"username": "nobody"}))
        .await;
    assert_eq!(st, 404);

    // The list, and the audit log names every change but never a password.
    let (st, _, list) = boss.post("list_admins", json!({})).await;
    assert_eq!(st, 200);
    let names: Vec<&str> = list["admins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["boss", "clerk", "packer"]);
    let (_, _, log) = boss.post("audit_log", json!({})).await;
    let text = log.to_string();
    for action in [
        "add_admin",
        "set_admin_role",
        "set_admin_password",
        "disable_admin",
        "enable_admin",
    ] {
        assert!(text.contains(action), "{action} audited: {text}");
    }
    assert!(
        !text.contains(PASSWORD) && !text.contains(new_password),
        "{text}"
    );
}

#[tokio::test]
async fn the_last_owner_cannot_be_demoted_or_disabled_and_nobody_disables_themself() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let boss = signed_in(&shop, "boss").await;
    let (st, _, v) = boss
        .post("save_admin", json!({"username": "boss", "role": "staff"}))
        .await;
    assert_eq!(
        (st, v["code"].as_str()),
        (409, Some("invalid_state")),
        "{v}"
    );
    let (st, _, v) = boss
        .post("disable_admin", json!({"username": "boss"}))
        .await;
    assert_eq!(st, 409, "{v}");
    // A second owner: each may now demote the other, but not both at once.
    accounts::add(&shop.pool, "partner", Role::Owner, PASSWORD)
        .await
        .unwrap();
    let partner = signed_in(&shop, "partner").await;
    let (a, b) = tokio::join!(
        boss.post(
            "save_admin",
            json!({"username": "partner", "role": "staff"})
        ),
        partner.post("save_admin", json!({"username": "boss", "role": "staff"})),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    // The loser is either refused (the last owner) or no longer an owner when it is checked.
    assert!(
        statuses == [200, 409] || statuses == [200, 403],
        "{statuses:?}: {} {}",
        a.2,
        b.2
    );
    let owners: i64 = server::sql!(&shop.pool, e => sqlx::query_scalar(
        "SELECT COUNT(*) FROM admins WHERE role = 'owner' AND disabled_at IS NULL")
        .fetch_one(e).await)
    .unwrap();
    assert_eq!(owners, 1, "exactly one owner is left");
    // A disabled owner does not count as one.
    let me: String = server::sql!(&shop.pool, e => sqlx::query_scalar(
        "SELECT username FROM admins WHERE role = 'owner'")
        .fetch_one(e).await)
    .unwrap();
    let (owner, other) = if me == "boss" {
        (&boss, "partner")
    } else {
        (&partner, "boss")
    };
    let (st, _, _) = owner
        .post("save_admin", json!({"username": other, "role": "owner"}))
        .await;
    assert_eq!(st, 200);
    let (st, _, _) = owner
        .post("disable_admin", json!({"username": other}))
        .await;
    assert_eq!(st, 200);
    let (st, _, v) = owner
        .post("save_admin", json!({"username": me, "role": "staff"}))
        .await;
    assert_eq!(st, 409, "the other owner is disabled: {v}");
}

#[tokio::test]
async fn the_accounts_page_adds_an_account_and_shows_staff_why_not() {
    let shop = TestShop::spawn().await;
    accounts(&shop).await;
    let boss = Console::new(&shop);
    boss.form(
        "login",
        &[
            ("username", "boss"),
            ("password", PASSWORD),
            ("next", "/admin"),
        ],
    )
    .await;
    let (url, _, page) = boss.page("/admin/accounts").await;
    assert_eq!(url, "/admin/accounts");
    assert!(page.contains("data-testid=\"account-clerk\""), "{page}");
    assert!(
        page.contains("action=\"/admin/form/disable_admin\""),
        "{page}"
    );
    let (url, page) = boss
        .form(
            "save_admin",
            &[
                ("username", "packer"),
                ("role", "staff"),
                ("password", PASSWORD),
                ("next", "/admin/accounts"),
            ],
        )
        .await;
    assert_eq!(url, "/admin/accounts");
    assert!(page.contains("data-testid=\"account-packer\""), "{page}");
    assert!(!page.contains(PASSWORD));
    // A mistake comes back as the page's message.
    let (_, page) = boss
        .form(
            "save_admin",
            &[
                ("username", "packer2"),
                ("role", "staff"),
                ("password", "short"),
                ("next", "/admin/accounts"),
            ],
        )
        .await;
    assert!(page.contains("data-testid=\"flash\""), "{page}");
    assert!(!page.contains("account-packer2"));
    // Staff see why not, and no forms.
    let clerk = Console::new(&shop);
    clerk
        .form(
            "login",
            &[
                ("username", "clerk"),
                ("password", PASSWORD),
                ("next", "/admin"),
            ],
        )
        .await;
    let (_, _, page) = clerk.page("/admin/accounts").await;
    assert!(page.contains("只有店主可以管理账号"), "{page}");
    assert!(
        !page.contains("action=\"/admin/form/save_admin\""),
        "{page}"
    );
}
