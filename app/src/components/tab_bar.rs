use leptos::prelude::*;
use leptos_router::hooks::use_location;

/// The bottom navigation: 首页 / 购物车 / 我的订单.
#[component]
pub fn TabBar() -> impl IntoView {
    let location = use_location();
    let active = move |prefix: &'static str| {
        let path = location.pathname.get();
        if prefix == "/" {
            path == "/" || path.starts_with("/product")
        } else {
            path.starts_with(prefix)
        }
    };
    view! {
        <nav class="tabbar" aria-label="主导航">
            <a href="/" class:active=move || active("/")>
                <span class="tab-icon">"🏠"</span>"首页"
            </a>
            <a href="/cart" class:active=move || active("/cart")>
                <span class="tab-icon">"🛒"</span>"购物车"
            </a>
            <a href="/orders" class:active=move || active("/orders")>
                <span class="tab-icon">"📋"</span>"我的订单"
            </a>
        </nav>
    }
}
