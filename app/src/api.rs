//! The JSON API: every `#[server]` function of the shop, at a fixed endpoint under `/api/`.
//!
//! Two kinds live here:
//! - `/api/<name>`: JSON in (`input = Json`), JSON out, errors as [`ApiError`] JSON with a real
//!   HTTP status. This is the public API (see the README) and what the hydrated pages call.
//! - `/api/form/<name>`: URL-encoded form posts, used by the plain HTML forms so the shop works
//!   with JavaScript off. They answer with a redirect (303/302) to the next page; on error,
//!   Leptos redirects back to the form's page with the error, which the server moves from
//!   `?__err=` into a signed cookie for that session and page (see `ServerFormError`).
//!
//! Each body is a few lines: take the server's port from context and call it.

use crate::error::ApiError;
use crate::model::*;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

#[cfg(feature = "ssr")]
pub(crate) mod ssr {
    use crate::error::ApiError;
    use crate::port::{SessionId, SharedShop};
    use leptos::prelude::*;

    pub fn shop() -> Result<SharedShop, ApiError> {
        use_context::<SharedShop>().ok_or_else(ApiError::internal)
    }

    /// The session the server's middleware attached to this request.
    pub fn session() -> Result<SessionId, ApiError> {
        use_context::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<SessionId>().cloned())
            .ok_or_else(|| {
                ApiError::new(
                    crate::error::ErrorCode::Unauthorized,
                    "请开启 Cookie 后重试",
                )
            })
    }

    /// The shopper's IP for WeChat Pay's `spbill_create_ip`, as the server's gate found it
    /// (`WXMALL_TRUSTED_PROXIES`); loopback when there is none (in-process callers).
    pub fn client_ip() -> String {
        use_context::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<crate::port::ClientIp>().cloned())
            .map(|ip| ip.0.to_string())
            .unwrap_or_else(|| "127.0.0.1".to_string())
    }

    /// Runs a port call with the shop and the session. (The server maps an error's `code`
    /// to the answer's HTTP status, see `server::routes::api_error_status`.)
    pub async fn with_session<T, F, Fut>(f: F) -> Result<T, ApiError>
    where
        F: FnOnce(SharedShop, SessionId) -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let shop = shop()?;
        let session = session()?;
        f(shop, session).await
    }
}

// ---------------------------------------------------------------- JSON API

#[server(prefix = "/api", endpoint = "list_products", input = Json)]
pub async fn list_products() -> Result<Vec<ProductSummary>, ApiError> {
    ssr::shop()?.list_products().await
}

#[server(prefix = "/api", endpoint = "list_categories", input = Json)]
pub async fn list_categories() -> Result<Vec<Category>, ApiError> {
    ssr::shop()?.categories().await
}

#[server(prefix = "/api", endpoint = "get_product", input = Json)]
pub async fn get_product(product_id: i64) -> Result<ProductDetail, ApiError> {
    ssr::shop()?.product(product_id).await
}

#[server(prefix = "/api", endpoint = "get_cart", input = Json)]
pub async fn get_cart() -> Result<Cart, ApiError> {
    ssr::with_session(|shop, s| async move { shop.cart(&s).await }).await
}

#[server(prefix = "/api", endpoint = "add_to_cart", input = Json)]
pub async fn add_to_cart(sku_id: i64, quantity: i64) -> Result<Cart, ApiError> {
    ssr::with_session(|shop, s| async move { shop.add_to_cart(&s, sku_id, quantity).await }).await
}

/// Sets a cart line's quantity (0 removes it).
#[server(prefix = "/api", endpoint = "update_cart", input = Json)]
pub async fn update_cart(sku_id: i64, quantity: i64) -> Result<Cart, ApiError> {
    ssr::with_session(|shop, s| async move { shop.set_cart_quantity(&s, sku_id, quantity).await })
        .await
}

#[server(prefix = "/api", endpoint = "select_cart_line", input = Json)]
pub async fn select_cart_line(sku_id: i64, selected: bool) -> Result<Cart, ApiError> {
    ssr::with_session(|shop, s| async move { shop.set_cart_selected(&s, sku_id, selected).await })
        .await
}

/// Prices a would-be order (checkout's summary) from the database.
/// With `coupon` (chosen with `wx.chooseCard`), the discount is checked at WeChat and applied.
#[server(prefix = "/api", endpoint = "quote_order", input = Json)]
pub async fn quote_order(
    items: Vec<OrderItemInput>,
    #[server(default)] coupon: Option<CouponInput>,
) -> Result<Quote, ApiError> {
    ssr::with_session(|shop, s| async move { shop.quote(&s, &items, coupon.as_ref()).await }).await
}

/// The coupons on offer (领取 on the home and product pages).
#[server(prefix = "/api", endpoint = "coupon_offers", input = Json)]
pub async fn coupon_offers() -> Result<Vec<CouponOffer>, ApiError> {
    ssr::shop()?.coupon_offers().await
}

/// `{"card_id"}` → `{"cardId","cardExt"}` for `wx.addCard`.
#[server(prefix = "/api", endpoint = "card_ext", input = Json)]
pub async fn card_ext(card_id: String) -> Result<CardExtView, ApiError> {
    ssr::with_session(|shop, s| async move { shop.card_ext(&s, &card_id).await }).await
}

/// `{}` → the signed fields of `wx.chooseCard`.
#[server(prefix = "/api", endpoint = "choose_card_config", input = Json)]
pub async fn choose_card_params() -> Result<ChooseCardConfig, ApiError> {
    ssr::with_session(|shop, s| async move { shop.choose_card_config(&s).await }).await
}

#[server(prefix = "/api", endpoint = "list_addresses", input = Json)]
pub async fn list_addresses() -> Result<Vec<Address>, ApiError> {
    ssr::with_session(|shop, s| async move { shop.addresses(&s).await }).await
}

/// Creates an unpaid order. Prices and the total come from the database, never from the client.
/// With `from_cart`, the ordered SKUs leave the cart.
#[server(prefix = "/api", endpoint = "create_order", input = Json)]
pub async fn create_order(
    items: Vec<OrderItemInput>,
    address: AddressInput,
    #[server(default)] remark: String,
    #[server(default)] from_cart: bool,
    #[server(default)] coupon: Option<CouponInput>,
) -> Result<CreatedOrder, ApiError> {
    let order = NewOrder {
        items,
        address,
        remark,
        coupon,
    };
    ssr::with_session(|shop, s| async move { shop.create_order(&s, order, from_cart).await }).await
}

#[server(prefix = "/api", endpoint = "order_status", input = Json)]
pub async fn get_order_status(order_id: i64) -> Result<OrderStatusView, ApiError> {
    ssr::with_session(|shop, s| async move { shop.order_status(&s, order_id).await }).await
}

#[server(prefix = "/api", endpoint = "get_order", input = Json)]
pub async fn get_order(order_id: i64) -> Result<Order, ApiError> {
    ssr::with_session(|shop, s| async move { shop.order(&s, order_id).await }).await
}

#[server(prefix = "/api", endpoint = "list_orders", input = Json)]
pub async fn list_orders(
    #[server(default)] status: Option<OrderFilter>,
) -> Result<Vec<OrderSummary>, ApiError> {
    ssr::with_session(|shop, s| async move { shop.orders(&s, status).await }).await
}

#[server(prefix = "/api", endpoint = "get_profile", input = Json)]
pub async fn get_profile() -> Result<Profile, ApiError> {
    ssr::with_session(|shop, s| async move { shop.profile(&s).await }).await
}

#[server(prefix = "/api", endpoint = "confirm_receipt", input = Json)]
pub async fn confirm_receipt(order_id: i64) -> Result<OrderStatusView, ApiError> {
    ssr::with_session(|shop, s| async move { shop.confirm_receipt(&s, order_id).await }).await
}

/// 申请售后: `{"order_id","kind":"refund_only|return_refund","reason","note"?}`.
#[server(prefix = "/api", endpoint = "request_aftersale", input = Json)]
pub async fn request_aftersale(
    order_id: i64,
    kind: AftersaleKind,
    reason: String,
    #[server(default)] note: String,
) -> Result<AftersaleView, ApiError> {
    ssr::with_session(|shop, s| async move {
        shop.request_aftersale(&s, order_id, kind, &reason, &note)
            .await
    })
    .await
}

#[server(prefix = "/api", endpoint = "cancel_order", input = Json)]
pub async fn cancel_order(order_id: i64) -> Result<OrderStatusView, ApiError> {
    ssr::with_session(|shop, s| async move { shop.cancel_order(&s, order_id).await }).await
}

/// Signs `wx.config` for `url` (the page's URL without `#…`; it must be one of the shop's pages).
#[server(prefix = "/api", endpoint = "jssdk_config", input = Json)]
pub async fn sign_jssdk_config(url: String) -> Result<WxConfig, ApiError> {
    ssr::shop()?.jssdk_config(&url).await
}

/// The parameters for `wx.chooseWXPay` / `getBrandWCPayRequest` for one of the shopper's unpaid
/// orders. Amount and description come from the database.
#[server(prefix = "/api", endpoint = "pay_order", input = Json)]
pub async fn pay_order(order_id: i64) -> Result<ChooseWxPay, ApiError> {
    let ip = ssr::client_ip();
    ssr::with_session(|shop, s| async move { shop.pay_order(&s, order_id, &ip).await }).await
}

// ------------------------------------------------- plain HTML forms (no JavaScript needed)

#[cfg(feature = "ssr")]
fn go(path: &str) {
    leptos_axum::redirect(path);
}

/// 加入购物车 / 立即购买 from the product page.
#[server(prefix = "/api", endpoint = "form/add_to_cart")]
pub async fn form_add_to_cart(
    sku_id: i64,
    quantity: i64,
    #[server(default)] intent: String,
) -> Result<(), ApiError> {
    if intent == "buy" {
        // Buying now does not touch the cart: checkout carries the single item.
        let item = OrderItemInput { sku_id, quantity };
        ssr::with_session(|shop, s| async move { shop.quote(&s, &[item], None).await }).await?;
        go(&format!("/checkout?sku={sku_id}&qty={quantity}"));
        return Ok(());
    }
    ssr::with_session(|shop, s| async move { shop.add_to_cart(&s, sku_id, quantity).await })
        .await?;
    go("/cart");
    Ok(())
}

/// Quantity change or removal (`quantity = 0`) of a cart line.
#[server(prefix = "/api", endpoint = "form/update_cart")]
pub async fn form_update_cart(sku_id: i64, quantity: i64) -> Result<(), ApiError> {
    ssr::with_session(|shop, s| async move { shop.set_cart_quantity(&s, sku_id, quantity).await })
        .await?;
    go("/cart");
    Ok(())
}

#[server(prefix = "/api", endpoint = "form/select_cart_line")]
pub async fn form_select_cart_line(sku_id: i64, selected: bool) -> Result<(), ApiError> {
    ssr::with_session(|shop, s| async move { shop.set_cart_selected(&s, sku_id, selected).await })
        .await?;
    go("/cart");
    Ok(())
}

/// 提交订单 from the checkout page. Either `address_id` (a saved address) or the typed fields.
/// With `buy_sku`, the order is that single item (立即购买); otherwise the cart's selected lines.
#[server(prefix = "/api", endpoint = "form/checkout")]
pub async fn form_checkout(
    #[server(default)] address_id: String,
    #[server(default)] name: String,
    #[server(default)] phone: String,
    #[server(default)] province: String,
    #[server(default)] city: String,
    #[server(default)] detail: String,
    #[server(default)] remark: String,
    #[server(default)] buy_sku: Option<i64>,
    #[server(default)] buy_qty: Option<i64>,
) -> Result<(), ApiError> {
    let created = ssr::with_session(|shop, s| async move {
        let address = match address_id.parse::<i64>().ok() {
            Some(id) => {
                let a = shop.address(&s, id).await?;
                AddressInput {
                    name: a.name,
                    phone: a.phone,
                    region: a.region,
                    detail: a.detail,
                }
            }
            None => AddressInput {
                name,
                phone,
                region: join_region(&province, &city),
                detail,
            },
        };
        let (items, from_cart) = match buy_sku {
            Some(sku_id) => (
                vec![OrderItemInput {
                    sku_id,
                    quantity: buy_qty.unwrap_or(1),
                }],
                false,
            ),
            None => (selected_items(&shop.cart(&s).await?), true),
        };
        let order = NewOrder {
            items,
            address,
            remark,
            coupon: None,
        };
        shop.create_order(&s, order, from_cart).await
    })
    .await?;
    go(&format!("/orders/{}", created.order_id));
    Ok(())
}

#[server(prefix = "/api", endpoint = "form/confirm_receipt")]
pub async fn form_confirm_receipt(order_id: i64) -> Result<(), ApiError> {
    ssr::with_session(|shop, s| async move { shop.confirm_receipt(&s, order_id).await }).await?;
    go(&format!("/orders/{order_id}"));
    Ok(())
}

#[server(prefix = "/api", endpoint = "form/request_aftersale")]
pub async fn form_request_aftersale(
    order_id: i64,
    kind: AftersaleKind,
    reason: String,
    #[server(default)] note: String,
) -> Result<(), ApiError> {
    ssr::with_session(|shop, s| async move {
        shop.request_aftersale(&s, order_id, kind, &reason, &note)
            .await
    })
    .await?;
    go(&format!("/orders/{order_id}"));
    Ok(())
}

#[server(prefix = "/api", endpoint = "form/cancel_order")]
pub async fn form_cancel_order(order_id: i64) -> Result<(), ApiError> {
    ssr::with_session(|shop, s| async move { shop.cancel_order(&s, order_id).await }).await?;
    go(&format!("/orders/{order_id}"));
    Ok(())
}

/// The `region` string stored with an address: province and the city/district part.
pub fn join_region(province: &str, city: &str) -> String {
    [province.trim(), city.trim()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The order items for checking out a cart: its selected lines.
pub fn selected_items(cart: &Cart) -> Vec<OrderItemInput> {
    cart.lines
        .iter()
        .filter(|l| l.selected)
        .map(|l| OrderItemInput {
            sku_id: l.sku_id,
            quantity: l.quantity,
        })
        .collect()
}
