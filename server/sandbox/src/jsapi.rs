//! The JS-SDK shim (`/jweixin.js`) and the JSON endpoints it calls. The checks live here,
//! server side, so Rust tests cover them.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::crypto::{ct_eq, jsapi_signature, random_alnum, rsa_verify, v2_sign, V2SignType};
use crate::oauth::cookie_user;
use crate::orders::OrderErr;
use crate::state::{Endpoint, Fault, JsConfig, PayApi, PaySession, Sandbox, TradeState};
use crate::util::yuan;

const SHIM: &str = include_str!("jweixin.js");
const SHIM_CSS: &str = include_str!("jweixin.css");

/// `GET /jweixin.js`
pub(crate) async fn script() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SHIM,
    )
        .into_response()
}

/// `GET /jweixin.css`: the pay sheet's stylesheet (the shim links it; see the file).
pub(crate) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SHIM_CSS,
    )
        .into_response()
}

fn text(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

pub(crate) fn fault_reason(f: Fault) -> Option<String> {
    match f {
        Fault::Errcode { errmsg, .. } => Some(errmsg),
        Fault::Http { status, .. } => Some(format!("网络错误 ({status})")),
        Fault::V2ReturnFail { return_msg } => Some(return_msg),
        Fault::V2ResultFail { err_code_des, .. } => Some(err_code_des),
        Fault::V3Error { message, .. } => Some(message),
        Fault::CorruptSignature | Fault::Delay(_) => None,
    }
}

fn host_of(url: &str) -> Option<(String, String)> {
    let u = url::Url::parse(url).ok()?;
    let host = u.host_str()?.to_string();
    let hp = match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    Some((host, hp))
}

/// `POST /jsapi/config` `{appId,timestamp,nonceStr,signature,url,jsApiList}`
pub(crate) async fn config(State(sb): State<Sandbox>, Json(v): Json<Value>) -> Json<Value> {
    let url = text(&v, "url");
    let refuse = |msg: &str, why: &str| {
        tracing::warn!(target: "wechat_sandbox", endpoint = "wx.config", url = %url, reason = why, "refused");
        sb.js_event("config", false, msg, &url);
        Json(json!({"ok": false, "errMsg": msg}))
    };
    if let Some(f) = sb.take_fault(Endpoint::JsConfig).await {
        if let Some(r) = fault_reason(f) {
            return refuse(&format!("config:fail, {r}"), "injected fault");
        }
    }
    let appid = text(&v, "appId");
    if appid != sb.creds().appid {
        return refuse(
            "config:invalid url domain",
            "appId is not the sandbox appid",
        );
    }
    let Some((host, hp)) = host_of(&url) else {
        return refuse("config:invalid url domain", "url is not an absolute URL");
    };
    let domains = sb.opts().js_safe_domains;
    if !domains.is_empty() && !domains.iter().any(|d| *d == host || *d == hp) {
        return refuse("config:invalid url domain", "host is not a JS接口安全域名");
    }
    let (ts, nonce, sig) = (
        text(&v, "timestamp"),
        text(&v, "nonceStr"),
        text(&v, "signature"),
    );
    if ts.is_empty() || nonce.is_empty() || sig.is_empty() {
        return refuse(
            "config:invalid signature",
            "timestamp, nonceStr or signature missing",
        );
    }
    let now = sb.now_ms();
    let tickets: Vec<String> = sb
        .lock()
        .tickets
        .iter()
        .filter(|(_, &exp)| exp > now)
        .map(|(t, _)| t.clone())
        .collect();
    if tickets.is_empty() {
        return refuse(
            "config:invalid signature",
            "no valid jsapi_ticket has been issued",
        );
    }
    if !tickets
        .iter()
        .any(|t| ct_eq(&jsapi_signature(t, &nonce, &ts, &url), &sig))
    {
        return refuse(
            "config:invalid signature",
            "signature does not match any valid jsapi_ticket for this url",
        );
    }
    let list: Vec<String> = v
        .get("jsApiList")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let id = random_alnum(24);
    {
        let mut st = sb.lock();
        st.js_configs.retain(|_, c| c.expires_at > now);
        st.js_configs.insert(
            id.clone(),
            JsConfig {
                appid,
                js_api_list: list,
                expires_at: now + 7_200_000,
            },
        );
    }
    sb.js_event("config", true, "config:ok", &url);
    Json(json!({"ok": true, "errMsg": "config:ok", "configId": id}))
}

/// `POST /jsapi/pay/prepare`: verifies paySign and the order, answers what the pay sheet shows.
pub(crate) async fn pay_prepare(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Json(v): Json<Value>,
) -> Json<Value> {
    let url = text(&v, "url");
    let fail = |kind: &str, reason: &str| {
        tracing::warn!(target: "wechat_sandbox", endpoint = "chooseWXPay", url = %url, reason, "refused");
        sb.js_event("pay_prepare", false, reason, &url);
        Json(json!({"ok": false, "kind": kind, "reason": reason}))
    };
    if let Some(f) = sb.take_fault(Endpoint::JsPay).await {
        if let Some(r) = fault_reason(f) {
            return fail("fail", &r);
        }
    }
    let now = sb.now_ms();
    let appid = if text(&v, "via") == "chooseWXPay" {
        let cfg = {
            let st = sb.lock();
            st.js_configs
                .get(&text(&v, "configId"))
                .filter(|c| c.expires_at > now)
                .map(|c| {
                    (
                        c.appid.clone(),
                        c.js_api_list.iter().any(|a| a == "chooseWXPay"),
                    )
                })
        };
        match cfg {
            Some((appid, true)) => appid,
            Some((_, false)) => {
                return fail("permission", "chooseWXPay is not in wx.config jsApiList")
            }
            None => return fail("permission", "wx.config has not succeeded"),
        }
    } else {
        let a = text(&v, "appId");
        if a != sb.creds().appid {
            return fail("fail", "商户传入的appid参数不正确，请联系商户处理");
        }
        a
    };
    let (ts, nonce, package, sign_type, pay_sign) = (
        text(&v, "timeStamp"),
        text(&v, "nonceStr"),
        text(&v, "package"),
        text(&v, "signType"),
        text(&v, "paySign"),
    );
    for (name, val) in [
        ("timeStamp", &ts),
        ("nonceStr", &nonce),
        ("package", &package),
        ("signType", &sign_type),
        ("paySign", &pay_sign),
    ] {
        if val.is_empty() {
            return fail("fail", &format!("缺少参数{name}"));
        }
    }
    let Some(prepay_id) = package.strip_prefix("prepay_id=") else {
        return fail("fail", "package参数格式错误，应为prepay_id=***");
    };
    let tx = {
        let st = sb.lock();
        st.prepay_index
            .get(prepay_id)
            .and_then(|no| st.transactions.get(no))
            .cloned()
    };
    let Some(tx) = tx else {
        return fail("fail", "prepay_id无效");
    };
    if tx.prepay_id != prepay_id {
        return fail("fail", "prepay_id已失效，请重新下单");
    }
    let signed_ok = match (sign_type.as_str(), tx.api) {
        ("MD5" | "HMAC-SHA256", PayApi::V2) => {
            let ty = V2SignType::parse(&sign_type).unwrap_or(V2SignType::Md5);
            if tx.sign_type.unwrap_or(V2SignType::Md5) != ty {
                return fail(
                    "fail",
                    "支付验证签名失败 (signType与统一下单的sign_type不一致)",
                );
            }
            let params = [
                ("appId", &appid),
                ("nonceStr", &nonce),
                ("package", &package),
                ("signType", &sign_type),
                ("timeStamp", &ts),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            ct_eq(&v2_sign(&params, &sb.creds().pay_key_v2, ty), &pay_sign)
        }
        ("RSA", PayApi::V3) => {
            let msg = format!("{appid}\n{ts}\n{nonce}\n{package}\n");
            rsa_verify(&sb.inner.keys.merchant_public, msg.as_bytes(), &pay_sign)
        }
        ("MD5" | "HMAC-SHA256" | "RSA", _) => {
            return fail(
                "fail",
                "支付验证签名失败 (signType与下单接口版本不一致：v2用MD5/HMAC-SHA256，v3用RSA)",
            )
        }
        _ => return fail("fail", "signType参数错误"),
    };
    if !signed_ok {
        return fail("fail", "支付验证签名失败");
    }
    match tx.state {
        TradeState::Success | TradeState::Refund => return fail("fail", "该订单已支付"),
        TradeState::Closed => return fail("fail", "该订单已关闭"),
        TradeState::NotPay => {}
    }
    if tx.prepay_expires_at_ms <= now {
        return fail("fail", "prepay_id已过期，请重新下单");
    }
    if tx.time_expire_ms.is_some_and(|e| e <= now) {
        return fail("fail", "订单已过期");
    }
    let dirs = sb.opts().pay_directories;
    if !dirs.is_empty() && !dirs.iter().any(|d| url.starts_with(d.as_str())) {
        return fail("fail", &format!("当前页面的URL未注册：{url}"));
    }
    let users = sb.users();
    if let Some(u) = cookie_user(&sb, &headers) {
        if users[u].openid != tx.openid {
            return fail("fail", "当前微信用户与下单用户（openid）不一致");
        }
    }
    let payer = sb
        .user_by_openid(&tx.openid)
        .map(|i| users[i].nickname.clone())
        .unwrap_or_default();
    let token = random_alnum(32);
    {
        let mut st = sb.lock();
        st.pay_sessions.retain(|_, s| s.expires_at > now);
        st.pay_sessions.insert(
            token.clone(),
            PaySession {
                out_trade_no: tx.out_trade_no.clone(),
                expires_at: now + 600_000,
                url: url.clone(),
            },
        );
    }
    sb.js_event("pay_prepare", true, &tx.out_trade_no, &url);
    Json(json!({
        "ok": true,
        "payToken": token,
        "merchantName": sb.creds().merchant_name,
        "description": tx.description,
        "total": tx.total,
        "amountText": yuan(tx.total),
        "payer": payer,
        "outTradeNo": tx.out_trade_no,
    }))
}

fn take_session(sb: &Sandbox, v: &Value) -> Option<PaySession> {
    let now = sb.now_ms();
    sb.lock()
        .pay_sessions
        .remove(&text(v, "payToken"))
        .filter(|s| s.expires_at > now)
}

/// `POST /jsapi/pay/confirm` `{payToken}`: the payer pressed 支付.
pub(crate) async fn pay_confirm(State(sb): State<Sandbox>, Json(v): Json<Value>) -> Json<Value> {
    let Some(s) = take_session(&sb, &v) else {
        sb.js_event("pay_confirm", false, "支付会话无效或已过期", "");
        return Json(json!({"ok": false, "reason": "支付会话无效或已过期"}));
    };
    match sb.mark_paid(&s.out_trade_no) {
        Err(e) => {
            let reason = match e {
                OrderErr::Paid => "该订单已支付",
                OrderErr::Closed => "该订单已关闭",
                OrderErr::Expired => "订单已过期",
                _ => "订单不存在",
            };
            sb.js_event("pay_confirm", false, reason, &s.url);
            Json(json!({"ok": false, "reason": reason}))
        }
        Ok(t) => {
            let first = sb.start_notification(&t);
            let wait = sb.opts().notify_timeout + Duration::from_secs(1);
            let _ = tokio::time::timeout(wait, first).await;
            sb.js_event("pay_confirm", true, &t.out_trade_no, &s.url);
            Json(json!({"ok": true, "transactionId": t.transaction_id}))
        }
    }
}

/// `POST /jsapi/pay/cancel` `{payToken}`: the payer pressed 取消.
pub(crate) async fn pay_cancel(State(sb): State<Sandbox>, Json(v): Json<Value>) -> Json<Value> {
    let s = take_session(&sb, &v);
    let (no, url) = s.map(|s| (s.out_trade_no, s.url)).unwrap_or_default();
    sb.js_event("pay_cancel", true, &no, &url);
    Json(json!({"ok": true}))
}
