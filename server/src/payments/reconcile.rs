//! Books that match: a day's trade bill from WeChat (`bill_type=ALL`) compared with the shop's
//! own payments and refunds of that day (China time). Every difference is listed: paid at
//! WeChat but not in the shop, in the shop but not at WeChat, amounts that differ, and the same
//! for refunds. Each run is kept in `reconciliations` (`wxmall reconcile`, and the daily run).

use super::{now, PaymentError, Payments, Result};
use std::collections::BTreeMap;
use time::macros::offset;
use time::{Date, OffsetDateTime, Time};

/// One difference between WeChat's bill and the shop's books.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Difference {
    /// WeChat has a payment the shop does not know.
    PaidAtWechatOnly {
        transaction_id: String,
        out_trade_no: String,
        amount_fen: i64,
    },
    /// The shop has a payment WeChat's bill does not show.
    PaidInShopOnly {
        transaction_id: String,
        out_trade_no: String,
        amount_fen: i64,
    },
    /// Both have the payment, with different amounts.
    PaymentAmountDiffers {
        transaction_id: String,
        out_trade_no: String,
        shop_fen: i64,
        wechat_fen: i64,
    },
    /// WeChat has a refund the shop does not know (or does not count as made).
    RefundAtWechatOnly {
        out_refund_no: String,
        out_trade_no: String,
        amount_fen: i64,
    },
    /// The shop counts a refund WeChat's bill does not show.
    RefundInShopOnly {
        out_refund_no: String,
        out_trade_no: String,
        amount_fen: i64,
    },
    /// Both have the refund, with different amounts.
    RefundAmountDiffers {
        out_refund_no: String,
        out_trade_no: String,
        shop_fen: i64,
        wechat_fen: i64,
    },
}

/// What one reconciliation found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileReport {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// WeChat had a bill for the day (none: no trades at all that day).
    pub bill: bool,
    pub payments_matched: i64,
    pub payments_matched_fen: i64,
    pub refunds_matched: i64,
    pub refunds_matched_fen: i64,
    pub differences: Vec<Difference>,
}

impl ReconcileReport {
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }
}

/// The day `date` in China time as unix seconds `[start, end)`.
pub(crate) fn day_bounds(date: Date) -> (i64, i64) {
    let start = date.with_time(Time::MIDNIGHT).assume_offset(offset!(+8));
    let end = start + time::Duration::days(1);
    (start.unix_timestamp(), end.unix_timestamp())
}

/// Yesterday in China time (the day whose bill WeChat serves the morning after).
pub fn yesterday_in_china() -> Date {
    (OffsetDateTime::now_utc().to_offset(offset!(+8)) - time::Duration::days(1)).date()
}

impl Payments {
    /// Downloads WeChat's trade bill for `date` and compares it with the shop's books; the
    /// result is kept in `reconciliations`.
    pub async fn reconcile_bill(&self, date: Date) -> Result<ReconcileReport> {
        let bill = self
            .gateway
            .trade_bill(date)
            .await
            .map_err(|e| PaymentError::Unavailable(format!("trade bill: {e}")))?;
        let (start, end) = day_bounds(date);
        // The shop's payments of the day: orders paid by a transaction, and money that arrived
        // for orders that could not take it (kept with its automatic refund).
        let mut shop_pay: BTreeMap<String, (String, i64)> =
            crate::sql!(&self.pool, e => sqlx::query_as::<_, (String, String, i64)>(
                "SELECT transaction_id, order_no, total_fee FROM orders \
             WHERE transaction_id IS NOT NULL AND paid_at >= $1 AND paid_at < $2 \
             UNION ALL \
             SELECT r.transaction_id, o.order_no, r.total_fen FROM refunds r \
               JOIN orders o ON o.id = r.order_id \
             WHERE r.kind = 'automatic' AND r.transaction_id IS NOT NULL \
               AND r.created_at >= $1 AND r.created_at < $2",
            )
            .bind(start)
            .bind(end)
            .fetch_all(e).await)?
            .into_iter()
            .map(|(tx, no, fen)| (tx, (no, fen)))
            .collect();
        // The shop's refunds of the day that count as made (or on their way).
        let mut shop_refunds: BTreeMap<String, (String, i64)> =
            crate::sql!(&self.pool, e => sqlx::query_as::<_, (String, String, i64)>(
                "SELECT r.out_refund_no, o.order_no, r.amount_fen FROM refunds r \
                   JOIN orders o ON o.id = r.order_id \
                 WHERE r.status IN ('succeeded', 'processing') \
                   AND r.created_at >= $1 AND r.created_at < $2",
            )
            .bind(start)
            .bind(end)
            .fetch_all(e).await)?
            .into_iter()
            .map(|(no, order_no, fen)| (no, (order_no, fen)))
            .collect();

        let mut report = ReconcileReport {
            date: date.to_string(),
            bill: bill.is_some(),
            ..Default::default()
        };
        for row in bill.map(|b| b.rows).unwrap_or_default() {
            match row.out_refund_no.as_deref().filter(|n| !n.is_empty()) {
                Some(out_refund_no) if row.trade_state == "REFUND" || row.refund_fee > 0 => {
                    match shop_refunds.remove(out_refund_no) {
                        Some((_, fen)) if fen == row.refund_fee => {
                            report.refunds_matched += 1;
                            report.refunds_matched_fen += fen;
                        }
                        Some((order_no, fen)) => {
                            report.differences.push(Difference::RefundAmountDiffers {
                                out_refund_no: out_refund_no.to_string(),
                                out_trade_no: order_no,
                                shop_fen: fen,
                                wechat_fen: row.refund_fee,
                            })
                        }
                        None => report.differences.push(Difference::RefundAtWechatOnly {
                            out_refund_no: out_refund_no.to_string(),
                            out_trade_no: row.out_trade_no.clone(),
                            amount_fen: row.refund_fee,
                        }),
                    }
                }
                _ => match shop_pay.remove(&row.transaction_id) {
                    Some((_, fen)) if fen == row.total_fee => {
                        report.payments_matched += 1;
                        report.payments_matched_fen += fen;
                    }
                    Some((order_no, fen)) => {
                        report.differences.push(Difference::PaymentAmountDiffers {
                            transaction_id: row.transaction_id.clone(),
                            out_trade_no: order_no,
                            shop_fen: fen,
                            wechat_fen: row.total_fee,
                        })
                    }
                    None => report.differences.push(Difference::PaidAtWechatOnly {
                        transaction_id: row.transaction_id.clone(),
                        out_trade_no: row.out_trade_no.clone(),
                        amount_fen: row.total_fee,
                    }),
                },
            }
        }
        for (transaction_id, (out_trade_no, amount_fen)) in shop_pay {
            report.differences.push(Difference::PaidInShopOnly {
                transaction_id,
                out_trade_no,
                amount_fen,
            });
        }
        for (out_refund_no, (out_trade_no, amount_fen)) in shop_refunds {
            report.differences.push(Difference::RefundInShopOnly {
                out_refund_no,
                out_trade_no,
                amount_fen,
            });
        }
        let json = serde_json::to_string(&report.differences).unwrap_or_default();
        crate::sql!(&self.pool, e => sqlx::query(
            "INSERT INTO reconciliations (bill_date, ran_at, payments_matched, payments_matched_fen, \
               refunds_matched, refunds_matched_fen, differences, difference_count) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (bill_date) DO UPDATE SET ran_at = excluded.ran_at, \
               payments_matched = excluded.payments_matched, \
               payments_matched_fen = excluded.payments_matched_fen, \
               refunds_matched = excluded.refunds_matched, \
               refunds_matched_fen = excluded.refunds_matched_fen, \
               differences = excluded.differences, difference_count = excluded.difference_count",
        )
        .bind(&report.date)
        .bind(now())
        .bind(report.payments_matched)
        .bind(report.payments_matched_fen)
        .bind(report.refunds_matched)
        .bind(report.refunds_matched_fen)
        .bind(json)
        .bind(report.differences.len() as i64)
        .execute(e).await.map(crate::db::Done::from))?;
        if report.is_clean() {
            tracing::info!(date = %report.date, payments = report.payments_matched, refunds = report.refunds_matched, "books match WeChat's bill");
        } else {
            tracing::error!(date = %report.date, differences = report.differences.len(), "books differ from WeChat's bill");
        }
        Ok(report)
    }

    /// Runs [`Payments::reconcile_bill`] for yesterday (China time) every day at `at` (China
    /// time), until the runtime shuts down.
    pub fn spawn_daily_reconciliation(self, at: Time) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let now = OffsetDateTime::now_utc().to_offset(offset!(+8));
                let mut next = now.date().with_time(at).assume_offset(offset!(+8));
                if next <= now {
                    next += time::Duration::days(1);
                }
                let wait = (next - now).unsigned_abs();
                tokio::time::sleep(wait).await;
                let day = yesterday_in_china();
                // Every instance wakes up; the one that takes the day's lease reconciles.
                let holder = format!(
                    "{}:{}",
                    std::env::var("HOSTNAME").unwrap_or_else(|_| "wxmall".into()),
                    std::process::id()
                );
                match crate::db::take_lease(
                    &self.pool,
                    &format!("reconcile:{day}"),
                    &holder,
                    6 * 3600,
                )
                .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::debug!(date = %day, "another instance reconciles this day");
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, date = %day, "daily reconciliation: lease");
                        continue;
                    }
                }
                if let Err(e) = self.reconcile_bill(day).await {
                    tracing::error!(error = %e, date = %day, "daily reconciliation failed");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_a_china_day() {
        let (start, end) = day_bounds(time::macros::date!(2026 - 12 - 04));
        // 2026-12-04T00:00+08:00 = 2026-12-03T16:00Z
        assert_eq!(start, 1_796_313_600);
        assert_eq!(end - start, 86_400);
    }
}
