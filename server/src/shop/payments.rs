//! Paying an order with WeChat Pay: the pay parameters for the page, the one `unpaid → paid`
//! transition (shared by notifications, order queries and the reconciler), and the
//! append-only `payment_events` log.

use super::{db_error, now};
use crate::wx::Wechat;
use app::error::{ApiError, ErrorCode};
use app::model::WxPayParams;
use app::port::Result;
use sqlx::SqlitePool;
use wechat::{PayParams, PrepayId, PrepayRequest};

/// A prepay_id is valid for 2 hours; it is reused only while comfortably inside that.
const PREPAY_REUSE_SECS: i64 = 2 * 3600 - 10 * 60;

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
    /// The order is paid by another transaction, or closed: money arrived that the shop did not
    /// expect. Nothing changes; it needs a person (refund).
    Unexpected(String),
}

impl Applied {
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::UnknownOrder | Self::AmountMismatch { .. } => "refused",
            Self::Unexpected(_) => "info",
        }
    }

    /// WeChat should stop sending this notification.
    pub fn acknowledge(&self) -> bool {
        !matches!(self, Self::UnknownOrder | Self::AmountMismatch { .. })
    }
}

/// Appends to `payment_events`. `detail` must never hold a secret.
pub async fn record_event(
    pool: &SqlitePool,
    order_id: Option<i64>,
    kind: &str,
    outcome: &str,
    detail: &str,
) -> Result<()> {
    let detail: String = detail.chars().take(500).collect();
    sqlx::query(
        "INSERT INTO payment_events (order_id, kind, outcome, detail, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(order_id)
    .bind(kind)
    .bind(outcome)
    .bind(detail)
    .bind(now())
    .execute(pool)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// The `unpaid → paid` transition, in ONE conditional UPDATE so that concurrent deliveries of
/// the same notification (and a query racing them) change the order exactly once. The event
/// is written in the same transaction, so the log and the order always agree.
pub async fn apply_paid(
    pool: &SqlitePool,
    order_no: &str,
    transaction_id: &str,
    total_fee: i64,
    kind: &str,
) -> Result<(Applied, Option<i64>)> {
    let mut tx = pool.begin().await.map_err(db_error)?;
    // A write first: SQLite takes the write lock now, so concurrent deliveries queue here
    // instead of failing on a read→write upgrade.
    let paid = sqlx::query_scalar::<_, i64>(
        "UPDATE orders SET status = 'paid', paid_at = $1, transaction_id = $2 \
         WHERE order_no = $3 AND status = 'unpaid' AND total_fee = $4 RETURNING id",
    )
    .bind(now())
    .bind(transaction_id)
    .bind(order_no)
    .bind(total_fee)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_error)?;
    let (applied, order_id) = match paid {
        Some(id) => (Applied::Accepted, Some(id)),
        None => {
            let row: Option<(i64, String, i64, Option<String>)> = sqlx::query_as(
                "SELECT id, status, total_fee, transaction_id FROM orders WHERE order_no = $1",
            )
            .bind(order_no)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
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
                    Applied::Unexpected(format!(
                        "order is {status}, payment {transaction_id} needs a refund"
                    )),
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
        Applied::Unexpected(why) => why.clone(),
    };
    sqlx::query(
        "INSERT INTO payment_events (order_id, kind, outcome, detail, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(order_id)
    .bind(kind)
    .bind(applied.outcome())
    .bind(&detail)
    .bind(now())
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    match &applied {
        Applied::Accepted => tracing::info!(order_no, transaction_id, kind, "order paid"),
        Applied::Duplicate => tracing::debug!(order_no, kind, "payment already recorded"),
        Applied::Unexpected(why) => tracing::error!(order_no, kind, why, "unexpected payment"),
        other => tracing::warn!(order_no, kind, outcome = ?other, "payment report refused"),
    }
    Ok((applied, order_id))
}

/// Asks WeChat about an unpaid order and applies a verified SUCCESS. Returns whether the order
/// is paid now. WeChat being unreachable is not an error for the caller: the order just stays
/// unpaid until the next look.
pub async fn sync_with_wechat(pool: &SqlitePool, wx: &Wechat, order_no: &str) -> Result<bool> {
    let status = match wx.pay.query(order_no).await {
        Ok(s) => s,
        Err(e) if e.is_order_not_exist() => return Ok(false),
        Err(e) => {
            tracing::warn!(order_no, error = %e, "order query at WeChat failed");
            return Ok(false);
        }
    };
    if !status.trade_state.is_paid() {
        return Ok(false);
    }
    let order_id: Option<i64> = sqlx::query_scalar("SELECT id FROM orders WHERE order_no = $1")
        .bind(order_no)
        .fetch_optional(pool)
        .await
        .map_err(db_error)?;
    if status.appid != wx.appid || status.mchid != wx.mchid || status.out_trade_no != order_no {
        record_event(
            pool,
            order_id,
            "query",
            "refused",
            "answer for another appid/mchid/order",
        )
        .await?;
        return Ok(false);
    }
    let (Some(txid), Some(total)) = (status.transaction_id.as_deref(), status.total_fee) else {
        record_event(
            pool,
            order_id,
            "query",
            "refused",
            "paid answer without transaction_id or amount",
        )
        .await?;
        return Ok(false);
    };
    let (applied, _) = apply_paid(pool, order_no, txid, total, "query").await?;
    Ok(matches!(applied, Applied::Accepted | Applied::Duplicate))
}

#[derive(sqlx::FromRow)]
struct PayRow {
    id: i64,
    order_no: String,
    status: String,
    total_fee: i64,
    expires_at: i64,
    prepay_id: Option<String>,
    prepay_expires_at: Option<i64>,
    openid: Option<String>,
    title: Option<String>,
    lines: i64,
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "WeChat Pay call failed");
    ApiError::new(
        ErrorCode::PaymentUnavailable,
        "微信支付暂时不可用，请稍后再试",
    )
}

fn to_view(p: PayParams) -> WxPayParams {
    WxPayParams {
        app_id: p.app_id,
        time_stamp: p.time_stamp,
        nonce_str: p.nonce_str,
        package: p.package,
        sign_type: p.sign_type,
        pay_sign: p.pay_sign,
    }
}

/// The page's pay parameters for one of `user`'s orders.
pub async fn pay_order(
    pool: &SqlitePool,
    wx: &Wechat,
    user: Option<i64>,
    order_id: i64,
    client_ip: &str,
) -> Result<WxPayParams> {
    let Some(user) = user else {
        return Err(ApiError::not_found("订单"));
    };
    let row: PayRow = sqlx::query_as(
        "SELECT o.id, o.order_no, o.status, o.total_fee, o.expires_at, o.prepay_id, \
           o.prepay_expires_at, u.openid, \
           (SELECT product_name FROM order_lines WHERE order_id = o.id AND line_no = 0) AS title, \
           (SELECT COUNT(*) FROM order_lines WHERE order_id = o.id) AS lines \
         FROM orders o JOIN users u ON u.id = o.user_id WHERE o.id = $1 AND o.user_id = $2",
    )
    .bind(order_id)
    .bind(user)
    .fetch_optional(pool)
    .await
    .map_err(db_error)?
    .ok_or_else(|| ApiError::not_found("订单"))?;
    if row.status != "unpaid" {
        return Err(ApiError::new(ErrorCode::InvalidState, "订单不是待支付状态"));
    }
    let now = now();
    if row.expires_at <= now {
        return Err(ApiError::new(
            ErrorCode::InvalidState,
            "订单已超时，请重新下单",
        ));
    }
    let Some(openid) = row.openid else {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "请在微信中打开本页并授权后再支付",
        ));
    };
    // A second tap within the prepay_id's life signs the same prepay afresh: no new WeChat
    // order, and WeChat never sees the same out_trade_no with different parameters.
    if let (Some(id), Some(exp)) = (&row.prepay_id, row.prepay_expires_at) {
        if exp > now {
            let params = wx
                .pay
                .pay_params(&PrepayId(id.clone()))
                .await
                .map_err(unavailable)?;
            return Ok(to_view(params));
        }
    }
    let title = row.title.unwrap_or_else(|| "商品".into());
    let description: String = if row.lines > 1 {
        format!("wxmall-{title}等{}件", row.lines)
    } else {
        format!("wxmall-{title}")
    }
    .chars()
    .take(127)
    .collect();
    let req = PrepayRequest {
        description,
        out_trade_no: row.order_no.clone(),
        total_fee: row.total_fee,
        openid,
        notify_url: wx.notify_url(),
        client_ip: client_ip.to_string(),
        time_expire: time::OffsetDateTime::from_unix_timestamp(row.expires_at).ok(),
        attach: None,
    };
    let (prepay_id, params) = match wx.pay.prepay(&req).await {
        Ok(ok) => ok,
        Err(e) if e.is_order_paid() => {
            sync_with_wechat(pool, wx, &row.order_no).await?;
            return Err(ApiError::new(ErrorCode::InvalidState, "订单已支付"));
        }
        Err(e) => {
            record_event(
                pool,
                Some(row.id),
                "prepay",
                "info",
                &format!("prepay failed: {e}"),
            )
            .await?;
            return Err(unavailable(e));
        }
    };
    sqlx::query(
        "UPDATE orders SET prepay_id = $1, prepay_expires_at = $2 WHERE id = $3 AND status = 'unpaid'",
    )
    .bind(prepay_id.as_str())
    .bind(now + PREPAY_REUSE_SECS)
    .bind(row.id)
    .execute(pool)
    .await
    .map_err(db_error)?;
    record_event(
        pool,
        Some(row.id),
        "prepay",
        "info",
        &format!("prepay_id {prepay_id}"),
    )
    .await?;
    Ok(to_view(params))
}

/// One order's payment history, for people answering "I paid, why is it unpaid?"
/// (`wxmall payments ORDER`).
#[derive(Clone, Debug, serde::Serialize, sqlx::FromRow)]
pub struct PaymentTrail {
    pub order_id: i64,
    pub order_no: String,
    pub status: String,
    pub total_fee: i64,
    pub transaction_id: Option<String>,
    pub created_at: i64,
    pub paid_at: Option<i64>,
    pub closed_at: Option<i64>,
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
pub async fn trail(
    pool: &SqlitePool,
    order: &str,
) -> std::result::Result<Option<PaymentTrail>, sqlx::Error> {
    let found: Option<PaymentTrail> = sqlx::query_as(
        "SELECT id AS order_id, order_no, status, total_fee, transaction_id, created_at, paid_at, \
         closed_at FROM orders WHERE order_no = $1 OR CAST(id AS TEXT) = $1 \
         ORDER BY order_no = $1 DESC LIMIT 1",
    )
    .bind(order)
    .fetch_optional(pool)
    .await?;
    let Some(mut trail) = found else {
        return Ok(None);
    };
    trail.events = sqlx::query_as(
        "SELECT created_at, kind, outcome, detail FROM payment_events WHERE order_id = $1 ORDER BY id",
    )
    .bind(trail.order_id)
    .fetch_all(pool)
    .await?;
    Ok(Some(trail))
}
