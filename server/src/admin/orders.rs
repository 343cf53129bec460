//! The console's orders: `list_orders` (filters, search, pages), `get_order`, `ship_order`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    audit, contains_pattern, current, error, field, internal, invalid, parse, signed_in,
    unauthorized, AdminState,
};
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

/// `list_orders`' and `export_orders.csv`'s filters, checked.
struct Filter {
    status: Option<String>,
    /// Unix seconds, `[from, to)`.
    from: i64,
    to: i64,
    q: Option<String>,
    /// `q` as a LIKE pattern (`%`, `_` and `\` escaped).
    like: Option<String>,
}

/// The WHERE clause of both; binds `$1`…`$5` in [`Filter`]'s order.
const FILTER_SQL: &str =
    "WHERE ($1 IS NULL OR o.status = $1) AND o.created_at >= $2 AND o.created_at < $3 \
     AND ($4 IS NULL OR o.order_no = $4 OR o.transaction_id = $4 \
          OR o.ship_name LIKE $5 ESCAPE '\\' OR o.ship_phone LIKE $5 ESCAPE '\\')";

impl Filter {
    fn parse(b: &ListBody) -> Result<Self, Response> {
        let given = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let status = given(&b.status);
        if let Some(s) = &status {
            if app::model::OrderStatus::parse(s).is_none() {
                return Err(error(ErrorCode::BadRequest, "未知的订单状态"));
            }
        }
        let from = match given(&b.from).as_deref().map(china_day) {
            Some(None) => return Err(error(ErrorCode::BadRequest, "from 须为日期 YYYY-MM-DD")),
            Some(Some((start, _))) => start,
            None => i64::MIN,
        };
        let to = match given(&b.to).as_deref().map(china_day) {
            Some(None) => return Err(error(ErrorCode::BadRequest, "to 须为日期 YYYY-MM-DD")),
            Some(Some((_, end))) => end,
            None => i64::MAX,
        };
        let q = given(&b.q);
        let like = q.as_deref().map(contains_pattern);
        Ok(Filter {
            status,
            from,
            to,
            q,
            like,
        })
    }
}

pub(super) async fn list_orders(
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
    let f = match Filter::parse(&b) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let page = b.page.unwrap_or(1).max(1);
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
    > = crate::sql!(&st.pool, e => sqlx::query_as(&format!(
        "SELECT o.id, o.order_no, o.status, o.total_fee, o.refunded_fen, o.created_at, o.paid_at, \
         o.ship_name, o.ship_phone, o.transaction_id, \
         (SELECT CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM order_lines WHERE order_id = o.id) \
         FROM orders o {FILTER_SQL} \
         ORDER BY o.created_at DESC, o.id DESC LIMIT $6 OFFSET $7",
    ))
    .bind(f.status.as_deref())
    .bind(f.from)
    .bind(f.to)
    .bind(f.q.as_deref())
    .bind(f.like.as_deref())
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
    let note: String = match crate::sql!(&st.pool, e => sqlx::query_scalar("SELECT merchant_note FROM orders WHERE id = $1")
        .bind(b.order_id)
        .fetch_one(e).await)
    {
        Ok(n) => n,
        Err(e) => return internal(e),
    };
    match crate::shop::orders::load(&st.pool, Some(user), b.order_id).await {
        Ok(order) => {
            // The shop's view of the order, and what only the merchant sees.
            let mut v = serde_json::to_value(order).unwrap_or(Value::Null);
            v["merchant_note"] = Value::String(note);
            // The payment log (what `wxmall payments` prints): every event of the money path.
            match crate::payments::trail::trail(&st.pool, &b.order_id.to_string()).await {
                Ok(Some(t)) => {
                    v["transaction_id"] = json!(t.transaction_id);
                    v["payment_events"] = json!(t
                        .events
                        .iter()
                        .map(|e| json!({"at": e.created_at, "kind": e.kind, "outcome": e.outcome, "detail": e.detail}))
                        .collect::<Vec<_>>());
                }
                Ok(None) => {}
                Err(e) => return internal(e),
            }
            Json(v).into_response()
        }
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
    // Not while the shopper's after-sales request waits: the merchant decides that first.
    let shipped: Option<i64> = match crate::sql!(&st.pool, e => sqlx::query_scalar(&format!(
        "UPDATE orders SET status = 'shipped', carrier = $1, tracking_no = $2, shipped_at = $3 \
         WHERE id = $4 AND status = 'paid' AND NOT EXISTS (SELECT 1 FROM aftersales \
           WHERE order_id = $4 AND status IN {}) \
         RETURNING id",
        crate::shop::aftersales::OPEN
    ))
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
            Some(s) if s == "paid" => error(
                ErrorCode::InvalidState,
                "订单有处理中的售后申请，请先处理售后",
            ),
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

/// Orders one export may hold: a wider range must be split (by `from`/`to`).
pub const EXPORT_MAX: usize = 50_000;

/// A cell as Excel must not run it: text starting with `=`, `+`, `-`, `@`, a tab or a carriage
/// return is a formula to a spreadsheet (a recipient named `=HYPERLINK(…)` would be one), so it
/// gets a leading `'`.
fn cell(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_string(),
    }
}

fn china_time(unix: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map(|t| t.to_offset(time::macros::offset!(+8)))
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

#[derive(sqlx::FromRow)]
struct ExportRow {
    id: i64,
    order_no: String,
    status: String,
    total_fee: i64,
    refunded_fen: i64,
    created_at: i64,
    paid_at: Option<i64>,
    ship_name: String,
    ship_phone: String,
    ship_region: String,
    ship_detail: String,
    remark: String,
    transaction_id: Option<String>,
    carrier: Option<String>,
    tracking_no: Option<String>,
    product_name: Option<String>,
    sku_name: Option<String>,
    quantity: Option<i64>,
}

/// `GET /admin/api/export_orders.csv?status=&q=&from=&to=`: the orders `list_orders` would list
/// (every page), as CSV in UTF-8 with a byte-order mark so Excel reads the Chinese text, amounts
/// in yuan, times in China time, one row per order with its items in one cell.
pub(super) async fn export_orders(
    State(st): State<AdminState>,
    headers: HeaderMap,
    query: Result<axum::extract::Query<ListBody>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let admin = match signed_in(&st, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let b = match query {
        Ok(axum::extract::Query(b)) => b,
        Err(e) => return error(ErrorCode::BadRequest, &format!("无法读取查询参数：{e}")),
    };
    let f = match Filter::parse(&b) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let rows: Vec<ExportRow> = match crate::sql!(&st.pool, e => sqlx::query_as(&format!(
        "SELECT o.id, o.order_no, o.status, o.total_fee, o.refunded_fen, o.created_at, o.paid_at, \
         o.ship_name, o.ship_phone, o.ship_region, o.ship_detail, o.remark, o.transaction_id, \
         o.carrier, o.tracking_no, l.product_name, l.sku_name, l.quantity \
         FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id {FILTER_SQL} \
         ORDER BY o.created_at DESC, o.id DESC, l.line_no LIMIT $6",
    ))
    .bind(f.status.as_deref())
    .bind(f.from)
    .bind(f.to)
    .bind(f.q.as_deref())
    .bind(f.like.as_deref())
    // Lines, not orders: enough for EXPORT_MAX orders of the largest size.
    .bind((EXPORT_MAX * app::model::MAX_ORDER_LINES + 1) as i64)
    .fetch_all(e).await)
    {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    // One record per order, its lines joined.
    let mut orders: Vec<(ExportRow, Vec<String>)> = Vec::new();
    for row in rows {
        let item = match (&row.product_name, &row.sku_name, row.quantity) {
            (Some(p), Some(s), Some(q)) => Some(format!("{p}（{s}）×{q}")),
            _ => None,
        };
        match orders.last_mut() {
            Some((last, items)) if last.id == row.id => items.extend(item),
            _ => orders.push((row, item.into_iter().collect())),
        }
    }
    if orders.len() > EXPORT_MAX {
        return error(
            ErrorCode::BadRequest,
            &format!("一次最多导出 {EXPORT_MAX} 个订单，请缩小日期范围"),
        );
    }
    let mut out = csv::WriterBuilder::new().from_writer(b"\xEF\xBB\xBF".to_vec());
    let header = [
        "订单编号",
        "状态",
        "下单时间",
        "支付时间",
        "实付（元）",
        "已退款（元）",
        "商品",
        "收货人",
        "电话",
        "地区",
        "详细地址",
        "备注",
        "微信支付单号",
        "快递公司",
        "运单号",
    ];
    let mut written = out.write_record(header).map(|_| 0usize);
    for (o, items) in &orders {
        let status = app::model::OrderStatus::parse(&o.status)
            .map(|s| s.label().to_string())
            .unwrap_or_else(|| o.status.clone());
        let record = [
            // A long number would lose its last digits to Excel's 15-digit numbers: a leading
            // tab keeps it text (as WeChat's own bills keep theirs with a backquote).
            format!("\t{}", o.order_no),
            status,
            china_time(o.created_at),
            o.paid_at.map(china_time).unwrap_or_default(),
            app::model::format_fen(o.total_fee),
            app::model::format_fen(o.refunded_fen),
            cell(&items.join("；")),
            cell(&o.ship_name),
            cell(&o.ship_phone),
            cell(&o.ship_region),
            cell(&o.ship_detail),
            cell(&o.remark),
            o.transaction_id
                .as_deref()
                .map(|t| format!("\t{t}"))
                .unwrap_or_default(),
            cell(o.carrier.as_deref().unwrap_or("")),
            cell(o.tracking_no.as_deref().unwrap_or("")),
        ];
        written = written.and_then(|n| out.write_record(&record).map(|_| n + 1));
    }
    let bytes = match written
        .map_err(|e| e.to_string())
        .and_then(|_| out.into_inner().map_err(|e| e.to_string()))
    {
        Ok(b) => b,
        Err(e) => return internal(e),
    };
    let detail = json!({"orders": orders.len(), "status": f.status, "q": f.q,
        "from": b.from, "to": b.to});
    if let Err(e) = audit(&st.pool, &admin, "export_orders", detail).await {
        return internal(e);
    }
    let name = format!(
        "orders-{}.csv",
        china_time(crate::shop::now()).get(..10).unwrap_or("export")
    );
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/csv; charset=utf-8".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (axum::http::header::CACHE_CONTROL, "no-store".to_string()),
        ],
        bytes,
    )
        .into_response()
}

#[derive(Deserialize)]
pub(super) struct AddressBody {
    order_id: i64,
    name: String,
    phone: String,
    region: String,
    detail: String,
    /// The merchant's own note on the order (not shown to the shopper).
    #[serde(default)]
    note: Option<String>,
}

/// Longest merchant note (characters).
const NOTE_MAX: usize = 200;

/// `update_address`: before shipping (`paid`), correct where the parcel goes and keep a note;
/// audited with before and after. One conditional UPDATE: an order shipped meanwhile is 409.
pub(super) async fn update_address(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let admin = match signed_in(&st, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Ok(b) = serde_json::from_slice::<AddressBody>(&body) else {
        return error(
            ErrorCode::BadRequest,
            "需要 order_id、name、phone、region、detail，可选 note",
        );
    };
    let input = app::model::AddressInput {
        name: b.name.clone(),
        phone: b.phone.clone(),
        region: b.region.clone(),
        detail: b.detail.clone(),
    };
    let address = match input.validate() {
        Ok(a) => a,
        Err(fields) => return invalid(fields),
    };
    let note = b.note.as_deref().map(str::trim);
    if note.is_some_and(|n| n.chars().count() > NOTE_MAX) {
        return invalid(vec![field("note", &format!("备注最多 {NOTE_MAX} 字"))]);
    }
    let before: Option<(String, String, String, String, String, String)> = match crate::sql!(&st.pool, e => sqlx::query_as(
        "SELECT status, ship_name, ship_phone, ship_region, ship_detail, merchant_note FROM orders WHERE id = $1",
    )
    .bind(b.order_id)
    .fetch_optional(e).await)
    {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let Some((status, name, phone, region, detail, old_note)) = before else {
        return error(ErrorCode::NotFound, "订单不存在");
    };
    if status != "paid" {
        return error(
            ErrorCode::InvalidState,
            "只有未发货的已支付订单可以修改地址",
        );
    }
    let new_note = note.map(str::to_string).unwrap_or_else(|| old_note.clone());
    let done = crate::sql!(&st.pool, e => sqlx::query(
        "UPDATE orders SET ship_name = $1, ship_phone = $2, ship_region = $3, ship_detail = $4, \
         merchant_note = $5 WHERE id = $6 AND status = 'paid'",
    )
    .bind(&address.name)
    .bind(&address.phone)
    .bind(&address.region)
    .bind(&address.detail)
    .bind(&new_note)
    .bind(b.order_id)
    .execute(e).await.map(crate::db::Done::from));
    match done {
        Ok(d) if d.rows_affected() == 1 => {}
        Ok(_) => return error(ErrorCode::InvalidState, "订单已发货，不能再修改地址"),
        Err(e) => return internal(e),
    }
    let detail_json = json!({
        "order_id": b.order_id,
        "before": {"name": name, "phone": phone, "region": region, "detail": detail, "note": old_note},
        "after": {"name": address.name, "phone": address.phone, "region": address.region,
                  "detail": address.detail, "note": new_note},
    });
    if let Err(e) = audit(&st.pool, &admin, "update_address", detail_json).await {
        return internal(e);
    }
    Json(
        json!({"order_id": b.order_id, "address": {"name": address.name, "phone": address.phone,
        "region": address.region, "detail": address.detail}, "note": new_note}),
    )
    .into_response()
}
