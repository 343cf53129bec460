//! The dashboard's buttons: what a merchant (or a browser test) can make "WeChat" do from
//! outside the shop, as a person could at the real WeChat — pay an order from another phone,
//! or lose WeChat's notifications for a while.
//!
//! `POST /dashboard/pay` (form `out_trade_no`): the payer pays the order (the notification is
//! sent as usual, unless notifications are being dropped).
//! `POST /dashboard/notifications` (form `drop=1|0`): payment and refund notifications are
//! dropped (not sent) while on, as if they were lost on the way.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;

use crate::state::Sandbox;
use crate::SandboxError;

#[derive(serde::Deserialize)]
pub(crate) struct PayForm {
    out_trade_no: String,
}

#[derive(serde::Deserialize)]
pub(crate) struct NotificationsForm {
    drop: String,
}

/// `POST /dashboard/pay`.
pub(crate) async fn pay(State(sb): State<Sandbox>, Form(f): Form<PayForm>) -> Response {
    match sb.pay(f.out_trade_no.trim()).await {
        Ok(t) => (
            StatusCode::OK,
            format!(
                "paid {} ({} fen), transaction {}",
                t.out_trade_no,
                t.total,
                t.transaction_id.unwrap_or_default()
            ),
        )
            .into_response(),
        Err(SandboxError::UnknownOrder(no)) => {
            (StatusCode::NOT_FOUND, format!("no order {no}")).into_response()
        }
        Err(e) => (StatusCode::CONFLICT, e.to_string()).into_response(),
    }
}

/// `POST /dashboard/notifications`.
pub(crate) async fn notifications(
    State(sb): State<Sandbox>,
    Form(f): Form<NotificationsForm>,
) -> Response {
    let drop = matches!(f.drop.trim(), "1" | "true" | "on");
    sb.set_drop_notifications(drop);
    (
        StatusCode::OK,
        if drop {
            "notifications are dropped"
        } else {
            "notifications are delivered"
        },
    )
        .into_response()
}
