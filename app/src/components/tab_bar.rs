use leptos::prelude::*;
use leptos_router::hooks::use_location;

/// The bottom navigation: 首页 / 购物车 / 我的 (which holds 我的订单).
#[component]
pub fn TabBar() -> impl IntoView {
    let location = use_location();
    let active = move |prefix: &'static str| {
        let path = location.pathname.get();
        if prefix == "/" {
            path == "/" || path.starts_with("/product")
        } else if prefix == "/me" {
            path == "/me" || path.starts_with("/orders")
        } else {
            path.starts_with(prefix)
        }
    };
    view! {
        <nav class="tabbar" aria-label="主导航">
            <a href="/" class:active=move || active("/")>
                <svg class="tab-icon" viewBox="0 0 24 24" aria-hidden="true"><path d="M3 11l9-7 9 7v9a1 1 0 0 1-1 1h-5v-6h-6v6H4a1 1 0 0 1-1-1z"/></svg>"首页"
            </a>
            <a href="/cart" class:active=move || active("/cart")>
                <svg class="tab-icon" viewBox="0 0 24 24" aria-hidden="true"><path d="M3 4h2l2.4 11.2a1 1 0 0 0 1 .8h9.2a1 1 0 0 0 1-.8L21 8H6.2"/><circle cx="9" cy="20" r="1.5"/><circle cx="18" cy="20" r="1.5"/></svg>"购物车"
            </a>
            // A full page load, not client-side routing: the server may first send the shopper
            // to WeChat for the profile (snsapi_userinfo), see server/src/oauth.rs.
            <a href="/me" rel="external" class:active=move || active("/me")>
                <svg class="tab-icon" viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="8" r="4"/><path d="M4 21c0-4.4 3.6-7 8-7s8 2.6 8 7"/></svg>"我的"
            </a>
        </nav>
    }
}
