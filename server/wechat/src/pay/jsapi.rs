//! Parameters for `wx.chooseWXPay` / `WeixinJSBridge.invoke('getBrandWCPayRequest', …)`.
//!
//! They are signed **afresh** for the page: handing the unifiedorder answer's `sign` to the page as
//! `paySign` is the classic "支付验证签名失败".
//!
//! * v2: MD5 / HMAC-SHA256 with the API key over `appId, nonceStr, package, signType, timeStamp`
//!   (note the capital `I` and `S`: they are the signed parameter names) — [`v2`], [`v2_with`],
//!   [`v2_string_a`], defined in [`crate::pay::v2::sign`].
//! * v3: RSA-SHA256 with the merchant key over `APPID\nTIMESTAMP\nNONCE\nprepay_id=…\n`,
//!   `signType: "RSA"` — [`v3`], [`v3_with`], defined in [`crate::pay::v3::sign`].
//!
//! The object itself, [`ChooseWxPay`], lives in the `wechat-js` crate, which the page shares. Each
//! version signs it with its own key; this module gathers both (as [`crate::PayGateway`] does), and
//! neither version uses it.
pub use wechat_js::ChooseWxPay;

pub use crate::pay::v2::sign::{
    choose_wx_pay as v2, choose_wx_pay_string_a as v2_string_a, choose_wx_pay_with as v2_with,
};
pub use crate::pay::v3::sign::{choose_wx_pay as v3, choose_wx_pay_with as v3_with};
