//! Asking WeChat how an order stands, cancelling, expiry and reconciliation.
//!
//! The shop acts only on answers it verified: a v3 error answer without a valid signature, a
//! timeout or a garbled answer is transient — nothing changes and the order is tried again later.

use super::events::{self, EventKind, Outcome};
use super::state::{close_and_release, Applied};
use super::{backoff_secs, now, PaymentError, Payments, Result};
use wechat::TradeState;

/// What WeChat says of an order, after the shop applied it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Paid (now or before), by the order's own transaction.
    Paid,
    /// Not paid: `NOTPAY`, `USERPAYING`, `PAYERROR` (the reason is kept on the order).
    Unpaid,
    /// WeChat has never heard of it (no prepay was made, or it is gone).
    NotAtWechat,
    /// Closed (or revoked) at WeChat.
    ClosedAtWechat,
    /// A payment arrived that the order could not take (closed): it was refunded.
    Refunded,
    /// WeChat could not be asked, or its answer could not be trusted.
    Unavailable(String),
}

/// How closing an order (cancel or expiry) ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseOutcome {
    /// Closed at WeChat (or never there) and in the shop; the stock is back.
    Closed,
    /// It was paid after all: the payment was applied instead.
    Paid,
    /// Nothing changed; try again later.
    Deferred(String),
    /// It was no longer unpaid in the shop.
    NotUnpaid,
}

/// What one sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Orders closed because they expired.
    pub expired: usize,
    /// Orders found paid by asking WeChat.
    pub reconciled: usize,
    /// Orders or refunds that could not be handled this time (WeChat unreachable…); each is
    /// tried again after its own backoff, without holding up the others.
    pub deferred: usize,
    /// Refunds settled by asking WeChat (their notification was lost), or sent again.
    pub refunds: usize,
    /// Coupons of paid orders redeemed at WeChat by the sweep (their first attempt failed).
    pub coupons: usize,
}

const BATCH: i64 = 200;

/// How long a sweeper owns the orders and refunds it claimed: ample for a batch of WeChat
/// round trips. Whatever it does with one puts its own `retry_at` in place of the lease; an
/// instance that dies in the middle leaves the rest to be claimed again when this runs out.
pub(super) const LEASE_SECS: i64 = 300;

impl Payments {
    /// Asks WeChat about an order by number and applies what it verifiably says.
    pub async fn sync(&self, order_no: &str) -> Result<SyncOutcome> {
        let order_id: Option<i64> = crate::sql!(&self.pool, e => sqlx::query_scalar("SELECT id FROM orders WHERE order_no = $1")
            .bind(order_no)
            .fetch_optional(e).await)?;
        let status = match self.gateway.query(order_no).await {
            Ok(s) => s,
            Err(e) if e.is_order_not_exist() => return Ok(SyncOutcome::NotAtWechat),
            Err(e) => {
                tracing::warn!(order_no, error = %e, "order query at WeChat failed");
                return Ok(SyncOutcome::Unavailable(e.to_string()));
            }
        };
        if status.appid != self.cfg.appid
            || status.mchid != self.cfg.mchid
            || status.out_trade_no != order_no
        {
            events::record(
                &self.pool,
                order_id,
                EventKind::Query,
                Outcome::Refused,
                "answer for another appid/mchid/order",
            )
            .await?;
            return Ok(SyncOutcome::Unavailable("answer for another order".into()));
        }
        match &status.trade_state {
            TradeState::Success | TradeState::Refund => {
                let (Some(txid), Some(total)) =
                    (status.transaction_id.as_deref(), status.total_fee)
                else {
                    events::record(
                        &self.pool,
                        order_id,
                        EventKind::Query,
                        Outcome::Refused,
                        "paid answer without transaction_id or amount",
                    )
                    .await?;
                    return Ok(SyncOutcome::Unavailable("incomplete paid answer".into()));
                };
                let applied = self.apply(order_no, txid, total, EventKind::Query).await?;
                if status.trade_state == TradeState::Refund && applied.is_paid() {
                    self.refunded_at_wechat(order_no).await?;
                }
                Ok(match applied {
                    Applied::Accepted | Applied::Duplicate => SyncOutcome::Paid,
                    Applied::Unexpected { .. } => SyncOutcome::Refunded,
                    _ => SyncOutcome::Unavailable("answer does not match the order".into()),
                })
            }
            TradeState::Closed | TradeState::Revoked => Ok(SyncOutcome::ClosedAtWechat),
            TradeState::NotPay | TradeState::UserPaying => Ok(SyncOutcome::Unpaid),
            TradeState::PayError => {
                let why = status
                    .trade_state_desc
                    .clone()
                    .unwrap_or_else(|| "PAYERROR".into());
                let why: String = why.chars().take(200).collect();
                crate::sql!(&self.pool, e => sqlx::query(
                    "UPDATE orders SET pay_error = $1 WHERE order_no = $2 AND status = 'unpaid'",
                )
                .bind(&why)
                .bind(order_no)
                .execute(e).await.map(crate::db::Done::from))?;
                events::record(
                    &self.pool,
                    order_id,
                    EventKind::Query,
                    Outcome::Info,
                    &format!("PAYERROR: {why}"),
                )
                .await?;
                Ok(SyncOutcome::Unpaid)
            }
            other => Ok(SyncOutcome::Unavailable(format!(
                "unknown trade_state {}",
                other.as_str()
            ))),
        }
    }

    /// WeChat answered `REFUND` for an order the shop had as plainly paid: money went back
    /// that the shop did not send back itself. The order is marked `refunding` (never plainly
    /// paid) until the refund notification tells the amount; a person should look.
    async fn refunded_at_wechat(&self, order_no: &str) -> Result<()> {
        let marked: Option<i64> = crate::sql!(&self.pool, e => sqlx::query_scalar(
            "UPDATE orders SET status = 'refunding' WHERE order_no = $1 AND status = 'paid' \
             AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.order_id = orders.id \
               AND r.kind <> 'automatic') RETURNING id",
        )
        .bind(order_no)
        .fetch_optional(e).await)?;
        if let Some(id) = marked {
            tracing::error!(order_no, "WeChat reports a refund the shop did not make");
            events::record(
                &self.pool,
                Some(id),
                EventKind::Query,
                Outcome::NeedsAttention,
                "trade_state REFUND: refunded at WeChat outside the shop; amount unknown until \
                 WeChat's refund notification (check the merchant platform)",
            )
            .await?;
        }
        Ok(())
    }

    /// Closes an unpaid order: WeChat first (so nobody can pay it any more), then the shop.
    /// An order WeChat never saw (no prepay) closes at once.
    pub async fn close_order(
        &self,
        order_id: i64,
        order_no: &str,
        prepaid: bool,
        reason: &str,
    ) -> Result<CloseOutcome> {
        if prepaid {
            // Paid at the last second, with the notification still on its way?
            match self.sync(order_no).await? {
                SyncOutcome::Paid => return Ok(CloseOutcome::Paid),
                SyncOutcome::Unavailable(why) => return Ok(CloseOutcome::Deferred(why)),
                SyncOutcome::Refunded => return Ok(CloseOutcome::NotUnpaid),
                SyncOutcome::ClosedAtWechat | SyncOutcome::NotAtWechat => {}
                SyncOutcome::Unpaid => match self.gateway.close(order_no).await {
                    Ok(()) => {
                        events::record(
                            &self.pool,
                            Some(order_id),
                            EventKind::Close,
                            Outcome::Info,
                            &format!("closed at WeChat ({reason})"),
                        )
                        .await?
                    }
                    // Already closed (a close whose first answer was lost) or never there.
                    Err(e) if e.is_order_closed() || e.is_order_not_exist() => {}
                    Err(e) if e.is_order_paid() => {
                        return Ok(match self.sync(order_no).await? {
                            SyncOutcome::Paid => CloseOutcome::Paid,
                            _ => CloseOutcome::Deferred("WeChat says paid".into()),
                        });
                    }
                    Err(e) => {
                        // Closing in the shop while WeChat may still take the money would be
                        // worse than keeping the stock a little longer.
                        tracing::warn!(order_no, error = %e, "closing at WeChat failed");
                        return Ok(CloseOutcome::Deferred(e.to_string()));
                    }
                },
            }
        }
        Ok(if close_and_release(&self.pool, order_id, reason).await? {
            CloseOutcome::Closed
        } else {
            CloseOutcome::NotUnpaid
        })
    }

    /// The shopper's 取消订单: 409 if WeChat has the money already (the order then shows paid),
    /// 503 if WeChat cannot be asked (nothing changes).
    pub async fn cancel(&self, user: Option<i64>, order_id: i64) -> Result<()> {
        let Some(user) = user else {
            return Err(PaymentError::OrderNotFound);
        };
        let row: (String, String, Option<String>) = crate::sql!(&self.pool, e => sqlx::query_as(
            "SELECT order_no, status, prepay_id FROM orders WHERE id = $1 AND user_id = $2",
        )
        .bind(order_id)
        .bind(user)
        .fetch_optional(e).await)?
        .ok_or(PaymentError::OrderNotFound)?;
        let (order_no, status, prepay_id) = row;
        if status != "unpaid" {
            return Err(PaymentError::InvalidState("只有待支付的订单可以取消"));
        }
        match self
            .close_order(
                order_id,
                &order_no,
                prepay_id.is_some(),
                "cancelled by shopper",
            )
            .await?
        {
            CloseOutcome::Closed => Ok(()),
            CloseOutcome::Paid => Err(PaymentError::InvalidState("订单已支付")),
            CloseOutcome::Deferred(why) => Err(PaymentError::Unavailable(why)),
            CloseOutcome::NotUnpaid => Err(PaymentError::InvalidState("订单状态已变化，请刷新")),
        }
    }

    /// Claims up to `BATCH` orders matching `filter` (`$1` = now, `$2` = `then`), oldest `order`
    /// first, by setting their `retry_at` to a lease in one UPDATE: another instance's sweep
    /// running at the same moment skips them (PostgreSQL: `SKIP LOCKED` takes other rows; the
    /// UPDATE re-checks `filter` on rows claimed meanwhile) and so does this instance's next
    /// pass until the lease runs out. Returns id, order_no, prepay_id, expires_at.
    async fn claim_orders(
        &self,
        filter: &str,
        order: &str,
        now: i64,
        then: i64,
    ) -> Result<Vec<(i64, String, Option<String>, i64)>> {
        let sql = format!(
            "UPDATE orders SET retry_at = $3 WHERE id IN \
               (SELECT id FROM orders WHERE {filter} ORDER BY {order} LIMIT $4{skip}) \
             AND {filter} RETURNING id, order_no, prepay_id, expires_at",
            skip = self.pool.backend().skip_locked(),
        );
        let mut claimed: Vec<(i64, String, Option<String>, i64)> = crate::sql!(&self.pool, e => sqlx::query_as(&sql)
            .bind(now)
            .bind(then)
            .bind(now + LEASE_SECS)
            .bind(BATCH)
            .fetch_all(e).await)?;
        claimed.sort_by_key(|c| c.0);
        Ok(claimed)
    }

    /// Puts off an order the sweeper could not handle, so it never blocks the others; never
    /// past `not_after` (an unpaid order's expiry must not wait for its reconciliation).
    async fn defer_order(&self, order_id: i64, not_after: Option<i64>) -> Result<()> {
        let retries: i64 = crate::sql!(&self.pool, e => sqlx::query_scalar("SELECT retries FROM orders WHERE id = $1")
            .bind(order_id)
            .fetch_one(e).await)?;
        crate::sql!(&self.pool, e => sqlx::query("UPDATE orders SET retry_at = $1, retries = retries + 1 WHERE id = $2")
            .bind((now() + backoff_secs(retries)).min(not_after.unwrap_or(i64::MAX)))
            .bind(order_id)
            .execute(e).await.map(crate::db::Done::from))?;
        Ok(())
    }

    /// One pass of the background sweep:
    /// - expiry: unpaid orders past `expires_at` are closed at WeChat, then in the shop;
    /// - reconciliation: unpaid orders that went to WeChat a while ago are queried (a lost
    ///   notification cannot leave a paid order unpaid);
    /// - refunds still processing a while after they were asked for are queried (or sent
    ///   again when WeChat never confirmed them).
    ///
    /// Each order or refund that fails is put off with its own backoff (`retry_at`).
    pub async fn sweep(&self) -> Result<SweepReport> {
        let mut report = SweepReport::default();
        let now = now();
        // Claimed (see `claim_orders`): three instances sweeping at once each close a
        // different third, and each order is closed once at WeChat.
        let expired: Vec<(i64, String, Option<String>, i64)> = self
            .claim_orders(
                "status = 'unpaid' AND expires_at <= $2 AND (retry_at IS NULL OR retry_at <= $1)",
                "expires_at",
                now,
                now,
            )
            .await?;
        for (id, order_no, prepay_id, _) in expired {
            match self
                .close_order(id, &order_no, prepay_id.is_some(), "expired")
                .await?
            {
                CloseOutcome::Closed => report.expired += 1,
                CloseOutcome::Paid => report.reconciled += 1,
                CloseOutcome::NotUnpaid => {}
                CloseOutcome::Deferred(_) => {
                    self.defer_order(id, None).await?;
                    report.deferred += 1;
                }
            }
        }

        let stale_before = now - self.cfg.reconcile_after.as_secs() as i64;
        let stale: Vec<(i64, String, Option<String>, i64)> = self
            .claim_orders(
                "status = 'unpaid' AND prepay_id IS NOT NULL AND created_at <= $2 \
                 AND expires_at > $1 AND (retry_at IS NULL OR retry_at <= $1)",
                "created_at",
                now,
                stale_before,
            )
            .await?;
        for (id, order_no, _, expires_at) in stale {
            match self.sync(&order_no).await? {
                SyncOutcome::Paid => report.reconciled += 1,
                SyncOutcome::Unavailable(_) => {
                    self.defer_order(id, Some(expires_at)).await?;
                    report.deferred += 1;
                }
                // Still unpaid: ask again later, later each time, so that 200 open orders
                // do not take every pass.
                _ => self.defer_order(id, Some(expires_at)).await?,
            }
        }

        let (settled, deferred) = self.reconcile_refunds(now).await?;
        report.refunds += settled;
        report.deferred += deferred;
        if let Some(coupons) = &self.coupons {
            match coupons.redeem_due().await {
                Ok(n) => report.coupons += n,
                // Logged where it happened (db_error); the next sweep tries again.
                Err(e) => tracing::warn!(error = %e.message, "coupon redemptions failed"),
            }
        }
        if report != SweepReport::default() {
            tracing::info!(?report, "swept orders and refunds");
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_grows_and_is_capped() {
        use super::backoff_secs;
        assert_eq!(backoff_secs(0), 60);
        assert_eq!(backoff_secs(1), 120);
        assert_eq!(backoff_secs(5), 1920);
        assert_eq!(backoff_secs(6), 3600);
        assert_eq!(backoff_secs(40), 3600);
    }
}
