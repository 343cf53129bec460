//! Payments: the whole life of a shopper's money, in one place.
//!
//! [`Payments`] is the one service that talks to WeChat Pay (through `Arc<dyn PayGateway>`,
//! v2 or v3) about money: the page's pay parameters ([`Payments::pay_order`]), payment
//! notifications ([`Payments::on_notification`]), asking WeChat how an order stands
//! ([`Payments::sync`]), cancelling ([`Payments::cancel`]), expiry and reconciliation
//! ([`Payments::sweep`]), refunds ([`Payments::refund`]) and refund notifications
//! ([`Payments::on_refund_notification`]). The shop's API (`ShopPort`), the notification
//! routes ([`notify`]), the sweeper ([`sweeper`]) and the command line are thin callers.
//!
//! The order state machine is in [`state`]; the append-only log in [`events`]. Errors are
//! typed here ([`PaymentError`]) and become the API's `ApiError` (with its Chinese message)
//! once, at the `ShopPort` boundary.

pub mod events;
mod lifecycle;
pub mod notify;
mod pay;
pub mod reconcile;
pub mod refunds;
pub mod state;
pub mod sweeper;
pub mod trail;

pub use lifecycle::{CloseOutcome, SweepReport, SyncOutcome};
pub use refunds::{RefundLine, RefundOutcome, RefundRecord, RefundRequest};
pub use state::Applied;

use crate::db::Db;
use app::error::{ApiError, ErrorCode};
use std::sync::Arc;
use std::time::Duration;
use wechat::PayGateway;

/// Current time as unix seconds.
pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Why a payment operation did not happen. Turned into the API's error once, in
/// [`From<PaymentError> for ApiError`], which also logs it.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("no such order")]
    OrderNotFound,
    /// The order is not in a state that allows this; the message is for people (Chinese).
    #[error("invalid order state: {0}")]
    InvalidState(&'static str),
    /// The shopper has no WeChat identity (no openid) to pay with.
    #[error("no WeChat identity")]
    NoIdentity,
    /// WeChat could not be asked, or did not answer in a way the shop can trust: nothing changed.
    #[error("WeChat Pay unavailable: {0}")]
    Unavailable(String),
    /// A refund request that cannot be (too large, bad line, no reason …); for people.
    #[error("{0}")]
    BadRefund(String),
}

impl From<PaymentError> for ApiError {
    fn from(e: PaymentError) -> Self {
        match e {
            PaymentError::Db(e) => {
                tracing::error!(error = %e, "database error");
                ApiError::internal()
            }
            PaymentError::OrderNotFound => ApiError::not_found("订单"),
            PaymentError::InvalidState(msg) => ApiError::new(ErrorCode::InvalidState, msg),
            PaymentError::NoIdentity => {
                ApiError::new(ErrorCode::Unauthorized, "请在微信中打开本页并授权后再支付")
            }
            PaymentError::Unavailable(why) => {
                tracing::warn!(why, "WeChat Pay unavailable");
                ApiError::new(
                    ErrorCode::PaymentUnavailable,
                    "微信支付暂时不可用，请稍后再试",
                )
            }
            PaymentError::BadRefund(msg) => ApiError::new(ErrorCode::Validation, msg),
        }
    }
}

pub type Result<T> = std::result::Result<T, PaymentError>;

/// Who the shop is at WeChat Pay and where WeChat reaches it.
#[derive(Clone, Debug)]
pub struct PaymentsConfig {
    pub appid: String,
    pub mchid: String,
    /// Where WeChat posts payment notifications.
    pub notify_url: String,
    /// Where WeChat posts refund notifications (sent with every refund request).
    pub refund_notify_url: String,
    /// How old an unpaid, prepaid order (or a processing refund) must be before the reconciler
    /// asks WeChat about it: notifications normally arrive within seconds.
    pub reconcile_after: Duration,
    /// The gateway is the embedded WeChat sandbox: payments it reports moved no money and are
    /// marked so (`orders.paid_in_sandbox`).
    pub sandbox: bool,
}

/// The payments service. Cheap to clone.
#[derive(Clone)]
pub struct Payments {
    pool: Db,
    gateway: Arc<dyn PayGateway>,
    cfg: Arc<PaymentsConfig>,
    /// Tells the shopper in WeChat when a payment is applied (template message), if configured.
    paid_notice: Option<Arc<crate::mp::OrderTemplate>>,
    /// Redeems the coupon of every order paid (WeChat cards), if WeChat is configured.
    coupons: Option<crate::shop::coupons::Redeemer>,
}

impl Payments {
    pub fn new(pool: Db, gateway: Arc<dyn PayGateway>, cfg: PaymentsConfig) -> Self {
        Self {
            pool,
            gateway,
            cfg: Arc::new(cfg),
            paid_notice: None,
            coupons: None,
        }
    }

    /// Redeems (in the background, and in the sweep) the coupon of every order paid from now on.
    pub fn with_coupons(mut self, redeemer: crate::shop::coupons::Redeemer) -> Self {
        self.coupons = Some(redeemer);
        self
    }

    /// Sends `notice` (in the background) for every payment applied from now on.
    pub fn with_paid_notice(mut self, notice: crate::mp::OrderTemplate) -> Self {
        self.paid_notice = Some(Arc::new(notice));
        self
    }

    pub fn pool(&self) -> &Db {
        &self.pool
    }

    pub fn config(&self) -> &PaymentsConfig {
        &self.cfg
    }

    /// The same service with another reconcile delay (tests use zero).
    pub fn with_reconcile_after(&self, after: Duration) -> Self {
        let mut cfg = (*self.cfg).clone();
        cfg.reconcile_after = after;
        Self {
            pool: self.pool.clone(),
            gateway: self.gateway.clone(),
            cfg: Arc::new(cfg),
            paid_notice: self.paid_notice.clone(),
            coupons: self.coupons.clone(),
        }
    }
}

/// Backoff for an order or refund that could not be handled: 1, 2, 4 … minutes, at most an hour.
pub(crate) fn backoff_secs(retries: i64) -> i64 {
    60i64.saturating_mul(1i64 << retries.clamp(0, 6)).min(3600)
}
