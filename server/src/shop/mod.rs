//! The shop's domain and storage: the implementation of the UI's [`ShopPort`].
//!
//! Every price and total is read from the database and kept in integer fen. Stock is
//! reserved by a conditional `UPDATE … WHERE stock >= n` inside the order's transaction,
//! so two shoppers can never buy the same last item.

pub mod aftersales;
mod cart;
mod catalog;
pub mod catalog_cache;
pub mod coupons;
pub mod demo;
pub(crate) mod orders;
pub mod sessions;

use crate::db::Db;
use app::error::{ApiError, ErrorCode};
use app::model::*;
use app::port::{Result, SessionId, ShopPort};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

pub use orders::OrderNo;

/// How the shop behaves, independent of where its data lives.
#[derive(Clone, Debug)]
pub struct ShopSettings {
    /// How long an unpaid order keeps its stock reservation.
    pub order_ttl: Duration,
    /// How many unpaid orders (stock reservations) one shopper may hold at once.
    pub max_unpaid_orders: i64,
    /// Orders need a WeChat identity (an openid bound by OAuth): on with real credentials,
    /// so that nobody can reserve the stock without one.
    pub require_wechat_identity: bool,
    /// `order_status` asks WeChat about one order at most this often (the page polls it; a
    /// loop must not burn the merchant's WeChat quota).
    pub status_query_interval: Duration,
}

impl Default for ShopSettings {
    fn default() -> Self {
        Self {
            order_ttl: Duration::from_secs(30 * 60),
            max_unpaid_orders: 5,
            require_wechat_identity: false,
            status_query_interval: Duration::from_secs(3),
        }
    }
}

#[derive(Clone)]
pub struct SqlShop {
    pool: Db,
    settings: ShopSettings,
    wechat: Option<Arc<crate::wx::Wechat>>,
    payments: Option<crate::payments::Payments>,
    /// When `order_status` last asked WeChat about each order.
    last_status_query: Arc<std::sync::Mutex<std::collections::HashMap<i64, std::time::Instant>>>,
    /// What shoppers see of the catalogue, current to the database's last change.
    catalogue: catalog_cache::CatalogueCache,
}

impl SqlShop {
    pub fn new(pool: Db, settings: ShopSettings) -> Self {
        Self {
            pool,
            settings,
            wechat: None,
            payments: None,
            last_status_query: Default::default(),
            catalogue: catalog_cache::CatalogueCache::new(),
        }
    }

    /// The in-memory catalogue (tests and benchmarks count its loads).
    pub fn catalogue(&self) -> &catalog_cache::CatalogueCache {
        &self.catalogue
    }

    /// Whether `order_status` may ask WeChat about `order_id` now (and notes that it does).
    fn may_query(&self, order_id: i64) -> bool {
        let now = std::time::Instant::now();
        let every = self.settings.status_query_interval;
        let mut last = self
            .last_status_query
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if last.len() > 10_000 {
            last.retain(|_, t| now.duration_since(*t) < every);
        }
        match last.get(&order_id) {
            Some(t) if now.duration_since(*t) < every => false,
            _ => {
                last.insert(order_id, now);
                true
            }
        }
    }

    /// Signs JS-SDK configurations and pays through WeChat (without them, paying answers
    /// `payment_unavailable`).
    pub fn with_wechat(
        mut self,
        wechat: Arc<crate::wx::Wechat>,
        payments: crate::payments::Payments,
    ) -> Self {
        self.wechat = Some(wechat);
        self.payments = Some(payments);
        self
    }

    fn payments(&self) -> Result<&crate::payments::Payments> {
        self.payments.as_ref().ok_or_else(|| {
            ApiError::new(
                ErrorCode::PaymentUnavailable,
                "微信支付尚未开通，请联系商家",
            )
        })
    }

    fn wechat(&self) -> Result<&crate::wx::Wechat> {
        self.wechat.as_deref().ok_or_else(|| {
            ApiError::new(
                ErrorCode::PaymentUnavailable,
                "微信支付尚未开通，请联系商家",
            )
        })
    }

    pub fn pool(&self) -> &Db {
        &self.pool
    }

    /// [`coupons::check`] for the session's shopper.
    async fn check_coupon(
        &self,
        session: &SessionId,
        input: &CouponInput,
        goods_fen: i64,
    ) -> Result<coupons::Checked> {
        let wx = self.wechat()?;
        let openid = match sessions::user(&self.pool, session).await? {
            Some(user) => coupons::openid_of(&self.pool, user).await?,
            None => None,
        };
        coupons::check(&self.pool, &wx.cards, openid.as_deref(), input, goods_fen).await
    }
}

/// Current time as unix seconds.
pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Logs a storage failure with its details and gives the client a generic error:
/// database messages never leave the server.
pub(crate) fn db_error(e: sqlx::Error) -> ApiError {
    tracing::error!(error = %e, "database error");
    ApiError::internal()
}

pub(crate) fn out_of_stock(name: &str, left: i64) -> ApiError {
    let msg = if left <= 0 {
        format!("{name} 已售罄")
    } else {
        format!("{name} 库存不足，仅剩 {left} 件")
    };
    ApiError::new(ErrorCode::OutOfStock, msg)
}

pub(crate) fn check_quantity(quantity: i64) -> Result<()> {
    if (1..=MAX_LINE_QUANTITY).contains(&quantity) {
        Ok(())
    } else {
        Err(ApiError::validation(vec![FieldError {
            field: "quantity".into(),
            message: format!("数量须在 1 到 {MAX_LINE_QUANTITY} 之间"),
        }]))
    }
}

#[async_trait]
impl ShopPort for SqlShop {
    async fn categories(&self) -> Result<Vec<Category>> {
        self.catalogue.categories(&self.pool).await
    }

    async fn list_products(&self) -> Result<Vec<ProductSummary>> {
        self.catalogue.list_products(&self.pool).await
    }

    async fn product(&self, product_id: i64) -> Result<ProductDetail> {
        self.catalogue.product(&self.pool, product_id).await
    }

    async fn cart(&self, session: &SessionId) -> Result<Cart> {
        match sessions::user(&self.pool, session).await? {
            Some(user) => cart::load(&self.pool, user).await,
            None => Ok(Cart::default()),
        }
    }

    async fn add_to_cart(&self, session: &SessionId, sku_id: i64, quantity: i64) -> Result<Cart> {
        check_quantity(quantity)?;
        let user = sessions::user_or_create(&self.pool, session).await?;
        cart::add(&self.pool, user, sku_id, quantity).await?;
        cart::load(&self.pool, user).await
    }

    async fn set_cart_quantity(
        &self,
        session: &SessionId,
        sku_id: i64,
        quantity: i64,
    ) -> Result<Cart> {
        if quantity != 0 {
            check_quantity(quantity)?;
        }
        let user = sessions::user_or_create(&self.pool, session).await?;
        cart::set_quantity(&self.pool, user, sku_id, quantity).await?;
        cart::load(&self.pool, user).await
    }

    async fn set_cart_selected(
        &self,
        session: &SessionId,
        sku_id: i64,
        selected: bool,
    ) -> Result<Cart> {
        let user = sessions::user_or_create(&self.pool, session).await?;
        cart::set_selected(&self.pool, user, sku_id, selected).await?;
        cart::load(&self.pool, user).await
    }

    async fn quote(
        &self,
        session: &SessionId,
        items: &[OrderItemInput],
        coupon: Option<&CouponInput>,
    ) -> Result<Quote> {
        let mut quote = orders::quote(&self.pool, items).await?;
        if let Some(input) = coupon {
            let checked = self.check_coupon(session, input, quote.total_fen).await?;
            quote.total_fen -= checked.discount_fen;
            quote.discount_fen = checked.discount_fen;
            quote.coupon = Some(checked.applied());
        }
        Ok(quote)
    }

    async fn coupon_offers(&self) -> Result<Vec<CouponOffer>> {
        self.catalogue.coupon_offers(&self.pool).await
    }

    async fn card_ext(&self, session: &SessionId, card_id: &str) -> Result<CardExtView> {
        let wx = self.wechat()?;
        let openid = match sessions::user(&self.pool, session).await? {
            Some(user) => coupons::openid_of(&self.pool, user).await?,
            None => None,
        };
        coupons::card_ext(&self.pool, &wx.cards, openid.as_deref(), card_id).await
    }

    async fn choose_card_config(&self, _session: &SessionId) -> Result<ChooseCardConfig> {
        let wx = self.wechat()?;
        coupons::choose_card_config(&wx.cards, &wx.appid).await
    }

    async fn addresses(&self, session: &SessionId) -> Result<Vec<Address>> {
        match sessions::user(&self.pool, session).await? {
            Some(user) => orders::addresses(&self.pool, user).await,
            None => Ok(Vec::new()),
        }
    }

    async fn address(&self, session: &SessionId, address_id: i64) -> Result<Address> {
        let user = sessions::user(&self.pool, session).await?;
        let Some(user) = user else {
            return Err(ApiError::not_found("地址"));
        };
        orders::addresses(&self.pool, user)
            .await?
            .into_iter()
            .find(|a| a.id == address_id)
            .ok_or_else(|| ApiError::not_found("地址"))
    }

    async fn create_order(
        &self,
        session: &SessionId,
        order: NewOrder,
        clear_cart: bool,
    ) -> Result<CreatedOrder> {
        if self.settings.require_wechat_identity
            && sessions::identity(&self.pool, session).await?.is_none()
        {
            return Err(ApiError::new(ErrorCode::Unauthorized, "请在微信中打开"));
        }
        let coupon = match &order.coupon {
            Some(input) => {
                let goods = orders::quote(&self.pool, &order.items).await?.total_fen;
                Some(self.check_coupon(session, input, goods).await?)
            }
            None => None,
        };
        let user = sessions::user_or_create(&self.pool, session).await?;
        orders::create(
            &self.pool,
            user,
            order,
            clear_cart,
            &self.settings,
            coupon.as_ref(),
        )
        .await
    }

    async fn order(&self, session: &SessionId, order_id: i64) -> Result<Order> {
        let user = sessions::user(&self.pool, session).await?;
        orders::load(&self.pool, user, order_id).await
    }

    async fn order_status(&self, session: &SessionId, order_id: i64) -> Result<OrderStatusView> {
        let user = sessions::user(&self.pool, session).await?;
        let view = orders::status(&self.pool, user, order_id).await?;
        // Still unpaid but sent to WeChat: the page polls this after 支付, so ask WeChat rather
        // than wait for the notification.
        if view.status == OrderStatus::Unpaid && self.may_query(order_id) {
            if let Some(payments) = &self.payments {
                if let Some(order_no) = orders::prepaid_order_no(&self.pool, order_id).await? {
                    let synced = payments.sync(&order_no).await?;
                    if synced != crate::payments::SyncOutcome::Unpaid {
                        return orders::status(&self.pool, user, order_id).await;
                    }
                }
            }
        }
        Ok(view)
    }

    async fn orders(
        &self,
        session: &SessionId,
        status: Option<OrderFilter>,
    ) -> Result<Vec<OrderSummary>> {
        match sessions::user(&self.pool, session).await? {
            Some(user) => orders::list(&self.pool, user, status).await,
            None => Ok(Vec::new()),
        }
    }

    async fn cancel_order(&self, session: &SessionId, order_id: i64) -> Result<OrderStatusView> {
        let user = sessions::user(&self.pool, session).await?;
        match &self.payments {
            Some(payments) => payments.cancel(user, order_id).await?,
            None => orders::cancel_unprepaid(&self.pool, user, order_id).await?,
        }
        orders::status(&self.pool, user, order_id).await
    }

    async fn confirm_receipt(&self, session: &SessionId, order_id: i64) -> Result<OrderStatusView> {
        let user = sessions::user(&self.pool, session).await?;
        orders::confirm_receipt(&self.pool, user, order_id).await?;
        orders::status(&self.pool, user, order_id).await
    }

    async fn request_aftersale(
        &self,
        session: &SessionId,
        order_id: i64,
        kind: AftersaleKind,
        reason: &str,
        note: &str,
    ) -> Result<AftersaleView> {
        let user = sessions::user(&self.pool, session).await?;
        aftersales::request(&self.pool, user, order_id, kind, reason, note).await
    }

    async fn profile(&self, session: &SessionId) -> Result<Profile> {
        match sessions::profile(&self.pool, session).await? {
            Some((user, mut profile)) => {
                profile.order_counts = orders::counts(&self.pool, user).await?;
                Ok(profile)
            }
            None => Ok(Profile::default()),
        }
    }

    async fn jssdk_config(&self, url: &str) -> Result<WxConfig> {
        let wx = self.wechat()?;
        // Only the shop's own pages: the signature is no oracle for other sites' URLs.
        let own = url
            .strip_prefix(wx.public_url.as_str())
            .is_some_and(|rest| rest.starts_with('/'));
        if !own || url.len() > 2048 {
            return Err(ApiError::validation(vec![FieldError {
                field: "url".into(),
                message: "只能为本站页面签名".into(),
            }]));
        }
        wx.tokens.jssdk_config(url).await.map_err(|e| {
            tracing::error!(error = %e, "jsapi_ticket unavailable");
            ApiError::new(
                ErrorCode::PaymentUnavailable,
                "微信接口暂时不可用，请稍后再试",
            )
        })
    }

    async fn pay_order(
        &self,
        session: &SessionId,
        order_id: i64,
        client_ip: &str,
    ) -> Result<ChooseWxPay> {
        let payments = self.payments()?;
        let user = sessions::user(&self.pool, session).await?;
        Ok(payments.pay_order(user, order_id, client_ip).await?)
    }
}
