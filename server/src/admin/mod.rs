//! The merchant's console API, `POST /admin/api/<name>` (JSON in and out, errors as in the shop's
//! API with stable codes).
//!
//! - **Accounts** are separate from shoppers ([`accounts`]); a shopper's cookie opens nothing here.
//! - **Login** sets the console's own cookie: a random token (its SHA-256 is what the database
//!   keeps), HttpOnly, SameSite=Strict, `Secure` with the `__Host-` prefix on https; a session
//!   unused for 12 hours is gone. A wrong password and an unknown user get the same 401 (an
//!   unknown user's password is checked against a dummy hash, so the time tells nothing). Five
//!   failures for one username or from one address within 15 minutes → 429 `rate_limited`.
//! - **Calls** (all but the `GET` download) need `Content-Type: application/json` (415); all refuse a foreign `Origin` or
//!   `Sec-Fetch-Site: cross-site` (403); with SameSite=Strict that is the CSRF defence.
//! - **Roles**: `staff` may not refund, change prices or manage accounts (403).
//! - **Audit**: every console write leaves a row (who, what, when, the details), `audit_log`.

pub mod accounts;
mod aftersales;
mod catalogue;
mod coupons;
mod figures;
pub mod images;
mod launch;
mod orders;
pub mod pages;

use std::net::IpAddr;

use crate::db::Db;
use app::error::{ApiError, ErrorCode};
use app::port::ClientIp;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use accounts::Role;

/// The shop's name as shoppers see it: the pages' titles, the coupons' brand, the printed QR cards.
pub const SHOP_NAME: &str = "wxmall";

/// The console cookie on http (a local shop) and on https.
pub const COOKIE: &str = "wxmall_admin";
pub const SECURE_COOKIE: &str = "__Host-wxmall_admin";
/// A console session unused this long is gone.
pub const IDLE_SECS: i64 = 12 * 3600;
/// Failed logins counted per username and per address…
pub const FAILURE_WINDOW_SECS: i64 = 15 * 60;
/// …and how many make the next attempt wait.
pub const MAX_FAILURES: i64 = 5;

#[derive(Clone)]
pub struct AdminState {
    pub pool: Db,
    pub payments: crate::payments::Payments,
    /// The shop is served over https (`Secure`, `__Host-`).
    pub secure: bool,
    /// `scheme://host[:port]` of the public URL: the only `Origin` allowed to write.
    pub origin: String,
    /// The "shipped" template message, when configured.
    pub shipped_notice: Option<std::sync::Arc<crate::mp::OrderTemplate>>,
    /// Where uploaded pictures are written (`{data_dir}/uploads`), served at `/uploads/`.
    pub uploads: std::path::PathBuf,
    /// WeChat (QR codes, the doctor's checks) and what the doctor looks at.
    pub wechat: std::sync::Arc<crate::wx::Wechat>,
    pub public_url: String,
    pub site_root: std::path::PathBuf,
    pub redis_url: Option<String>,
}

impl AdminState {
    fn cookie_name(&self) -> &'static str {
        if self.secure {
            SECURE_COOKIE
        } else {
            COOKIE
        }
    }
}

fn error(code: ErrorCode, message: &str) -> Response {
    let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(ApiError::new(code, message)),
    )
        .into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console request failed");
    error(ErrorCode::Internal, "服务器开小差了，请稍后再试")
}

fn unauthorized() -> Response {
    error(ErrorCode::Unauthorized, "请先登录管理后台")
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The signed-in console account of a request.
#[derive(Clone, Debug)]
pub struct Admin {
    pub id: i64,
    pub username: String,
    pub role: Role,
}

async fn current(st: &AdminState, headers: &HeaderMap) -> Result<Option<Admin>, sqlx::Error> {
    let jar = CookieJar::from_headers(headers);
    let Some(token) = jar.get(st.cookie_name()).map(|c| c.value().to_string()) else {
        return Ok(None);
    };
    let now = crate::shop::now();
    let row: Option<(i64, String, String)> = crate::sql!(&st.pool, e => sqlx::query_as(
        "UPDATE admin_sessions SET last_seen_at = $1 \
         WHERE token_hash = $2 AND last_seen_at >= $3 \
         AND admin_id IN (SELECT id FROM admins WHERE disabled_at IS NULL) \
         RETURNING admin_id, \
         (SELECT username FROM admins WHERE id = admin_id), \
         (SELECT role FROM admins WHERE id = admin_id)",
    )
    .bind(now)
    .bind(token_hash(&token))
    .bind(now - IDLE_SECS)
    .fetch_optional(e).await)?;
    Ok(row.and_then(|(id, username, role)| {
        Role::parse(&role).map(|role| Admin { id, username, role })
    }))
}

/// The signed-in account, or the answer to give (401, or 500 when the database failed).
async fn signed_in(st: &AdminState, headers: &HeaderMap) -> Result<Admin, Response> {
    match current(st, headers).await {
        Ok(Some(a)) => Ok(a),
        Ok(None) => Err(unauthorized()),
        Err(e) => Err(internal(e)),
    }
}

/// `LIKE $n ESCAPE '\\'`: text containing `q`, its `%`, `_` and `\\` taken literally.
fn contains_pattern(q: &str) -> String {
    format!(
        "%{}%",
        q.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// A JSON body; an empty one is `T::default()`.
fn parse<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| error(ErrorCode::BadRequest, &format!("无法读取请求：{e}")))
}

fn invalid(fields: Vec<app::model::FieldError>) -> Response {
    let api = ApiError::validation(fields);
    (axum::http::StatusCode::BAD_REQUEST, Json(api)).into_response()
}

fn field(name: &str, message: &str) -> app::model::FieldError {
    app::model::FieldError {
        field: name.to_string(),
        message: message.to_string(),
    }
}

async fn audit(pool: &Db, admin: &Admin, action: &str, detail: Value) -> Result<(), sqlx::Error> {
    crate::sql!(pool, e => sqlx::query("INSERT INTO admin_audit (admin_id, action, detail, at) VALUES ($1, $2, $3, $4)")
        .bind(admin.id)
        .bind(action)
        .bind(detail.to_string())
        .bind(crate::shop::now())
        .execute(e).await.map(crate::db::Done::from))?;
    Ok(())
}

/// Where writes come from, and what they are (see the module docs).
async fn same_origin_json(State(st): State<AdminState>, req: Request, next: Next) -> Response {
    let h = req.headers();
    let cross_site = h
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"));
    let foreign = h
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| o != st.origin);
    if cross_site || foreign {
        tracing::warn!(path = %req.uri().path(), "cross-site console request refused");
        return error(ErrorCode::Forbidden, "请求来源不被允许");
    }
    // A download (`GET`) reads and has no body; an upload is multipart; everything else is a
    // JSON call.
    if req.method() == axum::http::Method::GET {
        return next.run(req).await;
    }
    let wanted = if req.uri().path().ends_with("/upload_image") {
        "multipart/form-data"
    } else {
        "application/json"
    };
    let right = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(wanted));
    if !right {
        if wanted != "application/json" {
            return error(
                ErrorCode::UnsupportedMediaType,
                "上传须为 multipart/form-data（字段 file）",
            );
        }
        return error(
            ErrorCode::UnsupportedMediaType,
            "请求须为 JSON（Content-Type: application/json）",
        );
    }
    next.run(req).await
}

/// `/admin/api/…`
pub fn router<S: Clone + Send + Sync + 'static>(st: AdminState) -> Router<S> {
    let json = Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/me", post(me))
        .route("/refund_order", post(refund_order))
        .route("/audit_log", post(audit_log))
        .route("/list_orders", post(orders::list_orders))
        .route("/get_order", post(orders::get_order))
        .route("/ship_order", post(orders::ship_order))
        .route("/update_address", post(orders::update_address))
        .route("/product_qrcode", post(launch::product_qrcode))
        .route("/doctor", post(launch::doctor))
        .route("/list_categories", post(catalogue::list_categories))
        .route("/save_category", post(catalogue::save_category))
        .route("/delete_category", post(catalogue::delete_category))
        .route("/list_products", post(catalogue::list_products))
        .route("/save_product", post(catalogue::save_product))
        .route("/adjust_stock", post(catalogue::adjust_stock))
        .route("/low_stock", post(catalogue::low_stock))
        .route("/export_orders.csv", get(orders::export_orders))
        .route("/dashboard", post(figures::dashboard))
        .route("/list_aftersales", post(aftersales::list_aftersales))
        .route("/decide_aftersale", post(aftersales::decide_aftersale))
        .route("/receive_return", post(aftersales::receive_return))
        .route("/save_coupon", post(coupons::save_coupon))
        .route("/list_coupons", post(coupons::list_coupons))
        .route("/stop_coupon", post(coupons::stop_coupon))
        .route("/coupon_qrcode", post(coupons::coupon_qrcode))
        .route("/card_whitelist", post(coupons::card_whitelist))
        .route("/list_admins", post(accounts::list_admins))
        .route("/save_admin", post(accounts::save_admin))
        .route("/set_admin_password", post(accounts::set_admin_password))
        .route("/disable_admin", post(accounts::disable_admin))
        .route("/enable_admin", post(accounts::enable_admin))
        // JSON bodies are small; more is refused with 413 before it is read.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            crate::routes::MAX_BODY_BYTES,
        ));
    // A picture: its own, larger limit (with room for the multipart framing).
    let upload = Router::new()
        .route("/upload_image", post(images::upload_image))
        .layer(axum::extract::DefaultBodyLimit::max(
            images::MAX_UPLOAD_BYTES + 64 * 1024,
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            images::MAX_UPLOAD_BYTES + 64 * 1024,
        ));
    json.merge(upload)
        .layer(axum::middleware::from_fn_with_state(
            st.clone(),
            same_origin_json,
        ))
        .with_state(st)
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

/// An argon2id hash of nothing anyone knows: unknown users are checked against it, so a wrong
/// username takes as long as a wrong password.
fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| accounts::hash_password("no-such-console-account").unwrap_or_default())
}

async fn login(State(st): State<AdminState>, req: Request) -> Response {
    let ip = req
        .extensions()
        .get::<ClientIp>()
        .map(|c| c.0)
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let body = match axum::body::to_bytes(req.into_body(), 16 * 1024).await {
        Ok(b) => b,
        Err(_) => return error(ErrorCode::BadRequest, "请求过大"),
    };
    let Ok(body) = serde_json::from_slice::<LoginBody>(&body) else {
        return error(ErrorCode::BadRequest, "需要 username 和 password");
    };
    let now = crate::shop::now();
    let user_key = format!("user:{}", body.username);
    let ip_key = format!("ip:{ip}");
    // Too many failures for this name or from this address: wait.
    let oldest: Option<i64> = match crate::sql!(&st.pool, e => sqlx::query_scalar(
        "SELECT MIN(at) FROM admin_login_failures WHERE (key = $1 OR key = $2) AND at > $3",
    )
    .bind(&user_key)
    .bind(&ip_key)
    .bind(now - FAILURE_WINDOW_SECS)
    .fetch_one(e).await)
    {
        Ok(v) => v,
        Err(e) => return internal(e),
    };
    let counts: (i64, i64) = match crate::sql!(&st.pool, e => sqlx::query_as(
        "SELECT \
         (SELECT COUNT(*) FROM admin_login_failures WHERE key = $1 AND at > $3), \
         (SELECT COUNT(*) FROM admin_login_failures WHERE key = $2 AND at > $3)",
    )
    .bind(&user_key)
    .bind(&ip_key)
    .bind(now - FAILURE_WINDOW_SECS)
    .fetch_one(e).await)
    {
        Ok(c) => c,
        Err(e) => return internal(e),
    };
    if counts.0 >= MAX_FAILURES || counts.1 >= MAX_FAILURES {
        let wait = oldest
            .map(|t| (t + FAILURE_WINDOW_SECS - now).max(1))
            .unwrap_or(FAILURE_WINDOW_SECS);
        tracing::warn!(%ip, "console login rate limited");
        let mut res = error(ErrorCode::RateLimited, "登录失败次数过多，请稍后再试");
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait as u64));
        return res;
    }
    let row: Option<(i64, String, String, Option<i64>)> = match crate::sql!(&st.pool, e => sqlx::query_as(
        "SELECT id, password_hash, role, disabled_at FROM admins WHERE username = $1",
    )
    .bind(&body.username)
    .fetch_optional(e).await)
    {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let password = body.password;
    let verified = match row {
        Some((id, hash, role, None)) => {
            let ok =
                tokio::task::spawn_blocking(move || accounts::verify_password(&password, &hash))
                    .await
                    .unwrap_or(false);
            ok.then_some((id, role))
        }
        _ => {
            // Same work as a real check.
            let _ = tokio::task::spawn_blocking(move || {
                accounts::verify_password(&password, dummy_hash())
            })
            .await;
            None
        }
    };
    let Some((admin_id, role)) = verified else {
        for key in [&user_key, &ip_key] {
            if let Err(e) = crate::sql!(&st.pool, e => sqlx::query("INSERT INTO admin_login_failures (key, at) VALUES ($1, $2)")
                    .bind(key)
                    .bind(now)
                    .execute(e).await.map(crate::db::Done::from))
            {
                return internal(e);
            }
        }
        tracing::warn!(%ip, "console login failed");
        return error(ErrorCode::Unauthorized, "用户名或密码错误");
    };
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let token = hex::encode(raw);
    let stored = async {
        let mut tx = st.pool.begin().await?;
        crate::sql!(&mut tx, e => sqlx::query(
            "INSERT INTO admin_sessions (token_hash, admin_id, created_at, last_seen_at) \
             VALUES ($1, $2, $3, $3)",
        )
        .bind(token_hash(&token))
        .bind(admin_id)
        .bind(now)
        .execute(e).await.map(crate::db::Done::from))?;
        crate::sql!(&mut tx, e => sqlx::query("DELETE FROM admin_login_failures WHERE key = $1 OR at < $2")
            .bind(&user_key)
            .bind(now - FAILURE_WINDOW_SECS)
            .execute(e).await.map(crate::db::Done::from))?;
        crate::sql!(&mut tx, e => sqlx::query("DELETE FROM admin_sessions WHERE last_seen_at < $1")
            .bind(now - IDLE_SECS)
            .execute(e).await.map(crate::db::Done::from))?;
        tx.commit().await
    }
    .await;
    if let Err(e) = stored {
        return internal(e);
    }
    let cookie = Cookie::build((st.cookie_name(), token))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(st.secure)
        .build();
    (
        CookieJar::new().add(cookie),
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"username": body.username, "role": role})),
    )
        .into_response()
}

async fn logout(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    if let Some(token) = CookieJar::from_headers(&headers)
        .get(st.cookie_name())
        .map(|c| c.value().to_string())
    {
        if let Err(e) = crate::sql!(&st.pool, e => sqlx::query("DELETE FROM admin_sessions WHERE token_hash = $1")
            .bind(token_hash(&token))
            .execute(e).await.map(crate::db::Done::from))
        {
            return internal(e);
        }
    }
    let mut gone = Cookie::build((st.cookie_name(), ""))
        .path("/")
        .secure(st.secure)
        .build();
    gone.make_removal();
    (CookieJar::new().add(gone), Json(json!({"ok": true}))).into_response()
}

async fn me(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    match current(&st, &headers).await {
        Ok(Some(a)) => Json(json!({"username": a.username, "role": a.role})).into_response(),
        Ok(None) => unauthorized(),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct RefundBody {
    order_id: i64,
    amount_fen: Option<i64>,
    #[serde(default)]
    lines: Vec<RefundLineBody>,
    reason: String,
    #[serde(default)]
    restock: bool,
}

#[derive(Deserialize)]
struct RefundLineBody {
    line_no: i64,
    quantity: i64,
}

/// `refund_order` (owner only): through the payments service, like `wxmall refund`.
async fn refund_order(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let admin = match current(&st, &headers).await {
        Ok(Some(a)) => a,
        Ok(None) => return unauthorized(),
        Err(e) => return internal(e),
    };
    if admin.role != Role::Owner {
        return error(ErrorCode::Forbidden, "只有店主可以退款");
    }
    let Ok(b) = serde_json::from_slice::<RefundBody>(&body) else {
        return error(
            ErrorCode::BadRequest,
            "需要 order_id、reason，可选 amount_fen、lines、restock",
        );
    };
    let req = crate::payments::RefundRequest {
        order: b.order_id.to_string(),
        amount_fen: b.amount_fen,
        lines: b
            .lines
            .iter()
            .map(|l| crate::payments::RefundLine {
                line_no: l.line_no,
                quantity: l.quantity,
            })
            .collect(),
        reason: b.reason.clone(),
        restock: b.restock,
    };
    match st.payments.refund(&req).await {
        Ok(outcome) => {
            let r = &outcome.refund;
            let detail = json!({
                "order_id": b.order_id,
                "amount_fen": r.amount_fen,
                "out_refund_no": r.out_refund_no,
                "new": outcome.created,
                "reason": b.reason,
                "restock": b.restock,
                "lines": b.lines.iter().map(|l| json!({"line_no": l.line_no, "quantity": l.quantity})).collect::<Vec<_>>(),
            });
            if let Err(e) = audit(&st.pool, &admin, "refund_order", detail).await {
                return internal(e);
            }
            Json(json!({
                "out_refund_no": r.out_refund_no,
                "amount_fen": r.amount_fen,
                "status": r.status,
                "created": outcome.created,
            }))
            .into_response()
        }
        Err(e) => {
            let api: ApiError = e.into();
            let status =
                StatusCode::from_u16(api.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            (status, Json(api)).into_response()
        }
    }
}

/// `audit_log` (owner only): the latest 200 console writes, newest first.
async fn audit_log(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    let admin = match current(&st, &headers).await {
        Ok(Some(a)) => a,
        Ok(None) => return unauthorized(),
        Err(e) => return internal(e),
    };
    if admin.role != Role::Owner {
        return error(ErrorCode::Forbidden, "只有店主可以查看操作记录");
    }
    let rows: Vec<(String, String, String, i64)> = match crate::sql!(&st.pool, e => sqlx::query_as(
        "SELECT a.username, l.action, l.detail, l.at FROM admin_audit l \
         JOIN admins a ON a.id = l.admin_id ORDER BY l.id DESC LIMIT 200",
    )
    .fetch_all(e).await)
    {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    Json(
        rows.into_iter()
            .map(|(who, action, detail, at)| {
                json!({
                    "who": who,
                    "action": action,
                    "detail": serde_json::from_str::<Value>(&detail).unwrap_or(Value::Null),
                    "at": at,
                })
            })
            .collect::<Vec<_>>(),
    )
    .into_response()
}
