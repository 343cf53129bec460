//! The order state machine, written down in one place. Every transition is one conditional
//! `UPDATE … WHERE status IN (<from>)` inside a transaction, so concurrent actors (a shopper
//! cancelling, notifications and their duplicates, the sweeper, the merchant refunding) can
//! never both win.
//!
//! ```text
//!            pay (notification or query)            refund requested
//!  unpaid ───────────────────────────────▶ paid ──────────────────────▶ refunding
//!    │                                      │  ▲                          │
//!    │ cancel / expiry                      │  └── refund failed ─────────┤
//!    │ (closed at WeChat first)             │                             │ refund succeeded
//!    ▼                                      ▼                             ▼
//!  closed                            shipped → completed      partially_refunded | refunded
//!                                   (merchant console)        (refunding again from either)
//! ```
//!
//! The status after a refund settles is derived from the refunds themselves: any still
//! processing → `refunding`; succeeded refunds adding up to the total → `refunded`; some →
//! `partially_refunded`; none → `paid`. Automatic refunds (money that arrived for an order that
//! could not take it) do not refund the order's own payment and never change its status.

use super::events::{self, EventKind, Outcome};
use super::now;
use crate::db::{Db, Tx};
use app::model::RefundState;

/// The statuses a refund may start from (SQL list, for `status IN …`).
pub const REFUNDABLE: &str = "('paid', 'shipped', 'completed', 'partially_refunded', 'refunding')";

/// A refund may start from `status` (the same list as [`REFUNDABLE`]).
pub fn is_refundable(status: &str) -> bool {
    matches!(
        status,
        "paid" | "shipped" | "completed" | "partially_refunded" | "refunding"
    )
}

/// What became of a report that an order was paid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// This report moved the order from unpaid to paid.
    Accepted,
    /// Already paid by this very transaction (WeChat repeats itself).
    Duplicate,
    /// No order with that number.
    UnknownOrder,
    /// The paid amount is not the order's total.
    AmountMismatch { expected: i64, got: i64 },
    /// The order is closed, or paid by another transaction: money arrived that the order
    /// cannot take. It is refunded in full (see `refunds::refund_unexpected`).
    Unexpected { order_id: i64, status: String },
}

impl Applied {
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Accepted => Outcome::Accepted,
            Self::Duplicate => Outcome::Duplicate,
            Self::UnknownOrder | Self::AmountMismatch { .. } => Outcome::Refused,
            Self::Unexpected { .. } => Outcome::NeedsAttention,
        }
    }

    /// WeChat should stop sending this notification.
    pub fn acknowledge(&self) -> bool {
        !matches!(self, Self::UnknownOrder | Self::AmountMismatch { .. })
    }

    /// The order is paid by this transaction (now or before).
    pub fn is_paid(&self) -> bool {
        matches!(self, Self::Accepted | Self::Duplicate)
    }
}

/// `unpaid → paid`, in ONE conditional UPDATE, with its event in the same transaction so the
/// log and the order always agree.
pub async fn apply_paid(
    pool: &Db,
    order_no: &str,
    transaction_id: &str,
    total_fee: i64,
    kind: EventKind,
    sandbox: bool,
) -> Result<(Applied, Option<i64>), sqlx::Error> {
    let mut tx = pool.begin().await?;
    // A write first: SQLite takes the write lock now, so concurrent deliveries queue here
    // instead of failing on a read→write upgrade.
    let paid = crate::sql!(&mut tx, e => sqlx::query_scalar::<_, i64>(
        "UPDATE orders SET status = 'paid', paid_at = $1, transaction_id = $2, pay_error = NULL, \
         retry_at = NULL, paid_in_sandbox = $5 \
         WHERE order_no = $3 AND status = 'unpaid' AND total_fee = $4 RETURNING id",
    )
    .bind(now())
    .bind(transaction_id)
    .bind(order_no)
    .bind(total_fee)
    .bind(sandbox)
    .fetch_optional(e).await)?;
    let (applied, order_id) = match paid {
        Some(id) => (Applied::Accepted, Some(id)),
        None => {
            let row: Option<(i64, String, i64, Option<String>)> = crate::sql!(&mut tx, e => sqlx::query_as(
                "SELECT id, status, total_fee, transaction_id FROM orders WHERE order_no = $1",
            )
            .bind(order_no)
            .fetch_optional(e).await)?;
            match row {
                None => (Applied::UnknownOrder, None),
                Some((id, status, expected, _)) if status == "unpaid" => (
                    Applied::AmountMismatch {
                        expected,
                        got: total_fee,
                    },
                    Some(id),
                ),
                Some((id, _, _, Some(txid))) if txid == transaction_id => {
                    (Applied::Duplicate, Some(id))
                }
                Some((id, status, _, _)) => (
                    Applied::Unexpected {
                        order_id: id,
                        status,
                    },
                    Some(id),
                ),
            }
        }
    };
    let detail = match &applied {
        Applied::Accepted | Applied::Duplicate => {
            format!("transaction {transaction_id}, {total_fee} fen")
        }
        Applied::UnknownOrder => format!("unknown order {order_no}"),
        Applied::AmountMismatch { expected, got } => {
            format!("amount {got} fen, order total {expected} fen")
        }
        Applied::Unexpected { status, .. } => format!(
            "order is {status}: payment {transaction_id} of {total_fee} fen is refunded in full"
        ),
    };
    events::record(&mut tx, order_id, kind, applied.outcome(), &detail).await?;
    tx.commit().await?;
    let kind = kind.as_str();
    match &applied {
        Applied::Accepted => tracing::info!(order_no, transaction_id, kind, "order paid"),
        Applied::Duplicate => tracing::debug!(order_no, kind, "payment already recorded"),
        Applied::Unexpected { status, .. } => tracing::error!(
            order_no,
            transaction_id,
            kind,
            status,
            "payment for an order that cannot take it: refunding it"
        ),
        other => tracing::warn!(order_no, kind, outcome = ?other, "payment report refused"),
    }
    Ok((applied, order_id))
}

/// `unpaid → closed` with the stock put back, atomically. Returns whether this call made the
/// transition (false: it was no longer unpaid).
pub async fn close_and_release(
    pool: &Db,
    order_id: i64,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let done = crate::sql!(&mut tx, e => sqlx::query(
        "UPDATE orders SET status = 'closed', closed_at = $1, retry_at = NULL \
         WHERE id = $2 AND status = 'unpaid'",
    )
    .bind(now())
    .bind(order_id)
    .execute(e).await.map(crate::db::Done::from))?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    crate::sql!(&mut tx, e => sqlx::query(
        "UPDATE skus SET stock = stock + (SELECT SUM(quantity) FROM order_lines l \
           WHERE l.order_id = $1 AND l.sku_id = skus.id) \
         WHERE id IN (SELECT sku_id FROM order_lines WHERE order_id = $1)",
    )
    .bind(order_id)
    .execute(e).await.map(crate::db::Done::from))?;
    tx.commit().await?;
    tracing::info!(order_id, reason, "order closed, stock released");
    Ok(true)
}

/// Recomputes an order's `refunded_fen` and status from its refunds (see the module docs).
/// Unpaid and closed orders keep their status.
pub async fn recompute_refunds(tx: &mut Tx<'_>, order_id: i64) -> Result<(), sqlx::Error> {
    crate::sql!(&mut *tx, e => sqlx::query(
        "UPDATE orders SET \
           refunded_fen = (SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM refunds \
             WHERE order_id = $1 AND kind <> 'automatic' AND status = 'succeeded'), \
           status = CASE \
             WHEN status IN ('unpaid', 'closed') THEN status \
             WHEN EXISTS (SELECT 1 FROM refunds WHERE order_id = $1 AND kind <> 'automatic' \
               AND status = 'processing') THEN 'refunding' \
             WHEN (SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM refunds WHERE order_id = $1 \
               AND kind <> 'automatic' AND status = 'succeeded') >= total_fee THEN 'refunded' \
             WHEN (SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM refunds WHERE order_id = $1 \
               AND kind <> 'automatic' AND status = 'succeeded') > 0 THEN 'partially_refunded' \
             WHEN status = 'refunding' THEN 'paid' \
             ELSE status END \
         WHERE id = $1",
    )
    .bind(order_id)
    .execute(e).await.map(crate::db::Done::from))?;
    Ok(())
}

/// What a settled refund changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled {
    /// This call moved the refund out of `processing`.
    Changed { order_id: i64 },
    /// It had left `processing` already (a repeated notification, a query racing it).
    AlreadySettled { state: RefundState },
    /// No refund with that number.
    Unknown,
}

/// `processing → succeeded | abnormal | closed | failed` for one refund, in one conditional
/// UPDATE; on success the refunded lines go back to stock when the refund asked for it, and
/// the order's refunded total and status follow — all in one transaction.
pub async fn settle_refund(
    pool: &Db,
    out_refund_no: &str,
    state: RefundState,
    refund_id: Option<&str>,
    detail: &str,
    event: (EventKind, Outcome),
) -> Result<Settled, sqlx::Error> {
    debug_assert!(state != RefundState::Processing);
    let now = now();
    let mut tx = pool.begin().await?;
    let row: Option<(i64, i64, bool)> = crate::sql!(&mut tx, e => sqlx::query_as(
        "UPDATE refunds SET status = $1, refund_id = COALESCE($2, refund_id), detail = $3, \
           updated_at = $4, succeeded_at = CASE WHEN $1 = 'succeeded' THEN $4 END, retry_at = NULL \
         WHERE out_refund_no = $5 AND status = 'processing' RETURNING id, order_id, restock",
    )
    .bind(state.as_str())
    .bind(refund_id)
    .bind(detail)
    .bind(now)
    .bind(out_refund_no)
    .fetch_optional(e).await)?;
    let Some((id, order_id, restock)) = row else {
        let current: Option<(String,)> = crate::sql!(&mut tx, e => sqlx::query_as("SELECT status FROM refunds WHERE out_refund_no = $1")
                .bind(out_refund_no)
                .fetch_optional(e).await)?;
        return Ok(match current {
            Some((s,)) => Settled::AlreadySettled {
                state: RefundState::parse(&s).unwrap_or(RefundState::Failed),
            },
            None => Settled::Unknown,
        });
    };
    if state == RefundState::Succeeded && restock {
        crate::sql!(&mut tx, e => sqlx::query(
            "UPDATE skus SET stock = stock + (SELECT SUM(rl.quantity) FROM refund_lines rl \
               JOIN order_lines ol ON ol.order_id = $1 AND ol.line_no = rl.line_no \
               WHERE rl.refund_id = $2 AND ol.sku_id = skus.id) \
             WHERE id IN (SELECT ol.sku_id FROM refund_lines rl JOIN order_lines ol \
               ON ol.order_id = $1 AND ol.line_no = rl.line_no WHERE rl.refund_id = $2)",
        )
        .bind(order_id)
        .bind(id)
        .execute(e).await.map(crate::db::Done::from))?;
    }
    recompute_refunds(&mut tx, order_id).await?;
    let (kind, outcome) = event;
    events::record(
        &mut tx,
        Some(order_id),
        kind,
        outcome,
        &format!("refund {out_refund_no} {}: {detail}", state.as_str()),
    )
    .await?;
    tx.commit().await?;
    tracing::info!(out_refund_no, state = state.as_str(), "refund settled");
    Ok(Settled::Changed { order_id })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_refundable_check_and_its_sql_list_agree() {
        for status in app::model::OrderStatus::ALL {
            let s = status.as_str();
            assert_eq!(
                super::is_refundable(s),
                super::REFUNDABLE.contains(&format!("'{s}'")),
                "{s}"
            );
        }
    }
}
