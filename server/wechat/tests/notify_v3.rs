//! v3 notifications built by the test itself: a transaction encrypted with a 32-byte APIv3 key and
//! signed with a test platform key — then broken in every way that must be refused, each with its
//! own error variant.
mod common;

use common::*;
use http::HeaderMap;
use wechat::pay::notify::{ApiVersion, NotifyError};
use wechat::pay::v3::aead::{encrypt_resource, ApiV3Key};
use wechat::pay::v3::certs::Verifier;
use wechat::pay::v3::notify::{parse, parse_cached, V3NotifyConfig};
use wechat::TradeState;

fn cfg() -> V3NotifyConfig {
    V3NotifyConfig {
        appid: APPID.into(),
        mchid: MCHID.into(),
        apiv3_key: ApiV3Key::new(APIV3_KEY).unwrap(),
    }
}

fn verifier() -> Verifier {
    Verifier::builder()
        .platform_certificate_pem(&keys().plat_cert_pem)
        .unwrap()
        .wechatpay_public_key(PUB_KEY_ID, &keys().pubkey_pem)
        .unwrap()
        .build()
}

fn transaction(appid: &str, mchid: &str) -> serde_json::Value {
    serde_json::json!({
        "mchid": mchid, "appid": appid, "out_trade_no": "1217752501201407033233368018",
        "transaction_id": "1217752501201407033233368018", "trade_type": "JSAPI", "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功", "bank_type": "CMC", "attach": "cart=1",
        "success_time": "2018-06-08T10:34:56+08:00", "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": 1990, "payer_total": 1890, "currency": "CNY", "payer_currency": "CNY"}
    })
}

fn envelope_with(
    plaintext: &[u8],
    event: &str,
    algorithm: &str,
    ad_used: &str,
    ad_sent: &str,
    corrupt: bool,
) -> Vec<u8> {
    let key = ApiV3Key::new(APIV3_KEY).unwrap();
    let nonce = "fdasflkja484";
    let mut ct = encrypt_resource(&key, nonce, ad_used, plaintext).unwrap();
    if corrupt {
        // Flip one base64 character in the middle of the ciphertext.
        let mid = ct.len() / 2;
        let c = if &ct[mid..mid + 1] == "A" { "B" } else { "A" };
        ct.replace_range(mid..mid + 1, c);
    }
    serde_json::json!({
        "id": "EV-2018022511223320873", "create_time": "2015-05-20T13:29:35+08:00",
        "resource_type": "encrypt-resource", "event_type": event, "summary": "支付成功",
        "resource": {"original_type": "transaction", "algorithm": algorithm, "ciphertext": ct,
                     "associated_data": ad_sent, "nonce": nonce}
    })
    .to_string()
    .into_bytes()
}

fn good_body() -> Vec<u8> {
    envelope_with(
        transaction(APPID, MCHID).to_string().as_bytes(),
        "TRANSACTION.SUCCESS",
        "AEAD_AES_256_GCM",
        "transaction",
        "transaction",
        false,
    )
}

fn sign(body: &[u8]) -> HeaderMap {
    signed_headers(&keys().plat_key, PLAT_SERIAL, now(), body)
}

#[tokio::test]
async fn valid_notification_parses() {
    let body = good_body();
    let n = parse(&sign(&body), &body, &verifier(), &cfg())
        .await
        .expect("valid");
    assert_eq!(n.api, ApiVersion::V3);
    assert_eq!(n.out_trade_no, "1217752501201407033233368018");
    assert_eq!(n.transaction_id, "1217752501201407033233368018");
    assert_eq!(n.total_fee, 1990);
    assert_eq!(n.payer_total, Some(1890));
    assert_eq!(n.openid, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o");
    assert_eq!(n.appid, APPID);
    assert_eq!(n.mchid, MCHID);
    assert_eq!(n.trade_state, TradeState::Success);
    assert!(n.is_success() && n.amount_matches(1990) && !n.amount_matches(1989));
    assert_eq!(n.paid_at.as_deref(), Some("2018-06-08T10:34:56+08:00"));
    assert_eq!(n.attach.as_deref(), Some("cart=1"));
    assert_eq!(n.notification_id.as_deref(), Some("EV-2018022511223320873"));
    // Public-key mode and a lowercase serial work too.
    let h = signed_headers(&keys().pubkey_key, PUB_KEY_ID, now(), &body);
    assert!(parse(&h, &body, &verifier(), &cfg()).await.is_ok());
    let h = signed_headers(&keys().plat_key, &PLAT_SERIAL.to_lowercase(), now(), &body);
    assert!(parse_cached(&h, &body, &verifier(), &cfg()).is_ok());
}

#[tokio::test]
async fn tampered_body_is_bad_signature() {
    let body = good_body();
    let h = sign(&body);
    let mut tampered = body.clone();
    let s = String::from_utf8(tampered.clone())
        .unwrap()
        .replace("EV-2018022511223320873", "EV-2018022511223320874");
    tampered = s.into_bytes();
    assert!(matches!(
        parse(&h, &tampered, &verifier(), &cfg()).await,
        Err(NotifyError::BadSignature)
    ));
    // Whitespace changes are tampering too: verification is over the raw bytes.
    let mut spaced = body.clone();
    spaced.push(b' ');
    assert!(matches!(
        parse(&h, &spaced, &verifier(), &cfg()).await,
        Err(NotifyError::BadSignature)
    ));
    // Signed by another key under the platform serial.
    let h = signed_headers(&keys().other_key, PLAT_SERIAL, now(), &body);
    assert!(matches!(
        parse(&h, &body, &verifier(), &cfg()).await,
        Err(NotifyError::BadSignature)
    ));
    // WeChat's signature probe.
    let mut h = sign(&body);
    h.insert(
        "Wechatpay-Signature",
        "WECHATPAY/SIGNTEST/ABCDEFGHIJKLMNOPQRSTUVWXYZ"
            .parse()
            .unwrap(),
    );
    assert!(matches!(
        parse(&h, &body, &verifier(), &cfg()).await,
        Err(NotifyError::BadSignature)
    ));
}

#[tokio::test]
async fn wrong_serial_is_unknown_serial() {
    let body = good_body();
    let h = signed_headers(&keys().plat_key, "ABCDEF0123", now(), &body);
    assert!(matches!(
        parse(&h, &body, &verifier(), &cfg()).await,
        Err(NotifyError::UnknownSerial(_))
    ));
    let h = signed_headers(
        &keys().pubkey_key,
        "PUB_KEY_ID_0000000000000000000000000000",
        now(),
        &body,
    );
    assert!(matches!(
        parse(&h, &body, &verifier(), &cfg()).await,
        Err(NotifyError::UnknownSerial(_))
    ));
    // Right key material, wrong kind of serial: the platform key is not the public key.
    let h = signed_headers(&keys().plat_key, PUB_KEY_ID, now(), &body);
    assert!(matches!(
        parse(&h, &body, &verifier(), &cfg()).await,
        Err(NotifyError::BadSignature)
    ));
}

#[tokio::test]
async fn stale_or_future_timestamp_refused() {
    let body = good_body();
    // A future timestamp shrinks by one each second the test takes, so it is well past the
    // 300 s edge: `now() + 301` was accepted when the clock ticked before the check.
    for ts in [now() - 301, now() + 310, now() - 86_400] {
        let h = signed_headers(&keys().plat_key, PLAT_SERIAL, ts, &body);
        assert!(
            matches!(
                parse(&h, &body, &verifier(), &cfg()).await,
                Err(NotifyError::StaleTimestamp { .. })
            ),
            "{ts}"
        );
    }
    let h = signed_headers(&keys().plat_key, PLAT_SERIAL, now() - 290, &body);
    assert!(
        parse(&h, &body, &verifier(), &cfg()).await.is_ok(),
        "inside the window"
    );
    let mut h = sign(&body);
    h.insert("Wechatpay-Timestamp", "12ab".parse().unwrap());
    assert!(matches!(
        parse(&h, &body, &verifier(), &cfg()).await,
        Err(NotifyError::BadHeader("Wechatpay-Timestamp"))
    ));
}

#[tokio::test]
async fn each_missing_header_refused() {
    let body = good_body();
    for name in [
        "Wechatpay-Timestamp",
        "Wechatpay-Nonce",
        "Wechatpay-Signature",
        "Wechatpay-Serial",
    ] {
        let mut h = sign(&body);
        h.remove(name);
        match parse(&h, &body, &verifier(), &cfg()).await {
            Err(NotifyError::MissingHeader(n)) => assert_eq!(n, name),
            other => panic!("{name}: {other:?}"),
        }
    }
    assert!(matches!(
        parse(&HeaderMap::new(), &body, &verifier(), &cfg()).await,
        Err(NotifyError::MissingHeader(_))
    ));
}

#[tokio::test]
async fn bad_ciphertext_or_associated_data_is_decrypt_error() {
    let plain = transaction(APPID, MCHID).to_string();
    let corrupt = envelope_with(
        plain.as_bytes(),
        "TRANSACTION.SUCCESS",
        "AEAD_AES_256_GCM",
        "transaction",
        "transaction",
        true,
    );
    assert!(matches!(
        parse(&sign(&corrupt), &corrupt, &verifier(), &cfg()).await,
        Err(NotifyError::Decrypt)
    ));
    let wrong_ad = envelope_with(
        plain.as_bytes(),
        "TRANSACTION.SUCCESS",
        "AEAD_AES_256_GCM",
        "transaction",
        "refund",
        false,
    );
    assert!(matches!(
        parse(&sign(&wrong_ad), &wrong_ad, &verifier(), &cfg()).await,
        Err(NotifyError::Decrypt)
    ));
    let mut other_key = cfg();
    other_key.apiv3_key = ApiV3Key::new("fedcba9876543210FEDCBA9876543210").unwrap();
    let body = good_body();
    assert!(matches!(
        parse(&sign(&body), &body, &verifier(), &other_key).await,
        Err(NotifyError::Decrypt)
    ));
}

#[tokio::test]
async fn event_algorithm_account_checks() {
    let plain = transaction(APPID, MCHID).to_string();
    let refund = envelope_with(
        plain.as_bytes(),
        "REFUND.SUCCESS",
        "AEAD_AES_256_GCM",
        "transaction",
        "transaction",
        false,
    );
    assert!(
        matches!(parse(&sign(&refund), &refund, &verifier(), &cfg()).await, Err(NotifyError::UnexpectedEvent(e)) if e == "REFUND.SUCCESS")
    );
    let algo = envelope_with(
        plain.as_bytes(),
        "TRANSACTION.SUCCESS",
        "AEAD_AES_128_CBC",
        "transaction",
        "transaction",
        false,
    );
    assert!(matches!(
        parse(&sign(&algo), &algo, &verifier(), &cfg()).await,
        Err(NotifyError::UnsupportedAlgorithm(_))
    ));
    let other_app = transaction("wx0000000000000000", MCHID).to_string();
    let b = envelope_with(
        other_app.as_bytes(),
        "TRANSACTION.SUCCESS",
        "AEAD_AES_256_GCM",
        "transaction",
        "transaction",
        false,
    );
    assert!(matches!(
        parse(&sign(&b), &b, &verifier(), &cfg()).await,
        Err(NotifyError::AppIdMismatch(_))
    ));
    let other_mch = transaction(APPID, "1111111111").to_string();
    let b = envelope_with(
        other_mch.as_bytes(),
        "TRANSACTION.SUCCESS",
        "AEAD_AES_256_GCM",
        "transaction",
        "transaction",
        false,
    );
    assert!(matches!(
        parse(&sign(&b), &b, &verifier(), &cfg()).await,
        Err(NotifyError::MchIdMismatch(_))
    ));
    let mut t = transaction(APPID, MCHID);
    t["amount"]["total"] = serde_json::json!("1990");
    let b = envelope_with(
        t.to_string().as_bytes(),
        "TRANSACTION.SUCCESS",
        "AEAD_AES_256_GCM",
        "transaction",
        "transaction",
        false,
    );
    assert!(matches!(
        parse(&sign(&b), &b, &verifier(), &cfg()).await,
        Err(NotifyError::Malformed(_))
    ));
    let b = b"{not json".to_vec();
    assert!(matches!(
        parse(&sign(&b), &b, &verifier(), &cfg()).await,
        Err(NotifyError::Malformed(_))
    ));
}

#[tokio::test]
async fn oversized_body_refused_before_anything() {
    let mut big = good_body();
    big.extend(std::iter::repeat_n(b' ', 70 * 1024));
    // Even without headers the size is what is reported: it is checked first.
    assert!(matches!(
        parse(&HeaderMap::new(), &big, &verifier(), &cfg()).await,
        Err(NotifyError::TooLarge { .. })
    ));
    assert!(matches!(
        parse(&sign(&big), &big, &verifier(), &cfg()).await,
        Err(NotifyError::TooLarge { .. })
    ));
}

#[test]
fn answers_are_exact() {
    let ok = wechat::pay::v3::notify::success();
    assert_eq!(ok.status, 200);
    let fail = wechat::pay::v3::notify::failure("内部错误");
    assert_eq!(fail.status, 500);
    assert_eq!(fail.body, r#"{"code":"FAIL","message":"内部错误"}"#);
    let refused = wechat::pay::v3::notify::refusal("验签失败");
    assert_eq!(refused.status, 400);
    assert_eq!(refused.body, r#"{"code":"FAIL","message":"验签失败"}"#);
}
