//! Pay v2 / v3, the pay sheet endpoints and notifications, over HTTP.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use wechat_sandbox::{AnswerSigner, DeliveryKind, Endpoint, Fault, Forgery, TradeState};

fn order_params(no: &str, total: &str, notify: &str) -> BTreeMap<String, String> {
    let c = creds();
    let openid = wechat_sandbox::Sandbox::new(c.clone()).users()[0]
        .openid
        .clone();
    m(&[
        ("appid", &c.appid),
        ("mch_id", &c.mchid),
        ("nonce_str", &nonce()),
        ("body", "wxmall-测试商品"),
        ("out_trade_no", no),
        ("total_fee", total),
        ("spbill_create_ip", "127.0.0.1"),
        ("notify_url", notify),
        ("trade_type", "JSAPI"),
        ("openid", &openid),
    ])
}

async fn v2_raw(r: &Running, path: &str, body: String) -> BTreeMap<String, String> {
    let (client, url) = r.v2_target(path);
    let text = client
        .post(url)
        .body(body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    from_xml(&text)
}

async fn v2(r: &Running, path: &str, p: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    v2_raw(r, path, to_xml(p)).await
}

fn answer_sign_ok(a: &BTreeMap<String, String>, hmac: bool) -> bool {
    let key = creds().pay_key_v2;
    let expected = if hmac {
        v2_sign_hmac(a, &key)
    } else {
        v2_sign_md5(a, &key)
    };
    a.get("sign") == Some(&expected)
}

#[tokio::test]
async fn v2_refuses_bad_signatures_and_hostile_xml() {
    let r = start().await;
    let p = order_params("V2BAD1", "100", "http://127.0.0.1:9/notify");
    // Wrong key.
    let mut bad = p.clone();
    bad.insert(
        "sign".into(),
        v2_sign_md5(&p, "0123456789abcdef0123456789abcdef"),
    );
    let a = v2(&r, "/pay/unifiedorder", &bad).await;
    assert_eq!(a["return_code"], "FAIL");
    assert_eq!(a["return_msg"], "签名错误");
    // One byte changed after signing.
    let mut tampered = signed_md5(p.clone());
    tampered.insert("total_fee".into(), "101".into());
    assert_eq!(
        v2(&r, "/pay/unifiedorder", &tampered).await["return_msg"],
        "签名错误"
    );
    // sign_type says HMAC but the sign is MD5.
    let mut p2 = p.clone();
    p2.insert("sign_type".into(), "HMAC-SHA256".into());
    let mut p2s = p2.clone();
    p2s.insert("sign".into(), v2_sign_md5(&p2, &creds().pay_key_v2));
    assert_eq!(
        v2(&r, "/pay/unifiedorder", &p2s).await["return_msg"],
        "签名错误"
    );
    // Missing sign.
    assert_eq!(v2(&r, "/pay/unifiedorder", &p).await["return_code"], "FAIL");
    // XXE.
    let xxe = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{}",
        to_xml(&signed_md5(p.clone())).replace(
            "<body><![CDATA[wxmall-测试商品]]></body>",
            "<body>&x;</body>"
        )
    );
    let a = v2_raw(&r, "/pay/unifiedorder", xxe).await;
    assert_eq!(a["return_code"], "FAIL");
    assert_eq!(a["return_msg"], "XML格式错误");
    // Oversized body.
    let big = format!("<xml><body>{}</body></xml>", "a".repeat(70 * 1024));
    assert_eq!(
        v2_raw(&r, "/pay/unifiedorder", big).await["return_msg"],
        "XML格式错误"
    );
    assert!(r.sandbox.transactions().is_empty());
}

#[tokio::test]
async fn v2_official_md5_vector_passes_the_sign_check() {
    // The official vector's ids, with the sandbox's own answers.
    let c = wechat_sandbox::SandboxCredentials {
        appid: "wxd930ea5d5a258f4f".into(),
        mchid: "10000100".into(),
        pay_key_v2: "192006250b4c09247ec02edce69f6a2d".into(),
        ..creds()
    };
    let sb = wechat_sandbox::Sandbox::new(c);
    let app = axum::Router::new().nest("/sandbox", sb.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let url = format!("http://{addr}/sandbox/pay/pay/orderquery");
    let send = |sign: &'static str, body: &'static str| {
        let url = url.clone();
        async move {
            let x = format!(
                "<xml><appid>wxd930ea5d5a258f4f</appid><mch_id>10000100</mch_id><device_info>1000</device_info>\
<body>{body}</body><nonce_str>ibuaiVcKdpRxkhJA</nonce_str><sign>{sign}</sign></xml>"
            );
            from_xml(
                &reqwest::Client::new()
                    .post(url)
                    .body(x)
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap(),
            )
        }
    };
    // The sign is accepted: the refusal is about the missing out_trade_no, not the sign.
    let a = send("9A0A8659F005D6984697E2CA0A9CF3B7", "test").await;
    assert_eq!(
        a["return_msg"], "out_trade_no和transaction_id不能同时为空",
        "{a:?}"
    );
    let a = send("9A0A8659F005D6984697E2CA0A9CF3B8", "test").await;
    assert_eq!(a["return_msg"], "签名错误");
    let a = send("9A0A8659F005D6984697E2CA0A9CF3B7", "tesT").await;
    assert_eq!(a["return_msg"], "签名错误");
}

#[tokio::test]
async fn v2_unifiedorder_query_close_refund() {
    let r = start().await;
    let notify = "https://shop.example/pay/notify";
    let p = signed_md5(order_params("V2OK1", "1990", notify));
    let a = v2(&r, "/pay/unifiedorder", &p).await;
    assert_eq!(a["return_code"], "SUCCESS", "{a:?}");
    assert_eq!(a["result_code"], "SUCCESS");
    assert_eq!(a["trade_type"], "JSAPI");
    assert!(a["prepay_id"].starts_with("wx"));
    assert!(answer_sign_ok(&a, false));
    // Same params again → same prepay_id.
    let again = v2(
        &r,
        "/pay/unifiedorder",
        &signed_md5(order_params("V2OK1", "1990", notify)),
    )
    .await;
    assert_eq!(again["prepay_id"], a["prepay_id"]);
    // Same out_trade_no, other amount.
    let dup = v2(
        &r,
        "/pay/unifiedorder",
        &signed_md5(order_params("V2OK1", "1991", notify)),
    )
    .await;
    assert_eq!(dup["result_code"], "FAIL");
    assert_eq!(dup["err_code"], "INVALID_REQUEST");
    assert!(answer_sign_ok(&dup, false));
    // HMAC-SHA256 request → HMAC-SHA256 answer.
    let mut h = order_params("V2HMAC", "100", notify);
    h.insert("sign_type".into(), "HMAC-SHA256".into());
    let s = v2_sign_hmac(&h, &creds().pay_key_v2);
    h.insert("sign".into(), s);
    let a2 = v2(&r, "/pay/unifiedorder", &h).await;
    assert_eq!(a2["result_code"], "SUCCESS", "{a2:?}");
    assert!(answer_sign_ok(&a2, true));
    // Parameter errors.
    let mut no_openid = order_params("V2E1", "100", notify);
    no_openid.remove("openid");
    assert_eq!(
        v2(&r, "/pay/unifiedorder", &signed_md5(no_openid)).await["return_msg"],
        "JSAPI支付必须传openid"
    );
    for total in ["19.90", "0", "-1", "abc"] {
        let a = v2(
            &r,
            "/pay/unifiedorder",
            &signed_md5(order_params("V2E2", total, notify)),
        )
        .await;
        assert_eq!(a["return_code"], "FAIL", "{total}");
    }
    let mut stranger = order_params("V2E3", "100", notify);
    stranger.insert("openid".into(), "oSomeoneElse000000000000000".into());
    let a = v2(&r, "/pay/unifiedorder", &signed_md5(stranger)).await;
    assert_eq!(a["err_code"], "PARAM_ERROR");
    assert_eq!(a["err_code_des"], "appid和openid不匹配");
    assert_eq!(
        v2(
            &r,
            "/pay/unifiedorder",
            &signed_md5(order_params("V2E4", "1", "https://shop.example/n?x=1"))
        )
        .await["return_code"],
        "FAIL"
    );

    let c = creds();
    let q = |no: &str| {
        signed_md5(m(&[
            ("appid", &c.appid),
            ("mch_id", &c.mchid),
            ("nonce_str", &nonce()),
            ("out_trade_no", no),
        ]))
    };
    let a = v2(&r, "/pay/orderquery", &q("V2OK1")).await;
    assert_eq!(a["trade_state"], "NOTPAY");
    assert!(answer_sign_ok(&a, false));
    assert_eq!(
        v2(&r, "/pay/orderquery", &q("NOPE")).await["err_code"],
        "ORDERNOTEXIST"
    );

    // Pay (Rust hook), then query, close, refund.
    r.sandbox.set_drop_notifications(true);
    let t = r.sandbox.pay("V2OK1").await.unwrap();
    let a = v2(&r, "/pay/orderquery", &q("V2OK1")).await;
    assert_eq!(a["trade_state"], "SUCCESS");
    assert_eq!(a["total_fee"], "1990");
    assert_eq!(a["transaction_id"], t.transaction_id.clone().unwrap());
    assert_eq!(a["time_end"].len(), 14);
    assert_eq!(
        v2(&r, "/pay/closeorder", &q("V2OK1")).await["err_code"],
        "ORDERPAID"
    );
    assert_eq!(
        v2(
            &r,
            "/pay/unifiedorder",
            &signed_md5(order_params("V2OK1", "1990", notify))
        )
        .await["err_code"],
        "ORDERPAID"
    );

    let refund = |no: &str, rno: &str, total: &str, fee: &str| {
        signed_md5(m(&[
            ("appid", &c.appid),
            ("mch_id", &c.mchid),
            ("nonce_str", &nonce()),
            ("out_trade_no", no),
            ("out_refund_no", rno),
            ("total_fee", total),
            ("refund_fee", fee),
        ]))
    };
    let a = v2(
        &r,
        "/secapi/pay/refund",
        &refund("V2OK1", "R1", "1990", "990"),
    )
    .await;
    assert_eq!(a["result_code"], "SUCCESS", "{a:?}");
    assert!(answer_sign_ok(&a, false));
    assert_eq!(
        v2(
            &r,
            "/secapi/pay/refund",
            &refund("V2OK1", "R2", "1990", "1001")
        )
        .await["result_code"],
        "FAIL"
    );
    assert_eq!(
        v2(
            &r,
            "/secapi/pay/refund",
            &refund("V2OK1", "R1", "1990", "991")
        )
        .await["result_code"],
        "FAIL"
    );
    assert_eq!(
        v2(
            &r,
            "/secapi/pay/refund",
            &refund("V2OK1", "R1", "1990", "990")
        )
        .await["result_code"],
        "SUCCESS"
    );
    assert_eq!(
        r.sandbox.transaction("V2OK1").unwrap().state,
        TradeState::Refund
    );

    // Close an unpaid order; then it cannot be reopened.
    assert_eq!(
        v2(&r, "/pay/closeorder", &q("V2HMAC")).await["result_code"],
        "SUCCESS"
    );
    assert_eq!(
        v2(&r, "/pay/closeorder", &q("V2HMAC")).await["err_code"],
        "ORDERCLOSED"
    );
    assert_eq!(
        r.sandbox.transaction("V2HMAC").unwrap().state,
        TradeState::Closed
    );

    // Faults.
    r.sandbox
        .fail_next(Endpoint::V2OrderQuery, Fault::v2("SYSTEMERROR", "系统错误"));
    let a = v2(&r, "/pay/orderquery", &q("V2OK1")).await;
    assert_eq!(a["err_code"], "SYSTEMERROR");
    r.sandbox
        .fail_next(Endpoint::V2OrderQuery, Fault::CorruptSignature);
    let a = v2(&r, "/pay/orderquery", &q("V2OK1")).await;
    assert_eq!(a["trade_state"], "REFUND");
    assert!(!answer_sign_ok(&a, false));
}

// ---------------- v3 ----------------

struct V3Resp {
    status: u16,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl V3Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn signed(&self) -> bool {
        verify_wechatpay(&self.headers, &self.body)
    }
}

#[derive(Clone)]
struct Auth {
    mchid: String,
    serial: String,
    ts: i64,
    sign_body: Option<String>,
    sign_path: Option<String>,
}

fn auth() -> Auth {
    let c = creds();
    Auth {
        mchid: c.mchid,
        serial: c.merchant_serial,
        ts: now_secs(),
        sign_body: None,
        sign_path: None,
    }
}

async fn v3_as(r: &Running, a: Auth, method: &str, path: &str, body: Option<&Value>) -> V3Resp {
    let body_s = body.map(|b| b.to_string()).unwrap_or_default();
    let n = nonce();
    let msg = format!(
        "{method}\n{}\n{}\n{n}\n{}\n",
        a.sign_path.as_deref().unwrap_or(path),
        a.ts,
        a.sign_body.as_deref().unwrap_or(&body_s)
    );
    let sig = rsa_sign_b64(&merchant_key(), &msg);
    let header = format!(
        "WECHATPAY2-SHA256-RSA2048 mchid=\"{}\",nonce_str=\"{n}\",timestamp=\"{}\",serial_no=\"{}\",signature=\"{sig}\"",
        a.mchid, a.ts, a.serial
    );
    let url = format!("{}/pay{path}", r.base);
    let mut req = r
        .http
        .request(method.parse().unwrap(), url)
        .header("Authorization", header)
        .header("Accept", "application/json");
    if body.is_some() {
        req = req.header("Content-Type", "application/json").body(body_s);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = reqwest_headers(resp.headers());
    let body = resp.bytes().await.unwrap().to_vec();
    V3Resp {
        status,
        headers,
        body,
    }
}

async fn v3(r: &Running, method: &str, path: &str, body: Option<&Value>) -> V3Resp {
    v3_as(r, auth(), method, path, body).await
}

fn jsapi_body(no: &str, total: Value, notify: &str) -> Value {
    let c = creds();
    let openid = wechat_sandbox::Sandbox::new(c.clone()).users()[0]
        .openid
        .clone();
    json!({
        "appid": c.appid, "mchid": c.mchid, "description": "wxmall-测试商品", "out_trade_no": no,
        "notify_url": notify, "amount": {"total": total, "currency": "CNY"}, "payer": {"openid": openid},
        "attach": "cart=7"
    })
}

#[tokio::test]
async fn v3_refuses_a_bad_authorization_with_401() {
    let r = start().await;
    let body = jsapi_body("V3BAD01", json!(100), "https://shop.example/notify");
    let path = "/v3/pay/transactions/jsapi";
    let c = creds();
    let cases: Vec<(&str, Auth)> = vec![
        (
            "body changed after signing",
            Auth {
                sign_body: Some(body.to_string().replace("100", "101")),
                ..auth()
            },
        ),
        (
            "path without /v3 prefix",
            Auth {
                sign_path: Some("/pay/transactions/jsapi".into()),
                ..auth()
            },
        ),
        (
            "sandbox-prefixed path",
            Auth {
                sign_path: Some(format!("/sandbox/pay{path}")),
                ..auth()
            },
        ),
        (
            "wrong serial",
            Auth {
                serial: "0".repeat(40),
                ..auth()
            },
        ),
        (
            "wrong mchid",
            Auth {
                mchid: "1900000000".into(),
                ..auth()
            },
        ),
        (
            "stale timestamp",
            Auth {
                ts: now_secs() - 301,
                ..auth()
            },
        ),
    ];
    for (why, a) in cases {
        let resp = v3_as(&r, a, "POST", path, Some(&body)).await;
        assert_eq!(resp.status, 401, "{why}");
        assert_eq!(resp.json()["code"], "SIGN_ERROR", "{why}");
        assert!(resp.signed(), "{why}: error answers are signed too");
    }
    // Lowercase serial is fine (compared case-insensitively).
    let ok = v3_as(
        &r,
        Auth {
            serial: c.merchant_serial.to_lowercase(),
            ..auth()
        },
        "POST",
        path,
        Some(&body),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    // No header at all.
    let resp = r
        .http
        .post(format!("{}/pay{path}", r.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // A GET whose query string is not what was signed.
    let resp = v3_as(
        &r,
        Auth {
            sign_path: Some("/v3/pay/transactions/out-trade-no/V3BAD01".into()),
            ..auth()
        },
        "GET",
        &format!(
            "/v3/pay/transactions/out-trade-no/V3BAD01?mchid={}",
            c.mchid
        ),
        None,
    )
    .await;
    assert_eq!(resp.status, 401);
}

#[tokio::test]
async fn v3_jsapi_query_close_refund_with_signed_answers() {
    let r = start().await;
    let c = creds();
    let notify = "https://shop.example/notify/v3";
    let resp = v3(
        &r,
        "POST",
        "/v3/pay/transactions/jsapi",
        Some(&jsapi_body("V3OK0001", json!(2500), notify)),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", String::from_utf8_lossy(&resp.body));
    assert!(resp.signed());
    assert_eq!(
        resp.headers["Wechatpay-Serial"],
        c.wechatpay_public_key_id.as_str()
    );
    let prepay = resp.json()["prepay_id"].as_str().unwrap().to_string();
    assert!(prepay.starts_with("wx"));
    // Idempotent repeat; conflicting repeat.
    let again = v3(
        &r,
        "POST",
        "/v3/pay/transactions/jsapi",
        Some(&jsapi_body("V3OK0001", json!(2500), notify)),
    )
    .await;
    assert_eq!(again.json()["prepay_id"], prepay.as_str());
    let dup = v3(
        &r,
        "POST",
        "/v3/pay/transactions/jsapi",
        Some(&jsapi_body("V3OK0001", json!(2600), notify)),
    )
    .await;
    assert_eq!(dup.status, 403);
    assert_eq!(dup.json()["code"], "OUT_TRADE_NO_USED");
    // Amounts must be integer fen.
    for bad in [json!(19.9), json!("1990"), json!(0)] {
        let r2 = v3(
            &r,
            "POST",
            "/v3/pay/transactions/jsapi",
            Some(&jsapi_body("V3BADAMT", bad.clone(), notify)),
        )
        .await;
        assert_eq!(r2.status, 400, "{bad}");
        assert_eq!(r2.json()["code"], "PARAM_ERROR");
    }
    let mut wrong_app = jsapi_body("V3APP001", json!(1), notify);
    wrong_app["appid"] = json!("wx0000000000000000");
    assert_eq!(
        v3(&r, "POST", "/v3/pay/transactions/jsapi", Some(&wrong_app))
            .await
            .json()["code"],
        "APPID_MCHID_NOT_MATCH"
    );

    let q = format!(
        "/v3/pay/transactions/out-trade-no/V3OK0001?mchid={}",
        c.mchid
    );
    let got = v3(&r, "GET", &q, None).await;
    assert_eq!(got.status, 200);
    assert!(got.signed());
    let j = got.json();
    assert_eq!(j["trade_state"], "NOTPAY");
    assert_eq!(j["amount"]["total"], 2500);
    assert_eq!(j["payer"]["openid"], r.sandbox.users()[0].openid.as_str());
    let missing = v3(
        &r,
        "GET",
        &format!(
            "/v3/pay/transactions/out-trade-no/NOPE0001?mchid={}",
            c.mchid
        ),
        None,
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["code"], "ORDER_NOT_EXIST");
    assert!(missing.signed());

    // Pay, query by transaction id, refund.
    r.sandbox.set_drop_notifications(true);
    let t = r.sandbox.pay("V3OK0001").await.unwrap();
    let tid = t.transaction_id.unwrap();
    let got = v3(
        &r,
        "GET",
        &format!("/v3/pay/transactions/id/{tid}?mchid={}", c.mchid),
        None,
    )
    .await;
    assert_eq!(got.json()["trade_state"], "SUCCESS");
    assert_eq!(got.json()["transaction_id"], tid.as_str());
    assert!(got.json()["success_time"]
        .as_str()
        .unwrap()
        .ends_with("+08:00"));
    let refund = json!({"out_trade_no": "V3OK0001", "out_refund_no": "RF0001", "reason": "不想要了",
        "amount": {"refund": 500, "total": 2500, "currency": "CNY"}});
    let rr = v3(&r, "POST", "/v3/refund/domestic/refunds", Some(&refund)).await;
    assert_eq!(rr.status, 200, "{}", String::from_utf8_lossy(&rr.body));
    assert!(rr.signed());
    // Refunds are asynchronous: PROCESSING first, SUCCESS after refund_settle_delay.
    assert_eq!(rr.json()["status"], "PROCESSING");
    assert_eq!(rr.json()["amount"]["refund"], 500);
    let rq = v3(&r, "GET", "/v3/refund/domestic/refunds/RF0001", None).await;
    assert_eq!(rq.json()["refund_id"], rr.json()["refund_id"]);
    assert!(
        wait_until(
            || r.sandbox.refund("RF0001").unwrap().status == "SUCCESS",
            3000
        )
        .await
    );
    let rq = v3(&r, "GET", "/v3/refund/domestic/refunds/RF0001", None).await;
    assert_eq!(rq.json()["status"], "SUCCESS");
    assert!(rq.signed());
    let too_much = json!({"out_trade_no": "V3OK0001", "out_refund_no": "RF0002", "amount": {"refund": 2001, "total": 2500, "currency": "CNY"}});
    assert_eq!(
        v3(&r, "POST", "/v3/refund/domestic/refunds", Some(&too_much))
            .await
            .status,
        400
    );

    // Close: an unpaid order → 204; reopening it → ORDER_CLOSED; closing a paid one → 400.
    v3(
        &r,
        "POST",
        "/v3/pay/transactions/jsapi",
        Some(&jsapi_body("V3CLOSE1", json!(10), notify)),
    )
    .await;
    let closed = v3(
        &r,
        "POST",
        "/v3/pay/transactions/out-trade-no/V3CLOSE1/close",
        Some(&json!({"mchid": c.mchid})),
    )
    .await;
    assert_eq!(closed.status, 204);
    assert!(closed.body.is_empty() && closed.signed());
    let reopen = v3(
        &r,
        "POST",
        "/v3/pay/transactions/jsapi",
        Some(&jsapi_body("V3CLOSE1", json!(10), notify)),
    )
    .await;
    assert_eq!(reopen.status, 400);
    assert_eq!(reopen.json()["code"], "ORDER_CLOSED");
    let paid = v3(
        &r,
        "POST",
        "/v3/pay/transactions/out-trade-no/V3OK0001/close",
        Some(&json!({"mchid": c.mchid})),
    )
    .await;
    assert_eq!(paid.status, 400);

    // Faults: corrupt answer signature; 500.
    r.sandbox
        .fail_next(Endpoint::V3Query, Fault::CorruptSignature);
    let bad = v3(&r, "GET", &q, None).await;
    assert_eq!(bad.status, 200);
    assert!(!bad.signed());
    r.sandbox.fail_next(
        Endpoint::V3Query,
        Fault::v3(500, "SYSTEM_ERROR", "系统异常，请稍后重试"),
    );
    let e = v3(&r, "GET", &q, None).await;
    assert_eq!(e.status, 500);
    assert!(e.signed());
}

#[tokio::test]
async fn v3_certificates_and_platform_certificate_signing() {
    let r = start().await;
    let c = creds();
    let resp = v3(&r, "GET", "/v3/certificates", None).await;
    assert_eq!(resp.status, 200);
    assert!(resp.signed());
    let d = &resp.json()["data"][0];
    assert_eq!(d["serial_no"], c.platform_serial.as_str());
    let e = &d["encrypt_certificate"];
    assert_eq!(e["algorithm"], "AEAD_AES_256_GCM");
    let pem = aes_gcm_decrypt(
        c.apiv3_key.as_bytes(),
        e["nonce"].as_str().unwrap(),
        e["associated_data"].as_str().unwrap(),
        e["ciphertext"].as_str().unwrap(),
    );
    assert_eq!(String::from_utf8(pem).unwrap(), c.platform_certificate_pem);

    r.sandbox
        .update_options(|o| o.answer_signer = AnswerSigner::PlatformCertificate);
    let resp = v3(&r, "GET", "/v3/certificates", None).await;
    assert_eq!(resp.headers["Wechatpay-Serial"], c.platform_serial.as_str());
    assert!(resp.signed());
    // The platform certificate's key is not the public key's.
    let mut h = resp.headers.clone();
    h.insert(
        "Wechatpay-Serial",
        c.wechatpay_public_key_id.parse().unwrap(),
    );
    assert!(!verify_wechatpay(&h, &resp.body));
}

/// `expire_time` of the certificate `GET /v3/certificates` lists, less now.
async fn platform_certificate_time_left(r: &Running) -> (time::Duration, String) {
    let resp = v3(r, "GET", "/v3/certificates", None).await;
    assert_eq!(resp.status, 200);
    assert!(resp.signed());
    let d = &resp.json()["data"][0];
    let expire = time::OffsetDateTime::parse(
        d["expire_time"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let e = &d["encrypt_certificate"];
    let pem = aes_gcm_decrypt(
        r.sandbox.credentials().apiv3_key.as_bytes(),
        e["nonce"].as_str().unwrap(),
        e["associated_data"].as_str().unwrap(),
        e["ciphertext"].as_str().unwrap(),
    );
    assert_eq!(
        d["serial_no"],
        r.sandbox.credentials().platform_serial.as_str()
    );
    (
        expire - time::OffsetDateTime::now_utc(),
        String::from_utf8(pem).unwrap(),
    )
}

#[tokio::test]
async fn a_platform_certificate_with_a_chosen_validity_is_served_as_issued() {
    let day = time::Duration::days(1);
    // Default: five years.
    let (left, _) = platform_certificate_time_left(&start().await).await;
    assert!(
        left > 5 * 365 * day - day && left <= 5 * 365 * day,
        "{left}"
    );

    // Ten days: the same key and serial, another certificate, served as it is.
    let c = creds()
        .with_platform_certificate_validity(Duration::from_secs(10 * 86_400))
        .unwrap();
    assert_eq!(c.platform_serial, creds().platform_serial);
    assert_eq!(c.platform_private_key_pem, creds().platform_private_key_pem);
    assert_ne!(c.platform_certificate_pem, creds().platform_certificate_pem);
    let r = start_with_credentials(c.clone(), fast_options()).await;
    let (left, pem) = platform_certificate_time_left(&r).await;
    assert_eq!(pem, c.platform_certificate_pem);
    assert!(
        left > 10 * day - time::Duration::minutes(1) && left <= 10 * day,
        "{left}"
    );
    // It signs as the five-year one did.
    r.sandbox
        .update_options(|o| o.answer_signer = AnswerSigner::PlatformCertificate);
    let resp = v3(&r, "GET", "/v3/certificates", None).await;
    assert_eq!(resp.headers["Wechatpay-Serial"], c.platform_serial.as_str());
    assert!(resp.signed());
}

// ---------------- the pay sheet and notifications ----------------

async fn post_json(r: &Running, path: &str, body: &Value, cookie: Option<&str>) -> Value {
    let mut req = r.http.post(format!("{}{path}", r.base)).json(body);
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    req.send().await.unwrap().json().await.unwrap()
}

fn v2_pay_params(prepay: &str, sign_type: &str) -> Value {
    let c = creds();
    let ts = now_secs().to_string();
    let n = nonce();
    let package = format!("prepay_id={prepay}");
    let p = m(&[
        ("appId", &c.appid),
        ("timeStamp", &ts),
        ("nonceStr", &n),
        ("package", &package),
        ("signType", sign_type),
    ]);
    let sign = if sign_type == "MD5" {
        v2_sign_md5(&p, &c.pay_key_v2)
    } else {
        v2_sign_hmac(&p, &c.pay_key_v2)
    };
    json!({"via": "getBrandWCPayRequest", "appId": c.appid, "timeStamp": ts, "nonceStr": n,
        "package": package, "signType": sign_type, "paySign": sign, "url": "https://shop.example/pay/"})
}

async fn wx_config(r: &Running, url: &str, list: &[&str]) -> String {
    let c = creds();
    let tok: Value = r
        .http
        .get(format!(
            "{}/api/cgi-bin/token?grant_type=client_credential&appid={}&secret={}",
            r.base, c.appid, c.appsecret
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t: Value = r
        .http
        .get(format!(
            "{}/api/cgi-bin/ticket/getticket?access_token={}&type=jsapi",
            r.base,
            tok["access_token"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ts = now_secs().to_string();
    let n = nonce();
    let sig = jsapi_sha1(t["ticket"].as_str().unwrap(), &n, &ts, url);
    let v = post_json(
        r,
        "/jsapi/config",
        &json!({"appId": c.appid, "timestamp": ts, "nonceStr": n, "signature": sig, "url": url, "jsApiList": list}),
        None,
    )
    .await;
    assert_eq!(v["ok"], true, "{v}");
    v["configId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn v2_pay_sheet_then_signed_notification_with_retry_and_duplicate() {
    let r = start().await;
    let rx = receiver(true, 1).await; // first delivery fails
    let created = v2(
        &r,
        "/pay/unifiedorder",
        &signed_md5(order_params("V2PAY1", "1230", &rx.url)),
    )
    .await;
    let prepay = created["prepay_id"].clone();

    // The classic mistake: the unifiedorder answer's sign as paySign.
    let mut wrong = v2_pay_params(&prepay, "MD5");
    wrong["paySign"] = json!(created["sign"]);
    let v = post_json(&r, "/jsapi/pay/prepare", &wrong, None).await;
    assert_eq!(v["ok"], false);
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .starts_with("支付验证签名失败"),
        "{v}"
    );
    // signType other than the order's sign_type.
    let v = post_json(
        &r,
        "/jsapi/pay/prepare",
        &v2_pay_params(&prepay, "HMAC-SHA256"),
        None,
    )
    .await;
    assert_eq!(v["ok"], false);
    // A different logged-in sandbox user than the order's payer.
    let v = post_json(
        &r,
        "/jsapi/pay/prepare",
        &v2_pay_params(&prepay, "MD5"),
        Some("wxsandbox_user=2"),
    )
    .await;
    assert_eq!(v["ok"], false, "{v}");

    // Good: the sheet data, then cancel (nothing changes), then pay.
    let good = v2_pay_params(&prepay, "MD5");
    let v = post_json(&r, "/jsapi/pay/prepare", &good, Some("wxsandbox_user=1")).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["amountText"], "¥12.30");
    assert_eq!(v["merchantName"], creds().merchant_name.as_str());
    assert_eq!(v["description"], "wxmall-测试商品");
    let cancel = post_json(
        &r,
        "/jsapi/pay/cancel",
        &json!({"payToken": v["payToken"]}),
        None,
    )
    .await;
    assert_eq!(cancel["ok"], true);
    assert_eq!(
        r.sandbox.transaction("V2PAY1").unwrap().state,
        TradeState::NotPay
    );
    // The cancelled session cannot be confirmed.
    let stale = post_json(
        &r,
        "/jsapi/pay/confirm",
        &json!({"payToken": v["payToken"]}),
        None,
    )
    .await;
    assert_eq!(stale["ok"], false);

    let v = post_json(&r, "/jsapi/pay/prepare", &good, None).await;
    let done = post_json(
        &r,
        "/jsapi/pay/confirm",
        &json!({"payToken": v["payToken"]}),
        None,
    )
    .await;
    assert_eq!(done["ok"], true, "{done}");
    let t = r.sandbox.transaction("V2PAY1").unwrap();
    assert_eq!(t.state, TradeState::Success);

    // Attempt 1 failed (500), attempt 2 acknowledged, then one duplicate.
    assert!(
        wait_until(|| rx.received().len() >= 3, 5000).await,
        "{:?}",
        r.sandbox.deliveries("V2PAY1")
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let got = rx.received();
    assert_eq!(got.len(), 3);
    for g in &got {
        let x = from_xml(std::str::from_utf8(&g.body).unwrap());
        assert!(answer_sign_ok(&x, false), "notification sign: {x:?}");
        for k in [
            "appid",
            "mch_id",
            "nonce_str",
            "sign",
            "result_code",
            "return_code",
            "openid",
            "trade_type",
            "bank_type",
            "total_fee",
            "cash_fee",
            "fee_type",
            "transaction_id",
            "out_trade_no",
            "time_end",
            "is_subscribe",
        ] {
            assert!(x.contains_key(k), "missing {k}");
        }
        assert_eq!(x["total_fee"], "1230");
        assert_eq!(x["out_trade_no"], "V2PAY1");
        assert_eq!(x["transaction_id"], t.transaction_id.clone().unwrap());
        assert_eq!(x["result_code"], "SUCCESS");
    }
    let d = r.sandbox.deliveries("V2PAY1");
    let kinds: Vec<_> = d.iter().map(|d| (d.kind, d.acknowledged)).collect();
    assert_eq!(
        kinds,
        vec![
            (DeliveryKind::Initial, false),
            (DeliveryKind::Retry, true),
            (DeliveryKind::Duplicate, true)
        ]
    );
    // A paid order cannot be paid again.
    let v = post_json(
        &r,
        "/jsapi/pay/prepare",
        &v2_pay_params(&prepay, "MD5"),
        None,
    )
    .await;
    assert_eq!(v["reason"], "该订单已支付");

    // Forgeries go out with a bad signature / wrong amount.
    let f = r
        .sandbox
        .forge_notification("V2PAY1", Forgery::BadSignature)
        .await
        .unwrap();
    let x = from_xml(&f.request_body);
    assert!(!answer_sign_ok(&x, false));
    let f = r
        .sandbox
        .forge_notification("V2PAY1", Forgery::WrongAmount)
        .await
        .unwrap();
    let x = from_xml(&f.request_body);
    assert!(answer_sign_ok(&x, false));
    assert_eq!(x["total_fee"], "1231");
    assert!(r
        .sandbox
        .forge_notification("V2PAY1", Forgery::StaleTimestamp)
        .await
        .is_err());
}

#[tokio::test]
async fn v3_choose_wx_pay_then_encrypted_signed_notification() {
    let r = start().await;
    let c = creds();
    let rx = receiver(false, 2).await; // two failures, then 204
    let resp = v3(
        &r,
        "POST",
        "/v3/pay/transactions/jsapi",
        Some(&jsapi_body("V3PAY0001", json!(880), &rx.url)),
    )
    .await;
    let prepay = resp.json()["prepay_id"].as_str().unwrap().to_string();
    let page = "https://shop.example/pay/checkout?order=V3PAY0001";

    let ts = now_secs().to_string();
    let n = nonce();
    let package = format!("prepay_id={prepay}");
    let pay_sign = rsa_sign_b64(
        &merchant_key(),
        &format!("{}\n{ts}\n{n}\n{package}\n", c.appid),
    );
    let mut req = json!({"via": "chooseWXPay", "configId": "none", "timeStamp": ts, "nonceStr": n,
        "package": package, "signType": "RSA", "paySign": pay_sign, "url": page});

    // Without a successful wx.config: permission denied.
    let v = post_json(&r, "/jsapi/pay/prepare", &req, None).await;
    assert_eq!(v["kind"], "permission");
    // chooseWXPay must be in jsApiList.
    req["configId"] = json!(wx_config(&r, page, &["updateAppMessageShareData"]).await);
    assert_eq!(
        post_json(&r, "/jsapi/pay/prepare", &req, None).await["kind"],
        "permission"
    );
    req["configId"] = json!(wx_config(&r, page, &["chooseWXPay"]).await);
    // v3 prepay with an MD5 signType → refused.
    let mut md5 = req.clone();
    md5["signType"] = json!("MD5");
    assert_eq!(
        post_json(&r, "/jsapi/pay/prepare", &md5, None).await["ok"],
        false
    );
    // One byte of the signed message changed.
    let mut other = req.clone();
    other["nonceStr"] = json!(format!("{n}x"));
    let v = post_json(&r, "/jsapi/pay/prepare", &other, None).await;
    assert_eq!(v["reason"], "支付验证签名失败");
    // Payment directories, when configured, follow the URL the shim sends.
    r.sandbox
        .update_options(|o| o.pay_directories = vec!["https://shop.example/cart/".into()]);
    let v = post_json(&r, "/jsapi/pay/prepare", &req, None).await;
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .starts_with("当前页面的URL未注册"),
        "{v}"
    );
    r.sandbox
        .update_options(|o| o.pay_directories = vec!["https://shop.example/pay/".into()]);

    let v = post_json(&r, "/jsapi/pay/prepare", &req, None).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["amountText"], "¥8.80");
    let done = post_json(
        &r,
        "/jsapi/pay/confirm",
        &json!({"payToken": v["payToken"]}),
        None,
    )
    .await;
    assert_eq!(done["ok"], true);

    assert!(
        wait_until(|| rx.received().len() >= 4, 6000).await,
        "{:?}",
        r.sandbox.deliveries("V3PAY0001")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = rx.received();
    assert_eq!(got.len(), 4, "2 failures + 1 ack + 1 duplicate");
    let mut ids = Vec::new();
    for g in &got {
        assert!(
            verify_wechatpay(&g.headers, &g.body),
            "notification signature"
        );
        let n: Value = serde_json::from_slice(&g.body).unwrap();
        assert_eq!(n["event_type"], "TRANSACTION.SUCCESS");
        assert_eq!(n["resource_type"], "encrypt-resource");
        let res = &n["resource"];
        assert_eq!(res["algorithm"], "AEAD_AES_256_GCM");
        assert_eq!(res["original_type"], "transaction");
        let plain = aes_gcm_decrypt(
            c.apiv3_key.as_bytes(),
            res["nonce"].as_str().unwrap(),
            res["associated_data"].as_str().unwrap(),
            res["ciphertext"].as_str().unwrap(),
        );
        let t: Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(t["trade_state"], "SUCCESS");
        assert_eq!(t["out_trade_no"], "V3PAY0001");
        assert_eq!(t["amount"]["total"], 880);
        assert_eq!(t["appid"], c.appid.as_str());
        assert_eq!(t["mchid"], c.mchid.as_str());
        assert_eq!(t["payer"]["openid"], r.sandbox.users()[0].openid.as_str());
        assert_eq!(t["attach"], "cart=7");
        assert!(t["transaction_id"].as_str().unwrap().starts_with("42000"));
        ids.push(n["id"].clone());
    }
    // The duplicate is the same notification.
    assert_eq!(ids[2], ids[3]);
    assert!(
        r.sandbox
            .wait_for_ack("V3PAY0001", Duration::from_secs(1))
            .await
    );

    // v3 forgeries are detectably bad.
    for f in [
        Forgery::BadSignature,
        Forgery::UnknownSerial,
        Forgery::StaleTimestamp,
    ] {
        r.sandbox.forge_notification("V3PAY0001", f).await.unwrap();
        let last = rx.received().pop().unwrap();
        assert!(!verify_wechatpay(&last.headers, &last.body), "{f:?}");
    }
    r.sandbox
        .forge_notification("V3PAY0001", Forgery::MissingHeaders)
        .await
        .unwrap();
    assert!(rx
        .received()
        .pop()
        .unwrap()
        .headers
        .get("Wechatpay-Signature")
        .is_none());
}

#[tokio::test]
async fn lost_notifications_and_expired_prepay() {
    let r = start().await;
    let rx = receiver(true, 0).await;
    r.sandbox.set_drop_notifications(true);
    v2(
        &r,
        "/pay/unifiedorder",
        &signed_md5(order_params("V2DROP", "100", &rx.url)),
    )
    .await;
    r.sandbox.pay("V2DROP").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.received().is_empty());
    assert_eq!(
        r.sandbox.deliveries("V2DROP")[0].kind,
        DeliveryKind::Dropped
    );
    assert!(
        !r.sandbox
            .wait_for_ack("V2DROP", Duration::from_millis(50))
            .await
    );
    r.sandbox.set_drop_notifications(false);

    // A receiver that never acknowledges: bounded attempts.
    let never = receiver(true, 100).await;
    v2(
        &r,
        "/pay/unifiedorder",
        &signed_md5(order_params("V2NEVER", "100", &never.url)),
    )
    .await;
    r.sandbox.pay("V2NEVER").await.unwrap();
    assert!(wait_until(|| never.received().len() >= 5, 3000).await);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(never.received().len(), 5, "1 + 4 retries");

    // prepay_id expires after 2 hours.
    let a = v2(
        &r,
        "/pay/unifiedorder",
        &signed_md5(order_params("V2EXP", "100", &rx.url)),
    )
    .await;
    r.sandbox.advance_clock(Duration::from_secs(7201));
    let v = post_json(
        &r,
        "/jsapi/pay/prepare",
        &v2_pay_params(&a["prepay_id"], "MD5"),
        None,
    )
    .await;
    assert_eq!(v["ok"], false);
    // Calling unifiedorder again gives a fresh prepay_id that works.
    let b = v2(
        &r,
        "/pay/unifiedorder",
        &signed_md5(order_params("V2EXP", "100", &rx.url)),
    )
    .await;
    assert_ne!(a["prepay_id"], b["prepay_id"]);
    assert_eq!(
        post_json(
            &r,
            "/jsapi/pay/prepare",
            &v2_pay_params(&b["prepay_id"], "MD5"),
            None
        )
        .await["ok"],
        true
    );
}
