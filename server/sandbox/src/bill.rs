//! Trade bills (交易账单) built from the sandbox's own transactions and refunds: v2
//! `POST /pay/downloadbill` (the file itself, gzip with `tar_type=GZIP`), v3
//! `GET /v3/bill/tradebill` (`{hash_type, hash_value, download_url}`) and the download, which is
//! authenticated like every v3 call but, as at WeChat, not signed.

use std::collections::HashMap;
use std::io::Write as _;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha1::{Digest as _, Sha1};
use time::Date;

use crate::answer::{pre, v2_return_fail, v3_json};
use crate::crypto::random_alnum;
use crate::state::{Endpoint, Sandbox};
use crate::util::{beijing, dashed_beijing};

/// The header line, exactly as WeChat writes it.
pub(crate) const HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";
/// The summary header line.
pub(crate) const SUMMARY_HEADER: &str =
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额";

/// Which lines a bill holds (`bill_type`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum BillType {
    All,
    Success,
    Refund,
}

impl BillType {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "" | "ALL" => Some(Self::All),
            "SUCCESS" => Some(Self::Success),
            "REFUND" => Some(Self::Refund),
            _ => None,
        }
    }
}

/// Fen as yuan with two decimals, no currency sign (`12.30`).
fn yuan(fen: i64) -> String {
    let fen = fen.max(0);
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// 0.6 % service fee, rounded half up, in fen.
fn fee(fen: i64) -> i64 {
    (fen.max(0) * 6 + 500) / 1000
}

struct Line {
    at_ms: i64,
    fields: Vec<String>,
    total: i64,
    refund: i64,
    fee: i64,
}

impl Sandbox {
    /// The trade bill of `date` (Beijing date of payment / refund request) as WeChat would
    /// serve it with `bill_type=ALL`: header, one back-quoted line per payment and per refund,
    /// summary header and summary line. `None` for a day without trades (WeChat: "No Bill
    /// Exist" / `NO_STATEMENT_EXIST`). Amounts changed with [`Sandbox::tamper_bill_amount`]
    /// show here, in the summary too.
    pub fn trade_bill(&self, date: Date) -> Option<String> {
        self.trade_bill_of(date, BillType::All)
    }

    /// Makes every bill from now on report the payment of `out_trade_no` as `delta_fen` more
    /// (negative: less) than it was (a difference for the shop's reconciliation to find).
    /// Calls add up; [`Sandbox::reset_state`] forgets them.
    pub fn tamper_bill_amount(&self, out_trade_no: &str, delta_fen: i64) {
        *self
            .lock()
            .bill_tamper
            .entry(out_trade_no.to_string())
            .or_default() += delta_fen;
    }

    pub(crate) fn trade_bill_of(&self, date: Date, ty: BillType) -> Option<String> {
        let (txs, tamper) = {
            let st = self.lock();
            (
                st.transactions.values().cloned().collect::<Vec<_>>(),
                st.bill_tamper.clone(),
            )
        };
        let on_day = |ms: i64| beijing(ms).date() == date;
        let mut lines = Vec::new();
        for t in &txs {
            let Some(txid) = t.transaction_id.clone() else {
                continue;
            };
            let common = |at: i64| {
                vec![
                    dashed_beijing(at),
                    t.appid.clone(),
                    t.mchid.clone(),
                    "0".to_string(),
                    String::new(),
                    txid.clone(),
                    t.out_trade_no.clone(),
                    t.openid.clone(),
                    "JSAPI".to_string(),
                ]
            };
            let paid = t.paid_at_ms.unwrap_or(t.created_at_ms);
            if ty != BillType::Refund && on_day(paid) {
                let total = t.total + tamper.get(&t.out_trade_no).copied().unwrap_or(0);
                let mut f = common(paid);
                f.extend([
                    "SUCCESS".to_string(),
                    "OTHERS".to_string(),
                    "CNY".to_string(),
                    yuan(total),
                    "0.00".to_string(),
                    "0".to_string(),
                    "0".to_string(),
                    "0.00".to_string(),
                    "0.00".to_string(),
                    String::new(),
                    String::new(),
                    t.description.clone(),
                    t.attach.clone().unwrap_or_default(),
                    yuan(fee(total)),
                    "0.60%".to_string(),
                    yuan(total),
                    "0.00".to_string(),
                    String::new(),
                ]);
                lines.push(Line {
                    at_ms: paid,
                    fields: f,
                    total: total.max(0),
                    refund: 0,
                    fee: fee(total),
                });
            }
            if ty == BillType::Success {
                continue;
            }
            for r in t.refunds.iter().filter(|r| on_day(r.created_at_ms)) {
                let mut f = common(r.created_at_ms);
                f.extend([
                    "REFUND".to_string(),
                    "OTHERS".to_string(),
                    "CNY".to_string(),
                    "0.00".to_string(),
                    "0.00".to_string(),
                    r.refund_id.clone(),
                    r.out_refund_no.clone(),
                    yuan(r.refund),
                    "0.00".to_string(),
                    "ORIGINAL".to_string(),
                    crate::notify::v2_refund_status(&r.status).to_string(),
                    t.description.clone(),
                    t.attach.clone().unwrap_or_default(),
                    "0.00".to_string(),
                    "0.60%".to_string(),
                    "0.00".to_string(),
                    yuan(r.refund),
                    String::new(),
                ]);
                lines.push(Line {
                    at_ms: r.created_at_ms,
                    fields: f,
                    total: 0,
                    refund: r.refund,
                    fee: 0,
                });
            }
        }
        if lines.is_empty() {
            return None;
        }
        lines.sort_by_key(|l| l.at_ms);
        let mut out = String::from(HEADER);
        out.push_str("\r\n");
        for l in &lines {
            let row: Vec<String> = l.fields.iter().map(|f| format!("`{f}")).collect();
            out.push_str(&row.join(","));
            out.push_str("\r\n");
        }
        let total: i64 = lines.iter().map(|l| l.total).sum();
        let refund: i64 = lines.iter().map(|l| l.refund).sum();
        let fees: i64 = lines.iter().map(|l| l.fee).sum();
        out.push_str(SUMMARY_HEADER);
        out.push_str("\r\n");
        out.push_str(&format!(
            "`{},`{},`{},`0.00,`{},`{},`{}\r\n",
            lines.len(),
            yuan(total),
            yuan(refund),
            yuan(fees),
            yuan(total),
            yuan(refund)
        ));
        Some(out)
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = gz.write_all(data);
    gz.finish().unwrap_or_default()
}

/// `bill_date` `YYYYMMDD` (v2) or `YYYY-MM-DD` (v3).
fn parse_date(s: &str, dashed: bool) -> Option<Date> {
    let (y, m, d) = if dashed {
        if s.len() != 10 || &s[4..5] != "-" || &s[7..8] != "-" {
            return None;
        }
        (&s[0..4], &s[5..7], &s[8..10])
    } else {
        if s.len() != 8 {
            return None;
        }
        (&s[0..4], &s[4..6], &s[6..8])
    };
    if ![y, m, d]
        .iter()
        .all(|p| p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

/// `POST /pay/downloadbill`: the bill itself (gzip with `tar_type=GZIP`), or `return_code FAIL`
/// `No Bill Exist`.
pub(crate) async fn v2_downloadbill(State(sb): State<Sandbox>, body: Bytes) -> Response {
    let what = "pay/downloadbill";
    let v = match crate::pay_v2::signed_request(&sb, Endpoint::V2DownloadBill, what, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let g = |k: &str| v.get(k).map(String::as_str).unwrap_or_default();
    let Some(date) = parse_date(g("bill_date"), false) else {
        return v2_return_fail("invalid bill_date");
    };
    let Some(ty) = BillType::parse(g("bill_type")) else {
        return v2_return_fail("invalid bill_type");
    };
    let gz = match g("tar_type") {
        "" => false,
        "GZIP" => true,
        _ => return v2_return_fail("invalid tar_type"),
    };
    let Some(text) = sb.trade_bill_of(date, ty) else {
        return crate::answer::xml_response(crate::xml::build([
            ("return_code", "FAIL"),
            ("return_msg", "No Bill Exist"),
            ("error_code", "20002"),
        ]));
    };
    if gz {
        (
            [(header::CONTENT_TYPE, "application/x-gzip")],
            gzip(text.as_bytes()),
        )
            .into_response()
    } else {
        ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
    }
}

/// `GET /v3/bill/tradebill?bill_date=YYYY-MM-DD&bill_type=ALL[&tar_type=GZIP]`
pub(crate) async fn v3_tradebill(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
    OriginalUri(original): OriginalUri,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let what = "v3/bill/tradebill";
    let corrupt = match pre(&sb, Endpoint::V3Bill).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = crate::pay_v3::authenticate(&sb, what, &method, &uri, &headers, b"") {
        return r;
    }
    let e = |status: u16, code: &str, msg: &str| {
        tracing::warn!(target: "wechat_sandbox", endpoint = what, code, reason = msg, "refused");
        v3_json(
            &sb,
            crate::util::status(status),
            &json!({"code": code, "message": msg}),
            corrupt,
        )
    };
    let g = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    let Some(date) = parse_date(g("bill_date"), true) else {
        return e(400, "PARAM_ERROR", "bill_date格式错误，应为YYYY-MM-DD");
    };
    let Some(ty) = BillType::parse(g("bill_type")) else {
        return e(400, "PARAM_ERROR", "bill_type参数错误");
    };
    let gz = match g("tar_type") {
        "" => false,
        "GZIP" => true,
        _ => return e(400, "PARAM_ERROR", "tar_type参数错误"),
    };
    let Some(text) = sb.trade_bill_of(date, ty) else {
        return e(400, "NO_STATEMENT_EXIST", "账单文件不存在");
    };
    let file = if gz {
        gzip(text.as_bytes())
    } else {
        text.into_bytes()
    };
    let hash = hex::encode(Sha1::digest(&file));
    let token = random_alnum(32);
    {
        let mut st = sb.lock();
        if st.bill_files.len() > 100 {
            st.bill_files.clear();
        }
        st.bill_files.insert(token.clone(), file);
    }
    // The download URL is absolute, on the host and under the prefix the request came through.
    let full = original.path().to_string();
    let prefix = full.find("/v3/").map(|i| &full[..i]).unwrap_or("");
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    let url = format!("{scheme}://{host}{prefix}/v3/billdownload/file?token={token}");
    v3_json(
        &sb,
        StatusCode::OK,
        &json!({"hash_type": "SHA1", "hash_value": hash, "download_url": url}),
        corrupt,
    )
}

/// `GET /v3/billdownload/file?token=…`: the file, authenticated, not signed (as at WeChat).
/// [`crate::Fault::CorruptSignature`] on [`Endpoint::V3BillDownload`] serves a file whose
/// content no longer matches the announced hash.
pub(crate) async fn v3_billdownload(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let what = "v3/billdownload/file";
    let corrupt = match pre(&sb, Endpoint::V3BillDownload).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = crate::pay_v3::authenticate(&sb, what, &method, &uri, &headers, b"") {
        return r;
    }
    let token = q.get("token").cloned().unwrap_or_default();
    let Some(mut file) = sb.lock().bill_files.get(&token).cloned() else {
        return crate::answer::v3_error(&sb, 400, "INVALID_REQUEST", "下载链接已失效");
    };
    if corrupt {
        file.push(b'\n');
    }
    ([(header::CONTENT_TYPE, "application/octet-stream")], file).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_amounts() {
        assert_eq!(
            parse_date("20240601", false),
            Date::from_calendar_date(2024, time::Month::June, 1).ok()
        );
        assert_eq!(
            parse_date("2024-06-01", true),
            Date::from_calendar_date(2024, time::Month::June, 1).ok()
        );
        for bad in ["2024-6-01", "20241301", "2024-02-30", "abcdefgh", ""] {
            assert_eq!(parse_date(bad, bad.contains('-')), None, "{bad}");
        }
        assert_eq!(yuan(1230), "12.30");
        assert_eq!(yuan(5), "0.05");
        assert_eq!(fee(1990), 12);
        assert_eq!(HEADER.split(',').count(), 27);
    }
}
