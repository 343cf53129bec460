//! v2 notifications: payments (XML, `sign` with the API key) and refunds (XML without `sign`, the
//! refund in `req_info` encrypted with AES-256-ECB under a key derived from the API key).
//!
//! Payment, order of checks: size → XML (no DOCTYPE/entities) → `return_code` → `sign` present and
//! valid → `result_code` → appid/mch_id ours → required fields. The signature is checked before any
//! field is believed.
//!
//! Refund ([`parse_refund`]), order of checks: size → XML → `return_code` → appid/mch_id ours →
//! `req_info` decrypts (base64, whole blocks, PKCS#7 padding, a flat `<root>` document; any failure
//! is [`NotifyError::Decrypt`]) → required fields. Decryption is the authentication: only WeChat and
//! the merchant know the API key.
use std::collections::BTreeMap;

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecrypt, KeyInit};
use base64::Engine as _;
use md5::{Digest as _, Md5};
use zeroize::Zeroize;

use crate::pay::notify::{ApiVersion, NotifyAnswer, NotifyError, PaymentNotice, MAX_NOTIFY_BYTES};
use crate::pay::{
    parse_fen, v2_refund_time_to_rfc3339, v2_time_to_rfc3339, RefundNotice, RefundStatus,
    TradeState,
};
use crate::xml::{cdata, parse_flat, parse_flat_root};

use super::sign::{self, SignType};
use super::PayV2Config;

/// The exact success answer.
pub const SUCCESS_XML: &str =
    "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>";

/// Success answer (HTTP 200, XML).
pub fn success() -> NotifyAnswer {
    NotifyAnswer {
        status: 200,
        content_type: "text/xml; charset=utf-8",
        body: SUCCESS_XML.to_owned(),
    }
}

/// Failure answer: `return_code FAIL` (WeChat retries later).
pub fn failure(message: &str) -> NotifyAnswer {
    let msg: String = message.chars().take(128).collect();
    NotifyAnswer {
        status: 200,
        content_type: "text/xml; charset=utf-8",
        body: format!(
            "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg>{}</return_msg></xml>",
            cdata(&msg)
        ),
    }
}

fn field<'a>(m: &'a BTreeMap<String, String>, k: &'static str) -> Result<&'a str, NotifyError> {
    match m.get(k).map(String::as_str) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(NotifyError::Malformed(format!("missing field {k}"))),
    }
}

fn opt(m: &BTreeMap<String, String>, k: &str) -> Option<String> {
    m.get(k).filter(|v| !v.is_empty()).cloned()
}

/// Parses and verifies a v2 payment notification.
pub fn parse(body: &[u8], cfg: &PayV2Config) -> Result<PaymentNotice, NotifyError> {
    if body.len() > MAX_NOTIFY_BYTES {
        return Err(NotifyError::TooLarge {
            size: body.len(),
            limit: MAX_NOTIFY_BYTES,
        });
    }
    let m = parse_flat(body, MAX_NOTIFY_BYTES)?;
    let return_code = m.get("return_code").map(String::as_str).unwrap_or("");
    if return_code != "SUCCESS" {
        let msg = m.get("return_msg").cloned().unwrap_or_default();
        return Err(NotifyError::ReturnFail(msg.chars().take(128).collect()));
    }
    if m.get("sign").is_none_or(|s| s.is_empty()) {
        return Err(NotifyError::MissingSignature);
    }
    // WeChat signs with the sign_type the order used; both types need the API key, so honouring the
    // field is no downgrade. Unknown values are refused.
    let sign_type = match m.get("sign_type").filter(|s| !s.is_empty()) {
        Some(s) => s
            .parse::<SignType>()
            .map_err(|_| NotifyError::Malformed("unknown sign_type".into()))?,
        None => cfg.sign_type,
    };
    let pairs = m.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    if !sign::v2_verify(pairs, cfg.key.expose_str(), sign_type) {
        return Err(NotifyError::BadSignature);
    }
    if m.get("result_code").map(String::as_str) != Some("SUCCESS") {
        return Err(NotifyError::PaymentFailed {
            err_code: m.get("err_code").cloned().unwrap_or_default(),
            err_code_des: m.get("err_code_des").cloned().unwrap_or_default(),
        });
    }
    let appid = field(&m, "appid")?;
    if appid != cfg.appid {
        return Err(NotifyError::AppIdMismatch(appid.chars().take(64).collect()));
    }
    let mchid = field(&m, "mch_id")?;
    if mchid != cfg.mchid {
        return Err(NotifyError::MchIdMismatch(mchid.chars().take(64).collect()));
    }
    let total_fee = parse_fen(field(&m, "total_fee")?)
        .ok_or_else(|| NotifyError::Malformed("total_fee is not an integer amount".into()))?;
    let payer_total =
        match m.get("cash_fee").filter(|s| !s.is_empty()) {
            Some(s) => Some(parse_fen(s).ok_or_else(|| {
                NotifyError::Malformed("cash_fee is not an integer amount".into())
            })?),
            None => None,
        };
    Ok(PaymentNotice {
        api: ApiVersion::V2,
        appid: appid.to_owned(),
        mchid: mchid.to_owned(),
        out_trade_no: field(&m, "out_trade_no")?.to_owned(),
        transaction_id: field(&m, "transaction_id")?.to_owned(),
        openid: field(&m, "openid")?.to_owned(),
        total_fee,
        payer_total,
        currency: opt(&m, "fee_type").unwrap_or_else(|| "CNY".to_owned()),
        trade_state: TradeState::Success,
        paid_at: m.get("time_end").and_then(|t| v2_time_to_rfc3339(t)),
        trade_type: opt(&m, "trade_type"),
        bank_type: opt(&m, "bank_type"),
        attach: opt(&m, "attach"),
        notification_id: None,
    })
}

/// Decrypts a refund notification's `req_info`: base64 → AES-256-ECB with the 32 ASCII bytes of the
/// lowercase hex MD5 of the API key → PKCS#7 unpadding. Any failure is [`NotifyError::Decrypt`].
fn decrypt_req_info(req_info: &str, api_key: &str) -> Result<Vec<u8>, NotifyError> {
    let mut data = base64::engine::general_purpose::STANDARD
        .decode(req_info.trim())
        .map_err(|_| NotifyError::Decrypt)?;
    if data.is_empty() || data.len() % 16 != 0 {
        return Err(NotifyError::Decrypt);
    }
    let mut key = hex::encode(Md5::digest(api_key.as_bytes())).into_bytes();
    let cipher = aes::Aes256::new(GenericArray::from_slice(&key));
    key.zeroize();
    // ECB: every 16-byte block on its own.
    for block in data.chunks_exact_mut(16) {
        cipher.decrypt_block(GenericArray::from_mut_slice(block));
    }
    let pad = usize::from(*data.last().unwrap_or(&0));
    if pad == 0
        || pad > 16
        || !data[data.len() - pad..]
            .iter()
            .all(|&b| usize::from(b) == pad)
    {
        data.zeroize();
        return Err(NotifyError::Decrypt);
    }
    data.truncate(data.len() - pad);
    Ok(data)
}

/// Parses a v2 refund notification (`<xml><return_code/><appid/><mch_id/><nonce_str/><req_info/></xml>`,
/// no `sign`; see the [module docs](self) for the order of checks).
pub fn parse_refund(body: &[u8], cfg: &PayV2Config) -> Result<RefundNotice, NotifyError> {
    if body.len() > MAX_NOTIFY_BYTES {
        return Err(NotifyError::TooLarge {
            size: body.len(),
            limit: MAX_NOTIFY_BYTES,
        });
    }
    let m = parse_flat(body, MAX_NOTIFY_BYTES)?;
    let return_code = m.get("return_code").map(String::as_str).unwrap_or("");
    if return_code != "SUCCESS" {
        let msg = m.get("return_msg").cloned().unwrap_or_default();
        return Err(NotifyError::ReturnFail(msg.chars().take(128).collect()));
    }
    let appid = field(&m, "appid")?;
    if appid != cfg.appid {
        return Err(NotifyError::AppIdMismatch(appid.chars().take(64).collect()));
    }
    let mchid = field(&m, "mch_id")?;
    if mchid != cfg.mchid {
        return Err(NotifyError::MchIdMismatch(mchid.chars().take(64).collect()));
    }
    let plain = decrypt_req_info(field(&m, "req_info")?, cfg.key.expose_str())?;
    // Garbage out of a tampered ciphertext is a decryption failure, not a malformed document.
    let r = parse_flat_root(&plain, MAX_NOTIFY_BYTES, "root").map_err(|_| NotifyError::Decrypt)?;
    let fen = |k: &'static str| -> Result<i64, NotifyError> {
        parse_fen(field(&r, k)?)
            .ok_or_else(|| NotifyError::Malformed(format!("{k} is not an integer amount")))
    };
    let status = match field(&r, "refund_status")? {
        "SUCCESS" => RefundStatus::Success,
        "REFUNDCLOSE" => RefundStatus::Closed,
        "CHANGE" => RefundStatus::Abnormal,
        other => {
            return Err(NotifyError::Malformed(format!(
                "unexpected refund_status {}",
                other.chars().take(32).collect::<String>()
            )))
        }
    };
    let total_fee = fen("total_fee")?;
    let refund_fee = fen("refund_fee")?;
    if refund_fee > total_fee {
        return Err(NotifyError::Malformed(
            "refund_fee exceeds total_fee".into(),
        ));
    }
    Ok(RefundNotice {
        api: ApiVersion::V2,
        out_trade_no: field(&r, "out_trade_no")?.to_owned(),
        transaction_id: opt(&r, "transaction_id"),
        out_refund_no: field(&r, "out_refund_no")?.to_owned(),
        refund_id: field(&r, "refund_id")?.to_owned(),
        status,
        total_fee,
        refund_fee,
        success_time: r
            .get("success_time")
            .and_then(|t| v2_refund_time_to_rfc3339(t)),
        notification_id: None,
    })
}
