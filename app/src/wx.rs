//! The in-page WeChat API (browser only): `wx.config / ready / error / chooseWXPay / checkJsApi`
//! and `WeixinJSBridge.invoke('getBrandWCPayRequest')`, wrapped as async functions.
//!
//! The JS-SDK is looked up on `window` at call time (through `Reflect`, not static imports), so
//! a page where it failed to load gets an error value, never a wasm panic. Which script is loaded
//! (WeChat's or the sandbox's shim) is decided by the server (see `components::wx_env`).

use crate::model::{ChooseWxPay, WxConfig};
use js_sys::{Array, Function, Object, Promise, Reflect};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// The APIs the shop asks `wx.config` for.
pub const JS_API_LIST: &[&str] = &[
    "chooseWXPay",
    "checkJsApi",
    "updateAppMessageShareData",
    "updateTimelineShareData",
    "openAddress",
    "addCard",
    "chooseCard",
];

/// How a payment dialog ended, as the page saw it. Only a hint: the server decides whether the
/// order is paid (notification or order query).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayOutcome {
    Ok,
    Cancel,
    /// WeChat's `errMsg` / `err_desc`.
    Fail(String),
}

thread_local! {
    static LANDING_URL: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn window() -> Option<web_sys::Window> {
    web_sys::window()
}

fn strip_hash(url: &str) -> String {
    url.split('#').next().unwrap_or_default().to_string()
}

fn current_url() -> String {
    window()
        .and_then(|w| w.location().href().ok())
        .map(|u| strip_hash(&u))
        .unwrap_or_default()
}

/// Remembers the URL the page was landed on (call once, before any client-side navigation).
pub fn remember_landing_url() {
    LANDING_URL.with(|l| {
        let mut l = l.borrow_mut();
        if l.is_none() {
            *l = Some(current_url());
        }
    });
}

/// iOS WeChat signs against the landing URL; Android (and the rest) against the current one.
pub fn is_ios() -> bool {
    let ua = window()
        .and_then(|w| w.navigator().user_agent().ok())
        .unwrap_or_default();
    ua.contains("iPhone") || ua.contains("iPad") || ua.contains("iPod")
}

/// The URL `wx.config` must be signed for right now.
pub fn sign_url() -> String {
    if is_ios() {
        LANDING_URL
            .with(|l| l.borrow().clone())
            .unwrap_or_else(current_url)
    } else {
        current_url()
    }
}

fn global(name: &str) -> Option<JsValue> {
    let w = window()?;
    Reflect::get(&w, &JsValue::from_str(name))
        .ok()
        .filter(|v| v.is_object())
}

fn method(obj: &JsValue, name: &str) -> Option<Function> {
    Reflect::get(obj, &JsValue::from_str(name))
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok())
}

fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), &value.into());
}

fn text_of(v: &JsValue, key: &str) -> String {
    Reflect::get(v, &JsValue::from_str(key))
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_default()
}

/// Waits `ms` milliseconds.
pub async fn sleep_ms(ms: i32) {
    let p = Promise::new(&mut |resolve, _| {
        if let Some(w) = window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = JsFuture::from(p).await;
}

/// Waits (up to `timeout_ms`) for the JS-SDK script to define `window.wx`.
pub async fn wait_for_sdk(timeout_ms: i32) -> bool {
    let mut waited = 0;
    while global("wx").is_none() {
        if waited >= timeout_ms {
            return false;
        }
        sleep_ms(50).await;
        waited += 50;
    }
    true
}

/// A JS callback that may be called any number of times (WeChat's are not always once).
fn callback(f: impl FnMut(JsValue) + 'static) -> JsValue {
    Closure::wrap(Box::new(f) as Box<dyn FnMut(JsValue)>).into_js_value()
}

/// `wx.config(…)`, then the outcome: `Ok` on `wx.ready`, `Err(errMsg)` on `wx.error`.
pub async fn config(cfg: &WxConfig) -> Result<(), String> {
    let wx = global("wx").ok_or_else(|| "JS-SDK not loaded".to_string())?;
    let (config, ready, error) = match (
        method(&wx, "config"),
        method(&wx, "ready"),
        method(&wx, "error"),
    ) {
        (Some(c), Some(r), Some(e)) => (c, r, e),
        _ => return Err("JS-SDK incomplete".into()),
    };
    let arg = Object::new();
    set(&arg, "debug", false);
    set(&arg, "appId", cfg.app_id.as_str());
    set(&arg, "timestamp", cfg.timestamp as f64);
    set(&arg, "nonceStr", cfg.nonce_str.as_str());
    set(&arg, "signature", cfg.signature.as_str());
    let list: Array = JS_API_LIST.iter().map(|s| JsValue::from_str(s)).collect();
    set(&arg, "jsApiList", list);
    let promise = Promise::new(&mut |resolve, _| {
        let ok = resolve.clone();
        let _ = ready.call1(
            &wx,
            &callback(move |_| {
                let _ = ok.call1(&JsValue::NULL, &JsValue::NULL);
            }),
        );
        let _ = error.call1(
            &wx,
            &callback(move |res| {
                let _ = resolve.call1(&JsValue::NULL, &JsValue::from_str(&text_of(&res, "errMsg")));
            }),
        );
    });
    config
        .call1(&wx, &arg)
        .map_err(|_| "wx.config threw".to_string())?;
    match JsFuture::from(promise).await {
        Ok(v) if v.is_null() => Ok(()),
        Ok(v) => Err(v.as_string().unwrap_or_else(|| "config:fail".into())),
        Err(_) => Err("config:fail".into()),
    }
}

/// `wx.checkJsApi`: which of `apis` this WeChat supports.
pub async fn check_js_api(apis: &[&str]) -> Result<Vec<(String, bool)>, String> {
    let wx = global("wx").ok_or_else(|| "JS-SDK not loaded".to_string())?;
    let check = method(&wx, "checkJsApi").ok_or_else(|| "checkJsApi missing".to_string())?;
    let arg = Object::new();
    let list: Array = apis.iter().map(|s| JsValue::from_str(s)).collect();
    set(&arg, "jsApiList", list);
    let promise = Promise::new(&mut |resolve, _| {
        let r = resolve.clone();
        set(
            &arg,
            "success",
            callback(move |res| {
                let _ = r.call1(&JsValue::NULL, &res);
            }),
        );
        set(
            &arg,
            "fail",
            callback(move |_| {
                let _ = resolve.call1(&JsValue::NULL, &JsValue::NULL);
            }),
        );
    });
    check
        .call1(&wx, &arg)
        .map_err(|_| "checkJsApi threw".to_string())?;
    let res = JsFuture::from(promise)
        .await
        .map_err(|_| "checkJsApi:fail".to_string())?;
    if res.is_null() {
        return Err("checkJsApi:fail".into());
    }
    let result = Reflect::get(&res, &JsValue::from_str("checkResult")).unwrap_or(JsValue::NULL);
    Ok(apis
        .iter()
        .map(|a| {
            let ok = Reflect::get(&result, &JsValue::from_str(a))
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            (a.to_string(), ok)
        })
        .collect())
}

/// `wx.chooseWXPay` (needs a successful `wx.config`). The JS-SDK's field is `timestamp`; the
/// value is the signed `timeStamp`.
pub async fn choose_wx_pay(p: &ChooseWxPay) -> PayOutcome {
    let Some(wx) = global("wx") else {
        return PayOutcome::Fail("chooseWXPay:fail, JS-SDK not loaded".into());
    };
    let Some(choose) = method(&wx, "chooseWXPay") else {
        return PayOutcome::Fail("chooseWXPay:fail, not available".into());
    };
    let arg = Object::new();
    set(&arg, "timestamp", p.time_stamp.as_str());
    set(&arg, "nonceStr", p.nonce_str.as_str());
    set(&arg, "package", p.package.as_str());
    set(&arg, "signType", p.sign_type.as_str());
    set(&arg, "paySign", p.pay_sign.as_str());
    let promise = Promise::new(&mut |resolve, _| {
        for (key, tag) in [("success", "ok"), ("cancel", "cancel"), ("fail", "fail")] {
            let r = resolve.clone();
            set(
                &arg,
                key,
                callback(move |res| {
                    let out = Array::of2(
                        &JsValue::from_str(tag),
                        &JsValue::from_str(&text_of(&res, "errMsg")),
                    );
                    let _ = r.call1(&JsValue::NULL, &out);
                }),
            );
        }
    });
    if choose.call1(&wx, &arg).is_err() {
        return PayOutcome::Fail("chooseWXPay:fail".into());
    }
    outcome(JsFuture::from(promise).await)
}

fn outcome(res: Result<JsValue, JsValue>) -> PayOutcome {
    let Ok(v) = res else {
        return PayOutcome::Fail("fail".into());
    };
    let arr = Array::from(&v);
    let tag = arr.get(0).as_string().unwrap_or_default();
    let msg = arr.get(1).as_string().unwrap_or_default();
    match tag.as_str() {
        "ok" => PayOutcome::Ok,
        "cancel" => PayOutcome::Cancel,
        _ => PayOutcome::Fail(msg),
    }
}

/// `WeixinJSBridge.invoke('getBrandWCPayRequest', …)`: works without `wx.config`.
pub async fn brand_wcpay_request(p: &ChooseWxPay) -> PayOutcome {
    let Some(bridge) = global("WeixinJSBridge") else {
        return PayOutcome::Fail("请在微信中打开本页完成支付".into());
    };
    let Some(invoke) = method(&bridge, "invoke") else {
        return PayOutcome::Fail("WeixinJSBridge unavailable".into());
    };
    let arg = Object::new();
    set(&arg, "appId", p.app_id.as_str());
    set(&arg, "timeStamp", p.time_stamp.as_str());
    set(&arg, "nonceStr", p.nonce_str.as_str());
    set(&arg, "package", p.package.as_str());
    set(&arg, "signType", p.sign_type.as_str());
    set(&arg, "paySign", p.pay_sign.as_str());
    let promise = Promise::new(&mut |resolve, _| {
        let cb = callback(move |res| {
            let err_msg = text_of(&res, "err_msg");
            let tag = match err_msg.rsplit(':').next().unwrap_or_default() {
                "ok" => "ok",
                "cancel" => "cancel",
                _ => "fail",
            };
            let desc = text_of(&res, "err_desc");
            let msg = if desc.is_empty() { err_msg } else { desc };
            let out = Array::of2(&JsValue::from_str(tag), &JsValue::from_str(&msg));
            let _ = resolve.call1(&JsValue::NULL, &out);
        });
        let _ = invoke.call3(
            &bridge,
            &JsValue::from_str("getBrandWCPayRequest"),
            &arg,
            &cb,
        );
    });
    outcome(JsFuture::from(promise).await)
}

/// Pays: `chooseWXPay` when `wx.config` succeeded, `getBrandWCPayRequest` otherwise (or when
/// the JS-SDK refuses for lack of permission).
pub async fn pay(p: &ChooseWxPay, configured: bool) -> PayOutcome {
    if configured {
        match choose_wx_pay(p).await {
            PayOutcome::Fail(m) if m.contains("permission") || m.contains("offline") => {}
            other => return other,
        }
    }
    brand_wcpay_request(p).await
}

/// A share card (see `components::ShareCard`).
pub struct Share {
    pub title: String,
    pub desc: String,
    /// Absolute, on the page's origin.
    pub link: String,
    /// Absolute.
    pub img_url: String,
}

/// `wx.updateAppMessageShareData` (friends: title, desc, link, imgUrl) and
/// `wx.updateTimelineShareData` (Moments: title, link, imgUrl). Call after `wx.ready`.
pub fn share(card: &Share) {
    let Some(wx) = global("wx") else { return };
    for (name, with_desc) in [
        ("updateAppMessageShareData", true),
        ("updateTimelineShareData", false),
    ] {
        let Some(f) = method(&wx, name) else { continue };
        let arg = Object::new();
        set(&arg, "title", card.title.as_str());
        if with_desc {
            set(&arg, "desc", card.desc.as_str());
        }
        set(&arg, "link", card.link.as_str());
        set(&arg, "imgUrl", card.img_url.as_str());
        if f.call1(&wx, &arg).is_err() {
            leptos::logging::warn!("wx.{name} threw");
        }
    }
}

/// An address from the follower's WeChat (共享收货地址, `wx.openAddress`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WxAddress {
    pub user_name: String,
    pub tel_number: String,
    pub province_name: String,
    pub city_name: String,
    /// The district (WeChat calls it `countryName`).
    pub county_name: String,
    pub detail_info: String,
}

/// `wx.openAddress`: `Ok(None)` when the shopper cancels.
pub async fn open_address() -> Result<Option<WxAddress>, String> {
    let wx = global("wx").ok_or_else(|| "JS-SDK not loaded".to_string())?;
    let open = method(&wx, "openAddress").ok_or_else(|| "openAddress missing".to_string())?;
    let arg = Object::new();
    let promise = Promise::new(&mut |resolve, _| {
        let ok = resolve.clone();
        set(
            &arg,
            "success",
            callback(move |res| {
                let _ = ok.call1(&JsValue::NULL, &res);
            }),
        );
        let cancel = resolve.clone();
        set(
            &arg,
            "cancel",
            callback(move |_| {
                let _ = cancel.call1(&JsValue::NULL, &JsValue::NULL);
            }),
        );
        set(
            &arg,
            "fail",
            callback(move |res| {
                let _ = resolve.call1(&JsValue::NULL, &JsValue::from_str(&text_of(&res, "errMsg")));
            }),
        );
    });
    open.call1(&wx, &arg)
        .map_err(|_| "openAddress threw".to_string())?;
    let res = JsFuture::from(promise)
        .await
        .map_err(|_| "openAddress:fail".to_string())?;
    if res.is_null() {
        return Ok(None);
    }
    if let Some(err) = res.as_string() {
        return Err(err);
    }
    Ok(Some(WxAddress {
        user_name: text_of(&res, "userName"),
        tel_number: text_of(&res, "telNumber"),
        province_name: text_of(&res, "provinceName"),
        city_name: text_of(&res, "cityName"),
        county_name: text_of(&res, "countryName"),
        detail_info: text_of(&res, "detailInfo"),
    }))
}

/// Calls `wx.<name>(arg)` with `success` / `cancel` / `fail` callbacks: `Ok(Some(res))` on
/// success, `Ok(None)` when the shopper cancels, `Err(errMsg)` on failure.
async fn call_sdk(name: &str, arg: Object) -> Result<Option<JsValue>, String> {
    let wx = global("wx").ok_or_else(|| "JS-SDK not loaded".to_string())?;
    let f = method(&wx, name).ok_or_else(|| format!("{name} missing"))?;
    let promise = Promise::new(&mut |resolve, _| {
        for (key, tag) in [("success", "ok"), ("cancel", "cancel"), ("fail", "fail")] {
            let r = resolve.clone();
            set(
                &arg,
                key,
                callback(move |res| {
                    let _ = r.call1(&JsValue::NULL, &Array::of2(&JsValue::from_str(tag), &res));
                }),
            );
        }
    });
    f.call1(&wx, &arg).map_err(|_| format!("{name} threw"))?;
    let v = JsFuture::from(promise)
        .await
        .map_err(|_| format!("{name}:fail"))?;
    let arr = Array::from(&v);
    let res = arr.get(1);
    match arr.get(0).as_string().as_deref() {
        Some("ok") => Ok(Some(res)),
        Some("cancel") => Ok(None),
        _ => Err(text_of(&res, "errMsg")),
    }
}

/// `wx.addCard` with one card (卡券: the shop's coupon into the shopper's card wallet):
/// `Ok(true)` taken, `Ok(false)` cancelled.
pub async fn add_card(card: &crate::model::CardExtView) -> Result<bool, String> {
    let entry = Object::new();
    set(&entry, "cardId", card.card_id.as_str());
    set(&entry, "cardExt", card.card_ext.as_str());
    let arg = Object::new();
    set(&arg, "cardList", Array::of1(&entry));
    Ok(call_sdk("addCard", arg).await?.is_some())
}

/// `wx.chooseCard` (any of the shop's coupons in the wallet): the chosen card's id and
/// encrypted code, `Ok(None)` when the shopper cancels or chooses none. WeChat gives
/// `cardList` as a JSON *string*.
pub async fn choose_card(
    cfg: &crate::model::ChooseCardConfig,
) -> Result<Option<crate::model::CouponInput>, String> {
    let arg = Object::new();
    set(&arg, "shopId", "");
    set(&arg, "cardType", "");
    set(&arg, "cardId", "");
    set(&arg, "timestamp", cfg.timestamp as f64);
    set(&arg, "nonceStr", cfg.nonce_str.as_str());
    set(&arg, "signType", cfg.sign_type.as_str());
    set(&arg, "cardSign", cfg.card_sign.as_str());
    let Some(res) = call_sdk("chooseCard", arg).await? else {
        return Ok(None);
    };
    let list = Reflect::get(&res, &JsValue::from_str("cardList")).unwrap_or(JsValue::NULL);
    let list = match list.as_string() {
        Some(text) => {
            js_sys::JSON::parse(&text).map_err(|_| "chooseCard: bad cardList".to_string())?
        }
        None => list,
    };
    if !Array::is_array(&list) {
        return Ok(None);
    }
    let first = Array::from(&list).get(0);
    if first.is_undefined() || first.is_null() {
        return Ok(None);
    }
    let card_id = text_of(&first, "card_id");
    let encrypt_code = text_of(&first, "encrypt_code");
    if card_id.is_empty() || encrypt_code.is_empty() {
        return Ok(None);
    }
    Ok(Some(crate::model::CouponInput {
        card_id,
        encrypt_code,
    }))
}
