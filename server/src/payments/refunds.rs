//! Refunds: full or partial, by amount or by order line, several per order, never more than
//! was paid, each with its own `out_refund_no`; the same request twice refunds once.
//!
//! A refund is written (`processing`) before WeChat is asked, in the same transaction as the
//! check that it fits in what is left of the payment, so two refunds racing cannot both fit.
//! WeChat's answer, its refund notification or the reconciler's query then settles it
//! (`state::settle_refund`).

use super::events::{self, EventKind, Outcome};
use super::state::{is_refundable, settle_refund, Settled, REFUNDABLE};
use super::{backoff_secs, now, PaymentError, Payments, Result};
use app::model::{RefundState, RefundView};
use sha2::{Digest, Sha256};
use wechat::{RefundNotice, RefundStatus};

/// The most characters WeChat takes as a refund reason.
pub const MAX_REASON_CHARS: usize = 80;

/// Part of one order line to refund.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct RefundLine {
    /// The order line's number, from 1 (as `wxmall payments` and the console show them).
    pub line_no: i64,
    pub quantity: i64,
}

/// What the merchant asks for.
#[derive(Clone, Debug, Default)]
pub struct RefundRequest {
    /// Order id or order number.
    pub order: String,
    /// The amount; without it, the value of `lines`, or else everything that is left.
    pub amount_fen: Option<i64>,
    pub lines: Vec<RefundLine>,
    pub reason: String,
    /// Put the refunded lines back in stock once the refund succeeds.
    pub restock: bool,
}

/// What the merchant's refunds of an order already take (processing or succeeded; automatic
/// refunds give back money the order never kept and do not count).
pub async fn committed_fen(
    pool: &crate::db::Db,
    order_id: i64,
) -> std::result::Result<i64, sqlx::Error> {
    crate::sql!(pool, e => sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM refunds WHERE order_id = $1 \
         AND kind <> 'automatic' AND status IN ('processing', 'succeeded')",
    )
    .bind(order_id)
    .fetch_one(e).await)
}

/// A refund as the merchant sees it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct RefundRecord {
    pub out_refund_no: String,
    pub refund_id: Option<String>,
    pub order_id: i64,
    pub amount_fen: i64,
    pub kind: String,
    pub status: String,
    pub reason: String,
    pub restock: bool,
    pub detail: String,
    pub created_at: i64,
    pub succeeded_at: Option<i64>,
}

/// What [`Payments::refund`] did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RefundOutcome {
    pub refund: RefundRecord,
    /// False when the very same request had been made before: nothing new was refunded.
    pub created: bool,
}

impl RefundOutcome {
    /// WeChat accepted the refund (it is processing or done).
    pub fn accepted(&self) -> bool {
        matches!(self.refund.status.as_str(), "processing" | "succeeded")
            && self.refund.refund_id.is_some()
    }
}

#[derive(sqlx::FromRow)]
struct OrderForRefund {
    id: i64,
    order_no: String,
    status: String,
    total_fee: i64,
    transaction_id: Option<String>,
    paid_in_sandbox: bool,
    /// What a coupon took off: goods are refunded at what was paid for them.
    discount_fen: i64,
}

/// `out_refund_no` for a merchant refund: derived from the request, so the same request
/// (a double click, a command run again after a timeout) names the same refund. It starts from
/// the order's number (its `out_trade_no`, unique at WeChat), never from a database id that a
/// restored or rebuilt database could give to another order.
fn merchant_refund_no(
    order_no: &str,
    amount: i64,
    lines: &[RefundLine],
    reason: &str,
    restock: bool,
) -> String {
    let mut h = Sha256::new();
    h.update(format!("{order_no}|{amount}|{restock}|{reason}|").as_bytes());
    for l in lines {
        h.update(format!("{}x{};", l.line_no, l.quantity).as_bytes());
    }
    format!("R{}", &hex::encode(h.finalize())[..30])
}

/// `out_refund_no` for money that arrived for an order that could not take it: one per
/// WeChat transaction, however often the payment is reported.
fn automatic_refund_no(transaction_id: &str) -> String {
    if transaction_id.len() <= 31 && transaction_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        format!("A{transaction_id}")
    } else {
        format!(
            "A{}",
            &hex::encode(Sha256::digest(transaction_id.as_bytes()))[..30]
        )
    }
}

fn state_of(status: &RefundStatus) -> Option<RefundState> {
    match status {
        RefundStatus::Success => Some(RefundState::Succeeded),
        RefundStatus::Closed => Some(RefundState::Closed),
        RefundStatus::Abnormal => Some(RefundState::Abnormal),
        RefundStatus::Processing => None,
        _ => None,
    }
}

const RECORD_COLUMNS: &str = "out_refund_no, refund_id, order_id, amount_fen, kind, status, \
    reason, restock, detail, created_at, succeeded_at";

impl Payments {
    async fn refund_record(&self, out_refund_no: &str) -> Result<Option<RefundRecord>> {
        Ok(crate::sql!(&self.pool, e => sqlx::query_as(&format!(
            "SELECT {RECORD_COLUMNS} FROM refunds WHERE out_refund_no = $1"
        ))
        .bind(out_refund_no)
        .fetch_optional(e).await)?)
    }

    /// Every refund of an order, oldest first (`wxmall payments`).
    pub async fn refunds_of(&self, order_id: i64) -> Result<Vec<RefundRecord>> {
        Ok(refunds_of(&self.pool, order_id).await?)
    }

    /// A merchant refund (`wxmall refund`, the console).
    pub async fn refund(&self, req: &RefundRequest) -> Result<RefundOutcome> {
        let reason = req.reason.trim().to_string();
        if reason.is_empty() {
            return Err(PaymentError::BadRefund("请填写退款原因".into()));
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(PaymentError::BadRefund(format!(
                "退款原因最多 {MAX_REASON_CHARS} 字"
            )));
        }
        let order: OrderForRefund = crate::sql!(&self.pool, e => sqlx::query_as(
            "SELECT id, order_no, status, total_fee, transaction_id, paid_in_sandbox, discount_fen \
             FROM orders WHERE order_no = $1 OR CAST(id AS TEXT) = $1 ORDER BY order_no = $1 DESC LIMIT 1",
        )
        .bind(req.order.trim())
        .fetch_optional(e).await)?
        .ok_or(PaymentError::OrderNotFound)?;
        let Some(transaction_id) = order.transaction_id.clone() else {
            return Err(PaymentError::InvalidState("订单未支付，不能退款"));
        };
        // A sandbox payment moved no money: the real WeChat has nothing to give back.
        if order.paid_in_sandbox && !self.cfg.sandbox {
            return Err(PaymentError::BadRefund(
                "该订单是在微信沙箱中支付的，没有真实款项可退".into(),
            ));
        }
        if order.status == "refunded" {
            return Err(PaymentError::BadRefund("订单已全额退款".into()));
        }
        if !is_refundable(&order.status) {
            return Err(PaymentError::InvalidState("订单状态不允许退款"));
        }
        if req.restock && req.lines.is_empty() {
            return Err(PaymentError::BadRefund(
                "退回库存需要指明退款的商品行（--line 行号:数量）".into(),
            ));
        }
        // Lines: each must exist and not be refunded beyond what was ordered.
        let mut lines = req.lines.clone();
        lines.sort_by_key(|l| l.line_no);
        let mut lines_value = 0i64;
        for (i, l) in lines.iter().enumerate() {
            if i > 0 && lines[i - 1].line_no == l.line_no {
                return Err(PaymentError::BadRefund(format!("第 {} 行重复", l.line_no)));
            }
            if l.quantity <= 0 {
                return Err(PaymentError::BadRefund(format!(
                    "第 {} 行的退款数量须大于 0",
                    l.line_no
                )));
            }
            let line: Option<(i64, i64)> = crate::sql!(&self.pool, e => sqlx::query_as(
                "SELECT unit_price_fen, quantity FROM order_lines WHERE order_id = $1 AND line_no = $2",
            )
            .bind(order.id)
            .bind(l.line_no - 1)
            .fetch_optional(e).await)?;
            let Some((price, ordered)) = line else {
                return Err(PaymentError::BadRefund(format!(
                    "订单没有第 {} 行",
                    l.line_no
                )));
            };
            let refunded: i64 = crate::sql!(&self.pool, e => sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(rl.quantity), 0) AS BIGINT) FROM refund_lines rl \
                 JOIN refunds r ON r.id = rl.refund_id \
                 WHERE r.order_id = $1 AND rl.line_no = $2 AND r.status IN ('processing', 'succeeded')",
            )
            .bind(order.id)
            .bind(l.line_no - 1)
            .fetch_one(e).await)?;
            if l.quantity > ordered - refunded {
                return Err(PaymentError::BadRefund(format!(
                    "第 {} 行最多还可退 {} 件",
                    l.line_no,
                    ordered - refunded
                )));
            }
            lines_value += price * l.quantity;
        }
        let left = order.total_fee - committed_fen(&self.pool, order.id).await?;
        if order.discount_fen > 0 && !lines.is_empty() {
            // A couponed order: goods go back at what was paid for them — the coupon's discount
            // spread over the goods in proportion, rounded down; when the last units go back,
            // the rest of what was paid. Never more than was paid.
            let others_left: i64 = crate::sql!(&self.pool, e => sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(ol.quantity - COALESCE((SELECT SUM(rl.quantity)                    FROM refund_lines rl JOIN refunds r ON r.id = rl.refund_id                    WHERE r.order_id = ol.order_id AND rl.line_no = ol.line_no                      AND r.status IN ('processing', 'succeeded')), 0)), 0) AS BIGINT)                  FROM order_lines ol WHERE ol.order_id = $1",
            )
            .bind(order.id)
            .fetch_one(e).await)?;
            let requested: i64 = lines.iter().map(|l| l.quantity).sum();
            let goods = order.total_fee + order.discount_fen;
            lines_value = if others_left - requested <= 0 {
                left
            } else {
                (lines_value as i128 * order.total_fee as i128 / goods as i128) as i64
            };
        }
        let amount = match (req.amount_fen, lines.is_empty()) {
            (Some(a), _) => a,
            (None, false) => lines_value.min(left),
            (None, true) => left,
        };
        if amount <= 0 {
            return Err(PaymentError::BadRefund(if left <= 0 {
                "订单已全额退款".into()
            } else {
                "退款金额须大于 0".into()
            }));
        }
        let out_refund_no =
            merchant_refund_no(&order.order_no, amount, &lines, &reason, req.restock);
        if let Some(existing) = self.refund_record(&out_refund_no).await? {
            return Ok(RefundOutcome {
                refund: existing,
                created: false,
            });
        }

        let now = now();
        let mut tx = self.pool.begin().await?;
        // The check that the refund fits and the claim on the money, in one conditional UPDATE.
        let fits = crate::sql!(&mut tx, e => sqlx::query(&format!(
            "UPDATE orders SET status = 'refunding' WHERE id = $1 AND status IN {REFUNDABLE} \
             AND total_fee - (SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM refunds WHERE order_id = $1 \
               AND kind <> 'automatic' AND status IN ('processing', 'succeeded')) >= $2"
        ))
        .bind(order.id)
        .bind(amount)
        .execute(e).await.map(crate::db::Done::from))?;
        if fits.rows_affected() != 1 {
            drop(tx);
            return Err(PaymentError::BadRefund(format!(
                "退款金额超过可退金额（最多还可退 {}）",
                app::model::format_fen(left.max(0))
            )));
        }
        let inserted: Option<i64> = crate::sql!(&mut tx, e => sqlx::query_scalar(
            "INSERT INTO refunds (order_id, out_refund_no, transaction_id, amount_fen, total_fen, \
               kind, status, reason, restock, created_at, updated_at, retry_at) \
             VALUES ($1, $2, $3, $4, $5, 'merchant', 'processing', $6, $7, $8, $8, $9) \
             ON CONFLICT (out_refund_no) DO NOTHING RETURNING id",
        )
        .bind(order.id)
        .bind(&out_refund_no)
        .bind(&transaction_id)
        .bind(amount)
        .bind(order.total_fee)
        .bind(&reason)
        .bind(req.restock)
        .bind(now)
        .bind(now + backoff_secs(0))
        .fetch_optional(e).await)?;
        let Some(refund_row) = inserted else {
            // The same request, a moment ago, from someone else: theirs stands.
            drop(tx);
            let existing = self
                .refund_record(&out_refund_no)
                .await?
                .ok_or(PaymentError::InvalidState("退款状态已变化，请重试"))?;
            return Ok(RefundOutcome {
                refund: existing,
                created: false,
            });
        };
        for l in &lines {
            crate::sql!(&mut tx, e => sqlx::query(
                "INSERT INTO refund_lines (refund_id, line_no, quantity) VALUES ($1, $2, $3)",
            )
            .bind(refund_row)
            .bind(l.line_no - 1)
            .bind(l.quantity)
            .execute(e).await.map(crate::db::Done::from))?;
        }
        events::record(
            &mut tx,
            Some(order.id),
            EventKind::Refund,
            Outcome::Info,
            &format!("refund {out_refund_no} of {amount} fen requested: {reason}"),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(order_no = %order.order_no, out_refund_no, amount, "refund requested");

        self.send_refund(
            order.id,
            &order.order_no,
            &out_refund_no,
            order.total_fee,
            amount,
            &reason,
        )
        .await?;
        let refund = self
            .refund_record(&out_refund_no)
            .await?
            .ok_or(PaymentError::InvalidState("退款记录不存在"))?;
        Ok(RefundOutcome {
            refund,
            created: true,
        })
    }

    /// Asks WeChat for a refund written as `processing`, and records its answer. A definite
    /// refusal settles the refund as `failed`; no answer leaves it processing, to be sent again
    /// (same `out_refund_no`: WeChat refunds it once) by the reconciler.
    async fn send_refund(
        &self,
        order_id: i64,
        order_no: &str,
        out_refund_no: &str,
        total_fee: i64,
        amount: i64,
        reason: &str,
    ) -> Result<()> {
        let req = wechat::RefundRequest {
            out_trade_no: order_no.to_string(),
            out_refund_no: out_refund_no.to_string(),
            total_fee,
            refund_fee: amount,
            reason: (!reason.is_empty()).then(|| reason.to_string()),
            notify_url: Some(self.cfg.refund_notify_url.clone()),
        };
        match self.gateway.refund(&req).await {
            Ok(result) => {
                if result.refund_fee != amount {
                    tracing::error!(out_refund_no, "WeChat answered another refund amount");
                }
                crate::sql!(&self.pool, e => sqlx::query(
                    "UPDATE refunds SET refund_id = $1, updated_at = $2 WHERE out_refund_no = $3",
                )
                .bind(&result.refund_id)
                .bind(now())
                .bind(out_refund_no)
                .execute(e).await.map(crate::db::Done::from))?;
                events::record(
                    &self.pool,
                    Some(order_id),
                    EventKind::Refund,
                    Outcome::Info,
                    &format!(
                        "refund {out_refund_no} accepted by WeChat: {}",
                        result.refund_id
                    ),
                )
                .await?;
                if let Some(state) = state_of(&result.status) {
                    settle_refund(
                        &self.pool,
                        out_refund_no,
                        state,
                        Some(&result.refund_id),
                        "WeChat's answer",
                        (EventKind::Refund, Outcome::Accepted),
                    )
                    .await?;
                }
            }
            Err(e)
                if e.verified_code().is_some() && !e.code().is_some_and(|c| c.is_retryable()) =>
            {
                // WeChat said no (NOTENOUGH, a bad request …): nothing will be refunded.
                let detail: String = format!("refused by WeChat: {e}")
                    .chars()
                    .take(300)
                    .collect();
                tracing::error!(out_refund_no, error = %e, "refund refused by WeChat");
                settle_refund(
                    &self.pool,
                    out_refund_no,
                    RefundState::Failed,
                    None,
                    &detail,
                    (EventKind::Refund, Outcome::NeedsAttention),
                )
                .await?;
            }
            Err(e) => {
                tracing::warn!(out_refund_no, error = %e, "refund request got no usable answer; will retry");
                events::record(
                    &self.pool,
                    Some(order_id),
                    EventKind::Refund,
                    Outcome::Info,
                    &format!("refund {out_refund_no}: no answer from WeChat ({e}); will retry"),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Money that arrived for an order that cannot take it (closed, or paid by another
    /// transaction) goes back in full, once per WeChat transaction.
    pub(super) async fn refund_unexpected(
        &self,
        order_id: i64,
        order_no: &str,
        transaction_id: &str,
        total_fee: i64,
    ) -> Result<()> {
        let out_refund_no = automatic_refund_no(transaction_id);
        let now = now();
        let inserted: Option<i64> = crate::sql!(&self.pool, e => sqlx::query_scalar(
            "INSERT INTO refunds (order_id, out_refund_no, transaction_id, amount_fen, total_fen, \
               kind, status, reason, created_at, updated_at, retry_at) \
             VALUES ($1, $2, $3, $4, $4, 'automatic', 'processing', $5, $6, $6, $7) \
             ON CONFLICT (out_refund_no) DO NOTHING RETURNING id",
        )
        .bind(order_id)
        .bind(&out_refund_no)
        .bind(transaction_id)
        .bind(total_fee)
        .bind("订单已关闭，款项原路退回")
        .bind(now)
        .bind(now + backoff_secs(0))
        .fetch_optional(e).await)?;
        if inserted.is_none() {
            return Ok(()); // Already being refunded: WeChat repeated itself.
        }
        tracing::error!(
            order_no,
            transaction_id,
            out_refund_no,
            total_fee,
            "automatic full refund of a payment the order could not take"
        );
        self.send_refund(
            order_id,
            order_no,
            &out_refund_no,
            total_fee,
            total_fee,
            "订单已关闭，款项原路退回",
        )
        .await
    }

    /// Applies a verified refund notification. A refund the shop does not know, of one of its
    /// orders, was made outside the shop (WeChat's merchant platform): it is recorded as such.
    pub async fn on_refund_notification(
        &self,
        notice: &RefundNotice,
        kind: EventKind,
    ) -> Result<(Outcome, String)> {
        let Some(state) = state_of(&notice.status) else {
            return Ok((Outcome::Info, "refund still processing".into()));
        };
        let known = self.refund_record(&notice.out_refund_no).await?;
        let order: Option<(i64, i64)> = crate::sql!(&self.pool, e => sqlx::query_as("SELECT id, total_fee FROM orders WHERE order_no = $1")
                .bind(&notice.out_trade_no)
                .fetch_optional(e).await)?;
        let Some((order_id, _)) = order else {
            let why = format!(
                "refund {} for unknown order {}",
                notice.out_refund_no, notice.out_trade_no
            );
            events::record(&self.pool, None, kind, Outcome::Refused, &why).await?;
            return Ok((Outcome::Refused, why));
        };
        match &known {
            Some(r) if r.order_id != order_id || r.amount_fen != notice.refund_fee => {
                let why = format!(
                    "refund {}: WeChat reports {} fen of order {}, the shop asked for {} fen",
                    notice.out_refund_no, notice.refund_fee, notice.out_trade_no, r.amount_fen
                );
                tracing::error!(why, "refund notification does not match");
                events::record(&self.pool, Some(order_id), kind, Outcome::Refused, &why).await?;
                return Ok((Outcome::Refused, why));
            }
            Some(_) => {}
            None => {
                let now = now();
                crate::sql!(&self.pool, e => sqlx::query(
                    "INSERT INTO refunds (order_id, out_refund_no, refund_id, transaction_id, \
                       amount_fen, total_fen, kind, status, reason, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'external', 'processing', $7, $8, $8) \
                     ON CONFLICT (out_refund_no) DO NOTHING",
                )
                .bind(order_id)
                .bind(&notice.out_refund_no)
                .bind(&notice.refund_id)
                .bind(&notice.transaction_id)
                .bind(notice.refund_fee)
                .bind(notice.total_fee.max(notice.refund_fee))
                .bind("在微信支付商户平台发起的退款")
                .bind(now)
                .execute(e).await.map(crate::db::Done::from))?;
                tracing::warn!(out_refund_no = %notice.out_refund_no, "refund made outside the shop recorded");
            }
        }
        let outcome = if state == RefundState::Succeeded {
            Outcome::Accepted
        } else {
            Outcome::NeedsAttention
        };
        let settled = settle_refund(
            &self.pool,
            &notice.out_refund_no,
            state,
            Some(&notice.refund_id),
            &format!("refund notification: {}", state.as_str()),
            (kind, outcome),
        )
        .await?;
        Ok(match settled {
            Settled::Changed { .. } => {
                if outcome == Outcome::NeedsAttention {
                    tracing::error!(out_refund_no = %notice.out_refund_no, state = state.as_str(), "refund did not go through");
                }
                (outcome, state.as_str().into())
            }
            Settled::AlreadySettled { state: was } => {
                events::record(
                    &self.pool,
                    Some(order_id),
                    kind,
                    Outcome::Duplicate,
                    &format!("refund {} already {}", notice.out_refund_no, was.as_str()),
                )
                .await?;
                (Outcome::Duplicate, was.as_str().into())
            }
            Settled::Unknown => (Outcome::Refused, "unknown refund".into()),
        })
    }

    /// Refunds still processing a while after they were asked for: sent again when WeChat never
    /// confirmed them, otherwise queried (a lost notification). Returns (settled, deferred).
    pub(super) async fn reconcile_refunds(&self, now: i64) -> Result<(usize, usize)> {
        // Claimed with a lease, as the orders are (`Payments::claim_orders`): several instances
        // sweeping at once never ask WeChat twice about one refund, nor send it twice.
        let sql = format!(
            "UPDATE refunds SET retry_at = $3 WHERE id IN \
               (SELECT id FROM refunds WHERE status = 'processing' \
                  AND (retry_at IS NULL OR retry_at <= $1) AND updated_at <= $2 \
                ORDER BY retry_at LIMIT 200{skip}) \
             AND status = 'processing' AND (retry_at IS NULL OR retry_at <= $1) RETURNING id",
            skip = self.pool.backend().skip_locked(),
        );
        let mut claimed: Vec<i64> = crate::sql!(&self.pool, e => sqlx::query_scalar(&sql)
            .bind(now)
            .bind(now - self.cfg.reconcile_after.as_secs() as i64)
            .bind(now + super::lifecycle::LEASE_SECS)
            .fetch_all(e).await)?;
        claimed.sort_unstable();
        let mut due: Vec<DueRefund> = Vec::with_capacity(claimed.len());
        for id in claimed {
            due.extend(crate::sql!(&self.pool, e => sqlx::query_as(
                "SELECT r.order_id, r.out_refund_no, r.refund_id, r.total_fen, r.amount_fen, r.reason, \
                   o.order_no, r.retries FROM refunds r JOIN orders o ON o.id = r.order_id \
                 WHERE r.id = $1",
            )
            .bind(id)
            .fetch_optional(e).await)?);
        }
        let (mut settled, mut deferred) = (0, 0);
        for (order_id, out_refund_no, refund_id, total, amount, reason, order_no, retries) in due {
            if refund_id.is_none() {
                self.send_refund(order_id, &order_no, &out_refund_no, total, amount, &reason)
                    .await?;
            } else {
                match self.gateway.query_refund(&out_refund_no).await {
                    Ok(r) => {
                        if let Some(state) = state_of(&r.status) {
                            let s = settle_refund(
                                &self.pool,
                                &out_refund_no,
                                state,
                                Some(&r.refund_id),
                                "WeChat's refund query",
                                (
                                    EventKind::RefundQuery,
                                    if state == RefundState::Succeeded {
                                        Outcome::Accepted
                                    } else {
                                        Outcome::NeedsAttention
                                    },
                                ),
                            )
                            .await?;
                            if matches!(s, Settled::Changed { .. }) {
                                settled += 1;
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(out_refund_no, error = %e, "refund query failed");
                        deferred += 1;
                    }
                }
            }
            crate::sql!(&self.pool, e => sqlx::query(
                "UPDATE refunds SET retry_at = $1, retries = retries + 1 \
                 WHERE out_refund_no = $2 AND status = 'processing'",
            )
            .bind(now + backoff_secs(retries))
            .bind(&out_refund_no)
            .execute(e).await.map(crate::db::Done::from))?;
        }
        Ok((settled, deferred))
    }
}

/// Every refund of an order, oldest first.
pub async fn refunds_of<'a>(
    pool: impl Into<crate::db::Exec<'a>>,
    order_id: i64,
) -> std::result::Result<Vec<RefundRecord>, sqlx::Error> {
    let pool: crate::db::Exec<'a> = pool.into();
    crate::sql!(pool, e => sqlx::query_as(&format!(
        "SELECT {RECORD_COLUMNS} FROM refunds WHERE order_id = $1 ORDER BY id"
    ))
    .bind(order_id)
    .fetch_all(e).await)
}

/// The refunds the shopper sees on the order page.
pub async fn views_of<'a>(
    pool: impl Into<crate::db::Exec<'a>>,
    order_id: i64,
) -> std::result::Result<Vec<RefundView>, sqlx::Error> {
    Ok(refunds_of(pool, order_id)
        .await?
        .into_iter()
        .map(|r| RefundView {
            out_refund_no: r.out_refund_no,
            amount_fen: r.amount_fen,
            state: RefundState::parse(&r.status).unwrap_or(RefundState::Failed),
            reason: r.reason,
            created_at: r.created_at,
            succeeded_at: r.succeeded_at,
        })
        .collect())
}

/// A refund the sweeper settles: order_id, out_refund_no, refund_id, total_fen, amount_fen,
/// reason, order_no, retries.
type DueRefund = (i64, String, Option<String>, i64, i64, String, String, i64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refund_numbers_are_stable_per_request_and_fit_wechat() {
        let lines = [RefundLine {
            line_no: 1,
            quantity: 2,
        }];
        let a = merchant_refund_no("202612041200001234567890", 100, &lines, "破损", true);
        assert_eq!(
            a,
            merchant_refund_no("202612041200001234567890", 100, &lines, "破损", true)
        );
        assert_ne!(
            a,
            merchant_refund_no("202612041200001234567890", 100, &lines, "破损", false)
        );
        assert_ne!(
            a,
            merchant_refund_no("202612041200001234567890", 101, &lines, "破损", true)
        );
        assert_ne!(
            a,
            merchant_refund_no("202612041200001234567891", 100, &lines, "破损", true)
        );
        let auto = automatic_refund_no("4200000001202612040123456789");
        assert_eq!(auto, "A4200000001202612040123456789");
        for n in [a, auto, automatic_refund_no(&"x-".repeat(40))] {
            assert!((6..=32).contains(&n.len()), "{n}");
            assert!(n.bytes().all(|b| b.is_ascii_alphanumeric()), "{n}");
        }
    }
}
