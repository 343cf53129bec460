//! Pay v3 (JSON): `Authorization` verification, JSAPI prepay, query, close, refund,
//! certificates. Every answer is signed (`Wechatpay-*` headers).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{json, Value};
use std::collections::HashMap;

use crate::answer::{pre, v3_json, v3_signed};
use crate::crypto::{aes_gcm_encrypt, random_alnum, rsa_verify};
use crate::orders::{CreateErr, NewOrder, OrderErr, RefundReq};
use crate::state::{Endpoint, PayApi, Refund, Sandbox, TradeState, Transaction};
use crate::util::{check_notify_url, parse_rfc3339, rfc3339_beijing, valid_trade_no, wall_ms};

/// A v3 error answer (signed) with the refusal logged.
fn err(
    sb: &Sandbox,
    corrupt: bool,
    what: &str,
    status: u16,
    code: &str,
    message: &str,
) -> Response {
    tracing::warn!(target: "wechat_sandbox", endpoint = what, status, code, reason = message, "refused");
    v3_json(
        sb,
        crate::util::status(status),
        &json!({"code": code, "message": message}),
        corrupt,
    )
}

fn sign_error(sb: &Sandbox, what: &str, message: &str, issue: &str) -> Response {
    tracing::warn!(target: "wechat_sandbox", endpoint = what, reason = message, issue, "refused (401 SIGN_ERROR)");
    v3_json(
        sb,
        StatusCode::UNAUTHORIZED,
        &json!({
            "code": "SIGN_ERROR",
            "message": message,
            "detail": {"field": "signature", "location": "authorization", "detail": {"issue": issue}},
        }),
        false,
    )
}

/// The path (with query) as WeChat sees it: from `/v3/` on, whatever prefix the shop mounts
/// the sandbox under.
fn wechat_path(uri: &Uri) -> String {
    let pq = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string());
    match pq.find("/v3/") {
        Some(i) => pq[i..].to_string(),
        None => pq,
    }
}

fn parse_authorization(v: &str) -> Option<HashMap<String, String>> {
    let rest = v.trim().strip_prefix("WECHATPAY2-SHA256-RSA2048 ")?;
    let mut m = HashMap::new();
    for part in rest.split(',') {
        let (k, val) = part.trim().split_once('=')?;
        let val = val.trim().strip_prefix('"')?.strip_suffix('"')?;
        m.insert(k.trim().to_string(), val.to_string());
    }
    Some(m)
}

/// Verifies `Authorization: WECHATPAY2-SHA256-RSA2048 …`. Ok(mchid).
pub(crate) fn authenticate(
    sb: &Sandbox,
    what: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, Response> {
    let Some(raw) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(sign_error(
            sb,
            what,
            "Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》",
            "authorization missing",
        ));
    };
    let Some(a) = parse_authorization(raw) else {
        return Err(sign_error(
            sb,
            what,
            "Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》",
            "authorization malformed",
        ));
    };
    let g = |k: &str| a.get(k).map(String::as_str).unwrap_or_default();
    for k in ["mchid", "nonce_str", "timestamp", "serial_no", "signature"] {
        if g(k).is_empty() {
            return Err(sign_error(
                sb,
                what,
                "Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》",
                &format!("{k} missing"),
            ));
        }
    }
    let c = sb.creds();
    if g("mchid") != c.mchid {
        return Err(sign_error(
            sb,
            what,
            "商户号与Authorization中的签名信息不匹配",
            "mchid not match",
        ));
    }
    if !g("serial_no").eq_ignore_ascii_case(&c.merchant_serial) {
        return Err(sign_error(
            sb,
            what,
            "商户证书序列号有误。请使用签名私钥匹配的证书序列号",
            "serial_no not match",
        ));
    }
    let Ok(ts) = g("timestamp").parse::<i64>() else {
        return Err(sign_error(
            sb,
            what,
            "Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》",
            "timestamp not a number",
        ));
    };
    let window = sb.opts().v3_timestamp_window.as_secs() as i64;
    if (wall_ms() / 1000 - ts).abs() > window {
        return Err(sign_error(
            sb,
            what,
            "签名已过期，请检查请求的时间戳",
            "timestamp expired",
        ));
    }
    if g("nonce_str").len() > 32 {
        return Err(sign_error(
            sb,
            what,
            "Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》",
            "nonce_str too long",
        ));
    }
    let mut msg = format!(
        "{}\n{}\n{}\n{}\n",
        method.as_str(),
        wechat_path(uri),
        g("timestamp"),
        g("nonce_str")
    )
    .into_bytes();
    msg.extend_from_slice(body);
    msg.push(b'\n');
    if !rsa_verify(&sb.inner.keys.merchant_public, &msg, g("signature")) {
        return Err(sign_error(
            sb,
            what,
            "错误的签名，验签失败",
            "sign not match",
        ));
    }
    Ok(g("mchid").to_string())
}

/// The transaction as v3 query answers and notifications carry it.
pub(crate) fn transaction_json(t: &Transaction) -> Value {
    let mut v = json!({
        "appid": t.appid,
        "mchid": t.mchid,
        "out_trade_no": t.out_trade_no,
        "trade_type": "JSAPI",
        "trade_state": t.state.as_str(),
        "trade_state_desc": t.state.desc(),
        "attach": t.attach.clone().unwrap_or_default(),
        "payer": {"openid": t.openid},
        "amount": {"total": t.total, "currency": "CNY", "payer_currency": "CNY"},
    });
    if matches!(t.state, TradeState::Success | TradeState::Refund) {
        v["transaction_id"] = json!(t.transaction_id);
        v["bank_type"] = json!("OTHERS");
        v["success_time"] = json!(rfc3339_beijing(t.paid_at_ms.unwrap_or_default()));
        v["amount"]["payer_total"] = json!(t.total);
    }
    v
}

fn refund_json(t: &Transaction, r: &Refund) -> Value {
    json!({
        "refund_id": r.refund_id,
        "out_refund_no": r.out_refund_no,
        "transaction_id": t.transaction_id,
        "out_trade_no": t.out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "success_time": r.success_time,
        "create_time": r.create_time,
        "status": r.status,
        "funds_account": "AVAILABLE",
        "amount": {
            "total": t.total, "refund": r.refund, "payer_total": t.total, "payer_refund": r.refund,
            "settlement_total": t.total, "settlement_refund": r.refund, "discount_refund": 0,
            "currency": "CNY", "refund_fee": 0,
        }
    })
}

fn body_json(body: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
}

fn field_missing(f: &str) -> String {
    format!("输入源“/body/{f}”映射到值字段必填性规则校验失败，此字段为必填项")
}

/// A JSON integer (not a float, not a string).
fn json_int(v: Option<&Value>) -> Option<i64> {
    let v = v?;
    if v.is_i64() || v.is_u64() {
        v.as_i64()
    } else {
        None
    }
}

/// `POST /v3/pay/transactions/jsapi`
pub(crate) async fn jsapi(
    State(sb): State<Sandbox>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let what = "v3/pay/transactions/jsapi";
    let corrupt = match pre(&sb, Endpoint::V3Jsapi).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if body.len() > sb.opts().max_body_bytes {
        return err(&sb, corrupt, what, 400, "INVALID_REQUEST", "请求体过大");
    }
    let hdr_mchid = match authenticate(&sb, what, &method, &uri, &headers, &body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let Some(v) = body_json(&body) else {
        return err(
            &sb,
            corrupt,
            what,
            400,
            "PARAM_ERROR",
            "请求体不是合法的JSON对象",
        );
    };
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or_default();
    for (p, name) in [
        ("/appid", "appid"),
        ("/mchid", "mchid"),
        ("/description", "description"),
        ("/out_trade_no", "out_trade_no"),
        ("/notify_url", "notify_url"),
        ("/payer/openid", "payer/openid"),
    ] {
        if s(p).is_empty() {
            return err(&sb, corrupt, what, 400, "PARAM_ERROR", &field_missing(name));
        }
    }
    let c = sb.creds();
    if s("/mchid") != c.mchid {
        return err(&sb, corrupt, what, 400, "MCH_NOT_EXISTS", "商户号不存在");
    }
    if s("/mchid") != hdr_mchid {
        return err(
            &sb,
            corrupt,
            what,
            400,
            "PARAM_ERROR",
            "请求体中的mchid与Authorization中的商户号不一致",
        );
    }
    if s("/appid") != c.appid {
        return err(
            &sb,
            corrupt,
            what,
            400,
            "APPID_MCHID_NOT_MATCH",
            "AppID和mch_id不匹配",
        );
    }
    if s("/description").len() > 127 {
        return err(
            &sb,
            corrupt,
            what,
            400,
            "PARAM_ERROR",
            "description长度超过127字节",
        );
    }
    if !valid_trade_no(s("/out_trade_no"), 6) {
        return err(
            &sb,
            corrupt,
            what,
            400,
            "PARAM_ERROR",
            "out_trade_no只能是6-32位数字、大小写字母_-|*",
        );
    }
    if s("/notify_url").len() > 255 {
        return err(
            &sb,
            corrupt,
            what,
            400,
            "PARAM_ERROR",
            "notify_url长度超过255",
        );
    }
    if let Err(m) = check_notify_url(s("/notify_url")) {
        return err(&sb, corrupt, what, 400, "PARAM_ERROR", m);
    }
    let Some(total) = json_int(v.pointer("/amount/total")) else {
        return err(
            &sb,
            corrupt,
            what,
            400,
            "PARAM_ERROR",
            "输入源“/body/amount/total”映射到值字段“总金额”类型错误，必须为整数（单位：分）",
        );
    };
    if total <= 0 {
        return err(
            &sb,
            corrupt,
            what,
            400,
            "PARAM_ERROR",
            "amount.total必须大于0",
        );
    }
    if let Some(cur) = v.pointer("/amount/currency") {
        if cur.as_str() != Some("CNY") {
            return err(
                &sb,
                corrupt,
                what,
                400,
                "PARAM_ERROR",
                "amount.currency只支持CNY",
            );
        }
    }
    if s("/attach").len() > 128 {
        return err(&sb, corrupt, what, 400, "PARAM_ERROR", "attach长度超过128");
    }
    let time_expire_ms = match v.get("time_expire") {
        None | Some(Value::Null) => None,
        Some(t) => match t.as_str().and_then(parse_rfc3339) {
            None => {
                return err(
                    &sb,
                    corrupt,
                    what,
                    400,
                    "PARAM_ERROR",
                    "time_expire不符合rfc3339格式",
                )
            }
            Some(ms) if ms <= sb.now_ms() => {
                return err(
                    &sb,
                    corrupt,
                    what,
                    400,
                    "INVALID_REQUEST",
                    "time_expire需晚于当前时间",
                )
            }
            Some(ms) => Some(ms),
        },
    };
    if sb.user_by_openid(s("/payer/openid")).is_none() {
        return err(
            &sb,
            corrupt,
            what,
            400,
            "PARAM_ERROR",
            "appid和openid不匹配",
        );
    }
    let order = NewOrder {
        api: PayApi::V3,
        out_trade_no: s("/out_trade_no").to_string(),
        description: s("/description").to_string(),
        total,
        openid: s("/payer/openid").to_string(),
        notify_url: s("/notify_url").to_string(),
        attach: Some(s("/attach").to_string()).filter(|a| !a.is_empty()),
        time_expire_ms,
        sign_type: None,
    };
    match sb.create_order(order) {
        Err(CreateErr::Paid) => err(&sb, corrupt, what, 400, "ORDERPAID", "该订单已支付"),
        Err(CreateErr::Closed) => err(
            &sb,
            corrupt,
            what,
            400,
            "ORDER_CLOSED",
            "当前订单已关闭，请重新下单",
        ),
        Err(CreateErr::Duplicate) => err(
            &sb,
            corrupt,
            what,
            403,
            "OUT_TRADE_NO_USED",
            "商户订单号重复",
        ),
        Ok(t) => v3_json(
            &sb,
            StatusCode::OK,
            &json!({"prepay_id": t.prepay_id}),
            corrupt,
        ),
    }
}

#[allow(clippy::too_many_arguments)]
async fn query(
    sb: Sandbox,
    what: &str,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    q: HashMap<String, String>,
    out_trade_no: Option<String>,
    transaction_id: Option<String>,
) -> Response {
    let corrupt = match pre(&sb, Endpoint::V3Query).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = authenticate(&sb, what, &method, &uri, &headers, b"") {
        return r;
    }
    match q.get("mchid").map(String::as_str) {
        None | Some("") => {
            return err(
                &sb,
                corrupt,
                what,
                400,
                "PARAM_ERROR",
                "输入源“/query/mchid”映射到值字段“直连商户号”必填性规则校验失败，此字段为必填项",
            )
        }
        Some(m) if m != sb.creds().mchid => {
            return err(&sb, corrupt, what, 400, "MCH_NOT_EXISTS", "商户号不存在")
        }
        _ => {}
    }
    match sb.find_order(out_trade_no.as_deref(), transaction_id.as_deref()) {
        None => err(&sb, corrupt, what, 404, "ORDER_NOT_EXIST", "订单不存在"),
        Some(t) => v3_json(&sb, StatusCode::OK, &transaction_json(&t), corrupt),
    }
}

/// `GET /v3/pay/transactions/out-trade-no/{no}?mchid=`
pub(crate) async fn query_by_out_trade_no(
    State(sb): State<Sandbox>,
    Path(no): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    query(
        sb,
        "v3/pay/transactions/out-trade-no",
        method,
        uri,
        headers,
        q,
        Some(no),
        None,
    )
    .await
}

/// `GET /v3/pay/transactions/id/{transaction_id}?mchid=`
pub(crate) async fn query_by_id(
    State(sb): State<Sandbox>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    query(
        sb,
        "v3/pay/transactions/id",
        method,
        uri,
        headers,
        q,
        None,
        Some(id),
    )
    .await
}

/// `POST /v3/pay/transactions/out-trade-no/{no}/close` `{"mchid"}` → 204
pub(crate) async fn close(
    State(sb): State<Sandbox>,
    Path(no): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let what = "v3/pay/transactions/out-trade-no/close";
    let corrupt = match pre(&sb, Endpoint::V3Close).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = authenticate(&sb, what, &method, &uri, &headers, &body) {
        return r;
    }
    let Some(v) = body_json(&body) else {
        return err(
            &sb,
            corrupt,
            what,
            400,
            "PARAM_ERROR",
            "请求体不是合法的JSON对象",
        );
    };
    match v.get("mchid").and_then(Value::as_str) {
        None | Some("") => {
            return err(
                &sb,
                corrupt,
                what,
                400,
                "PARAM_ERROR",
                &field_missing("mchid"),
            )
        }
        Some(m) if m != sb.creds().mchid => {
            return err(&sb, corrupt, what, 400, "MCH_NOT_EXISTS", "商户号不存在")
        }
        _ => {}
    }
    match sb.close_order(&no) {
        Err(OrderErr::NotFound) => err(&sb, corrupt, what, 404, "ORDER_NOT_EXIST", "订单不存在"),
        Err(OrderErr::Paid) => err(&sb, corrupt, what, 400, "ORDERPAID", "订单已支付"),
        // Closing a closed order again is harmless.
        Ok(()) | Err(_) => v3_signed(&sb, StatusCode::NO_CONTENT, Vec::new(), corrupt),
    }
}

/// `POST /v3/refund/domestic/refunds`
pub(crate) async fn refund(
    State(sb): State<Sandbox>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let what = "v3/refund/domestic/refunds";
    let corrupt = match pre(&sb, Endpoint::V3Refund).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = authenticate(&sb, what, &method, &uri, &headers, &body) {
        return r;
    }
    let Some(v) = body_json(&body) else {
        return err(
            &sb,
            corrupt,
            what,
            400,
            "PARAM_ERROR",
            "请求体不是合法的JSON对象",
        );
    };
    let s = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if s("/out_trade_no").is_none() && s("/transaction_id").is_none() {
        return err(
            &sb,
            corrupt,
            what,
            400,
            "PARAM_ERROR",
            "transaction_id和out_trade_no必须二选一",
        );
    }
    let Some(out_refund_no) = s("/out_refund_no").filter(|n| valid_trade_no(n, 1)) else {
        return err(
            &sb,
            corrupt,
            what,
            400,
            "PARAM_ERROR",
            &field_missing("out_refund_no"),
        );
    };
    if let Some(u) = s("/notify_url") {
        if let Err(m) = check_notify_url(u) {
            return err(&sb, corrupt, what, 400, "PARAM_ERROR", m);
        }
    }
    let (Some(refund), Some(total)) = (
        json_int(v.pointer("/amount/refund")),
        json_int(v.pointer("/amount/total")),
    ) else {
        return err(
            &sb,
            corrupt,
            what,
            400,
            "PARAM_ERROR",
            "amount.refund和amount.total必须为整数（单位：分）",
        );
    };
    if v.pointer("/amount/currency").and_then(Value::as_str) != Some("CNY") {
        return err(
            &sb,
            corrupt,
            what,
            400,
            "PARAM_ERROR",
            &field_missing("amount/currency"),
        );
    }
    let Some(t) = sb.find_order(s("/out_trade_no"), s("/transaction_id")) else {
        return err(&sb, corrupt, what, 404, "RESOURCE_NOT_EXISTS", "订单不存在");
    };
    let req = RefundReq {
        api: PayApi::V3,
        out_trade_no: t.out_trade_no.clone(),
        out_refund_no: out_refund_no.to_string(),
        total,
        refund,
        reason: s("/reason").map(str::to_string),
        notify_url: s("/notify_url").map(str::to_string),
    };
    match sb.refund_order(req) {
        Ok((t, r)) => v3_json(&sb, StatusCode::OK, &refund_json(&t, &r), corrupt),
        Err(OrderErr::NotFound) => {
            err(&sb, corrupt, what, 404, "RESOURCE_NOT_EXISTS", "订单不存在")
        }
        Err(OrderErr::NotPaid) | Err(OrderErr::Closed) => err(
            &sb,
            corrupt,
            what,
            400,
            "INVALID_REQUEST",
            "订单状态不允许退款（未支付或已关闭）",
        ),
        Err(OrderErr::AmountMismatch) => err(
            &sb,
            corrupt,
            what,
            400,
            "PARAM_ERROR",
            "amount.total与订单金额不一致",
        ),
        Err(OrderErr::RefundConflict) => err(
            &sb,
            corrupt,
            what,
            400,
            "INVALID_REQUEST",
            "订单金额或退款金额与之前请求不一致，请核实后再试",
        ),
        Err(_) => err(
            &sb,
            corrupt,
            what,
            400,
            "INVALID_REQUEST",
            "申请退款金额超过订单可退金额",
        ),
    }
}

/// `GET /v3/refund/domestic/refunds/{out_refund_no}`: the refund's current status.
pub(crate) async fn refund_query(
    State(sb): State<Sandbox>,
    Path(no): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let what = "v3/refund/domestic/refunds/{no}";
    let corrupt = match pre(&sb, Endpoint::V3Refund).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = authenticate(&sb, what, &method, &uri, &headers, b"") {
        return r;
    }
    match sb.find_refund(&no) {
        Some((t, r)) => v3_json(&sb, StatusCode::OK, &refund_json(&t, &r), corrupt),
        None => err(
            &sb,
            corrupt,
            what,
            404,
            "RESOURCE_NOT_EXISTS",
            "退款单不存在",
        ),
    }
}

/// `GET /v3/certificates`: the platform certificate, encrypted with the APIv3 key.
pub(crate) async fn certificates(
    State(sb): State<Sandbox>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let what = "v3/certificates";
    let corrupt = match pre(&sb, Endpoint::V3Certificates).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = authenticate(&sb, what, &method, &uri, &headers, b"") {
        return r;
    }
    let c = sb.creds();
    let k = &sb.inner.keys;
    let nonce = random_alnum(12);
    let ciphertext = aes_gcm_encrypt(
        c.apiv3_key.as_bytes(),
        nonce.as_bytes(),
        b"certificate",
        c.platform_certificate_pem.as_bytes(),
    );
    let v = json!({"data": [{
        "serial_no": c.platform_serial,
        "effective_time": rfc3339_beijing(k.platform_not_before_ms),
        "expire_time": rfc3339_beijing(k.platform_not_after_ms),
        "encrypt_certificate": {
            "algorithm": "AEAD_AES_256_GCM",
            "nonce": nonce,
            "associated_data": "certificate",
            "ciphertext": ciphertext,
        }
    }]});
    v3_json(&sb, StatusCode::OK, &v, corrupt)
}
