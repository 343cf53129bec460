//! # wechat-js — the objects a page hands to WeChat's JS-SDK
//!
//! Defined once, with WeChat's own field names, and shared by the server (the `wechat` crate signs
//! them) and the page (the `app` crate, compiled to wasm, passes them to the JS-SDK). serde only: no
//! crypto, no I/O, nothing that would not build for `wasm32-unknown-unknown`.
//!
//! * [`WxConfig`] — the signed fields of `wx.config` (`POST /api/jssdk_config`).
//! * [`ChooseWxPay`] — the six signed fields of `getBrandWCPayRequest` (`POST /api/pay_order`);
//!   `wx.chooseWXPay` takes the same values with `timestamp` for `timeStamp` and no `appId`.
//!
//! The JSON is the wire format between server and page: field names and order must not change.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use serde::{Deserialize, Serialize};

/// The signed fields of `wx.config` (besides `jsApiList` and `debug`), named as the JS-SDK names them:
/// `{"appId", "timestamp", "nonceStr", "signature"}`. `timestamp` and `nonceStr` are the very values
/// that were signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WxConfig {
    /// The official account's appid.
    #[serde(rename = "appId")]
    pub app_id: String,
    /// Unix seconds (a JSON number, as `wx.config` expects).
    pub timestamp: i64,
    /// The signed nonce.
    #[serde(rename = "nonceStr")]
    pub nonce_str: String,
    /// SHA-1, lowercase hex.
    pub signature: String,
}

/// The six fields of `getBrandWCPayRequest`, signed afresh for the page, serialized with WeChat's
/// names: `{"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}`. All strings, as
/// WeChat wants them. (`wx.chooseWXPay` takes the same values with `timestamp` for `timeStamp` and no
/// `appId`, which comes from `wx.config`.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChooseWxPay {
    /// The official account's appid.
    #[serde(rename = "appId")]
    pub app_id: String,
    /// Unix seconds, as a string.
    #[serde(rename = "timeStamp")]
    pub time_stamp: String,
    /// Nonce.
    #[serde(rename = "nonceStr")]
    pub nonce_str: String,
    /// `prepay_id=…`.
    pub package: String,
    /// `MD5`, `HMAC-SHA256` or `RSA`.
    #[serde(rename = "signType")]
    pub sign_type: String,
    /// The signature.
    #[serde(rename = "paySign")]
    pub pay_sign: String,
}
