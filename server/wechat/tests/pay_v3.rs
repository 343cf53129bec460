//! Pay v3 client against a fake WeChat Pay (axum on 127.0.0.1:0, mounted under a path prefix like the
//! sandbox). The fake checks every `Authorization` header with independent code and signs its answers
//! with test platform keys; the tests then break those answers in every way that must be refused.
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use common::*;
use http::{HeaderMap, Method, StatusCode, Uri};
use rsa::signature::Verifier as _;
use wechat::pay::v3::aead::{encrypt_resource, ApiV3Key};
use wechat::pay::v3::certs::{Verifier, VerifyError};
use wechat::pay::v3::sign::MerchantKey;
use wechat::pay::v3::{PayV3Client, PayV3Config, PayV3Error};
use wechat::{BaseUrl, PayErrCode, PayGateway, PrepayRequest, RefundRequest, TradeState};

const PREFIX: &str = "/sandbox/api";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Signing {
    Plat,
    Plat2,
    PlatLowercaseSerial,
    PubKey,
    WrongKey,
    NoHeaders,
    NoSignature,
    Stale,
    UnknownSerial,
    Tampered,
    Probe,
}

struct Fake {
    signing: Mutex<Signing>,
    delay_ms: Mutex<u64>,
    garbage: Mutex<bool>,
    serve_plat2_cert: Mutex<bool>,
    auth_ok: AtomicUsize,
    auth_bad: AtomicUsize,
    cert_downloads: AtomicUsize,
    last_body: Mutex<String>,
    last_path: Mutex<String>,
}

impl Fake {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            signing: Mutex::new(Signing::Plat),
            delay_ms: Mutex::new(0),
            garbage: Mutex::new(false),
            serve_plat2_cert: Mutex::new(true),
            auth_ok: AtomicUsize::new(0),
            auth_bad: AtomicUsize::new(0),
            cert_downloads: AtomicUsize::new(0),
            last_body: Mutex::new(String::new()),
            last_path: Mutex::new(String::new()),
        })
    }
    fn set(&self, s: Signing) {
        *self.signing.lock().unwrap() = s;
    }
}

fn signed(fake: &Fake, status: StatusCode, body: String, signing: Signing) -> Response {
    let k = keys();
    let mut h = match signing {
        Signing::Plat => signed_headers(&k.plat_key, PLAT_SERIAL, now(), body.as_bytes()),
        Signing::Plat2 => signed_headers(&k.plat2_key, PLAT2_SERIAL, now(), body.as_bytes()),
        Signing::PlatLowercaseSerial => signed_headers(
            &k.plat_key,
            &PLAT_SERIAL.to_lowercase(),
            now(),
            body.as_bytes(),
        ),
        Signing::PubKey => signed_headers(&k.pubkey_key, PUB_KEY_ID, now(), body.as_bytes()),
        Signing::WrongKey => signed_headers(&k.other_key, PLAT_SERIAL, now(), body.as_bytes()),
        Signing::NoHeaders => HeaderMap::new(),
        Signing::NoSignature => {
            let mut h = signed_headers(&k.plat_key, PLAT_SERIAL, now(), body.as_bytes());
            h.remove("Wechatpay-Signature");
            h
        }
        Signing::Stale => signed_headers(&k.plat_key, PLAT_SERIAL, now() - 301, body.as_bytes()),
        Signing::UnknownSerial => signed_headers(&k.plat_key, "1234ABCD", now(), body.as_bytes()),
        Signing::Tampered => signed_headers(
            &k.plat_key,
            PLAT_SERIAL,
            now(),
            b"{\"prepay_id\":\"other\"}",
        ),
        Signing::Probe => {
            let mut h = signed_headers(&k.plat_key, PLAT_SERIAL, now(), body.as_bytes());
            h.insert(
                "Wechatpay-Signature",
                "WECHATPAY/SIGNTEST/ABCDEFGHIJKLMN".parse().unwrap(),
            );
            h
        }
    };
    let _ = fake;
    h.insert("content-type", "application/json".parse().unwrap());
    (status, h, body).into_response()
}

fn cert_entry(pem: &str, serial: &str) -> serde_json::Value {
    let key = ApiV3Key::new(APIV3_KEY).unwrap();
    let nonce = "61f9c719728a";
    let ad = "certificate";
    serde_json::json!({
        "serial_no": serial,
        "effective_time": "2024-01-01T00:00:00+08:00",
        "expire_time": "2034-01-01T00:00:00+08:00",
        "encrypt_certificate": {
            "algorithm": "AEAD_AES_256_GCM",
            "nonce": nonce,
            "associated_data": ad,
            "ciphertext": encrypt_resource(&key, nonce, ad, pem.as_bytes()).unwrap(),
        }
    })
}

async fn handler(
    State(fake): State<Arc<Fake>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let delay = *fake.delay_ms.lock().unwrap();
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
    let Some(path) = pq.strip_prefix(PREFIX) else {
        return (StatusCode::NOT_FOUND, "no prefix").into_response();
    };
    *fake.last_path.lock().unwrap() = path.to_string();
    let body = String::from_utf8(body.to_vec()).unwrap();
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // The signature must cover the path WeChat sees: after the base, starting with /v3/.
    if let Err(e) = check_authorization(auth, method.as_str(), path, &body, &mch_public()) {
        fake.auth_bad.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::UNAUTHORIZED,
            format!("{{\"code\":\"SIGN_ERROR\",\"message\":\"{e}\"}}"),
        )
            .into_response();
    }
    fake.auth_ok.fetch_add(1, Ordering::SeqCst);
    if headers.get("user-agent").is_none() {
        return (
            StatusCode::FORBIDDEN,
            "{\"code\":\"NO_UA\",\"message\":\"ua\"}",
        )
            .into_response();
    }
    *fake.last_body.lock().unwrap() = body.clone();
    let signing = *fake.signing.lock().unwrap();
    if path == "/v3/certificates" {
        fake.cert_downloads.fetch_add(1, Ordering::SeqCst);
        let k = keys();
        let mut data = vec![cert_entry(&k.plat_cert_pem, &PLAT_SERIAL.to_lowercase())];
        if *fake.serve_plat2_cert.lock().unwrap() {
            data.push(cert_entry(&k.plat2_cert_pem, PLAT2_SERIAL));
        }
        // The list is signed by a certificate it carries.
        return signed(
            &fake,
            StatusCode::OK,
            serde_json::json!({ "data": data }).to_string(),
            Signing::Plat,
        );
    }
    if *fake.garbage.lock().unwrap() {
        return signed(
            &fake,
            StatusCode::OK,
            "{\"unexpected\":true}".into(),
            signing,
        );
    }
    if method == Method::POST && path == "/v3/pay/transactions/jsapi" {
        return signed(
            &fake,
            StatusCode::OK,
            "{\"prepay_id\":\"wx201410272009395522657a690389285100\"}".into(),
            signing,
        );
    }
    if method == Method::GET && path.starts_with("/v3/pay/transactions/out-trade-no/") {
        let rest = &path["/v3/pay/transactions/out-trade-no/".len()..];
        let (no, q) = rest.split_once('?').unwrap_or((rest, ""));
        if q != format!("mchid={MCHID}") {
            return (
                StatusCode::BAD_REQUEST,
                "{\"code\":\"PARAM_ERROR\",\"message\":\"mchid\"}",
            )
                .into_response();
        }
        if no == "missing0001" {
            return signed(
                &fake,
                StatusCode::NOT_FOUND,
                "{\"code\":\"ORDER_NOT_EXIST\",\"message\":\"订单不存在\"}".into(),
                signing,
            );
        }
        let t = serde_json::json!({
            "appid": APPID, "mchid": MCHID, "out_trade_no": no, "transaction_id": "4200000000000000000000000001",
            "trade_type": "JSAPI", "trade_state": "SUCCESS", "trade_state_desc": "支付成功", "bank_type": "CMC",
            "success_time": "2024-05-20T13:29:35+08:00", "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
            "amount": {"total": 1990, "payer_total": 1990, "currency": "CNY", "payer_currency": "CNY"}
        });
        return signed(&fake, StatusCode::OK, t.to_string(), signing);
    }
    if method == Method::POST && path.ends_with("/close") {
        let mut h = signed_headers(&keys().plat_key, PLAT_SERIAL, now(), b"");
        if signing == Signing::WrongKey {
            h = signed_headers(&keys().other_key, PLAT_SERIAL, now(), b"");
        }
        return (StatusCode::NO_CONTENT, h).into_response();
    }
    if method == Method::POST && path == "/v3/refund/domestic/refunds" {
        let req: serde_json::Value = serde_json::from_str(&body).unwrap();
        let a = serde_json::json!({
            "refund_id": "50000000382019052709732678859", "out_refund_no": req["out_refund_no"],
            "transaction_id": "4200000000000000000000000001", "out_trade_no": req["out_trade_no"],
            "status": "PROCESSING", "amount": {"refund": req["amount"]["refund"], "total": req["amount"]["total"], "currency": "CNY"}
        });
        return signed(&fake, StatusCode::OK, a.to_string(), signing);
    }
    (
        StatusCode::NOT_FOUND,
        "{\"code\":\"NOT_FOUND\",\"message\":\"no route\"}",
    )
        .into_response()
}

async fn fake_server() -> (Arc<Fake>, String) {
    let fake = Fake::new();
    let router = axum::Router::new()
        .fallback(handler)
        .with_state(fake.clone());
    let base = serve(router).await;
    (fake, format!("{base}{PREFIX}"))
}

fn config(base: &str) -> PayV3Config {
    PayV3Config::new(
        APPID,
        MCHID,
        MCH_SERIAL,
        MerchantKey::from_pem(&keys().mch_pem).unwrap(),
        ApiV3Key::new(APIV3_KEY).unwrap(),
        BaseUrl::parse(base).unwrap(),
    )
}

fn static_verifier() -> Arc<Verifier> {
    Arc::new(
        Verifier::builder()
            .platform_certificate_pem(&keys().plat_cert_pem)
            .unwrap()
            .wechatpay_public_key(PUB_KEY_ID, &keys().pubkey_pem)
            .unwrap()
            .build(),
    )
}

fn prepay_request() -> PrepayRequest {
    PrepayRequest {
        description: "Image形象店-深圳腾大-QQ公仔".into(),
        out_trade_no: "1217752501201407033233368018".into(),
        total_fee: 1990,
        openid: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into(),
        notify_url: "https://shop.example.com/pay/notify".into(),
        client_ip: "14.23.150.211".into(),
        time_expire: None,
        attach: Some("cart=1".into()),
    }
}

#[test]
fn openssl_verifies_v3_request_signature_and_pay_sign() {
    let k = keys();
    let key = MerchantKey::from_pem(&k.mch_pem).unwrap();
    let body = r#"{"appid":"wxd678efh567hg6787","mchid":"1230000109","description":"Image形象店-深圳腾大-QQ公仔","out_trade_no":"1217752501201407033233368018","notify_url":"https://www.weixin.qq.com/wxpay/pay.php","amount":{"total":100,"currency":"CNY"},"payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}}"#;
    let cases = [
        wechat::pay::v3::sign::v3_request_message(
            "POST",
            "/v3/pay/transactions/jsapi",
            "1554208460",
            "593BEC0C930BF1AFEB40B4A08C8FB242",
            body,
        ),
        wechat::pay::v3::sign::v3_request_message(
            "GET",
            "/v3/pay/transactions/out-trade-no/123456?mchid=1230000109",
            "1554208460",
            "n",
            "",
        ),
        wechat::pay::v3::sign::v3_pay_message(
            "wx8888888888888888",
            "1414561699",
            "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
            "prepay_id=wx201410272009395522657a690389285100",
        ),
    ];
    for (i, msg) in cases.iter().enumerate() {
        let sig = key.sign_raw(msg.as_bytes());
        let mp = k.dir.path().join(format!("msg{i}.txt"));
        let sp = k.dir.path().join(format!("sig{i}.bin"));
        std::fs::write(&mp, msg).unwrap();
        std::fs::write(&sp, &sig).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(&k.mch_pub_pem_path)
            .arg("-signature")
            .arg(&sp)
            .arg(&mp)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("Verified OK"),
            "case {i}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // And a one-byte change must fail under openssl too (the check is not vacuous).
        std::fs::write(&mp, format!("{msg}x")).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(&k.mch_pub_pem_path)
            .arg("-signature")
            .arg(&sp)
            .arg(&mp)
            .output()
            .unwrap();
        assert!(!out.status.success(), "openssl accepted a modified message");
    }
}

#[test]
fn pkcs1_and_pkcs8_keys_sign_identically() {
    let a = MerchantKey::from_pem(&keys().mch_pem).unwrap();
    let b = MerchantKey::from_pem(&keys().mch_pkcs1_pem).unwrap();
    // PKCS#1 v1.5 signatures are deterministic; blinding must not change them.
    assert_eq!(a.sign_base64(b"m"), b.sign_base64(b"m"));
    assert_eq!(a.sign_base64(b"m"), a.sign_base64(b"m"));
    assert!(!format!("{a:?}").contains("BEGIN"));
    assert!(
        MerchantKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
            .is_err()
    );
    assert!(MerchantKey::from_pem("not a key").is_err());
}

#[tokio::test]
async fn prepay_query_close_refund_round_trip() {
    let (fake, base) = fake_server().await;
    let client = PayV3Client::new(config(&base), http(), static_verifier());
    let id = client
        .prepay_jsapi(&prepay_request())
        .await
        .expect("prepay");
    assert_eq!(id.as_str(), "wx201410272009395522657a690389285100");
    let sent: serde_json::Value = serde_json::from_str(&fake.last_body.lock().unwrap()).unwrap();
    assert_eq!(sent["amount"]["total"], 1990);
    assert_eq!(sent["amount"]["currency"], "CNY");
    assert_eq!(sent["payer"]["openid"], "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o");
    assert_eq!(sent["appid"], APPID);
    assert_eq!(sent["mchid"], MCHID);
    assert_eq!(sent["scene_info"]["payer_client_ip"], "14.23.150.211");

    let st = client
        .query_by_out_trade_no("1217752501201407033233368018")
        .await
        .expect("query");
    assert_eq!(st.trade_state, TradeState::Success);
    assert_eq!(st.total_fee, Some(1990));
    assert_eq!(st.openid.as_deref(), Some("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"));
    assert_eq!(
        *fake.last_path.lock().unwrap(),
        format!("/v3/pay/transactions/out-trade-no/1217752501201407033233368018?mchid={MCHID}")
    );

    client
        .close("1217752501201407033233368018")
        .await
        .expect("close");
    assert_eq!(
        *fake.last_body.lock().unwrap(),
        format!("{{\"mchid\":\"{MCHID}\"}}")
    );

    let r = client
        .refund(&RefundRequest {
            out_trade_no: "1217752501201407033233368018".into(),
            out_refund_no: "R1217752501201407033233368018".into(),
            total_fee: 1990,
            refund_fee: 990,
            reason: Some("商品已售完".into()),
            notify_url: None,
        })
        .await
        .expect("refund");
    assert_eq!(r.refund_fee, 990);
    assert_eq!(r.status, wechat::pay::RefundStatus::Processing);
    assert_eq!(fake.auth_ok.load(Ordering::SeqCst), 4);
    assert_eq!(fake.auth_bad.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn answers_with_bad_signatures_are_refused() {
    let (fake, base) = fake_server().await;
    let client = PayV3Client::new(config(&base), http(), static_verifier());
    type Check = fn(&VerifyError) -> bool;
    let cases: [(Signing, Check); 8] = [
        (Signing::WrongKey, |e| {
            matches!(e, VerifyError::BadSignature)
        }),
        (Signing::Tampered, |e| {
            matches!(e, VerifyError::BadSignature)
        }),
        (Signing::Probe, |e| matches!(e, VerifyError::BadSignature)),
        (Signing::NoHeaders, |e| {
            matches!(e, VerifyError::MissingHeader(_))
        }),
        (Signing::NoSignature, |e| {
            matches!(e, VerifyError::MissingHeader("Wechatpay-Signature"))
        }),
        (Signing::Stale, |e| {
            matches!(e, VerifyError::StaleTimestamp { .. })
        }),
        (Signing::UnknownSerial, |e| {
            matches!(e, VerifyError::UnknownSerial(_))
        }),
        (Signing::Plat2, |e| {
            matches!(e, VerifyError::UnknownSerial(_))
        }), // not configured here
    ];
    for (signing, check) in cases {
        fake.set(signing);
        match client.prepay_jsapi(&prepay_request()).await {
            Err(PayV3Error::Verify(e)) => assert!(check(&e), "{signing:?}: {e:?}"),
            other => panic!("{signing:?} accepted or wrong error: {other:?}"),
        }
    }
    // Close answers (204, empty body) are verified too.
    fake.set(Signing::WrongKey);
    assert!(matches!(
        client.close("1217752501201407033233368018").await,
        Err(PayV3Error::Verify(VerifyError::BadSignature))
    ));
    // The good cases pass, including a lowercase serial and the WeChat Pay public key.
    for s in [Signing::Plat, Signing::PlatLowercaseSerial, Signing::PubKey] {
        fake.set(s);
        client
            .prepay_jsapi(&prepay_request())
            .await
            .unwrap_or_else(|e| panic!("{s:?}: {e}"));
    }
}

#[tokio::test]
async fn error_answers_are_typed() {
    let (_fake, base) = fake_server().await;
    let client = PayV3Client::new(config(&base), http(), static_verifier());
    match client.query_by_out_trade_no("missing0001").await {
        Err(PayV3Error::Api {
            status: 404,
            code: PayErrCode::OrderNotExist,
            verified: true,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // Refused locally, before any request.
    let mut bad = prepay_request();
    bad.total_fee = 0;
    assert!(matches!(
        client.prepay_jsapi(&bad).await,
        Err(PayV3Error::InvalidRequest(_))
    ));
    assert!(matches!(
        client.query_by_out_trade_no("../../x").await,
        Err(PayV3Error::InvalidRequest(_))
    ));
}

#[tokio::test]
async fn malformed_and_timeout() {
    let (fake, base) = fake_server().await;
    let client = PayV3Client::new(config(&base), http(), static_verifier());
    *fake.garbage.lock().unwrap() = true;
    assert!(matches!(
        client.prepay_jsapi(&prepay_request()).await,
        Err(PayV3Error::Malformed(_))
    ));
    *fake.garbage.lock().unwrap() = false;
    *fake.delay_ms.lock().unwrap() = 3000;
    let mut cfg = config(&base);
    cfg.timeout = Duration::from_millis(300);
    let slow = PayV3Client::new(cfg, http(), static_verifier());
    let t0 = std::time::Instant::now();
    match slow.prepay_jsapi(&prepay_request()).await {
        Err(PayV3Error::Http(wechat::http::HttpError::Timeout)) => {}
        other => panic!("{other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn certificates_downloaded_decrypted_and_selected_by_serial() {
    let (fake, base) = fake_server().await;
    let client = PayV3Client::with_downloaded_certificates(
        config(&base),
        http(),
        Some((PUB_KEY_ID, &keys().pubkey_pem)),
    )
    .unwrap();
    assert!(client.verifier().certificate_serials().is_empty());
    fake.set(Signing::Plat);
    client
        .prepay_jsapi(&prepay_request())
        .await
        .expect("first call downloads certificates");
    assert_eq!(fake.cert_downloads.load(Ordering::SeqCst), 1);
    assert_eq!(
        client.verifier().certificate_serials(),
        vec![PLAT_SERIAL.to_string(), PLAT2_SERIAL.to_string()]
    );
    for s in [
        Signing::Plat2,
        Signing::PlatLowercaseSerial,
        Signing::PubKey,
        Signing::Plat,
    ] {
        fake.set(s);
        client
            .prepay_jsapi(&prepay_request())
            .await
            .unwrap_or_else(|e| panic!("{s:?}: {e}"));
    }
    assert_eq!(
        fake.cert_downloads.load(Ordering::SeqCst),
        1,
        "no re-download for known serials"
    );
    // Unknown serial: refused; a re-download is rate limited (the first was < 60 s ago).
    fake.set(Signing::UnknownSerial);
    assert!(matches!(
        client.prepay_jsapi(&prepay_request()).await,
        Err(PayV3Error::Verify(VerifyError::UnknownSerial(_)))
    ));
    assert!(matches!(
        client.prepay_jsapi(&prepay_request()).await,
        Err(PayV3Error::Verify(VerifyError::UnknownSerial(_)))
    ));
    assert_eq!(fake.cert_downloads.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn unknown_serial_triggers_redownload_on_rotation() {
    let (fake, base) = fake_server().await;
    *fake.serve_plat2_cert.lock().unwrap() = false;
    let cfg = config(&base);
    let verifier = Arc::new(
        Verifier::builder()
            .downloader(wechat::pay::v3::CertDownloader::new(&cfg, http()))
            .min_refresh_interval(Duration::ZERO)
            .build(),
    );
    let client = PayV3Client::new(cfg, http(), verifier.clone());
    let n = verifier.refresh().await.expect("download");
    assert_eq!(n, 1);
    assert_eq!(
        verifier.certificate_serials(),
        vec![PLAT_SERIAL.to_string()]
    );
    // WeChat rotates: a new certificate appears and starts signing.
    *fake.serve_plat2_cert.lock().unwrap() = true;
    fake.set(Signing::Plat2);
    client
        .prepay_jsapi(&prepay_request())
        .await
        .expect("re-downloaded on unknown serial");
    assert_eq!(fake.cert_downloads.load(Ordering::SeqCst), 2);
    assert!(verifier
        .certificate_serials()
        .contains(&PLAT2_SERIAL.to_string()));
}

#[tokio::test]
async fn gateway_trait_v3_pay_params_verify_independently() {
    let (_fake, base) = fake_server().await;
    let gw: Arc<dyn PayGateway> =
        Arc::new(PayV3Client::new(config(&base), http(), static_verifier()));
    let (id, p) = gw.prepay(&prepay_request()).await.expect("prepay");
    assert_eq!(p.sign_type, "RSA");
    assert_eq!(p.package, format!("prepay_id={}", id.as_str()));
    assert_eq!(p.app_id, APPID);
    let msg = format!(
        "{}\n{}\n{}\n{}\n",
        p.app_id, p.time_stamp, p.nonce_str, p.package
    );
    let sig = base64::engine::general_purpose::STANDARD
        .decode(&p.pay_sign)
        .unwrap();
    rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(mch_public())
        .verify(
            msg.as_bytes(),
            &rsa::pkcs1v15::Signature::try_from(sig.as_slice()).unwrap(),
        )
        .expect("paySign verifies with the merchant public key");
    let json = serde_json::to_value(&p).unwrap();
    for k in [
        "appId",
        "timeStamp",
        "nonceStr",
        "package",
        "signType",
        "paySign",
    ] {
        assert!(json[k].is_string(), "{k}");
    }
    assert!(gw
        .query("missing0001")
        .await
        .unwrap_err()
        .is_order_not_exist());
    assert_eq!(gw.notification_success().status, 200);
    let f = gw.notification_failure("bad \"sig\"");
    assert_eq!(f.status, 500);
    let v: serde_json::Value = serde_json::from_str(&f.body).unwrap();
    assert_eq!(v["code"], "FAIL");
    assert_eq!(v["message"], "bad \"sig\"");
}
