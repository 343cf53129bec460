//! The background sweep over unpaid orders:
//! - **expiry**: an unpaid order past `expires_at` is closed at WeChat first (so nobody can pay
//!   it any more; "order not exist" is fine), then closed in the shop with its stock released;
//! - **reconciliation**: an unpaid order that went to WeChat a while ago is queried, so a lost
//!   notification cannot leave a paid order unpaid.
//!
//! [`Sweeper::run_once`] is one pass (tests call it); [`Sweeper::spawn`] repeats it.

use super::payments::{record_event, sync_with_wechat};
use super::{db_error, now, orders};
use crate::wx::Wechat;
use app::port::Result;
use sqlx::SqlitePool;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct Sweeper {
    pub pool: SqlitePool,
    pub wechat: Option<Arc<Wechat>>,
    /// How old an unpaid, prepaid order must be before the reconciler asks WeChat about it
    /// (notifications normally arrive within seconds).
    pub reconcile_after: Duration,
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Orders closed because they expired.
    pub expired: usize,
    /// Orders found paid by asking WeChat.
    pub reconciled: usize,
    /// Orders that could not be handled this time (WeChat unreachable…); tried again next pass.
    pub deferred: usize,
}

const BATCH: i64 = 200;

impl Sweeper {
    pub async fn run_once(&self) -> Result<SweepReport> {
        let mut report = SweepReport::default();
        let now = now();
        let expired: Vec<(i64, String, Option<String>)> = sqlx::query_as(
            "SELECT id, order_no, prepay_id FROM orders WHERE status = 'unpaid' AND expires_at <= $1 \
             ORDER BY expires_at LIMIT $2",
        )
        .bind(now)
        .bind(BATCH)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        for (id, order_no, prepay_id) in expired {
            if let (Some(wx), Some(_)) = (&self.wechat, prepay_id) {
                // Paid at the last second with the notification still on its way?
                if sync_with_wechat(&self.pool, wx, &order_no).await? {
                    report.reconciled += 1;
                    continue;
                }
                match wx.pay.close(&order_no).await {
                    Ok(()) => {
                        record_event(
                            &self.pool,
                            Some(id),
                            "close",
                            "info",
                            "closed at WeChat (expired)",
                        )
                        .await?
                    }
                    Err(e) if e.is_order_not_exist() => {}
                    Err(e) if e.is_order_paid() => {
                        if sync_with_wechat(&self.pool, wx, &order_no).await? {
                            report.reconciled += 1;
                        } else {
                            report.deferred += 1;
                        }
                        continue;
                    }
                    Err(e) => {
                        // Closing in the shop while WeChat may still take the money would be
                        // worse than keeping the stock a little longer.
                        tracing::warn!(order_no, error = %e, "closing at WeChat failed; retrying later");
                        report.deferred += 1;
                        continue;
                    }
                }
            }
            if orders::close_and_release(&self.pool, id, "expired").await? {
                report.expired += 1;
            }
        }

        if let Some(wx) = &self.wechat {
            let stale_before = now - self.reconcile_after.as_secs() as i64;
            let stale: Vec<String> = sqlx::query_scalar(
                "SELECT order_no FROM orders WHERE status = 'unpaid' AND prepay_id IS NOT NULL \
                 AND created_at <= $1 AND expires_at > $2 ORDER BY created_at LIMIT $3",
            )
            .bind(stale_before)
            .bind(now)
            .bind(BATCH)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
            for order_no in stale {
                if sync_with_wechat(&self.pool, wx, &order_no).await? {
                    report.reconciled += 1;
                }
            }
        }
        if report != SweepReport::default() {
            tracing::info!(?report, "swept unpaid orders");
        }
        Ok(report)
    }

    /// Runs [`Sweeper::run_once`] every `every` until the runtime shuts down.
    pub fn spawn(self, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = self.run_once().await {
                    tracing::warn!(error = %e, "order sweep failed");
                }
            }
        })
    }
}
