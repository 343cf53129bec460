//! Trade bills over HTTP, read with code independent of the sandbox.

mod common;

use std::collections::BTreeMap;
use std::io::Read as _;

use common::*;
use serde_json::{json, Value};
use sha1::Digest as _;

const HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";

async fn post_v2(r: &Running, path: &str, p: &BTreeMap<String, String>) -> (String, Vec<u8>) {
    let resp = r
        .http
        .post(format!("{}/pay{path}", r.base))
        .body(to_xml(p))
        .send()
        .await
        .unwrap();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (ct, resp.bytes().await.unwrap().to_vec())
}

fn today() -> time::Date {
    time::OffsetDateTime::now_utc()
        .to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap())
        .date()
}

fn compact(d: time::Date) -> String {
    format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day())
}

async fn paid(r: &Running, no: &str, total: &str) {
    let c = creds();
    let (_, a) = post_v2(
        r,
        "/pay/unifiedorder",
        &signed_md5(m(&[
            ("appid", &c.appid),
            ("mch_id", &c.mchid),
            ("nonce_str", &nonce()),
            ("body", "wxmall-测试商品"),
            ("out_trade_no", no),
            ("total_fee", total),
            ("spbill_create_ip", "127.0.0.1"),
            ("notify_url", "http://127.0.0.1:9/notify"),
            ("trade_type", "JSAPI"),
            ("openid", &r.sandbox.users()[0].openid),
        ])),
    )
    .await;
    assert_eq!(
        from_xml(std::str::from_utf8(&a).unwrap())["result_code"],
        "SUCCESS"
    );
    r.sandbox.pay(no).await.unwrap();
}

fn bill_request(date: &str, tar: Option<&str>) -> BTreeMap<String, String> {
    let c = creds();
    let mut p = m(&[
        ("appid", &c.appid),
        ("mch_id", &c.mchid),
        ("nonce_str", &nonce()),
        ("bill_date", date),
        ("bill_type", "ALL"),
    ]);
    if let Some(t) = tar {
        p.insert("tar_type".into(), t.into());
    }
    signed_md5(p)
}

/// Checks the layout line by line; returns the data lines' fields.
fn check_layout(text: &str) -> Vec<Vec<String>> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], HEADER);
    let n = lines.len();
    assert!(lines[n - 2].starts_with("总交易单数,应结订单总金额,退款总金额"));
    let mut rows = Vec::new();
    for l in &lines[1..n - 2] {
        let f: Vec<String> = l.split(',').map(|x| x.to_string()).collect();
        assert_eq!(f.len(), 27, "{l}");
        assert!(f.iter().all(|x| x.starts_with('`')), "{l}");
        rows.push(f.iter().map(|x| x[1..].to_string()).collect());
    }
    let summary: Vec<&str> = lines[n - 1].split(',').collect();
    assert!(summary.iter().all(|x| x.starts_with('`')));
    assert_eq!(summary[0], format!("`{}", rows.len()));
    rows
}

#[tokio::test]
async fn v2_downloadbill_gzip_and_plain() {
    let r = start().await;
    r.sandbox.set_drop_notifications(true);
    // A day without trades.
    let (_, body) = post_v2(
        &r,
        "/pay/downloadbill",
        &bill_request(&compact(today()), None),
    )
    .await;
    let x = from_xml(std::str::from_utf8(&body).unwrap());
    assert_eq!(x["return_code"], "FAIL");
    assert_eq!(x["return_msg"], "No Bill Exist");

    paid(&r, "BILLV2A", "1230").await;
    paid(&r, "BILLV2B", "5").await;
    let (ct, gz) = post_v2(
        &r,
        "/pay/downloadbill",
        &bill_request(&compact(today()), Some("GZIP")),
    )
    .await;
    assert!(ct.contains("gzip"), "{ct}");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .unwrap();
    let rows = check_layout(&text);
    assert_eq!(rows.len(), 2);
    let a = rows.iter().find(|f| f[6] == "BILLV2A").unwrap();
    assert_eq!(a[9], "SUCCESS");
    assert_eq!(a[12], "12.30");
    assert_eq!(a[24], "12.30");
    let b = rows.iter().find(|f| f[6] == "BILLV2B").unwrap();
    assert_eq!(b[12], "0.05");
    assert!(text
        .trim_end()
        .ends_with("`2,`12.35,`0.00,`0.00,`0.07,`12.35,`0.00"));
    // Plain text without tar_type; the Rust hook gives the same file.
    let (_, plain) = post_v2(
        &r,
        "/pay/downloadbill",
        &bill_request(&compact(today()), None),
    )
    .await;
    assert_eq!(String::from_utf8(plain).unwrap(), text);
    assert_eq!(r.sandbox.trade_bill(today()).unwrap(), text);
    // Tampered amount.
    r.sandbox.tamper_bill_amount("BILLV2A", -30);
    let rows = check_layout(&r.sandbox.trade_bill(today()).unwrap());
    assert_eq!(
        rows.iter().find(|f| f[6] == "BILLV2A").unwrap()[12],
        "12.00"
    );
    // Unsigned request refused.
    let mut unsigned = bill_request(&compact(today()), None);
    unsigned.remove("sign");
    let (_, body) = post_v2(&r, "/pay/downloadbill", &unsigned).await;
    assert_eq!(
        from_xml(std::str::from_utf8(&body).unwrap())["return_code"],
        "FAIL"
    );
}

async fn v3_get(
    r: &Running,
    path_and_query: &str,
    url: &str,
) -> (u16, axum::http::HeaderMap, Vec<u8>) {
    let c = creds();
    let (n, ts) = (nonce(), now_secs());
    let sig = rsa_sign_b64(
        &merchant_key(),
        &format!("GET\n{path_and_query}\n{ts}\n{n}\n\n"),
    );
    let auth = format!(
        "WECHATPAY2-SHA256-RSA2048 mchid=\"{}\",nonce_str=\"{n}\",timestamp=\"{ts}\",serial_no=\"{}\",signature=\"{sig}\"",
        c.mchid, c.merchant_serial
    );
    let resp = r
        .http
        .get(url)
        .header("Authorization", auth)
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        reqwest_headers(resp.headers()),
        resp.bytes().await.unwrap().to_vec(),
    )
}

#[tokio::test]
async fn v3_tradebill_hash_and_download() {
    let r = start().await;
    r.sandbox.set_drop_notifications(true);
    let d = today();
    let date = format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day());
    let pq = format!("/v3/bill/tradebill?bill_date={date}&bill_type=ALL");
    let (status, h, body) = v3_get(&r, &pq, &format!("{}/pay{pq}", r.base)).await;
    assert_eq!(status, 400);
    assert!(verify_wechatpay(&h, &body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], "NO_STATEMENT_EXIST");

    paid(&r, "BILLV3A", "880").await;
    let (status, h, body) = v3_get(&r, &pq, &format!("{}/pay{pq}", r.base)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(verify_wechatpay(&h, &body));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["hash_type"], "SHA1");
    let url = v["download_url"].as_str().unwrap();
    let prefix = format!("{}/pay", r.base);
    assert!(url.starts_with(&prefix), "{url}");
    let rel = &url[prefix.len()..];
    assert!(rel.starts_with("/v3/billdownload/file?token="));
    // The download needs a valid Authorization…
    let resp = r.http.get(url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    // …and its answer is not signed; its SHA-1 is the announced one.
    let (status, h, file) = v3_get(&r, rel, url).await;
    assert_eq!(status, 200);
    assert!(h.get("Wechatpay-Signature").is_none());
    assert_eq!(
        hex::encode(sha1::Sha1::digest(&file)),
        v["hash_value"].as_str().unwrap()
    );
    let rows = check_layout(std::str::from_utf8(&file).unwrap());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][12], "8.80");
    let _ = json!(null);
}
