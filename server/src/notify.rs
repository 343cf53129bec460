//! `POST /wechat/notify/v2` and `/wechat/notify/v3`: WeChat Pay's payment notifications.
//!
//! The gateway verifies (signature, v3 timestamp window and serial, decryption, appid/mchid);
//! the shop then checks the amount against the order and applies the one conditional
//! `unpaid → paid` UPDATE. Every attempt lands in `payment_events`; refusals answer with
//! WeChat's failure format (it retries), duplicates answer success without a second change.

use crate::shop::payments::{apply_paid, record_event};
use crate::wechat_config::PayVersion;
use crate::wx::Wechat;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sqlx::SqlitePool;
use std::sync::Arc;
use wechat::{NotifyAnswer, NotifyError};

#[derive(Clone)]
pub struct NotifyState {
    pub wx: Arc<Wechat>,
    pub pool: SqlitePool,
}

fn answer(a: NotifyAnswer) -> Response {
    (
        StatusCode::from_u16(a.status).unwrap_or(StatusCode::OK),
        [(header::CONTENT_TYPE, a.content_type)],
        a.body,
    )
        .into_response()
}

pub async fn v2(State(st): State<NotifyState>, headers: HeaderMap, body: Bytes) -> Response {
    handle(&st, PayVersion::V2, &headers, &body).await
}

pub async fn v3(State(st): State<NotifyState>, headers: HeaderMap, body: Bytes) -> Response {
    handle(&st, PayVersion::V3, &headers, &body).await
}

async fn handle(st: &NotifyState, route: PayVersion, headers: &HeaderMap, body: &[u8]) -> Response {
    let kind = match route {
        PayVersion::V2 => "notify_v2",
        PayVersion::V3 => "notify_v3",
    };
    let pay = &st.wx.pay;
    let fail = |msg: &str| {
        // The failure answer in the format of the route's version (WeChat parses it).
        answer(match route {
            PayVersion::V2 => wechat::notify::v2::failure(msg),
            PayVersion::V3 => wechat::notify::v3::failure(msg),
        })
    };
    let log = |order_id: Option<i64>, outcome: &'static str, detail: String| {
        let pool = st.pool.clone();
        async move {
            if let Err(e) = record_event(&pool, order_id, kind, outcome, &detail).await {
                tracing::error!(error = %e, "cannot record a payment event");
            }
        }
    };
    if route != st.wx.pay_version {
        log(
            None,
            "refused",
            "notification for the pay version not configured".into(),
        )
        .await;
        return fail("wrong endpoint");
    }
    let notice = match pay.parse_notification(headers, body).await {
        Ok(n) => n,
        Err(NotifyError::PaymentFailed { err_code, .. }) => {
            // An authentic report of a failed payment: nothing to change.
            log(
                None,
                "info",
                format!("payment failed at WeChat: {err_code}"),
            )
            .await;
            return answer(pay.notification_success());
        }
        Err(e) => {
            tracing::warn!(error = %e, "payment notification refused");
            log(None, "refused", e.to_string()).await;
            return fail(&refusal_message(&e));
        }
    };
    if notice.appid != st.wx.appid || notice.mchid != st.wx.mchid {
        log(
            None,
            "refused",
            "notification for another appid or mchid".into(),
        )
        .await;
        return fail("appid/mchid mismatch");
    }
    if !notice.is_success() {
        log(
            None,
            "info",
            format!("trade_state {}", notice.trade_state.as_str()),
        )
        .await;
        return answer(pay.notification_success());
    }
    match apply_paid(
        &st.pool,
        &notice.out_trade_no,
        &notice.transaction_id,
        notice.total_fee,
        kind,
    )
    .await
    {
        Ok((applied, _)) if applied.acknowledge() => answer(pay.notification_success()),
        Ok(_) => fail("order mismatch"),
        Err(_) => fail("internal error"),
    }
}

/// What the failure answer says: the kind of problem, never the details.
fn refusal_message(e: &NotifyError) -> String {
    match e {
        NotifyError::BadSignature | NotifyError::MissingSignature => "签名错误".into(),
        NotifyError::MissingHeader(_)
        | NotifyError::BadHeader(_)
        | NotifyError::UnknownSerial(_) => "验签失败".into(),
        NotifyError::StaleTimestamp { .. } => "时间戳过期".into(),
        _ => "参数格式校验错误".into(),
    }
}

/// The WeChat-facing routes (no session, no Leptos).
pub fn router<S: Clone + Send + Sync + 'static>(st: NotifyState) -> axum::Router<S> {
    use axum::routing::post;
    axum::Router::new()
        .route("/wechat/notify/v2", post(v2))
        .route("/wechat/notify/v3", post(v3))
        .layer(axum::extract::DefaultBodyLimit::max(
            wechat::notify::MAX_NOTIFY_BYTES,
        ))
        .with_state(st)
}
