//! The shop's API: every `#[server]` function, at a fixed endpoint under `/api/`.
//!
//! - Reads (`list_products`, `get_order`, …) take JSON (`input = Json`) and answer JSON, errors as
//!   [`ApiError`] JSON with a real HTTP status. This is the public API (see the README).
//! - Actions a page offers as a button (加入购物车, 立即购买, the cart's edits, 提交订单, 取消订单,
//!   确认收货, 申请售后) are one function each, wired once: the page's plain
//!   `<form method="post" action="/api/<name>">` posts to it, and once the page's island runs,
//!   the same button calls the same function. Their input is [`FormOrJson`]: a URL-encoded form
//!   from a browser, JSON from the island and from other programs. A form post (a browser,
//!   `Accept: text/html`) is answered with a redirect to the next page ([`ssr::next_page`]); on
//!   error, Leptos redirects back to the form's page with the error, which the server moves from
//!   `?__err=` into a signed cookie for that session and page (see `ServerFormError`).
//!
//! Each body is a few lines: take the server's port from context and call it.

use crate::error::ApiError;
use crate::model::*;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;

pub use form_or_json::FormOrJson;

/// The input encoding of the shop's actions: JSON or a URL-encoded form, by `Content-Type`.
pub mod form_or_json {
    use http::Method;
    use leptos::server_fn::codec::{Encoding, FromReq, IntoReq, Json, PostUrl};
    use leptos::server_fn::error::FromServerFnError;
    use leptos::server_fn::request::{ClientReq, Req};
    use leptos::server_fn::ContentType;

    /// Decodes a request as a URL-encoded form (a page's plain `<form>`, with or without
    /// JavaScript) when its `Content-Type` says so, as JSON otherwise; the shop's own client (an
    /// island) sends JSON. The server's guard admits only these two types under `/api/`.
    pub struct FormOrJson;

    impl ContentType for FormOrJson {
        const CONTENT_TYPE: &'static str = "application/json";
    }

    impl Encoding for FormOrJson {
        const METHOD: Method = Method::POST;
    }

    /// Whether a `Content-Type` is a URL-encoded form.
    pub fn is_form(content_type: Option<&str>) -> bool {
        content_type
            .and_then(|t| t.split(';').next())
            .is_some_and(|m| m.trim().eq_ignore_ascii_case(PostUrl::CONTENT_TYPE))
    }

    /// `FormOrJson` for server-function argument types (a blanket impl over every type is not
    /// allowed outside server_fn: the orphan rule), and [`FORM_ENDPOINTS`], their paths.
    macro_rules! form_or_json {
        ($($t:ty),* $(,)?) => {
            /// The endpoints that take a URL-encoded form besides JSON; every other `/api/`
            /// write takes JSON only (the server's guard).
            pub const FORM_ENDPOINTS: &[&str] = &[$(<$t as leptos::server_fn::ServerFn>::PATH),*];
            $(
            impl<E, Request> IntoReq<FormOrJson, Request, E> for $t
            where
                Request: ClientReq<E>,
                E: FromServerFnError,
            {
                fn into_req(self, path: &str, accepts: &str) -> Result<Request, E> {
                    <Self as IntoReq<Json, Request, E>>::into_req(self, path, accepts)
                }
            }

            impl<E, Request> FromReq<FormOrJson, Request, E> for $t
            where
                Request: Req<E> + Send + 'static,
                E: FromServerFnError,
            {
                async fn from_req(req: Request) -> Result<Self, E> {
                    if is_form(req.to_content_type().as_deref()) {
                        <Self as FromReq<PostUrl, Request, E>>::from_req(req).await
                    } else {
                        <Self as FromReq<Json, Request, E>>::from_req(req).await
                    }
                }
            }
        )*};
    }

    form_or_json!(
        super::AddToCart,
        super::BuyNow,
        super::UpdateCart,
        super::SelectCartLine,
        super::Checkout,
        super::ConfirmReceipt,
        super::RequestAftersale,
        super::CancelOrder,
    );
}

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

    /// A plain form post (a browser that accepts HTML, as Leptos tells them apart) is answered
    /// with a redirect (`302 Found`, as Leptos answers forms) to `path`; the island's and other programs' JSON calls get the
    /// function's JSON answer, nothing else.
    pub fn next_page(path: &str) {
        let parts = use_context::<http::request::Parts>();
        let res = use_context::<leptos_axum::ResponseOptions>();
        if let (Some(parts), Some(res)) = (parts, res) {
            let html = parts
                .headers
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/html"));
            if let (true, Ok(location)) = (html, http::HeaderValue::from_str(path)) {
                res.insert_header(http::header::LOCATION, location);
                res.set_status(http::StatusCode::FOUND);
            }
        }
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

/// Runs an action for its outcome only: in the browser, the request the server function's own
/// client sends (JSON to its endpoint, an error answer decoded as [`ApiError`]), with the success
/// answer's body left undecoded. For an island that only needs to know the action succeeded
/// (加入购物车 answers the whole cart, 立即购买 a quote): each answer type's decoder is code the
/// island's wasm would otherwise carry (issue 13: the product page's first load). On the server
/// (where islands render but never act) it runs the function's body.
pub async fn run_for_outcome<F>(call: F) -> Result<(), ApiError>
where
    F: leptos::server_fn::ServerFn<Error = ApiError>,
    F: ForOutcome,
{
    #[cfg(feature = "hydrate")]
    {
        use leptos::server_fn::client::{browser::BrowserClient, Client};
        use leptos::server_fn::codec::IntoReq;
        use leptos::server_fn::error::FromServerFnError;
        use leptos::server_fn::response::ClientRes;
        use leptos::server_fn::ContentType;
        let req = <F as IntoReq<FormOrJson, _, ApiError>>::into_req(
            call,
            F::PATH,
            <Json as ContentType>::CONTENT_TYPE,
        )?;
        let res = <BrowserClient as Client<ApiError>>::send(req).await?;
        if (400..=599).contains(&ClientRes::<ApiError>::status(&res)) {
            let body = ClientRes::<ApiError>::try_into_bytes(res).await?;
            return Err(ApiError::de(body));
        }
        Ok(())
    }
    #[cfg(not(feature = "hydrate"))]
    {
        call.run_body().await.map(|_| ())
    }
}

/// What [`run_for_outcome`] needs of an action's argument type: in the browser, that it builds
/// the action's request.
#[cfg(feature = "hydrate")]
pub trait ForOutcome:
    leptos::server_fn::codec::IntoReq<
    FormOrJson,
    leptos::server_fn::request::browser::BrowserRequest,
    ApiError,
>
{
}
#[cfg(feature = "hydrate")]
impl<T> ForOutcome for T where
    T: leptos::server_fn::codec::IntoReq<
        FormOrJson,
        leptos::server_fn::request::browser::BrowserRequest,
        ApiError,
    >
{
}
/// What [`run_for_outcome`] needs of an action's argument type: on the server, nothing more.
#[cfg(not(feature = "hydrate"))]
pub trait ForOutcome {}
#[cfg(not(feature = "hydrate"))]
impl<T> ForOutcome for T {}

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

/// 加入购物车. A form post goes on to the cart; the island stays on the product page.
#[server(prefix = "/api", endpoint = "add_to_cart", input = FormOrJson)]
pub async fn add_to_cart(sku_id: i64, quantity: i64) -> Result<Cart, ApiError> {
    let cart =
        ssr::with_session(|shop, s| async move { shop.add_to_cart(&s, sku_id, quantity).await })
            .await?;
    ssr::next_page("/cart");
    Ok(cart)
}

/// 立即购买: checks the item can be bought (a quote) and goes on to checkout with it alone; the
/// cart is not touched.
#[server(prefix = "/api", endpoint = "buy_now", input = FormOrJson)]
pub async fn buy_now(sku_id: i64, quantity: i64) -> Result<Quote, ApiError> {
    let item = OrderItemInput { sku_id, quantity };
    let quote =
        ssr::with_session(|shop, s| async move { shop.quote(&s, &[item], None).await }).await?;
    ssr::next_page(&checkout_path(sku_id, quantity));
    Ok(quote)
}

/// The checkout page for 立即购买 of one item.
pub fn checkout_path(sku_id: i64, quantity: i64) -> String {
    format!("/checkout?sku={sku_id}&qty={quantity}")
}

/// Sets a cart line's quantity (0 removes it).
#[server(prefix = "/api", endpoint = "update_cart", input = FormOrJson)]
pub async fn update_cart(sku_id: i64, quantity: i64) -> Result<Cart, ApiError> {
    let cart =
        ssr::with_session(
            |shop, s| async move { shop.set_cart_quantity(&s, sku_id, quantity).await },
        )
        .await?;
    ssr::next_page("/cart");
    Ok(cart)
}

#[server(prefix = "/api", endpoint = "select_cart_line", input = FormOrJson)]
pub async fn select_cart_line(sku_id: i64, selected: bool) -> Result<Cart, ApiError> {
    let cart =
        ssr::with_session(
            |shop, s| async move { shop.set_cart_selected(&s, sku_id, selected).await },
        )
        .await?;
    ssr::next_page("/cart");
    Ok(cart)
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

/// 确认收货.
#[server(prefix = "/api", endpoint = "confirm_receipt", input = FormOrJson)]
pub async fn confirm_receipt(order_id: i64) -> Result<OrderStatusView, ApiError> {
    let view = ssr::with_session(|shop, s| async move { shop.confirm_receipt(&s, order_id).await })
        .await?;
    ssr::next_page(&format!("/orders/{order_id}"));
    Ok(view)
}

/// 申请售后: `{"order_id","kind":"refund_only|return_refund","reason","note"?}`.
#[server(prefix = "/api", endpoint = "request_aftersale", input = FormOrJson)]
pub async fn request_aftersale(
    order_id: i64,
    kind: AftersaleKind,
    reason: String,
    #[server(default)] note: String,
) -> Result<AftersaleView, ApiError> {
    let view = ssr::with_session(|shop, s| async move {
        shop.request_aftersale(&s, order_id, kind, &reason, &note)
            .await
    })
    .await?;
    ssr::next_page(&format!("/orders/{order_id}"));
    Ok(view)
}

/// 取消订单 (an unpaid order; one WeChat was paid for is not cancelled, see the README).
#[server(prefix = "/api", endpoint = "cancel_order", input = FormOrJson)]
pub async fn cancel_order(order_id: i64) -> Result<OrderStatusView, ApiError> {
    let view =
        ssr::with_session(|shop, s| async move { shop.cancel_order(&s, order_id).await }).await?;
    ssr::next_page(&format!("/orders/{order_id}"));
    Ok(view)
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

/// 提交订单 from the checkout page, as its form has it: either `address_id` (a saved address) or
/// the typed fields; with `buy_sku`, the order is that single item (立即购买), otherwise the
/// cart's selected lines, which then leave the cart; `coupon` (the island's 使用优惠券). Other
/// programs that know their items call [`create_order`].
#[server(prefix = "/api", endpoint = "checkout", input = FormOrJson)]
pub async fn checkout(
    #[server(default)] address_id: String,
    #[server(default)] name: String,
    #[server(default)] phone: String,
    #[server(default)] province: String,
    #[server(default)] city: String,
    #[server(default)] detail: String,
    #[server(default)] remark: String,
    #[server(default)] buy_sku: Option<i64>,
    #[server(default)] buy_qty: Option<i64>,
    #[server(default)] coupon: Option<CouponInput>,
) -> Result<CreatedOrder, ApiError> {
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
            coupon,
        };
        shop.create_order(&s, order, from_cart).await
    })
    .await?;
    ssr::next_page(&format!("/orders/{}", created.order_id));
    Ok(created)
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
