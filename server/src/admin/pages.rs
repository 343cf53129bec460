//! The console's pages, `/admin/…`: server-rendered Leptos views with plain HTML forms — no
//! WebAssembly, so the console adds nothing to what a shopper downloads, and it works on any
//! phone or laptop browser.
//!
//! The pages are a client of the console API in the same process: each page reads through
//! `/admin/api/<name>`, and each form posts to `/admin/form/<name>`, which turns the form into the
//! API's JSON, calls the API route (so every rule — sign-in, roles, validation, conditional
//! updates, the audit log — is the API's), then answers `303 See Other`: to the form's `next`
//! page on success, or back to the form's page with the API's message in a one-minute,
//! HttpOnly, SameSite=Strict cookie shown once.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Router;
use leptos::prelude::*;
use serde_json::{json, Map, Value};
use tower::ServiceExt;

use super::{current, AdminState};
use app::components::format_time;
use app::model::{format_fen, AftersaleKind, AftersaleStatus, OrderStatus};

/// The one-shot message cookie of a failed form.
const FLASH: &str = "wxmall_admin_flash";
/// Carriers offered when shipping (the tracking number is what matters; 其他 for the rest).
pub const CARRIERS: [&str; 10] = [
    "顺丰", "中通", "圆通", "韵达", "申通", "极兔", "京东", "EMS", "邮政", "其他",
];

/// `/admin`, `/admin/login`, `/admin/orders`, `/admin/orders/{id}`, `/admin/aftersales`,
/// `/admin/products`, `/admin/products/{id|new}`, `/admin/products/{id}/print`, `/admin/audit`,
/// `/admin/coupons`, `/admin/coupons/{id}/print`, and `/admin/form/{name}`; `api` is the console
/// API's router (what the forms call).
pub fn router<S: Clone + Send + Sync + 'static>(st: AdminState, api: Router) -> Router<S> {
    Router::new()
        .route("/admin", axum::routing::get(dashboard))
        .route("/admin/login", axum::routing::get(login_page))
        .route("/admin/orders", axum::routing::get(orders_page))
        .route("/admin/orders/{id}", axum::routing::get(order_page))
        .route("/admin/aftersales", axum::routing::get(aftersales_page))
        .route("/admin/products", axum::routing::get(products_page))
        .route("/admin/products/{id}", axum::routing::get(product_page))
        .route(
            "/admin/products/{id}/print",
            axum::routing::get(product_print),
        )
        .route("/admin/audit", axum::routing::get(audit_page))
        .route("/admin/doctor", axum::routing::get(doctor_page))
        .route("/admin/categories", axum::routing::get(categories_page))
        .route("/admin/coupons", axum::routing::get(coupons_page))
        .route("/admin/accounts", axum::routing::get(accounts_page))
        .route(
            "/admin/coupons/{id}/print",
            axum::routing::get(coupon_print),
        )
        .route("/admin/form/upload_image", {
            let api = api.clone();
            axum::routing::post(move |req| upload_form(api.clone(), req))
        })
        .route(
            "/admin/form/{name}",
            axum::routing::post(move |path, req| form(path, api.clone(), req)),
        )
        .with_state(st)
}

// ------------------------------------------------------------------ plumbing

/// The API's answer to `name` with `body`, as the signed-in page's request would get it.
async fn call(
    st: &AdminState,
    headers: &HeaderMap,
    name: &str,
    body: Value,
) -> Result<Value, String> {
    call_status(st, headers, name, body)
        .await
        .map_err(|(_, m)| m)
}

/// [`call`], keeping the API's HTTP status of a failure (a page answers 404 for the API's 404).
async fn call_status(
    st: &AdminState,
    headers: &HeaderMap,
    name: &str,
    body: Value,
) -> Result<Value, (StatusCode, String)> {
    let mut h = HeaderMap::new();
    if let Some(c) = headers.get(header::COOKIE) {
        h.insert(header::COOKIE, c.clone());
    }
    let bytes = axum::body::Bytes::from(body.to_string());
    let res = match name {
        "dashboard" => super::figures::dashboard(State(st.clone()), h).await,
        "list_orders" => super::orders::list_orders(State(st.clone()), h, bytes).await,
        "get_order" => super::orders::get_order(State(st.clone()), h, bytes).await,
        "list_aftersales" => super::aftersales::list_aftersales(State(st.clone()), h, bytes).await,
        "list_products" => super::catalogue::list_products(State(st.clone()), h, bytes).await,
        "list_categories" => super::catalogue::list_categories(State(st.clone()), h).await,
        "audit_log" => super::audit_log(State(st.clone()), h).await,
        "doctor" => super::launch::doctor(State(st.clone()), h).await,
        "product_qrcode" => super::launch::product_qrcode(State(st.clone()), h, bytes).await,
        "list_coupons" => super::coupons::list_coupons(State(st.clone()), h).await,
        "coupon_qrcode" => super::coupons::coupon_qrcode(State(st.clone()), h, bytes).await,
        "list_admins" => super::accounts::list_admins(State(st.clone()), h).await,
        _ => {
            return Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("no page call {name}"),
            ))
        }
    };
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 16 << 20)
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if status.is_success() {
        Ok(v)
    } else {
        Err((
            status,
            v["message"].as_str().unwrap_or("出错了").to_string(),
        ))
    }
}

fn html(
    title: &str,
    flash: Option<String>,
    nav: &'static str,
    body: impl IntoView + 'static,
) -> Response {
    html_page("console", title, flash, nav, body)
}

/// A console page whose `<body>` has `class` (`console console-print`: the print sheets, whose
/// stylesheet drops the console's chrome on paper).
fn html_page(
    class: &'static str,
    title: &str,
    flash: Option<String>,
    nav: &'static str,
    body: impl IntoView + 'static,
) -> Response {
    let stylesheet = stylesheet();
    let page = view! {
        <html lang="zh-CN">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="robots" content="noindex" />
                <title>{format!("{title} · 商家后台")}</title>
                <link rel="stylesheet" href=stylesheet />
            </head>
            <body class=class>
                <header class="console-head">
                    <strong>"商家后台"</strong>
                    {(nav != "login").then(|| view! {
                        <nav aria-label="后台导航">
                            <a href="/admin" class:active=nav == "dashboard">"概览"</a>
                            <a href="/admin/orders" class:active=nav == "orders">"订单"</a>
                            <a href="/admin/aftersales" class:active=nav == "aftersales">"售后"</a>
                            <a href="/admin/products" class:active=nav == "products">"商品"</a>
                            <a href="/admin/coupons" class:active=nav == "coupons">"优惠券"</a>
                            <a href="/admin/audit" class:active=nav == "audit">"记录"</a>
                            <a href="/admin/doctor" class:active=nav == "doctor">"检查"</a>
                            <a href="/admin/accounts" class:active=nav == "accounts">"账号"</a>
                            <form method="post" action="/admin/form/logout">
                                <input type="hidden" name="next" value="/admin/login" />
                                <button type="submit" class="link-button">"退出"</button>
                            </form>
                        </nav>
                    })}
                </header>
                <main class="console-main">
                    <h1>{title.to_string()}</h1>
                    {flash.map(|m| view! { <div class="notice notice-error" role="alert" data-testid="flash">{m}</div> })}
                    {body}
                </main>
            </body>
        </html>
    };
    let mut res = (
        [
            (header::CACHE_CONTROL, "no-store"),
            // No script at all; forms post only here; never framed.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'none'; img-src 'self' data:; style-src 'self'; \
                 form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ],
        axum::response::Html(format!("<!DOCTYPE html>{}", page.to_html())),
    )
        .into_response();
    // The message was shown: forget it.
    res.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "wxmall_admin_flash=; Path=/admin; Max-Age=0; HttpOnly; SameSite=Strict",
        ),
    );
    res
}

/// The hashed stylesheet cargo-leptos wrote (`/pkg/wxmall.<hash>.css`), found once.
fn stylesheet() -> String {
    static CSS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CSS.get_or_init(|| {
        let root = std::env::var("LEPTOS_SITE_ROOT").unwrap_or_else(|_| "target/site".into());
        let mut found: Vec<(std::time::SystemTime, String)> =
            std::fs::read_dir(std::path::Path::new(&root).join("pkg"))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    let modified = e.metadata().and_then(|m| m.modified()).ok()?;
                    (name.starts_with("wxmall") && name.ends_with(".css"))
                        .then_some((modified, name))
                })
                .collect();
        found.sort();
        found
            .pop()
            .map(|(_, n)| format!("/pkg/{n}"))
            .unwrap_or_else(|| "/pkg/wxmall.css".into())
    })
    .clone()
}

fn flash_of(headers: &HeaderMap) -> Option<String> {
    let jar = axum_extra::extract::cookie::CookieJar::from_headers(headers);
    let v = jar.get(FLASH)?.value().to_string();
    let bytes = hex::decode(v).ok()?;
    String::from_utf8(bytes)
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(200).collect())
}

fn to_login() -> Response {
    Redirect::to("/admin/login").into_response()
}

/// `page` with another status than 200.
fn with_status(status: StatusCode, mut page: Response) -> Response {
    *page.status_mut() = status;
    page
}

/// The console's 404: its own page (signed in, with the navigation), saying what was not found.
fn not_found(nav: &'static str, what: &str) -> Response {
    with_status(
        StatusCode::NOT_FOUND,
        html(
            "找不到",
            None,
            nav,
            view! {
                <section class="panel" data-testid="not-found">
                    <p>{what.to_string()}</p>
                    <a href="/admin">"返回概览"</a>
                </section>
            },
        ),
    )
}

async fn signed_in(st: &AdminState, headers: &HeaderMap) -> Result<super::Admin, Response> {
    match current(st, headers).await {
        Ok(Some(a)) => Ok(a),
        Ok(None) => Err(to_login()),
        Err(e) => Err(super::internal(e)),
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn money(v: &Value) -> String {
    format!("¥{}", format_fen(v.as_i64().unwrap_or(0)))
}

fn when(v: &Value) -> String {
    v.as_i64().map(format_time).unwrap_or_default()
}

fn status_label(v: &Value) -> String {
    v.as_str()
        .and_then(OrderStatus::parse)
        .map(|s| s.label().to_string())
        .unwrap_or_else(|| s(v))
}

/// `"12"`, `"12.5"`, `"12.50"` yuan → fen; nothing else (no sign, at most two decimals).
pub fn parse_yuan(s: &str) -> Option<i64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || whole.len() > 9 || frac.len() > 2 {
        return None;
    }
    if !whole
        .bytes()
        .chain(frac.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    Some(whole * 100 + frac)
}

/// `next` or `back` of a form: a console page, nothing else (no open redirect).
fn console_path(p: Option<&String>) -> Option<String> {
    p.filter(|p| {
        p.starts_with("/admin") && !p.starts_with("//") && !p.contains("..") && !p.contains('\\')
    })
    .cloned()
}

// ------------------------------------------------------------------ forms

/// Form field → JSON: numbers where the API wants numbers, yes/no as booleans, yuan as fen.
fn form_json(fields: &BTreeMap<String, String>) -> Result<Value, String> {
    const NUMBERS: [&str; 11] = [
        "coupon_id",
        "order_id",
        "aftersale_id",
        "sku_id",
        "delta",
        "set",
        "page",
        "id",
        "sort",
        "category_id",
        "product_id",
    ];
    const FLAGS: [&str; 3] = ["approve", "restock", "follow"];
    let mut out = Map::new();
    for (k, v) in fields {
        let v = v.trim();
        if v.is_empty() || k == "next" || k == "back" {
            continue;
        }
        if NUMBERS.contains(&k.as_str()) {
            let n: i64 = v.parse().map_err(|_| format!("{k} 须为整数"))?;
            out.insert(k.clone(), json!(n));
        } else if FLAGS.contains(&k.as_str()) {
            out.insert(k.clone(), json!(matches!(v, "1" | "true" | "on" | "yes")));
        } else if k == "amount_yuan" {
            let fen = parse_yuan(v).ok_or_else(|| "金额须为元，最多两位小数".to_string())?;
            out.insert("amount_fen".into(), json!(fen));
        } else {
            out.insert(k.clone(), json!(v));
        }
    }
    Ok(Value::Object(out))
}

/// The console page a form was posted from (`Referer`, path and query), if it is one.
fn referer_path(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        })
        .filter(|p| p.starts_with("/admin"))
}

/// What the API answered a forwarded form.
struct Answer {
    ok: bool,
    set_cookies: Vec<HeaderValue>,
    body: Value,
}

impl Answer {
    /// The message for people: every field's, or the error's own.
    fn message(&self, otherwise: &str) -> String {
        let fields: Vec<String> = self.body["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| s(&f["message"]))
            .collect();
        if fields.is_empty() {
            self.body["message"]
                .as_str()
                .unwrap_or(otherwise)
                .to_string()
        } else {
            fields.join("；")
        }
    }
}

/// Calls `/admin/api/{name}` with `body` as the browser's own request would: its cookies,
/// origin and client (the request's extensions), so every check of the API applies.
async fn forward(
    api: Router,
    parts: axum::http::request::Parts,
    name: &str,
    content_type: HeaderValue,
    body: Body,
) -> Answer {
    let mut call = Request::builder()
        .method(Method::POST)
        .uri(format!("/admin/api/{name}"))
        .body(body)
        .expect("a request");
    for h in [
        header::COOKIE,
        header::ORIGIN,
        header::CONTENT_LENGTH,
        "sec-fetch-site".parse().expect("name"),
    ] {
        if let Some(v) = parts.headers.get(&h) {
            call.headers_mut().insert(h, v.clone());
        }
    }
    call.headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    *call.extensions_mut() = parts.extensions;
    let res = match api.oneshot(call).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let ok = res.status().is_success();
    let set_cookies = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    Answer {
        ok,
        set_cookies,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// `POST /admin/form/{name}`: the form as the API's JSON, through the API, then 303.
async fn form(Path(name): Path<String>, api: Router, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "表单过大").into_response();
    };
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(&bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let fields: BTreeMap<String, String> = pairs.iter().cloned().collect();
    let back = console_path(fields.get("back"))
        .or_else(|| referer_path(&parts.headers))
        .or_else(|| console_path(fields.get("next")))
        .unwrap_or_else(|| "/admin".into());
    let next = console_path(fields.get("next")).unwrap_or_else(|| back.clone());
    let json_body = match match name.as_str() {
        "save_product" => product_form_json(&pairs),
        "refund_order" => refund_form_json(&pairs),
        "save_coupon" => coupon_form_json(&fields),
        _ => form_json(&fields),
    } {
        Ok(v) => v,
        Err(m) => return flash_redirect(&back, &m),
    };
    // The JSON replaces the form: its length is not the form's.
    parts.headers.remove(header::CONTENT_LENGTH);
    let answer = forward(
        api,
        parts,
        &name,
        HeaderValue::from_static("application/json"),
        Body::from(json_body.to_string()),
    )
    .await;
    if !answer.ok {
        return flash_redirect(&back, &answer.message("操作失败"));
    }
    // A saved product's page is its own (a new one has just got its id).
    let next = match (name.as_str(), answer.body["id"].as_i64()) {
        ("save_product", Some(id)) => format!("/admin/products/{id}"),
        _ => next,
    };
    let mut out = Redirect::to(&next).into_response();
    for c in answer.set_cookies {
        out.headers_mut().append(header::SET_COOKIE, c);
    }
    out
}

// ------------------------------------------------------------------ pages

async fn login_page(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    if let Ok(Some(_)) = current(&st, &headers).await {
        return Redirect::to("/admin").into_response();
    }
    html(
        "登录",
        flash_of(&headers),
        "login",
        view! {
            <form class="panel console-form" method="post" action="/admin/form/login">
                <input type="hidden" name="next" value="/admin" />
                <input type="hidden" name="back" value="/admin/login" />
                <label class="field"><span>"用户名"</span>
                    <input name="username" autocomplete="username" required=true /></label>
                <label class="field"><span>"密码"</span>
                    <input name="password" type="password" autocomplete="current-password" required=true /></label>
                <button type="submit" class="btn btn-primary">"登录"</button>
            </form>
        },
    )
}

fn figure_cards(label: &'static str, f: &Value) -> impl IntoView {
    let share = f["paid_share_permille"].as_i64().unwrap_or(0);
    view! {
        <section class="panel">
            <h2 class="section-title">{label}</h2>
            <dl class="figures">
                <div><dt>"支付订单"</dt><dd data-testid="paid-orders">{s(&f["paid_orders"])}</dd></div>
                <div><dt>"销售额"</dt><dd data-testid="sales">{money(&f["sales_fen"])}</dd></div>
                <div><dt>"退款"</dt><dd data-testid="refunds">{money(&f["refunds_fen"])}</dd></div>
                <div><dt>"客单价"</dt><dd>{money(&f["average_fen"])}</dd></div>
                <div><dt>"支付率"</dt><dd>{format!("{}.{}%", share / 10, share % 10)}</dd></div>
            </dl>
        </section>
    }
}

async fn dashboard(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    if let Err(r) = signed_in(&st, &headers).await {
        return r;
    }
    let d = match call(&st, &headers, "dashboard", json!({})).await {
        Ok(d) => d,
        Err(m) => return html("概览", Some(m), "dashboard", ()),
    };
    let top: Vec<Value> = d["top_products"].as_array().cloned().unwrap_or_default();
    let chart = s(&d["chart_svg"]);
    html(
        "概览",
        flash_of(&headers),
        "dashboard",
        view! {
            <section class="panel waiting">
                <a href="/admin/orders?status=paid" data-testid="to-ship">{format!("待发货 {}", s(&d["orders_to_ship"]))}</a>
                <a href="/admin/aftersales?status=pending" data-testid="aftersales-waiting">{format!("待处理售后 {}", s(&d["aftersales_waiting"]))}</a>
            </section>
            {figure_cards("今日", &d["today"])}
            {figure_cards("近 7 天", &d["days_7"])}
            {figure_cards("近 30 天", &d["days_30"])}
            <section class="panel">
                <h2 class="section-title">"近 30 天每日销售额"</h2>
                <div class="chart" inner_html=chart></div>
            </section>
            <section class="panel">
                <h2 class="section-title">"热销商品（30 天）"</h2>
                <ol class="top-products">
                    {top.iter().map(|p| view! {
                        <li>{s(&p["name"])}" · "{format!("{} 件", s(&p["quantity"]))}" · "{money(&p["sales_fen"])}</li>
                    }).collect_view()}
                </ol>
            </section>
        },
    )
}

async fn orders_page(
    State(st): State<AdminState>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(r) = signed_in(&st, &headers).await {
        return r;
    }
    let mut filter = Map::new();
    for k in ["status", "q", "from", "to"] {
        if let Some(v) = q.get(k).filter(|v| !v.trim().is_empty()) {
            filter.insert(k.into(), json!(v.trim()));
        }
    }
    let page: i64 = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let mut body = filter.clone();
    body.insert("page".into(), json!(page));
    let (list, error) = match call(&st, &headers, "list_orders", Value::Object(body)).await {
        Ok(v) => (v, None),
        Err(m) => (json!({"orders": []}), Some(m)),
    };
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(filter.iter().map(|(k, v)| (k.clone(), s(v))))
        .finish();
    let export = format!("/admin/api/export_orders.csv?{query}");
    let more = list["more"].as_bool().unwrap_or(false);
    let status = q.get("status").cloned().unwrap_or_default();
    let orders: Vec<Value> = list["orders"].as_array().cloned().unwrap_or_default();
    let page_link = move |p: i64| {
        let sep = if query.is_empty() { "" } else { "&" };
        format!("/admin/orders?{query}{sep}page={p}")
    };
    html(
        "订单",
        error.or_else(|| flash_of(&headers)),
        "orders",
        view! {
            <form class="panel console-filter" method="get" action="/admin/orders">
                <label class="field"><span>"状态"</span>
                    <select name="status">
                        <option value="">"全部"</option>
                        {OrderStatus::ALL.iter().map(|o| view! {
                            <option value=o.as_str() selected=status == o.as_str()>{o.label()}</option>
                        }).collect_view()}
                    </select>
                </label>
                <label class="field"><span>"搜索"</span>
                    <input name="q" value=q.get("q").cloned().unwrap_or_default() placeholder="订单号、微信支付单号、收货人、电话" /></label>
                <label class="field"><span>"从"</span>
                    <input name="from" type="date" value=q.get("from").cloned().unwrap_or_default() /></label>
                <label class="field"><span>"到"</span>
                    <input name="to" type="date" value=q.get("to").cloned().unwrap_or_default() /></label>
                <div class="console-actions">
                    <button type="submit" class="btn btn-primary">"筛选"</button>
                    <a class="btn btn-secondary" href=export data-testid="export">"导出 CSV"</a>
                </div>
            </form>
            <ul class="console-list" data-testid="orders">
                {orders.iter().map(|o| view! {
                    <li class="panel">
                        <a href=format!("/admin/orders/{}", s(&o["order_id"]))>{s(&o["order_no"])}</a>
                        <span class="status-word">{status_label(&o["status"])}</span>
                        <div>{money(&o["total_fee"])}" · "{format!("{} 件", s(&o["item_count"]))}" · "{s(&o["recipient"])}" "{s(&o["phone"])}</div>
                        <div class="muted">{format!("下单 {}", when(&o["created_at"]))}</div>
                    </li>
                }).collect_view()}
            </ul>
            {orders.is_empty().then(|| view! { <p class="muted">"没有符合条件的订单"</p> })}
            <nav class="pager" aria-label="翻页">
                {(page > 1).then(|| view! { <a href=page_link(page - 1)>"上一页"</a> })}
                <span>{format!("第 {page} 页")}</span>
                {more.then(|| view! { <a href=page_link(page + 1)>"下一页"</a> })}
            </nav>
        },
    )
}

async fn order_page(
    State(st): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let admin = match signed_in(&st, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let o = match call(&st, &headers, "get_order", json!({"order_id": id})).await {
        Ok(o) => o,
        Err(m) => {
            return html(
                "订单",
                Some(m),
                "orders",
                view! { <a href="/admin/orders">"返回订单列表"</a> },
            )
        }
    };
    let here = format!("/admin/orders/{id}");
    let status = o["status"].as_str().unwrap_or("").to_string();
    let owner = admin.role == super::accounts::Role::Owner;
    let lines: Vec<Value> = o["lines"].as_array().cloned().unwrap_or_default();
    let refunds: Vec<Value> = o["refunds"].as_array().cloned().unwrap_or_default();
    let events: Vec<Value> = o["payment_events"].as_array().cloned().unwrap_or_default();
    let refundable =
        ["paid", "shipped", "completed", "partially_refunded"].contains(&status.as_str());
    let aftersale = o["aftersale"].clone();
    let title = format!("订单 {}", s(&o["order_no"]));
    html(
        &title,
        flash_of(&headers),
        "orders",
        view! {
            <section class="panel">
                <dl class="facts">
                    <dt>"状态"</dt><dd data-testid="admin-order-status">{status_label(&o["status"])}</dd>
                    <dt>"实付"</dt><dd>{money(&o["total_fee"])}</dd>
                    <dt>"已退款"</dt><dd>{money(&o["refunded_fen"])}</dd>
                    <dt>"下单时间"</dt><dd>{when(&o["created_at"])}</dd>
                    <dt>"支付时间"</dt><dd>{when(&o["paid_at"])}</dd>
                    <dt>"收货人"</dt><dd>{format!("{} {}", s(&o["address"]["name"]), s(&o["address"]["phone"]))}</dd>
                    <dt>"地址"</dt><dd>{format!("{} {}", s(&o["address"]["region"]), s(&o["address"]["detail"]))}</dd>
                    <dt>"备注"</dt><dd>{s(&o["remark"])}</dd>
                    <dt>"商家备注"</dt><dd data-testid="merchant-note">{s(&o["merchant_note"])}</dd>
                    {(!o["shipment"].is_null()).then(|| view! {
                        <dt>"物流"</dt><dd>{format!("{} {}", s(&o["shipment"]["carrier"]), s(&o["shipment"]["tracking_no"]))}</dd>
                    })}
                </dl>
            </section>
            <section class="panel">
                <h2 class="section-title">"商品"</h2>
                <ol class="console-lines">
                    {lines.iter().map(|l| view! {
                        <li>{format!("{}（{}）× {} · ", s(&l["product_name"]), s(&l["sku_name"]), s(&l["quantity"]))}{money(&l["unit_price_fen"])}</li>
                    }).collect_view()}
                </ol>
            </section>
            {(status == "paid").then(|| view! {
                <form class="panel console-form" method="post" action="/admin/form/ship_order" data-testid="ship-form">
                    <h2 class="section-title">"发货"</h2>
                    <input type="hidden" name="order_id" value=id />
                    <input type="hidden" name="next" value=here.clone() />
                    <label class="field"><span>"快递公司"</span>
                        <select name="carrier" required=true>
                            {CARRIERS.iter().map(|c| view! { <option value=*c>{*c}</option> }).collect_view()}
                        </select>
                    </label>
                    <label class="field"><span>"运单号"</span>
                        <input name="tracking_no" required=true pattern="[A-Za-z0-9-]{4,40}" /></label>
                    <button type="submit" class="btn btn-primary">"发货"</button>
                </form>
            })}
            {(status == "paid").then(|| view! {
                <form class="panel console-form" method="post" action="/admin/form/update_address" data-testid="address-form">
                    <h2 class="section-title">"修改收货地址（发货前）"</h2>
                    <input type="hidden" name="order_id" value=id />
                    <input type="hidden" name="next" value=format!("/admin/orders/{id}") />
                    <label class="field"><span>"收货人"</span>
                        <input name="name" value=s(&o["address"]["name"]) required=true maxlength="20" /></label>
                    <label class="field"><span>"手机号"</span>
                        <input name="phone" value=s(&o["address"]["phone"]) required=true /></label>
                    <label class="field"><span>"地区"</span>
                        <input name="region" value=s(&o["address"]["region"]) required=true /></label>
                    <label class="field"><span>"详细地址"</span>
                        <input name="detail" value=s(&o["address"]["detail"]) required=true /></label>
                    <label class="field"><span>"商家备注"</span>
                        <input name="note" value=s(&o["merchant_note"]) maxlength="200" /></label>
                    <button type="submit" class="btn btn-secondary">"保存地址"</button>
                </form>
            })}
            {(!aftersale.is_null()).then(|| view! {
                <section class="panel">
                    <h2 class="section-title">"售后"</h2>
                    <p>{aftersale_line(&aftersale)}</p>
                    <a href="/admin/aftersales">"去处理"</a>
                </section>
            })}
            {(!events.is_empty()).then(|| view! {
                <section class="panel" data-testid="payment-events">
                    <h2 class="section-title">"支付记录"</h2>
                    <p class="muted">{format!("微信支付单号 {}", s(&o["transaction_id"]))}</p>
                    <ol class="console-lines">
                        {events.iter().map(|e| view! {
                            <li>{format!("{} · {} · {} · {}", when(&e["at"]), s(&e["kind"]), s(&e["outcome"]), s(&e["detail"]))}</li>
                        }).collect_view()}
                    </ol>
                </section>
            })}
            {(!refunds.is_empty()).then(|| view! {
                <section class="panel">
                    <h2 class="section-title">"退款记录"</h2>
                    <ul>{refunds.iter().map(|r| view! {
                        <li>{money(&r["amount_fen"])}" · "{s(&r["state"])}" · "{s(&r["reason"])}</li>
                    }).collect_view()}</ul>
                </section>
            })}
            {(owner && refundable).then(|| view! {
                <form class="panel console-form" method="post" action="/admin/form/refund_order" data-testid="refund-form">
                    <h2 class="section-title">"退款"</h2>
                    <input type="hidden" name="order_id" value=id />
                    <input type="hidden" name="next" value=format!("/admin/orders/{id}") />
                    {lines.iter().enumerate().map(|(i, l)| view! {
                        <label class="field"><span>{format!("第 {} 行", i + 1)}</span>
                            <input type="hidden" name="line_no" value=i + 1 />
                            <input name="line_qty" inputmode="numeric" placeholder=format!("退几件（共 {}）", s(&l["quantity"]))
                                aria-label=format!("{}（{}）退货件数", s(&l["product_name"]), s(&l["sku_name"])) />
                        </label>
                    }).collect_view()}
                    <label class="field"><span>"金额（元）"</span>
                        <input name="amount_yuan" inputmode="decimal" placeholder="留空：所选商品的金额，或全部剩余" /></label>
                    <label class="field"><span>"退回库存"</span>
                        <input type="checkbox" name="restock" value="1" /></label>
                    <label class="field"><span>"原因"</span>
                        <input name="reason" required=true maxlength="80" /></label>
                    <button type="submit" class="btn btn-secondary">"退款"</button>
                </form>
            })}
        },
    )
}

fn aftersale_line(a: &Value) -> String {
    let kind = a["kind"]
        .as_str()
        .and_then(AftersaleKind::parse)
        .map(|k| k.label())
        .unwrap_or("");
    let status = a["status"]
        .as_str()
        .and_then(AftersaleStatus::parse)
        .map(|k| k.label())
        .unwrap_or("");
    format!("{kind} · {status} · {}", s(&a["reason"]))
}

async fn aftersales_page(
    State(st): State<AdminState>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(r) = signed_in(&st, &headers).await {
        return r;
    }
    let status = q.get("status").filter(|s| !s.is_empty()).cloned();
    let body = match &status {
        Some(s) => json!({"status": s}),
        None => json!({}),
    };
    let (list, error) = match call(&st, &headers, "list_aftersales", body).await {
        Ok(v) => (v, None),
        Err(m) => (json!({"aftersales": []}), Some(m)),
    };
    let here = match &status {
        Some(s) => format!("/admin/aftersales?status={s}"),
        None => "/admin/aftersales".to_string(),
    };
    let items: Vec<Value> = list["aftersales"].as_array().cloned().unwrap_or_default();
    html(
        "售后",
        error.or_else(|| flash_of(&headers)),
        "aftersales",
        view! {
            <nav class="status-tabs" aria-label="售后状态">
                <a href="/admin/aftersales" class:active=status.is_none()>"全部"</a>
                {AftersaleStatus::ALL.iter().map(|a| view! {
                    <a href=format!("/admin/aftersales?status={}", a.as_str())
                        class:active=status.as_deref() == Some(a.as_str())>{a.label()}</a>
                }).collect_view()}
            </nav>
            <ul class="console-list" data-testid="aftersales">
                {items.iter().map(|a| {
                    let id = a["aftersale_id"].as_i64().unwrap_or(0);
                    let st = a["status"].as_str().unwrap_or("").to_string();
                    view! {
                        <li class="panel" data-testid="aftersale-row">
                            <a href=format!("/admin/orders/{}", s(&a["order_id"]))>{s(&a["order_no"])}</a>
                            <div>{aftersale_line(a)}</div>
                            {(!s(&a["note"]).is_empty()).then(|| view! { <div class="muted">{format!("说明：{}", s(&a["note"]))}</div> })}
                            <div class="muted">{format!("{} · 实付 {} · 申请于 {}", s(&a["recipient"]), money(&a["total_fee"]), when(&a["created_at"]))}</div>
                            {(st == "pending" || st == "refunding").then(|| view! {
                                <form method="post" action="/admin/form/decide_aftersale" class="inline-form">
                                    <input type="hidden" name="aftersale_id" value=id />
                                    <input type="hidden" name="approve" value="1" />
                                    <input type="hidden" name="next" value=here.clone() />
                                    <input name="reason" placeholder="说明（退货时填写寄回地址）" aria-label="同意说明" maxlength="100" />
                                    <button type="submit" class="btn btn-primary" data-testid="approve">"同意"</button>
                                </form>
                            })}
                            {(st == "awaiting_return").then(|| view! {
                                <form method="post" action="/admin/form/receive_return" class="inline-form">
                                    <input type="hidden" name="aftersale_id" value=id />
                                    <input type="hidden" name="next" value=here.clone() />
                                    <button type="submit" class="btn btn-primary" data-testid="receive">"已收到退货，退款"</button>
                                </form>
                            })}
                            {(st == "pending" || st == "awaiting_return").then(|| view! {
                                <form method="post" action="/admin/form/decide_aftersale" class="inline-form">
                                    <input type="hidden" name="aftersale_id" value=id />
                                    <input type="hidden" name="approve" value="0" />
                                    <input type="hidden" name="next" value=here.clone() />
                                    <input name="reason" placeholder="拒绝原因（顾客可见）" aria-label="拒绝原因" maxlength="100" required=true />
                                    <button type="submit" class="btn btn-secondary" data-testid="refuse">"拒绝"</button>
                                </form>
                            })}
                        </li>
                    }
                }).collect_view()}
            </ul>
            {items.is_empty().then(|| view! { <p class="muted">"没有售后申请"</p> })}
        },
    )
}

// ------------------------------------------------------------------ catalogue

/// `save_product`'s JSON from its form: the SKU rows come as repeated `sku_id`, `sku_name`,
/// `sku_price` (yuan), `sku_stock` fields, a row per position; a row with no name is no SKU.
fn product_form_json(pairs: &[(String, String)]) -> Result<Value, String> {
    let one = |k: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let all = |k: &str| -> Vec<String> {
        pairs
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_string())
            .collect()
    };
    let mut product = Map::new();
    if !one("id").is_empty() {
        product.insert(
            "id".into(),
            json!(one("id").parse::<i64>().map_err(|_| "id 须为整数")?),
        );
    }
    product.insert("name".into(), json!(one("name")));
    product.insert(
        "category_id".into(),
        json!(one("category_id")
            .parse::<i64>()
            .map_err(|_| "请选择分类")?),
    );
    product.insert("description".into(), json!(one("description")));
    let images: Vec<String> = one("images")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    product.insert("images".into(), json!(images));
    product.insert("on_sale".into(), json!(one("on_sale") == "1"));
    if !one("sort").is_empty() {
        product.insert(
            "sort".into(),
            json!(one("sort").parse::<i64>().map_err(|_| "顺序须为整数")?),
        );
    }
    let (ids, names, prices, stocks) = (
        all("sku_id"),
        all("sku_name"),
        all("sku_price"),
        all("sku_stock"),
    );
    // Existing SKUs ticked 删除 are left out: the API deletes them, or retires them when orders
    // name them.
    let removed = all("sku_remove");
    let mut skus = Vec::new();
    for (i, name) in names.iter().enumerate() {
        if name.is_empty()
            || ids
                .get(i)
                .is_some_and(|id| !id.is_empty() && removed.contains(id))
        {
            continue;
        }
        let price = prices.get(i).map(String::as_str).unwrap_or("");
        let price =
            parse_yuan(price).ok_or_else(|| format!("规格「{name}」的价格须为元，最多两位小数"))?;
        let mut sku = Map::new();
        if let Some(id) = ids.get(i).filter(|v| !v.is_empty()) {
            sku.insert(
                "id".into(),
                json!(id.parse::<i64>().map_err(|_| "sku_id 须为整数")?),
            );
        }
        sku.insert("name".into(), json!(name));
        sku.insert("price_fen".into(), json!(price));
        if let Some(stock) = stocks.get(i).filter(|v| !v.is_empty()) {
            sku.insert(
                "stock".into(),
                json!(stock
                    .parse::<i64>()
                    .map_err(|_| format!("规格「{name}」的库存须为整数"))?),
            );
        }
        skus.push(Value::Object(sku));
    }
    product.insert("skus".into(), json!(skus));
    Ok(Value::Object(product))
}

async fn products_page(
    State(st): State<AdminState>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(r) = signed_in(&st, &headers).await {
        return r;
    }
    let search = q.get("q").cloned().unwrap_or_default();
    let body = if search.trim().is_empty() {
        json!({})
    } else {
        json!({"q": search})
    };
    let (list, error) = match call(&st, &headers, "list_products", body).await {
        Ok(v) => (v, None),
        Err(m) => (json!([]), Some(m)),
    };
    let products: Vec<Value> = list.as_array().cloned().unwrap_or_default();
    html(
        "商品",
        error.or_else(|| flash_of(&headers)),
        "products",
        view! {
            <form class="panel console-filter" method="get" action="/admin/products">
                <label class="field"><span>"搜索"</span>
                    <input name="q" value=search placeholder="商品名称" /></label>
                <div class="console-actions">
                    <button type="submit" class="btn btn-primary">"搜索"</button>
                    <a class="btn btn-secondary" href="/admin/products/new" data-testid="new-product">"新增商品"</a>
                    <a class="btn btn-secondary" href="/admin/categories">"管理分类"</a>
                </div>
            </form>
            <ul class="console-list" data-testid="products">
                {products.iter().map(|p| {
                    let skus: Vec<Value> = p["skus"].as_array().cloned().unwrap_or_default();
                    view! {
                        <li class="panel">
                            <a href=format!("/admin/products/{}", s(&p["id"]))>{s(&p["name"])}</a>
                            <span class="status-word">{if p["on_sale"].as_bool().unwrap_or(false) { "在售" } else { "已下架" }}</span>
                            <div class="muted">{skus.iter().map(|k| format!(
                                "{} {} · 库存 {}", s(&k["name"]), money(&k["price_fen"]), s(&k["stock"])
                            )).collect::<Vec<_>>().join("；")}</div>
                        </li>
                    }
                }).collect_view()}
            </ul>
        },
    )
}

async fn product_page(
    State(st): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(r) = signed_in(&st, &headers).await {
        return r;
    }
    let categories = call(&st, &headers, "list_categories", json!({}))
        .await
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default();
    let product = if id == "new" {
        json!({"name": "", "description": "", "images": [], "on_sale": true, "skus": []})
    } else {
        let Ok(n) = id.parse::<i64>() else {
            return html("商品", Some("商品不存在".into()), "products", ());
        };
        let list = call(&st, &headers, "list_products", json!({}))
            .await
            .unwrap_or(json!([]));
        match list
            .as_array()
            .and_then(|l| l.iter().find(|p| p["id"].as_i64() == Some(n)).cloned())
        {
            Some(p) => p,
            None => return html("商品", Some("商品不存在".into()), "products", ()),
        }
    };
    let here = if id == "new" {
        "/admin/products/new".to_string()
    } else {
        format!("/admin/products/{id}")
    };
    // A picture just uploaded joins the list.
    let mut images: Vec<String> = product["images"]
        .as_array()
        .into_iter()
        .flatten()
        .map(s)
        .collect();
    if let Some(added) = q.get("image").filter(|p| p.starts_with("/uploads/")) {
        if !images.contains(added) {
            images.push(added.clone());
        }
    }
    let skus: Vec<Value> = product["skus"].as_array().cloned().unwrap_or_default();
    let category = product["category_id"].as_i64();
    let existing = skus.clone();
    let title = if id == "new" {
        "新增商品".to_string()
    } else {
        format!("编辑：{}", s(&product["name"]))
    };
    let codes = match product["id"].as_i64() {
        Some(pid) => {
            let follow = q.get("follow").is_some_and(|f| f == "1");
            call(
                &st,
                &headers,
                "product_qrcode",
                json!({"product_id": pid, "follow": follow}),
            )
            .await
        }
        None => Err(String::new()),
    };
    let qr_error = codes.as_ref().err().filter(|m| !m.is_empty()).cloned();
    let flash = qr_error.or_else(|| flash_of(&headers));
    html(
        &title,
        flash,
        "products",
        view! {
            <form class="panel console-form" method="post" enctype="multipart/form-data"
                action=format!("/admin/form/upload_image?back={}", url::form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>())>
                <h2 class="section-title">"上传图片"</h2>
                <label class="field"><span>"图片"</span>
                    <input type="file" name="file" accept="image/jpeg,image/png,image/webp" required=true data-testid="upload-file" /></label>
                <p class="muted">"JPEG、PNG 或 WebP，最大 10 MB；裁成正方形（800 像素和 240 像素）。"</p>
                <button type="submit" class="btn btn-secondary" data-testid="upload">"上传"</button>
            </form>
            <form class="panel console-form" method="post" action="/admin/form/save_product" data-testid="product-form">
                {(id != "new").then(|| view! { <input type="hidden" name="id" value=id.clone() /> })}
                <input type="hidden" name="back" value=here.clone() />
                <label class="field"><span>"名称"</span>
                    <input name="name" value=s(&product["name"]) required=true maxlength="60" /></label>
                <label class="field"><span>"分类"</span>
                    <select name="category_id" required=true>
                        {categories.iter().map(|c| view! {
                            <option value=s(&c["id"]) selected=c["id"].as_i64() == category>{s(&c["name"])}</option>
                        }).collect_view()}
                    </select>
                </label>
                <label class="field"><span>"描述"</span>
                    <textarea name="description" rows="3" maxlength="5000">{s(&product["description"])}</textarea></label>
                <label class="field"><span>"图片路径"</span>
                    <textarea name="images" rows="3" data-testid="images">{images.join("\n")}</textarea></label>
                <label class="field"><span>"顺序"</span>
                    <input name="sort" value=s(&product["sort"]) inputmode="numeric" placeholder="数字小的在前" /></label>
                <label class="field"><span>"上架"</span>
                    <input type="checkbox" name="on_sale" value="1" checked=product["on_sale"].as_bool().unwrap_or(true) /></label>
                <fieldset class="sku-rows">
                    <legend>"规格（价格单位：元；已有规格的库存在下方调整）"</legend>
                    {existing.iter().map(|k| view! {
                        <div class="sku-row">
                            <input type="hidden" name="sku_id" value=s(&k["id"]) />
                            <input name="sku_name" value=s(&k["name"]) aria-label="规格名称" />
                            <input name="sku_price" value=format_fen(k["price_fen"].as_i64().unwrap_or(0)) inputmode="decimal" aria-label="价格（元）" />
                            <input type="hidden" name="sku_stock" value="" />
                            <label class="sku-remove"><input type="checkbox" name="sku_remove" value=s(&k["id"]) />" 删除"</label>
                        </div>
                    }).collect_view()}
                    {(0..2).map(|i| view! {
                        <div class="sku-row">
                            <input type="hidden" name="sku_id" value="" />
                            <input name="sku_name" placeholder="新规格名称" aria-label=format!("新规格 {} 名称", i + 1) />
                            <input name="sku_price" placeholder="价格" inputmode="decimal" aria-label=format!("新规格 {} 价格（元）", i + 1) />
                            <input name="sku_stock" placeholder="库存" inputmode="numeric" aria-label=format!("新规格 {} 库存", i + 1) />
                        </div>
                    }).collect_view()}
                </fieldset>
                <button type="submit" class="btn btn-primary" data-testid="save-product">"保存"</button>
            </form>
            {codes.ok().map(|c| product_codes(&c, &id))}
            {skus.iter().map(|k| view! {
                <form class="panel inline-form" method="post" action="/admin/form/adjust_stock">
                    <input type="hidden" name="sku_id" value=s(&k["id"]) />
                    <input type="hidden" name="next" value=here.clone() />
                    <span>{format!("{} · 库存 {}", s(&k["name"]), s(&k["stock"]))}</span>
                    <input name="delta" inputmode="numeric" required=true placeholder="+10 或 -2" aria-label=format!("{} 库存增减", s(&k["name"])) />
                    <input name="reason" required=true placeholder="原因" aria-label=format!("{} 调整原因", s(&k["name"])) />
                    <button type="submit" class="btn btn-secondary">"调整库存"</button>
                </form>
            }).collect_view()}
        },
    )
}

/// `POST /admin/form/upload_image?back=…`: the multipart body as it came, to the API; back to
/// the page with `?image=<path>` so the product form lists the picture.
async fn upload_form(api: Router, req: Request) -> Response {
    let back = req.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "back")
            .map(|(_, v)| v.into_owned())
    });
    let (parts, body) = req.into_parts();
    let back = console_path(back.as_ref())
        .or_else(|| referer_path(&parts.headers))
        .unwrap_or_else(|| "/admin/products".into());
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let answer = forward(api, parts, "upload_image", content_type, body).await;
    if !answer.ok {
        return flash_redirect(&back, &answer.message("上传失败"));
    }
    let image = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("image", &s(&answer.body["path"]))
        .finish();
    let sep = if back.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{back}{sep}{image}")).into_response()
}

/// A 303 to `to` carrying `message` for the next page.
fn flash_redirect(to: &str, message: &str) -> Response {
    let mut res = Redirect::to(to).into_response();
    let cookie = format!(
        "{FLASH}={}; Path=/admin; Max-Age=60; HttpOnly; SameSite=Strict",
        hex::encode(message.as_bytes())
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

async fn audit_page(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    if let Err(r) = signed_in(&st, &headers).await {
        return r;
    }
    let (list, error) = match call(&st, &headers, "audit_log", json!({})).await {
        Ok(v) => (v, None),
        Err(m) => (json!([]), Some(m)),
    };
    let rows: Vec<Value> = list.as_array().cloned().unwrap_or_default();
    html(
        "操作记录",
        error.or_else(|| flash_of(&headers)),
        "audit",
        view! {
            <ul class="console-list" data-testid="audit">
                {rows.iter().map(|r| view! {
                    <li class="panel">
                        <div><strong>{s(&r["action"])}</strong>" · "{s(&r["who"])}" · "{when(&r["at"])}</div>
                        <code class="muted">{r["detail"].to_string()}</code>
                    </li>
                }).collect_view()}
            </ul>
        },
    )
}

// ------------------------------------------------------------------ WeChat launch tools

/// A product's QR codes (the plain one always; the follow-first one on request).
fn product_codes(codes: &Value, product_id: &str) -> impl IntoView {
    let plain_svg = s(&codes["plain"]["svg"]);
    let plain_url = s(&codes["plain"]["url"]);
    let follow = codes.get("follow").cloned();
    let follow_link = format!("/admin/products/{product_id}?follow=1#qrcodes");
    view! {
        <section class="panel qrcodes" id="qrcodes" data-testid="qrcodes">
            <h2 class="section-title">"二维码"</h2>
            <div class="qr-pair">
                <figure>
                    <div class="qr" inner_html=plain_svg></div>
                    <figcaption>"扫码直接打开商品"<br /><span class="muted">{plain_url}</span><br />
                        <a href=format!("/admin/products/{product_id}/print") data-testid="print-qr">"打印二维码卡片"</a></figcaption>
                </figure>
                {match follow {
                    Some(f) => view! {
                        <figure data-testid="follow-qr">
                            <div class="qr" inner_html=s(&f["svg"])></div>
                            <figcaption>"扫码关注公众号后打开商品"<br /><span class="muted">{format!("场景 {}", s(&f["scene"]))}</span><br />
                                <a href=format!("/admin/products/{product_id}/print?follow=1") data-testid="print-follow-qr">"打印二维码卡片"</a></figcaption>
                        </figure>
                    }.into_any(),
                    None => view! {
                        <p><a href=follow_link data-testid="make-follow-qr">"生成关注公众号的二维码（带参数二维码，永久）"</a></p>
                    }.into_any(),
                }}
            </div>
        </section>
    }
}

// ------------------------------------------------------------------ printable QR cards

/// `¥39.90`, or `¥39.90 – ¥59.90` when the SKUs differ; `None` without SKUs.
fn price_range(skus: &[Value]) -> Option<String> {
    let prices: Vec<i64> = skus
        .iter()
        .filter_map(|k| k["price_fen"].as_i64())
        .collect();
    let (min, max) = (prices.iter().min()?, prices.iter().max()?);
    Some(if min == max {
        format!("¥{}", format_fen(*min))
    } else {
        format!("¥{} – ¥{}", format_fen(*min), format_fen(*max))
    })
}

/// What a printed card says.
struct Sheet {
    /// The product's name, or the coupon's title.
    title: String,
    /// The price range, or the coupon's rule (large).
    headline: String,
    /// Smaller lines under it (the coupon's minimum spend and validity).
    details: Vec<String>,
    /// The QR code (SVG with its quiet zone) and the URL it holds.
    svg: String,
    url: String,
    /// 「微信扫一扫 购买」 / 「微信扫一扫 领取」.
    prompt: &'static str,
    /// Shown on screen only: where to go back to, and what to know before printing.
    back: String,
    warning: Option<String>,
}

/// A print page: on screen the card on the console's page with how to print it; on paper (the
/// stylesheet's `@media print`) only the card, black on white, centred — no navigation.
fn print_page(page_title: &str, nav: &'static str, sheet: Sheet) -> Response {
    let Sheet {
        title,
        headline,
        details,
        svg,
        url,
        prompt,
        back,
        warning,
    } = sheet;
    html_page(
        "console console-print",
        page_title,
        None,
        nav,
        view! {
            <div class="panel print-hint" data-testid="print-hint">
                <p>"用浏览器打印 (Ctrl+P)：纸上只有下面这张卡片，二维码边长 6 厘米。"</p>
                {warning.map(|w| view! { <p class="notice notice-error" role="alert">{w}</p> })}
                <a href=back>"返回"</a>
            </div>
            <article class="print-sheet" data-testid="print-sheet">
                <p class="print-shop">{super::SHOP_NAME}</p>
                <h2 class="print-title" data-testid="print-title">{title}</h2>
                <p class="print-headline" data-testid="print-headline">{headline}</p>
                {details.into_iter().map(|d| view! { <p class="print-detail">{d}</p> }).collect_view()}
                <div class="print-qr" role="img" aria-label=format!("二维码：{url}") inner_html=svg></div>
                <p class="print-prompt">{prompt}</p>
                <p class="print-url" data-testid="print-url">{url}</p>
            </article>
        },
    )
}

/// `GET /admin/products/{id}/print` (`?follow=1`: the follow-first parametric code): the
/// product's card to stick on a shelf — the shop, the product, its price range in yuan (the
/// SKUs on sale, from the database), the code and the URL it holds.
async fn product_print(
    State(st): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(r) = signed_in(&st, &headers).await {
        return r;
    }
    let Ok(id) = id.parse::<i64>() else {
        return not_found("products", "商品不存在");
    };
    let product = match call(&st, &headers, "list_products", json!({}))
        .await
        .map(|l| {
            l.as_array()
                .and_then(|l| l.iter().find(|p| p["id"].as_i64() == Some(id)).cloned())
        }) {
        Ok(Some(p)) => p,
        Ok(None) => return not_found("products", "商品不存在"),
        Err(m) => {
            return with_status(
                StatusCode::INTERNAL_SERVER_ERROR,
                html("打印二维码", Some(m), "products", ()),
            )
        }
    };
    let follow = q.get("follow").is_some_and(|f| f == "1");
    let back = format!("/admin/products/{id}#qrcodes");
    let codes = match call_status(
        &st,
        &headers,
        "product_qrcode",
        json!({"product_id": id, "follow": follow}),
    )
    .await
    {
        Ok(c) => c,
        Err((StatusCode::NOT_FOUND, m)) => return not_found("products", &m),
        Err((status, m)) => {
            return with_status(
                status,
                html(
                    "打印二维码",
                    Some(m),
                    "products",
                    view! { <a href=back>"返回"</a> },
                ),
            )
        }
    };
    let code = if follow {
        &codes["follow"]
    } else {
        &codes["plain"]
    };
    let skus: Vec<Value> = product["skus"].as_array().cloned().unwrap_or_default();
    let on_sale = product["on_sale"].as_bool().unwrap_or(false);
    print_page(
        &format!("打印：{}", s(&product["name"])),
        "products",
        Sheet {
            title: s(&product["name"]),
            headline: price_range(&skus).unwrap_or_else(|| "暂无价格".into()),
            details: Vec::new(),
            svg: s(&code["svg"]),
            url: s(&code["url"]),
            prompt: if follow {
                "微信扫一扫 关注后购买"
            } else {
                "微信扫一扫 购买"
            },
            back,
            warning: match (on_sale, skus.is_empty()) {
                (false, _) => Some("这件商品已下架：顾客扫码能打开，但买不了。".into()),
                (true, true) => Some("这件商品没有规格，顾客买不了。".into()),
                _ => None,
            },
        },
    )
}

/// `GET /admin/coupons/{id}/print`: the coupon's card for a counter — the shop, the coupon's
/// title, its rule, minimum spend and validity, WeChat's `QR_CARD` code and the URL it holds.
async fn coupon_print(
    State(st): State<AdminState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = signed_in(&st, &headers).await {
        return r;
    }
    let Ok(id) = id.parse::<i64>() else {
        return not_found("coupons", "优惠券不存在");
    };
    let coupon = match call(&st, &headers, "list_coupons", json!({}))
        .await
        .map(|l| {
            l.as_array().and_then(|l| {
                l.iter()
                    .find(|c| c["coupon_id"].as_i64() == Some(id))
                    .cloned()
            })
        }) {
        Ok(Some(c)) => c,
        Ok(None) => return not_found("coupons", "优惠券不存在"),
        Err(m) => {
            return with_status(
                StatusCode::INTERNAL_SERVER_ERROR,
                html("打印二维码", Some(m), "coupons", ()),
            )
        }
    };
    let back = "/admin/coupons".to_string();
    let qr = match call_status(&st, &headers, "coupon_qrcode", json!({"coupon_id": id})).await {
        Ok(v) => v,
        Err((StatusCode::NOT_FOUND, m)) => return not_found("coupons", &m),
        Err((status, m)) => {
            return with_status(
                status,
                html(
                    "打印二维码",
                    Some(m),
                    "coupons",
                    view! { <a href=back>"返回"</a> },
                ),
            )
        }
    };
    let least = coupon["least_cost_fen"].as_i64().unwrap_or(0);
    let mut details = vec![if least > 0 {
        format!("满 ¥{} 可用", format_fen(least))
    } else {
        "无门槛".to_string()
    }];
    let validity = s(&coupon["validity"]);
    if !validity.is_empty() {
        details.push(format!("有效期：{validity}"));
    }
    print_page(
        &format!("打印：{}", s(&coupon["title"])),
        "coupons",
        Sheet {
            title: s(&coupon["title"]),
            headline: s(&coupon["rule"]),
            details,
            svg: s(&qr["svg"]),
            url: s(&qr["url"]),
            prompt: "微信扫一扫 领取",
            back,
            warning: None,
        },
    )
}

async fn doctor_page(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    if let Err(r) = signed_in(&st, &headers).await {
        return r;
    }
    let report = match call(&st, &headers, "doctor", json!({})).await {
        Ok(v) => v,
        Err(m) => return html("配置检查", Some(m), "doctor", ()),
    };
    let checks: Vec<Value> = report["checks"].as_array().cloned().unwrap_or_default();
    let paste: Vec<Value> = report["paste"].as_array().cloned().unwrap_or_default();
    html(
        "配置检查",
        flash_of(&headers),
        "doctor",
        view! {
            <p class="muted">"与命令 wxmall doctor 相同的检查，由本实例现在运行。"</p>
            <ul class="console-list" data-testid="checks">
                {checks.iter().map(|c| {
                    let status = s(&c["status"]);
                    let label = match status.as_str() { "ok" => "正常", "warn" => "注意", _ => "失败" };
                    view! {
                        <li class=format!("panel check check-{status}") data-testid="check">
                            <div><span class="check-status">{label}</span>" "<strong>{s(&c["name"])}</strong></div>
                            <div>{s(&c["detail"])}</div>
                            {(!s(&c["fix"]).is_empty()).then(|| view! { <div class="check-fix">{format!("怎么做：{}", s(&c["fix"]))}</div> })}
                        </li>
                    }
                }).collect_view()}
            </ul>
            <section class="panel">
                <h2 class="section-title">"填写到微信后台的值"</h2>
                <dl class="facts">
                    {paste.iter().map(|p| view! { <dt>{s(&p["field"])}</dt><dd><code>{s(&p["value"])}</code></dd> }).collect_view()}
                </dl>
            </section>
        },
    )
}

/// `refund_order`'s JSON from the order page's form: the amount in yuan (empty: what the lines
/// are worth, or everything left), the lines as repeated `line_no` / `line_qty` (empty or 0: not
/// that line), `restock`, `reason`.
fn refund_form_json(pairs: &[(String, String)]) -> Result<Value, String> {
    let fields: BTreeMap<String, String> = pairs
        .iter()
        .filter(|(k, _)| k != "line_no" && k != "line_qty")
        .cloned()
        .collect();
    let mut v = form_json(&fields)?;
    let nos: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "line_no")
        .map(|(_, v)| v.trim())
        .collect();
    let qtys: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "line_qty")
        .map(|(_, v)| v.trim())
        .collect();
    let mut lines = Vec::new();
    for (no, qty) in nos.iter().zip(qtys.iter()) {
        if qty.is_empty() || *qty == "0" {
            continue;
        }
        let line_no: i64 = no.parse().map_err(|_| "line_no 须为整数".to_string())?;
        let quantity: i64 = qty
            .parse()
            .map_err(|_| format!("第 {line_no} 行的数量须为整数"))?;
        lines.push(json!({"line_no": line_no, "quantity": quantity}));
    }
    if !lines.is_empty() {
        v["lines"] = json!(lines);
    }
    Ok(v)
}

/// The coupon form in yuan → `save_coupon`'s JSON in fen.
fn coupon_form_json(fields: &BTreeMap<String, String>) -> Result<Value, String> {
    let mut out = Map::new();
    let get = |k: &str| fields.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    for (k, v) in [
        ("title", get("title")),
        ("kind", get("kind")),
        ("color", get("color")),
    ] {
        if let Some(v) = v {
            out.insert(k.into(), json!(v));
        }
    }
    for (form, api) in [
        ("least_cost_yuan", "least_cost_fen"),
        ("reduce_cost_yuan", "reduce_cost_fen"),
    ] {
        if let Some(v) = get(form) {
            let fen = parse_yuan(v).ok_or_else(|| "金额须为元，最多两位小数".to_string())?;
            out.insert(api.into(), json!(fen));
        }
    }
    if !out.contains_key("least_cost_fen") {
        out.insert("least_cost_fen".into(), json!(0));
    }
    for k in ["discount_percent", "quantity", "days", "per_user"] {
        if let Some(v) = get(k) {
            let n: i64 = v.parse().map_err(|_| format!("{k} 须为整数"))?;
            out.insert(k.into(), json!(n));
        }
    }
    // The form offers both amounts; only the chosen kind's goes to the API.
    match out.get("kind").and_then(Value::as_str) {
        Some("cash") => {
            out.remove("discount_percent");
        }
        Some("discount") => {
            out.remove("reduce_cost_fen");
        }
        _ => {}
    }
    Ok(Value::Object(out))
}

async fn coupons_page(
    State(st): State<AdminState>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(r) = signed_in(&st, &headers).await {
        return r;
    }
    let (list, error) = match call(&st, &headers, "list_coupons", json!({})).await {
        Ok(v) => (v, None),
        Err(m) => (json!([]), Some(m)),
    };
    let coupons: Vec<Value> = list.as_array().cloned().unwrap_or_default();
    // ?qr=ID shows that coupon's QR code (made at WeChat on request).
    let (qr, qr_error) = match q.get("qr").and_then(|v| v.parse::<i64>().ok()) {
        Some(id) => match call(&st, &headers, "coupon_qrcode", json!({"coupon_id": id})).await {
            Ok(v) => (Some(v), None),
            Err(m) => (None, Some(m)),
        },
        None => (None, None),
    };
    html(
        "优惠券",
        error.or(qr_error).or_else(|| flash_of(&headers)),
        "coupons",
        view! {
            <p class="muted">"优惠券放在顾客的微信卡包里：顾客在首页或商品页领取，结算时「使用优惠券」，付款后自动核销。"
                "微信审核通过前，只有测试白名单里的用户能领取（wxmall card whitelist）。"</p>
            {qr.map(|c| view! {
                <section class="panel qrcodes" data-testid="coupon-qr">
                    <h2 class="section-title">"领券二维码"</h2>
                    <figure>
                        <div class="qr" inner_html=s(&c["svg"])></div>
                        <figcaption>"微信扫码领取"<br /><span class="muted">{s(&c["card_id"])}</span><br />
                            <a href=format!("/admin/coupons/{}/print", s(&c["coupon_id"])) data-testid="print-coupon-qr">"打印二维码卡片"</a></figcaption>
                    </figure>
                </section>
            })}
            <table class="console-table" data-testid="coupons">
                <thead><tr>
                    <th scope="col">"券"</th><th scope="col">"规则"</th><th scope="col">"有效期"</th>
                    <th scope="col">"领取 / 核销 / 发放"</th><th scope="col">"状态"</th><th scope="col">"操作"</th>
                </tr></thead>
                <tbody>
                    {coupons.iter().map(|c| {
                        let id = s(&c["coupon_id"]);
                        let active = c["status"] == "active";
                        view! {
                            <tr>
                                <td>{s(&c["title"])}</td>
                                <td>{s(&c["rule"])}</td>
                                <td>{s(&c["validity"])}</td>
                                <td>{format!("{} / {} / {}", s(&c["taken"]), s(&c["redeemed"]), s(&c["quantity"]))}</td>
                                <td>{if active { "发放中" } else { "已停发" }}</td>
                                <td>
                                    {active.then(|| view! {
                                        <a href=format!("/admin/coupons?qr={id}")>"二维码"</a>
                                        " "
                                        <a href=format!("/admin/coupons/{id}/print")>"打印"</a>
                                        <form method="post" action="/admin/form/stop_coupon" class="inline-form">
                                            <input type="hidden" name="coupon_id" value=id.clone() />
                                            <input type="hidden" name="next" value="/admin/coupons" />
                                            <button type="submit" class="btn btn-secondary">{format!("停发「{}」", s(&c["title"]))}</button>
                                        </form>
                                    })}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            <form class="panel console-form" method="post" action="/admin/form/save_coupon" data-testid="coupon-form">
                <h2 class="section-title">"新建优惠券"</h2>
                <input type="hidden" name="next" value="/admin/coupons" />
                <label class="field"><span>"券名"</span><input name="title" required=true maxlength="9" placeholder="最多 9 个字" /></label>
                <label class="field"><span>"类型"</span>
                    <select name="kind">
                        <option value="cash">"代金券（满减）"</option>
                        <option value="discount">"折扣券"</option>
                    </select>
                </label>
                <label class="field"><span>"最低消费（元）"</span><input name="least_cost_yuan" inputmode="decimal" placeholder="0 为无门槛" /></label>
                <label class="field"><span>"减免（元，代金券）"</span><input name="reduce_cost_yuan" inputmode="decimal" /></label>
                <label class="field"><span>"优惠百分比（折扣券，30 即七折）"</span><input name="discount_percent" inputmode="numeric" /></label>
                <label class="field"><span>"发放数量"</span><input name="quantity" inputmode="numeric" required=true /></label>
                <label class="field"><span>"领取后有效天数"</span><input name="days" inputmode="numeric" value="30" required=true /></label>
                <label class="field"><span>"每人限领"</span><input name="per_user" inputmode="numeric" value="1" /></label>
                <button type="submit" class="btn btn-primary" data-testid="save-coupon">"创建（同步到微信卡券）"</button>
            </form>
        },
    )
}

async fn categories_page(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    if let Err(r) = signed_in(&st, &headers).await {
        return r;
    }
    let (list, error) = match call(&st, &headers, "list_categories", json!({})).await {
        Ok(v) => (v, None),
        Err(m) => (json!([]), Some(m)),
    };
    let cats: Vec<Value> = list.as_array().cloned().unwrap_or_default();
    html(
        "分类",
        error.or_else(|| flash_of(&headers)),
        "products",
        view! {
            <p class="muted">"数字小的排在前面；只有没有商品的分类可以删除。"</p>
            <ul class="console-list" data-testid="categories">
                {cats.iter().map(|c| {
                    let id = s(&c["id"]);
                    let name = s(&c["name"]);
                    let products = c["products"].as_i64().unwrap_or(0);
                    view! {
                        <li class="panel">
                            <form method="post" action="/admin/form/save_category" class="inline-form">
                                <input type="hidden" name="id" value=id.clone() />
                                <input type="hidden" name="next" value="/admin/categories" />
                                <input name="name" value=name.clone() required=true maxlength="60" aria-label=format!("分类「{name}」的名称") />
                                <input name="sort" value=s(&c["sort"]) inputmode="numeric" class="narrow" aria-label=format!("分类「{name}」的顺序") />
                                <button type="submit" class="btn btn-secondary">"保存"</button>
                            </form>
                            <div class="muted">{format!("{products} 个商品")}</div>
                            {(products == 0).then(|| view! {
                                <form method="post" action="/admin/form/delete_category" class="inline-form">
                                    <input type="hidden" name="category_id" value=id.clone() />
                                    <input type="hidden" name="next" value="/admin/categories" />
                                    <button type="submit" class="btn btn-secondary">{format!("删除「{name}」")}</button>
                                </form>
                            })}
                        </li>
                    }
                }).collect_view()}
            </ul>
            <form class="panel inline-form" method="post" action="/admin/form/save_category">
                <input type="hidden" name="next" value="/admin/categories" />
                <input name="name" required=true maxlength="60" placeholder="新分类名称" aria-label="新分类名称" />
                <input name="sort" inputmode="numeric" class="narrow" placeholder="顺序" aria-label="新分类的顺序" />
                <button type="submit" class="btn btn-primary" data-testid="add-category">"添加分类"</button>
            </form>
        },
    )
}

// ------------------------------------------------------------------ accounts (owner only)

fn role_label(role: &str) -> &'static str {
    match role {
        "owner" => "店主",
        _ => "店员",
    }
}

/// `/admin/accounts`: the console's accounts — add one, change a role, set a new password,
/// disable or enable. Staff see why they cannot.
async fn accounts_page(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    let me = match signed_in(&st, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let list = match call(&st, &headers, "list_admins", json!({})).await {
        Ok(v) => v,
        Err(m) => return html("账号", Some(m), "accounts", ()),
    };
    let rows: Vec<Value> = list["admins"].as_array().cloned().unwrap_or_default();
    let role_select = |current: &str| {
        let current = current.to_string();
        view! {
            <select name="role" required=true>
                <option value="staff" selected=current == "staff">"店员（不能退款、改价、管理账号）"</option>
                <option value="owner" selected=current == "owner">"店主"</option>
            </select>
        }
    };
    html(
        "账号",
        flash_of(&headers),
        "accounts",
        view! {
            <ul class="console-list" data-testid="accounts">
                {rows.iter().map(|a| {
                    let name = s(&a["username"]);
                    let role = s(&a["role"]);
                    let disabled = !a["disabled_at"].is_null();
                    let myself = name == me.username;
                    view! {
                        <li class="panel" data-testid=format!("account-{name}")>
                            <div>
                                <strong>{name.clone()}</strong>" · "{role_label(&role)}
                                {myself.then_some(" · 当前登录")}
                                " · "
                                {if disabled {
                                    format!("已停用（{}）", when(&a["disabled_at"]))
                                } else {
                                    "可登录".to_string()
                                }}
                                <span class="muted">{format!(" · 创建于 {}", when(&a["created_at"]))}</span>
                            </div>
                            <form class="inline-form" method="post" action="/admin/form/save_admin">
                                <input type="hidden" name="username" value=name.clone() />
                                <input type="hidden" name="next" value="/admin/accounts" />
                                <label class="field"><span>"角色"</span>{role_select(&role)}</label>
                                <button type="submit" class="btn">"保存角色"</button>
                            </form>
                            <form class="inline-form" method="post" action="/admin/form/set_admin_password">
                                <input type="hidden" name="username" value=name.clone() />
                                <input type="hidden" name="next" value="/admin/accounts" />
                                <label class="field"><span>"新密码"</span>
                                    <input name="password" type="password" autocomplete="new-password"
                                        minlength=super::accounts::MIN_PASSWORD_CHARS.to_string() required=true /></label>
                                <button type="submit" class="btn">"重设密码"</button>
                            </form>
                            {(!myself).then(|| {
                                let (action, label) = if disabled {
                                    ("/admin/form/enable_admin", "启用")
                                } else {
                                    ("/admin/form/disable_admin", "停用")
                                };
                                view! {
                                    <form class="inline-form" method="post" action=action>
                                        <input type="hidden" name="username" value=name.clone() />
                                        <input type="hidden" name="next" value="/admin/accounts" />
                                        <button type="submit" class="btn">{label}</button>
                                    </form>
                                }
                            })}
                        </li>
                    }
                }).collect_view()}
            </ul>
            <form class="panel console-form" method="post" action="/admin/form/save_admin" data-testid="add-account">
                <h2 class="section-title">"添加账号"</h2>
                <input type="hidden" name="next" value="/admin/accounts" />
                <label class="field"><span>"用户名"</span>
                    <input name="username" required=true minlength="2" maxlength="32"
                        pattern="[A-Za-z0-9._-]{2,32}" autocomplete="off" /></label>
                <label class="field"><span>"角色"</span>{role_select("staff")}</label>
                <label class="field"><span>"初始密码"</span>
                    <input name="password" type="password" autocomplete="new-password"
                        minlength=super::accounts::MIN_PASSWORD_CHARS.to_string() required=true /></label>
                <button type="submit" class="btn btn-primary">"添加"</button>
            </form>
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_to_fen() {
        assert_eq!(parse_yuan("12"), Some(1200));
        assert_eq!(parse_yuan("12.5"), Some(1250));
        assert_eq!(parse_yuan("0.05"), Some(5));
        assert_eq!(parse_yuan("12.345"), None);
        assert_eq!(parse_yuan("-1"), None);
        assert_eq!(parse_yuan("1e3"), None);
        assert_eq!(parse_yuan(".5"), None);
        assert_eq!(parse_yuan(""), None);
    }

    #[test]
    fn forms_become_the_apis_json() {
        let f: BTreeMap<String, String> = [
            ("order_id", "42"),
            ("approve", "1"),
            ("amount_yuan", "10.5"),
            ("reason", " 少发 "),
            ("next", "/admin"),
            ("tracking_no", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            form_json(&f).unwrap(),
            json!({"order_id": 42, "approve": true, "amount_fen": 1050, "reason": "少发"})
        );
        let bad: BTreeMap<String, String> = [("order_id".to_string(), "x".to_string())].into();
        assert!(form_json(&bad).is_err());
    }

    #[test]
    fn the_coupon_form_becomes_fen_and_only_its_kinds_amount() {
        let f = |pairs: &[(&str, &str)]| {
            coupon_form_json(
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        assert_eq!(
            f(&[
                ("title", "新人券"),
                ("kind", "cash"),
                ("least_cost_yuan", "50"),
                ("reduce_cost_yuan", "9.9"),
                ("discount_percent", "30"),
                ("quantity", "100"),
                ("days", "7")
            ])
            .unwrap(),
            json!({"title": "新人券", "kind": "cash", "least_cost_fen": 5000,
                   "reduce_cost_fen": 990, "quantity": 100, "days": 7})
        );
        assert_eq!(
            f(&[
                ("title", "七折"),
                ("kind", "discount"),
                ("reduce_cost_yuan", "1"),
                ("discount_percent", "30"),
                ("quantity", "5"),
                ("days", "7")
            ])
            .unwrap(),
            json!({"title": "七折", "kind": "discount", "least_cost_fen": 0,
                   "discount_percent": 30, "quantity": 5, "days": 7})
        );
        assert!(f(&[("least_cost_yuan", "5.001")]).is_err());
    }

    #[test]
    fn a_price_range_is_in_yuan_with_two_decimals() {
        let skus =
            |p: &[i64]| -> Vec<Value> { p.iter().map(|f| json!({"price_fen": f})).collect() };
        assert_eq!(price_range(&skus(&[3990])).as_deref(), Some("¥39.90"));
        assert_eq!(
            price_range(&skus(&[9900, 5, 3990])).as_deref(),
            Some("¥0.05 – ¥99.00")
        );
        assert_eq!(price_range(&skus(&[1200, 1200])).as_deref(), Some("¥12.00"));
        assert_eq!(price_range(&[]), None);
    }

    #[test]
    fn forms_go_back_only_to_console_pages() {
        let p = |s: &str| console_path(Some(&s.to_string()));
        assert_eq!(p("/admin/orders/3"), Some("/admin/orders/3".into()));
        assert_eq!(p("https://evil.example/admin"), None);
        assert_eq!(p("//evil.example"), None);
        assert_eq!(p("/admin/../api"), None);
        assert_eq!(p("/orders"), None);
    }
}
