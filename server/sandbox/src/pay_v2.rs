//! Pay v2 (XML): unifiedorder, orderquery, closeorder, refund, refundquery.

use std::collections::BTreeMap;
use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::Extension;

use crate::answer::{pre, v2_return_fail, v2_signed};
use crate::crypto::{ct_eq, v2_sign, V2SignType};
use crate::orders::{CreateErr, NewOrder, OrderErr, RefundReq};
use crate::state::{Endpoint, PayApi, Sandbox, TradeState, Transaction};
use crate::tls::PeerMerchant;
use crate::util::{
    check_notify_url, compact_beijing, dashed_beijing, parse_compact_beijing, valid_trade_no,
};

type Params = BTreeMap<String, String>;

struct V2 {
    p: Params,
    ty: V2SignType,
    corrupt: bool,
}

fn fail(what: &str, msg: &str) -> Response {
    tracing::warn!(target: "wechat_sandbox", endpoint = what, reason = msg, "refused (return_code=FAIL)");
    v2_return_fail(msg)
}

/// Fault, XML, appid/mch_id, nonce, sign_type and sign checks common to every v2 call.
async fn preamble(sb: &Sandbox, ep: Endpoint, what: &str, body: &[u8]) -> Result<V2, Response> {
    let corrupt = pre(sb, ep).await?;
    let max = sb.opts().max_body_bytes;
    let p = match crate::xml::parse_flat(body, max) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(target: "wechat_sandbox", endpoint = what, reason = %e, "refused XML");
            return Err(v2_return_fail("XML格式错误"));
        }
    };
    let c = sb.creds();
    let g = |k: &str| p.get(k).map(String::as_str).unwrap_or_default();
    if g("appid").is_empty() {
        return Err(fail(what, "appid不能为空"));
    }
    if g("appid") != c.appid {
        return Err(fail(what, "appid不存在"));
    }
    if g("mch_id").is_empty() {
        return Err(fail(what, "mch_id不能为空"));
    }
    if g("mch_id") != c.mchid {
        return Err(fail(what, "商户号mch_id与appid不匹配"));
    }
    if g("nonce_str").is_empty() || g("nonce_str").len() > 32 {
        return Err(fail(what, "nonce_str参数长度有误"));
    }
    let ty = match p.get("sign_type").map(String::as_str) {
        None | Some("") => V2SignType::Md5,
        Some(s) => match V2SignType::parse(s) {
            Some(t) => t,
            None => return Err(fail(what, "sign_type参数格式错误")),
        },
    };
    let Some(sign) = p.get("sign").filter(|s| !s.is_empty()) else {
        tracing::warn!(target: "wechat_sandbox", endpoint = what, reason = "sign missing", "refused");
        return Err(v2_return_fail("签名错误"));
    };
    let expected = v2_sign(&p, &c.pay_key_v2, ty);
    if !ct_eq(sign, &expected) {
        tracing::warn!(target: "wechat_sandbox", endpoint = what, sign_type = ty.as_str(), reason = "sign mismatch", "refused");
        return Err(v2_return_fail("签名错误"));
    }
    Ok(V2 { p, ty, corrupt })
}

/// The common v2 checks (fault, XML, appid/mch_id, nonce, sign) for handlers outside this module:
/// the verified parameters, or the refusal to answer.
pub(crate) async fn signed_request(
    sb: &Sandbox,
    ep: Endpoint,
    what: &str,
    body: &[u8],
) -> Result<Params, Response> {
    preamble(sb, ep, what, body).await.map(|v| v.p)
}

fn base(sb: &Sandbox, result_ok: bool) -> Params {
    let c = sb.creds();
    let mut m = Params::new();
    m.insert("return_code".into(), "SUCCESS".into());
    m.insert("return_msg".into(), "OK".into());
    m.insert("appid".into(), c.appid.clone());
    m.insert("mch_id".into(), c.mchid.clone());
    m.insert(
        "result_code".into(),
        if result_ok { "SUCCESS" } else { "FAIL" }.into(),
    );
    m
}

fn result_fail(sb: &Sandbox, v: &V2, what: &str, code: &str, des: &str) -> Response {
    tracing::warn!(target: "wechat_sandbox", endpoint = what, err_code = code, reason = des, "refused (result_code=FAIL)");
    let mut m = base(sb, false);
    m.insert("err_code".into(), code.into());
    m.insert("err_code_des".into(), des.into());
    v2_signed(sb, m, v.ty, v.corrupt)
}

/// `POST /pay/unifiedorder`
pub(crate) async fn unifiedorder(State(sb): State<Sandbox>, body: Bytes) -> Response {
    let what = "pay/unifiedorder";
    let v = match preamble(&sb, Endpoint::V2UnifiedOrder, what, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let g = |k: &str| v.p.get(k).map(String::as_str).unwrap_or_default();
    match g("trade_type") {
        "" => return fail(what, "缺少参数trade_type"),
        "JSAPI" => {}
        _ => return fail(what, "trade_type参数错误 (the sandbox emulates JSAPI only)"),
    }
    if g("body").is_empty() {
        return fail(what, "body不能为空");
    }
    if g("body").len() > 128 {
        return fail(what, "body参数长度有误");
    }
    if !valid_trade_no(g("out_trade_no"), 1) {
        return fail(what, "out_trade_no参数格式错误");
    }
    let total: i64 = match g("total_fee") {
        s if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s.len() < 12 => {
            s.parse().unwrap_or(0)
        }
        "" => return fail(what, "缺少参数total_fee"),
        _ => return fail(what, "invalid total_fee"),
    };
    if total <= 0 {
        return fail(what, "invalid total_fee");
    }
    if !g("fee_type").is_empty() && g("fee_type") != "CNY" {
        return fail(what, "fee_type参数格式错误");
    }
    if g("spbill_create_ip").is_empty() {
        return fail(what, "spbill_create_ip参数长度有误");
    }
    if g("spbill_create_ip").parse::<IpAddr>().is_err() {
        return fail(what, "invalid spbill_create_ip");
    }
    if g("notify_url").is_empty() {
        return fail(what, "notify_url参数格式错误");
    }
    if let Err(m) = check_notify_url(g("notify_url")) {
        return fail(what, m);
    }
    if g("openid").is_empty() {
        return fail(what, "JSAPI支付必须传openid");
    }
    if g("attach").len() > 127 {
        return fail(what, "attach参数长度有误");
    }
    let time_expire_ms = match g("time_expire") {
        "" => None,
        s => match parse_compact_beijing(s) {
            None => return fail(what, "time_expire参数格式错误"),
            Some(ms) if ms < sb.now_ms() + 5 * 60_000 => {
                return result_fail(
                    &sb,
                    &v,
                    what,
                    "INVALID_REQUEST",
                    "time_expire时间过短，刷卡至少1分钟，其他5分钟",
                )
            }
            Some(ms) => Some(ms),
        },
    };
    if sb.user_by_openid(g("openid")).is_none() {
        return result_fail(&sb, &v, what, "PARAM_ERROR", "appid和openid不匹配");
    }
    let order = NewOrder {
        api: PayApi::V2,
        out_trade_no: g("out_trade_no").to_string(),
        description: g("body").to_string(),
        total,
        openid: g("openid").to_string(),
        notify_url: g("notify_url").to_string(),
        attach: Some(g("attach").to_string()).filter(|a| !a.is_empty()),
        time_expire_ms,
        sign_type: Some(v.ty),
    };
    match sb.create_order(order) {
        Err(CreateErr::Paid) => result_fail(&sb, &v, what, "ORDERPAID", "该订单已支付"),
        Err(CreateErr::Closed) => result_fail(&sb, &v, what, "ORDERCLOSED", "该订单已关闭"),
        Err(CreateErr::Duplicate) => {
            result_fail(&sb, &v, what, "INVALID_REQUEST", "201 商户订单号重复")
        }
        Ok(t) => {
            let mut m = base(&sb, true);
            if !g("device_info").is_empty() {
                m.insert("device_info".into(), g("device_info").into());
            }
            m.insert("trade_type".into(), "JSAPI".into());
            m.insert("prepay_id".into(), t.prepay_id);
            v2_signed(&sb, m, v.ty, v.corrupt)
        }
    }
}

fn lookup(sb: &Sandbox, v: &V2) -> Result<Transaction, &'static str> {
    let g = |k: &str| v.p.get(k).map(String::as_str).filter(|s| !s.is_empty());
    if g("out_trade_no").is_none() && g("transaction_id").is_none() {
        return Err("missing");
    }
    sb.find_order(g("out_trade_no"), g("transaction_id"))
        .ok_or("notfound")
}

/// `POST /pay/orderquery`
pub(crate) async fn orderquery(State(sb): State<Sandbox>, body: Bytes) -> Response {
    let what = "pay/orderquery";
    let v = match preamble(&sb, Endpoint::V2OrderQuery, what, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let t = match lookup(&sb, &v) {
        Ok(t) => t,
        Err("missing") => return fail(what, "out_trade_no和transaction_id不能同时为空"),
        Err(_) => return result_fail(&sb, &v, what, "ORDERNOTEXIST", "订单不存在"),
    };
    let mut m = base(&sb, true);
    m.insert("out_trade_no".into(), t.out_trade_no.clone());
    m.insert("trade_state".into(), t.state.as_str().into());
    m.insert("trade_state_desc".into(), t.state.desc().into());
    if let Some(a) = t.attach.as_ref().filter(|a| !a.is_empty()) {
        m.insert("attach".into(), a.clone());
    }
    if matches!(t.state, TradeState::Success | TradeState::Refund) {
        m.insert("openid".into(), t.openid.clone());
        m.insert("is_subscribe".into(), "N".into());
        m.insert("trade_type".into(), "JSAPI".into());
        m.insert("bank_type".into(), "OTHERS".into());
        m.insert("total_fee".into(), t.total.to_string());
        m.insert("cash_fee".into(), t.total.to_string());
        m.insert("fee_type".into(), "CNY".into());
        m.insert(
            "transaction_id".into(),
            t.transaction_id.clone().unwrap_or_default(),
        );
        m.insert(
            "time_end".into(),
            compact_beijing(t.paid_at_ms.unwrap_or_default()),
        );
    }
    v2_signed(&sb, m, v.ty, v.corrupt)
}

/// `POST /pay/closeorder`
pub(crate) async fn closeorder(State(sb): State<Sandbox>, body: Bytes) -> Response {
    let what = "pay/closeorder";
    let v = match preamble(&sb, Endpoint::V2CloseOrder, what, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let no = v.p.get("out_trade_no").cloned().unwrap_or_default();
    if no.is_empty() {
        return fail(what, "缺少参数out_trade_no");
    }
    match sb.close_order(&no) {
        Err(OrderErr::NotFound) => result_fail(&sb, &v, what, "ORDERNOTEXIST", "订单不存在"),
        Err(OrderErr::Paid) => result_fail(&sb, &v, what, "ORDERPAID", "订单已支付，不能发起关单"),
        Err(_) => result_fail(&sb, &v, what, "ORDERCLOSED", "订单已关闭，无法重复关闭"),
        Ok(()) => {
            let mut m = base(&sb, true);
            m.insert("result_msg".into(), "OK".into());
            v2_signed(&sb, m, v.ty, v.corrupt)
        }
    }
}

/// `POST /secapi/pay/refund`, answered only over mutual TLS with the merchant's API certificate
/// (the sandbox's listener from [`crate::serve_secapi`]); see [`crate::tls`].
pub(crate) async fn refund(
    State(sb): State<Sandbox>,
    peer: Option<Extension<PeerMerchant>>,
    body: Bytes,
) -> Response {
    let what = "secapi/pay/refund";
    match peer.and_then(|Extension(p)| p.0) {
        None => return fail(what, "证书不存在：请使用商户API证书（双向TLS）调用退款接口"),
        Some(m) if m != sb.creds().mchid => return fail(what, "证书与商户号mch_id不匹配"),
        Some(_) => {}
    }
    let v = match preamble(&sb, Endpoint::V2Refund, what, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let g = |k: &str| v.p.get(k).map(String::as_str).unwrap_or_default();
    if !valid_trade_no(g("out_refund_no"), 1) {
        return fail(what, "out_refund_no参数格式错误");
    }
    let amount = |k: &str| -> Option<i64> {
        let s = g(k);
        (!s.is_empty() && s.len() < 12 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (Some(total), Some(refund)) = (amount("total_fee"), amount("refund_fee")) else {
        return fail(what, "total_fee或refund_fee参数格式错误");
    };
    let t = match lookup(&sb, &v) {
        Ok(t) => t,
        Err("missing") => return fail(what, "out_trade_no和transaction_id不能同时为空"),
        Err(_) => return result_fail(&sb, &v, what, "ORDERNOTEXIST", "订单不存在"),
    };
    let notify_url = Some(g("notify_url").to_string()).filter(|s| !s.is_empty());
    if let Some(u) = &notify_url {
        if let Err(m) = check_notify_url(u) {
            return fail(what, m);
        }
    }
    let req = RefundReq {
        api: PayApi::V2,
        out_trade_no: t.out_trade_no.clone(),
        out_refund_no: g("out_refund_no").to_string(),
        total,
        refund,
        reason: Some(g("refund_desc").to_string()).filter(|s| !s.is_empty()),
        notify_url,
    };
    match sb.refund_order(req) {
        Err(OrderErr::NotFound) => result_fail(&sb, &v, what, "ORDERNOTEXIST", "订单不存在"),
        Err(OrderErr::NotPaid) | Err(OrderErr::Closed) => {
            result_fail(&sb, &v, what, "TRADE_STATE_ERROR", "订单状态错误")
        }
        Err(OrderErr::AmountMismatch) => result_fail(
            &sb,
            &v,
            what,
            "INVALID_REQUEST",
            "订单金额与实际支付金额不一致",
        ),
        Err(OrderErr::RefundConflict) => result_fail(
            &sb,
            &v,
            what,
            "INVALID_REQUEST",
            "订单金额或退款金额与之前请求不一致，请核实后再试",
        ),
        Err(_) => result_fail(&sb, &v, what, "INVALID_REQUEST", "退款金额大于可退金额"),
        Ok((t, r)) => {
            let mut m = base(&sb, true);
            m.insert(
                "transaction_id".into(),
                t.transaction_id.unwrap_or_default(),
            );
            m.insert("out_trade_no".into(), t.out_trade_no);
            m.insert("out_refund_no".into(), r.out_refund_no);
            m.insert("refund_id".into(), r.refund_id);
            m.insert("refund_fee".into(), r.refund.to_string());
            m.insert("settlement_refund_fee".into(), r.refund.to_string());
            m.insert("total_fee".into(), t.total.to_string());
            m.insert("settlement_total_fee".into(), t.total.to_string());
            m.insert("fee_type".into(), "CNY".into());
            m.insert("cash_fee".into(), t.total.to_string());
            m.insert("cash_refund_fee".into(), r.refund.to_string());
            v2_signed(&sb, m, v.ty, v.corrupt)
        }
    }
}

/// `POST /pay/refundquery`: by out_refund_no, refund_id, out_trade_no or transaction_id (the
/// latter two list every refund of the order). Indexed fields `out_refund_no_$n`,
/// `refund_id_$n`, `refund_fee_$n`, `refund_status_$n` (`SUCCESS|REFUNDCLOSE|PROCESSING|CHANGE`)…
pub(crate) async fn refundquery(State(sb): State<Sandbox>, body: Bytes) -> Response {
    let what = "pay/refundquery";
    let v = match preamble(&sb, Endpoint::V2RefundQuery, what, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let g = |k: &str| v.p.get(k).map(String::as_str).filter(|s| !s.is_empty());
    let found: Option<(Transaction, Vec<crate::state::Refund>)> =
        if let Some(no) = g("out_refund_no") {
            sb.find_refund(no).map(|(t, r)| (t, vec![r]))
        } else if let Some(id) = g("refund_id") {
            sb.find_refund_by(|r| r.refund_id == id)
                .map(|(t, r)| (t, vec![r]))
        } else if g("out_trade_no").is_some() || g("transaction_id").is_some() {
            sb.find_order(g("out_trade_no"), g("transaction_id"))
                .map(|t| {
                    let rs = t.refunds.clone();
                    (t, rs)
                })
                .filter(|(_, rs)| !rs.is_empty())
        } else {
            return fail(
                what,
                "out_refund_no、out_trade_no、transaction_id、refund_id不能同时为空",
            );
        };
    let Some((t, refunds)) = found else {
        return result_fail(&sb, &v, what, "REFUNDNOTEXIST", "退款订单查询失败");
    };
    let mut m = base(&sb, true);
    m.insert("out_trade_no".into(), t.out_trade_no.clone());
    m.insert(
        "transaction_id".into(),
        t.transaction_id.clone().unwrap_or_default(),
    );
    m.insert("total_fee".into(), t.total.to_string());
    m.insert("cash_fee".into(), t.total.to_string());
    m.insert("fee_type".into(), "CNY".into());
    m.insert("refund_count".into(), refunds.len().to_string());
    for (n, r) in refunds.iter().enumerate() {
        let mut put = |k: &str, val: String| {
            m.insert(format!("{k}_{n}"), val);
        };
        put("out_refund_no", r.out_refund_no.clone());
        put("refund_id", r.refund_id.clone());
        put("refund_channel", "ORIGINAL".into());
        put("refund_fee", r.refund.to_string());
        put("settlement_refund_fee", r.refund.to_string());
        put(
            "refund_status",
            crate::notify::v2_refund_status(&r.status).to_string(),
        );
        put("refund_account", "REFUND_SOURCE_RECHARGE_FUNDS".into());
        put("refund_recv_accout", "支付用户零钱".into());
        if let Some(ms) = r.success_at_ms {
            put("refund_success_time", dashed_beijing(ms));
        }
    }
    v2_signed(&sb, m, v.ty, v.corrupt)
}
