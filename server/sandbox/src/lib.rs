//! # wechat-sandbox
//!
//! An embedded emulator of WeChat's servers (OAuth, base access_token / jsapi_ticket,
//! Pay v2 XML and Pay v3 JSON) and of the in-app JS-SDK (`/jweixin.js`), served by the shop's
//! own process. Every signature is checked with the sandbox's own code, as WeChat would.
//!
//! ```no_run
//! # async fn demo() {
//! use wechat_sandbox::{Sandbox, SandboxCredentials};
//! let sandbox = Sandbox::new(SandboxCredentials::generate());
//! let app: axum::Router = axum::Router::new().nest("/sandbox", wechat_sandbox::router(sandbox.clone()));
//! // WeChat bases: {public}/sandbox/open, {public}/sandbox/api, {public}/sandbox/pay
//! # let _ = app;
//! # }
//! ```
//!
//! Routes (relative to the mount point): `/jweixin.js` (and its `/jweixin.css`), `/jsapi/{config,pay/prepare,pay/confirm,
//! pay/cancel}`, `/open/connect/oauth2/{authorize,sandbox_pick,sandbox_consent,sandbox_logout}`,
//! `/api/sns/{oauth2/access_token,oauth2/refresh_token,userinfo,auth}`,
//! `/api/cgi-bin/{token,stable_token,ticket/getticket}`,
//! `/pay/pay/{unifiedorder,orderquery,closeorder,refundquery,downloadbill}`, `/pay/secapi/pay/refund`,
//! `/pay/v3/pay/transactions/{jsapi,out-trade-no/{no},out-trade-no/{no}/close,id/{id}}`,
//! `/pay/v3/refund/domestic/refunds[/{no}]`, `/pay/v3/certificates`, `/dashboard`,
//! `/dashboard/pay` and `/dashboard/notifications` (the dashboard's buttons: pay an order from
//! "another phone", lose notifications for a while).
//!
//! Cards (卡券, [`card`](crate::SandboxCard)): `/api/card/{create,qrcode/create,testwhitelist/set,
//! code/decrypt,code/get,code/consume,delete,modifystock}`, `getticket?type=wx_card`, the shim's
//! `wx.addCard` / `wx.chooseCard` (`/jsapi/card/{add/prepare,add/confirm,add/cancel,
//! choose/prepare,choose/pick}`) and `/dashboard/cards/verify` (审核通过).
//!
//! Refunds are asynchronous as at WeChat: `PROCESSING` when requested, settled after
//! [`SandboxOptions::refund_settle_delay`] (`SUCCESS`, or `ABNORMAL` after
//! [`Sandbox::make_next_refund_abnormal`]), then notified to the request's `notify_url` (v3
//! `REFUND.*` events; v2 `req_info` in AES-256-ECB) with the same retries and duplicate as
//! payment notifications. Rust hooks: [`Sandbox::refunds`], [`Sandbox::refund_deliveries`],
//! [`Sandbox::wait_for_refund_ack`], [`Sandbox::signed_refund_notification`].
//!
//! `/secapi/pay/refund` needs mutual TLS as at WeChat: [`serve_secapi`] runs the sandbox's own
//! TLS listener, which asks for the merchant's API certificate
//! ([`Sandbox::merchant_certificate_pem`], issued by [`Sandbox::ca_certificate_pem`]); the
//! plain-HTTP route refuses every call (证书不存在).
//!
//! Trade bills are built from the sandbox's own payments and refunds of the requested Beijing
//! date ([`Sandbox::trade_bill`]); [`Sandbox::tamper_bill_amount`] makes them disagree with the
//! shop on purpose.
//!
//! Browser hooks: the OAuth pages use ids `wx-user-1..3`, `wx-allow` (允许), `wx-deny` (拒绝),
//! `wx-switch`, `wx-error`; the pay sheet `wx-pay-sheet`, `wx-pay-amount`, `wx-pay-confirm` (支付),
//! `wx-pay-cancel` (取消); `window.__wxSandbox` reports `configured`, `lastConfigUrl`,
//! `lastError`, `lastPay`.
#![warn(missing_docs)]
// Handlers return early with a ready `Response` as the error: boxing it buys nothing here.
#![allow(clippy::result_large_err)]

mod answer;
mod bill;
mod card;
mod controls;
mod creds;
mod crypto;
mod jsapi;
mod mp;
mod mp_api;
mod mp_page;
mod notify;
mod oauth;
mod orders;
mod pages;
mod pay_v2;
mod pay_v3;
mod state;
mod tls;
mod token;
mod util;
mod xml;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

pub use card::{
    CardPush, CardStatus, CardValidity, CodeStatus, SandboxCard, SandboxCardKind, WalletCode,
};
pub use creds::{SandboxCredentials, PLATFORM_CERTIFICATE_VALIDITY};
pub use crypto::V2SignType;
pub use mp::{MpAction, MpAnswer, MpPush};
pub use mp_api::TemplateMessage;
pub use notify::SignedRefundNotification;
pub use state::{
    AnswerSigner, Delivery, DeliveryKind, Endpoint, Fault, Forgery, JsEvent, PayApi, Refund,
    Sandbox, SandboxOptions, SandboxUser, TradeState, Transaction,
};
pub use tls::{serve_https_front, serve_secapi, HttpsFront, SecapiServer};

/// Errors of the Rust API.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A key did not parse or encode.
    #[error("key error: {0}")]
    Key(String),
    /// The platform certificate could not be built or parsed.
    #[error("certificate error: {0}")]
    Certificate(String),
    /// No transaction with that out_trade_no.
    #[error("no such order: {0}")]
    UnknownOrder(String),
    /// The transaction is not in a state that allows this.
    #[error("invalid order state: {0}")]
    InvalidState(String),
    /// The HTTP client could not be built.
    #[error("http: {0}")]
    Http(String),
}

/// The sandbox's routes, relative to where the shop nests them (e.g. `/sandbox`).
pub fn router(sandbox: Sandbox) -> Router {
    Router::new()
        .route("/", get(pages::index))
        .route("/dashboard", get(pages::dashboard))
        .route("/mp", get(mp_page::show).post(mp_page::act))
        .route("/mp/card/delete", post(mp_page::delete_card))
        .route("/dashboard/pay", post(controls::pay))
        .route("/dashboard/notifications", post(controls::notifications))
        // The shim and its stylesheet are what a phone downloads on every page (in sandbox mode
        // the JS-SDK's stand-in): compressed when the browser asks, as WeChat's res.wx.qq.com
        // serves its jweixin.js (25 KB plain would be the page's third-largest download).
        .route(
            "/jweixin.js",
            get(jsapi::script).layer(tower_http::compression::CompressionLayer::new()),
        )
        .route(
            "/jweixin.css",
            get(jsapi::stylesheet).layer(tower_http::compression::CompressionLayer::new()),
        )
        .route("/jsapi/config", post(jsapi::config))
        .route("/jsapi/pay/prepare", post(jsapi::pay_prepare))
        .route("/jsapi/pay/confirm", post(jsapi::pay_confirm))
        .route("/jsapi/pay/cancel", post(jsapi::pay_cancel))
        .route("/jsapi/card/add/prepare", post(card::add_prepare))
        .route("/jsapi/card/add/confirm", post(card::add_confirm))
        .route("/jsapi/card/add/cancel", post(card::add_cancel))
        .route("/jsapi/card/choose/prepare", post(card::choose_prepare))
        .route("/jsapi/card/choose/pick", post(card::choose_pick))
        .route("/dashboard/cards/verify", post(card::dashboard_verify))
        .route("/api/card/create", post(card::create))
        .route("/api/card/qrcode/create", post(card::qrcode_create))
        .route("/api/card/testwhitelist/set", post(card::testwhitelist_set))
        .route("/api/card/code/decrypt", post(card::code_decrypt))
        .route("/api/card/code/get", post(card::code_get))
        .route("/api/card/code/consume", post(card::code_consume))
        .route("/api/card/delete", post(card::delete))
        .route("/api/card/modifystock", post(card::modifystock))
        .route("/open/connect/oauth2/authorize", get(oauth::authorize))
        .route("/open/connect/oauth2/sandbox_pick", post(oauth::pick))
        .route("/open/connect/oauth2/sandbox_consent", post(oauth::consent))
        .route("/open/connect/oauth2/sandbox_logout", get(oauth::logout))
        .route("/api/sns/oauth2/access_token", get(oauth::access_token))
        .route("/api/sns/oauth2/refresh_token", get(oauth::refresh_token))
        .route("/api/sns/userinfo", get(oauth::userinfo))
        .route("/api/sns/auth", get(oauth::auth))
        .route("/api/cgi-bin/token", get(token::token))
        .route("/api/cgi-bin/stable_token", post(token::stable_token))
        .route("/api/cgi-bin/ticket/getticket", get(token::getticket))
        .route("/api/cgi-bin/menu/create", post(mp_api::menu_create))
        .route("/api/cgi-bin/menu/delete", get(mp_api::menu_delete))
        .route(
            "/api/cgi-bin/get_current_selfmenu_info",
            get(mp_api::menu_info),
        )
        .route("/api/cgi-bin/qrcode/create", post(mp_api::qrcode_create))
        .route(
            "/api/cgi-bin/message/template/send",
            post(mp_api::template_send),
        )
        .route("/pay/pay/unifiedorder", post(pay_v2::unifiedorder))
        .route("/pay/pay/orderquery", post(pay_v2::orderquery))
        .route("/pay/pay/closeorder", post(pay_v2::closeorder))
        .route("/pay/pay/refundquery", post(pay_v2::refundquery))
        .route("/pay/pay/downloadbill", post(bill::v2_downloadbill))
        .route("/pay/secapi/pay/refund", post(pay_v2::refund))
        .route("/pay/v3/pay/transactions/jsapi", post(pay_v3::jsapi))
        .route(
            "/pay/v3/pay/transactions/out-trade-no/{no}",
            get(pay_v3::query_by_out_trade_no),
        )
        .route("/pay/v3/pay/transactions/id/{id}", get(pay_v3::query_by_id))
        .route(
            "/pay/v3/pay/transactions/out-trade-no/{no}/close",
            post(pay_v3::close),
        )
        .route("/pay/v3/refund/domestic/refunds", post(pay_v3::refund))
        .route(
            "/pay/v3/refund/domestic/refunds/{no}",
            get(pay_v3::refund_query),
        )
        .route("/pay/v3/certificates", get(pay_v3::certificates))
        .route("/pay/v3/bill/tradebill", get(bill::v3_tradebill))
        .route("/pay/v3/billdownload/file", get(bill::v3_billdownload))
        .layer(DefaultBodyLimit::max(1024 * 1024))
        .with_state(sandbox)
}
