//! Payment notifications (WeChat → shop): what both versions share. Each version parses its own
//! ([`crate::pay::v2::notify`], [`crate::pay::v3::notify`]) into one [`PaymentNotice`], refund
//! notifications into one [`crate::RefundNotice`], and gives the exact answers WeChat expects (the
//! same for both kinds).
//!
//! Each refusal has its own [`NotifyError`] variant so the shop can log precisely why. What is checked
//! here: size, XML/JSON shape, signature (v2 `sign`; v3 `Wechatpay-*` headers over the raw body, key by
//! serial, 5-minute window), decryption (v3), event type, and that appid and mchid are ours. What the
//! shop must still check: that [`PaymentNotice::total_fee`] equals the order's amount, and that the
//! order update is idempotent (`… WHERE status = 'unpaid'`): notifications repeat and race.
use crate::pay::TradeState;
use crate::xml::XmlError;

/// Largest notification body accepted (checked before parsing).
pub const MAX_NOTIFY_BYTES: usize = 64 * 1024;

/// Which API version delivered a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum ApiVersion {
    /// XML, MD5/HMAC-SHA256.
    V2,
    /// JSON, RSA + AES-256-GCM.
    V3,
}

/// A verified payment notification. Amounts are fen.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PaymentNotice {
    /// Which API delivered it.
    pub api: ApiVersion,
    /// Appid (already checked to be ours).
    pub appid: String,
    /// Merchant id (already checked to be ours).
    pub mchid: String,
    /// The shop's order number.
    pub out_trade_no: String,
    /// WeChat's transaction id (store it: it makes repeated notifications recognisable).
    pub transaction_id: String,
    /// The payer's openid.
    pub openid: String,
    /// Order total in fen (`total_fee` / `amount.total`). **Compare with the order's amount.**
    pub total_fee: i64,
    /// What the payer actually paid after coupons (`cash_fee` / `amount.payer_total`), if given.
    pub payer_total: Option<i64>,
    /// Currency, `CNY`.
    pub currency: String,
    /// State (`Success` for a payment).
    pub trade_state: TradeState,
    /// Payment time, RFC 3339 with `+08:00` (v2 `time_end` is converted).
    pub paid_at: Option<String>,
    /// `JSAPI`, …
    pub trade_type: Option<String>,
    /// Payer's bank.
    pub bank_type: Option<String>,
    /// The `attach` sent with the order.
    pub attach: Option<String>,
    /// v3 notification id.
    pub notification_id: Option<String>,
}

impl PaymentNotice {
    /// The notice reports a successful payment.
    pub fn is_success(&self) -> bool {
        self.trade_state == TradeState::Success
    }

    /// The notice's total equals the order's amount (fen).
    pub fn amount_matches(&self, expected_fen: i64) -> bool {
        self.total_fee == expected_fen
    }
}

/// Why a notification was refused. Answer WeChat with
/// [`crate::pay::v2::notify::failure`] / [`crate::pay::v3::notify::failure`] (it retries).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// Body larger than the cap (checked before parsing).
    #[error("notification body of {size} bytes exceeds {limit}")]
    TooLarge {
        /// Body size.
        size: usize,
        /// Cap.
        limit: usize,
    },
    /// XML with a DOCTYPE (XXE attempt).
    #[error("DOCTYPE refused")]
    DoctypeRefused,
    /// XML with an undeclared/external entity reference.
    #[error("entity reference refused")]
    EntityRefused,
    /// Not parseable, or missing/invalid fields.
    #[error("malformed notification: {0}")]
    Malformed(String),
    /// v2 without `sign`.
    #[error("missing signature")]
    MissingSignature,
    /// The signature does not verify (tampered, forged, or WeChat's own "签名探测" probe).
    #[error("bad signature")]
    BadSignature,
    /// v3: a `Wechatpay-*` header is missing.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// v3: a header is unusable.
    #[error("invalid header {0}")]
    BadHeader(&'static str),
    /// v3: no key with this serial.
    #[error("unknown serial {0}")]
    UnknownSerial(String),
    /// v3: the certificate with this serial is expired.
    #[error("expired platform certificate {0}")]
    ExpiredCertificate(String),
    /// v3: timestamp more than 5 minutes off.
    #[error("stale timestamp ({skew_secs}s)")]
    StaleTimestamp {
        /// Difference in seconds.
        skew_secs: i64,
    },
    /// v3: the resource does not decrypt with the APIv3 key; v2 refund: `req_info` does not decrypt
    /// with the key derived from the API key (or decrypts to garbage).
    #[error("resource decryption failed")]
    Decrypt,
    /// v3: `resource.algorithm` is not `AEAD_AES_256_GCM`.
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// v3: not an event of the expected kind (`TRANSACTION.SUCCESS` for a payment, `REFUND.*` for a
    /// refund).
    #[error("unexpected event type {0}")]
    UnexpectedEvent(String),
    /// The notice is for another appid.
    #[error("notification for another appid {0}")]
    AppIdMismatch(String),
    /// The notice is for another merchant.
    #[error("notification for another mchid {0}")]
    MchIdMismatch(String),
    /// v2 `return_code` is not SUCCESS (communication failure report).
    #[error("return_code FAIL: {0}")]
    ReturnFail(String),
    /// v2 `result_code` FAIL: an authentic report of a failed payment. Nothing to record; answering
    /// success is fine.
    #[error("payment failed: {err_code} {err_code_des}")]
    PaymentFailed {
        /// WeChat's err_code.
        err_code: String,
        /// Its description.
        err_code_des: String,
    },
}

impl From<XmlError> for NotifyError {
    fn from(e: XmlError) -> Self {
        match e {
            XmlError::TooLarge { size, limit } => Self::TooLarge { size, limit },
            XmlError::DoctypeRefused => Self::DoctypeRefused,
            XmlError::EntityRefused => Self::EntityRefused,
            other => Self::Malformed(other.to_string()),
        }
    }
}

/// An HTTP answer to give WeChat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyAnswer {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
}
