use crate::api::{cancel_order, get_order};
use crate::components::{format_time, ErrorView, PageSkeleton, Price, ServerFormError};
use crate::error::ApiError;
use crate::model::{Order, OrderStatus};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

/// 订单详情: status, items, amounts, address, times; 去支付 and 取消订单 while unpaid.
#[component]
pub fn OrderPage() -> impl IntoView {
    let params = use_params_map();
    let cancel = Action::new(|id: &i64| cancel_order(*id));
    let order = Resource::new(
        move || {
            (
                params.with(|p| p.get("id").and_then(|s| s.parse::<i64>().ok())),
                cancel.version().get(),
            )
        },
        |(id, _)| async move {
            match id {
                Some(id) => get_order(id).await,
                None => Err(ApiError::not_found("订单")),
            }
        },
    );
    view! {
        <Title text="订单详情" />
        <Transition fallback=PageSkeleton>
            {move || Suspend::new(async move {
                match order.await {
                    Err(e) => view! { <ErrorView error=e /> }.into_any(),
                    Ok(o) => view! { <OrderView order=o cancel /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn OrderView(
    order: Order,
    cancel: Action<i64, Result<crate::model::OrderStatusView, ApiError>>,
) -> impl IntoView {
    let id = order.order_id;
    let unpaid = order.status == OrderStatus::Unpaid;
    let goods_total: i64 = order
        .lines
        .iter()
        .map(|l| l.unit_price_fen * l.quantity)
        .sum();
    let pay_notice = RwSignal::new(None::<String>);
    let error =
        RwSignal::new(ServerFormError::from_query("/api/form/cancel_order").map(|e| e.message));
    Effect::new(move |_| {
        if let Some(Err(e)) = cancel.value().get() {
            error.set(Some(e.message));
        }
    });
    view! {
        <section class=format!("status-banner status-{}", order.status.as_str())>
            <div class="status-label" data-testid="order-status">{order.status.label()}</div>
            {unpaid.then(|| view! {
                <div class="status-sub">{format!("请在 {} 前完成支付，逾期订单将自动关闭", format_time(order.expires_at))}</div>
            })}
        </section>
        <section class="panel address-panel">
            <div><strong>{order.address.name.clone()}</strong>" "{order.address.phone.clone()}</div>
            <div class="muted">{format!("{} {}", order.address.region, order.address.detail)}</div>
        </section>
        <section class="panel">
            <ul class="order-lines">
                {order.lines.iter().map(|l| view! {
                    <li class="order-line">
                        <a href=format!("/product/{}", l.product_id)>
                            <img src=l.image.clone() alt=l.product_name.clone() width="120" height="120" loading="lazy" />
                        </a>
                        <div class="line-body">
                            <div class="line-name">{l.product_name.clone()}</div>
                            <div class="muted">{l.sku_name.clone()}</div>
                        </div>
                        <div class="line-right">
                            <Price fen=l.unit_price_fen />
                            <div class="muted">{format!("×{}", l.quantity)}</div>
                        </div>
                    </li>
                }).collect_view()}
            </ul>
            <dl class="amounts">
                <dt>"商品总额"</dt><dd><Price fen=goods_total /></dd>
                <dt>"运费"</dt><dd><Price fen=0 /></dd>
                <dt class="strong">{if unpaid { "需付款" } else { "实付款" }}</dt>
                <dd class="strong" data-testid="order-total"><Price fen=order.total_fee large=true /></dd>
            </dl>
        </section>
        <section class="panel">
            <dl class="facts">
                <dt>"订单编号"</dt><dd data-testid="order-no">{order.order_no.clone()}</dd>
                <dt>"下单时间"</dt><dd>{format_time(order.created_at)}</dd>
                {order.paid_at.map(|t| view! { <dt>"支付时间"</dt><dd>{format_time(t)}</dd> })}
                {order.closed_at.map(|t| view! { <dt>"关闭时间"</dt><dd>{format_time(t)}</dd> })}
                {(!order.remark.is_empty()).then(|| view! { <dt>"备注"</dt><dd>{order.remark.clone()}</dd> })}
            </dl>
        </section>
        {move || error.get().map(|m| view! { <div class="notice notice-error" role="alert">{m}</div> })}
        {move || pay_notice.get().map(|m| view! { <div class="notice" role="status">{m}</div> })}
        {unpaid.then(|| view! {
            <div class="action-bar">
                <form method="post" action="/api/form/cancel_order">
                    <input type="hidden" name="order_id" value=id />
                    <button type="submit" class="btn btn-secondary" disabled=move || cancel.pending().get()
                        on:click=move |ev| { ev.prevent_default(); cancel.dispatch(id); }>
                        {move || if cancel.pending().get() { "取消中…" } else { "取消订单" }}
                    </button>
                </form>
                <button type="button" class="btn btn-primary" data-testid="pay"
                    on:click=move |_| pay_notice.set(Some("微信支付尚未开通，请联系商家".into()))>
                    "去支付"
                </button>
            </div>
        })}
    }
}
