//! `wxmall reconcile --date YYYY-MM-DD [--json]`: downloads WeChat's trade bill for that day
//! (China time) and compares it with the shop's payments and refunds. Prints the matched counts
//! and sums and every difference. Exit status: 0 the books match, 1 any difference, 2 it could
//! not run (bad date, WeChat or the database unreachable). Each run is kept in the database.

use server::payments::reconcile::{yesterday_in_china, Difference, ReconcileReport};

#[derive(clap::Args, Debug)]
pub struct ReconcileArgs {
    /// The bill's day, China time (default: yesterday).
    #[arg(long)]
    pub date: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_date(s: &str) -> Result<time::Date, String> {
    let bad = || format!("{s:?} is not a date like 2026-12-03");
    let parts: Vec<&str> = s.trim().split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let y: i32 = y.parse().map_err(|_| bad())?;
    let m: u8 = m.parse().map_err(|_| bad())?;
    let d: u8 = d.parse().map_err(|_| bad())?;
    let month = time::Month::try_from(m).map_err(|_| bad())?;
    time::Date::from_calendar_date(y, month, d).map_err(|_| bad())
}

/// Ok(true) when the books match.
pub async fn run(args: &ReconcileArgs, out: &mut impl std::io::Write) -> Result<bool, String> {
    let date = match &args.date {
        Some(d) => parse_date(d)?,
        None => yesterday_in_china(),
    };
    let settings = server::config::Settings::from_env().map_err(|e| e.to_string())?;
    let payments = server::payments_from_settings(&settings)
        .await
        .map_err(|e| e.to_string())?;
    let report = payments
        .reconcile_bill(date)
        .await
        .map_err(|e| e.to_string())?;
    let text = if args.json {
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
    } else {
        render(&report)
    };
    writeln!(out, "{text}").map_err(|e| e.to_string())?;
    Ok(report.is_clean())
}

fn render(r: &ReconcileReport) -> String {
    let fen = app::model::format_fen;
    let mut s = format!(
        "{}: {}\npayments matched: {} ({})\nrefunds matched: {} ({})",
        r.date,
        if r.bill {
            "WeChat's bill"
        } else {
            "no bill at WeChat (no trades)"
        },
        r.payments_matched,
        fen(r.payments_matched_fen),
        r.refunds_matched,
        fen(r.refunds_matched_fen)
    );
    if r.differences.is_empty() {
        s.push_str("\nno differences");
    } else {
        s.push_str(&format!("\n{} differences:", r.differences.len()));
    }
    for d in &r.differences {
        s.push_str("\n  ");
        s.push_str(&match d {
            Difference::PaidAtWechatOnly { transaction_id, out_trade_no, amount_fen } => format!(
                "paid at WeChat, not in the shop: order {out_trade_no}, transaction {transaction_id}, {}",
                fen(*amount_fen)
            ),
            Difference::PaidInShopOnly { transaction_id, out_trade_no, amount_fen } => format!(
                "paid in the shop, not at WeChat: order {out_trade_no}, transaction {transaction_id}, {}",
                fen(*amount_fen)
            ),
            Difference::PaymentAmountDiffers { transaction_id, out_trade_no, shop_fen, wechat_fen } => format!(
                "payment amount differs: order {out_trade_no}, transaction {transaction_id}: shop {}, WeChat {}",
                fen(*shop_fen),
                fen(*wechat_fen)
            ),
            Difference::RefundAtWechatOnly { out_refund_no, out_trade_no, amount_fen } => format!(
                "refunded at WeChat, not in the shop: refund {out_refund_no} of order {out_trade_no}, {}",
                fen(*amount_fen)
            ),
            Difference::RefundInShopOnly { out_refund_no, out_trade_no, amount_fen } => format!(
                "refunded in the shop, not at WeChat: refund {out_refund_no} of order {out_trade_no}, {}",
                fen(*amount_fen)
            ),
            Difference::RefundAmountDiffers { out_refund_no, out_trade_no, shop_fen, wechat_fen } => format!(
                "refund amount differs: refund {out_refund_no} of order {out_trade_no}: shop {}, WeChat {}",
                fen(*shop_fen),
                fen(*wechat_fen)
            ),
        });
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(
            super::parse_date("2026-12-03").unwrap().to_string(),
            "2026-12-03"
        );
        assert!(super::parse_date("2026-13-01").is_err());
        assert!(super::parse_date("20261203").is_err());
    }
}
