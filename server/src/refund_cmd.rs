//! `wxmall refund ORDER [--amount-fen N] [--line LINE_NO:QTY]… --reason TEXT [--restock]`:
//! a merchant refund through the payments service, against the WeChat Pay the shop is
//! configured for (in sandbox mode, the running shop's sandbox).
//!
//! Exit status: 0 when WeChat accepted the refund (or it had been made already by the same
//! request); 2 for a request that cannot be (too large, unpaid order, bad line, no reason);
//! 1 when WeChat refused it or could not be reached (it is then retried by the shop).

use server::payments::{PaymentError, RefundLine, RefundOutcome, RefundRequest};

#[derive(clap::Args, Debug)]
pub struct RefundArgs {
    /// The order number (WeChat's out_trade_no) or the order id.
    pub order: String,
    /// The amount in fen; without it, the value of the lines, or else all that is left.
    #[arg(long)]
    pub amount_fen: Option<i64>,
    /// An order line to refund, as LINE_NO:QTY (lines are numbered from 1); repeatable.
    #[arg(long = "line", value_parser = parse_line)]
    pub lines: Vec<RefundLine>,
    /// Why (shown to the shopper by WeChat), at most 80 characters.
    #[arg(long)]
    pub reason: String,
    /// Put the refunded lines back in stock once the refund succeeds.
    #[arg(long)]
    pub restock: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_line(s: &str) -> Result<RefundLine, String> {
    let (no, qty) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected LINE_NO:QTY, e.g. 1:2"))?;
    let line_no = no.trim().parse::<i64>().ok().filter(|n| *n >= 1);
    let quantity = qty.trim().parse::<i64>().ok().filter(|n| *n >= 1);
    match (line_no, quantity) {
        (Some(line_no), Some(quantity)) => Ok(RefundLine { line_no, quantity }),
        _ => Err(format!(
            "{s:?}: line number and quantity must be whole numbers from 1"
        )),
    }
}

/// Why the command failed, with its exit status.
pub struct Failure {
    pub status: u8,
    pub message: String,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self { status: 1, message }
    }
}

pub async fn run(args: &RefundArgs, out: &mut impl std::io::Write) -> Result<(), Failure> {
    let settings = server::config::Settings::from_env().map_err(|e| e.to_string())?;
    let payments = server::payments_from_settings(&settings)
        .await
        .map_err(|e| e.to_string())?;
    let req = RefundRequest {
        order: args.order.clone(),
        amount_fen: args.amount_fen,
        lines: args.lines.clone(),
        reason: args.reason.clone(),
        restock: args.restock,
    };
    let outcome = match payments.refund(&req).await {
        Ok(o) => o,
        Err(e) => {
            let status = match e {
                PaymentError::OrderNotFound
                | PaymentError::InvalidState(_)
                | PaymentError::BadRefund(_) => 2,
                _ => 1,
            };
            let message = match e {
                PaymentError::OrderNotFound => format!("no order {:?}", args.order),
                PaymentError::InvalidState(m) => m.to_string(),
                PaymentError::BadRefund(m) => m,
                PaymentError::Db(e) => format!("cannot use the database: {e}"),
                other => other.to_string(),
            };
            return Err(Failure { status, message });
        }
    };
    let text = if args.json {
        serde_json::to_string_pretty(&outcome).map_err(|e| e.to_string())?
    } else {
        render(&outcome)
    };
    writeln!(out, "{text}").map_err(|e| e.to_string())?;
    if outcome.accepted() || outcome.refund.status == "succeeded" {
        Ok(())
    } else {
        Err(Failure {
            status: 1,
            message: format!(
                "refund {} is {}: {}",
                outcome.refund.out_refund_no,
                outcome.refund.status,
                if outcome.refund.detail.is_empty() {
                    "WeChat has not confirmed it yet; the shop will send it again"
                } else {
                    &outcome.refund.detail
                }
            ),
        })
    }
}

fn render(o: &RefundOutcome) -> String {
    let r = &o.refund;
    let mut s = format!(
        "refund {} of {} fen ({}): {}",
        r.out_refund_no,
        r.amount_fen,
        app::model::format_fen(r.amount_fen),
        r.status
    );
    if let Some(id) = &r.refund_id {
        s.push_str(&format!("\nWeChat refund {id}"));
    }
    if !o.created {
        s.push_str("\n(the same refund was requested before: nothing new was refunded)");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::parse_line;

    #[test]
    fn lines_parse_strictly() {
        let l = parse_line("2:3").unwrap();
        assert_eq!((l.line_no, l.quantity), (2, 3));
        for bad in ["2", "0:1", "1:0", "a:1", "1:-1", ":"] {
            assert!(parse_line(bad).is_err(), "{bad}");
        }
    }
}
