//! v3 notifications: JSON envelope signed in the `Wechatpay-*` headers, transaction encrypted with
//! AES-256-GCM under the APIv3 key.
//!
//! Order of checks: size → headers present → timestamp window → key by serial → signature over the raw
//! body → envelope JSON → `event_type` → algorithm → decryption (with `associated_data`) → appid/mchid
//! ours → fields. Nothing in the body is read before the signature verifies.
use http::HeaderMap;

use crate::certs::{decrypt_resource, ApiV3Key, Verifier};
use crate::notify::{ApiVersion, NotifyAnswer, NotifyError, PaymentNotice, MAX_NOTIFY_BYTES};
use crate::pay::TradeState;
use crate::pay_v3::V3Transaction;

/// The event type of a successful payment.
pub const TRANSACTION_SUCCESS: &str = "TRANSACTION.SUCCESS";

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
    let msg: String = message.chars().take(128).collect();
    NotifyAnswer {
        status: 500,
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

/// Verifies, decrypts and checks a v3 payment notification.
pub async fn parse(
    headers: &HeaderMap,
    body: &[u8],
    verifier: &Verifier,
    cfg: &V3NotifyConfig,
) -> Result<PaymentNotice, NotifyError> {
    check_size(body)?;
    verifier.verify(headers, body).await?;
    decode_verified(body, cfg)
}

/// Like [`parse`] but never downloads certificates (synchronous; keys already held).
pub fn parse_cached(
    headers: &HeaderMap,
    body: &[u8],
    verifier: &Verifier,
    cfg: &V3NotifyConfig,
) -> Result<PaymentNotice, NotifyError> {
    check_size(body)?;
    verifier.verify_cached(headers, body)?;
    decode_verified(body, cfg)
}

/// The post-verification decoder, exposed only to the fuzz targets (feature `__fuzz`).
#[cfg(feature = "__fuzz")]
#[doc(hidden)]
pub fn decode_verified_for_fuzzing(
    body: &[u8],
    cfg: &V3NotifyConfig,
) -> Result<PaymentNotice, NotifyError> {
    decode_verified(body, cfg)
}

/// Decodes a body whose signature has been verified.
fn decode_verified(body: &[u8], cfg: &V3NotifyConfig) -> Result<PaymentNotice, NotifyError> {
    let env: Envelope = serde_json::from_slice(body).map_err(|e| malformed(&e))?;
    if env.event_type != TRANSACTION_SUCCESS {
        return Err(NotifyError::UnexpectedEvent(
            env.event_type.chars().take(64).collect(),
        ));
    }
    let r = env.resource;
    if r.algorithm != "AEAD_AES_256_GCM" {
        return Err(NotifyError::UnsupportedAlgorithm(
            r.algorithm.chars().take(64).collect(),
        ));
    }
    let plain = decrypt_resource(&cfg.apiv3_key, &r.nonce, &r.associated_data, &r.ciphertext)
        .map_err(|_| NotifyError::Decrypt)?;
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
        notification_id: env.id,
    })
}
