//! The v2 and v3 clients against the embedded sandbox (which implements WeChat's side with its own
//! code): asynchronous refunds, refund queries, refund notifications and trade bills, end to end
//! through [`PayGateway`].
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::response::IntoResponse;
use http::{HeaderMap, StatusCode};
use wechat::pay::bill::BillError;
use wechat::pay::notify::ApiVersion;
use wechat::pay::v2::{PayV2Client, PayV2Config};
use wechat::pay::v3::aead::ApiV3Key;
use wechat::pay::v3::certs::Verifier;
use wechat::pay::v3::sign::MerchantKey;
use wechat::pay::v3::PayV3Error;
use wechat::pay::v3::{PayV3Client, PayV3Config};
use wechat::PayError;
use wechat::{
    BaseUrl, NotifyError, PayGateway, PrepayRequest, RefundNotice, RefundRequest, RefundStatus,
    Secret, SignType,
};
use wechat_sandbox::{Endpoint, Fault, Sandbox, SandboxCredentials, SandboxOptions};

fn creds() -> SandboxCredentials {
    static C: OnceLock<SandboxCredentials> = OnceLock::new();
    C.get_or_init(|| SandboxCredentials::from_seed(20250101))
        .clone()
}

type Seen = Arc<Mutex<Vec<Result<RefundNotice, NotifyError>>>>;

struct Env {
    sandbox: Sandbox,
    gateway: Arc<dyn PayGateway>,
    notify_url: String,
    refund_url: String,
    seen: Seen,
    /// The sandbox's mutual-TLS `/secapi/…` listener (v2 refunds), stopped with the test.
    _secapi: Option<tokio::task::JoinHandle<()>>,
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// A sandbox, a gateway of `version` pointed at it, and a shop-like receiver that parses refund
/// notifications with the gateway and answers as the gateway says.
async fn env(version: ApiVersion) -> Env {
    let opts = SandboxOptions {
        refund_settle_delay: Duration::from_millis(500),
        notify_retry_delays: vec![Duration::from_millis(100); 3],
        notify_duplicate_after: Some(Duration::from_millis(100)),
        ..SandboxOptions::default()
    };
    let sandbox = Sandbox::with_options(creds(), opts).unwrap();
    let origin = serve(axum::Router::new().nest("/sandbox", sandbox.router())).await;
    let c = creds();
    let base = BaseUrl::parse(&format!("{origin}/sandbox/pay")).unwrap();
    let http = reqwest::Client::new();
    let mut secapi_task = None;
    let gateway: Arc<dyn PayGateway> = match version {
        ApiVersion::V2 => {
            // Refunds go to the sandbox's `/secapi/…` listener, which asks for the merchant's API
            // certificate as WeChat does; the client presents it and trusts only the sandbox CA.
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let secapi = wechat_sandbox::serve_secapi(sandbox.clone(), listener)
                .await
                .unwrap();
            let identity = wechat::pay::v2::identity_from_pem(
                sandbox.merchant_certificate_pem().unwrap().as_bytes(),
                c.merchant_private_key_pem.as_bytes(),
            )
            .unwrap();
            let ca = sandbox.ca_certificate_pem().unwrap();
            let mtls = reqwest::Client::builder()
                .use_rustls_tls()
                .tls_built_in_root_certs(false)
                .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
                .identity(identity)
                .build()
                .unwrap();
            let cfg = PayV2Config::new(
                c.appid.clone(),
                c.mchid.clone(),
                Secret::new(c.pay_key_v2.clone()),
                SignType::Md5,
                base,
            )
            .with_secapi_base(BaseUrl::parse(&secapi.base).unwrap());
            secapi_task = Some(secapi.task);
            Arc::new(PayV2Client::new(cfg, http.clone()).with_refund_client(mtls))
        }
        ApiVersion::V3 => {
            let cfg = PayV3Config::new(
                c.appid.clone(),
                c.mchid.clone(),
                c.merchant_serial.clone(),
                MerchantKey::from_pem(&c.merchant_private_key_pem).unwrap(),
                ApiV3Key::new(&c.apiv3_key).unwrap(),
                base,
            );
            let verifier = Verifier::builder()
                .wechatpay_public_key(&c.wechatpay_public_key_id, &c.wechatpay_public_key_pem)
                .unwrap()
                .build();
            Arc::new(PayV3Client::new(cfg, http.clone(), Arc::new(verifier)))
        }
    };
    let seen: Seen = Arc::default();
    let (g, s) = (gateway.clone(), seen.clone());
    let app = axum::Router::new()
        .route(
            "/notify",
            axum::routing::post(|| async { wechat::pay::v2::notify::SUCCESS_XML.into_response() }),
        )
        .route(
            "/refund",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (g, s) = (g.clone(), s.clone());
                async move {
                    let r = g.parse_refund_notification(&headers, &body).await;
                    let answer = match &r {
                        Ok(_) => g.notification_success(),
                        Err(e) => g.notification_failure(&e.to_string()),
                    };
                    s.lock().unwrap().push(r);
                    (
                        StatusCode::from_u16(answer.status).unwrap(),
                        [("content-type", answer.content_type)],
                        answer.body,
                    )
                        .into_response()
                }
            }),
        );
    let shop = serve(app).await;
    Env {
        sandbox,
        gateway,
        notify_url: format!("{shop}/notify"),
        refund_url: format!("{shop}/refund"),
        seen,
        _secapi: secapi_task,
    }
}

async fn paid_order(e: &Env, no: &str, total: i64) {
    let req = PrepayRequest {
        description: "wxmall-测试商品".into(),
        out_trade_no: no.into(),
        total_fee: total,
        openid: e.sandbox.users()[0].openid.clone(),
        notify_url: e.notify_url.clone(),
        client_ip: "127.0.0.1".into(),
        time_expire: None,
        attach: None,
    };
    e.gateway.prepay(&req).await.expect("prepay");
    e.sandbox.pay(no).await.expect("pay");
}

fn refund_req(e: &Env, no: &str, rno: &str, total: i64, fee: i64) -> RefundRequest {
    RefundRequest {
        out_trade_no: no.into(),
        out_refund_no: rno.into(),
        total_fee: total,
        refund_fee: fee,
        reason: Some("不想要了".into()),
        notify_url: Some(e.refund_url.clone()),
    }
}

async fn refund_round_trip(version: ApiVersion) {
    let e = env(version).await;
    let v = if version == ApiVersion::V2 {
        "V2"
    } else {
        "V3"
    };
    let no = format!("{v}ORDER0001");
    paid_order(&e, &no, 1990).await;

    // Requested: PROCESSING, and so says the query.
    let rno = format!("{v}REFUND0001");
    let r = e
        .gateway
        .refund(&refund_req(&e, &no, &rno, 1990, 990))
        .await
        .expect("refund");
    assert_eq!(r.status, RefundStatus::Processing);
    assert_eq!(r.refund_fee, 990);
    let q = e.gateway.query_refund(&rno).await.expect("query");
    assert_eq!(q.status, RefundStatus::Processing);
    assert_eq!(q.refund_id, r.refund_id);

    // Settled: the notification verifies/decrypts and the query agrees.
    assert!(
        e.sandbox
            .wait_for_refund_ack(&rno, Duration::from_secs(5))
            .await,
        "{:?} {:?}",
        e.sandbox.refund_deliveries(&rno),
        e.seen.lock().unwrap()
    );
    let n = e.seen.lock().unwrap()[0].clone().expect("accepted");
    assert_eq!(n.api, version);
    assert_eq!(n.status, RefundStatus::Success);
    assert_eq!(n.out_trade_no, no);
    assert_eq!(n.out_refund_no, rno);
    assert_eq!(n.refund_id, r.refund_id);
    assert_eq!((n.total_fee, n.refund_fee), (1990, 990));
    assert!(n.success_time.as_deref().unwrap().ends_with("+08:00"));
    assert_eq!(
        n.transaction_id,
        e.sandbox.transaction(&no).unwrap().transaction_id
    );
    assert_eq!(n.notification_id.is_some(), version == ApiVersion::V3);
    let q = e.gateway.query_refund(&rno).await.expect("query");
    assert_eq!(q.status, RefundStatus::Success);
    assert_eq!(q.refund_fee, 990);

    // The same refund asked again: the same refund.
    let again = e
        .gateway
        .refund(&refund_req(&e, &no, &rno, 1990, 990))
        .await
        .expect("idempotent");
    assert_eq!(again.refund_id, r.refund_id);

    // Abnormal on demand.
    e.sandbox.make_next_refund_abnormal();
    let rno2 = format!("{v}REFUND0002");
    e.gateway
        .refund(&refund_req(&e, &no, &rno2, 1990, 1000))
        .await
        .expect("refund 2");
    assert!(
        e.sandbox
            .wait_for_refund_ack(&rno2, Duration::from_secs(5))
            .await
    );
    let n2 = e
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .find(|n| n.out_refund_no == rno2)
        .cloned()
        .expect("abnormal notice");
    assert_eq!(n2.status, RefundStatus::Abnormal);
    assert_eq!(n2.success_time, None);
    assert_eq!(
        e.gateway.query_refund(&rno2).await.unwrap().status,
        RefundStatus::Abnormal
    );

    // Unknown refund: a verified "does not exist".
    let err = e
        .gateway
        .query_refund(&format!("{v}NOPE000001"))
        .await
        .expect_err("unknown");
    assert!(err.is_order_not_exist(), "{err:?}");

    // The ready-made copies (for load and concurrency tests) parse, every time.
    for _ in 0..5 {
        let (pairs, body) = e.sandbox.signed_refund_notification(&rno).unwrap();
        let mut h = HeaderMap::new();
        for (k, v) in &pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let n = e
            .gateway
            .parse_refund_notification(&h, &body)
            .await
            .unwrap();
        assert_eq!(n.refund_id, r.refund_id);
        assert_eq!(n.status, RefundStatus::Success);
    }
    // No notification was refused.
    assert!(e.seen.lock().unwrap().iter().all(|r| r.is_ok()));
}

#[tokio::test]
async fn v2_refund_query_and_notification_against_the_sandbox() {
    refund_round_trip(ApiVersion::V2).await;
}

#[tokio::test]
async fn v3_refund_query_and_notification_against_the_sandbox() {
    refund_round_trip(ApiVersion::V3).await;
}

fn beijing_today() -> time::Date {
    time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
}

async fn bills(version: ApiVersion) {
    let e = env(version).await;
    let v = if version == ApiVersion::V2 {
        "V2"
    } else {
        "V3"
    };
    let today = beijing_today();
    let yesterday = today.previous_day().unwrap();
    // No trades yet: no bill.
    assert_eq!(e.gateway.trade_bill(today).await.expect("no bill"), None);

    let (a, b) = (format!("{v}BILL0001"), format!("{v}BILL0002"));
    paid_order(&e, &a, 1990).await;
    paid_order(&e, &b, 57).await;
    let rno = format!("{v}BILLR0001");
    e.gateway
        .refund(&refund_req(&e, &a, &rno, 1990, 990))
        .await
        .expect("refund");
    assert!(
        e.sandbox
            .wait_for_refund_ack(&rno, Duration::from_secs(5))
            .await
    );

    let bill = e
        .gateway
        .trade_bill(today)
        .await
        .expect("bill")
        .expect("a bill for today");
    assert_eq!(bill.rows.len(), 3, "{bill:?}");
    let c = creds();
    let pay_a = bill
        .rows
        .iter()
        .find(|r| r.out_trade_no == a && r.trade_state == "SUCCESS")
        .expect("payment row");
    assert_eq!(pay_a.total_fee, 1990);
    assert_eq!(
        (pay_a.appid.as_str(), pay_a.mchid.as_str()),
        (c.appid.as_str(), c.mchid.as_str())
    );
    assert_eq!(
        Some(pay_a.transaction_id.clone()),
        e.sandbox.transaction(&a).unwrap().transaction_id
    );
    assert_eq!(pay_a.openid, e.sandbox.users()[0].openid);
    assert_eq!(pay_a.refund_id, None);
    assert_eq!(pay_a.trade_time.len(), 19);
    let refund_row = bill
        .rows
        .iter()
        .find(|r| r.trade_state == "REFUND")
        .expect("refund row");
    assert_eq!(refund_row.out_trade_no, a);
    assert_eq!(refund_row.out_refund_no.as_deref(), Some(rno.as_str()));
    assert_eq!(refund_row.refund_fee, 990);
    assert_eq!(refund_row.refund_status.as_deref(), Some("SUCCESS"));
    assert_eq!(refund_row.total_fee, 0);
    let s = bill.summary.clone().expect("summary");
    assert_eq!((s.trades, s.total_fee, s.refund_fee), (3, 1990 + 57, 990));
    assert_eq!(e.gateway.trade_bill(yesterday).await.unwrap(), None);

    // An injected difference shows in the next bills, rows and summary alike.
    e.sandbox.tamper_bill_amount(&b, 100);
    let tampered = e.gateway.trade_bill(today).await.unwrap().unwrap();
    let row_b = tampered.rows.iter().find(|r| r.out_trade_no == b).unwrap();
    assert_eq!(row_b.total_fee, 157);
    assert_eq!(tampered.summary.unwrap().total_fee, 1990 + 157);
}

#[tokio::test]
async fn v2_trade_bill_against_the_sandbox() {
    bills(ApiVersion::V2).await;
}

#[tokio::test]
async fn v3_trade_bill_against_the_sandbox() {
    bills(ApiVersion::V3).await;
    let e = env(ApiVersion::V3).await;
    let today = beijing_today();
    // "No bill" must come in a verified answer to mean None.
    e.sandbox
        .fail_next(Endpoint::V3Bill, Fault::CorruptSignature);
    let err = e.gateway.trade_bill(today).await.expect_err("unverified");
    assert!(
        matches!(
            err,
            PayError::V3(PayV3Error::Api {
                verified: false,
                ..
            })
        ),
        "{err:?}"
    );
    // A file that does not match its signed hash is refused.
    paid_order(&e, "V3HASH0001", 100).await;
    e.sandbox
        .fail_next(Endpoint::V3BillDownload, Fault::CorruptSignature);
    let err = e.gateway.trade_bill(today).await.expect_err("hash");
    assert!(
        matches!(err, PayError::V3(PayV3Error::Bill(BillError::HashMismatch))),
        "{err:?}"
    );
    // And the next download is fine again.
    assert_eq!(
        e.gateway
            .trade_bill(today)
            .await
            .unwrap()
            .unwrap()
            .rows
            .len(),
        1
    );
}
