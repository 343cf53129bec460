use crate::api::list_orders;
use crate::components::{format_time, ErrorView, PageSkeleton, Price};
use crate::model::OrderFilter;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// 我的订单: the shopper's orders, newest first, filtered by status (links, no JavaScript needed).
#[component]
pub fn OrdersPage() -> impl IntoView {
    let query = use_query_map();
    let filter = move || query.with(|q| q.get("status").and_then(|s| OrderFilter::parse(&s)));
    let orders = Resource::new(filter, list_orders);
    let tab = move |status: Option<OrderFilter>, label: &'static str| {
        let href = match status {
            Some(s) => format!("/orders?status={}", s.as_str()),
            None => "/orders".to_string(),
        };
        view! { <a href=href class:active=move || filter() == status>{label}</a> }
    };
    view! {
        <Title text="我的订单" />
        <h1 class="page-title">"我的订单"</h1>
        <nav class="status-tabs" aria-label="订单状态">
            {tab(None, "全部")}
            {OrderFilter::ALL.into_iter().map(|s| tab(Some(s), s.label())).collect_view()}
        </nav>
        <Transition fallback=PageSkeleton>
            {move || Suspend::new(async move {
                match orders.await {
                    Err(e) => view! { <ErrorView error=e /> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <section class="empty"><p>"暂无订单"</p><a class="btn btn-primary" href="/">"去逛逛"</a></section>
                    }.into_any(),
                    Ok(list) => view! {
                        <ul class="order-list">
                            {list.into_iter().map(|o| view! {
                                <li>
                                    <a class="order-card" href=format!("/orders/{}", o.order_id) data-testid="order-card">
                                        <div class="order-card-head">
                                            <span class="muted">{format_time(o.created_at)}</span>
                                            <span class=format!("status-text status-{}", o.status.as_str())>{o.status.label()}</span>
                                        </div>
                                        <div class="order-card-body">
                                            <img src=o.first_image.clone() alt="" width="120" height="120" loading="lazy" />
                                            <div class="line-body">
                                                <div class="line-name">{o.title.clone()}</div>
                                                <div class="muted">{format!("共 {} 件", o.item_count)}</div>
                                            </div>
                                            <Price fen=o.total_fee />
                                        </div>
                                    </a>
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}
