//! After-sales requests (售后), the shopper's side: `request_aftersale` on a paid or shipped order
//! and the latest request on the order page. The merchant's side — approve (the refund follows),
//! the return received, refuse — is `admin/aftersales.rs`.
//!
//! One open request per order (a partial unique index, so two taps cannot make two); at most
//! [`MAX_PER_ORDER`] requests per order in all, so a refused shopper can ask again, but not
//! without bound.

use super::{db_error, now};
use crate::db::Db;
use app::error::{ApiError, ErrorCode};
use app::model::{AftersaleKind, AftersaleStatus, AftersaleView, FieldError};
use app::port::Result;

/// Requests an order may have in all (open or decided).
pub const MAX_PER_ORDER: i64 = 3;
/// Longest reason and note (characters).
pub const REASON_MAX: usize = 50;
pub const NOTE_MAX: usize = 200;
/// The statuses of an open request, as SQL.
pub const OPEN: &str = "('pending', 'awaiting_return', 'refunding')";

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    kind: String,
    status: String,
    reason: String,
    note: String,
    refund_fen: Option<i64>,
    decision_reason: String,
    created_at: i64,
    decided_at: Option<i64>,
    received_at: Option<i64>,
}

impl Row {
    fn view(self) -> Option<AftersaleView> {
        Some(AftersaleView {
            aftersale_id: self.id,
            kind: AftersaleKind::parse(&self.kind)?,
            status: AftersaleStatus::parse(&self.status)?,
            reason: self.reason,
            note: self.note,
            refund_fen: self.refund_fen,
            decision_reason: self.decision_reason,
            created_at: self.created_at,
            decided_at: self.decided_at,
            received_at: self.received_at,
        })
    }
}

/// The order's latest request.
pub async fn latest<'a>(
    pool: impl Into<crate::db::Exec<'a>>,
    order_id: i64,
) -> std::result::Result<Option<AftersaleView>, sqlx::Error> {
    let pool: crate::db::Exec<'a> = pool.into();
    let row: Option<Row> = crate::sql!(pool, e => sqlx::query_as(
        "SELECT id, kind, status, reason, note, refund_fen, decision_reason, created_at, \
         decided_at, received_at FROM aftersales WHERE order_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(order_id)
    .fetch_optional(e).await)?;
    Ok(row.and_then(Row::view))
}

fn validate(kind: AftersaleKind, reason: &str, note: &str, status: &str) -> Result<()> {
    let mut fields = Vec::new();
    if reason.is_empty() || reason.chars().count() > REASON_MAX {
        fields.push(FieldError {
            field: "reason".into(),
            message: format!("请选择或填写售后原因（最多 {REASON_MAX} 字）"),
        });
    }
    if note.chars().count() > NOTE_MAX {
        fields.push(FieldError {
            field: "note".into(),
            message: format!("补充说明最多 {NOTE_MAX} 字"),
        });
    }
    if kind == AftersaleKind::ReturnRefund && status == "paid" {
        fields.push(FieldError {
            field: "kind".into(),
            message: "商品还没有发货，请选择仅退款".into(),
        });
    }
    if fields.is_empty() {
        Ok(())
    } else {
        Err(ApiError::validation(fields))
    }
}

/// The shopper asks for 仅退款 or 退货退款 on one of their paid or shipped orders.
pub async fn request(
    pool: &Db,
    user: Option<i64>,
    order_id: i64,
    kind: AftersaleKind,
    reason: &str,
    note: &str,
) -> Result<AftersaleView> {
    let Some(user) = user else {
        return Err(ApiError::not_found("订单"));
    };
    let reason = reason.trim();
    let note = note.trim();
    let status: Option<String> = crate::sql!(pool, e => sqlx::query_scalar(
        "SELECT status FROM orders WHERE id = $1 AND user_id = $2",
    )
    .bind(order_id)
    .bind(user)
    .fetch_optional(e).await)
    .map_err(db_error)?;
    let Some(status) = status else {
        return Err(ApiError::not_found("订单"));
    };
    if status != "paid" && status != "shipped" {
        return Err(ApiError::new(
            ErrorCode::InvalidState,
            "只有已支付或已发货的订单可以申请售后",
        ));
    }
    validate(kind, reason, note, &status)?;
    let now = now();
    // One statement: the order still paid or shipped, fewer than MAX_PER_ORDER requests so far;
    // the partial unique index refuses a second open one.
    let inserted = crate::sql!(pool, e => sqlx::query_scalar::<_, i64>(
        "INSERT INTO aftersales (order_id, user_id, kind, reason, note, status, created_at) \
         SELECT $1, $2, $3, $4, $5, 'pending', $6 \
         WHERE EXISTS (SELECT 1 FROM orders WHERE id = $1 AND status IN ('paid', 'shipped')) \
         AND (SELECT COUNT(*) FROM aftersales WHERE order_id = $1) < $7 \
         RETURNING id",
    )
    .bind(order_id)
    .bind(user)
    .bind(kind.as_str())
    .bind(reason)
    .bind(note)
    .bind(now)
    .bind(MAX_PER_ORDER)
    .fetch_optional(e).await);
    match inserted {
        Ok(Some(_)) => {}
        Ok(None) => {
            // The order moved on since it was read, or it has had its requests.
            let count: i64 = crate::sql!(pool, e => sqlx::query_scalar(
                "SELECT COUNT(*) FROM aftersales WHERE order_id = $1",
            )
            .bind(order_id)
            .fetch_one(e).await)
            .map_err(db_error)?;
            return Err(ApiError::new(
                ErrorCode::InvalidState,
                if count >= MAX_PER_ORDER {
                    format!("该订单的售后申请已达 {MAX_PER_ORDER} 次，请联系商家")
                } else {
                    "订单状态已变化，请刷新后再试".to_string()
                },
            ));
        }
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
            return Err(ApiError::new(
                ErrorCode::InvalidState,
                "该订单已有处理中的售后申请",
            ))
        }
        Err(e) => return Err(db_error(e)),
    }
    tracing::info!(order_id, kind = kind.as_str(), "after-sales requested");
    latest(pool, order_id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| ApiError::not_found("售后申请"))
}
