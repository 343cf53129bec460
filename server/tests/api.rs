//! The JSON API and the plain-form endpoints, driven over HTTP against a fresh shop.

mod common;

use common::{address, order_body, TestShop};
use serde_json::json;

// Demo catalogue SKUs used below.
const ORANGE_SMALL: i64 = 1; // ¥39.90, stock 120
const ORANGE_LARGE: i64 = 2; // ¥69.90, stock 80
const PINEAPPLE: i64 = 6; // sold out
const MUG_BLACK: i64 = 17; // ¥52.00, stock 5

#[tokio::test]
async fn list_products_gives_the_catalogue_in_fen() {
    let shop = TestShop::spawn().await;
    let (status, body) = shop.shopper().api("list_products", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let products = body.as_array().expect("array");
    assert_eq!(products.len(), 20);
    let orange = &products[0];
    assert_eq!(orange["name"], "赣南脐橙");
    assert_eq!(orange["category"], "水果生鲜");
    assert_eq!(orange["image"], "/images/products/orange.svg");
    assert_eq!(
        orange["skus"][0],
        json!({"id": 1, "name": "2.5kg 中果", "price_fen": 3990, "stock": 120})
    );
    for p in products {
        for sku in p["skus"].as_array().unwrap() {
            assert!(sku["price_fen"].is_i64(), "prices are integer fen: {sku}");
        }
    }
}

#[tokio::test]
async fn create_order_prices_from_the_database_and_reserves_stock() {
    let shop = TestShop::spawn().await;
    let alice = shop.shopper();
    // A client that sends its own prices is ignored: only sku_id and quantity count.
    let mut body = order_body(&[(ORANGE_SMALL, 2), (ORANGE_LARGE, 1)]);
    body["items"][0]["price_fen"] = json!(1);
    body["total_fee"] = json!(1);
    let (status, created) = alice.api("create_order", body).await;
    assert_eq!(status, 200, "{created}");
    let expected = 2 * shop.price(ORANGE_SMALL).await + shop.price(ORANGE_LARGE).await;
    assert_eq!(created["total_fee"], json!(expected));
    assert_eq!(expected, 2 * 3990 + 6990);
    assert_eq!(shop.stock(ORANGE_SMALL).await, 118);
    assert_eq!(shop.stock(ORANGE_LARGE).await, 79);

    let id = created["order_id"].clone();
    let (status, st) = alice.api("order_status", json!({"order_id": id})).await;
    assert_eq!(status, 200);
    assert_eq!(
        st,
        json!({"order_id": id, "status": "unpaid", "total_fee": expected, "refunded_fen": 0})
    );

    let (_, order) = alice.api("get_order", json!({"order_id": id})).await;
    assert_eq!(order["lines"].as_array().unwrap().len(), 2);
    assert_eq!(order["lines"][0]["unit_price_fen"], 3990);
    assert_eq!(order["address"]["phone"], "13800138000");
    assert_eq!(order["order_no"].as_str().unwrap().len(), 24);
}

#[tokio::test]
async fn invalid_address_is_a_400_naming_every_field_and_changes_nothing() {
    let shop = TestShop::spawn().await;
    let mut body = order_body(&[(ORANGE_SMALL, 1)]);
    body["address"] = json!({"name": "", "phone": "12345", "region": "广东省", "detail": "短"});
    let (status, err) = shop.shopper().api("create_order", body).await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["code"], "validation");
    let fields: Vec<&str> = err["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["name", "phone", "detail"]);
    assert_eq!(shop.stock(ORANGE_SMALL).await, 120);
    let orders: i64 =
        server::sql!(&shop.pool, e => sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(e).await)
        .unwrap();
    assert_eq!(orders, 0);
}

#[tokio::test]
async fn bad_quantities_and_unknown_skus_are_refused() {
    let shop = TestShop::spawn().await;
    let s = shop.shopper();
    for (items, code, status) in [
        (vec![(ORANGE_SMALL, 0)], "validation", 400),
        (vec![(ORANGE_SMALL, -3)], "validation", 400),
        (vec![(ORANGE_SMALL, 100)], "validation", 400),
        (vec![], "validation", 400),
        (vec![(99_999, 1)], "not_found", 404),
        (vec![(PINEAPPLE, 1)], "out_of_stock", 409),
        (vec![(MUG_BLACK, 6)], "out_of_stock", 409),
    ] {
        let (st, err) = s.api("create_order", order_body(&items)).await;
        assert_eq!(
            (st, err["code"].as_str().unwrap()),
            (status, code),
            "{items:?}: {err}"
        );
        assert!(!err["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(
        shop.stock(MUG_BLACK).await,
        5,
        "a refused order reserves nothing"
    );
}

#[tokio::test]
async fn malformed_json_is_a_400_with_a_code() {
    let shop = TestShop::spawn().await;
    let s = shop.shopper();
    let (status, err) = s.api("create_order", json!({"items": "lots"})).await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["code"], "bad_request");
    let (status, err) = s.api("order_status", json!({"order_id": "x"})).await;
    assert_eq!(status, 400, "{err}");
}

#[tokio::test]
async fn an_order_is_visible_only_to_its_owner() {
    let shop = TestShop::spawn().await;
    let alice = shop.shopper();
    let bob = shop.shopper();
    let (_, created) = alice
        .api("create_order", order_body(&[(ORANGE_SMALL, 1)]))
        .await;
    let id = created["order_id"].clone();
    for endpoint in ["order_status", "get_order", "cancel_order"] {
        let (status, err) = bob.api(endpoint, json!({"order_id": id})).await;
        assert_eq!(status, 404, "{endpoint}: {err}");
        assert_eq!(err["code"], "not_found");
    }
    let (_, list) = bob.api("list_orders", json!({})).await;
    assert_eq!(list, json!([]));
    let (_, list) = alice.api("list_orders", json!({})).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, page) = bob.get(&format!("/orders/{id}")).await;
    assert_eq!(status, 404);
    assert!(
        !page.contains("13800138000"),
        "another shopper's address never renders"
    );
}

#[tokio::test]
async fn cancelling_releases_stock_once() {
    let shop = TestShop::spawn().await;
    let s = shop.shopper();
    let (_, created) = s.api("create_order", order_body(&[(MUG_BLACK, 3)])).await;
    assert_eq!(shop.stock(MUG_BLACK).await, 2);
    let id = created["order_id"].clone();
    let (status, st) = s.api("cancel_order", json!({"order_id": id})).await;
    assert_eq!(status, 200, "{st}");
    assert_eq!(st["status"], "closed");
    assert_eq!(shop.stock(MUG_BLACK).await, 5);
    let (status, err) = s.api("cancel_order", json!({"order_id": id})).await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["code"], "invalid_state");
    assert_eq!(
        shop.stock(MUG_BLACK).await,
        5,
        "a second cancel releases nothing"
    );
    let (_, closed) = s.api("list_orders", json!({"status": "closed"})).await;
    assert_eq!(closed.as_array().unwrap().len(), 1);
    let (_, unpaid) = s.api("list_orders", json!({"status": "unpaid"})).await;
    assert_eq!(unpaid, json!([]));
}

#[tokio::test]
async fn concurrent_orders_never_oversell() {
    let shop = TestShop::spawn().await;
    shop.set_stock(ORANGE_SMALL, 5).await;
    let shoppers: Vec<_> = (0..24).map(|_| shop.shopper()).collect();
    let results = futures_util::future::join_all(
        shoppers
            .iter()
            .map(|s| s.api("create_order", order_body(&[(ORANGE_SMALL, 1)]))),
    )
    .await;
    let ok = results.iter().filter(|(st, _)| *st == 200).count();
    let sold_out = results
        .iter()
        .filter(|(st, e)| *st == 409 && e["code"] == "out_of_stock")
        .count();
    assert_eq!(ok, 5, "exactly the stock is sold: {results:?}");
    assert_eq!(
        sold_out, 19,
        "everyone else is told it is sold out: {results:?}"
    );
    assert_eq!(shop.stock(ORANGE_SMALL).await, 0);
    let reserved: i64 =
        server::sql!(&shop.pool, e => sqlx::query_scalar("SELECT CAST(SUM(quantity) AS BIGINT) FROM order_lines WHERE sku_id = $1")
            .bind(ORANGE_SMALL)
            .fetch_one(e).await)
            .unwrap();
    assert_eq!(reserved, 5);
}

#[tokio::test]
async fn cart_totals_follow_selection_and_quantities() {
    let shop = TestShop::spawn().await;
    let s = shop.shopper();
    let (_, cart) = s.api("get_cart", json!({})).await;
    assert_eq!(cart["lines"], json!([]));
    let (status, cart) = s
        .api(
            "add_to_cart",
            json!({"sku_id": ORANGE_SMALL, "quantity": 2}),
        )
        .await;
    assert_eq!(status, 200, "{cart}");
    let (_, cart) = s
        .api(
            "add_to_cart",
            json!({"sku_id": ORANGE_SMALL, "quantity": 1}),
        )
        .await;
    assert_eq!(cart["lines"][0]["quantity"], 3, "adding again adds up");
    let (_, cart) = s
        .api(
            "add_to_cart",
            json!({"sku_id": ORANGE_LARGE, "quantity": 1}),
        )
        .await;
    assert_eq!(cart["selected_total_fen"], 3 * 3990 + 6990);
    let (_, cart) = s
        .api(
            "select_cart_line",
            json!({"sku_id": ORANGE_LARGE, "selected": false}),
        )
        .await;
    assert_eq!(cart["selected_total_fen"], 3 * 3990);
    assert_eq!(cart["selected_count"], 3);
    let (_, cart) = s
        .api(
            "update_cart",
            json!({"sku_id": ORANGE_SMALL, "quantity": 1}),
        )
        .await;
    assert_eq!(cart["selected_total_fen"], 3990);
    let (status, err) = s
        .api("update_cart", json!({"sku_id": MUG_BLACK, "quantity": 6}))
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (409, Some("out_of_stock")),
        "{err}"
    );
    let (status, err) = s
        .api("add_to_cart", json!({"sku_id": PINEAPPLE, "quantity": 1}))
        .await;
    assert_eq!(status, 409, "{err}");
    let (_, cart) = s
        .api(
            "update_cart",
            json!({"sku_id": ORANGE_SMALL, "quantity": 0}),
        )
        .await;
    assert_eq!(
        cart["lines"].as_array().unwrap().len(),
        1,
        "quantity 0 removes the line"
    );

    // Ordering from the cart takes the ordered SKUs out of it.
    let mut body = order_body(&[(ORANGE_LARGE, 1)]);
    body["from_cart"] = json!(true);
    let (status, _) = s.api("create_order", body).await;
    assert_eq!(status, 200);
    let (_, cart) = s.api("get_cart", json!({})).await;
    assert_eq!(cart["lines"], json!([]));
}

#[tokio::test]
async fn saved_addresses_are_remembered_per_shopper() {
    let shop = TestShop::spawn().await;
    let s = shop.shopper();
    s.api("create_order", order_body(&[(ORANGE_SMALL, 1)]))
        .await;
    s.api("create_order", order_body(&[(ORANGE_SMALL, 1)]))
        .await;
    let (_, list) = s.api("list_addresses", json!({})).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "the same address is saved once");
    assert_eq!(list[0]["name"], address()["name"]);
    let (_, other) = shop.shopper().api("list_addresses", json!({})).await;
    assert_eq!(other, json!([]));
}

#[tokio::test]
async fn plain_forms_work_without_javascript() {
    let shop = TestShop::spawn().await;
    let s = shop.shopper();
    // The first page view starts the session (as a browser would).
    let (status, _) = s.get("/").await;
    assert_eq!(status, 200);
    let (status, location) = s
        .form(
            "add_to_cart",
            &[("sku_id", "1"), ("quantity", "2")],
            "/product/1",
        )
        .await;
    assert_eq!((status, location.as_str()), (302, "/cart"));
    let (status, page) = s.get("/cart").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("赣南脐橙") && page.contains("79.80"),
        "cart page lists the line and total"
    );

    // 立即购买 goes to checkout with the item and leaves the cart alone.
    let (_, location) = s
        .form(
            "buy_now",
            &[("sku_id", "2"), ("quantity", "1")],
            "/product/1",
        )
        .await;
    assert_eq!(location, "/checkout?sku=2&qty=1");

    // A wrong phone number comes back to the form; the error travels in a signed cookie for
    // this session and page, never in the URL.
    let bad = [
        ("address_id", "new"),
        ("name", "李四"),
        ("phone", "123"),
        ("province", "浙江省"),
        ("city", "杭州市 西湖区"),
        ("detail", "文三路 100 号"),
    ];
    let (status, location) = s.form("checkout", &bad, "/checkout").await;
    assert_eq!(status, 302);
    assert_eq!(location, format!("{}/checkout", shop.base));
    // Another page of the session does not take it.
    let (_, cart) = s.get("/cart").await;
    assert!(!cart.contains("请输入正确的 11 位手机号"));
    let (status, page) = s.get("/checkout").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("请输入正确的 11 位手机号"),
        "the checkout page shows the server's message"
    );
    let (_, again) = s.get("/checkout").await;
    assert!(
        !again.contains("请输入正确的 11 位手机号"),
        "shown once, then gone"
    );

    let good = [
        ("address_id", "new"),
        ("name", "李四"),
        ("phone", "13912345678"),
        ("province", "浙江省"),
        ("city", "杭州市 西湖区"),
        ("detail", "文三路 100 号"),
        ("remark", "请放门口"),
    ];
    let (status, location) = s.form("checkout", &good, "/checkout").await;
    assert_eq!(status, 302);
    let id: i64 = location
        .strip_prefix("/orders/")
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("{location}"));
    let (_, order) = s.api("get_order", json!({"order_id": id})).await;
    assert_eq!(order["total_fee"], 2 * 3990);
    assert_eq!(order["address"]["region"], "浙江省 杭州市 西湖区");
    assert_eq!(order["remark"], "请放门口");
    let (_, page) = s.get(&format!("/orders/{id}")).await;
    assert!(page.contains("待支付"));
    let (_, cart) = s.api("get_cart", json!({})).await;
    assert_eq!(cart["lines"], json!([]), "checked-out lines leave the cart");
}

/// Issue 13: each button is wired once. The page's plain form posts to the same endpoint the
/// island calls with JSON (and other programs too): a browser's form post is answered with the
/// next page, a JSON call with JSON. No page carries a second, form-only endpoint.
#[tokio::test]
async fn each_action_is_one_endpoint_for_its_form_and_its_json() {
    let shop = TestShop::spawn().await;
    let s = shop.shopper();
    let (_, product) = s.get("/product/1").await;
    assert!(
        product.contains(r#"action="/api/add_to_cart""#),
        "加入购物车 posts to add_to_cart"
    );
    assert!(
        product.contains(r#"formaction="/api/buy_now""#),
        "立即购买 posts to buy_now"
    );

    // The form: the next page.
    let (status, location) = s
        .form(
            "add_to_cart",
            &[("sku_id", "1"), ("quantity", "1")],
            "/product/1",
        )
        .await;
    assert_eq!((status, location.as_str()), (302, "/cart"));
    // JSON, at the same endpoint: the cart.
    let (status, cart) = s
        .api("add_to_cart", json!({"sku_id": 1, "quantity": 1}))
        .await;
    assert_eq!(status, 200, "{cart}");
    assert_eq!(cart["lines"][0]["quantity"], 2);
    let (status, cart) = s
        .api("update_cart", json!({"sku_id": 1, "quantity": 3}))
        .await;
    assert_eq!(
        (status, cart["lines"][0]["quantity"].clone()),
        (200, json!(3))
    );
    let (status, location) = s
        .form(
            "select_cart_line",
            &[("sku_id", "1"), ("selected", "false")],
            "/cart",
        )
        .await;
    assert_eq!((status, location.as_str()), (302, "/cart"));
    let (_, cart) = s.api("get_cart", json!({})).await;
    assert_eq!(cart["lines"][0]["selected"], false);
    let (status, quote) = s.api("buy_now", json!({"sku_id": 2, "quantity": 1})).await;
    assert_eq!(status, 200, "{quote}");
    assert_eq!(quote["lines"][0]["sku_id"], 2);

    let (_, cart_page) = s.get("/cart").await;
    assert!(cart_page.contains(r#"action="/api/update_cart""#));
    assert!(cart_page.contains(r#"action="/api/select_cart_line""#));
    let (_, checkout_page) = s.get("/checkout?sku=2&qty=1").await;
    assert!(checkout_page.contains(r#"action="/api/checkout""#));
    // 提交订单 as JSON, the way the island sends it: the order.
    let (status, created) = s
        .api(
            "checkout",
            json!({"address_id": "new", "name": "李四", "phone": "13912345678",
                   "province": "浙江省", "city": "杭州市 西湖区", "detail": "文三路 100 号",
                   "buy_sku": 2, "buy_qty": 1}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let id = created["order_id"].as_i64().expect("order_id");
    let (_, order_page) = s.get(&format!("/orders/{id}")).await;
    assert!(order_page.contains(r#"action="/api/cancel_order""#));
    let (status, location) = s
        .form(
            "cancel_order",
            &[("order_id", &id.to_string())],
            &format!("/orders/{id}"),
        )
        .await;
    assert_eq!((status, location), (302, format!("/orders/{id}")));
    let (_, st) = s.api("order_status", json!({"order_id": id})).await;
    assert_eq!(st["status"], "closed");
    for page in [&product, &cart_page, &checkout_page, &order_page] {
        assert!(
            !page.contains("/api/form/"),
            "no form-only endpoint is left"
        );
    }

    // A form is taken only where a page posts one: the JSON-only endpoints still refuse it.
    let res = reqwest::Client::new()
        .post(format!("{}/api/create_order", shop.base))
        .form(&[("remark", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
}

#[tokio::test]
async fn pages_answer_with_real_status_codes() {
    let shop = TestShop::spawn().await;
    let s = shop.shopper();
    let (status, page) = s.get("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("赣南脐橙") && page.contains("已售罄"));
    let (status, page) = s.get("/product/1").await;
    assert_eq!(status, 200);
    assert!(page.contains("2.5kg 中果") && page.contains("39.90"));
    for path in [
        "/product/99999",
        "/product/abc",
        "/orders/99999",
        "/no/such/page",
    ] {
        let (status, page) = s.get(path).await;
        assert_eq!(status, 404, "{path}");
        assert!(page.contains("返回首页"), "{path} offers a way back");
    }
}

/// Islands (issue 13): a page hydrates only its interactive parts. The product page's SKU form is
/// an island whose props travel in the page; everything else is plain server HTML, so no
/// resource's data is written into the page for the wasm, and the script loads the wasm to
/// hydrate islands, not the whole body.
#[tokio::test]
async fn pages_hydrate_only_their_islands() {
    let shop = TestShop::spawn().await;
    let s = shop.shopper();
    for (path, island) in [
        ("/product/1", "ProductBuy_"),
        ("/", "ShareCard_"),
        ("/cart", "CartEditor_"),
    ] {
        let (status, page) = s.get(path).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            page.contains(&format!("<leptos-island data-component=\"{island}")),
            "{path}: the island {island}"
        );
        assert!(page.contains("hydrateIslands"), "{path}: the island script");
        assert!(
            !page.contains("__RESOLVED_RESOURCES["),
            "{path}: no resource data for the wasm"
        );
    }
    let (_, page) = s.get("/product/1").await;
    let props = page
        .split("data-component=\"ProductBuy_")
        .nth(1)
        .and_then(|rest| rest.split("data-props=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .expect("the island's props");
    assert!(props.contains("&quot;price_fen&quot;:3990"), "{props}");
}

#[tokio::test]
async fn the_session_cookie_is_signed_httponly_and_lax() {
    let shop = TestShop::spawn().await;
    let res = reqwest::get(format!("{}/", shop.base)).await.unwrap();
    let cookie = res
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("wxmall_sid="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    // A forged (unsigned) session id is ignored: a fresh session is issued instead.
    let client = reqwest::Client::new();
    let forged = format!("wxmall_sid={}", "ab".repeat(24));
    let res = client
        .get(format!("{}/cart", shop.base))
        .header("cookie", &forged)
        .send()
        .await
        .unwrap();
    assert!(
        res.headers().get("set-cookie").is_some(),
        "forged cookie replaced"
    );
}

/// GETs or POSTs with `accept-encoding: enc` and returns (content-encoding, decoded body).
async fn fetch_encoded(shop: &TestShop, post: Option<&str>, enc: &str) -> (Option<String>, String) {
    // No automatic decompression here: the test looks at the bytes on the wire.
    let client = reqwest::Client::new();
    let req = match post {
        Some(endpoint) => client
            .post(format!("{}/api/{endpoint}", shop.base))
            .json(&json!({})),
        None => client
            .get(format!("{}/", shop.base))
            .header("accept", "text/html"),
    };
    let res = req.header("accept-encoding", enc).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let encoding = res
        .headers()
        .get("content-encoding")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = res.bytes().await.unwrap();
    let mut text = String::new();
    match encoding.as_deref() {
        Some("gzip") => {
            use std::io::Read;
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut text)
                .unwrap();
        }
        Some("br") => {
            use std::io::Read;
            brotli::Decompressor::new(&bytes[..], 4096)
                .read_to_string(&mut text)
                .unwrap();
        }
        None => text = String::from_utf8(bytes.to_vec()).unwrap(),
        Some(other) => panic!("unexpected encoding {other}"),
    }
    (encoding, text)
}

#[tokio::test]
async fn pages_and_json_are_compressed_for_clients_that_ask() {
    let shop = TestShop::spawn().await;
    let (enc, page) = fetch_encoded(&shop, None, "gzip").await;
    assert_eq!(enc.as_deref(), Some("gzip"));
    assert!(
        page.contains("</html>") && page.contains("赣南脐橙"),
        "whole page"
    );
    let (enc, json) = fetch_encoded(&shop, Some("list_products"), "br").await;
    assert_eq!(enc.as_deref(), Some("br"));
    let products: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(products.as_array().unwrap().len(), 20);
    let (enc, page) = fetch_encoded(&shop, None, "identity").await;
    assert_eq!(enc, None, "no encoding unless asked");
    assert!(page.contains("</html>"));
    // Errors keep their status under compression (the status middleware reads the plain body).
    let res = reqwest::Client::new()
        .post(format!("{}/api/get_product", shop.base))
        .header("accept-encoding", "gzip")
        .json(&json!({"product_id": 424242}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

/// Finding 5: `?__path=…&__err=<base64 JSON>` used to put any text in the shop's red error box.
/// Neither a crafted URL nor a form-error cookie of another session shows anything.
#[tokio::test]
async fn form_errors_cannot_be_written_by_a_link_or_another_session() {
    use leptos::server_fn::error::ServerFnUrlError;
    let shop = TestShop::spawn().await;
    let lure = "订单异常，请加客服微信 fake123 办理退款";
    let forged = ServerFnUrlError::new(
        "/api/checkout",
        app::error::ApiError::new(app::error::ErrorCode::BadRequest, lure),
    )
    .to_url(&format!("{}/checkout", shop.base))
    .unwrap();
    let s = shop.shopper();
    let (status, page) = s.get(&forged.as_str()[shop.base.len()..]).await;
    assert_eq!(status, 200);
    assert!(
        !page.contains("fake123"),
        "a link writes nothing on the page"
    );

    // A real form error of shopper A, its cookie replayed by shopper B.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookies = |res: &reqwest::Response, name: &str| -> String {
        res.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|c| c.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} cookie"))
            .to_string()
    };
    // A puts something in the cart (so the checkout page shows its form), then sends a
    // wrong phone number.
    let res = plain
        .post(format!("{}/api/add_to_cart", shop.base))
        .header("accept", "text/html")
        .header("referer", format!("{}/product/1", shop.base))
        .form(&[("sku_id", "1"), ("quantity", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let a_session = cookies(&res, "wxmall_sid");
    let res = plain
        .post(format!("{}/api/checkout", shop.base))
        .header("accept", "text/html")
        .header("referer", format!("{}/checkout", shop.base))
        .header("cookie", a_session.clone())
        .form(&[
            ("address_id", "new"),
            ("name", "李四"),
            ("phone", "123"),
            ("province", "浙江省"),
            ("city", "杭州市 西湖区"),
            ("detail", "文三路 100 号"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let form_error = cookies(&res, "wxmall_form_err");
    let res = plain.get(format!("{}/", shop.base)).send().await.unwrap();
    let b_session = cookies(&res, "wxmall_sid");
    let page_with = |session: String| {
        let plain = plain.clone();
        let url = format!("{}/checkout", shop.base);
        let form_error = form_error.clone();
        async move {
            let res = plain
                .get(url)
                .header("cookie", format!("{session}; {form_error}"))
                .send()
                .await
                .unwrap();
            res.text().await.unwrap()
        }
    };
    assert!(
        !page_with(b_session)
            .await
            .contains("请输入正确的 11 位手机号"),
        "another session's form error is not shown"
    );
    assert!(
        page_with(a_session)
            .await
            .contains("请输入正确的 11 位手机号"),
        "its own session's is"
    );
}

/// The catalogue cache on SQLite (issue 13): reads arriving together share one lookup of
/// `catalogue_version`, yet every read still sees each change committed before it started.
#[tokio::test]
async fn reads_arriving_together_share_a_version_lookup_and_still_see_every_commit() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::TestDb::create(dir.path()).await;
    let pool = server::db::connect(&db.url).await.unwrap();
    if pool.backend() != server::db::Backend::Sqlite {
        return; // PostgreSQL is told of changes (NOTIFY), it never looks the version up
    }
    server::shop::demo::seed_if_empty(&pool).await.unwrap();
    let shop = server::shop::SqlShop::new(pool.clone(), Default::default());
    let cache = shop.catalogue().clone();
    let stock_of = |list: &[app::model::ProductSummary]| {
        list.iter()
            .flat_map(|p| &p.skus)
            .find(|s| s.id == ORANGE_SMALL)
            .map(|s| s.stock)
            .unwrap()
    };
    // `n` reads started at once; the stock each of them saw.
    let read_at_once = |n: usize| {
        let reads: Vec<_> = (0..n)
            .map(|_| {
                let (cache, pool) = (cache.clone(), pool.clone());
                tokio::spawn(async move { cache.list_products(&pool).await.unwrap() })
            })
            .collect();
        async move {
            let mut seen = Vec::new();
            for r in reads {
                seen.push(stock_of(&r.await.unwrap()));
            }
            seen
        }
    };
    cache.list_products(&pool).await.unwrap();

    let before = cache.version_lookups();
    assert_eq!(read_at_once(64).await, vec![120; 64]);
    let lookups = cache.version_lookups() - before;
    assert!(
        (1..=4).contains(&lookups),
        "64 reads at once: {lookups} lookups"
    );

    // Each change is seen by every read that starts after its commit, however many wait.
    for stock in 1..=10 {
        server::sql!(&pool, e => sqlx::query("UPDATE skus SET stock = $1 WHERE id = $2")
            .bind(stock).bind(ORANGE_SMALL).execute(e).await.map(server::db::Done::from))
        .unwrap();
        assert_eq!(
            read_at_once(8).await,
            vec![stock; 8],
            "reads after the commit"
        );
    }
    pool.close().await;
}

/// The catalogue cache (issue 13): the catalogue is read from the database once per change,
/// and any change — whoever makes it, here a hand-written `UPDATE` beside the shop — is what
/// the next page shows (SQLite: at once; PostgreSQL: as soon as the NOTIFY arrives). A
/// transaction that rolls back changes nothing and drops nothing.
#[tokio::test]
async fn the_catalogue_is_read_once_and_dropped_when_the_database_changes() {
    use app::port::ShopPort;
    let dir = tempfile::tempdir().unwrap();
    let db = common::TestDb::create(dir.path()).await;
    let pool = server::db::connect(&db.url).await.unwrap();
    server::shop::demo::seed_if_empty(&pool).await.unwrap();
    let shop = server::shop::SqlShop::new(pool.clone(), Default::default());
    let cache = shop.catalogue().clone();
    let postgres = pool.backend() == server::db::Backend::Postgres;
    let price_of = |list: &[app::model::ProductSummary], sku: i64| {
        list.iter()
            .flat_map(|p| &p.skus)
            .find(|s| s.id == sku)
            .map(|s| (s.price_fen, s.stock))
            .unwrap()
    };

    // PostgreSQL reads the database until its listener listens; then the cache is used.
    assert!(
        common::wait_for(|| async {
            shop.list_products().await.unwrap();
            cache.loads() > 0
        })
        .await,
        "the catalogue cache is used"
    );
    let loads = cache.loads();
    for _ in 0..20 {
        let list = shop.list_products().await.unwrap();
        assert_eq!(price_of(&list, ORANGE_SMALL), (3990, 120));
    }
    assert_eq!(cache.loads(), loads, "20 pages, no catalogue query");
    let detail = shop.product(1).await.unwrap();
    shop.product(1).await.unwrap();
    assert_eq!(detail.skus[0].price_fen, 3990);
    assert_eq!(cache.loads(), loads + 1, "a product page is loaded once");

    // A change outside the shop's own code: the next reads show it.
    server::sql!(&pool, e => sqlx::query("UPDATE skus SET price_fen = 3500, stock = 7 WHERE id = $1")
        .bind(ORANGE_SMALL).execute(e).await.map(server::db::Done::from))
    .unwrap();
    let fresh = |cache_list: Vec<app::model::ProductSummary>| {
        price_of(&cache_list, ORANGE_SMALL) == (3500, 7)
    };
    if postgres {
        assert!(
            common::wait_for(|| async { fresh(shop.list_products().await.unwrap()) }).await,
            "the NOTIFY reaches the cache"
        );
    } else {
        assert!(
            fresh(shop.list_products().await.unwrap()),
            "at once on SQLite"
        );
    }
    assert!(
        common::wait_for(|| async { shop.product(1).await.unwrap().skus[0].price_fen == 3500 })
            .await
    );

    // Sold out shows as sold out.
    server::sql!(&pool, e => sqlx::query("UPDATE skus SET stock = 0 WHERE id = $1")
        .bind(ORANGE_SMALL).execute(e).await.map(server::db::Done::from))
    .unwrap();
    assert!(
        common::wait_for(|| async {
            price_of(&shop.list_products().await.unwrap(), ORANGE_SMALL).1 == 0
        })
        .await
    );

    // A rolled-back change is not seen, and (SQLite) costs no reload.
    shop.list_products().await.unwrap();
    let settled = cache.loads();
    let mut tx = pool.begin().await.unwrap();
    server::sql!(&mut tx, e => sqlx::query("UPDATE skus SET price_fen = 1 WHERE id = $1")
        .bind(ORANGE_SMALL).execute(e).await.map(server::db::Done::from))
    .unwrap();
    tx.rollback().await.unwrap();
    for _ in 0..5 {
        assert_eq!(
            price_of(&shop.list_products().await.unwrap(), ORANGE_SMALL),
            (3500, 0)
        );
    }
    if !postgres {
        assert_eq!(
            cache.loads(),
            settled,
            "nothing was committed: nothing to reload"
        );
    }

    // Coupons on offer come from the same cache.
    assert!(shop.coupon_offers().await.unwrap().is_empty());
    server::sql!(&pool, e => sqlx::query(
        "INSERT INTO coupons (card_id, title, kind, least_cost_fen, reduce_cost_fen, quantity, per_user, days, color, created_at) \
         VALUES ('pCacheTest', '满50减5', 'cash', 5000, 500, 100, 1, 30, 'Color010', 0)")
        .execute(e).await.map(server::db::Done::from))
    .unwrap();
    assert!(
        common::wait_for(|| async {
            shop.coupon_offers()
                .await
                .unwrap()
                .iter()
                .any(|c| c.card_id == "pCacheTest")
        })
        .await,
        "a new coupon is offered"
    );
    pool.close().await;
}

/// The nonce of a page's `Content-Security-Policy`, and that of its scripts.
fn nonces(csp: &str, html: &str) -> (String, Vec<String>) {
    let start = csp.find("'nonce-").expect("a nonce in the policy") + 7;
    let header = csp[start..].split('\'').next().unwrap().to_string();
    let in_page = html
        .split("nonce=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect();
    (header, in_page)
}

#[tokio::test]
async fn the_home_page_is_rendered_once_per_catalogue_and_each_answer_has_its_own_nonce() {
    let shop = TestShop::spawn().await;
    let kept = || shop.catalogue.pages_kept();
    let page = |path: &'static str| {
        let http = reqwest::Client::new();
        let url = format!("{}{path}", shop.base);
        async move {
            let res = http
                .get(url)
                .header("accept", "text/html")
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let csp = res
                .headers()
                .get("content-security-policy")
                .expect("a policy")
                .to_str()
                .unwrap()
                .to_string();
            (csp, res.text().await.unwrap())
        }
    };
    // (PostgreSQL keeps nothing until its catalogue listener listens.)
    assert!(
        common::wait_for(|| async {
            page("/").await;
            kept() > 0
        })
        .await,
        "the home page is kept"
    );
    let before = kept();
    let (csp, first) = page("/").await;
    let (nonce, in_page) = nonces(&csp, &first);
    assert!(
        !in_page.is_empty() && in_page.iter().all(|n| *n == nonce),
        "{in_page:?} vs {nonce}"
    );
    assert!(first.contains("39.90") && !first.contains("35.00"));
    let mut seen = std::collections::HashSet::from([nonce.clone()]);
    for _ in 0..10 {
        let (csp, html) = page("/").await;
        let (n, in_page) = nonces(&csp, &html);
        assert!(
            in_page.iter().all(|x| *x == n),
            "the page's scripts carry the policy's nonce"
        );
        assert!(seen.insert(n.clone()), "a fresh nonce for every answer");
        assert_eq!(html.replace(&n, &nonce), first, "the same page otherwise");
    }
    assert_eq!(kept(), before, "eleven answers, no render");

    // A change to the catalogue, from anywhere: the next page shows it, rendered again.
    server::sql!(&shop.pool, e => sqlx::query("UPDATE skus SET price_fen = 3500 WHERE id = $1")
        .bind(ORANGE_SMALL).execute(e).await.map(server::db::Done::from))
    .unwrap();
    assert!(
        common::wait_for(|| async { page("/").await.1.contains("35.00") }).await,
        "the new price is shown"
    );
    assert!(kept() > before);

    // A product page likewise; a page with a query string is rendered each time.
    let (_, product) = page("/product/1").await;
    let after = kept();
    page("/product/1").await;
    assert_eq!(kept(), after, "the product page is kept");
    assert!(product.contains("35.00"));
    page("/?from=qr").await;
    page("/?from=qr").await;
    assert_eq!(kept(), after, "a query string is never kept");
}

#[tokio::test]
async fn with_the_page_cache_off_every_page_is_rendered() {
    let shop = TestShop::spawn_with(server::wechat_config::PayVersion::V3, |s| {
        s.page_cache = false
    })
    .await;
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let res = http.get(format!("{}/", shop.base)).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.text().await.unwrap().contains("39.90"));
    }
    assert_eq!(shop.catalogue.pages_kept(), 0);
}
