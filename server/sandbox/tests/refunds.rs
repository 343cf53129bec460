//! Asynchronous refunds, refund notifications and refund queries, over HTTP, checked with code
//! independent of the sandbox (v2 `req_info` is decrypted by the openssl CLI).

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use md5::Digest as _;
use serde_json::{json, Value};
use wechat_sandbox::{DeliveryKind, Endpoint, Fault, PayApi, SandboxOptions, TradeState};

/// Slow settling, for tests that look at a refund while it is still PROCESSING.
async fn start_slow_settle() -> Running {
    start_with(SandboxOptions {
        refund_settle_delay: Duration::from_millis(600),
        ..fast_options()
    })
    .await
}

async fn v2(r: &Running, path: &str, p: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let (client, url) = r.v2_target(path);
    let text = client
        .post(url)
        .body(to_xml(p))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    from_xml(&text)
}

fn openid(r: &Running) -> String {
    r.sandbox.users()[0].openid.clone()
}

/// A paid v2 order (its payment notification goes to `notify`).
async fn paid_v2(r: &Running, no: &str, total: &str, notify: &str) {
    let c = creds();
    let a = v2(
        r,
        "/pay/unifiedorder",
        &signed_md5(m(&[
            ("appid", &c.appid),
            ("mch_id", &c.mchid),
            ("nonce_str", &nonce()),
            ("body", "wxmall-测试商品"),
            ("out_trade_no", no),
            ("total_fee", total),
            ("spbill_create_ip", "127.0.0.1"),
            ("notify_url", notify),
            ("trade_type", "JSAPI"),
            ("openid", &openid(r)),
        ])),
    )
    .await;
    assert_eq!(a["result_code"], "SUCCESS", "{a:?}");
    r.sandbox.pay(no).await.unwrap();
}

fn v2_refund(
    no: &str,
    rno: &str,
    total: &str,
    fee: &str,
    notify: Option<&str>,
) -> BTreeMap<String, String> {
    let c = creds();
    let mut p = m(&[
        ("appid", &c.appid),
        ("mch_id", &c.mchid),
        ("nonce_str", &nonce()),
        ("out_trade_no", no),
        ("out_refund_no", rno),
        ("total_fee", total),
        ("refund_fee", fee),
    ]);
    if let Some(u) = notify {
        p.insert("notify_url".into(), u.into());
    }
    signed_md5(p)
}

fn v2_refundquery(rno: &str) -> BTreeMap<String, String> {
    let c = creds();
    signed_md5(m(&[
        ("appid", &c.appid),
        ("mch_id", &c.mchid),
        ("nonce_str", &nonce()),
        ("out_refund_no", rno),
    ]))
}

struct V3Resp {
    status: u16,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl V3Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

async fn v3(r: &Running, method: &str, path: &str, body: Option<&Value>) -> V3Resp {
    let c = creds();
    let body_s = body.map(|b| b.to_string()).unwrap_or_default();
    let (n, ts) = (nonce(), now_secs());
    let sig = rsa_sign_b64(
        &merchant_key(),
        &format!("{method}\n{path}\n{ts}\n{n}\n{body_s}\n"),
    );
    let auth = format!(
        "WECHATPAY2-SHA256-RSA2048 mchid=\"{}\",nonce_str=\"{n}\",timestamp=\"{ts}\",serial_no=\"{}\",signature=\"{sig}\"",
        c.mchid, c.merchant_serial
    );
    let mut req = r
        .http
        .request(method.parse().unwrap(), format!("{}/pay{path}", r.base))
        .header("Authorization", auth)
        .header("Accept", "application/json");
    if body.is_some() {
        req = req.header("Content-Type", "application/json").body(body_s);
    }
    let resp = req.send().await.unwrap();
    V3Resp {
        status: resp.status().as_u16(),
        headers: reqwest_headers(resp.headers()),
        body: resp.bytes().await.unwrap().to_vec(),
    }
}

async fn paid_v3(r: &Running, no: &str, total: i64, notify: &str) {
    let c = creds();
    let body = json!({
        "appid": c.appid, "mchid": c.mchid, "description": "wxmall-测试商品", "out_trade_no": no,
        "notify_url": notify, "amount": {"total": total, "currency": "CNY"}, "payer": {"openid": openid(r)},
    });
    let a = v3(r, "POST", "/v3/pay/transactions/jsapi", Some(&body)).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    r.sandbox.pay(no).await.unwrap();
}

fn v3_refund(no: &str, rno: &str, total: i64, refund: i64, notify: Option<&str>) -> Value {
    let mut v = json!({"out_trade_no": no, "out_refund_no": rno, "reason": "不想要了",
        "amount": {"refund": refund, "total": total, "currency": "CNY"}});
    if let Some(u) = notify {
        v["notify_url"] = json!(u);
    }
    v
}

/// Decrypts a v2 `req_info` with the openssl CLI (AES-256-ECB, PKCS#7), key = hex(MD5(API key)).
fn openssl_decrypt_req_info(req_info: &str) -> String {
    let key_ascii = hex::encode(md5::Md5::digest(creds().pay_key_v2.as_bytes()));
    let mut child = Command::new("openssl")
        .args([
            "enc",
            "-d",
            "-aes-256-ecb",
            "-K",
            &hex::encode(key_ascii.as_bytes()),
            "-nosalt",
            "-base64",
            "-A",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl CLI");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(req_info.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `<root>…</root>` → fields.
fn from_root(s: &str) -> BTreeMap<String, String> {
    let inner = s
        .trim()
        .strip_prefix("<root>")
        .and_then(|x| x.strip_suffix("</root>"))
        .expect("root element");
    from_xml(&format!("<xml>{inner}</xml>"))
}

#[tokio::test]
async fn v3_refund_processing_then_success_with_signed_notification() {
    let r = start_slow_settle().await;
    let c = creds();
    let pay_rx = receiver(false, 0).await;
    let rx = receiver(false, 1).await; // one failure, then 204
    paid_v3(&r, "V3RF0001", 2500, &pay_rx.url).await;

    let a = v3(
        &r,
        "POST",
        "/v3/refund/domestic/refunds",
        Some(&v3_refund("V3RF0001", "V3R0001", 2500, 800, Some(&rx.url))),
    )
    .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert!(verify_wechatpay(&a.headers, &a.body));
    assert_eq!(a.json()["status"], "PROCESSING");
    assert!(a.json()["success_time"].is_null());
    let refunds = r.sandbox.refunds("V3RF0001");
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].status, "PROCESSING");
    assert_eq!(refunds[0].api, PayApi::V3);
    assert_eq!(refunds[0].notify_url.as_deref(), Some(rx.url.as_str()));
    assert_eq!(
        r.sandbox.transaction("V3RF0001").unwrap().state,
        TradeState::Refund
    );
    // Not settled yet: no notification to build.
    assert!(r.sandbox.signed_refund_notification("V3R0001").is_err());

    assert!(
        r.sandbox
            .wait_for_refund_ack("V3R0001", Duration::from_secs(5))
            .await
    );
    let refund = r.sandbox.refund("V3R0001").unwrap();
    assert_eq!(refund.status, "SUCCESS");
    assert!(refund.success_time.as_deref().unwrap().ends_with("+08:00"));
    assert!(wait_until(|| rx.received().len() >= 3, 3000).await);
    let got = rx.received();
    assert_eq!(got.len(), 3, "1 failure + 1 ack + 1 duplicate");
    // The receiver sees the duplicate a moment before the sandbox records its answer.
    assert!(wait_until(|| r.sandbox.refund_deliveries("V3R0001").len() >= 3, 3000).await);
    let kinds: Vec<_> = r
        .sandbox
        .refund_deliveries("V3R0001")
        .iter()
        .map(|d| d.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            DeliveryKind::Initial,
            DeliveryKind::Retry,
            DeliveryKind::Duplicate
        ]
    );
    let d = &r.sandbox.refund_deliveries("V3R0001")[0];
    assert_eq!(d.out_trade_no, "V3RF0001");
    assert_eq!(d.out_refund_no.as_deref(), Some("V3R0001"));
    // Refund deliveries are not mixed into the payment's.
    assert!(r
        .sandbox
        .deliveries("V3RF0001")
        .iter()
        .all(|d| d.out_refund_no.is_none()));

    let mut ids = Vec::new();
    for g in &got {
        assert!(verify_wechatpay(&g.headers, &g.body), "signature");
        let n: Value = serde_json::from_slice(&g.body).unwrap();
        assert_eq!(n["event_type"], "REFUND.SUCCESS");
        assert_eq!(n["resource_type"], "encrypt-resource");
        let res = &n["resource"];
        assert_eq!(res["original_type"], "refund");
        assert_eq!(res["algorithm"], "AEAD_AES_256_GCM");
        assert_eq!(res["associated_data"], "refund");
        let plain = aes_gcm_decrypt(
            c.apiv3_key.as_bytes(),
            res["nonce"].as_str().unwrap(),
            res["associated_data"].as_str().unwrap(),
            res["ciphertext"].as_str().unwrap(),
        );
        let p: Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(p["mchid"], c.mchid.as_str());
        assert_eq!(p["out_trade_no"], "V3RF0001");
        assert_eq!(p["out_refund_no"], "V3R0001");
        assert_eq!(p["refund_id"], refund.refund_id.as_str());
        assert_eq!(p["refund_status"], "SUCCESS");
        assert_eq!(p["amount"]["total"], 2500);
        assert_eq!(p["amount"]["refund"], 800);
        assert!(p["success_time"].as_str().unwrap().ends_with("+08:00"));
        ids.push(n["id"].clone());
    }
    assert_eq!(ids[1], ids[2], "the duplicate is the same notification");

    // The query shows the final status.
    let q = v3(&r, "GET", "/v3/refund/domestic/refunds/V3R0001", None).await;
    assert!(verify_wechatpay(&q.headers, &q.body));
    assert_eq!(q.json()["status"], "SUCCESS");
    assert_eq!(q.json()["refund_id"], refund.refund_id.as_str());
    let missing = v3(&r, "GET", "/v3/refund/domestic/refunds/NOPE0001", None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["code"], "RESOURCE_NOT_EXISTS");

    // A ready-made copy for the shop's concurrency tests: fresh, signed, same refund.
    let (headers, body) = r.sandbox.signed_refund_notification("V3R0001").unwrap();
    let mut h = axum::http::HeaderMap::new();
    for (k, v) in &headers {
        h.insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    assert!(verify_wechatpay(&h, &body));
    let n: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(n["event_type"], "REFUND.SUCCESS");
    assert_ne!(n["id"], ids[0]);
}

#[tokio::test]
async fn v2_refund_notification_req_info_decrypts_independently() {
    let r = start_slow_settle().await;
    let c = creds();
    let pay_rx = receiver(true, 0).await;
    let rx = receiver(true, 0).await;
    paid_v2(&r, "V2RF1", "1990", &pay_rx.url).await;
    let a = v2(
        &r,
        "/secapi/pay/refund",
        &v2_refund("V2RF1", "V2R1", "1990", "990", Some(&rx.url)),
    )
    .await;
    assert_eq!(a["result_code"], "SUCCESS", "{a:?}");
    assert_eq!(r.sandbox.refund("V2R1").unwrap().status, "PROCESSING");
    // Query while processing.
    let q = v2(&r, "/pay/refundquery", &v2_refundquery("V2R1")).await;
    assert_eq!(q["refund_status_0"], "PROCESSING");

    assert!(
        r.sandbox
            .wait_for_refund_ack("V2R1", Duration::from_secs(5))
            .await
    );
    let got = rx.received();
    let outer = from_xml(std::str::from_utf8(&got[0].body).unwrap());
    assert_eq!(outer["return_code"], "SUCCESS");
    assert_eq!(outer["appid"], c.appid);
    assert_eq!(outer["mch_id"], c.mchid);
    assert!(!outer["nonce_str"].is_empty());
    assert!(
        !outer.contains_key("sign"),
        "refund notifications carry no sign"
    );
    let inner = from_root(&openssl_decrypt_req_info(&outer["req_info"]));
    let refund = r.sandbox.refund("V2R1").unwrap();
    assert_eq!(inner["out_trade_no"], "V2RF1");
    assert_eq!(inner["out_refund_no"], "V2R1");
    assert_eq!(inner["refund_id"], refund.refund_id);
    assert_eq!(inner["refund_status"], "SUCCESS");
    assert_eq!(inner["total_fee"], "1990");
    assert_eq!(inner["refund_fee"], "990");
    assert_eq!(
        inner["transaction_id"],
        r.sandbox
            .transaction("V2RF1")
            .unwrap()
            .transaction_id
            .unwrap()
    );
    let st = &inner["success_time"];
    assert_eq!(st.len(), 19);
    assert_eq!((&st[4..5], &st[10..11], &st[13..14]), ("-", " ", ":"));

    // refundquery: signed, indexed fields, final status.
    let q = v2(&r, "/pay/refundquery", &v2_refundquery("V2R1")).await;
    assert_eq!(q["result_code"], "SUCCESS", "{q:?}");
    assert_eq!(q.get("sign"), Some(&v2_sign_md5(&q, &c.pay_key_v2)));
    assert_eq!(q["out_refund_no_0"], "V2R1");
    assert_eq!(q["refund_id_0"], refund.refund_id);
    assert_eq!(q["refund_fee_0"], "990");
    assert_eq!(q["refund_status_0"], "SUCCESS");
    assert_eq!(q["refund_success_time_0"], *st);
    let nope = v2(&r, "/pay/refundquery", &v2_refundquery("NOPE1")).await;
    assert_eq!(nope["err_code"], "REFUNDNOTEXIST");
    // Faults can be queued for the query.
    r.sandbox.fail_next(
        Endpoint::V2RefundQuery,
        Fault::v2("SYSTEMERROR", "系统错误"),
    );
    let q = v2(&r, "/pay/refundquery", &v2_refundquery("V2R1")).await;
    assert_eq!(q["err_code"], "SYSTEMERROR");
    // An unsigned query is refused.
    let mut unsigned = v2_refundquery("V2R1");
    unsigned.remove("sign");
    assert_eq!(
        v2(&r, "/pay/refundquery", &unsigned).await["return_code"],
        "FAIL"
    );

    // The ready-made copy decrypts the same way.
    let (headers, body) = r.sandbox.signed_refund_notification("V2R1").unwrap();
    assert!(headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v.contains("xml")));
    let outer = from_xml(std::str::from_utf8(&body).unwrap());
    assert_eq!(
        from_root(&openssl_decrypt_req_info(&outer["req_info"]))["refund_id"],
        refund.refund_id
    );
}

#[tokio::test]
async fn abnormal_refund_on_demand_and_money_accounting() {
    let r = start_slow_settle().await;
    let c = creds();
    let pay_rx = receiver(false, 0).await;
    let rx = receiver(false, 0).await;
    paid_v3(&r, "V3AB0001", 1000, &pay_rx.url).await;
    r.sandbox.make_next_refund_abnormal();
    let a = v3(
        &r,
        "POST",
        "/v3/refund/domestic/refunds",
        Some(&v3_refund("V3AB0001", "V3AB-R1", 1000, 1000, Some(&rx.url))),
    )
    .await;
    assert_eq!(a.json()["status"], "PROCESSING");
    // While processing, the money is reserved: nothing more can be refunded.
    let b = v3(
        &r,
        "POST",
        "/v3/refund/domestic/refunds",
        Some(&v3_refund("V3AB0001", "V3AB-R2", 1000, 1, None)),
    )
    .await;
    assert_eq!(b.status, 400, "{}", String::from_utf8_lossy(&b.body));
    assert!(
        r.sandbox
            .wait_for_refund_ack("V3AB-R1", Duration::from_secs(5))
            .await
    );
    assert_eq!(r.sandbox.refund("V3AB-R1").unwrap().status, "ABNORMAL");
    assert_eq!(r.sandbox.refund("V3AB-R1").unwrap().success_time, None);
    let n: Value = serde_json::from_slice(&rx.received()[0].body).unwrap();
    assert_eq!(n["event_type"], "REFUND.ABNORMAL");
    let res = &n["resource"];
    let p: Value = serde_json::from_slice(&aes_gcm_decrypt(
        c.apiv3_key.as_bytes(),
        res["nonce"].as_str().unwrap(),
        "refund",
        res["ciphertext"].as_str().unwrap(),
    ))
    .unwrap();
    assert_eq!(p["refund_status"], "ABNORMAL");
    assert!(p.get("success_time").is_none());
    let q = v3(&r, "GET", "/v3/refund/domestic/refunds/V3AB-R1", None).await;
    assert_eq!(q.json()["status"], "ABNORMAL");
    // An abnormal refund holds no money: the full amount can be refunded again, and the hook
    // applied to one refund only.
    assert_eq!(r.sandbox.transaction("V3AB0001").unwrap().refunded(), 0);
    let b = v3(
        &r,
        "POST",
        "/v3/refund/domestic/refunds",
        Some(&v3_refund("V3AB0001", "V3AB-R3", 1000, 1000, None)),
    )
    .await;
    assert_eq!(b.status, 200, "{}", String::from_utf8_lossy(&b.body));
    assert!(
        wait_until(
            || r.sandbox.refund("V3AB-R3").unwrap().status == "SUCCESS",
            3000
        )
        .await
    );
    // No notify_url: no notification.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(r.sandbox.refund_deliveries("V3AB-R3").is_empty());

    // v2 spelling of an abnormal refund: CHANGE.
    let v2rx = receiver(true, 0).await;
    paid_v2(&r, "V2AB1", "500", &pay_rx.url).await;
    r.sandbox.make_next_refund_abnormal();
    v2(
        &r,
        "/secapi/pay/refund",
        &v2_refund("V2AB1", "V2AB-R1", "500", "500", Some(&v2rx.url)),
    )
    .await;
    assert!(
        r.sandbox
            .wait_for_refund_ack("V2AB-R1", Duration::from_secs(5))
            .await
    );
    let outer = from_xml(std::str::from_utf8(&v2rx.received()[0].body).unwrap());
    let inner = from_root(&openssl_decrypt_req_info(&outer["req_info"]));
    assert_eq!(inner["refund_status"], "CHANGE");
    assert!(!inner.contains_key("success_time"));
    let q = v2(&r, "/pay/refundquery", &v2_refundquery("V2AB-R1")).await;
    assert_eq!(q["refund_status_0"], "CHANGE");
}

#[tokio::test]
async fn refunds_are_idempotent_per_out_refund_no() {
    let r = start().await;
    let pay_rx = receiver(false, 0).await;
    let rx = receiver(false, 0).await;
    paid_v3(&r, "V3ID0001", 3000, &pay_rx.url).await;
    let req = v3_refund("V3ID0001", "V3ID-R1", 3000, 1000, Some(&rx.url));
    let a = v3(&r, "POST", "/v3/refund/domestic/refunds", Some(&req)).await;
    let b = v3(&r, "POST", "/v3/refund/domestic/refunds", Some(&req)).await;
    assert_eq!(b.status, 200);
    assert_eq!(a.json()["refund_id"], b.json()["refund_id"]);
    // Another amount under the same number: refused.
    let c = v3(
        &r,
        "POST",
        "/v3/refund/domestic/refunds",
        Some(&v3_refund("V3ID0001", "V3ID-R1", 3000, 1001, None)),
    )
    .await;
    assert_eq!(c.status, 400);
    assert_eq!(r.sandbox.refunds("V3ID0001").len(), 1);
    assert!(
        r.sandbox
            .wait_for_refund_ack("V3ID-R1", Duration::from_secs(5))
            .await
    );
    // After settling, the same request again is still the same refund — and no second
    // settlement or notification follows.
    let d = v3(&r, "POST", "/v3/refund/domestic/refunds", Some(&req)).await;
    assert_eq!(d.json()["refund_id"], a.json()["refund_id"]);
    assert_eq!(d.json()["status"], "SUCCESS");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.received().len(), 2, "one ack + one duplicate");
    assert_eq!(r.sandbox.refunds("V3ID0001").len(), 1);
    assert_eq!(r.sandbox.transaction("V3ID0001").unwrap().refunded(), 1000);
    // The number belongs to that order: reusing it for another order is refused.
    paid_v3(&r, "V3ID0002", 3000, &pay_rx.url).await;
    let e = v3(
        &r,
        "POST",
        "/v3/refund/domestic/refunds",
        Some(&v3_refund("V3ID0002", "V3ID-R1", 3000, 1000, None)),
    )
    .await;
    assert_eq!(e.status, 400);

    // v2: same request twice → same refund_id, one refund.
    paid_v2(&r, "V2ID1", "700", &pay_rx.url).await;
    let x = v2(
        &r,
        "/secapi/pay/refund",
        &v2_refund("V2ID1", "V2ID-R1", "700", "300", None),
    )
    .await;
    let y = v2(
        &r,
        "/secapi/pay/refund",
        &v2_refund("V2ID1", "V2ID-R1", "700", "300", None),
    )
    .await;
    assert_eq!(x["refund_id"], y["refund_id"]);
    assert_eq!(r.sandbox.refunds("V2ID1").len(), 1);
}

#[tokio::test]
async fn dropped_refund_notifications() {
    let r = start().await;
    let pay_rx = receiver(false, 0).await;
    let rx = receiver(false, 0).await;
    paid_v3(&r, "V3DR0001", 900, &pay_rx.url).await;
    r.sandbox.set_drop_notifications(true);
    let a = v3(
        &r,
        "POST",
        "/v3/refund/domestic/refunds",
        Some(&v3_refund("V3DR0001", "V3DR-R1", 900, 900, Some(&rx.url))),
    )
    .await;
    assert_eq!(a.status, 200);
    assert!(wait_until(|| !r.sandbox.refund_deliveries("V3DR-R1").is_empty(), 3000).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.received().is_empty());
    let d = r.sandbox.refund_deliveries("V3DR-R1");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].kind, DeliveryKind::Dropped);
    assert!(
        !r.sandbox
            .wait_for_refund_ack("V3DR-R1", Duration::from_millis(50))
            .await
    );
    // The refund itself settled: the shop finds out by querying.
    assert_eq!(r.sandbox.refund("V3DR-R1").unwrap().status, "SUCCESS");
    let q = v3(&r, "GET", "/v3/refund/domestic/refunds/V3DR-R1", None).await;
    assert_eq!(q.json()["status"], "SUCCESS");
}

/// `/secapi/pay/refund` needs the merchant's API certificate, as at WeChat: no certificate ends
/// the TLS handshake, the plain-HTTP route refuses, a CA-issued certificate of another merchant
/// is refused, and the merchant's own certificate is accepted.
#[tokio::test]
async fn v2_refund_requires_the_merchant_certificate() {
    let r = start().await;
    let pay_rx = receiver(false, 0).await;
    paid_v2(&r, "V2TLS1", "800", &pay_rx.url).await;
    let req = to_xml(&v2_refund("V2TLS1", "V2TLS-R1", "800", "100", None));

    // Plain HTTP (the shop's /sandbox/pay mount): refused, nothing refunded.
    let plain = r
        .http
        .post(format!("{}/pay/secapi/pay/refund", r.base))
        .body(req.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let a = from_xml(&plain);
    assert_eq!(a["return_code"], "FAIL", "{a:?}");
    assert!(a["return_msg"].contains("证书"), "{a:?}");

    // TLS without a client certificate: the handshake is refused.
    let anonymous = secapi_client(&r.sandbox, None);
    let e = anonymous
        .post(format!("{}/secapi/pay/refund", r.secapi))
        .body(req.clone())
        .send()
        .await;
    assert!(
        e.is_err(),
        "a refund without a client certificate got an answer: {e:?}"
    );

    // A certificate from the same CA, issued to another merchant id, on the same key.
    let other = r
        .sandbox
        .issue_client_certificate("1900000999", &creds().merchant_private_key_pem)
        .unwrap();
    let wrong = secapi_client(
        &r.sandbox,
        Some((&other, &creds().merchant_private_key_pem)),
    );
    let text = wrong
        .post(format!("{}/secapi/pay/refund", r.secapi))
        .body(req.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let a = from_xml(&text);
    assert_eq!(a["return_code"], "FAIL", "{a:?}");
    assert!(a["return_msg"].contains("商户号"), "{a:?}");
    assert!(r.sandbox.refunds("V2TLS1").is_empty());

    // The merchant's own certificate.
    let a = v2(
        &r,
        "/secapi/pay/refund",
        &v2_refund("V2TLS1", "V2TLS-R1", "800", "100", None),
    )
    .await;
    assert_eq!(a["result_code"], "SUCCESS", "{a:?}");
    assert_eq!(r.sandbox.refunds("V2TLS1").len(), 1);
}
