//! The console's after-sales (售后): `list_aftersales`, `decide_aftersale`, `receive_return`.
//!
//! A request moves `pending → awaiting_return → refunding → approved` (退货退款) or
//! `pending → refunding → approved` (仅退款), or ends `refused`; each move is one conditional
//! UPDATE, so two people deciding at once cannot both win. `refunding` fixes the amount (what is
//! left to refund when approved) before the payments service is called; the refund's reason
//! names the request, so a retry after a crash or a WeChat error finds the refund already made
//! instead of making a second one. Approving (money leaves) is for owners; staff may refuse.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::accounts::Role;
use super::{audit, error, field, internal, invalid, parse, signed_in, Admin, AdminState};
use app::error::{ApiError, ErrorCode};
use app::model::{AftersaleKind, AftersaleStatus};

/// Requests per page of `list_aftersales`.
const PAGE_SIZE: i64 = 20;
/// Longest word to the shopper (characters).
const DECISION_MAX: usize = 100;
/// A `refunding` request is being refunded by whoever claimed it this recently; after that a
/// retry may take it over (its first attempt died or gave up).
const REFUND_LEASE_SECS: i64 = 60;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct ListBody {
    status: Option<String>,
    page: Option<i64>,
}

pub(super) async fn list_aftersales(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = signed_in(&st, &headers).await {
        return r;
    }
    let b: ListBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Some(s) = &b.status {
        if AftersaleStatus::parse(s).is_none() {
            return error(ErrorCode::BadRequest, "未知的售后状态");
        }
    }
    let page = b.page.unwrap_or(1).max(1);
    #[allow(clippy::type_complexity)]
    let rows: Result<
        Vec<(
            i64,
            i64,
            String,
            String,
            String,
            String,
            String,
            Option<i64>,
            String,
            i64,
            Option<i64>,
            Option<String>,
            String,
            i64,
            String,
        )>,
        _,
    > = crate::sql!(&st.pool, e => sqlx::query_as(
        "SELECT a.id, a.order_id, o.order_no, a.kind, a.status, a.reason, a.note, a.refund_fen, \
         a.decision_reason, a.created_at, a.decided_at, a.out_refund_no, o.status, o.total_fee, \
         o.ship_name FROM aftersales a JOIN orders o ON o.id = a.order_id \
         WHERE ($1 IS NULL OR a.status = $1) \
         ORDER BY a.created_at DESC, a.id DESC LIMIT $2 OFFSET $3",
    )
    .bind(b.status.as_deref())
    .bind(PAGE_SIZE + 1)
    .bind((page - 1) * PAGE_SIZE)
    .fetch_all(e).await);
    let mut rows = match rows {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let more = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    let list: Vec<Value> = rows
        .into_iter()
        .map(
            |(
                id,
                order_id,
                order_no,
                kind,
                status,
                reason,
                note,
                refund_fen,
                decision,
                created,
                decided,
                refund_no,
                order_status,
                total,
                recipient,
            )| {
                json!({
                    "aftersale_id": id, "order_id": order_id, "order_no": order_no,
                    "kind": kind, "status": status, "reason": reason, "note": note,
                    "refund_fen": refund_fen, "decision_reason": decision,
                    "created_at": created, "decided_at": decided, "out_refund_no": refund_no,
                    "order_status": order_status, "total_fee": total, "recipient": recipient,
                })
            },
        )
        .collect();
    Json(json!({"aftersales": list, "page": page, "more": more})).into_response()
}

#[derive(sqlx::FromRow)]
struct Request {
    id: i64,
    order_id: i64,
    kind: String,
    status: String,
    reason: String,
    refund_fen: Option<i64>,
    restock: bool,
}

async fn load(st: &AdminState, id: i64) -> Result<Request, Response> {
    let row: Option<Request> = crate::sql!(&st.pool, e => sqlx::query_as(
        "SELECT id, order_id, kind, status, reason, refund_fen, restock FROM aftersales WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(e).await)
    .map_err(internal)?;
    row.ok_or_else(|| error(ErrorCode::NotFound, "售后申请不存在"))
}

/// What is left of the order's payment to give back (fen), and whether the goods never left.
async fn refundable(st: &AdminState, order_id: i64) -> Result<(i64, bool), sqlx::Error> {
    let (total, status): (i64, String) = crate::sql!(&st.pool, e => sqlx::query_as(
        "SELECT total_fee, status FROM orders WHERE id = $1",
    )
    .bind(order_id)
    .fetch_one(e).await)?;
    let committed = crate::payments::refunds::committed_fen(&st.pool, order_id).await?;
    Ok((total - committed, status == "paid"))
}

/// The refund's reason: names the request, so a retry finds the refund it already made.
fn refund_reason(req: &Request) -> String {
    let reason: String = req.reason.chars().take(50).collect();
    format!("售后 #{}：{}", req.id, reason)
}

/// Hands the refund of a `refunding` request to the payments service (or finds the one a
/// previous attempt made), then marks the request `approved`.
async fn refund(st: &AdminState, admin: &Admin, req: &Request) -> Response {
    let Some(amount) = req.refund_fen else {
        return internal("a refunding after-sales request without an amount");
    };
    let reason = refund_reason(req);
    let made: Option<String> = match crate::sql!(&st.pool, e => sqlx::query_scalar(
        "SELECT out_refund_no FROM refunds WHERE order_id = $1 AND reason = $2 \
         AND status IN ('processing', 'succeeded') ORDER BY id LIMIT 1",
    )
    .bind(req.order_id)
    .bind(&reason)
    .fetch_optional(e).await)
    {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let out_refund_no = match made {
        Some(no) => no,
        None => {
            // Restocking names the lines: every unit not refunded yet.
            let lines: Vec<(i64, i64)> = if req.restock {
                match crate::sql!(&st.pool, e => sqlx::query_as(
                    "SELECT l.line_no + 1, l.quantity - (SELECT CAST(COALESCE(SUM(rl.quantity), 0) AS BIGINT) \
                       FROM refund_lines rl JOIN refunds r ON r.id = rl.refund_id \
                       WHERE r.order_id = l.order_id AND rl.line_no = l.line_no \
                       AND r.status IN ('processing', 'succeeded')) \
                     FROM order_lines l WHERE l.order_id = $1 ORDER BY l.line_no",
                )
                .bind(req.order_id)
                .fetch_all(e).await)
                {
                    Ok(l) => l.into_iter().filter(|(_, q)| *q > 0).collect(),
                    Err(e) => return internal(e),
                }
            } else {
                Vec::new()
            };
            let request = crate::payments::RefundRequest {
                order: req.order_id.to_string(),
                amount_fen: Some(amount),
                restock: !lines.is_empty(),
                lines: lines
                    .into_iter()
                    .map(|(line_no, quantity)| crate::payments::RefundLine { line_no, quantity })
                    .collect(),
                reason: reason.clone(),
            };
            match st.payments.refund(&request).await {
                Ok(outcome) => outcome.refund.out_refund_no,
                Err(e) => {
                    // The request stays `refunding`, released: deciding again retries with the
                    // same amount.
                    let _ = crate::sql!(&st.pool, e => sqlx::query(
                        "UPDATE aftersales SET refund_claimed_at = NULL WHERE id = $1 AND status = 'refunding'",
                    )
                    .bind(req.id)
                    .execute(e).await.map(crate::db::Done::from));
                    let api: ApiError = e.into();
                    tracing::warn!(aftersale = req.id, error = %api.message, "after-sales refund failed");
                    let status = axum::http::StatusCode::from_u16(api.code.http_status())
                        .unwrap_or(axum::http::StatusCode::BAD_REQUEST);
                    return (status, Json(api)).into_response();
                }
            }
        }
    };
    let now = crate::shop::now();
    if let Err(e) = crate::sql!(&st.pool, e => sqlx::query(
        "UPDATE aftersales SET status = 'approved', out_refund_no = $1, closed_at = $2 \
         WHERE id = $3 AND status = 'refunding'",
    )
    .bind(&out_refund_no)
    .bind(now)
    .bind(req.id)
    .execute(e).await.map(crate::db::Done::from))
    {
        return internal(e);
    }
    let detail = json!({"aftersale_id": req.id, "order_id": req.order_id, "amount_fen": amount,
        "out_refund_no": out_refund_no, "restock": req.restock});
    if let Err(e) = audit(&st.pool, admin, "aftersale_refund", detail).await {
        return internal(e);
    }
    Json(
        json!({"aftersale_id": req.id, "status": "approved", "refund_fen": amount,
        "out_refund_no": out_refund_no}),
    )
    .into_response()
}

/// A retry of a `refunding` request takes it over only when no attempt holds it (409 otherwise:
/// the first attempt is still talking to WeChat).
async fn retake(st: &AdminState, req: &Request) -> Result<(), Response> {
    let now = crate::shop::now();
    let done = crate::sql!(&st.pool, e => sqlx::query(
        "UPDATE aftersales SET refund_claimed_at = $1 WHERE id = $2 AND status = 'refunding' \
         AND (refund_claimed_at IS NULL OR refund_claimed_at < $3)",
    )
    .bind(now)
    .bind(req.id)
    .bind(now - REFUND_LEASE_SECS)
    .execute(e).await.map(crate::db::Done::from))
    .map_err(internal)?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(error(
            ErrorCode::InvalidState,
            "退款正在处理中，请稍后刷新（一分钟后仍未完成可再次同意以重试）",
        ))
    }
}

/// `pending | awaiting_return → refunding` with the amount fixed; false when someone else moved
/// the request first.
async fn claim_refund(
    st: &AdminState,
    admin: &Admin,
    req: &mut Request,
    from: &str,
    restock: Option<bool>,
    decision: Option<&str>,
) -> Result<(), Response> {
    let (left, unshipped) = refundable(st, req.order_id).await.map_err(internal)?;
    if left <= 0 {
        return Err(error(ErrorCode::InvalidState, "订单已全额退款，无可退金额"));
    }
    // Goods that never left, or came back, go back on the shelf unless told otherwise.
    let restock = restock.unwrap_or(unshipped || from == "awaiting_return");
    let now = crate::shop::now();
    let received = (from == "awaiting_return").then_some(now);
    let done = crate::sql!(&st.pool, e => sqlx::query(
        "UPDATE aftersales SET status = 'refunding', refund_fen = $1, restock = $2, \
         decided_by = COALESCE(decided_by, $3), decided_at = COALESCE(decided_at, $4), \
         received_at = COALESCE($5, received_at), \
         decision_reason = CASE WHEN $6 = '' THEN decision_reason ELSE $6 END, \
         refund_claimed_at = $4 \
         WHERE id = $7 AND status = $8",
    )
    .bind(left)
    .bind(restock)
    .bind(admin.id)
    .bind(now)
    .bind(received)
    .bind(decision.unwrap_or(""))
    .bind(req.id)
    .bind(from)
    .execute(e).await.map(crate::db::Done::from))
    .map_err(internal)?;
    if done.rows_affected() != 1 {
        return Err(error(ErrorCode::InvalidState, "售后申请已被处理，请刷新"));
    }
    req.status = "refunding".into();
    req.refund_fen = Some(left);
    req.restock = restock;
    Ok(())
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct DecideBody {
    aftersale_id: i64,
    approve: bool,
    /// Why refused (required then); for an approved return, where to send the goods.
    reason: Option<String>,
    /// Put the goods back in stock with the refund (default: when they never left or came back).
    restock: Option<bool>,
}

/// `decide_aftersale`: approve (仅退款: the refund now; 退货退款: wait for the goods) or refuse.
/// Approving a `refunding` request again retries its refund.
pub(super) async fn decide_aftersale(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let admin = match signed_in(&st, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let b: DecideBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let decision = b.reason.as_deref().map(str::trim).unwrap_or("");
    if decision.chars().count() > DECISION_MAX {
        return invalid(vec![field(
            "reason",
            &format!("说明最多 {DECISION_MAX} 字"),
        )]);
    }
    let mut req = match load(&st, b.aftersale_id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let now = crate::shop::now();
    if !b.approve {
        if decision.is_empty() {
            return invalid(vec![field("reason", "请填写拒绝原因，顾客会看到它")]);
        }
        let done = crate::sql!(&st.pool, e => sqlx::query(
            "UPDATE aftersales SET status = 'refused', decision_reason = $1, decided_by = $2, \
             decided_at = $3, closed_at = $3 WHERE id = $4 AND status IN ('pending', 'awaiting_return')",
        )
        .bind(decision)
        .bind(admin.id)
        .bind(now)
        .bind(req.id)
        .execute(e).await.map(crate::db::Done::from));
        match done {
            Ok(d) if d.rows_affected() == 1 => {}
            Ok(_) => return error(ErrorCode::InvalidState, "售后申请已被处理，不能再拒绝"),
            Err(e) => return internal(e),
        }
        let detail = json!({"aftersale_id": req.id, "order_id": req.order_id, "approve": false,
            "reason": decision});
        if let Err(e) = audit(&st.pool, &admin, "decide_aftersale", detail).await {
            return internal(e);
        }
        return Json(json!({"aftersale_id": req.id, "status": "refused"})).into_response();
    }
    if admin.role != Role::Owner {
        return error(ErrorCode::Forbidden, "只有店主可以同意退款");
    }
    let kind = AftersaleKind::parse(&req.kind).unwrap_or(AftersaleKind::RefundOnly);
    match (req.status.as_str(), kind) {
        ("pending", AftersaleKind::ReturnRefund) => {
            let done = crate::sql!(&st.pool, e => sqlx::query(
                "UPDATE aftersales SET status = 'awaiting_return', decision_reason = $1, \
                 decided_by = $2, decided_at = $3 WHERE id = $4 AND status = 'pending'",
            )
            .bind(decision)
            .bind(admin.id)
            .bind(now)
            .bind(req.id)
            .execute(e).await.map(crate::db::Done::from));
            match done {
                Ok(d) if d.rows_affected() == 1 => {}
                Ok(_) => return error(ErrorCode::InvalidState, "售后申请已被处理，请刷新"),
                Err(e) => return internal(e),
            }
            let detail = json!({"aftersale_id": req.id, "order_id": req.order_id,
                "approve": true, "reason": decision});
            if let Err(e) = audit(&st.pool, &admin, "decide_aftersale", detail).await {
                return internal(e);
            }
            Json(json!({"aftersale_id": req.id, "status": "awaiting_return"})).into_response()
        }
        ("pending", AftersaleKind::RefundOnly) => {
            if let Err(r) =
                claim_refund(&st, &admin, &mut req, "pending", b.restock, Some(decision)).await
            {
                return r;
            }
            let detail = json!({"aftersale_id": req.id, "order_id": req.order_id,
                "approve": true, "reason": decision, "refund_fen": req.refund_fen});
            if let Err(e) = audit(&st.pool, &admin, "decide_aftersale", detail).await {
                return internal(e);
            }
            refund(&st, &admin, &req).await
        }
        ("refunding", _) => match retake(&st, &req).await {
            Ok(()) => refund(&st, &admin, &req).await,
            Err(r) => r,
        },
        ("awaiting_return", _) => error(
            ErrorCode::InvalidState,
            "已同意退货，收到退回的商品后请用 receive_return 退款",
        ),
        _ => error(ErrorCode::InvalidState, "售后申请已处理完毕"),
    }
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct ReceiveBody {
    aftersale_id: i64,
    restock: Option<bool>,
}

/// `receive_return`: the returned goods arrived (退货退款) — the refund follows (owner only).
pub(super) async fn receive_return(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let admin = match signed_in(&st, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if admin.role != Role::Owner {
        return error(ErrorCode::Forbidden, "只有店主可以同意退款");
    }
    let b: ReceiveBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut req = match load(&st, b.aftersale_id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    match req.status.as_str() {
        "awaiting_return" => {}
        "refunding" => {
            return match retake(&st, &req).await {
                Ok(()) => refund(&st, &admin, &req).await,
                Err(r) => r,
            }
        }
        _ => return error(ErrorCode::InvalidState, "该售后申请不在等待退货"),
    }
    if let Err(r) = claim_refund(&st, &admin, &mut req, "awaiting_return", b.restock, None).await {
        return r;
    }
    let detail = json!({"aftersale_id": req.id, "order_id": req.order_id,
        "refund_fen": req.refund_fen, "restock": req.restock});
    if let Err(e) = audit(&st.pool, &admin, "receive_return", detail).await {
        return internal(e);
    }
    refund(&st, &admin, &req).await
}
