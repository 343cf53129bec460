//! The append-only payment log (`payment_events`): what the shop asked WeChat, what WeChat
//! told it, and what came of it. Kinds and outcomes are enums stored as stable strings
//! (`wxmall payments` and people's queries read them).

use super::now;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A payment notification on `/wechat/notify/v2` or `/v3`.
    NotifyV2,
    NotifyV3,
    /// The shop asked WeChat how an order stands (order_status, cancel, expiry, reconciler).
    Query,
    /// A prepay (unified order) was made.
    Prepay,
    /// The order was closed at WeChat.
    Close,
    /// A refund was requested, or its answer came back.
    Refund,
    /// A refund notification on `/wechat/notify/refund/v2` or `/v3`.
    RefundNotifyV2,
    RefundNotifyV3,
    /// The shop asked WeChat how a refund stands.
    RefundQuery,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotifyV2 => "notify_v2",
            Self::NotifyV3 => "notify_v3",
            Self::Query => "query",
            Self::Prepay => "prepay",
            Self::Close => "close",
            Self::Refund => "refund",
            Self::RefundNotifyV2 => "refund_notify_v2",
            Self::RefundNotifyV3 => "refund_notify_v3",
            Self::RefundQuery => "refund_query",
        }
    }
}

/// What came of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It changed the order (paid, refunded …).
    Accepted,
    /// WeChat repeated itself; nothing changed.
    Duplicate,
    /// Refused: it did not verify or did not match the order.
    Refused,
    /// Noted; nothing changed.
    Info,
    /// Money is where it should not be (paid after close, a refund WeChat could not make…):
    /// the shop did what it could, and a person should look.
    NeedsAttention,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Refused => "refused",
            Self::Info => "info",
            Self::NeedsAttention => "needs_attention",
        }
    }
}

/// Appends one event. `detail` must never hold a secret; it is cut to 500 characters.
pub async fn record<'a>(
    db: impl Into<crate::db::Exec<'a>>,
    order_id: Option<i64>,
    kind: EventKind,
    outcome: Outcome,
    detail: &str,
) -> Result<(), sqlx::Error> {
    let detail: String = detail.chars().take(500).collect();
    let db: crate::db::Exec<'_> = db.into();
    crate::sql!(db, e => sqlx::query(
        "INSERT INTO payment_events (order_id, kind, outcome, detail, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(order_id)
    .bind(kind.as_str())
    .bind(outcome.as_str())
    .bind(detail)
    .bind(now())
    .execute(e).await.map(crate::db::Done::from))?;
    Ok(())
}
