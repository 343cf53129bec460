//! `wxmall payments ORDER`: an order's payment history from the database, for answering
//! "I paid, why does it say unpaid?" without SQL. Read-only: it never changes the database.

use server::payments::trail::{trail, PaymentTrail};

#[derive(clap::Args, Debug)]
pub struct PaymentsArgs {
    /// The order number (WeChat's out_trade_no) or the order id.
    pub order: String,
    /// Print JSON instead of text (times as unix seconds).
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: &PaymentsArgs, out: &mut impl std::io::Write) -> Result<(), String> {
    let url = server::config::database_url_from_env();
    let pool = server::db::open_read_only(&url)
        .await
        // Not the URL itself: a server database's URL may carry a password.
        .map_err(|e| format!("{e} (the database named by DATABASE_URL / WXMALL_DATA_DIR)"))?;
    let found = trail(&pool, args.order.trim())
        .await
        .map_err(|e| format!("cannot read the database: {e}"))?;
    let Some(t) = found else {
        return Err(format!("no order {:?}", args.order));
    };
    let text = if args.json {
        serde_json::to_string_pretty(&t).map_err(|e| e.to_string())?
    } else {
        render(&t)
    };
    writeln!(out, "{text}").map_err(|e| e.to_string())
}

fn render(t: &PaymentTrail) -> String {
    use app::components::format_time;
    let mut s = format!(
        "order {} (id {}): {}, total {} fen ({})\ncreated {}",
        t.order_no,
        t.order_id,
        t.status,
        t.total_fee,
        app::model::format_fen(t.total_fee),
        format_time(t.created_at)
    );
    if let Some(at) = t.paid_at {
        s.push_str(&format!(", paid {}", format_time(at)));
    }
    if let Some(at) = t.closed_at {
        s.push_str(&format!(", closed {}", format_time(at)));
    }
    if let Some(tx) = &t.transaction_id {
        s.push_str(&format!("\nWeChat transaction {tx}"));
    }
    if t.paid_in_sandbox {
        s.push_str("\nSANDBOX payment: made in the embedded WeChat sandbox, no money moved");
    }
    if let Some(why) = &t.pay_error {
        s.push_str(&format!("\nlast payment error: {why}"));
    }
    if t.refunded_fen > 0 {
        s.push_str(&format!(
            "\nrefunded {} fen ({})",
            t.refunded_fen,
            app::model::format_fen(t.refunded_fen)
        ));
    }
    for r in &t.refunds {
        s.push_str(&format!(
            "\nrefund {} {:<10} {} fen, {} ({}){}{}",
            r.out_refund_no,
            r.status,
            r.amount_fen,
            r.kind,
            format_time(r.created_at),
            r.refund_id
                .as_deref()
                .map(|id| format!(", WeChat {id}"))
                .unwrap_or_default(),
            if r.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", r.reason)
            }
        ));
    }
    if t.events.is_empty() {
        s.push_str("\nno payment events");
    }
    for e in &t.events {
        s.push_str(&format!(
            "\n{}  {:<10} {:<10} {}",
            format_time(e.created_at),
            e.kind,
            e.outcome,
            e.detail
        ));
    }
    s
}
