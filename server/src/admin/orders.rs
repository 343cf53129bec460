//! The console's orders: `list_orders` (filters, search, pages), `get_order`, `ship_order`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{audit, current, error, internal, unauthorized, AdminState};
use app::error::ErrorCode;

/// Orders per page of `list_orders`.
pub const PAGE_SIZE: i64 = 20;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct ListBody {
    status: Option<String>,
    /// An order number, WeChat transaction id, recipient or phone (or part of one).
    q: Option<String>,
    /// China dates, `YYYY-MM-DD`, inclusive.
    from: Option<String>,
    to: Option<String>,
    /// From 1.
    page: Option<i64>,
}

fn china_day(s: &str) -> Option<(i64, i64)> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s.trim(), &format)
        .ok()
        .map(crate::payments::reconcile::day_bounds)
}

pub(super) async fn list_orders(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match current(&st, &headers).await {
        Ok(Some(_)) => {}
        Ok(None) => return unauthorized(),
        Err(e) => return internal(e),
    }
    let b: ListBody = if body.is_empty() {
        ListBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => return error(ErrorCode::BadRequest, &format!("无法读取请求：{e}")),
        }
    };
    if let Some(s) = &b.status {
        if app::model::OrderStatus::parse(s).is_none() {
            return error(ErrorCode::BadRequest, "未知的订单状态");
        }
    }
    let from = match b.from.as_deref().map(china_day) {
        Some(None) => return error(ErrorCode::BadRequest, "from 须为日期 YYYY-MM-DD"),
        Some(Some((start, _))) => start,
        None => i64::MIN,
    };
    let to = match b.to.as_deref().map(china_day) {
        Some(None) => return error(ErrorCode::BadRequest, "to 须为日期 YYYY-MM-DD"),
        Some(Some((_, end))) => end,
        None => i64::MAX,
    };
    let page = b.page.unwrap_or(1).max(1);
    let q = b.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let like = q.map(|q| {
        format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    #[allow(clippy::type_complexity)]
    let rows: Result<
        Vec<(
            i64,
            String,
            String,
            i64,
            i64,
            i64,
            Option<i64>,
            String,
            String,
            Option<String>,
            i64,
        )>,
        _,
    > = crate::sql!(&st.pool, e => sqlx::query_as(
        "SELECT o.id, o.order_no, o.status, o.total_fee, o.refunded_fen, o.created_at, o.paid_at, \
         o.ship_name, o.ship_phone, o.transaction_id, \
         (SELECT CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM order_lines WHERE order_id = o.id) \
         FROM orders o \
         WHERE ($1 IS NULL OR o.status = $1) AND o.created_at >= $2 AND o.created_at < $3 \
         AND ($4 IS NULL OR o.order_no = $4 OR o.transaction_id = $4 \
              OR o.ship_name LIKE $5 ESCAPE '\\' OR o.ship_phone LIKE $5 ESCAPE '\\') \
         ORDER BY o.created_at DESC, o.id DESC LIMIT $6 OFFSET $7",
    )
    .bind(b.status.as_deref())
    .bind(from)
    .bind(to)
    .bind(q)
    .bind(like.as_deref())
    .bind(PAGE_SIZE + 1)
    .bind((page - 1) * PAGE_SIZE)
    .fetch_all(e).await);
    let mut rows = match rows {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let more = rows.len() as i64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    let orders: Vec<Value> = rows
        .into_iter()
        .map(
            |(id, no, status, total, refunded, created, paid, name, phone, txid, items)| {
                json!({
                    "order_id": id, "order_no": no, "status": status, "total_fee": total,
                    "refunded_fen": refunded, "created_at": created, "paid_at": paid,
                    "recipient": name, "phone": phone, "transaction_id": txid, "item_count": items,
                })
            },
        )
        .collect();
    Json(json!({"orders": orders, "page": page, "more": more})).into_response()
}

#[derive(Deserialize)]
pub(super) struct OrderBody {
    order_id: i64,
}

pub(super) async fn get_order(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match current(&st, &headers).await {
        Ok(Some(_)) => {}
        Ok(None) => return unauthorized(),
        Err(e) => return internal(e),
    }
    let Ok(b) = serde_json::from_slice::<OrderBody>(&body) else {
        return error(ErrorCode::BadRequest, "需要 order_id");
    };
    let user: Option<i64> = match crate::sql!(&st.pool, e => sqlx::query_scalar("SELECT user_id FROM orders WHERE id = $1")
        .bind(b.order_id)
        .fetch_optional(e).await)
    {
        Ok(u) => u,
        Err(e) => return internal(e),
    };
    let Some(user) = user else {
        return error(ErrorCode::NotFound, "订单不存在");
    };
    match crate::shop::orders::load(&st.pool, Some(user), b.order_id).await {
        Ok(order) => Json(order).into_response(),
        Err(e) => {
            let status = axum::http::StatusCode::from_u16(e.code.http_status())
                .unwrap_or(axum::http::StatusCode::BAD_REQUEST);
            (status, Json(e)).into_response()
        }
    }
}

#[derive(Deserialize)]
pub(super) struct ShipBody {
    order_id: i64,
    carrier: String,
    tracking_no: String,
}

/// `paid → shipped`, once (one conditional UPDATE); the shopper gets the "shipped" template
/// message when one is configured.
pub(super) async fn ship_order(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let admin = match current(&st, &headers).await {
        Ok(Some(a)) => a,
        Ok(None) => return unauthorized(),
        Err(e) => return internal(e),
    };
    let Ok(b) = serde_json::from_slice::<ShipBody>(&body) else {
        return error(ErrorCode::BadRequest, "需要 order_id、carrier、tracking_no");
    };
    let carrier = b.carrier.trim();
    let tracking = b.tracking_no.trim();
    let mut fields = Vec::new();
    if carrier.is_empty() || carrier.chars().count() > 20 {
        fields.push(app::model::FieldError {
            field: "carrier".into(),
            message: "请填写快递公司（最多 20 字）".into(),
        });
    }
    if !(4..=40).contains(&tracking.len())
        || !tracking
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-')
    {
        fields.push(app::model::FieldError {
            field: "tracking_no".into(),
            message: "运单号为 4–40 位字母、数字或 -".into(),
        });
    }
    if !fields.is_empty() {
        let e = app::error::ApiError::validation(fields);
        return (axum::http::StatusCode::BAD_REQUEST, Json(e)).into_response();
    }
    let now = crate::shop::now();
    let shipped: Option<i64> = match crate::sql!(&st.pool, e => sqlx::query_scalar(
        "UPDATE orders SET status = 'shipped', carrier = $1, tracking_no = $2, shipped_at = $3 \
         WHERE id = $4 AND status = 'paid' RETURNING id",
    )
    .bind(carrier)
    .bind(tracking)
    .bind(now)
    .bind(b.order_id)
    .fetch_optional(e).await)
    {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    if shipped.is_none() {
        let status: Option<String> = crate::sql!(&st.pool, e => sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
            .bind(b.order_id)
            .fetch_optional(e).await)
            .ok()
            .flatten();
        return match status {
            None => error(ErrorCode::NotFound, "订单不存在"),
            Some(s) if s == "shipped" => error(ErrorCode::InvalidState, "订单已发货"),
            Some(_) => error(ErrorCode::InvalidState, "只有已支付的订单可以发货"),
        };
    }
    let detail = json!({"order_id": b.order_id, "carrier": carrier, "tracking_no": tracking});
    if let Err(e) = audit(&st.pool, &admin, "ship_order", detail).await {
        return internal(e);
    }
    if let Some(notice) = &st.shipped_notice {
        notice.spawn_send(b.order_id);
    }
    Json(
        json!({"order_id": b.order_id, "status": "shipped", "carrier": carrier,
                "tracking_no": tracking, "shipped_at": now}),
    )
    .into_response()
}
