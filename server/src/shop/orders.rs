//! Orders: quoting, creation with stock reservation, the status state machine, addresses.
//!
//! The order state machine and every transition that involves money live in
//! `crate::payments` (`payments/state.rs`); this module creates orders and reads them.

use super::catalog::{sku_info, SkuInfo};
use super::coupons::Checked;
use super::{check_quantity, db_error, now, out_of_stock, ShopSettings};
use crate::db::{Db, Tx};
use app::error::{ApiError, ErrorCode};
use app::model::*;
use app::port::Result;
use rand::Rng;
use std::collections::BTreeMap;

/// The merchant order number (WeChat's `out_trade_no`): time of day plus randomness,
/// 20 ASCII digits, unique by constraint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderNo(pub String);

impl OrderNo {
    /// `yyyyMMddHHmmss` (China time) + 10 random digits: 24 characters (WeChat allows 32).
    /// Ten digits keep a collision unlikely even at thousands of orders in one second (six
    /// made one likely at ~1,000/s); [`create`] still draws again if one happens.
    pub fn generate(now_unix: i64) -> Self {
        let t = time::OffsetDateTime::from_unix_timestamp(now_unix)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
            .to_offset(time::macros::offset!(+8));
        let fmt = time::macros::format_description!("[year][month][day][hour][minute][second]");
        let stamp = t.format(&fmt).unwrap_or_default();
        let n: u64 = rand::thread_rng().gen_range(0..10_000_000_000);
        Self(format!("{stamp}{n:010}"))
    }
}

/// How many order numbers [`create`] draws before giving up.
const ORDER_NO_ATTEMPTS: usize = 5;

/// Validates and merges the requested items (same SKU twice → one line).
fn normalise_items(items: &[OrderItemInput]) -> Result<Vec<(i64, i64)>> {
    if items.is_empty() {
        return Err(ApiError::new(ErrorCode::Validation, "请选择要购买的商品"));
    }
    let mut merged: BTreeMap<i64, i64> = BTreeMap::new();
    for item in items {
        check_quantity(item.quantity)?;
        *merged.entry(item.sku_id).or_default() += item.quantity;
    }
    if merged.len() > MAX_ORDER_LINES {
        return Err(ApiError::new(
            ErrorCode::Validation,
            format!("一个订单最多 {MAX_ORDER_LINES} 种商品"),
        ));
    }
    for &quantity in merged.values() {
        check_quantity(quantity)?;
    }
    Ok(merged.into_iter().collect())
}

fn line_of(info: &SkuInfo, quantity: i64) -> CartLine {
    CartLine {
        sku_id: info.sku_id,
        product_id: info.product_id,
        product_name: info.product_name.clone(),
        sku_name: info.sku_name.clone(),
        image: info.image.clone(),
        price_fen: info.price_fen,
        quantity,
        stock: info.stock,
        selected: true,
    }
}

fn total_of(lines: &[CartLine]) -> Result<i64> {
    lines
        .iter()
        .try_fold(0i64, |acc, l| {
            acc.checked_add(l.price_fen.checked_mul(l.quantity)?)
        })
        .ok_or_else(|| ApiError::new(ErrorCode::Validation, "订单金额过大"))
}

pub async fn quote(pool: &Db, items: &[OrderItemInput]) -> Result<Quote> {
    let mut lines = Vec::new();
    for (sku_id, quantity) in normalise_items(items)? {
        let info = sku_info(pool, sku_id).await?;
        if info.stock < quantity {
            return Err(out_of_stock(&info.product_name, info.stock));
        }
        lines.push(line_of(&info, quantity));
    }
    let total_fen = total_of(&lines)?;
    Ok(Quote {
        lines,
        total_fen,
        discount_fen: 0,
        coupon: None,
    })
}

/// Takes `quantity` of `sku_id` out of stock, or fails without touching it.
async fn reserve(tx: &mut Tx<'_>, sku_id: i64, quantity: i64) -> Result<SkuInfo> {
    let done = crate::sql!(&mut *tx, e => sqlx::query("UPDATE skus SET stock = stock - $1 WHERE id = $2 AND stock >= $1")
        .bind(quantity)
        .bind(sku_id)
        .execute(e).await.map(crate::db::Done::from))
        .map_err(db_error)?;
    let info = sku_info(&mut *tx, sku_id).await?;
    if done.rows_affected() != 1 {
        return Err(out_of_stock(&info.product_name, info.stock));
    }
    Ok(info)
}

pub async fn create(
    pool: &Db,
    user: i64,
    order: NewOrder,
    clear_cart: bool,
    settings: &ShopSettings,
    coupon: Option<&Checked>,
) -> Result<CreatedOrder> {
    create_numbered(
        pool,
        user,
        order,
        clear_cart,
        settings,
        coupon,
        OrderNo::generate,
    )
    .await
}

/// [`create`] with the order numbers drawn from `next_no(created_at)` (tests force collisions).
async fn create_numbered(
    pool: &Db,
    user: i64,
    order: NewOrder,
    clear_cart: bool,
    settings: &ShopSettings,
    coupon: Option<&Checked>,
    mut next_no: impl FnMut(i64) -> OrderNo,
) -> Result<CreatedOrder> {
    let address = order.address.validate().map_err(ApiError::validation)?;
    let remark = order.remark.trim().to_string();
    if remark.chars().count() > MAX_REMARK_CHARS {
        return Err(ApiError::validation(vec![FieldError {
            field: "remark".into(),
            message: format!("备注最多 {MAX_REMARK_CHARS} 字"),
        }]));
    }
    let items = normalise_items(&order.items)?;

    // The first statement writes, so SQLite takes the write lock at once and concurrent
    // orders queue (busy_timeout) instead of failing on a read→write upgrade.
    let mut tx = pool.begin().await.map_err(db_error)?;
    // At most so many stock reservations per shopper (inside the transaction: two checkouts
    // at once cannot both pass). The user row is touched first so the write lock is taken.
    crate::sql!(&mut tx, e => sqlx::query("UPDATE users SET id = id WHERE id = $1")
        .bind(user)
        .execute(e).await.map(crate::db::Done::from))
    .map_err(db_error)?;
    let unpaid: i64 =
        crate::sql!(&mut tx, e => sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE user_id = $1 AND status = 'unpaid'")
            .bind(user)
            .fetch_one(e).await)
            .map_err(db_error)?;
    if unpaid >= settings.max_unpaid_orders {
        return Err(ApiError::new(
            ErrorCode::InvalidState,
            format!("您有 {unpaid} 个待支付订单，请先支付或取消后再下单"),
        ));
    }
    let mut lines = Vec::with_capacity(items.len());
    for &(sku_id, quantity) in &items {
        // Dropping `tx` on error rolls every reservation back.
        let info = reserve(&mut tx, sku_id, quantity).await?;
        lines.push(line_of(&info, quantity));
    }
    let goods_fen = total_of(&lines)?;
    // The coupon was checked against the quote; prices are read again here, so its rule is
    // applied again to what is actually reserved.
    let discount_fen = match coupon {
        Some(c) => c
            .terms
            .discount(goods_fen)
            .map_err(|why| ApiError::new(ErrorCode::CouponNotApplicable, why))?,
        None => 0,
    };
    let total_fee = goods_fen - discount_fen;
    if let Some(c) = coupon {
        // Inside the transaction (SQLite: after the write lock): two checkouts with one code
        // cannot both pass; on PostgreSQL the unique index `orders_coupon_code` decides.
        let held: Option<i64> = crate::sql!(&mut tx, e => sqlx::query_scalar(
            "SELECT id FROM orders WHERE coupon_card_id = $1 AND coupon_code = $2 AND status <> 'closed'",
        )
        .bind(&c.card_id)
        .bind(&c.code)
        .fetch_optional(e).await)
        .map_err(db_error)?;
        if held.is_some() {
            return Err(coupon_held());
        }
    }
    let created_at = now();
    let expires_at = created_at + settings.order_ttl.as_secs() as i64;
    // A taken number inserts nothing (portable: no statement error that would abort a
    // PostgreSQL transaction) and another is drawn.
    let mut inserted = None;
    for _ in 0..ORDER_NO_ATTEMPTS {
        let order_no = next_no(created_at);
        let id = crate::sql!(&mut tx, e => sqlx::query_scalar::<_, i64>(
            "INSERT INTO orders (order_no, user_id, status, total_fee, ship_name, ship_phone, \
             ship_region, ship_detail, remark, created_at, expires_at, \
             coupon_card_id, coupon_code, coupon_title, discount_fen) \
             VALUES ($1, $2, 'unpaid', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (order_no) DO NOTHING RETURNING id",
        )
        .bind(&order_no.0)
        .bind(user)
        .bind(total_fee)
        .bind(&address.name)
        .bind(&address.phone)
        .bind(&address.region)
        .bind(&address.detail)
        .bind(&remark)
        .bind(created_at)
        .bind(expires_at)
        .bind(coupon.map(|c| c.card_id.as_str()))
        .bind(coupon.map(|c| c.code.as_str()))
        .bind(coupon.map(|c| c.title.as_str()))
        .bind(discount_fen)
        .fetch_optional(e).await)
        .map_err(|e| {
            if is_coupon_conflict(&e) {
                coupon_held()
            } else {
                db_error(e)
            }
        })?;
        if let Some(id) = id {
            inserted = Some((id, order_no));
            break;
        }
        tracing::warn!("order number taken; drawing another");
    }
    let Some((order_id, order_no)) = inserted else {
        tracing::error!("no free order number after {ORDER_NO_ATTEMPTS} attempts");
        return Err(ApiError::internal());
    };
    for (line_no, line) in lines.iter().enumerate() {
        crate::sql!(&mut tx, e => sqlx::query(
            "INSERT INTO order_lines (order_id, line_no, sku_id, product_id, product_name, \
             sku_name, image, unit_price_fen, quantity) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
        )
        .bind(order_id)
        .bind(line_no as i64)
        .bind(line.sku_id)
        .bind(line.product_id)
        .bind(&line.product_name)
        .bind(&line.sku_name)
        .bind(&line.image)
        .bind(line.price_fen)
        .bind(line.quantity)
        .execute(e).await.map(crate::db::Done::from))
        .map_err(db_error)?;
        if clear_cart {
            crate::sql!(&mut tx, e => sqlx::query("DELETE FROM cart_lines WHERE user_id = $1 AND sku_id = $2")
                .bind(user)
                .bind(line.sku_id)
                .execute(e).await.map(crate::db::Done::from))
                .map_err(db_error)?;
        }
    }
    crate::sql!(&mut tx, e => sqlx::query(
        "INSERT INTO addresses (user_id, name, phone, region, detail, last_used_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (user_id, name, phone, region, detail) \
         DO UPDATE SET last_used_at = excluded.last_used_at",
    )
    .bind(user)
    .bind(&address.name)
    .bind(&address.phone)
    .bind(&address.region)
    .bind(&address.detail)
    .bind(created_at)
    .execute(e).await.map(crate::db::Done::from))
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    tracing::info!(order_id, order_no = %order_no.0, total_fee, discount_fen, "order created");
    Ok(CreatedOrder {
        order_id,
        total_fee,
    })
}

fn coupon_held() -> ApiError {
    ApiError::new(
        ErrorCode::CouponNotApplicable,
        "此优惠券已用于另一个订单（支付或取消那个订单后再试）",
    )
}

/// The unique index that lets one coupon code sit on one open order.
fn is_coupon_conflict(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.is_unique_violation()
                && (d.constraint() == Some("orders_coupon_code")
                    || d.message().contains("coupon_card_id"))
        }
        _ => false,
    }
}

pub async fn addresses(pool: &Db, user: i64) -> Result<Vec<Address>> {
    let rows: Vec<(i64, String, String, String, String)> = crate::sql!(pool, e => sqlx::query_as(
        "SELECT id, name, phone, region, detail FROM addresses WHERE user_id = $1 \
         ORDER BY last_used_at DESC, id DESC LIMIT 10",
    )
    .bind(user)
    .fetch_all(e).await)
    .map_err(db_error)?;
    Ok(rows
        .into_iter()
        .map(|(id, name, phone, region, detail)| Address {
            id,
            name,
            phone,
            region,
            detail,
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: i64,
    order_no: String,
    status: String,
    total_fee: i64,
    ship_name: String,
    ship_phone: String,
    ship_region: String,
    ship_detail: String,
    remark: String,
    created_at: i64,
    expires_at: i64,
    paid_at: Option<i64>,
    closed_at: Option<i64>,
    refunded_fen: i64,
    paid_in_sandbox: bool,
    carrier: Option<String>,
    tracking_no: Option<String>,
    shipped_at: Option<i64>,
    discount_fen: i64,
    coupon_title: Option<String>,
}

fn parse_status(s: &str) -> OrderStatus {
    // The CHECK constraint guarantees one of them.
    OrderStatus::parse(s).unwrap_or(OrderStatus::Closed)
}

/// An order of `user`'s; anybody else's order is "not found", never "forbidden",
/// so order ids cannot be probed.
async fn order_row<'a>(
    pool: impl Into<crate::db::Exec<'a>>,
    user: Option<i64>,
    order_id: i64,
) -> Result<OrderRow> {
    let pool: crate::db::Exec<'a> = pool.into();
    let Some(user) = user else {
        return Err(ApiError::not_found("订单"));
    };
    crate::sql!(pool, e => sqlx::query_as::<_, OrderRow>(
        "SELECT id, order_no, status, total_fee, ship_name, ship_phone, ship_region, \
         ship_detail, remark, created_at, expires_at, paid_at, closed_at, refunded_fen, \
         paid_in_sandbox, carrier, tracking_no, shipped_at, discount_fen, coupon_title \
         FROM orders WHERE id = $1 AND user_id = $2",
    )
    .bind(order_id)
    .bind(user)
    .fetch_optional(e).await)
    .map_err(db_error)?
    .ok_or_else(|| ApiError::not_found("订单"))
}

/// The order page's order: its row, lines, refunds and latest after-sale request, read in one
/// snapshot ([`Db::snapshot`]): a refund settled while the page is read shows on both the order
/// and the refund, or on neither.
pub async fn load(pool: &Db, user: Option<i64>, order_id: i64) -> Result<Order> {
    let mut tx = pool.snapshot().await.map_err(db_error)?;
    let row = order_row(&mut tx, user, order_id).await?;
    let lines: Vec<(i64, i64, String, String, String, i64, i64)> =
        crate::sql!(&mut tx, e => sqlx::query_as(
        "SELECT sku_id, product_id, product_name, sku_name, image, unit_price_fen, quantity \
         FROM order_lines WHERE order_id = $1 ORDER BY line_no",
    )
    .bind(order_id)
    .fetch_all(e).await)
        .map_err(db_error)?;
    let refunds = crate::payments::refunds::views_of(&mut tx, order_id)
        .await
        .map_err(db_error)?;
    let aftersale = super::aftersales::latest(&mut tx, order_id)
        .await
        .map_err(db_error)?;
    tx.rollback().await.map_err(db_error)?;
    Ok(Order {
        order_id: row.id,
        order_no: row.order_no,
        status: parse_status(&row.status),
        total_fee: row.total_fee,
        lines: lines
            .into_iter()
            .map(
                |(sku_id, product_id, product_name, sku_name, image, unit_price_fen, quantity)| {
                    OrderLine {
                        sku_id,
                        product_id,
                        product_name,
                        sku_name,
                        image,
                        unit_price_fen,
                        quantity,
                    }
                },
            )
            .collect(),
        address: AddressInput {
            name: row.ship_name,
            phone: row.ship_phone,
            region: row.ship_region,
            detail: row.ship_detail,
        },
        remark: row.remark,
        created_at: row.created_at,
        paid_at: row.paid_at,
        closed_at: row.closed_at,
        expires_at: row.expires_at,
        refunded_fen: row.refunded_fen,
        refunds,
        paid_in_sandbox: row.paid_in_sandbox,
        discount_fen: row.discount_fen,
        coupon_title: row.coupon_title,
        shipment: match (row.carrier, row.tracking_no, row.shipped_at) {
            (Some(carrier), Some(tracking_no), Some(shipped_at)) => Some(Shipment {
                carrier,
                tracking_no,
                shipped_at,
            }),
            _ => None,
        },
        aftersale,
    })
}

pub async fn status(pool: &Db, user: Option<i64>, order_id: i64) -> Result<OrderStatusView> {
    let row = order_row(pool, user, order_id).await?;
    Ok(OrderStatusView {
        order_id: row.id,
        status: parse_status(&row.status),
        total_fee: row.total_fee,
        refunded_fen: row.refunded_fen,
    })
}

/// How many of `user`'s orders are in each status.
pub async fn counts(pool: &Db, user: i64) -> Result<OrderCounts> {
    let rows: Vec<(String, i64)> =
        crate::sql!(pool, e => sqlx::query_as("SELECT status, COUNT(*) FROM orders WHERE user_id = $1 GROUP BY status")
            .bind(user)
            .fetch_all(e).await)
            .map_err(db_error)?;
    let mut counts = OrderCounts::default();
    for (status, n) in rows {
        counts.add(parse_status(&status), n);
    }
    Ok(counts)
}

pub async fn list(pool: &Db, user: i64, filter: Option<OrderFilter>) -> Result<Vec<OrderSummary>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: i64,
        order_no: String,
        status: String,
        total_fee: i64,
        created_at: i64,
        item_count: i64,
        first_image: String,
        title: String,
    }
    // A tab holds at most three statuses: the first is repeated to fill the IN list.
    let statuses: Vec<&'static str> = filter
        .map(|f| f.statuses().into_iter().map(OrderStatus::as_str).collect())
        .unwrap_or_default();
    let nth = |i: usize| statuses.get(i).or(statuses.first()).copied();
    debug_assert!(statuses.len() <= 3);
    let rows: Vec<Row> = crate::sql!(pool, e => sqlx::query_as::<_, Row>(
        "SELECT o.id, o.order_no, o.status, o.total_fee, o.created_at, \
           (SELECT CAST(SUM(quantity) AS BIGINT) FROM order_lines WHERE order_id = o.id) AS item_count, \
           (SELECT image FROM order_lines WHERE order_id = o.id AND line_no = 0) AS first_image, \
           (SELECT product_name FROM order_lines WHERE order_id = o.id AND line_no = 0) AS title \
         FROM orders o WHERE o.user_id = $1 \
           AND ($2 IS NULL OR o.status IN ($2, $3, $4)) \
         ORDER BY o.created_at DESC, o.id DESC LIMIT 100",
    )
    .bind(user)
    .bind(nth(0))
    .bind(nth(1))
    .bind(nth(2))
    .fetch_all(e).await)
    .map_err(db_error)?;
    Ok(rows
        .into_iter()
        .map(|r| OrderSummary {
            order_id: r.id,
            order_no: r.order_no,
            status: parse_status(&r.status),
            total_fee: r.total_fee,
            item_count: r.item_count,
            first_image: r.first_image,
            title: r.title,
            created_at: r.created_at,
        })
        .collect())
}

/// Cancels an unpaid order that never went to WeChat (a shop without WeChat Pay): WeChat
/// cannot have its money, so closing it in the shop is enough. Orders that went to WeChat are
/// cancelled by the payments service, which asks WeChat first.
pub async fn cancel_unprepaid(pool: &Db, user: Option<i64>, order_id: i64) -> Result<()> {
    let row = order_row(pool, user, order_id).await?;
    if parse_status(&row.status) != OrderStatus::Unpaid {
        return Err(ApiError::new(
            ErrorCode::InvalidState,
            "只有待支付的订单可以取消",
        ));
    }
    let prepaid = prepaid_order_no(pool, order_id).await?.is_some();
    if prepaid
        || !crate::payments::state::close_and_release(pool, order_id, "cancelled by shopper")
            .await
            .map_err(db_error)?
    {
        return Err(ApiError::new(
            ErrorCode::InvalidState,
            "订单状态已变化，请刷新",
        ));
    }
    Ok(())
}

/// The order number of an unpaid order that was sent to WeChat (has a prepay_id).
pub async fn prepaid_order_no(pool: &Db, order_id: i64) -> Result<Option<String>> {
    crate::sql!(pool, e => sqlx::query_scalar(
        "SELECT order_no FROM orders WHERE id = $1 AND status = 'unpaid' AND prepay_id IS NOT NULL",
    )
    .bind(order_id)
    .fetch_optional(e).await)
    .map_err(db_error)
}

/// 确认收货: `shipped → completed` for the order's own shopper, once.
pub async fn confirm_receipt(pool: &Db, user: Option<i64>, order_id: i64) -> Result<()> {
    let row = order_row(pool, user, order_id).await?;
    let done: Option<i64> = crate::sql!(pool, e => sqlx::query_scalar(
        "UPDATE orders SET status = 'completed', completed_at = $1 \
         WHERE id = $2 AND status = 'shipped' RETURNING id",
    )
    .bind(crate::shop::now())
    .bind(row.id)
    .fetch_optional(e).await)
    .map_err(db_error)?;
    match done {
        Some(_) => Ok(()),
        None if row.status == "completed" => {
            Err(ApiError::new(ErrorCode::InvalidState, "订单已确认收货"))
        }
        None => Err(ApiError::new(ErrorCode::InvalidState, "订单还没有发货")),
    }
}

/// Orders shipped before `shipped_before` (Unix seconds) complete by themselves
/// (`WXMALL_AUTO_COMPLETE` after shipping), unless an after-sales request is open; how many.
pub async fn auto_complete(
    pool: &Db,
    shipped_before: i64,
    now: i64,
) -> std::result::Result<u64, sqlx::Error> {
    Ok(crate::sql!(pool, e => sqlx::query(&format!(
        "UPDATE orders SET status = 'completed', completed_at = $1 \
         WHERE status = 'shipped' AND shipped_at < $2 \
         AND NOT EXISTS (SELECT 1 FROM aftersales a WHERE a.order_id = orders.id \
           AND a.status IN {})",
        super::aftersales::OPEN
    ))
    .bind(now)
    .bind(shipped_before)
    .execute(e).await.map(crate::db::Done::from))?
    .rows_affected())
}

#[cfg(test)]
mod order_no_tests {
    use super::*;

    #[test]
    fn order_numbers_are_china_time_and_ten_random_digits() {
        // 2026-11-22T06:39:41Z = 14:39:41 in China.
        let no = OrderNo::generate(1_795_329_581).0;
        assert_eq!(no.len(), 24, "{no}");
        assert!(no.starts_with("20261122143941"), "{no}");
        assert!(no.bytes().all(|b| b.is_ascii_digit()), "{no}");
        assert_ne!(no, OrderNo::generate(1_795_329_581).0);
    }

    #[tokio::test]
    async fn a_taken_order_number_is_drawn_again_and_never_half_written() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let pool = crate::db::connect(&url).await.unwrap();
        crate::shop::demo::seed_if_empty(&pool).await.unwrap();
        let user: i64 =
            crate::sql!(&pool, e => sqlx::query_scalar("INSERT INTO users (created_at) VALUES (0) RETURNING id")
                .fetch_one(e).await)
                .unwrap();
        let order = || NewOrder {
            items: vec![OrderItemInput {
                sku_id: 1,
                quantity: 1,
            }],
            address: AddressInput {
                name: "张三".into(),
                phone: "13800138000".into(),
                region: "广东省 深圳市 南山区".into(),
                detail: "科技园南区 1 栋 101".into(),
            },
            remark: String::new(),
            coupon: None,
        };
        let settings = ShopSettings::default();
        let taken = |_| OrderNo("202611221439410000000001".into());
        create_numbered(&pool, user, order(), false, &settings, None, taken)
            .await
            .unwrap();
        let stock = || async {
            crate::sql!(&pool, e => sqlx::query_scalar::<_, i64>("SELECT stock FROM skus WHERE id = 1")
                .fetch_one(e).await)
                .unwrap()
        };
        let before = stock().await;

        // The first draw is taken: the second one is used.
        let mut draws = 0;
        let second = create_numbered(&pool, user, order(), false, &settings, None, |_| {
            draws += 1;
            if draws == 1 {
                OrderNo("202611221439410000000001".into())
            } else {
                OrderNo("202611221439410000000002".into())
            }
        })
        .await
        .unwrap();
        assert_eq!(draws, 2);
        let no: String =
            crate::sql!(&pool, e => sqlx::query_scalar("SELECT order_no FROM orders WHERE id = $1")
            .bind(second.order_id)
            .fetch_one(e).await)
            .unwrap();
        assert_eq!(no, "202611221439410000000002");
        assert_eq!(stock().await, before - 1);

        // Every draw taken: an error, and the stock reservation is rolled back.
        let err = create_numbered(&pool, user, order(), false, &settings, None, taken)
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::Internal);
        assert_eq!(stock().await, before - 1);
        let orders: i64 = crate::sql!(&pool, e => sqlx::query_scalar("SELECT COUNT(*) FROM orders")
            .fetch_one(e).await)
        .unwrap();
        assert_eq!(orders, 2);
    }
}
