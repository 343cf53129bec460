//! Trade bills (交易账单): the day's payments and refunds as WeChat records them, for reconciliation.
//!
//! The file is CSV-like text: a header line (`交易时间,公众账号ID,商户号,…`), one line per payment or
//! refund with **every field prefixed by a back-quote** (`` `2024-06-01 10:00:00,`wx…,`… ``), then a
//! summary header (`总交易单数,应结订单总金额,退款总金额,…`) and its line. Amounts are **yuan** with
//! two decimals (`12.30`); they are converted to fen by parsing the digits exactly — never through a
//! float — and anything that is not a plain non-negative decimal is refused.
//!
//! Columns are found by their header names, so the older 24-column layout (`总金额` instead of
//! `应结订单金额`) and the current 27-column one both read. Amounts are the settlement ones
//! (`应结订单金额`, `退款金额`, `应结订单总金额`, `退款总金额`), which equal the order and refund amounts
//! when no coupons are involved. In a refund line (`交易状态` `REFUND`) WeChat reports the order amount
//! as `0.00` and the refund in `退款金额`.
//!
//! Getting the file: [`crate::PayGateway::trade_bill`] (v2 `POST /pay/downloadbill`, v3
//! `GET /v3/bill/tradebill` then the `download_url`, whose answer WeChat does not sign: its SHA-1 is
//! checked against the signed `hash_value` instead).
use std::io::Read as _;

/// Largest bill accepted, compressed or not.
pub const MAX_BILL_BYTES: usize = 64 * 1024 * 1024;

/// A parsed trade bill.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TradeBill {
    /// One row per payment or refund, in the file's order.
    pub rows: Vec<BillRow>,
    /// The summary lines, if the file has them.
    pub summary: Option<BillSummary>,
}

/// One line of a trade bill. Amounts in fen.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BillRow {
    /// `交易时间`, as in the file (`2024-06-01 10:00:00`, Beijing time).
    pub trade_time: String,
    /// `公众账号ID`.
    pub appid: String,
    /// `商户号`.
    pub mchid: String,
    /// `微信订单号`.
    pub transaction_id: String,
    /// `商户订单号`.
    pub out_trade_no: String,
    /// `用户标识` (openid).
    pub openid: String,
    /// `交易状态` as in the file: `SUCCESS`, `REFUND`, `REVOKED`…
    pub trade_state: String,
    /// `应结订单金额` (`总金额` in the older layout) in fen; `0` in a refund line.
    pub total_fee: i64,
    /// `微信退款单号` (`None` when empty or `0`).
    pub refund_id: Option<String>,
    /// `商户退款单号` (`None` when empty or `0`).
    pub out_refund_no: Option<String>,
    /// `退款金额` in fen (`0` in a payment line).
    pub refund_fee: i64,
    /// `退款状态` as in the file (`SUCCESS`, `PROCESSING`…), `None` when empty.
    pub refund_status: Option<String>,
}

/// The summary of a trade bill. Amounts in fen.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BillSummary {
    /// `总交易单数`.
    pub trades: i64,
    /// `应结订单总金额` (`总交易额` in the older layout).
    pub total_fee: i64,
    /// `退款总金额` (`总退款金额` in the older layout).
    pub refund_fee: i64,
}

/// A bill that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BillError {
    /// The file does not have the expected shape (line number, 1-based, and what is wrong).
    #[error("malformed bill, line {line}: {reason}")]
    Malformed {
        /// 1-based line number (0: the file as a whole).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The downloaded file's hash is not the one in WeChat's signed answer (v3).
    #[error("bill hash mismatch")]
    HashMismatch,
    /// The gzip stream is broken.
    #[error("bill decompression failed")]
    Gzip,
    /// Larger than [`MAX_BILL_BYTES`].
    #[error("bill larger than {limit} bytes")]
    TooLarge {
        /// The cap.
        limit: usize,
    },
}

fn bad(line: usize, reason: impl Into<String>) -> BillError {
    BillError::Malformed {
        line,
        reason: reason.into(),
    }
}

/// Yuan with at most two decimals (`12.30`, `12.3`, `12`) → fen, exactly. Refuses signs, blanks,
/// exponents, separators, currency symbols, more than two decimals and overflow.
pub fn yuan_to_fen(s: &str) -> Option<i64> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) if !f.is_empty() => (i, f),
        Some(_) => return None,
        None => (s, ""),
    };
    if int.is_empty()
        || int.len() > 13
        || frac.len() > 2
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = int.parse().ok()?;
    let cents: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    whole.checked_mul(100)?.checked_add(cents)
}

/// Splits a data line: every field starts with a back-quote, fields are separated by commas.
fn fields(line: &str, n: usize) -> Result<Vec<&str>, BillError> {
    let rest = line
        .strip_prefix('`')
        .ok_or_else(|| bad(n, "a data field does not start with a back-quote"))?;
    Ok(rest.split(",`").collect())
}

/// Finds a column by its header name (the first of `names` present).
fn column(header: &[&str], names: &[&str], line: usize) -> Result<usize, BillError> {
    names
        .iter()
        .find_map(|n| header.iter().position(|h| h.trim() == *n))
        .ok_or_else(|| bad(line, format!("no column {}", names[0])))
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty() && s != "0").then(|| s.to_owned())
}

/// Parses a trade bill's text (see the [module docs](self)).
pub fn parse_trade_bill(text: &str) -> Result<TradeBill, BillError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty());
    let (hn, header_line) = lines.next().ok_or_else(|| bad(0, "empty bill"))?;
    let header: Vec<&str> = header_line.split(',').collect();
    if header.first().map(|h| h.trim()) != Some("交易时间") {
        return Err(bad(hn, "the header does not start with 交易时间"));
    }
    let col = |names: &[&str]| column(&header, names, hn);
    let c_time = col(&["交易时间"])?;
    let c_appid = col(&["公众账号ID"])?;
    let c_mchid = col(&["商户号"])?;
    let c_txid = col(&["微信订单号"])?;
    let c_out = col(&["商户订单号"])?;
    let c_openid = col(&["用户标识"])?;
    let c_state = col(&["交易状态"])?;
    let c_total = col(&["应结订单金额", "总金额"])?;
    let c_refund_id = col(&["微信退款单号"])?;
    let c_out_refund = col(&["商户退款单号"])?;
    let c_refund = col(&["退款金额"])?;
    let c_refund_status = col(&["退款状态"])?;

    let mut rows = Vec::new();
    let mut summary = None;
    while let Some((n, line)) = lines.next() {
        if line.starts_with("总交易单数") {
            let sh: Vec<&str> = line.split(',').collect();
            let scol = |names: &[&str]| column(&sh, names, n);
            let (s_trades, s_total, s_refund) = (
                scol(&["总交易单数"])?,
                scol(&["应结订单总金额", "总交易额"])?,
                scol(&["退款总金额", "总退款金额"])?,
            );
            let (vn, vline) = lines
                .next()
                .ok_or_else(|| bad(n, "summary header without its line"))?;
            let v = fields(vline, vn)?;
            if v.len() != sh.len() {
                return Err(bad(
                    vn,
                    format!("{} summary fields for {} columns", v.len(), sh.len()),
                ));
            }
            let trades = v[s_trades];
            if trades.is_empty() || trades.len() > 12 || !trades.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(bad(vn, "总交易单数 is not a count"));
            }
            let amount = |i: usize, what: &str| {
                yuan_to_fen(v[i]).ok_or_else(|| bad(vn, format!("{what} is not an amount")))
            };
            summary = Some(BillSummary {
                trades: trades.parse().map_err(|_| bad(vn, "总交易单数"))?,
                total_fee: amount(s_total, "应结订单总金额")?,
                refund_fee: amount(s_refund, "退款总金额")?,
            });
            if let Some((extra, _)) = lines.next() {
                return Err(bad(extra, "content after the summary"));
            }
            break;
        }
        let f = fields(line, n)?;
        if f.len() != header.len() {
            return Err(bad(
                n,
                format!("{} fields for {} columns", f.len(), header.len()),
            ));
        }
        let amount = |i: usize, what: &str| {
            yuan_to_fen(f[i]).ok_or_else(|| bad(n, format!("{what} is not an amount")))
        };
        rows.push(BillRow {
            trade_time: f[c_time].to_owned(),
            appid: f[c_appid].to_owned(),
            mchid: f[c_mchid].to_owned(),
            transaction_id: f[c_txid].to_owned(),
            out_trade_no: f[c_out].to_owned(),
            openid: f[c_openid].to_owned(),
            trade_state: f[c_state].to_owned(),
            total_fee: amount(c_total, "应结订单金额")?,
            refund_id: opt(f[c_refund_id]),
            out_refund_no: opt(f[c_out_refund]),
            refund_fee: amount(c_refund, "退款金额")?,
            refund_status: Some(f[c_refund_status])
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        });
    }
    Ok(TradeBill { rows, summary })
}

/// Whether `bytes` start like a gzip stream.
pub(crate) fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Gunzips (capped at [`MAX_BILL_BYTES`]) when `bytes` are gzip, then parses the UTF-8 text.
pub(crate) fn decode_bill(bytes: &[u8]) -> Result<TradeBill, BillError> {
    let mut owned;
    let text_bytes = if is_gzip(bytes) {
        owned = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .take(MAX_BILL_BYTES as u64 + 1)
            .read_to_end(&mut owned)
            .map_err(|_| BillError::Gzip)?;
        if owned.len() > MAX_BILL_BYTES {
            return Err(BillError::TooLarge {
                limit: MAX_BILL_BYTES,
            });
        }
        &owned[..]
    } else {
        bytes
    };
    let text = std::str::from_utf8(text_bytes).map_err(|_| bad(0, "not UTF-8"))?;
    parse_trade_bill(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";

    fn sample() -> String {
        [
            HEADER,
            "`2024-06-01 10:00:00,`wx2421b1c4370ec43b,`10000100,`0,`,`4200000001202406010000000001,`ORDER0001,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`SUCCESS,`OTHERS,`CNY,`19.90,`0.00,`0,`0,`0.00,`0.00,`,`,`商品, 含逗号,`,`0.12,`0.60%,`19.90,`0.00,`",
            "`2024-06-01 11:00:00,`wx2421b1c4370ec43b,`10000100,`0,`,`4200000001202406010000000001,`ORDER0001,`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`JSAPI,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`50300000000000000000000000001,`R0001,`9.90,`0.00,`ORIGINAL,`SUCCESS,`商品, 含逗号,`,`-0.06,`0.60%,`0.00,`9.90,`",
            "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额",
            "`2,`19.90,`9.90,`0.00,`0.06000,`19.90,`9.90",
        ]
        .join("\r\n")
    }

    #[test]
    fn yuan_to_fen_is_exact() {
        for (s, fen) in [
            ("12.30", 1230),
            ("0.01", 1),
            ("0.10", 10),
            ("19.90", 1990),
            ("0.29", 29),
            ("0.57", 57),
            ("1.13", 113),
            ("12.3", 1230),
            ("12", 1200),
            ("0", 0),
            ("0.00", 0),
            ("99999999999.99", 9_999_999_999_999),
        ] {
            assert_eq!(yuan_to_fen(s), Some(fen), "{s}");
        }
        for s in [
            "",
            ".",
            "1.",
            ".5",
            "-1.00",
            "+1.00",
            "1.234",
            "1e2",
            " 1.00",
            "1.00 ",
            "1,000.00",
            "¥1.00",
            "1.0a",
            "0x10",
            "NaN",
            "12345678901234.00",
            "1..0",
        ] {
            assert_eq!(yuan_to_fen(s), None, "{s:?}");
        }
    }

    #[test]
    fn parses_rows_and_summary() {
        let b = parse_trade_bill(&sample()).expect("parse");
        assert_eq!(b.rows.len(), 2);
        let p = &b.rows[0];
        assert_eq!(p.trade_time, "2024-06-01 10:00:00");
        assert_eq!(p.appid, "wx2421b1c4370ec43b");
        assert_eq!(p.mchid, "10000100");
        assert_eq!(p.transaction_id, "4200000001202406010000000001");
        assert_eq!(p.out_trade_no, "ORDER0001");
        assert_eq!(p.openid, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o");
        assert_eq!(p.trade_state, "SUCCESS");
        assert_eq!(p.total_fee, 1990);
        assert_eq!(
            (p.refund_id.as_deref(), p.out_refund_no.as_deref()),
            (None, None)
        );
        assert_eq!((p.refund_fee, p.refund_status.as_deref()), (0, None));
        let r = &b.rows[1];
        assert_eq!(r.trade_state, "REFUND");
        assert_eq!(r.total_fee, 0);
        assert_eq!(
            r.refund_id.as_deref(),
            Some("50300000000000000000000000001")
        );
        assert_eq!(r.out_refund_no.as_deref(), Some("R0001"));
        assert_eq!(r.refund_fee, 990);
        assert_eq!(r.refund_status.as_deref(), Some("SUCCESS"));
        assert_eq!(
            b.summary,
            Some(BillSummary {
                trades: 2,
                total_fee: 1990,
                refund_fee: 990
            })
        );
        // LF line ends, a BOM, a trailing newline: the same bill.
        let lf = format!("\u{feff}{}\n", sample().replace("\r\n", "\n"));
        assert_eq!(parse_trade_bill(&lf).unwrap(), b);
        // Header only: no rows, no summary.
        assert_eq!(
            parse_trade_bill(HEADER).unwrap(),
            TradeBill {
                rows: vec![],
                summary: None
            }
        );
    }

    #[test]
    fn older_layout_reads_by_header_names() {
        let text = "交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,总金额,企业红包金额,微信退款单号,商户退款单号,退款金额,企业红包退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率\n\
`2014-11-10 16:33:45,`wx2421b1c4370ec43b,`10000100,`0,`1000,`1001690740201411100005734289,`1415640626,`085e9858e3ba5186aafcbaed1,`MICROPAY,`SUCCESS,`CFT,`CNY,`0.01,`0.0,`0,`0,`0,`0,`,`,`被扫支付测试,`订单额外描述,`0,`0.60%\n\
总交易单数,总交易额,总退款金额,总企业红包退款金额,手续费总金额\n\
`1,`0.01,`0.0,`0.0,`0\n";
        let b = parse_trade_bill(text).unwrap();
        assert_eq!(b.rows[0].total_fee, 1);
        assert_eq!(b.rows[0].refund_id, None);
        assert_eq!(b.summary.unwrap().total_fee, 1);
    }

    #[test]
    fn refusals() {
        let s = sample();
        // A data field without its back-quote.
        let e = parse_trade_bill(&s.replace("`19.90,`0.00,`0,", "19.90,`0.00,`0,"));
        assert!(
            matches!(e, Err(BillError::Malformed { line: 2, .. })),
            "{e:?}"
        );
        // An amount that is not yuan with two decimals at most.
        for bad_amount in ["19.900", "-19.90", "1.99e1", "¥19.90"] {
            let e = parse_trade_bill(&s.replacen("`19.90,", &format!("`{bad_amount},"), 1));
            assert!(
                matches!(e, Err(BillError::Malformed { line: 2, .. })),
                "{bad_amount}"
            );
        }
        // A field too many or too few.
        assert!(parse_trade_bill(&s.replacen("`0.60%,", "`0.60%,`x,", 1)).is_err());
        assert!(parse_trade_bill(&s.replacen("`0.60%,", "", 1)).is_err());
        // Not a bill at all (an XML error answer, HTML), empty.
        for t in [
            "<xml><return_code>FAIL</return_code></xml>",
            "<html></html>",
            "",
            "\r\n",
        ] {
            assert!(parse_trade_bill(t).is_err(), "{t}");
        }
        // A header without a needed column.
        assert!(parse_trade_bill(&s.replace("商户订单号", "订单号")).is_err());
        // Summary without its line, or content after it.
        let cut = s.rsplit_once("\r\n").unwrap().0;
        assert!(parse_trade_bill(cut).is_err());
        assert!(parse_trade_bill(&format!("{s}\r\n`1")).is_err());
        assert!(parse_trade_bill(&s.replace("`2,`19.90", "`two,`19.90")).is_err());
    }

    #[test]
    fn gzip_and_caps() {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(sample().as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        assert!(is_gzip(&gz));
        assert_eq!(
            decode_bill(&gz).unwrap(),
            parse_trade_bill(&sample()).unwrap()
        );
        assert_eq!(decode_bill(sample().as_bytes()).unwrap().rows.len(), 2);
        let mut broken = gz.clone();
        broken.truncate(gz.len() / 2);
        assert_eq!(decode_bill(&broken), Err(BillError::Gzip));
        assert!(decode_bill(&[0xff, 0xfe, 0x00]).is_err());
    }
}
