//! One order's payment history, for people answering "I paid, why is it unpaid?" and "where
//! is my refund?" (`wxmall payments ORDER`).

use super::refunds::{refunds_of, RefundRecord};
use crate::db::Db;

#[derive(Clone, Debug, serde::Serialize, sqlx::FromRow)]
pub struct PaymentTrail {
    pub order_id: i64,
    pub order_no: String,
    pub status: String,
    pub total_fee: i64,
    pub refunded_fen: i64,
    pub transaction_id: Option<String>,
    pub pay_error: Option<String>,
    pub created_at: i64,
    pub paid_at: Option<i64>,
    pub closed_at: Option<i64>,
    /// Paid in the embedded WeChat sandbox: no money moved.
    pub paid_in_sandbox: bool,
    /// Oldest first.
    #[sqlx(skip)]
    pub refunds: Vec<RefundRecord>,
    /// Oldest first.
    #[sqlx(skip)]
    pub events: Vec<PaymentEvent>,
}

#[derive(Clone, Debug, serde::Serialize, sqlx::FromRow)]
pub struct PaymentEvent {
    pub created_at: i64,
    pub kind: String,
    pub outcome: String,
    pub detail: String,
}

/// The trail of the order with number (out_trade_no) or id `order`; `None` if there is none.
pub async fn trail(pool: &Db, order: &str) -> Result<Option<PaymentTrail>, sqlx::Error> {
    let found: Option<PaymentTrail> = crate::sql!(pool, e => sqlx::query_as(
        "SELECT id AS order_id, order_no, status, total_fee, refunded_fen, transaction_id, \
         pay_error, created_at, paid_at, closed_at, paid_in_sandbox FROM orders \
         WHERE order_no = $1 OR CAST(id AS TEXT) = $1 ORDER BY order_no = $1 DESC LIMIT 1",
    )
    .bind(order)
    .fetch_optional(e).await)?;
    let Some(mut trail) = found else {
        return Ok(None);
    };
    trail.refunds = refunds_of(pool, trail.order_id).await?;
    trail.events = crate::sql!(pool, e => sqlx::query_as(
        "SELECT created_at, kind, outcome, detail FROM payment_events WHERE order_id = $1 ORDER BY id",
    )
    .bind(trail.order_id)
    .fetch_all(e).await)?;
    Ok(Some(trail))
}
