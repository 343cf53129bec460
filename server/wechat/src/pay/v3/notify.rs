//! v3 notifications: JSON envelope signed in the `Wechatpay-*` headers, resource (a transaction or a
//! refund) encrypted with AES-256-GCM under the APIv3 key.
//!
//! Order of checks: size → headers present → timestamp window → key by serial → signature over the raw
//! body → envelope JSON → `event_type` → algorithm → decryption (with `associated_data`) → appid/mchid
//! ours → fields. Nothing in the body is read before the signature verifies. Payments
//! ([`parse`]) and refunds ([`parse_refund`]) share every step up to the decrypted plaintext.
use http::HeaderMap;

use crate::pay::notify::{ApiVersion, NotifyAnswer, NotifyError, PaymentNotice, MAX_NOTIFY_BYTES};
use crate::pay::{RefundNotice, RefundStatus, TradeState};

use super::aead::{decrypt_resource, ApiV3Key};
use super::certs::Verifier;

/// The event type of a successful payment.
pub const TRANSACTION_SUCCESS: &str = "TRANSACTION.SUCCESS";
/// The event type of a successful refund.
pub const REFUND_SUCCESS: &str = "REFUND.SUCCESS";
/// The event type of a refund that could not be paid out (handle manually).
pub const REFUND_ABNORMAL: &str = "REFUND.ABNORMAL";
/// The event type of a closed refund.
pub const REFUND_CLOSED: &str = "REFUND.CLOSED";
/// Every refund event type.
pub const REFUND_EVENTS: [&str; 3] = [REFUND_SUCCESS, REFUND_ABNORMAL, REFUND_CLOSED];

/// What a v3 notification is checked against.
#[derive(Debug, Clone)]
pub struct V3NotifyConfig {
    /// Our appid.
    pub appid: String,
    /// Our merchant id.
    pub mchid: String,
    /// The APIv3 key.
    pub apiv3_key: ApiV3Key,
}

/// Success answer: HTTP 200 with `{"code":"SUCCESS","message":"成功"}` (accepted by both the older
/// rule, which wanted that body, and the current one, which wants 200/204).
pub fn success() -> NotifyAnswer {
    NotifyAnswer {
        status: 200,
        content_type: "application/json",
        body: r#"{"code":"SUCCESS","message":"成功"}"#.to_owned(),
    }
}

/// Failure answer: HTTP 500 with `{"code":"FAIL","message":…}` (WeChat retries).
pub fn failure(message: &str) -> NotifyAnswer {
    fail_with(500, message)
}

/// The answer to a notification the merchant refuses (bad signature, malformed, not ours, an
/// amount that does not match): `400` with the same `{"code":"FAIL"}` body. WeChat retries any
/// 4XX or 5XX alike; the status tells the merchant's own monitoring a refusal (somebody else's
/// request) from an internal failure ([`failure`], 500).
pub fn refusal(message: &str) -> NotifyAnswer {
    fail_with(400, message)
}

fn fail_with(status: u16, message: &str) -> NotifyAnswer {
    let msg: String = message.chars().take(128).collect();
    NotifyAnswer {
        status,
        content_type: "application/json",
        body: serde_json::json!({ "code": "FAIL", "message": msg }).to_string(),
    }
}

#[derive(serde::Deserialize)]
struct Envelope {
    #[serde(default)]
    id: Option<String>,
    event_type: String,
    resource: Resource,
}

#[derive(serde::Deserialize)]
struct Resource {
    #[serde(default)]
    original_type: Option<String>,
    algorithm: String,
    ciphertext: String,
    nonce: String,
    #[serde(default)]
    associated_data: String,
}

fn malformed(e: &serde_json::Error) -> NotifyError {
    NotifyError::Malformed(crate::http::json_error(e))
}

/// Refuses a body over [`MAX_NOTIFY_BYTES`] before any verification work is done on it.
fn check_size(body: &[u8]) -> Result<(), NotifyError> {
    if body.len() > MAX_NOTIFY_BYTES {
        return Err(NotifyError::TooLarge {
            size: body.len(),
            limit: MAX_NOTIFY_BYTES,
        });
    }
    Ok(())
}

/// A notification whose signature verified, opened: its id, event type and decrypted resource.
struct Opened {
    id: Option<String>,
    event_type: String,
    plaintext: Vec<u8>,
}

/// Verifies the signature over the raw body (downloading certificates if needed), then opens it.
async fn verify_and_open(
    headers: &HeaderMap,
    body: &[u8],
    verifier: &Verifier,
    key: &ApiV3Key,
    events: &[&str],
    original_type: &str,
) -> Result<Opened, NotifyError> {
    check_size(body)?;
    verifier.verify(headers, body).await?;
    open_verified(body, key, events, original_type)
}

/// [`verify_and_open`] with the keys already held (synchronous).
fn verify_cached_and_open(
    headers: &HeaderMap,
    body: &[u8],
    verifier: &Verifier,
    key: &ApiV3Key,
    events: &[&str],
    original_type: &str,
) -> Result<Opened, NotifyError> {
    check_size(body)?;
    verifier.verify_cached(headers, body)?;
    open_verified(body, key, events, original_type)
}

/// Opens a body whose signature has been verified: envelope JSON → `event_type` one of `events` →
/// `original_type` (when present) → algorithm → decryption with `associated_data`.
fn open_verified(
    body: &[u8],
    key: &ApiV3Key,
    events: &[&str],
    original_type: &str,
) -> Result<Opened, NotifyError> {
    let env: Envelope = serde_json::from_slice(body).map_err(|e| malformed(&e))?;
    if !events.contains(&env.event_type.as_str()) {
        return Err(NotifyError::UnexpectedEvent(
            env.event_type.chars().take(64).collect(),
        ));
    }
    let r = env.resource;
    if let Some(t) = r.original_type.as_deref().filter(|t| *t != original_type) {
        return Err(NotifyError::Malformed(format!(
            "resource original_type {} where {original_type} was expected",
            t.chars().take(32).collect::<String>()
        )));
    }
    if r.algorithm != "AEAD_AES_256_GCM" {
        return Err(NotifyError::UnsupportedAlgorithm(
            r.algorithm.chars().take(64).collect(),
        ));
    }
    let plaintext = decrypt_resource(key, &r.nonce, &r.associated_data, &r.ciphertext)
        .map_err(|_| NotifyError::Decrypt)?;
    Ok(Opened {
        id: env.id,
        event_type: env.event_type,
        plaintext,
    })
}

/// Verifies, decrypts and checks a v3 payment notification.
pub async fn parse(
    headers: &HeaderMap,
    body: &[u8],
    verifier: &Verifier,
    cfg: &V3NotifyConfig,
) -> Result<PaymentNotice, NotifyError> {
    let o = verify_and_open(
        headers,
        body,
        verifier,
        &cfg.apiv3_key,
        &[TRANSACTION_SUCCESS],
        "transaction",
    )
    .await?;
    decode_transaction(o, cfg)
}

/// Like [`parse`] but never downloads certificates (synchronous; keys already held).
pub fn parse_cached(
    headers: &HeaderMap,
    body: &[u8],
    verifier: &Verifier,
    cfg: &V3NotifyConfig,
) -> Result<PaymentNotice, NotifyError> {
    let o = verify_cached_and_open(
        headers,
        body,
        verifier,
        &cfg.apiv3_key,
        &[TRANSACTION_SUCCESS],
        "transaction",
    )?;
    decode_transaction(o, cfg)
}

/// Verifies, decrypts and checks a v3 refund notification (`REFUND.SUCCESS`, `REFUND.ABNORMAL`,
/// `REFUND.CLOSED`; resource `original_type: "refund"`): the same checks as a payment
/// notification, then mchid ours (a refund carries no appid) and `refund_status` agreeing with the
/// event type.
pub async fn parse_refund(
    headers: &HeaderMap,
    body: &[u8],
    verifier: &Verifier,
    cfg: &V3NotifyConfig,
) -> Result<RefundNotice, NotifyError> {
    let o = verify_and_open(
        headers,
        body,
        verifier,
        &cfg.apiv3_key,
        &REFUND_EVENTS,
        "refund",
    )
    .await?;
    decode_refund(o, cfg)
}

/// Like [`parse_refund`] but never downloads certificates (synchronous; keys already held).
pub fn parse_refund_cached(
    headers: &HeaderMap,
    body: &[u8],
    verifier: &Verifier,
    cfg: &V3NotifyConfig,
) -> Result<RefundNotice, NotifyError> {
    let o = verify_cached_and_open(
        headers,
        body,
        verifier,
        &cfg.apiv3_key,
        &REFUND_EVENTS,
        "refund",
    )?;
    decode_refund(o, cfg)
}

/// The post-verification decoder, exposed only to the fuzz targets (feature `__fuzz`).
#[cfg(feature = "__fuzz")]
#[doc(hidden)]
pub fn decode_verified_for_fuzzing(
    body: &[u8],
    cfg: &V3NotifyConfig,
) -> Result<PaymentNotice, NotifyError> {
    let o = open_verified(body, &cfg.apiv3_key, &[TRANSACTION_SUCCESS], "transaction")?;
    decode_transaction(o, cfg)
}

#[derive(serde::Deserialize)]
struct V3Refund {
    mchid: String,
    out_trade_no: String,
    #[serde(default)]
    transaction_id: Option<String>,
    out_refund_no: String,
    refund_id: String,
    refund_status: String,
    #[serde(default)]
    success_time: Option<String>,
    amount: V3RefundAmount,
}

#[derive(serde::Deserialize)]
struct V3RefundAmount {
    total: i64,
    refund: i64,
}

/// Decodes an opened refund resource.
fn decode_refund(o: Opened, cfg: &V3NotifyConfig) -> Result<RefundNotice, NotifyError> {
    let r: V3Refund = serde_json::from_slice(&o.plaintext).map_err(|e| malformed(&e))?;
    if r.mchid != cfg.mchid {
        return Err(NotifyError::MchIdMismatch(
            r.mchid.chars().take(64).collect(),
        ));
    }
    let (status, expected_event) = match r.refund_status.as_str() {
        "SUCCESS" => (RefundStatus::Success, REFUND_SUCCESS),
        "ABNORMAL" => (RefundStatus::Abnormal, REFUND_ABNORMAL),
        "CLOSED" => (RefundStatus::Closed, REFUND_CLOSED),
        other => {
            return Err(NotifyError::Malformed(format!(
                "unexpected refund_status {}",
                other.chars().take(32).collect::<String>()
            )))
        }
    };
    if o.event_type != expected_event {
        return Err(NotifyError::Malformed(format!(
            "event_type {} disagrees with refund_status {}",
            o.event_type,
            status.as_str()
        )));
    }
    for (v, k) in [
        (&r.out_trade_no, "out_trade_no"),
        (&r.out_refund_no, "out_refund_no"),
        (&r.refund_id, "refund_id"),
    ] {
        if v.is_empty() {
            return Err(NotifyError::Malformed(format!("missing field {k}")));
        }
    }
    let (total_fee, refund_fee) = (r.amount.total, r.amount.refund);
    if total_fee < 0 || refund_fee < 0 || refund_fee > total_fee {
        return Err(NotifyError::Malformed(
            "amount.refund must be between 0 and amount.total".into(),
        ));
    }
    Ok(RefundNotice {
        api: ApiVersion::V3,
        out_trade_no: r.out_trade_no,
        transaction_id: r.transaction_id.filter(|s| !s.is_empty()),
        out_refund_no: r.out_refund_no,
        refund_id: r.refund_id,
        status,
        total_fee,
        refund_fee,
        success_time: r.success_time.filter(|s| !s.is_empty()),
        notification_id: o.id,
    })
}

/// Decodes an opened transaction resource.
fn decode_transaction(o: Opened, cfg: &V3NotifyConfig) -> Result<PaymentNotice, NotifyError> {
    let plain = o.plaintext;
    let t: V3Transaction = serde_json::from_slice(&plain).map_err(|e| malformed(&e))?;
    if t.appid != cfg.appid {
        return Err(NotifyError::AppIdMismatch(
            t.appid.chars().take(64).collect(),
        ));
    }
    if t.mchid != cfg.mchid {
        return Err(NotifyError::MchIdMismatch(
            t.mchid.chars().take(64).collect(),
        ));
    }
    let need = |v: Option<String>, k: &str| {
        v.filter(|s| !s.is_empty())
            .ok_or_else(|| NotifyError::Malformed(format!("missing field {k}")))
    };
    let amount = t
        .amount
        .ok_or_else(|| NotifyError::Malformed("missing field amount".into()))?;
    let total_fee = amount
        .total
        .filter(|v| *v >= 0)
        .ok_or_else(|| NotifyError::Malformed("missing or negative amount.total".into()))?;
    if t.out_trade_no.is_empty() {
        return Err(NotifyError::Malformed("missing field out_trade_no".into()));
    }
    Ok(PaymentNotice {
        api: ApiVersion::V3,
        appid: t.appid,
        mchid: t.mchid,
        out_trade_no: t.out_trade_no,
        transaction_id: need(t.transaction_id, "transaction_id")?,
        openid: need(t.payer.and_then(|p| p.openid), "payer.openid")?,
        total_fee,
        payer_total: amount.payer_total,
        currency: amount.currency.unwrap_or_else(|| "CNY".to_owned()),
        trade_state: TradeState::from_wire(&t.trade_state),
        paid_at: t.success_time.filter(|s| !s.is_empty()),
        trade_type: t.trade_type,
        bank_type: t.bank_type,
        attach: t.attach.filter(|s| !s.is_empty()),
        notification_id: o.id,
    })
}
/// A v3 transaction as WeChat describes it (query answers and decrypted notifications).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct V3Transaction {
    pub appid: String,
    pub mchid: String,
    pub out_trade_no: String,
    #[serde(default)]
    pub transaction_id: Option<String>,
    #[serde(default)]
    pub trade_type: Option<String>,
    pub trade_state: String,
    #[serde(default)]
    pub trade_state_desc: Option<String>,
    #[serde(default)]
    pub bank_type: Option<String>,
    #[serde(default)]
    pub attach: Option<String>,
    #[serde(default)]
    pub success_time: Option<String>,
    #[serde(default)]
    pub payer: Option<V3Payer>,
    #[serde(default)]
    pub amount: Option<V3Amount>,
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct V3Payer {
    #[serde(default)]
    pub openid: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct V3Amount {
    #[serde(default)]
    pub total: Option<i64>,
    #[serde(default)]
    pub payer_total: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
}
