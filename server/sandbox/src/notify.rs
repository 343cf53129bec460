//! Payment and refund notifications: v2 signed XML (refunds: unsigned XML with an AES-256-ECB
//! `req_info`), v3 encrypted + signed JSON; retries with back-off until acknowledged, then one
//! duplicate delivery (WeChat does send duplicates).

use std::collections::BTreeMap;

use axum::http::{header, HeaderValue, Method, Request};
use serde_json::json;
use tokio::sync::oneshot;

use crate::answer::v3_sign_parts;
use crate::crypto::{
    aes_ecb_encrypt_b64, aes_gcm_encrypt, random_alnum, random_hex_upper, v2_refund_key, v2_sign,
    V2SignType,
};
use crate::pay_v3::transaction_json;
use crate::state::{Delivery, DeliveryKind, Forgery, PayApi, Refund, Sandbox, Transaction};
use crate::util::{compact_beijing, dashed_beijing, rfc3339_beijing, wall_ms};
use crate::SandboxError;

/// A notification ready to POST: request headers as `(name, value)` pairs, and the body.
pub type SignedRefundNotification = (Vec<(String, String)>, Vec<u8>);

/// A prepared notification body.
#[derive(Clone)]
pub(crate) enum Payload {
    V2(String),
    V3(Vec<u8>),
}

impl Payload {
    fn text(&self) -> String {
        match self {
            Payload::V2(s) => s.clone(),
            Payload::V3(b) => String::from_utf8_lossy(b).into_owned(),
        }
    }
}

pub(crate) fn v2_body(sb: &Sandbox, t: &Transaction, total: i64, corrupt: bool) -> String {
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    let paid = t.paid_at_ms.unwrap_or_else(|| sb.now_ms());
    let txid = t
        .transaction_id
        .clone()
        .unwrap_or_else(|| format!("4200000000{}", crate::crypto::random_digits(18)));
    for (k, v) in [
        ("appid", t.appid.clone()),
        ("bank_type", "OTHERS".to_string()),
        ("cash_fee", total.to_string()),
        ("fee_type", "CNY".to_string()),
        ("is_subscribe", "N".to_string()),
        ("mch_id", t.mchid.clone()),
        ("nonce_str", random_alnum(32)),
        ("openid", t.openid.clone()),
        ("out_trade_no", t.out_trade_no.clone()),
        ("result_code", "SUCCESS".to_string()),
        ("return_code", "SUCCESS".to_string()),
        ("time_end", compact_beijing(paid)),
        ("total_fee", total.to_string()),
        ("trade_type", "JSAPI".to_string()),
        ("transaction_id", txid),
    ] {
        m.insert(k.to_string(), v);
    }
    if let Some(a) = t.attach.as_ref().filter(|a| !a.is_empty()) {
        m.insert("attach".into(), a.clone());
    }
    let ty = t.sign_type.unwrap_or(V2SignType::Md5);
    if ty == V2SignType::HmacSha256 {
        m.insert("sign_type".into(), ty.as_str().into());
    }
    let key = &sb.creds().pay_key_v2;
    let sign = if corrupt {
        v2_sign(&m, &format!("{key}x"), ty)
    } else {
        v2_sign(&m, key, ty)
    };
    m.insert("sign".into(), sign);
    crate::xml::build_map(&m)
}

pub(crate) fn v3_body(sb: &Sandbox, t: &Transaction, total: i64) -> Vec<u8> {
    let mut plain = transaction_json(t);
    plain["amount"]["total"] = json!(total);
    plain["amount"]["payer_total"] = json!(total);
    if t.transaction_id.is_none() {
        plain["transaction_id"] = json!(format!("4200000000{}", crate::crypto::random_digits(18)));
        plain["trade_state"] = json!("SUCCESS");
        plain["trade_state_desc"] = json!("支付成功");
        plain["success_time"] = json!(rfc3339_beijing(sb.now_ms()));
    }
    let nonce = random_alnum(12);
    let ciphertext = aes_gcm_encrypt(
        sb.creds().apiv3_key.as_bytes(),
        nonce.as_bytes(),
        b"transaction",
        plain.to_string().as_bytes(),
    );
    let body = json!({
        "id": notification_id(),
        "create_time": rfc3339_beijing(sb.now_ms()),
        "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS",
        "summary": "支付成功",
        "resource": {
            "original_type": "transaction",
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": ciphertext,
            "associated_data": "transaction",
            "nonce": nonce,
        }
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

fn notification_id() -> String {
    format!(
        "{}-{}-{}-{}-{}",
        random_hex_upper(8),
        random_hex_upper(4),
        random_hex_upper(4),
        random_hex_upper(4),
        random_hex_upper(12)
    )
    .to_lowercase()
}

/// v2 refund status spelling.
pub(crate) fn v2_refund_status(status: &str) -> &str {
    match status {
        "CLOSED" => "REFUNDCLOSE",
        "ABNORMAL" => "CHANGE",
        other => other,
    }
}

/// v2 refund notification: `<xml>` with return_code, appid, mch_id, nonce_str and `req_info`
/// (AES-256-ECB of the `<root>` refund document, key from the API key). No `sign`.
pub(crate) fn v2_refund_body(sb: &Sandbox, t: &Transaction, r: &Refund) -> String {
    let mut inner: BTreeMap<&str, String> = BTreeMap::new();
    for (k, v) in [
        ("out_refund_no", r.out_refund_no.clone()),
        ("out_trade_no", t.out_trade_no.clone()),
        ("refund_account", "REFUND_SOURCE_RECHARGE_FUNDS".to_string()),
        ("refund_fee", r.refund.to_string()),
        ("refund_id", r.refund_id.clone()),
        ("refund_recv_accout", "支付用户零钱".to_string()),
        ("refund_request_source", "API".to_string()),
        ("refund_status", v2_refund_status(&r.status).to_string()),
        ("settlement_refund_fee", r.refund.to_string()),
        ("settlement_total_fee", t.total.to_string()),
        ("total_fee", t.total.to_string()),
        (
            "transaction_id",
            t.transaction_id.clone().unwrap_or_default(),
        ),
    ] {
        inner.insert(k, v);
    }
    if let Some(ms) = r.success_at_ms {
        inner.insert("success_time", dashed_beijing(ms));
    }
    let doc = crate::xml::build_root("root", inner.iter().map(|(k, v)| (*k, v.as_str())));
    let c = sb.creds();
    let req_info = aes_ecb_encrypt_b64(&v2_refund_key(&c.pay_key_v2), doc.as_bytes());
    crate::xml::build([
        ("return_code", "SUCCESS"),
        ("appid", c.appid.as_str()),
        ("mch_id", c.mchid.as_str()),
        ("nonce_str", random_alnum(32).as_str()),
        ("req_info", req_info.as_str()),
    ])
}

/// v3 refund notification: `REFUND.SUCCESS|ABNORMAL|CLOSED`, resource `original_type: "refund"`.
pub(crate) fn v3_refund_body(sb: &Sandbox, t: &Transaction, r: &Refund) -> Vec<u8> {
    let mut plain = json!({
        "mchid": t.mchid,
        "out_trade_no": t.out_trade_no,
        "transaction_id": t.transaction_id,
        "out_refund_no": r.out_refund_no,
        "refund_id": r.refund_id,
        "refund_status": r.status,
        "user_received_account": "支付用户零钱",
        "amount": {"total": t.total, "refund": r.refund, "payer_total": t.total, "payer_refund": r.refund},
    });
    if let Some(st) = &r.success_time {
        plain["success_time"] = json!(st);
    }
    let nonce = random_alnum(12);
    let ciphertext = aes_gcm_encrypt(
        sb.creds().apiv3_key.as_bytes(),
        nonce.as_bytes(),
        b"refund",
        plain.to_string().as_bytes(),
    );
    let (event, summary) = match r.status.as_str() {
        "SUCCESS" => ("REFUND.SUCCESS", "退款成功"),
        "CLOSED" => ("REFUND.CLOSED", "退款关闭"),
        _ => ("REFUND.ABNORMAL", "退款异常"),
    };
    let body = json!({
        "id": notification_id(),
        "create_time": rfc3339_beijing(sb.now_ms()),
        "resource_type": "encrypt-resource",
        "event_type": event,
        "summary": summary,
        "resource": {
            "original_type": "refund",
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": ciphertext,
            "associated_data": "refund",
            "nonce": nonce,
        }
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

fn refund_payload(sb: &Sandbox, t: &Transaction, r: &Refund) -> Payload {
    match r.api {
        PayApi::V2 => Payload::V2(v2_refund_body(sb, t, r)),
        PayApi::V3 => Payload::V3(v3_refund_body(sb, t, r)),
    }
}

/// What a delivery is about: where it is recorded.
#[derive(Clone)]
enum Subject {
    Payment(String),
    Refund {
        out_trade_no: String,
        out_refund_no: String,
    },
}

impl Subject {
    fn out_trade_no(&self) -> &str {
        match self {
            Subject::Payment(no)
            | Subject::Refund {
                out_trade_no: no, ..
            } => no,
        }
    }
}

struct Outcome {
    status: Option<u16>,
    acknowledged: bool,
    error: Option<String>,
    body: String,
}

/// The notification body first sent for a paid transaction.
fn payload_for(sb: &Sandbox, t: &Transaction) -> Payload {
    match t.api {
        PayApi::V2 => Payload::V2(v2_body(sb, t, t.total, false)),
        PayApi::V3 => Payload::V3(v3_body(sb, t, t.total)),
    }
}

/// The HTTP request that carries `payload` to `url`: v2 XML as is; v3 JSON with the
/// `Wechatpay-*` headers signed now over the exact body bytes (or broken as `forgery` says).
/// Every delivery, retry, duplicate, forgery and [`Sandbox::signed_notification`] goes
/// through here, so there is one way the sandbox signs a notification.
fn notification_request(
    sb: &Sandbox,
    url: &str,
    payload: &Payload,
    forgery: Option<Forgery>,
) -> Result<Request<Vec<u8>>, String> {
    let mut req = Request::builder().method(Method::POST).uri(url);
    let body = match payload {
        Payload::V2(s) => {
            req = req.header(header::CONTENT_TYPE, "text/xml; charset=utf-8");
            s.clone().into_bytes()
        }
        Payload::V3(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            if forgery != Some(Forgery::MissingHeaders) {
                let mut ts = wall_ms() / 1000;
                if forgery == Some(Forgery::StaleTimestamp) {
                    ts -= 600;
                }
                let corrupt = forgery == Some(Forgery::BadSignature);
                let (ts, nonce, sig, mut serial) = v3_sign_parts(sb, b, ts, corrupt);
                if forgery == Some(Forgery::UnknownSerial) {
                    serial = random_hex_upper(40);
                }
                for (k, v) in [
                    ("Wechatpay-Timestamp", ts),
                    ("Wechatpay-Nonce", nonce),
                    ("Wechatpay-Signature", sig),
                    ("Wechatpay-Serial", serial),
                    (
                        "Wechatpay-Signature-Type",
                        "WECHATPAY2-SHA256-RSA2048".to_string(),
                    ),
                ] {
                    if let Ok(v) = HeaderValue::from_str(&v) {
                        req = req.header(k, v);
                    }
                }
            }
            b.clone()
        }
    };
    req.body(body)
        .map_err(|e| format!("notify_url {url:?}: {e}"))
}

async fn send(sb: &Sandbox, url: &str, payload: &Payload, forgery: Option<Forgery>) -> Outcome {
    let req = match notification_request(sb, url, payload, forgery) {
        Ok(r) => r,
        Err(e) => {
            return Outcome {
                status: None,
                acknowledged: false,
                error: Some(e),
                body: String::new(),
            }
        }
    };
    let (parts, body) = req.into_parts();
    let req = sb
        .inner
        .http
        .request(parts.method, parts.uri.to_string())
        .timeout(sb.opts().notify_timeout)
        .headers(parts.headers)
        .body(body);
    match req.send().await {
        Err(e) => Outcome {
            status: None,
            acknowledged: false,
            error: Some(e.to_string()),
            body: String::new(),
        },
        Ok(resp) => {
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.unwrap_or_default();
            let text: String = String::from_utf8_lossy(&bytes).chars().take(2048).collect();
            let acknowledged = match payload {
                Payload::V2(_) => {
                    status == 200
                        && crate::xml::parse_flat(&bytes, 64 * 1024)
                            .ok()
                            .and_then(|m| m.get("return_code").cloned())
                            .is_some_and(|c| c == "SUCCESS")
                }
                Payload::V3(_) => status == 200 || status == 204,
            };
            Outcome {
                status: Some(status),
                acknowledged,
                error: None,
                body: text,
            }
        }
    }
}

fn record(
    sb: &Sandbox,
    subject: &Subject,
    attempt: u32,
    kind: DeliveryKind,
    o: &Outcome,
    payload: &Payload,
) {
    let no = subject.out_trade_no();
    let out_refund_no = match subject {
        Subject::Refund { out_refund_no, .. } => Some(out_refund_no.clone()),
        Subject::Payment(_) => None,
    };
    if !o.acknowledged {
        tracing::warn!(target: "wechat_sandbox", out_trade_no = no, out_refund_no = ?out_refund_no, attempt, kind = ?kind, status = ?o.status, error = ?o.error, "notification not acknowledged");
    }
    let d = Delivery {
        out_trade_no: no.to_string(),
        out_refund_no: out_refund_no.clone(),
        attempt,
        kind,
        status: o.status,
        acknowledged: o.acknowledged,
        error: o.error.clone(),
        response_body: o.body.clone(),
        request_body: payload.text(),
        at_ms: wall_ms(),
    };
    let mut st = sb.lock();
    let log = match out_refund_no {
        Some(rno) => st.refund_deliveries.entry(rno).or_default(),
        None => st.deliveries.entry(no.to_string()).or_default(),
    };
    log.push(d);
}

impl Sandbox {
    /// Starts delivering the payment notification for a paid transaction. The receiver fires
    /// once the first attempt has finished (or at once if notifications are dropped).
    pub(crate) fn start_notification(&self, t: &Transaction) -> oneshot::Receiver<()> {
        let payload = payload_for(self, t);
        self.deliver(
            Subject::Payment(t.out_trade_no.clone()),
            t.notify_url.clone(),
            payload,
        )
    }

    /// Starts delivering the notification of a settled refund to its notify_url (same retries,
    /// duplicate and drop hook as payment notifications).
    pub(crate) fn start_refund_notification(
        &self,
        t: &Transaction,
        r: &Refund,
    ) -> oneshot::Receiver<()> {
        let payload = refund_payload(self, t, r);
        self.deliver(
            Subject::Refund {
                out_trade_no: t.out_trade_no.clone(),
                out_refund_no: r.out_refund_no.clone(),
            },
            r.notify_url.clone().unwrap_or_default(),
            payload,
        )
    }

    /// Sends `payload` to `url` until acknowledged (with [`SandboxOptions::notify_retry_delays`]),
    /// then once more after [`SandboxOptions::notify_duplicate_after`]; records every attempt.
    ///
    /// [`SandboxOptions::notify_retry_delays`]: crate::SandboxOptions::notify_retry_delays
    /// [`SandboxOptions::notify_duplicate_after`]: crate::SandboxOptions::notify_duplicate_after
    fn deliver(&self, subject: Subject, url: String, payload: Payload) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        if self.lock().drop_notifications {
            tracing::info!(target: "wechat_sandbox", out_trade_no = %subject.out_trade_no(), "notification dropped (test hook)");
            let o = Outcome {
                status: None,
                acknowledged: false,
                error: Some("dropped by set_drop_notifications".into()),
                body: String::new(),
            };
            record(self, &subject, 1, DeliveryKind::Dropped, &o, &payload);
            let _ = tx.send(());
            return rx;
        }
        let sb = self.clone();
        tokio::spawn(async move {
            let opts = sb.opts();
            let mut first = Some(tx);
            let mut attempt = 0u32;
            loop {
                attempt += 1;
                let o = send(&sb, &url, &payload, None).await;
                let kind = if attempt == 1 {
                    DeliveryKind::Initial
                } else {
                    DeliveryKind::Retry
                };
                record(&sb, &subject, attempt, kind, &o, &payload);
                if let Some(f) = first.take() {
                    let _ = f.send(());
                }
                if o.acknowledged {
                    if let Some(d) = opts.notify_duplicate_after {
                        tokio::time::sleep(d).await;
                        let o = send(&sb, &url, &payload, None).await;
                        record(&sb, &subject, 1, DeliveryKind::Duplicate, &o, &payload);
                    }
                    break;
                }
                let Some(delay) = opts.notify_retry_delays.get(attempt as usize - 1) else {
                    tracing::warn!(target: "wechat_sandbox", out_trade_no = %subject.out_trade_no(), attempts = attempt, "notification abandoned");
                    break;
                };
                tokio::time::sleep(*delay).await;
            }
        });
        rx
    }

    /// The refund notification of a settled refund exactly as the sandbox would deliver it now
    /// (v3: encrypted resource and `Wechatpay-*` headers timestamped now; v2: `req_info`
    /// encrypted with the sandbox's own AES-256-ECB), without sending or recording it: the
    /// request headers as `(name, value)` pairs and the body. POST them to the shop's refund
    /// notify URL as often as needed (e.g. 20 times concurrently). Each call builds a fresh copy
    /// (new nonces and notification id, same refund), as WeChat's repeats are. Fails for an
    /// unknown refund or one still `PROCESSING` (WeChat notifies only settled refunds).
    pub fn signed_refund_notification(
        &self,
        out_refund_no: &str,
    ) -> Result<SignedRefundNotification, SandboxError> {
        let (t, r) = self
            .find_refund(out_refund_no)
            .ok_or_else(|| SandboxError::UnknownOrder(out_refund_no.to_string()))?;
        if r.status == "PROCESSING" {
            return Err(SandboxError::InvalidState(format!(
                "refund {out_refund_no} is still PROCESSING"
            )));
        }
        let url = r
            .notify_url
            .clone()
            .unwrap_or_else(|| "http://127.0.0.1/refund-notify".to_string());
        let req = notification_request(self, &url, &refund_payload(self, &t, &r), None)
            .map_err(SandboxError::InvalidState)?;
        let headers = req
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        Ok((headers, req.into_body()))
    }

    /// The payment notification of a paid transaction exactly as the sandbox would deliver it
    /// now — `POST` to the order's notify_url, headers and body, signed by the sandbox's own
    /// code (v2 `sign`; v3 AES-256-GCM resource and `Wechatpay-*` headers timestamped now) —
    /// without sending or recording it. For callers that deliver notifications themselves,
    /// e.g. a load test replaying thousands (`server/examples/notify_load.rs`). Each call
    /// builds a fresh copy (new nonces, same transaction_id), as WeChat's repeats are; a v3
    /// copy is accepted only within the receiver's timestamp window (5 minutes at WeChat).
    pub fn signed_notification(
        &self,
        out_trade_no: &str,
    ) -> Result<Request<Vec<u8>>, SandboxError> {
        let t = self
            .transaction(out_trade_no)
            .ok_or_else(|| SandboxError::UnknownOrder(out_trade_no.to_string()))?;
        if t.transaction_id.is_none() {
            return Err(SandboxError::InvalidState(format!(
                "{out_trade_no} is {}, not paid",
                t.state.as_str()
            )));
        }
        notification_request(self, &t.notify_url, &payload_for(self, &t), None)
            .map_err(SandboxError::InvalidState)
    }

    /// Sends one deliberately bad (or, for [`Forgery::WrongAmount`], correctly signed but
    /// wrong) notification for the order to its notify_url and reports how the shop answered.
    /// A correct shop answers with a failure (not acknowledged). Works for unpaid orders too
    /// (a fake "paid" notification).
    pub async fn forge_notification(
        &self,
        out_trade_no: &str,
        forgery: Forgery,
    ) -> Result<Delivery, SandboxError> {
        let t = self
            .transaction(out_trade_no)
            .ok_or_else(|| SandboxError::UnknownOrder(out_trade_no.to_string()))?;
        if t.api == PayApi::V2 && !matches!(forgery, Forgery::BadSignature | Forgery::WrongAmount) {
            return Err(SandboxError::InvalidState(format!(
                "{forgery:?} only applies to v3 notifications"
            )));
        }
        let total = if forgery == Forgery::WrongAmount {
            t.total + 1
        } else {
            t.total
        };
        let payload = match t.api {
            PayApi::V2 => Payload::V2(v2_body(self, &t, total, forgery == Forgery::BadSignature)),
            PayApi::V3 => Payload::V3(v3_body(self, &t, total)),
        };
        let o = send(self, &t.notify_url, &payload, Some(forgery)).await;
        record(
            self,
            &Subject::Payment(out_trade_no.to_string()),
            1,
            DeliveryKind::Forged(forgery),
            &o,
            &payload,
        );
        Ok(self.deliveries(out_trade_no).pop().expect("just recorded"))
    }
}
