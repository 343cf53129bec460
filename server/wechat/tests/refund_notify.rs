//! Refund notifications built by the test itself with independent code: v2 `req_info` encrypted by
//! the `openssl enc -aes-256-ecb` CLI under a key derived with the `md-5` crate directly; v3 `REFUND.*`
//! events signed with test platform keys — then broken in the ways that must be refused.
mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use base64::Engine as _;
use common::*;
use http::HeaderMap;
use md5::Digest as _;
use wechat::pay::notify::{ApiVersion, NotifyError};
use wechat::pay::v2::PayV2Config;
use wechat::pay::v3::aead::{encrypt_resource, ApiV3Key};
use wechat::pay::v3::certs::Verifier;
use wechat::pay::v3::notify::{parse_refund, parse_refund_cached, V3NotifyConfig};
use wechat::{BaseUrl, RefundStatus, Secret, SignType};

const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

// ---------------- v2 ----------------

fn v2cfg() -> PayV2Config {
    PayV2Config::new(
        APPID,
        MCHID,
        Secret::new(KEY.to_owned()),
        SignType::Md5,
        BaseUrl::parse("https://api.mch.weixin.qq.com").unwrap(),
    )
}

/// AES-256-ECB + PKCS#7 by the openssl CLI, key = the 32 ASCII bytes of hex(MD5(api_key)).
fn openssl_req_info(api_key: &str, plaintext: &str) -> String {
    let key_ascii = hex::encode(md5::Md5::digest(api_key.as_bytes()));
    assert_eq!(key_ascii.len(), 32);
    let mut child = Command::new("openssl")
        .args([
            "enc",
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
        .expect("openssl CLI must be installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(plaintext.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn inner(status: &str) -> String {
    format!(
        "<root><out_refund_no><![CDATA[R20171215094601]]></out_refund_no>\
<out_trade_no><![CDATA[1409811653]]></out_trade_no>\
<refund_account><![CDATA[REFUND_SOURCE_RECHARGE_FUNDS]]></refund_account>\
<refund_fee><![CDATA[990]]></refund_fee>\
<refund_id><![CDATA[50000408942017121502756172103]]></refund_id>\
<refund_recv_accout><![CDATA[支付用户零钱]]></refund_recv_accout>\
<refund_request_source><![CDATA[API]]></refund_request_source>\
<refund_status><![CDATA[{status}]]></refund_status>\
<settlement_refund_fee><![CDATA[990]]></settlement_refund_fee>\
<settlement_total_fee><![CDATA[1990]]></settlement_total_fee>\
<success_time><![CDATA[2017-12-15 09:46:01]]></success_time>\
<total_fee><![CDATA[1990]]></total_fee>\
<transaction_id><![CDATA[4200000052201712150932987651]]></transaction_id></root>"
    )
}

fn outer(appid: &str, mchid: &str, req_info: &str) -> Vec<u8> {
    format!(
        "<xml><return_code>SUCCESS</return_code><appid><![CDATA[{appid}]]></appid>\
<mch_id><![CDATA[{mchid}]]></mch_id><nonce_str><![CDATA[TeqClE3i0mvn3DrK]]></nonce_str>\
<req_info><![CDATA[{req_info}]]></req_info></xml>"
    )
    .into_bytes()
}

fn v2_body(status: &str) -> Vec<u8> {
    outer(APPID, MCHID, &openssl_req_info(KEY, &inner(status)))
}

#[test]
fn v2_refund_notification_decrypts_and_parses() {
    let n = wechat::pay::v2::notify::parse_refund(&v2_body("SUCCESS"), &v2cfg()).expect("valid");
    assert_eq!(n.api, ApiVersion::V2);
    assert_eq!(n.out_trade_no, "1409811653");
    assert_eq!(
        n.transaction_id.as_deref(),
        Some("4200000052201712150932987651")
    );
    assert_eq!(n.out_refund_no, "R20171215094601");
    assert_eq!(n.refund_id, "50000408942017121502756172103");
    assert_eq!(n.status, RefundStatus::Success);
    assert!(n.is_success());
    assert_eq!((n.total_fee, n.refund_fee), (1990, 990));
    assert_eq!(n.success_time.as_deref(), Some("2017-12-15T09:46:01+08:00"));
    assert_eq!(n.notification_id, None);

    let n = wechat::pay::v2::notify::parse_refund(&v2_body("CHANGE"), &v2cfg()).unwrap();
    assert_eq!(n.status, RefundStatus::Abnormal);
    let n = wechat::pay::v2::notify::parse_refund(&v2_body("REFUNDCLOSE"), &v2cfg()).unwrap();
    assert_eq!(n.status, RefundStatus::Closed);
    // A notice never says PROCESSING.
    assert!(matches!(
        wechat::pay::v2::notify::parse_refund(&v2_body("PROCESSING"), &v2cfg()),
        Err(NotifyError::Malformed(_))
    ));
}

#[test]
fn v2_refund_notification_refusals() {
    let cfg = v2cfg();
    let good = openssl_req_info(KEY, &inner("SUCCESS"));
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&good)
        .unwrap();

    // One byte of the last block changed: the padding no longer checks out.
    let mut t = raw.clone();
    let last = t.len() - 3;
    t[last] ^= 0x5a;
    let tampered = base64::engine::general_purpose::STANDARD.encode(&t);
    assert_eq!(
        wechat::pay::v2::notify::parse_refund(&outer(APPID, MCHID, &tampered), &cfg),
        Err(NotifyError::Decrypt)
    );
    // One byte of the first block changed: garbage inside the document.
    let mut t = raw.clone();
    t[3] ^= 0x01;
    let tampered = base64::engine::general_purpose::STANDARD.encode(&t);
    assert_eq!(
        wechat::pay::v2::notify::parse_refund(&outer(APPID, MCHID, &tampered), &cfg),
        Err(NotifyError::Decrypt)
    );
    // A block dropped, not base64, not whole blocks, empty.
    let short = base64::engine::general_purpose::STANDARD.encode(&raw[..raw.len() - 16]);
    let partial = base64::engine::general_purpose::STANDARD.encode(&raw[..raw.len() - 1]);
    for ri in [short.as_str(), partial.as_str(), "%%%not-base64%%%"] {
        assert_eq!(
            wechat::pay::v2::notify::parse_refund(&outer(APPID, MCHID, ri), &cfg),
            Err(NotifyError::Decrypt),
            "{ri}"
        );
    }
    assert!(matches!(
        wechat::pay::v2::notify::parse_refund(&outer(APPID, MCHID, ""), &cfg),
        Err(NotifyError::Malformed(_))
    ));
    // Encrypted under another merchant's API key.
    let other = openssl_req_info("0123456789abcdef0123456789abcdef", &inner("SUCCESS"));
    assert_eq!(
        wechat::pay::v2::notify::parse_refund(&outer(APPID, MCHID, &other), &cfg),
        Err(NotifyError::Decrypt)
    );
    // Not our appid / mch_id (checked before decrypting).
    assert!(matches!(
        wechat::pay::v2::notify::parse_refund(&outer("wx0000000000000000", MCHID, &good), &cfg),
        Err(NotifyError::AppIdMismatch(_))
    ));
    assert!(matches!(
        wechat::pay::v2::notify::parse_refund(&outer(APPID, "1000000000", &good), &cfg),
        Err(NotifyError::MchIdMismatch(_))
    ));
    // return_code FAIL.
    let fail = b"<xml><return_code>FAIL</return_code><return_msg>busy</return_msg></xml>";
    assert!(matches!(
        wechat::pay::v2::notify::parse_refund(fail, &cfg),
        Err(NotifyError::ReturnFail(_))
    ));
    // Hostile XML and size, outside and (encrypted) inside.
    let xxe = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>{}",
        String::from_utf8(outer(APPID, MCHID, &good)).unwrap()
    );
    assert_eq!(
        wechat::pay::v2::notify::parse_refund(xxe.as_bytes(), &cfg),
        Err(NotifyError::DoctypeRefused)
    );
    let big = vec![b' '; wechat::pay::notify::MAX_NOTIFY_BYTES + 1];
    assert!(matches!(
        wechat::pay::v2::notify::parse_refund(&big, &cfg),
        Err(NotifyError::TooLarge { .. })
    ));
    let inner_xxe = openssl_req_info(
        KEY,
        &format!("<!DOCTYPE r [<!ENTITY e \"x\">]>{}", inner("SUCCESS")),
    );
    assert_eq!(
        wechat::pay::v2::notify::parse_refund(&outer(APPID, MCHID, &inner_xxe), &cfg),
        Err(NotifyError::Decrypt)
    );
    // A valid document with an amount that is not fen.
    let bad_amount = openssl_req_info(
        KEY,
        &inner("SUCCESS").replace(
            "<refund_fee><![CDATA[990]]>",
            "<refund_fee><![CDATA[9.90]]>",
        ),
    );
    assert!(matches!(
        wechat::pay::v2::notify::parse_refund(&outer(APPID, MCHID, &bad_amount), &cfg),
        Err(NotifyError::Malformed(_))
    ));
}

// ---------------- v3 ----------------

fn v3cfg() -> V3NotifyConfig {
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

fn refund(mchid: &str, status: &str) -> serde_json::Value {
    let mut v = serde_json::json!({
        "mchid": mchid, "out_trade_no": "1217752501201407033233368018",
        "transaction_id": "1217752501201407033233368018", "out_refund_no": "1217752501201407033233368018",
        "refund_id": "1217752501201407033233368018", "refund_status": status,
        "user_received_account": "招商银行信用卡0403",
        "amount": {"total": 999, "refund": 888, "payer_total": 999, "payer_refund": 888}
    });
    if status == "SUCCESS" {
        v["success_time"] = "2018-06-08T10:34:56+08:00".into();
    }
    v
}

fn envelope(plain: &serde_json::Value, event: &str, original_type: &str) -> Vec<u8> {
    let key = ApiV3Key::new(APIV3_KEY).unwrap();
    let nonce = "fdasflkja484";
    let ct = encrypt_resource(&key, nonce, "refund", plain.to_string().as_bytes()).unwrap();
    serde_json::json!({
        "id": "EV-2018022511223320873", "create_time": "2018-06-08T10:34:56+08:00",
        "resource_type": "encrypt-resource", "event_type": event, "summary": "退款成功",
        "resource": {"original_type": original_type, "algorithm": "AEAD_AES_256_GCM", "ciphertext": ct,
                     "associated_data": "refund", "nonce": nonce}
    })
    .to_string()
    .into_bytes()
}

fn sign(body: &[u8]) -> HeaderMap {
    signed_headers(&keys().plat_key, PLAT_SERIAL, now(), body)
}

#[tokio::test]
async fn v3_refund_events_parse() {
    for (event, status, want) in [
        ("REFUND.SUCCESS", "SUCCESS", RefundStatus::Success),
        ("REFUND.ABNORMAL", "ABNORMAL", RefundStatus::Abnormal),
        ("REFUND.CLOSED", "CLOSED", RefundStatus::Closed),
    ] {
        let body = envelope(&refund(MCHID, status), event, "refund");
        let n = parse_refund(&sign(&body), &body, &verifier(), &v3cfg())
            .await
            .unwrap_or_else(|e| panic!("{event}: {e}"));
        assert_eq!(n.api, ApiVersion::V3);
        assert_eq!(n.status, want);
        assert_eq!(n.out_refund_no, "1217752501201407033233368018");
        assert_eq!(n.refund_id, "1217752501201407033233368018");
        assert_eq!(n.out_trade_no, "1217752501201407033233368018");
        assert_eq!((n.total_fee, n.refund_fee), (999, 888));
        assert_eq!(n.notification_id.as_deref(), Some("EV-2018022511223320873"));
        assert_eq!(
            n.success_time.is_some(),
            want == RefundStatus::Success,
            "{event}"
        );
        // Public-key mode, cached path.
        let h = signed_headers(&keys().pubkey_key, PUB_KEY_ID, now(), &body);
        assert_eq!(
            parse_refund_cached(&h, &body, &verifier(), &v3cfg()).unwrap(),
            n
        );
    }
}

#[tokio::test]
async fn v3_refund_refusals() {
    let v = verifier();
    let cfg = v3cfg();
    let body = envelope(&refund(MCHID, "SUCCESS"), "REFUND.SUCCESS", "refund");
    // Forged: signed by another key under the platform serial; tampered body; no headers; stale.
    let h = signed_headers(&keys().other_key, PLAT_SERIAL, now(), &body);
    assert_eq!(
        parse_refund(&h, &body, &v, &cfg).await,
        Err(NotifyError::BadSignature)
    );
    let mut spaced = body.clone();
    spaced.push(b' ');
    assert_eq!(
        parse_refund(&sign(&body), &spaced, &v, &cfg).await,
        Err(NotifyError::BadSignature)
    );
    assert!(matches!(
        parse_refund(&HeaderMap::new(), &body, &v, &cfg).await,
        Err(NotifyError::MissingHeader(_))
    ));
    let h = signed_headers(&keys().plat_key, PLAT_SERIAL, now() - 301, &body);
    assert!(matches!(
        parse_refund(&h, &body, &v, &cfg).await,
        Err(NotifyError::StaleTimestamp { .. })
    ));
    // Event type and refund_status disagree (each correctly signed).
    for (event, status) in [
        ("REFUND.SUCCESS", "ABNORMAL"),
        ("REFUND.ABNORMAL", "SUCCESS"),
        ("REFUND.CLOSED", "SUCCESS"),
        ("REFUND.SUCCESS", "PROCESSING"),
    ] {
        let b = envelope(&refund(MCHID, status), event, "refund");
        assert!(
            matches!(
                parse_refund(&sign(&b), &b, &v, &cfg).await,
                Err(NotifyError::Malformed(_))
            ),
            "{event} / {status}"
        );
    }
    // A payment event is not a refund, and a refund is not a payment.
    let b = envelope(&refund(MCHID, "SUCCESS"), "TRANSACTION.SUCCESS", "refund");
    assert!(matches!(
        parse_refund(&sign(&b), &b, &v, &cfg).await,
        Err(NotifyError::UnexpectedEvent(_))
    ));
    assert!(matches!(
        wechat::pay::v3::notify::parse(&sign(&body), &body, &v, &cfg).await,
        Err(NotifyError::UnexpectedEvent(_))
    ));
    // original_type must be refund.
    let b = envelope(&refund(MCHID, "SUCCESS"), "REFUND.SUCCESS", "transaction");
    assert!(matches!(
        parse_refund(&sign(&b), &b, &v, &cfg).await,
        Err(NotifyError::Malformed(_))
    ));
    // Another merchant's refund.
    let b = envelope(&refund("1000000000", "SUCCESS"), "REFUND.SUCCESS", "refund");
    assert!(matches!(
        parse_refund(&sign(&b), &b, &v, &cfg).await,
        Err(NotifyError::MchIdMismatch(_))
    ));
    // Refund larger than the total.
    let mut r = refund(MCHID, "SUCCESS");
    r["amount"]["refund"] = 1000.into();
    let b = envelope(&r, "REFUND.SUCCESS", "refund");
    assert!(matches!(
        parse_refund(&sign(&b), &b, &v, &cfg).await,
        Err(NotifyError::Malformed(_))
    ));
    // Encrypted under another APIv3 key.
    let other = V3NotifyConfig {
        apiv3_key: ApiV3Key::new("ABCDEF0123456789abcdef0123456789").unwrap(),
        ..v3cfg()
    };
    assert_eq!(
        parse_refund(&sign(&body), &body, &v, &other).await,
        Err(NotifyError::Decrypt)
    );
}
