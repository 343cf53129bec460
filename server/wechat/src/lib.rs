//! # wechat — the WeChat H5 protocol core of wxmall
//!
//! Everything a WeChat official-account (公众号) H5 shop needs to talk to WeChat, with no web framework
//! attached: OAuth2 web authorization, the shared base `access_token` / `jsapi_ticket` cache, JS-SDK
//! `wx.config` signing, WeChat Pay API v2 (XML, MD5 / HMAC-SHA256) and v3 (JSON, RSA-SHA256,
//! AES-256-GCM), platform certificates, payment and refund notifications, refund queries, trade bills
//! and the `wx.chooseWXPay` parameters.
//!
//! Design rules, each of which is a bug seen in other SDKs:
//!
//! * **Verification is never optional.** A v3 answer or notification without its `Wechatpay-*`
//!   headers is refused ([`NotifyError::MissingHeader`]); a v2 answer or notification without
//!   `sign` is refused. Serials are compared case-insensitively, timestamps more than 5 minutes off are
//!   refused, platform certificates are re-downloaded periodically and when an unknown serial shows up.
//! * **Hostile XML is refused before parsing**: size cap first, then DOCTYPE / ENTITY / unknown entity
//!   references ([`xml`]).
//! * **Secrets never leak**: app secret, API keys, the merchant private key and every access token live
//!   in [`Secret`] (or a type with a redacting `Debug`), none of them implement `Serialize` or `Display`,
//!   and HTTP errors are stripped of their URL (which carries `secret=` / `access_token=`).
//! * **Money is integer fen** (`i64`) everywhere.
//! * **One token per appid across all instances**: [`mp::token::TokenManager`] refreshes ahead of expiry,
//!   single-flights the upstream fetch (in-process mutex + a lock in the shared [`mp::token::TokenCache`]),
//!   and on 40001/40014/42001 drops the cached token only if it is still the one that failed.
//! * **Every host is injectable** ([`config::Hosts`]), including a base with a path prefix (the embedded
//!   sandbox); the v3 signature covers the path WeChat sees (after the base).
//! * Private-key operations are blinded (`sign_with_rng` with the OS CSPRNG) and, on async paths, run on
//!   the blocking pool.
//!
//! ## Layout
//!
//! * [`mp`] — the official account: [`mp::oauth`], [`mp::token`] (access_token / jsapi_ticket
//!   cache), [`mp::jssdk`] (`wx.config`), [`mp::server`] (pushed messages, safe mode), [`mp::api`]
//!   (menu, QR codes, template messages).
//! * [`pay`] — WeChat Pay: the shared types, [`pay::notify`], [`pay::bill`], then [`pay::v2`] and
//!   [`pay::v3`] (each with its own signing, notifications and client, neither using the other), and
//!   on top [`pay::jsapi`] (the page's `chooseWXPay` parameters) and [`pay::gateway`] ([`PayGateway`]).
//! * [`config`], [`error`], [`http`], [`secret`], [`xml`] — what both sides use.
//!
//! The objects handed to the JS-SDK ([`WxConfig`], [`ChooseWxPay`]) come from the serde-only
//! `wechat-js` crate, which the page (wasm) uses too.
//!
//! ## Wiring it into a shop
//!
//! ```no_run
//! use std::sync::Arc;
//! use wechat::{Hosts, PayGateway, Secret};
//! use wechat::mp::token::{RedisTokenCache, TokenManager};
//!
//! # async fn wire() -> Result<(), Box<dyn std::error::Error>> {
//! let hosts = Hosts::from_env()?; // WECHAT_OPEN_BASE / WECHAT_API_BASE / WECHAT_PAY_BASE
//! let http = wechat::http::default_client()?;
//!
//! // One token per appid, shared by every instance through Redis.
//! let cache = Arc::new(RedisTokenCache::connect("redis://127.0.0.1:6379/").await?);
//! let tokens = TokenManager::new("wx…", Secret::from("appsecret"), &hosts, http.clone(), cache);
//! let wx_config = tokens.jssdk_config("https://shop.example.com/cart").await?; // → wx.config
//!
//! // OAuth: redirect, then exchange the code on the callback.
//! let oauth = wechat::mp::oauth::OAuthClient::new("wx…", Secret::from("appsecret"), &hosts, http.clone());
//! let state = wechat::mp::oauth::new_state(); // keep in the session
//! let url = oauth.authorize_url("https://shop.example.com/auth/cb", wechat::mp::oauth::Scope::Base, &state)?;
//!
//! // Pay: v2 or v3 behind one trait, chosen by configuration.
//! let v3 = wechat::pay::v3::PayV3Config::new(
//!     "wx…", "1900000109", "MERCHANT_CERT_SERIAL",
//!     wechat::pay::v3::MerchantKey::from_pem_file("apiclient_key.pem")?,
//!     wechat::pay::v3::ApiV3Key::new("32-byte-apiv3-key-0123456789abcd")?,
//!     hosts.pay.clone(),
//! );
//! let pay: Arc<dyn PayGateway> =
//!     Arc::new(wechat::pay::v3::PayV3Client::with_downloaded_certificates(v3, http, None)?);
//! // In the notify handler: let notice = pay.parse_notification(&headers, &body).await?;
//! //   check notice.total_fee against the order, update idempotently, answer pay.notification_success().
//! # let _ = (wx_config, url, pay); Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod http;
pub mod mp;
pub mod pay;
pub mod secret;
pub mod xml;

pub use config::{BaseUrl, ConfigError, Hosts};
pub use error::{ApiError, MpError};
pub use pay::bill::{BillRow, BillSummary, TradeBill};
pub use pay::gateway::{PayError, PayGateway};
pub use pay::notify::{NotifyAnswer, NotifyError, PaymentNotice};
pub use pay::v2::sign::SignType;
pub use pay::{
    OrderStatus, PayErrCode, PrepayId, PrepayRequest, RefundNotice, RefundRequest, RefundResult,
    RefundStatus, TradeState,
};
pub use secret::Secret;
/// The six signed fields of `getBrandWCPayRequest`: another name for [`ChooseWxPay`], the one the
/// [`PayGateway`] has always returned.
pub use wechat_js::ChooseWxPay as PayParams;
/// The objects the page hands to the JS-SDK, shared with the page through the `wechat-js` crate.
pub use wechat_js::{ChooseWxPay, WxConfig};

/// A random string for `nonce_str` / `nonceStr` / `noncestr`: 32 characters from `[A-Za-z0-9]`
/// drawn from the operating system's CSPRNG (WeChat allows at most 32).
pub fn nonce() -> String {
    use rand::Rng;
    rand::rngs::OsRng
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// The current Unix time in whole seconds, as WeChat's `timestamp` / `timeStamp` fields want it.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
