//! The port the server implements for the API (server side only).
//!
//! `api.rs` holds the `#[server]` functions; each takes this port from Leptos context and calls
//! one method. The server crate provides an `Arc<dyn ShopPort>` (SQL storage, WeChat) — so the
//! UI crate never sees a database, an HTTP client or a secret.

use crate::error::ApiError;
use crate::model::*;
use async_trait::async_trait;
use std::sync::Arc;

/// The browser's session, as resolved by the server's session middleware from a signed cookie.
/// Opaque to the UI: the server maps it to a shopper (and, with WeChat, to an openid).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionId(pub String);

/// The client's address as the server's gate worked it out (the peer, or the right-most
/// `X-Forwarded-For` entry that is not a trusted proxy): never a header the client wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIp(pub std::net::IpAddr);

/// The error a plain (JavaScript-free) form post came back with, for the page it returned to:
/// the server reads it from a short-lived cookie it signed for this session and this page
/// (never from the URL, where anyone could write one) and puts it in the page request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormError {
    /// The endpoint the form posted to, `/api/<name>`.
    pub endpoint: String,
    /// The error as Leptos encodes it (URL-safe base64 of the error's JSON).
    pub encoded: String,
}

pub type Result<T> = std::result::Result<T, ApiError>;

#[async_trait]
pub trait ShopPort: Send + Sync + 'static {
    async fn categories(&self) -> Result<Vec<Category>>;
    async fn list_products(&self) -> Result<Vec<ProductSummary>>;
    async fn product(&self, product_id: i64) -> Result<ProductDetail>;

    async fn cart(&self, session: &SessionId) -> Result<Cart>;
    /// Adds `quantity` to the line of `sku_id` (creating it), capped by stock.
    async fn add_to_cart(&self, session: &SessionId, sku_id: i64, quantity: i64) -> Result<Cart>;
    /// Sets a line's quantity; 0 removes the line.
    async fn set_cart_quantity(
        &self,
        session: &SessionId,
        sku_id: i64,
        quantity: i64,
    ) -> Result<Cart>;
    async fn set_cart_selected(
        &self,
        session: &SessionId,
        sku_id: i64,
        selected: bool,
    ) -> Result<Cart>;

    /// Prices a would-be order from the database (checkout shows this); fails like
    /// `create_order` would on unknown SKUs, bad quantities or missing stock, or a coupon that
    /// does not apply (409 `coupon_not_applicable`, with why).
    async fn quote(
        &self,
        session: &SessionId,
        items: &[OrderItemInput],
        coupon: Option<&CouponInput>,
    ) -> Result<Quote>;

    /// The coupons the shop offers now (领取).
    async fn coupon_offers(&self) -> Result<Vec<CouponOffer>>;
    /// The signed `cardExt` for `wx.addCard` of one coupon on offer.
    async fn card_ext(&self, session: &SessionId, card_id: &str) -> Result<CardExtView>;
    /// The signed fields of `wx.chooseCard` (any of the shop's coupons).
    async fn choose_card_config(&self, session: &SessionId) -> Result<ChooseCardConfig>;

    async fn addresses(&self, session: &SessionId) -> Result<Vec<Address>>;

    /// Creates an unpaid order from explicit items, reserving stock. Prices come from the
    /// database. When `clear_cart` is set, the ordered SKUs leave the shopper's cart.
    async fn create_order(
        &self,
        session: &SessionId,
        order: NewOrder,
        clear_cart: bool,
    ) -> Result<CreatedOrder>;
    /// One of the shopper's saved addresses.
    async fn address(&self, session: &SessionId, address_id: i64) -> Result<Address>;
    async fn order(&self, session: &SessionId, order_id: i64) -> Result<Order>;
    async fn order_status(&self, session: &SessionId, order_id: i64) -> Result<OrderStatusView>;
    async fn orders(
        &self,
        session: &SessionId,
        status: Option<OrderFilter>,
    ) -> Result<Vec<OrderSummary>>;
    /// Cancels an unpaid order and releases its stock — after making sure WeChat has not been
    /// paid for it (409 `invalid_state` and the order shows paid if it has) and closing it there.
    async fn cancel_order(&self, session: &SessionId, order_id: i64) -> Result<OrderStatusView>;
    /// 确认收货: `shipped → completed`, by the order's shopper.
    async fn confirm_receipt(&self, session: &SessionId, order_id: i64) -> Result<OrderStatusView>;
    /// 申请售后 on one of the shopper's paid or shipped orders: one open request per order.
    async fn request_aftersale(
        &self,
        session: &SessionId,
        order_id: i64,
        kind: AftersaleKind,
        reason: &str,
        note: &str,
    ) -> Result<AftersaleView>;

    /// The 我的 page: WeChat profile (if shared) and order counts.
    async fn profile(&self, session: &SessionId) -> Result<Profile>;

    /// Signs `wx.config` for a page URL of this shop.
    async fn jssdk_config(&self, url: &str) -> Result<WxConfig>;
    /// The pay parameters for one of the shopper's unpaid orders (prepays at WeChat, or reuses a
    /// still-valid prepay_id). `client_ip` is the shopper's address as seen by the server.
    async fn pay_order(
        &self,
        session: &SessionId,
        order_id: i64,
        client_ip: &str,
    ) -> Result<ChooseWxPay>;
}

pub type SharedShop = Arc<dyn ShopPort>;
