//! The official account's side (公众号): everything that speaks to `api.weixin.qq.com` /
//! `open.weixin.qq.com` with the appid and appsecret, and what WeChat pushes to the shop.
//!
//! * [`oauth`] — OAuth2 web authorization (网页授权): the user's openid.
//! * [`token`] — the shared base `access_token` / `jsapi_ticket` cache (memory or Redis).
//! * [`jssdk`] — `wx.config` signing with the `jsapi_ticket`.
//! * [`server`] — the account's server (服务器配置): push signatures, messages, safe-mode crypto.
//! * [`api`] — the APIs the shop calls with its access_token: menu, QR codes, template messages.
//!
//! Nothing here knows about WeChat Pay ([`crate::pay`]).
pub mod api;
pub mod card;
pub mod jssdk;
pub mod oauth;
pub mod server;
pub mod token;
