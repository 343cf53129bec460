//! WeChat Pay's notifications: payments at `POST /wechat/notify/v2` and `/v3`, refunds at
//! `POST /wechat/notify/refund/v2` and `/refund/v3`.
//!
//! The gateway verifies (signature or decryption, v3 timestamp window and serial, appid/mchid);
//! [`Payments`] applies. What a *verified* notification brought lands in `payment_events`;
//! one that does not verify is refused and logged — at most [`REFUSALS_LOGGED_PER_MINUTE`]
//! lines per reason a minute, and never written to the database (anyone can post junk).
//! Refusals answer with WeChat's failure format (it retries), duplicates answer success
//! without a second change.

use super::events::{self, EventKind, Outcome};
use super::Payments;
use crate::wechat_config::PayVersion;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use wechat::{NotifyAnswer, NotifyError, PayGateway};

/// Log lines per refusal reason and minute; the rest are counted and summed up.
pub const REFUSALS_LOGGED_PER_MINUTE: u32 = 10;

/// Counts refusals per reason so that a flood of junk cannot flood the log.
#[derive(Default)]
pub struct RefusalLog {
    seen: std::sync::Mutex<std::collections::HashMap<&'static str, (std::time::Instant, u32)>>,
}

impl RefusalLog {
    /// Whether this refusal gets a log line (and how many were not logged before it).
    fn admit(&self, reason: &'static str) -> Option<u32> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        let entry = seen.entry(reason).or_insert((now, 0));
        if now.duration_since(entry.0) >= std::time::Duration::from_secs(60) {
            let skipped = entry.1.saturating_sub(REFUSALS_LOGGED_PER_MINUTE);
            *entry = (now, 1);
            return Some(skipped);
        }
        entry.1 += 1;
        (entry.1 <= REFUSALS_LOGGED_PER_MINUTE).then_some(0)
    }

    fn refused(&self, kind: EventKind, e: &NotifyError) {
        let reason = reason_of(e);
        if let Some(skipped) = self.admit(reason) {
            tracing::warn!(kind = kind.as_str(), reason, error = %e, skipped, "notification refused");
        }
    }
}

/// A stable name per refusal reason (the log's key).
fn reason_of(e: &NotifyError) -> &'static str {
    match e {
        NotifyError::TooLarge { .. } => "too_large",
        NotifyError::DoctypeRefused | NotifyError::EntityRefused => "hostile_xml",
        NotifyError::Malformed(_) => "malformed",
        NotifyError::MissingSignature | NotifyError::MissingHeader(_) => "unsigned",
        NotifyError::BadSignature => "bad_signature",
        NotifyError::BadHeader(_) | NotifyError::UnknownSerial(_) => "unknown_key",
        NotifyError::ExpiredCertificate(_) => "expired_certificate",
        NotifyError::StaleTimestamp { .. } => "stale",
        NotifyError::Decrypt | NotifyError::UnsupportedAlgorithm(_) => "undecryptable",
        NotifyError::UnexpectedEvent(_) => "unexpected_event",
        NotifyError::AppIdMismatch(_) | NotifyError::MchIdMismatch(_) => "not_ours",
        NotifyError::ReturnFail(_) => "return_fail",
        _ => "other",
    }
}

#[derive(Clone)]
pub struct NotifyState {
    pub payments: Payments,
    pub gateway: Arc<dyn PayGateway>,
    pub appid: String,
    pub mchid: String,
    pub version: PayVersion,
    pub refusals: Arc<RefusalLog>,
}

fn answer(a: NotifyAnswer) -> Response {
    (
        StatusCode::from_u16(a.status).unwrap_or(StatusCode::OK),
        [(header::CONTENT_TYPE, a.content_type)],
        a.body,
    )
        .into_response()
}

/// The answer to a notification the shop could not apply (its own failure, a database
/// error): WeChat retries. In the format of the route's version (WeChat parses it): Pay v2
/// answers `200` with `return_code FAIL`, Pay v3 `500` with `{"code":"FAIL"}`.
fn fail(route: PayVersion, msg: &str) -> Response {
    answer(match route {
        PayVersion::V2 => wechat::pay::v2::notify::failure(msg),
        PayVersion::V3 => wechat::pay::v3::notify::failure(msg),
    })
}

/// The answer to a notification the shop refuses (forged, malformed, for another merchant, an
/// amount or refund that does not match): Pay v3 says `400`, a client error, so monitoring
/// tells somebody else's requests from the shop's own failures; Pay v2 has only `FAIL`.
fn refuse(route: PayVersion, msg: &str) -> Response {
    answer(match route {
        PayVersion::V2 => wechat::pay::v2::notify::failure(msg),
        PayVersion::V3 => wechat::pay::v3::notify::refusal(msg),
    })
}

async fn log(
    st: &NotifyState,
    order_id: Option<i64>,
    kind: EventKind,
    outcome: Outcome,
    detail: &str,
) {
    if let Err(e) = events::record(st.payments.pool(), order_id, kind, outcome, detail).await {
        tracing::error!(error = %e, "cannot record a payment event");
    }
}

pub async fn v2(State(st): State<NotifyState>, headers: HeaderMap, body: Bytes) -> Response {
    payment(&st, PayVersion::V2, &headers, &body).await
}

pub async fn v3(State(st): State<NotifyState>, headers: HeaderMap, body: Bytes) -> Response {
    payment(&st, PayVersion::V3, &headers, &body).await
}

pub async fn refund_v2(State(st): State<NotifyState>, headers: HeaderMap, body: Bytes) -> Response {
    refund(&st, PayVersion::V2, &headers, &body).await
}

pub async fn refund_v3(State(st): State<NotifyState>, headers: HeaderMap, body: Bytes) -> Response {
    refund(&st, PayVersion::V3, &headers, &body).await
}

async fn payment(
    st: &NotifyState,
    route: PayVersion,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let kind = match route {
        PayVersion::V2 => EventKind::NotifyV2,
        PayVersion::V3 => EventKind::NotifyV3,
    };
    let notice = match st.gateway.parse_notification(headers, body).await {
        Ok(n) => n,
        Err(NotifyError::PaymentFailed { err_code, .. }) => {
            // An authentic report of a failed payment: nothing to change.
            log(
                st,
                None,
                kind,
                Outcome::Info,
                &format!("payment failed at WeChat: {err_code}"),
            )
            .await;
            return answer(st.gateway.notification_success());
        }
        Err(e) => {
            st.refusals.refused(kind, &e);
            return refuse(route, &refusal_message(&e));
        }
    };
    if notice.appid != st.appid || notice.mchid != st.mchid {
        log(
            st,
            None,
            kind,
            Outcome::Refused,
            "notification for another appid or mchid",
        )
        .await;
        return refuse(route, "appid/mchid mismatch");
    }
    if !notice.is_success() {
        let detail = format!("trade_state {}", notice.trade_state.as_str());
        log(st, None, kind, Outcome::Info, &detail).await;
        return answer(st.gateway.notification_success());
    }
    match st.payments.on_notification(&notice, kind).await {
        Ok(applied) if applied.acknowledge() => answer(st.gateway.notification_success()),
        Ok(_) => refuse(route, "order mismatch"),
        Err(e) => {
            tracing::error!(error = %e, "payment notification not applied");
            fail(route, "internal error")
        }
    }
}

async fn refund(st: &NotifyState, route: PayVersion, headers: &HeaderMap, body: &[u8]) -> Response {
    let kind = match route {
        PayVersion::V2 => EventKind::RefundNotifyV2,
        PayVersion::V3 => EventKind::RefundNotifyV3,
    };
    let notice = match st.gateway.parse_refund_notification(headers, body).await {
        Ok(n) => n,
        Err(e) => {
            st.refusals.refused(kind, &e);
            return refuse(route, &refusal_message(&e));
        }
    };
    match st.payments.on_refund_notification(&notice, kind).await {
        Ok((Outcome::Refused, _)) => refuse(route, "refund mismatch"),
        Ok(_) => answer(st.gateway.notification_success()),
        Err(e) => {
            tracing::error!(error = %e, "refund notification not applied");
            fail(route, "internal error")
        }
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

/// The WeChat Pay notification routes of the configured version (no session, no Leptos); the
/// other version's routes do not exist (404).
pub fn router<S: Clone + Send + Sync + 'static>(st: NotifyState) -> axum::Router<S> {
    use axum::routing::post;
    let not_configured = || async { (StatusCode::NOT_FOUND, "not configured") };
    let routes = match st.version {
        PayVersion::V2 => axum::Router::new()
            .route("/wechat/notify/v2", post(v2))
            .route("/wechat/notify/refund/v2", post(refund_v2))
            .route("/wechat/notify/v3", post(not_configured))
            .route("/wechat/notify/refund/v3", post(not_configured)),
        PayVersion::V3 => axum::Router::new()
            .route("/wechat/notify/v3", post(v3))
            .route("/wechat/notify/refund/v3", post(refund_v3))
            .route("/wechat/notify/v2", post(not_configured))
            .route("/wechat/notify/refund/v2", post(not_configured)),
    };
    routes
        .layer(axum::extract::DefaultBodyLimit::max(
            wechat::pay::notify::MAX_NOTIFY_BYTES,
        ))
        .with_state(st)
}
