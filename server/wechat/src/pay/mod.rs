//! WeChat Pay (微信支付).
//!
//! * this module — the types shared by v2 and v3: requests, order status, refunds. Amounts are
//!   integer fen (`i64`);
//! * [`notify`] — what payment and refund notifications of both versions are parsed into;
//! * [`bill`] — trade bills (both versions download the same file);
//! * [`v2`] — API v2 (XML, MD5 / HMAC-SHA256), [`v3`] — API v3 (JSON, RSA, AES-256-GCM). Each is built
//!   on the shared modules above and neither uses the other; the shared modules use neither;
//! * [`jsapi`] — the page's `chooseWXPay` parameters, signed by either version;
//! * [`gateway`] — [`PayGateway`](gateway::PayGateway): one interface over v2 and v3.
use std::fmt;

use time::macros::{format_description, offset};
use time::OffsetDateTime;

pub mod bill;
pub mod gateway;
pub mod jsapi;
pub mod notify;
pub mod v2;
pub mod v3;

/// A `prepay_id` (valid 2 hours). Not secret: it ends up in the page as `package=prepay_id=…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct PrepayId(pub String);

impl PrepayId {
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The `package` value for the page: `prepay_id=…`.
    pub fn package(&self) -> String {
        format!("prepay_id={}", self.0)
    }
}

impl fmt::Display for PrepayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The state of a WeChat Pay order (`trade_state`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum TradeState {
    /// `SUCCESS`: paid.
    Success,
    /// `REFUND`: paid, then (partly) refunded.
    Refund,
    /// `NOTPAY`: not paid yet.
    NotPay,
    /// `CLOSED`: closed.
    Closed,
    /// `REVOKED`: revoked (micropay).
    Revoked,
    /// `USERPAYING`: the user is entering the password.
    UserPaying,
    /// `PAYERROR`: payment failed.
    PayError,
    /// Anything else WeChat may add.
    Other(String),
}

impl TradeState {
    /// From WeChat's wire value.
    pub fn from_wire(s: &str) -> Self {
        match s {
            "SUCCESS" => Self::Success,
            "REFUND" => Self::Refund,
            "NOTPAY" => Self::NotPay,
            "CLOSED" => Self::Closed,
            "REVOKED" => Self::Revoked,
            "USERPAYING" => Self::UserPaying,
            "PAYERROR" => Self::PayError,
            other => Self::Other(other.chars().take(40).collect()),
        }
    }

    /// WeChat's wire value.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Success => "SUCCESS",
            Self::Refund => "REFUND",
            Self::NotPay => "NOTPAY",
            Self::Closed => "CLOSED",
            Self::Revoked => "REVOKED",
            Self::UserPaying => "USERPAYING",
            Self::PayError => "PAYERROR",
            Self::Other(s) => s,
        }
    }

    /// Money was received for the order (`SUCCESS`, or `REFUND` — paid first, refunded later).
    pub fn is_paid(&self) -> bool {
        matches!(self, Self::Success | Self::Refund)
    }
}

/// What the shop asks for when the user clicks "pay" (JSAPI, inside WeChat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepayRequest {
    /// Goods description (`body` in v2, `description` in v3), 1–127 characters.
    pub description: String,
    /// The shop's order number, 6–32 of `[0-9A-Za-z_-|*@]`, unique per merchant.
    pub out_trade_no: String,
    /// Amount in fen, > 0.
    pub total_fee: i64,
    /// The payer's openid under the configured appid (from the server's own OAuth callback only).
    pub openid: String,
    /// Where WeChat POSTs the payment notification (public `https` URL, no query string).
    pub notify_url: String,
    /// The user's IP (`spbill_create_ip`, required by v2; sent as `scene_info` by v3 when set).
    pub client_ip: String,
    /// When the order stops being payable (sent in Beijing time).
    pub time_expire: Option<OffsetDateTime>,
    /// Opaque data echoed back in the notification.
    pub attach: Option<String>,
}

impl PrepayRequest {
    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        let n = self.description.chars().count();
        if n == 0 || n > 127 {
            return Err("description must be 1-127 characters");
        }
        validate_out_no(&self.out_trade_no, "out_trade_no")?;
        if self.total_fee <= 0 {
            return Err("total_fee must be a positive number of fen");
        }
        if self.openid.is_empty() || self.openid.len() > 128 {
            return Err("openid is required");
        }
        if !(self.notify_url.starts_with("https://") || self.notify_url.starts_with("http://")) {
            return Err("notify_url must be an absolute http(s) URL");
        }
        Ok(())
    }
}

/// The state of an order as WeChat reports it (query answers).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrderStatus {
    /// Appid the order belongs to (checked against the configured one).
    pub appid: String,
    /// Merchant id (checked against the configured one).
    pub mchid: String,
    /// The shop's order number.
    pub out_trade_no: String,
    /// WeChat's transaction id, once paid.
    pub transaction_id: Option<String>,
    /// State.
    pub trade_state: TradeState,
    /// WeChat's description of the state.
    pub trade_state_desc: Option<String>,
    /// Order total in fen (present once paid; compare with the order's amount).
    pub total_fee: Option<i64>,
    /// The payer's openid, once paid.
    pub openid: Option<String>,
    /// Payment time, RFC 3339 with `+08:00`.
    pub paid_at: Option<String>,
}

/// A refund request. Amounts in fen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// The original order.
    pub out_trade_no: String,
    /// The shop's refund number (idempotency key: retry with the same one).
    pub out_refund_no: String,
    /// The original order's total.
    pub total_fee: i64,
    /// Amount to refund, 0 < refund_fee ≤ total_fee.
    pub refund_fee: i64,
    /// Reason shown to the user.
    pub reason: Option<String>,
    /// Where the refund result is notified.
    pub notify_url: Option<String>,
}

impl RefundRequest {
    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        validate_out_no(&self.out_trade_no, "out_trade_no")?;
        validate_out_no(&self.out_refund_no, "out_refund_no")?;
        if self.total_fee <= 0 || self.refund_fee <= 0 || self.refund_fee > self.total_fee {
            return Err("refund_fee must be positive and at most total_fee");
        }
        Ok(())
    }
}

/// The state of a refund.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum RefundStatus {
    /// Refunded.
    Success,
    /// Accepted, in progress (v2 always answers this: the result comes later).
    Processing,
    /// Closed.
    Closed,
    /// Abnormal (e.g. the user's card was cancelled): handle manually.
    Abnormal,
    /// Something else.
    Other(String),
}

impl RefundStatus {
    /// From WeChat's wire value, either version: v3 `SUCCESS|PROCESSING|CLOSED|ABNORMAL`, v2
    /// `SUCCESS|PROCESSING|REFUNDCLOSE|CHANGE` (`CHANGE`: the refund could not be paid out, e.g. the
    /// user's card was cancelled — the same as v3 `ABNORMAL`).
    pub(crate) fn from_wire(s: &str) -> Self {
        match s {
            "SUCCESS" => Self::Success,
            "PROCESSING" => Self::Processing,
            "CLOSED" | "REFUNDCLOSE" => Self::Closed,
            "ABNORMAL" | "CHANGE" => Self::Abnormal,
            other => Self::Other(other.chars().take(40).collect()),
        }
    }

    /// The v3 wire value (`SUCCESS`, `PROCESSING`, `CLOSED`, `ABNORMAL`).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Success => "SUCCESS",
            Self::Processing => "PROCESSING",
            Self::Closed => "CLOSED",
            Self::Abnormal => "ABNORMAL",
            Self::Other(s) => s,
        }
    }

    /// The refund reached a final state (`Success`, `Closed` or `Abnormal`): no notification or
    /// query will change it any more without the merchant acting.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Success | Self::Closed | Self::Abnormal)
    }
}

/// A verified refund notification (v2 decrypted `req_info`, v3 `REFUND.*` event). Amounts in fen.
///
/// What is already checked: v2 — `return_code`, appid and mch_id ours, `req_info` decrypts with the
/// key derived from the API key (that is its authentication: it carries no `sign`); v3 — the
/// `Wechatpay-*` signature over the raw body, the timestamp window, the resource decrypts with the
/// APIv3 key, `event_type` agrees with `refund_status`, mchid ours. What the shop must still check:
/// that the refund is one it asked for and the amounts are the ones it recorded; and it must update
/// idempotently (notifications repeat and race).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RefundNotice {
    /// Which API delivered it.
    pub api: notify::ApiVersion,
    /// The shop's order number.
    pub out_trade_no: String,
    /// WeChat's transaction id of the order, when given.
    pub transaction_id: Option<String>,
    /// The shop's refund number.
    pub out_refund_no: String,
    /// WeChat's refund id.
    pub refund_id: String,
    /// `Success`, `Closed` or `Abnormal` (a notice never reports `Processing`).
    pub status: RefundStatus,
    /// The order total in fen.
    pub total_fee: i64,
    /// This refund's amount in fen.
    pub refund_fee: i64,
    /// When the refund succeeded, RFC 3339 with `+08:00` (v2's `2017-12-15 09:46:01` is converted).
    pub success_time: Option<String>,
    /// The v3 notification id (`None` for v2).
    pub notification_id: Option<String>,
}

impl RefundNotice {
    /// The refund succeeded (money on its way back to the payer).
    pub fn is_success(&self) -> bool {
        self.status == RefundStatus::Success
    }
}

/// WeChat's answer to a refund request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RefundResult {
    /// The shop's refund number.
    pub out_refund_no: String,
    /// WeChat's refund id.
    pub refund_id: String,
    /// Status.
    pub status: RefundStatus,
    /// Refunded amount in fen.
    pub refund_fee: i64,
}

/// `out_trade_no` / `out_refund_no`: 6–32 characters of `[0-9A-Za-z_-|*@]`.
pub(crate) fn validate_out_no(s: &str, _what: &'static str) -> Result<(), &'static str> {
    if s.len() < 6 || s.len() > 32 {
        return Err("order/refund numbers must be 6-32 characters");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*' | b'@'))
    {
        return Err("order/refund numbers may only contain 0-9 A-Z a-z _ - | * @");
    }
    Ok(())
}

/// `yyyyMMddHHmmss` in Beijing time (v2 `time_expire`).
pub(crate) fn beijing_compact(t: OffsetDateTime) -> String {
    t.to_offset(offset!(+8))
        .format(format_description!(
            "[year][month][day][hour][minute][second]"
        ))
        .unwrap_or_default()
}

/// RFC 3339 in Beijing time, whole seconds (v3 `time_expire`).
pub(crate) fn beijing_rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(offset!(+8))
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]+08:00"
        ))
        .unwrap_or_default()
}

/// v2 `time_end` (`20141030133525`, Beijing time) → `2014-10-30T13:35:25+08:00`.
pub(crate) fn v2_time_to_rfc3339(s: &str) -> Option<String> {
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!(
        "{}-{}-{}T{}:{}:{}+08:00",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[8..10],
        &s[10..12],
        &s[12..14]
    ))
}

/// v2 refund `success_time` (`2017-12-15 09:46:01`, Beijing time) → `2017-12-15T09:46:01+08:00`.
pub(crate) fn v2_refund_time_to_rfc3339(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
        || !(digits(0..4) && digits(5..7) && digits(8..10))
        || !(digits(11..13) && digits(14..16) && digits(17..19))
    {
        return None;
    }
    Some(format!("{}T{}+08:00", &s[0..10], &s[11..19]))
}

/// Parses a fen amount (`"1990"`); refuses signs, decimals, blanks and overflow.
pub(crate) fn parse_fen(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 15 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let t = OffsetDateTime::from_unix_timestamp(1_414_643_725).expect("ts"); // 2014-10-30 04:35:25 UTC
        assert_eq!(beijing_compact(t), "20141030123525");
        assert_eq!(beijing_rfc3339(t), "2014-10-30T12:35:25+08:00");
        assert_eq!(
            v2_time_to_rfc3339("20141030133525").as_deref(),
            Some("2014-10-30T13:35:25+08:00")
        );
        assert_eq!(v2_time_to_rfc3339("2014103013352"), None);
        assert_eq!(v2_time_to_rfc3339("2014103013352x"), None);
        assert_eq!(
            v2_refund_time_to_rfc3339("2017-12-15 09:46:01").as_deref(),
            Some("2017-12-15T09:46:01+08:00")
        );
        for bad in [
            "2017-12-15T09:46:01",
            "2017-12-15 09:46:0",
            "2017/12/15 09:46:01",
            "",
        ] {
            assert_eq!(v2_refund_time_to_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn refund_status_both_versions() {
        assert_eq!(RefundStatus::from_wire("SUCCESS"), RefundStatus::Success);
        assert_eq!(RefundStatus::from_wire("REFUNDCLOSE"), RefundStatus::Closed);
        assert_eq!(RefundStatus::from_wire("CLOSED"), RefundStatus::Closed);
        assert_eq!(RefundStatus::from_wire("CHANGE"), RefundStatus::Abnormal);
        assert_eq!(RefundStatus::from_wire("ABNORMAL"), RefundStatus::Abnormal);
        assert_eq!(
            RefundStatus::from_wire("PROCESSING"),
            RefundStatus::Processing
        );
        assert!(!RefundStatus::Processing.is_final());
        assert_eq!(RefundStatus::from_wire("X").as_str(), "X");
    }

    #[test]
    fn fen() {
        assert_eq!(parse_fen("1990"), Some(1990));
        for bad in ["", "-1", "+1", "19.90", " 1", "1e3", "9999999999999999999"] {
            assert_eq!(parse_fen(bad), None, "{bad}");
        }
    }

    #[test]
    fn out_no_rules() {
        assert!(validate_out_no("20240101abc_-|*@", "x").is_ok());
        for bad in ["12345", "a".repeat(33).as_str(), "order 123", "订单123456"] {
            assert!(validate_out_no(bad, "x").is_err(), "{bad}");
        }
    }
}

/// A WeChat Pay business error code, typed across v2 (`err_code`, e.g. `ORDERNOTEXIST`) and v3
/// (`code`, e.g. `ORDER_NOT_EXIST`): both spellings map to the same variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[non_exhaustive]
pub enum PayErrCode {
    /// `ORDERPAID` / `ORDER_PAID`: already paid — treat as success, do not pay again.
    OrderPaid,
    /// `ORDERCLOSED` / `ORDER_CLOSED`: the order was closed; use a new out_trade_no.
    OrderClosed,
    /// `ORDERNOTEXIST` / `ORDER_NOT_EXIST` / `RESOURCE_NOT_EXISTS` (v3's code for an unknown refund
    /// too) / `REFUNDNOTEXIST` (v2 refund query): what was asked about does not exist.
    OrderNotExist,
    /// `OUT_TRADE_NO_USED`: the number was used with different parameters.
    OutTradeNoUsed,
    /// `SYSTEMERROR` / `SYSTEM_ERROR` / `BIZERR_NEED_RETRY`: retry with the same parameters.
    SystemError,
    /// `NOTENOUGH` / `NOT_ENOUGH`: insufficient balance (refunds).
    NotEnough,
    /// `SIGNERROR` / `SIGN_ERROR`: WeChat refused our signature (wrong key?).
    SignError,
    /// `APPID_MCHID_NOT_MATCH` / `APPID_NOT_EXIST` / `MCHID_NOT_EXIST` / `MCH_NOT_EXISTS`.
    AccountMismatch,
    /// `PARAM_ERROR` / `LACK_PARAMS` / `INVALID_REQUEST` / `XML_FORMAT_ERROR`…
    InvalidRequest,
    /// `FREQUENCY_LIMITED` / `FREQ_LIMIT`: slow down.
    FrequencyLimited,
    /// `NOAUTH` / `NO_AUTH`: the merchant lacks the permission.
    NoAuth,
    /// `USER_ACCOUNT_ABNORMAL`: refund to a cancelled account; handle manually.
    UserAccountAbnormal,
    /// Anything else (WeChat's code kept).
    Other(String),
}

impl PayErrCode {
    /// Types a v2 `err_code` or a v3 `code`.
    pub fn from_wire(s: &str) -> Self {
        match s {
            "ORDERPAID" | "ORDER_PAID" => Self::OrderPaid,
            "ORDERCLOSED" | "ORDER_CLOSED" => Self::OrderClosed,
            "ORDERNOTEXIST" | "ORDER_NOT_EXIST" | "RESOURCE_NOT_EXISTS" | "REFUNDNOTEXIST" => {
                Self::OrderNotExist
            }
            "OUT_TRADE_NO_USED" => Self::OutTradeNoUsed,
            "SYSTEMERROR" | "SYSTEM_ERROR" | "BIZERR_NEED_RETRY" => Self::SystemError,
            "NOTENOUGH" | "NOT_ENOUGH" => Self::NotEnough,
            "SIGNERROR" | "SIGN_ERROR" => Self::SignError,
            "APPID_MCHID_NOT_MATCH" | "APPID_NOT_EXIST" | "MCHID_NOT_EXIST" | "MCH_NOT_EXISTS" => {
                Self::AccountMismatch
            }
            "PARAM_ERROR"
            | "LACK_PARAMS"
            | "INVALID_REQUEST"
            | "XML_FORMAT_ERROR"
            | "REQUIRE_POST_METHOD"
            | "POST_DATA_EMPTY"
            | "NOT_UTF8"
            | "INVALID_TRANSACTIONID" => Self::InvalidRequest,
            "FREQUENCY_LIMITED" | "FREQ_LIMIT" => Self::FrequencyLimited,
            "NOAUTH" | "NO_AUTH" => Self::NoAuth,
            "USER_ACCOUNT_ABNORMAL" => Self::UserAccountAbnormal,
            other => Self::Other(other.chars().take(64).collect()),
        }
    }

    /// Worth retrying with the same parameters.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::SystemError | Self::FrequencyLimited)
    }
}

#[cfg(test)]
mod err_code_tests {
    use super::PayErrCode;

    #[test]
    fn both_spellings() {
        assert_eq!(
            PayErrCode::from_wire("ORDERNOTEXIST"),
            PayErrCode::OrderNotExist
        );
        assert_eq!(
            PayErrCode::from_wire("ORDER_NOT_EXIST"),
            PayErrCode::OrderNotExist
        );
        assert_eq!(
            PayErrCode::from_wire("SYSTEMERROR"),
            PayErrCode::SystemError
        );
        assert!(PayErrCode::from_wire("SYSTEM_ERROR").is_retryable());
        assert_eq!(
            PayErrCode::from_wire("NEW_CODE"),
            PayErrCode::Other("NEW_CODE".into())
        );
    }
}
