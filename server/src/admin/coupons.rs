//! The console's coupons (优惠券), kept in the shoppers' WeChat card wallets.
//!
//! - `save_coupon` `{"title","kind":"cash|discount","least_cost_fen","reduce_cost_fen"?,
//!   "discount_percent"?,"quantity","days"?,"begin"?,"end"?,"per_user"?,"color"?}` creates the card
//!   at WeChat (`card/create`: `CASH` or `DISCOUNT`, amounts in fen) and keeps its `card_id` and
//!   rule → `{"coupon_id","card_id",…}`. `discount_percent` is WeChat's `discount`: the
//!   percentage taken off (30 → 7折). Validity: `days` after taking, or `begin`..`end` (unix
//!   seconds). Owner only (it gives money away).
//! - `list_coupons`: every coupon with `taken` (user_get_card events) and `redeemed` (orders
//!   paid with it) counts.
//! - `stop_coupon` `{"coupon_id"}`: no more taking (`card/delete` at WeChat; codes shoppers
//!   already hold stay usable, as WeChat keeps them). Owner only.
//! - `coupon_qrcode` `{"coupon_id"}`: WeChat's QR code to take the card (`QR_CARD`), as SVG.
//! - `card_whitelist` `{"openids":[…],"usernames":[…]}`: WeChat's test whitelist
//!   (`card/testwhitelist/set`): cards not yet reviewed by WeChat can only be taken by them.
//!
//! Every write is audited.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::accounts::Role;
use super::{audit, error, field, internal, invalid, parse, signed_in, AdminState};
use crate::shop::coupons::{CouponRow, Rule, COUPON_COLUMNS};
use app::error::ErrorCode;
use app::model::FieldError;
use wechat::mp::card::{CardDefinition, CardKind, Validity};

/// WeChat's limits: a card title is at most 9 Chinese characters; at most 100,000,000 codes.
const TITLE_MAX: usize = 9;
const QUANTITY_MAX: i64 = 100_000_000;
/// ¥1,000,000: catches yuan typed where fen was meant.
const AMOUNT_MAX_FEN: i64 = 100_000_000;
const DAYS_MAX: i64 = 365;
/// WeChat's card colours.
const COLORS: &[&str] = &[
    "Color010", "Color020", "Color030", "Color040", "Color050", "Color060", "Color070", "Color080",
    "Color081", "Color082", "Color090", "Color100", "Color101", "Color102",
];

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct CouponBody {
    title: String,
    kind: String,
    least_cost_fen: i64,
    reduce_cost_fen: Option<i64>,
    discount_percent: Option<i64>,
    quantity: i64,
    days: Option<i64>,
    begin: Option<i64>,
    end: Option<i64>,
    per_user: Option<i64>,
    color: Option<String>,
}

/// The coupon the body describes, or every field that is wrong.
pub(crate) struct NewCoupon {
    pub title: String,
    pub rule: Rule,
    pub quantity: i64,
    pub per_user: i64,
    pub validity: Validity,
    pub color: String,
}

fn validate(b: &CouponBody, now: i64) -> Result<NewCoupon, Vec<FieldError>> {
    let mut errors = Vec::new();
    let title = b.title.trim().to_string();
    if title.is_empty() || title.chars().count() > TITLE_MAX {
        errors.push(field("title", "请填写券名（最多 9 个字，微信的限制）"));
    }
    if !(0..=AMOUNT_MAX_FEN).contains(&b.least_cost_fen) {
        errors.push(field("least_cost_fen", "最低消费须在 0 到 100 万元之间"));
    }
    let rule = match b.kind.as_str() {
        "cash" => match b.reduce_cost_fen {
            Some(r) if (1..=AMOUNT_MAX_FEN).contains(&r) => {
                if b.least_cost_fen > 0 && r >= b.least_cost_fen {
                    errors.push(field("reduce_cost_fen", "减免金额须小于最低消费"));
                }
                if b.discount_percent.is_some() {
                    errors.push(field("discount_percent", "代金券没有折扣"));
                }
                Some(Rule::Cash {
                    least_cost_fen: b.least_cost_fen,
                    reduce_cost_fen: r,
                })
            }
            _ => {
                errors.push(field("reduce_cost_fen", "请填写减免金额（大于 0）"));
                None
            }
        },
        "discount" => match b.discount_percent {
            Some(p) if (1..=99).contains(&p) => {
                if b.reduce_cost_fen.is_some() {
                    errors.push(field("reduce_cost_fen", "折扣券没有减免金额"));
                }
                Some(Rule::Discount {
                    least_cost_fen: b.least_cost_fen,
                    percent_off: p,
                })
            }
            _ => {
                errors.push(field(
                    "discount_percent",
                    "请填写优惠的百分比（1–99，例如 30 即七折）",
                ));
                None
            }
        },
        _ => {
            errors.push(field("kind", "请选择代金券（cash）或折扣券（discount）"));
            None
        }
    };
    if !(1..=QUANTITY_MAX).contains(&b.quantity) {
        errors.push(field("quantity", "发放数量须在 1 到 1 亿之间"));
    }
    let per_user = b.per_user.unwrap_or(1);
    if !(1..=100).contains(&per_user) {
        errors.push(field("per_user", "每人限领须在 1 到 100 之间"));
    }
    let validity = match (b.days, b.begin, b.end) {
        (Some(d), None, None) if (1..=DAYS_MAX).contains(&d) => {
            Some(Validity::AfterTaking { days: d as u32 })
        }
        (Some(_), None, None) => {
            errors.push(field("days", "有效天数须在 1 到 365 之间"));
            None
        }
        (None, Some(begin), Some(end)) if end > begin && end > now => Some(Validity::Fixed {
            begin_unix: begin,
            end_unix: end,
        }),
        (None, Some(_), Some(_)) => {
            errors.push(field("end", "结束时间须晚于开始时间和现在"));
            None
        }
        _ => {
            errors.push(field("days", "请填写领取后有效天数，或起止日期（二选一）"));
            None
        }
    };
    let color = b.color.clone().unwrap_or_else(|| "Color010".into());
    if !COLORS.contains(&color.as_str()) {
        errors.push(field(
            "color",
            "颜色须是微信的卡券颜色之一（Color010…Color102）",
        ));
    }
    match (rule, validity, errors.is_empty()) {
        (Some(rule), Some(validity), true) => Ok(NewCoupon {
            title,
            rule,
            quantity: b.quantity,
            per_user,
            validity,
            color,
        }),
        _ => Err(errors),
    }
}

fn card_definition(c: &NewCoupon, public_url: &str) -> CardDefinition {
    let kind = match c.rule {
        Rule::Cash {
            least_cost_fen,
            reduce_cost_fen,
        } => CardKind::Cash {
            least_cost_fen,
            reduce_cost_fen,
        },
        Rule::Discount {
            least_cost_fen,
            percent_off,
        } => CardKind::Discount {
            least_cost_fen,
            percent_off,
        },
    };
    CardDefinition {
        kind,
        title: c.title.clone(),
        color: c.color.clone(),
        validity: c.validity.clone(),
        quantity: c.quantity,
        get_limit: c.per_user,
        brand_name: super::SHOP_NAME.into(),
        logo_url: format!("{}/favicon.svg", public_url.trim_end_matches('/')),
        notice: "结算时在「使用优惠券」中选择".into(),
        description: format!(
            "{}，线上商城结算时使用，不与其他优惠同享。",
            c.rule.describe()
        ),
    }
}

fn wechat_refused(what: &str, e: &wechat::mp::token::TokenError) -> Response {
    tracing::warn!(error = %e, "{what} failed");
    error(
        ErrorCode::PaymentUnavailable,
        &format!("微信未能完成：{}", crate::doctor::explain_token_error(e)),
    )
}

fn coupon_json(c: &CouponRow, taken: i64, redeemed: i64) -> Value {
    json!({
        "coupon_id": c.id,
        "card_id": c.card_id,
        "title": c.title,
        "kind": c.kind,
        "rule": c.rule().describe(),
        "least_cost_fen": c.least_cost_fen,
        "reduce_cost_fen": c.reduce_cost_fen,
        "discount_percent": c.percent_off,
        "quantity": c.quantity,
        "per_user": c.per_user,
        "days": c.days,
        "begin": c.begin_at,
        "end": c.end_at,
        "validity": c.validity(),
        "color": c.color,
        "status": c.status,
        "created_at": c.created_at,
        "taken": taken,
        "redeemed": redeemed,
    })
}

pub(super) async fn save_coupon(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let admin = match signed_in(&st, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if admin.role != Role::Owner {
        return error(ErrorCode::Forbidden, "只有店主可以创建优惠券");
    }
    let b: CouponBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let now = crate::shop::now();
    let c = match validate(&b, now) {
        Ok(c) => c,
        Err(fields) => return invalid(fields),
    };
    // WeChat first: a coupon exists in the shop only once WeChat has its card.
    let card_id = match st
        .wechat
        .cards
        .create(&card_definition(&c, &st.public_url))
        .await
    {
        Ok(id) => id,
        Err(e) => return wechat_refused("card/create", &e),
    };
    let (kind, reduce, percent) = match c.rule {
        Rule::Cash {
            reduce_cost_fen, ..
        } => ("cash", Some(reduce_cost_fen), None),
        Rule::Discount { percent_off, .. } => ("discount", None, Some(percent_off)),
    };
    let (days, begin, end) = match c.validity {
        Validity::AfterTaking { days } => (Some(days as i64), None, None),
        Validity::Fixed {
            begin_unix,
            end_unix,
        } => (None, Some(begin_unix), Some(end_unix)),
    };
    let sql = format!(
        "INSERT INTO coupons (card_id, title, kind, least_cost_fen, reduce_cost_fen, percent_off, \
         quantity, per_user, days, begin_at, end_at, color, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING {COUPON_COLUMNS}"
    );
    let row: CouponRow = match crate::sql!(&st.pool, e => sqlx::query_as::<_, CouponRow>(&sql)
        .bind(&card_id)
        .bind(&c.title)
        .bind(kind)
        .bind(c.rule.least_cost_fen())
        .bind(reduce)
        .bind(percent)
        .bind(c.quantity)
        .bind(c.per_user)
        .bind(days)
        .bind(begin)
        .bind(end)
        .bind(&c.color)
        .bind(admin.id)
        .bind(now)
        .fetch_one(e).await)
    {
        Ok(r) => r,
        Err(e) => {
            // The card exists at WeChat but not here: say which, so it can be deleted there.
            tracing::error!(card_id, error = %e, "coupon created at WeChat but not stored");
            return internal(e);
        }
    };
    let out = coupon_json(&row, 0, 0);
    if let Err(e) = audit(&st.pool, &admin, "save_coupon", out.clone()).await {
        return internal(e);
    }
    Json(out).into_response()
}

pub(super) async fn list_coupons(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    if let Err(r) = signed_in(&st, &headers).await {
        return r;
    }
    let sql = format!("SELECT {COUPON_COLUMNS} FROM coupons ORDER BY id DESC");
    let rows: Vec<CouponRow> = match crate::sql!(&st.pool, e => sqlx::query_as::<_, CouponRow>(&sql).fetch_all(e).await)
    {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let counts: Vec<(String, i64, i64)> = match crate::sql!(&st.pool, e => sqlx::query_as(
        "SELECT card_id, COUNT(*), \
           CAST(SUM(CASE WHEN status = 'redeemed' THEN 1 ELSE 0 END) AS BIGINT) \
         FROM coupon_codes GROUP BY card_id",
    )
    .fetch_all(e).await)
    {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let redeemed_orders: Vec<(String, i64)> = match crate::sql!(&st.pool, e => sqlx::query_as(
        "SELECT coupon_card_id, COUNT(*) FROM orders \
         WHERE coupon_card_id IS NOT NULL AND coupon_redeemed_at IS NOT NULL GROUP BY coupon_card_id",
    )
    .fetch_all(e).await)
    {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let out: Vec<Value> = rows
        .iter()
        .map(|c| {
            let (taken, consumed) = counts
                .iter()
                .find(|(id, ..)| *id == c.card_id)
                .map(|(_, t, r)| (*t, *r))
                .unwrap_or((0, 0));
            let by_orders = redeemed_orders
                .iter()
                .find(|(id, _)| *id == c.card_id)
                .map(|(_, n)| *n)
                .unwrap_or(0);
            // A code redeemed by an order is also in coupon_codes as redeemed; WeChat's
            // user_consume_card event for it lands on the same row.
            coupon_json(c, taken.max(consumed), consumed.max(by_orders))
        })
        .collect();
    Json(out).into_response()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct CouponId {
    coupon_id: i64,
}

async fn coupon(st: &AdminState, id: i64) -> Result<CouponRow, Response> {
    let sql = format!("SELECT {COUPON_COLUMNS} FROM coupons WHERE id = $1");
    match crate::sql!(&st.pool, e => sqlx::query_as::<_, CouponRow>(&sql).bind(id).fetch_optional(e).await)
    {
        Ok(Some(c)) => Ok(c),
        Ok(None) => Err(error(ErrorCode::NotFound, "优惠券不存在")),
        Err(e) => Err(internal(e)),
    }
}

pub(super) async fn stop_coupon(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let admin = match signed_in(&st, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if admin.role != Role::Owner {
        return error(ErrorCode::Forbidden, "只有店主可以停发优惠券");
    }
    let b: CouponId = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let c = match coupon(&st, b.coupon_id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if c.status == "stopped" {
        return Json(json!({"coupon_id": c.id, "status": "stopped"})).into_response();
    }
    if let Err(e) = st.wechat.cards.delete(&c.card_id).await {
        return wechat_refused("card/delete", &e);
    }
    let now = crate::shop::now();
    if let Err(e) = crate::sql!(&st.pool, e => sqlx::query(
        "UPDATE coupons SET status = 'stopped', stopped_at = $1 WHERE id = $2 AND status = 'active'",
    )
    .bind(now)
    .bind(c.id)
    .execute(e).await.map(crate::db::Done::from))
    {
        return internal(e);
    }
    let detail = json!({"coupon_id": c.id, "card_id": c.card_id, "title": c.title});
    if let Err(e) = audit(&st.pool, &admin, "stop_coupon", detail).await {
        return internal(e);
    }
    Json(json!({"coupon_id": c.id, "status": "stopped"})).into_response()
}

pub(super) async fn coupon_qrcode(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = signed_in(&st, &headers).await {
        return r;
    }
    let b: CouponId = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let c = match coupon(&st, b.coupon_id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if c.status != "active" {
        return error(ErrorCode::InvalidState, "优惠券已停发");
    }
    let qr = match st.wechat.cards.qrcode(&c.card_id, None).await {
        Ok(q) => q,
        Err(e) => return wechat_refused("card/qrcode/create", &e),
    };
    match crate::qr::svg(&qr.url, 240) {
        Ok(svg) => Json(json!({
            "coupon_id": c.id,
            "card_id": c.card_id,
            "url": qr.url,
            "show_qrcode_url": qr.show_qrcode_url,
            "svg": svg,
        }))
        .into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct WhitelistBody {
    openids: Vec<String>,
    usernames: Vec<String>,
}

pub(super) async fn card_whitelist(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let admin = match signed_in(&st, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if admin.role != Role::Owner {
        return error(ErrorCode::Forbidden, "只有店主可以设置测试白名单");
    }
    let b: WhitelistBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let clean = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let (openids, usernames) = (clean(&b.openids), clean(&b.usernames));
    if openids.is_empty() && usernames.is_empty() || openids.len() + usernames.len() > 100 {
        return invalid(vec![field("openids", "请填写 1 到 100 个 openid 或微信号")]);
    }
    if let Err(e) = st
        .wechat
        .cards
        .set_test_whitelist(&openids, &usernames)
        .await
    {
        return wechat_refused("card/testwhitelist/set", &e);
    }
    let detail = json!({"openids": openids, "usernames": usernames});
    if let Err(e) = audit(&st.pool, &admin, "card_whitelist", detail.clone()).await {
        return internal(e);
    }
    Json(detail).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> CouponBody {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_coupon_is_validated_field_by_field() {
        let now = 1_800_000_000;
        let ok = validate(
            &body(
                json!({"title": "满100减20", "kind": "cash", "least_cost_fen": 10000,
                         "reduce_cost_fen": 2000, "quantity": 100, "days": 7}),
            ),
            now,
        )
        .ok()
        .unwrap();
        assert_eq!(ok.per_user, 1);
        assert_eq!(ok.validity, Validity::AfterTaking { days: 7 });
        let fields = |v| {
            validate(&body(v), now)
                .err()
                .unwrap()
                .into_iter()
                .map(|f| f.field)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            fields(
                json!({"title": "一二三四五六七八九十", "kind": "cash", "least_cost_fen": 1000,
                          "reduce_cost_fen": 1000, "quantity": 0, "days": 7})
            ),
            vec!["title", "reduce_cost_fen", "quantity"]
        );
        assert_eq!(
            fields(
                json!({"title": "八五折", "kind": "discount", "least_cost_fen": 0,
                          "discount_percent": 100, "quantity": 5, "begin": now, "end": now - 1})
            ),
            vec!["discount_percent", "end"]
        );
        assert_eq!(
            fields(
                json!({"title": "券", "kind": "gift", "least_cost_fen": 0, "quantity": 5,
                          "days": 7, "begin": now, "end": now + 10, "color": "red"})
            ),
            vec!["kind", "days", "color"]
        );
    }
}
