//! wxmall's UI: the mall and checkout pages, rendered on the server; only the interactive parts
//! (`#[island]`s) are hydrated to wasm (Leptos's islands mode).
//!
//! - `model` / `error`: types that cross the wire (the JSON API's shapes).
//! - `api`: the `#[server]` functions (the JSON API and the plain-form endpoints).
//! - `port` (server only): the trait the server implements behind `api`.
//! - `pages` / `components`: the views. `#[component]`s run on the server only; `#[island]`s
//!   (the SKU form, the cart, checkout, the order's pay controls, coupon 领取, share cards) are
//!   rendered there too, with their props serialised into the page, and hydrated in the browser.
//!   Navigation is plain page loads.

#![recursion_limit = "256"]

pub mod api;
pub mod components;
pub mod error;
pub mod model;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod port;
#[cfg(feature = "hydrate")]
pub mod wx;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};

/// The HTML document around the app (server side).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let env = components::wx_env();
    let jssdk = env.jssdk_url.clone();
    #[cfg(feature = "ssr")]
    set_content_security_policy(&jssdk);
    view! {
        <!DOCTYPE html>
        <html lang="zh-CN">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover" />
                <meta name="format-detection" content="telephone=no" />
                <meta name="theme-color" content="#07c160" />
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                <meta name="wxmall-jssdk" content=env.jssdk_url.clone() />
                <meta name="wxmall-sandbox" content=if env.sandbox { "1" } else { "0" } />
                <HashedStylesheet options=options.clone() id="leptos" />
                // The JS-SDK (WeChat's, or the sandbox's shim): its URL comes from the server.
                {(!jssdk.is_empty()).then(|| view! { <script src=jssdk defer></script> })}
                <HydrationScripts options islands=true />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The page's `Content-Security-Policy`: scripts only from the shop itself and WeChat's JS-SDK
/// host, inline scripts only with this render's nonce (Leptos puts it on its hydration and
/// resource scripts), wasm compiled from the shop's own bundle, no plugins, no framing, forms
/// posting only to the shop. Images may come from https (WeChat avatars) and `data:`.
#[cfg(feature = "ssr")]
pub fn content_security_policy(nonce: &str, jssdk_url: &str) -> String {
    let jssdk_host = jssdk_url
        .strip_prefix("https://")
        .and_then(|rest| rest.split('/').next())
        .map(|host| format!(" https://{host}"))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'{jssdk_host}; \
         style-src 'self'; img-src 'self' data: https:; connect-src 'self'; font-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

#[cfg(feature = "ssr")]
fn set_content_security_policy(jssdk_url: &str) {
    let (Some(nonce), Some(res)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    if let Ok(v) = http::HeaderValue::from_str(&content_security_policy(&nonce, jssdk_url)) {
        res.insert_header(http::header::CONTENT_SECURITY_POLICY, v);
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    #[cfg(feature = "ssr")]
    components::lazy_island::provide();
    view! {
        <Title formatter=|t: String| if t.is_empty() { "wxmall".to_string() } else { format!("{t} · wxmall") } />
        <Router>
            <components::SandboxBanner />
            <main class="page">
                <Routes fallback=pages::not_found::NotFound>
                    <Route path=path!("/") view=pages::home::HomePage ssr=SsrMode::Async />
                    <Route path=path!("/product/:id") view=pages::product::ProductPage ssr=SsrMode::Async />
                    <Route path=path!("/cart") view=pages::cart::CartPage ssr=SsrMode::Async />
                    <Route path=path!("/checkout") view=pages::checkout::CheckoutPage ssr=SsrMode::Async />
                    <Route path=path!("/orders") view=pages::orders::OrdersPage ssr=SsrMode::Async />
                    <Route path=path!("/orders/:id") view=pages::order::OrderPage ssr=SsrMode::Async />
                    <Route path=path!("/me") view=pages::me::MePage ssr=SsrMode::Async />
                </Routes>
            </main>
            <components::TabBar />
        </Router>
    }
}

/// The wasm's entry, called by Leptos's island script before it hydrates the page's islands:
/// the reactive root they share (with [`components::WxReady`] in its context), then `wx.config`.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // iOS WeChat signs wx.config against this URL for the page's whole life.
    wx::remember_landing_url();
    leptos::mount::hydrate_islands();
    components::configure_wx();
    // Controls that only work with JavaScript (`.js-only`) are shown once every island of the
    // page is hydrated (`components::lazy_island`: each is a wasm file of its own, fetched and
    // hydrated after this function returns); a page without islands is hydrated now.
    components::lazy_island::main_started();
}
