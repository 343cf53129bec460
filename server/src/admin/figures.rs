//! The console's figures: `dashboard` — today, 7 and 30 days (China days): paid orders, sales,
//! refunds, the average order, the share of created orders that were paid; daily sales for 30
//! days (numbers and a server-rendered SVG chart); the top products; what waits (orders to ship,
//! after-sales to handle).
//!
//! Money is integer fen throughout. A day is a China day (UTC+8, always 86,400 s), so a day's
//! bucket is `(t - start) / 86400` in SQL on both backends.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;

use super::{internal, signed_in, AdminState};
use crate::db::Db;

const DAY: i64 = 86_400;
/// Days in the chart and the top-products window.
pub const CHART_DAYS: i64 = 30;

/// One window's figures.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    pub paid_orders: i64,
    pub sales_fen: i64,
    /// Refunds that reached the shopper in the window.
    pub refunds_fen: i64,
    /// `sales_fen / paid_orders`, rounded to the fen; 0 without orders.
    pub average_fen: i64,
    /// Orders created in the window…
    pub created_orders: i64,
    /// …and how many of those are paid (or were, before a refund).
    pub created_and_paid: i64,
    /// `created_and_paid / created_orders` in per mille (1000 = all), 0 without orders.
    pub paid_share_permille: i64,
}

async fn figures(pool: &Db, from: i64, to: i64) -> Result<Figures, sqlx::Error> {
    let (paid_orders, sales_fen, created_orders, created_and_paid): (i64, i64, i64, i64) = crate::sql!(pool, e => sqlx::query_as(
            "SELECT \
             (SELECT COUNT(*) FROM orders WHERE paid_at >= $1 AND paid_at < $2), \
             (SELECT CAST(COALESCE(SUM(total_fee), 0) AS BIGINT) FROM orders WHERE paid_at >= $1 AND paid_at < $2), \
             (SELECT COUNT(*) FROM orders WHERE created_at >= $1 AND created_at < $2), \
             (SELECT COUNT(*) FROM orders WHERE created_at >= $1 AND created_at < $2 AND paid_at IS NOT NULL)",
        )
        .bind(from)
        .bind(to)
        .fetch_one(e).await)?;
    let refunds_fen: i64 = crate::sql!(pool, e => sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM refunds \
         WHERE status = 'succeeded' AND succeeded_at >= $1 AND succeeded_at < $2",
    )
    .bind(from)
    .bind(to)
    .fetch_one(e).await)?;
    let ratio = |a: i64, b: i64, scale: i64| if b == 0 { 0 } else { (a * scale + b / 2) / b };
    Ok(Figures {
        paid_orders,
        sales_fen,
        refunds_fen,
        average_fen: ratio(sales_fen, paid_orders, 1),
        created_orders,
        created_and_paid,
        paid_share_permille: ratio(created_and_paid, created_orders, 1000),
    })
}

/// Sales per day for the `days` days from `start`: (paid orders, fen) each.
async fn daily(pool: &Db, start: i64, days: i64) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    let rows: Vec<(i64, i64, i64)> = crate::sql!(pool, e => sqlx::query_as(
        "SELECT CAST((paid_at - $1) / 86400 AS BIGINT), COUNT(*), CAST(COALESCE(SUM(total_fee), 0) AS BIGINT) \
         FROM orders WHERE paid_at >= $1 AND paid_at < $2 GROUP BY 1",
    )
    .bind(start)
    .bind(start + days * DAY)
    .fetch_all(e).await)?;
    let mut out = vec![(0, 0); days as usize];
    for (day, n, fen) in rows {
        if let Some(slot) = usize::try_from(day).ok().and_then(|d| out.get_mut(d)) {
            *slot = (n, fen);
        }
    }
    Ok(out)
}

/// The daily sales as an SVG bar chart: readable on a phone (it scales to the width), with a
/// text alternative, each bar's figure in its `<title>`, and dates under every fifth bar.
pub fn chart_svg(start: i64, days: &[(i64, i64)]) -> String {
    const W: f64 = 600.0;
    const H: f64 = 220.0;
    const TOP: f64 = 16.0;
    const BOTTOM: f64 = 28.0;
    const LEFT: f64 = 8.0;
    let max = days.iter().map(|d| d.1).max().unwrap_or(0).max(1);
    let total: i64 = days.iter().map(|d| d.1).sum();
    let slot = (W - LEFT * 2.0) / days.len().max(1) as f64;
    let plot = H - TOP - BOTTOM;
    let date = |i: usize| {
        let t = time::OffsetDateTime::from_unix_timestamp(start + i as i64 * DAY)
            .map(|t| t.to_offset(time::macros::offset!(+8)))
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        (t.month() as u8, t.day())
    };
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"100%\" \
         role=\"img\" aria-label=\"近 {n} 天销售额，合计 ¥{total}，最高一天 ¥{max}\" class=\"sales-chart\">",
        n = days.len(),
        total = app::model::format_fen(total),
        max = app::model::format_fen(max),
    );
    svg.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"#86909c\" stroke-width=\"1\"/>",
        y = H - BOTTOM,
        x2 = W - LEFT
    ));
    for (i, &(orders, fen)) in days.iter().enumerate() {
        let h = (fen as f64 / max as f64 * plot).max(if fen > 0 { 1.0 } else { 0.0 });
        let x = LEFT + i as f64 * slot + slot * 0.15;
        let (m, d) = date(i);
        svg.push_str(&format!(
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"#067d3f\">\
             <title>{m}月{d}日：{orders} 单，¥{yuan}</title></rect>",
            y = H - BOTTOM - h,
            w = slot * 0.7,
            yuan = app::model::format_fen(fen),
        ));
        if i % 5 == 0 || i + 1 == days.len() {
            svg.push_str(&format!(
                "<text x=\"{tx:.1}\" y=\"{ty}\" font-size=\"12\" text-anchor=\"middle\" fill=\"#4e5969\">{m}/{d}</text>",
                tx = LEFT + i as f64 * slot + slot / 2.0,
                ty = H - 8.0,
            ));
        }
    }
    svg.push_str(&format!(
        "<text x=\"{LEFT}\" y=\"12\" font-size=\"12\" fill=\"#4e5969\">最高 ¥{}</text></svg>",
        app::model::format_fen(max)
    ));
    svg
}

fn today_start() -> i64 {
    let today = time::OffsetDateTime::from_unix_timestamp(crate::shop::now())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(time::macros::offset!(+8))
        .date();
    crate::payments::reconcile::day_bounds(today).0
}

pub(super) async fn dashboard(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    if let Err(r) = signed_in(&st, &headers).await {
        return r;
    }
    let result = async {
        let today = today_start();
        let end = today + DAY;
        let chart_start = end - CHART_DAYS * DAY;
        let day = figures(&st.pool, today, end).await?;
        let week = figures(&st.pool, end - 7 * DAY, end).await?;
        let month = figures(&st.pool, chart_start, end).await?;
        let days = daily(&st.pool, chart_start, CHART_DAYS).await?;
        let top: Vec<(i64, String, i64, i64)> = crate::sql!(&st.pool, e => sqlx::query_as(
            "SELECT l.product_id, MAX(l.product_name), CAST(SUM(l.quantity) AS BIGINT), \
             CAST(SUM(l.quantity * l.unit_price_fen) AS BIGINT) \
             FROM order_lines l JOIN orders o ON o.id = l.order_id \
             WHERE o.paid_at >= $1 AND o.paid_at < $2 \
             GROUP BY l.product_id ORDER BY 3 DESC, 4 DESC, l.product_id LIMIT 10",
        )
        .bind(chart_start)
        .bind(end)
        .fetch_all(e).await)?;
        let (to_ship, aftersales): (i64, i64) = crate::sql!(&st.pool, e => sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM orders WHERE status = 'paid'), \
             (SELECT COUNT(*) FROM aftersales WHERE status IN ('pending', 'awaiting_return'))",
        )
        .fetch_one(e).await)?;
        Ok::<_, sqlx::Error>(json!({
            "today": day,
            "days_7": week,
            "days_30": month,
            "daily": days.iter().enumerate().map(|(i, (n, fen))| json!({
                "day_start": chart_start + i as i64 * DAY, "paid_orders": n, "sales_fen": fen,
            })).collect::<Vec<_>>(),
            "chart_svg": chart_svg(chart_start, &days),
            "top_products": top.into_iter().map(|(id, name, qty, fen)| json!({
                "product_id": id, "name": name, "quantity": qty, "sales_fen": fen,
            })).collect::<Vec<_>>(),
            "orders_to_ship": to_ship,
            "aftersales_waiting": aftersales,
        }))
    }
    .await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => internal(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_has_a_bar_per_day_titles_and_a_text_alternative() {
        let mut days = vec![(0, 0); 30];
        days[3] = (2, 12_345);
        days[29] = (1, 100);
        let svg = chart_svg(1_764_518_400, &days); // 2025-12-01 00:00 China time
        assert_eq!(svg.matches("<rect").count(), 30);
        assert!(svg.contains("aria-label=\"近 30 天销售额，合计 ¥124.45，最高一天 ¥123.45\""));
        assert!(
            svg.contains("<title>12月4日：2 单，¥123.45</title>"),
            "{svg}"
        );
        assert!(svg.contains(">12/1</text>"));
        // The tallest bar fills the plot; an empty day has no height.
        assert!(svg.contains("height=\"176.0\""));
        assert!(svg.contains("height=\"0.0\""));
    }

    #[test]
    fn chart_of_nothing_is_still_a_chart() {
        let svg = chart_svg(0, &[(0, 0); 30]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("合计 ¥0.00"));
    }
}
