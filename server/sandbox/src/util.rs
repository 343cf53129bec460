//! Small helpers: time formatting, HTML escaping, WeChat-style error bodies.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

pub(crate) const BEIJING: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(o) => o,
    Err(_) => panic!("valid offset"),
};

pub(crate) fn wall_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_millis() as i64
}

pub(crate) fn beijing(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(BEIJING)
}

/// `2018-06-08T10:34:56+08:00` (what v3 writes).
pub(crate) fn rfc3339_beijing(ms: i64) -> String {
    beijing(ms)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]+08:00"
        ))
        .unwrap_or_default()
}

/// `2018-06-08 10:34:56` (v2 refund times, bill trade times).
pub(crate) fn dashed_beijing(ms: i64) -> String {
    beijing(ms)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .unwrap_or_default()
}

/// `20180608103456` (what v2 writes).
pub(crate) fn compact_beijing(ms: i64) -> String {
    beijing(ms)
        .format(format_description!(
            "[year][month][day][hour][minute][second]"
        ))
        .unwrap_or_default()
}

/// Parses v2 `time_expire` (`yyyyMMddHHmmss`, Beijing time) into unix ms.
pub(crate) fn parse_compact_beijing(s: &str) -> Option<i64> {
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let p = PrimitiveDateTime::parse(
        s,
        format_description!("[year][month][day][hour][minute][second]"),
    )
    .ok()?;
    Some((p.assume_offset(BEIJING).unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Parses v3 `time_expire` (RFC 3339) into unix ms.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

pub(crate) fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// A WeChat-style request id appended to `errmsg` (`…, rid: 64f…-1a2b…`).
pub(crate) fn rid() -> String {
    format!(
        "{}-{}",
        crate::crypto::random_hex_upper(8).to_lowercase(),
        crate::crypto::random_hex_upper(8).to_lowercase()
    )
}

/// `{"errcode":N,"errmsg":"msg, rid: …"}` with HTTP 200, as api.weixin.qq.com answers.
pub(crate) fn errcode(code: i64, msg: &str) -> Response {
    Json(json!({"errcode": code, "errmsg": format!("{msg}, rid: {}", rid())})).into_response()
}

pub(crate) fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Formats fen as `¥12.30`.
pub(crate) fn yuan(fen: i64) -> String {
    format!("¥{}.{:02}", fen / 100, fen % 100)
}

/// Valid `out_trade_no` / `out_refund_no`: `[0-9A-Za-z_\-|*]`, 1–32 chars (v3: 6–32).
pub(crate) fn valid_trade_no(s: &str, min: usize) -> bool {
    (min..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*'))
}

/// A notify URL WeChat accepts: absolute http(s), no query string.
pub(crate) fn check_notify_url(s: &str) -> Result<(), &'static str> {
    let u = url::Url::parse(s).map_err(|_| "notify_url参数格式错误")?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err("notify_url参数格式错误");
    }
    if u.query().is_some() {
        return Err("notify_url不能携带参数");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let ms = 1_414_587_457_000;
        assert_eq!(rfc3339_beijing(ms), "2014-10-29T20:57:37+08:00");
        assert_eq!(compact_beijing(ms), "20141029205737");
        assert_eq!(dashed_beijing(ms), "2014-10-29 20:57:37");
        assert_eq!(parse_compact_beijing("20141029205737"), Some(ms));
        assert_eq!(parse_rfc3339("2014-10-29T20:57:37+08:00"), Some(ms));
        assert_eq!(yuan(1230), "¥12.30");
        assert_eq!(yuan(5), "¥0.05");
    }
}
