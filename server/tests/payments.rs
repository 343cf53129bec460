//! The money path against the embedded sandbox: cancellation consistent with WeChat, payments
//! that land on orders that cannot take them, query states, expiry that cannot be starved, and
//! refunds (partial, by line, idempotent, notified, reconciled).

mod common;

use common::{order_body, wait_for, TestShop};
use serde_json::json;
use server::payments::{PaymentError, RefundLine, RefundRequest};
use server::wechat_config::PayVersion;
use std::time::Duration;
use wechat_sandbox::{Endpoint, Fault};

const ORANGE_SMALL: i64 = 1; // ¥39.90
const MUG_BLACK: i64 = 17; // stock 5

/// A signed-in WeChat shopper with one unpaid order that went to WeChat (prepaid).
async fn prepaid_order(shop: &TestShop, items: &[(i64, i64)]) -> (common::Shopper, i64, String) {
    let s = shop.wechat_shopper(0).await;
    let (st, created) = s.api("create_order", order_body(items)).await;
    assert_eq!(st, 200, "{created}");
    let id = created["order_id"].as_i64().unwrap();
    let (st, params) = s.api("pay_order", json!({"order_id": id})).await;
    assert_eq!(st, 200, "{params}");
    let no = shop.order_no(id).await;
    (s, id, no)
}

/// A paid order (notification delivered and acknowledged).
async fn paid_order(shop: &TestShop, items: &[(i64, i64)]) -> (common::Shopper, i64, String) {
    let (s, id, no) = prepaid_order(shop, items).await;
    shop.sandbox.pay(&no).await.unwrap();
    assert!(shop.sandbox.wait_for_ack(&no, Duration::from_secs(5)).await);
    assert_eq!(shop.order_row(id).await.0, "paid");
    (s, id, no)
}

async fn order_field<
    T: for<'r> sqlx::Decode<'r, sqlx::Sqlite>
        + sqlx::Type<sqlx::Sqlite>
        + for<'r> sqlx::Decode<'r, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
        + Send
        + Unpin,
>(
    shop: &TestShop,
    id: i64,
    column: &str,
) -> T {
    server::sql!(&shop.pool, e => sqlx::query_scalar(&format!("SELECT {column} FROM orders WHERE id = $1"))
        .bind(id)
        .fetch_one(e).await)
        .unwrap()
}

async fn refund_rows(shop: &TestShop, id: i64) -> Vec<(String, String, i64, String)> {
    server::sql!(&shop.pool, e => sqlx::query_as(
        "SELECT out_refund_no, kind, amount_fen, status FROM refunds WHERE order_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(e).await)
    .unwrap()
}

/// Waits until WeChat (the sandbox) has settled refund `rno` while its notification is being
/// dropped: the shop still has the order as `refunding`.
async fn settled_at_wechat_only(shop: &TestShop, id: i64, rno: &str) {
    assert!(
        wait_for(|| async {
            shop.sandbox
                .refund(rno)
                .is_some_and(|r| r.status == "SUCCESS")
        })
        .await
    );
    assert_eq!(shop.order_row(id).await.0, "refunding");
}

fn refund(order: &str, amount: Option<i64>, reason: &str) -> RefundRequest {
    RefundRequest {
        order: order.to_string(),
        amount_fen: amount,
        lines: Vec::new(),
        reason: reason.to_string(),
        restock: false,
    }
}

// ------------------------------------------------------------------ cancellation

#[tokio::test]
async fn cancelling_a_paid_but_unnotified_order_answers_409_and_shows_it_paid() {
    let shop = TestShop::spawn().await;
    let (s, id, no) = prepaid_order(&shop, &[(MUG_BLACK, 1)]).await;
    shop.sandbox.set_drop_notifications(true);
    shop.sandbox.pay(&no).await.unwrap();
    assert_eq!(shop.order_row(id).await.0, "unpaid", "no notification yet");

    let (st, err) = s.api("cancel_order", json!({"order_id": id})).await;
    assert_eq!(st, 409, "{err}");
    assert_eq!(err["code"], "invalid_state");
    assert_eq!(err["message"], "订单已支付");
    assert_eq!(shop.order_row(id).await.0, "paid");
    assert_eq!(shop.stock(MUG_BLACK).await, 4, "the stock stays sold");
    let (_, order) = s.api("get_order", json!({"order_id": id})).await;
    assert_eq!(order["status"], "paid");
}

#[tokio::test]
async fn a_cancelled_order_cannot_be_paid_at_wechat_any_more() {
    let shop = TestShop::spawn().await;
    let (s, id, no) = prepaid_order(&shop, &[(MUG_BLACK, 2)]).await;
    let (st, view) = s.api("cancel_order", json!({"order_id": id})).await;
    assert_eq!(st, 200, "{view}");
    assert_eq!(view["status"], "closed");
    assert_eq!(shop.stock(MUG_BLACK).await, 5);
    let t = shop.sandbox.transaction(&no).unwrap();
    assert_eq!(format!("{:?}", t.state), "Closed", "closed at WeChat first");
    assert!(
        shop.sandbox.pay(&no).await.is_err(),
        "WeChat refuses to take the money"
    );
}

#[tokio::test]
async fn cancelling_while_wechat_is_unreachable_changes_nothing() {
    let shop = TestShop::spawn().await;
    let (s, id, no) = prepaid_order(&shop, &[(MUG_BLACK, 1)]).await;
    shop.sandbox.fail_next(
        Endpoint::V3Query,
        Fault::Http {
            status: 502,
            body: "bad gateway".into(),
        },
    );
    let (st, err) = s.api("cancel_order", json!({"order_id": id})).await;
    assert_eq!(st, 503, "{err}");
    assert_eq!(err["code"], "payment_unavailable");
    assert_eq!(shop.order_row(id).await.0, "unpaid");
    assert_eq!(shop.stock(MUG_BLACK).await, 4);
    let t = shop.sandbox.transaction(&no).unwrap();
    assert_eq!(
        format!("{:?}", t.state),
        "NotPay",
        "not closed at WeChat either"
    );

    // The close at WeChat fails after the query: still nothing changes.
    shop.sandbox.fail_next(
        Endpoint::V3Close,
        Fault::v3(500, "SYSTEM_ERROR", "系统错误"),
    );
    let (st, _) = s.api("cancel_order", json!({"order_id": id})).await;
    assert_eq!(st, 503);
    assert_eq!(shop.order_row(id).await.0, "unpaid");
}

#[tokio::test]
async fn an_order_without_a_prepay_cancels_without_asking_wechat() {
    let shop = TestShop::spawn().await;
    let s = shop.wechat_shopper(0).await;
    let (_, created) = s.api("create_order", order_body(&[(MUG_BLACK, 1)])).await;
    let id = created["order_id"].as_i64().unwrap();
    shop.sandbox.fail_next(
        Endpoint::V3Query,
        Fault::Http {
            status: 502,
            body: "unreachable".into(),
        },
    );
    let (st, view) = s.api("cancel_order", json!({"order_id": id})).await;
    assert_eq!(st, 200, "{view}");
    assert_eq!(view["status"], "closed");
}

#[tokio::test]
async fn pay_order_that_finds_the_order_cancelled_meanwhile_gives_no_pay_parameters() {
    let shop = TestShop::spawn().await;
    let s = shop.wechat_shopper(0).await;
    let (_, created) = s.api("create_order", order_body(&[(MUG_BLACK, 1)])).await;
    let id = created["order_id"].as_i64().unwrap();
    // WeChat takes its time with the prepay; the shopper cancels meanwhile.
    shop.sandbox
        .fail_next(Endpoint::V3Jsapi, Fault::Delay(Duration::from_millis(600)));
    let pay = {
        let s = s.clone();
        tokio::spawn(async move { s.api("pay_order", json!({"order_id": id})).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (st, _) = s.api("cancel_order", json!({"order_id": id})).await;
    assert_eq!(st, 200);
    let (st, answer) = pay.await.unwrap();
    assert_eq!(st, 409, "{answer}");
    assert_eq!(answer["code"], "invalid_state");
    assert!(answer.get("paySign").is_none() && answer.get("pay_sign").is_none());
    assert_eq!(shop.order_row(id).await.0, "closed");
}

// ------------------------------------------------------------------ money that cannot land

#[tokio::test]
async fn a_payment_for_a_closed_order_is_refunded_in_full_once() {
    let shop = TestShop::spawn().await;
    let (_s, id, no) = prepaid_order(&shop, &[(ORANGE_SMALL, 2)]).await;
    let total: i64 = order_field(&shop, id, "total_fee").await;
    // The shop closed the order on its own (as it used to): WeChat still takes the money.
    server::sql!(&shop.pool, e => sqlx::query("UPDATE orders SET status = 'closed', closed_at = 1 WHERE id = $1")
        .bind(id)
        .execute(e).await.map(server::db::Done::from))
        .unwrap();
    shop.sandbox.pay(&no).await.unwrap();
    assert!(shop.sandbox.wait_for_ack(&no, Duration::from_secs(5)).await);
    // WeChat's duplicate arrives a second later; the refund is asked for once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let refunds = shop.sandbox.refunds(&no);
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0].refund, total);
    let txid = shop
        .sandbox
        .transaction(&no)
        .unwrap()
        .transaction_id
        .unwrap();
    assert_eq!(refunds[0].out_refund_no, format!("A{txid}"));
    assert_eq!(
        shop.order_row(id).await.0,
        "closed",
        "the order stays closed"
    );
    let rows = refund_rows(&shop, id).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].1, "automatic");
    assert!(
        wait_for(|| async { refund_rows(&shop, id).await[0].3 == "succeeded" }).await,
        "the refund notification settles it"
    );
    let events = shop.events().await;
    assert!(
        events.iter().any(|e| e.1 == "needs_attention"),
        "a person is told: {events:?}"
    );
    let trail = server::payments::trail::trail(&shop.pool, &no)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(trail.refunds.len(), 1);
    assert_eq!(
        trail.refunded_fen, 0,
        "the order's own payment was never taken"
    );
}

// ------------------------------------------------------------------ query states

#[tokio::test]
async fn a_refund_state_answer_is_never_plainly_paid() {
    let shop = TestShop::spawn().await;
    let (s, id, no) = prepaid_order(&shop, &[(ORANGE_SMALL, 1)]).await;
    shop.sandbox.set_drop_notifications(true);
    let t = shop.sandbox.pay(&no).await.unwrap();
    // Refunded at WeChat outside the shop (the merchant platform), before the shop heard of
    // the payment.
    shop.wechat
        .pay
        .refund(&wechat::RefundRequest {
            out_trade_no: no.clone(),
            out_refund_no: "EXTERNAL0001".into(),
            total_fee: t.total,
            refund_fee: 100,
            reason: None,
            notify_url: None,
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        shop.sandbox.transaction(&no).unwrap().state.as_str(),
        "REFUND"
    );
    let (_, st) = s.api("order_status", json!({"order_id": id})).await;
    assert_eq!(st["status"], "refunding", "{st}");
    let (_, cancel) = s.api("cancel_order", json!({"order_id": id})).await;
    assert_eq!(cancel["code"], "invalid_state");
    assert!(shop
        .events()
        .await
        .iter()
        .any(|e| e.0 == "query" && e.1 == "needs_attention"));
}

// ------------------------------------------------------------------ expiry and reconciliation

#[tokio::test]
async fn an_order_closed_answer_counts_as_closed() {
    let shop = TestShop::spawn_with(PayVersion::V2, |_| {}).await;
    let (_s, id, _no) = prepaid_order(&shop, &[(MUG_BLACK, 1)]).await;
    // Expired (v2 wants time_expire minutes ahead, so the order is aged in the database).
    server::sql!(&shop.pool, e => sqlx::query("UPDATE orders SET expires_at = 0 WHERE id = $1")
        .bind(id)
        .execute(e).await.map(server::db::Done::from))
    .unwrap();
    // A close whose first answer was lost: WeChat now says ORDERCLOSED.
    shop.sandbox.fail_next(
        Endpoint::V2CloseOrder,
        Fault::v2("ORDERCLOSED", "订单已关闭"),
    );
    let report = shop.sweeper.run_once().await.unwrap();
    assert_eq!(report.expired, 1, "{report:?}");
    assert_eq!(shop.order_row(id).await.0, "closed");
    assert_eq!(shop.stock(MUG_BLACK).await, 5);
}

#[tokio::test]
async fn a_failing_order_is_retried_later_and_never_blocks_the_others() {
    let shop = TestShop::spawn_with(PayVersion::V3, |_| {}).await;
    let (_s, first, _) = prepaid_order(&shop, &[(MUG_BLACK, 1)]).await;
    let (_s2, second, _) = prepaid_order(&shop, &[(MUG_BLACK, 1)]).await;
    // Both expired (aged in the database, not by waiting on a busy machine).
    server::sql!(&shop.pool, e => sqlx::query("UPDATE orders SET expires_at = 0")
        .execute(e).await.map(server::db::Done::from))
    .unwrap();
    // The first order's query fails with an answer that does not verify (an unsigned
    // ORDER_NOT_EXIST): not trusted, so the order is not closed in the shop.
    shop.sandbox.fail_next(
        Endpoint::V3Query,
        Fault::Http {
            status: 404,
            body: r#"{"code":"ORDER_NOT_EXIST","message":"订单不存在"}"#.into(),
        },
    );
    let report = shop.sweeper.run_once().await.unwrap();
    assert_eq!((report.expired, report.deferred), (1, 1), "{report:?}");
    assert_eq!(
        shop.order_row(first).await.0,
        "unpaid",
        "unverified: nothing changes"
    );
    assert_eq!(shop.order_row(second).await.0, "closed");
    let retry_at: Option<i64> = order_field(&shop, first, "retry_at").await;
    assert!(retry_at.is_some(), "backed off");
    // Right away, the failed order is not tried again (its backoff), and nothing else waits.
    assert_eq!(shop.sweeper.run_once().await.unwrap(), Default::default());
    // Once its time comes, it closes.
    server::sql!(&shop.pool, e => sqlx::query("UPDATE orders SET retry_at = 0 WHERE id = $1")
        .bind(first)
        .execute(e).await.map(server::db::Done::from))
    .unwrap();
    assert_eq!(shop.sweeper.run_once().await.unwrap().expired, 1);
    assert_eq!(shop.order_row(first).await.0, "closed");
    assert_eq!(shop.stock(MUG_BLACK).await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn three_sweepers_at_once_close_each_expired_order_once() {
    let shop = TestShop::spawn_with(PayVersion::V2, |s| s.max_unpaid_orders = 100).await;
    shop.set_stock(ORANGE_SMALL, 100).await;
    let mut orders = Vec::new();
    for _ in 0..15 {
        let (_s, id, no) = prepaid_order(&shop, &[(ORANGE_SMALL, 1)]).await;
        orders.push((id, no));
    }
    server::sql!(&shop.pool, e => sqlx::query("UPDATE orders SET expires_at = 0")
        .execute(e).await.map(server::db::Done::from))
    .unwrap();
    // Three instances' sweepers wake up at the same moment.
    let (a, b, c) = (
        shop.sweeper.clone(),
        shop.sweeper.clone(),
        shop.sweeper.clone(),
    );
    let (a, b, c) = tokio::join!(
        tokio::spawn(async move { a.run_once().await.unwrap() }),
        tokio::spawn(async move { b.run_once().await.unwrap() }),
        tokio::spawn(async move { c.run_once().await.unwrap() }),
    );
    let expired = a.unwrap().expired + b.unwrap().expired + c.unwrap().expired;
    assert_eq!(expired, 15, "each order expired by one sweeper");
    for (id, no) in &orders {
        assert_eq!(shop.order_row(*id).await.0, "closed");
        let t = shop.sandbox.transaction(no).unwrap();
        assert_eq!(t.close_requests, 1, "{no}: closed once at WeChat");
    }
    assert_eq!(shop.stock(ORANGE_SMALL).await, 100, "each unit back once");
}

// ------------------------------------------------------------------ refunds

#[tokio::test]
async fn partial_refunds_add_up_to_the_total_and_no_further() {
    let shop = TestShop::spawn().await;
    let (s, id, no) = paid_order(&shop, &[(ORANGE_SMALL, 2)]).await;
    let total: i64 = order_field(&shop, id, "total_fee").await;

    let first = shop
        .payments
        .refund(&refund(&no, Some(1000), "少发一件赠品"))
        .await
        .unwrap();
    assert!(first.created && first.accepted(), "{first:?}");
    assert!(
        shop.sandbox
            .wait_for_refund_ack(&first.refund.out_refund_no, Duration::from_secs(5))
            .await
    );
    assert!(wait_for(|| async { shop.order_row(id).await.0 == "partially_refunded" }).await);
    assert_eq!(order_field::<i64>(&shop, id, "refunded_fen").await, 1000);

    // The same request again (a double click, a retried command): the same refund.
    let again = shop
        .payments
        .refund(&refund(&no, Some(1000), "少发一件赠品"))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.refund.out_refund_no, first.refund.out_refund_no);
    assert_eq!(shop.sandbox.refunds(&no).len(), 1);

    // More than is left: refused, nothing asked of WeChat.
    let err = shop
        .payments
        .refund(&refund(&id.to_string(), Some(total - 999), "全部退"))
        .await
        .unwrap_err();
    assert!(matches!(err, PaymentError::BadRefund(_)), "{err:?}");

    // Exactly what is left (by order id this time).
    let second = shop
        .payments
        .refund(&refund(&id.to_string(), None, "其余全退"))
        .await
        .unwrap();
    assert_eq!(second.refund.amount_fen, total - 1000);
    assert!(wait_for(|| async { shop.order_row(id).await.0 == "refunded" }).await);
    assert_eq!(order_field::<i64>(&shop, id, "refunded_fen").await, total);

    // A third: nothing is left.
    let err = shop
        .payments
        .refund(&refund(&no, Some(1), "再退"))
        .await
        .unwrap_err();
    assert!(matches!(err, PaymentError::BadRefund(_)), "{err:?}");
    assert_eq!(shop.sandbox.refunds(&no).len(), 2);

    // The shopper sees both refunds and the refunded total; 退款 lists the order.
    let (_, order) = s.api("get_order", json!({"order_id": id})).await;
    assert_eq!(order["status"], "refunded");
    assert_eq!(order["refunded_fen"], total);
    assert_eq!(order["refunds"].as_array().unwrap().len(), 2, "{order}");
    assert_eq!(order["refunds"][0]["state"], "succeeded");
    let (_, st) = s.api("order_status", json!({"order_id": id})).await;
    assert_eq!(st["refunded_fen"], total);
    let (_, list) = s.api("list_orders", json!({"status": "refund"})).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let (_, list) = s.api("list_orders", json!({"status": "paid"})).await;
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");
    let (_, page) = s.get(&format!("/orders/{id}")).await;
    assert!(
        page.contains("退款记录") && page.contains("退款成功"),
        "{page}"
    );
}

#[tokio::test]
async fn refunds_of_unpaid_orders_bad_lines_and_empty_reasons_are_refused() {
    let shop = TestShop::spawn().await;
    let (_s, id, no) = prepaid_order(&shop, &[(ORANGE_SMALL, 1)]).await;
    let err = shop
        .payments
        .refund(&refund(&no, None, "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, PaymentError::InvalidState(_)), "{err:?}");
    shop.sandbox.pay(&no).await.unwrap();
    assert!(wait_for(|| async { shop.order_row(id).await.0 == "paid" }).await);
    let err = shop
        .payments
        .refund(&refund(&no, None, " "))
        .await
        .unwrap_err();
    assert!(matches!(err, PaymentError::BadRefund(_)), "{err:?}");
    let mut by_line = refund(&no, None, "坏了");
    by_line.lines = vec![RefundLine {
        line_no: 2,
        quantity: 1,
    }];
    let err = shop.payments.refund(&by_line).await.unwrap_err();
    assert!(
        matches!(err, PaymentError::BadRefund(_)),
        "no line 2: {err:?}"
    );
    by_line.lines = vec![RefundLine {
        line_no: 1,
        quantity: 2,
    }];
    let err = shop.payments.refund(&by_line).await.unwrap_err();
    assert!(
        matches!(err, PaymentError::BadRefund(_)),
        "only 1 ordered: {err:?}"
    );
    assert!(matches!(
        shop.payments.refund(&refund("nope", None, "x")).await,
        Err(PaymentError::OrderNotFound)
    ));
    assert!(shop.sandbox.refunds(&no).is_empty());
}

#[tokio::test]
async fn a_refund_by_line_with_restock_puts_the_stock_back_once() {
    let shop = TestShop::spawn_with(PayVersion::V2, |_| {}).await;
    let (_s, id, no) = paid_order(&shop, &[(MUG_BLACK, 3), (ORANGE_SMALL, 1)]).await;
    assert_eq!(shop.stock(MUG_BLACK).await, 2);
    let price = shop.price(MUG_BLACK).await;
    let line_of_mug: i64 = server::sql!(&shop.pool, e => sqlx::query_scalar(
        "SELECT line_no + 1 FROM order_lines WHERE order_id = $1 AND sku_id = $2",
    )
    .bind(id)
    .bind(MUG_BLACK)
    .fetch_one(e).await)
    .unwrap();
    let mut req = refund(&no, None, "杯子碎了");
    req.lines = vec![RefundLine {
        line_no: line_of_mug,
        quantity: 2,
    }];
    req.restock = true;
    let out = shop.payments.refund(&req).await.unwrap();
    assert_eq!(out.refund.amount_fen, 2 * price);
    assert!(
        shop.sandbox
            .wait_for_refund_ack(&out.refund.out_refund_no, Duration::from_secs(5))
            .await
    );
    assert!(wait_for(|| async { shop.order_row(id).await.0 == "partially_refunded" }).await);
    // WeChat's duplicate refund notification changes nothing more.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(shop.stock(MUG_BLACK).await, 4);
    // The same two mugs cannot be refunded again; the third can.
    let err = shop
        .payments
        .refund(&{
            let mut r = req.clone();
            r.reason = "又碎了".into();
            r
        })
        .await
        .unwrap_err();
    assert!(matches!(err, PaymentError::BadRefund(_)), "{err:?}");
}

#[tokio::test]
async fn twenty_concurrent_refund_notifications_settle_the_refund_once() {
    let shop = TestShop::spawn().await;
    let (_s, id, no) = paid_order(&shop, &[(MUG_BLACK, 2)]).await;
    shop.sandbox.set_drop_notifications(true);
    let mut req = refund(&no, None, "七天无理由");
    req.lines = vec![RefundLine {
        line_no: 1,
        quantity: 2,
    }];
    req.restock = true;
    let out = shop.payments.refund(&req).await.unwrap();
    let rno = out.refund.out_refund_no.clone();
    settled_at_wechat_only(&shop, id, &rno).await;
    let (headers, body) = shop.sandbox.signed_refund_notification(&rno).unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/wechat/notify/refund/v3", shop.base);
    let answers = futures_util::future::join_all((0..20).map(|_| {
        let mut r = http.post(&url).body(body.clone());
        for (k, v) in &headers {
            r = r.header(k, v);
        }
        r.send()
    }))
    .await;
    for a in answers {
        assert_eq!(a.unwrap().status(), 200);
    }
    assert_eq!(shop.order_row(id).await.0, "refunded");
    assert_eq!(shop.stock(MUG_BLACK).await, 5, "restocked once");
    let events = shop.events().await;
    let notes: Vec<_> = events
        .iter()
        .filter(|e| e.0 == "refund_notify_v3")
        .collect();
    assert_eq!(
        notes.iter().filter(|e| e.1 == "accepted").count(),
        1,
        "{events:?}"
    );
    assert_eq!(
        notes.iter().filter(|e| e.1 == "duplicate").count(),
        19,
        "{events:?}"
    );

    // A forged copy is refused and changes nothing.
    let res = http
        .post(&url)
        .header("wechatpay-serial", "PUB_KEY_ID_0000")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_ne!(res.status(), 200);
}

#[tokio::test]
async fn a_lost_refund_notification_is_caught_by_the_reconciler() {
    let shop = TestShop::spawn_with(PayVersion::V2, |_| {}).await;
    let (_s, id, no) = paid_order(&shop, &[(ORANGE_SMALL, 1)]).await;
    shop.sandbox.set_drop_notifications(true);
    let out = shop
        .payments
        .refund(&refund(&no, None, "不想要了"))
        .await
        .unwrap();
    let rno = out.refund.out_refund_no.clone();
    settled_at_wechat_only(&shop, id, &rno).await;
    server::sql!(&shop.pool, e => sqlx::query("UPDATE refunds SET retry_at = 0")
        .execute(e).await.map(server::db::Done::from))
    .unwrap();
    let report = shop.sweeper.run_once().await.unwrap();
    assert_eq!(report.refunds, 1, "{report:?}");
    assert_eq!(shop.order_row(id).await.0, "refunded");
}

#[tokio::test]
async fn an_abnormal_refund_needs_a_person_and_gives_the_money_back_to_the_order() {
    let shop = TestShop::spawn().await;
    let (_s, id, no) = paid_order(&shop, &[(ORANGE_SMALL, 1)]).await;
    shop.sandbox.make_next_refund_abnormal();
    let out = shop
        .payments
        .refund(&refund(&no, Some(500), "补偿"))
        .await
        .unwrap();
    assert!(
        shop.sandbox
            .wait_for_refund_ack(&out.refund.out_refund_no, Duration::from_secs(5))
            .await
    );
    assert!(wait_for(|| async { refund_rows(&shop, id).await[0].3 == "abnormal" }).await);
    assert_eq!(shop.order_row(id).await.0, "paid");
    assert_eq!(order_field::<i64>(&shop, id, "refunded_fen").await, 0);
    assert!(shop.events().await.iter().any(|e| e.1 == "needs_attention"));
}

#[tokio::test]
async fn a_refund_wechat_refuses_is_failed_and_the_order_is_paid_again() {
    let shop = TestShop::spawn().await;
    let (_s, id, no) = paid_order(&shop, &[(ORANGE_SMALL, 1)]).await;
    shop.sandbox.fail_next(
        Endpoint::V3Refund,
        Fault::v3(403, "NOT_ENOUGH", "基本账户余额不足"),
    );
    let out = shop
        .payments
        .refund(&refund(&no, Some(500), "补偿"))
        .await
        .unwrap();
    assert_eq!(out.refund.status, "failed", "{out:?}");
    assert!(!out.accepted());
    assert_eq!(shop.order_row(id).await.0, "paid");
}

// ------------------------------------------------------------------ reconciliation with WeChat's bill

#[tokio::test]
async fn reconciliation_matches_the_books_and_finds_an_injected_difference() {
    let shop = TestShop::spawn().await;
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date();
    let (_a, a_id, a_no) = paid_order(&shop, &[(ORANGE_SMALL, 1)]).await;
    let (_b, _b_id, b_no) = paid_order(&shop, &[(MUG_BLACK, 1)]).await;
    let out = shop
        .payments
        .refund(&refund(&a_no, Some(990), "差价"))
        .await
        .unwrap();
    assert!(
        shop.sandbox
            .wait_for_refund_ack(&out.refund.out_refund_no, Duration::from_secs(5))
            .await
    );
    assert!(wait_for(|| async { shop.order_row(a_id).await.0 == "partially_refunded" }).await);

    let report = shop.payments.reconcile_bill(today).await.unwrap();
    assert!(report.bill);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!((report.payments_matched, report.refunds_matched), (2, 1));
    assert_eq!(report.refunds_matched_fen, 990);

    // WeChat's bill says one fen more for order b; and a payment the shop never heard of.
    shop.sandbox.tamper_bill_amount(&b_no, 1);
    let (_c, c_id, c_no) = prepaid_order(&shop, &[(ORANGE_SMALL, 1)]).await;
    shop.sandbox.set_drop_notifications(true);
    shop.sandbox.pay(&c_no).await.unwrap();
    assert_eq!(shop.order_row(c_id).await.0, "unpaid");
    let report = shop.payments.reconcile_bill(today).await.unwrap();
    assert_eq!(report.differences.len(), 2, "{report:?}");
    let kinds: Vec<String> = report
        .differences
        .iter()
        .map(|d| {
            serde_json::to_value(d).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        kinds.contains(&"payment_amount_differs".to_string()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"paid_at_wechat_only".to_string()),
        "{kinds:?}"
    );
    let kept: (i64, String) = server::sql!(&shop.pool, e => sqlx::query_as(
        "SELECT difference_count, differences FROM reconciliations WHERE bill_date = $1",
    )
    .bind(today.to_string())
    .fetch_one(e).await)
    .unwrap();
    assert_eq!(kept.0, 2);
    assert!(kept.1.contains(&c_no), "{}", kept.1);

    // A day without trades: no bill, nothing to differ.
    let empty = shop
        .payments
        .reconcile_bill(today - time::Duration::days(30))
        .await
        .unwrap();
    assert!(!empty.bill && empty.is_clean(), "{empty:?}");
}

// ------------------------------------------------------------------ sandbox payments

/// A payment made in the embedded sandbox moved no money: its order says so (API, page, the
/// payment trail behind `wxmall payments`), and a shop on the real WeChat over the same
/// database refuses to refund it.
#[tokio::test]
async fn sandbox_payments_are_marked_and_never_refunded_by_a_real_wechat_shop() {
    let shop = TestShop::spawn().await;
    let (s, id, no) = paid_order(&shop, &[(ORANGE_SMALL, 1)]).await;
    assert!(order_field::<bool>(&shop, id, "paid_in_sandbox").await);
    let (_, order) = s.api("get_order", json!({"order_id": id})).await;
    assert_eq!(order["paid_in_sandbox"], true);
    let (status, page) = s.get(&format!("/orders/{id}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("微信沙箱（模拟支付，未产生真实款项）"));
    let t = server::payments::trail::trail(&shop.pool, &no)
        .await
        .unwrap()
        .unwrap();
    assert!(t.paid_in_sandbox);

    let mut cfg = shop.payments.config().clone();
    cfg.sandbox = false;
    let real = server::payments::Payments::new(shop.pool.clone(), shop.wechat.pay.clone(), cfg);
    let err = real.refund(&refund(&no, None, "退货")).await.unwrap_err();
    assert!(
        matches!(&err, PaymentError::BadRefund(m) if m.contains("沙箱")),
        "{err:?}"
    );
    assert!(
        shop.sandbox.refunds(&no).is_empty(),
        "nothing went to WeChat"
    );
    // The sandbox shop itself refunds it (a rehearsal).
    shop.payments
        .refund(&refund(&no, None, "退货"))
        .await
        .unwrap();
}

/// The order page reads the order, its lines, refunds and after-sale request in one snapshot
/// (`Db::snapshot`): a CI run showed an order still 退款中 beside its refund already 退款成功,
/// the refund's notification having landed between two of the page's reads. A write committed
/// while a snapshot is open is not seen by it, on either database; the next read sees it.
#[tokio::test]
async fn a_snapshot_does_not_see_a_write_committed_while_it_is_open() {
    let shop = TestShop::spawn().await;
    let name_of = "SELECT name FROM products WHERE id = 1";
    let mut snap = shop.pool.snapshot().await.unwrap();
    let before: String =
        server::sql!(&mut snap, e => sqlx::query_scalar(name_of).fetch_one(e).await).unwrap();
    let mut tx = shop.pool.begin().await.unwrap();
    server::sql!(&mut tx, e => sqlx::query("UPDATE products SET name = name || '（新）' WHERE id = 1")
        .execute(e).await.map(|_| ()))
    .unwrap();
    tx.commit().await.unwrap();
    let during: String =
        server::sql!(&mut snap, e => sqlx::query_scalar(name_of).fetch_one(e).await).unwrap();
    assert_eq!(during, before, "the snapshot still sees the page's moment");
    snap.rollback().await.unwrap();
    let after: String =
        server::sql!(&shop.pool, e => sqlx::query_scalar(name_of).fetch_one(e).await).unwrap();
    assert_eq!(after, format!("{before}（新）"));
}
