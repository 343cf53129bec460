use crate::api::{cancel_order, confirm_receipt, get_order};
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
    let confirm = Action::new(|id: &i64| confirm_receipt(*id));
    // Bumped when a payment is confirmed, to reload the order.
    let refresh = RwSignal::new(0u32);
    let order = Resource::new(
        move || {
            (
                params.with(|p| p.get("id").and_then(|s| s.parse::<i64>().ok())),
                cancel.version().get(),
                confirm.version().get(),
                refresh.get(),
            )
        },
        |(id, _, _, _)| async move {
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
                    Ok(o) => view! { <OrderView order=o cancel confirm refresh /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Where a payment started on this page stands.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
#[derive(Clone, Debug, PartialEq, Eq)]
enum PayState {
    Idle,
    /// Asking the server for the pay parameters / the pay sheet is open.
    Paying,
    /// WeChat said ok; waiting for the server to see the payment.
    Confirming,
}

/// 去支付: pay_order → chooseWXPay (or getBrandWCPayRequest) → poll order_status until paid.
#[cfg(feature = "hydrate")]
fn start_payment(
    id: i64,
    state: RwSignal<PayState>,
    notice: RwSignal<Option<String>>,
    error: RwSignal<Option<String>>,
    refresh: RwSignal<u32>,
) {
    use crate::wx::PayOutcome;
    let configured = use_context::<crate::components::WxReady>()
        .map(|r| r.0.get_untracked())
        .unwrap_or(false);
    state.set(PayState::Paying);
    error.set(None);
    notice.set(None);
    leptos::task::spawn_local(async move {
        let params = match crate::api::pay_order(id).await {
            Ok(p) => p,
            Err(e) => {
                error.set(Some(e.message));
                state.set(PayState::Idle);
                return;
            }
        };
        match crate::wx::pay(&params, configured).await {
            PayOutcome::Ok => {
                state.set(PayState::Confirming);
                notice.set(Some("支付结果确认中…".into()));
                // The page's "ok" is only a hint: the order is paid when the server says so.
                for attempt in 0..40 {
                    if let Ok(st) = crate::api::get_order_status(id).await {
                        if st.status != OrderStatus::Unpaid {
                            notice.set(None);
                            refresh.update(|n| *n += 1);
                            return;
                        }
                    }
                    crate::wx::sleep_ms(if attempt < 10 { 500 } else { 1500 }).await;
                }
                notice.set(Some("支付结果确认中，请稍后刷新查看".into()));
                state.set(PayState::Idle);
            }
            PayOutcome::Cancel => {
                notice.set(Some("已取消支付，订单仍可继续支付".into()));
                state.set(PayState::Idle);
            }
            PayOutcome::Fail(msg) => {
                error.set(Some(if msg.is_empty() {
                    "支付失败，请重试".into()
                } else {
                    msg
                }));
                state.set(PayState::Idle);
            }
        }
    });
}

#[cfg(not(feature = "hydrate"))]
fn start_payment(
    _id: i64,
    _state: RwSignal<PayState>,
    _notice: RwSignal<Option<String>>,
    _error: RwSignal<Option<String>>,
    _refresh: RwSignal<u32>,
) {
}

#[component]
fn OrderView(
    order: Order,
    cancel: Action<i64, Result<crate::model::OrderStatusView, ApiError>>,
    confirm: Action<i64, Result<crate::model::OrderStatusView, ApiError>>,
    refresh: RwSignal<u32>,
) -> impl IntoView {
    let id = order.order_id;
    let unpaid = order.status == OrderStatus::Unpaid;
    let shipped = order.status == OrderStatus::Shipped;
    let goods_total: i64 = order
        .lines
        .iter()
        .map(|l| l.unit_price_fen * l.quantity)
        .sum();
    let pay_notice = RwSignal::new(None::<String>);
    let pay_state = RwSignal::new(PayState::Idle);
    let cancel_error = ServerFormError::take("/api/form/cancel_order");
    let confirm_error = ServerFormError::take("/api/form/confirm_receipt");
    let error = RwSignal::new(cancel_error.or(confirm_error).map(|e| e.message));
    Effect::new(move |_| {
        if let Some(Err(e)) = confirm.value().get() {
            error.set(Some(e.message));
        }
    });
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
                {order.shipment.clone().map(|s| view! {
                    <dt>"物流"</dt><dd data-testid="shipment">{format!("{} {}", s.carrier, s.tracking_no)}</dd>
                    <dt>"发货时间"</dt><dd>{format_time(s.shipped_at)}</dd>
                })}
                {order.paid_in_sandbox.then(|| view! {
                    <dt>"支付方式"</dt><dd class="sandbox-paid" data-testid="sandbox-paid">"微信沙箱（模拟支付，未产生真实款项）"</dd>
                })}
                {order.closed_at.map(|t| view! { <dt>"关闭时间"</dt><dd>{format_time(t)}</dd> })}
                {(order.refunded_fen > 0).then(|| view! {
                    <dt>"已退款"</dt><dd data-testid="refunded-total"><Price fen=order.refunded_fen /></dd>
                })}
                {(!order.remark.is_empty()).then(|| view! { <dt>"备注"</dt><dd>{order.remark.clone()}</dd> })}
            </dl>
        </section>
        {(!order.refunds.is_empty()).then(|| view! {
            <section class="panel" data-testid="refunds">
                <h2 class="section-title">"退款记录"</h2>
                <ul class="refund-list">
                    {order.refunds.iter().map(|r| view! {
                        <li class="refund-item" data-testid="refund">
                            <div class="refund-head">
                                <Price fen=r.amount_fen />
                                <span class=format!("refund-state refund-{}", r.state.as_str()) data-testid="refund-state">{r.state.label()}</span>
                            </div>
                            <div class="muted">
                                {format!("申请时间 {}", format_time(r.created_at))}
                                {r.succeeded_at.map(|t| format!(" · 到账时间 {}", format_time(t)))}
                            </div>
                            {(!r.reason.is_empty()).then(|| view! { <div class="muted">{format!("原因：{}", r.reason)}</div> })}
                        </li>
                    }).collect_view()}
                </ul>
            </section>
        })}
        {move || error.get().map(|m| view! { <div class="notice notice-error" role="alert">{m}</div> })}
        {move || pay_notice.get().map(|m| view! { <div class="notice" role="status">{m}</div> })}
        {shipped.then(|| view! {
            <div class="action-bar">
                <form method="post" action="/api/form/confirm_receipt">
                    <input type="hidden" name="order_id" value=id />
                    <button type="submit" class="btn btn-primary" data-testid="confirm-receipt"
                        disabled=move || confirm.pending().get()
                        on:click=move |ev| { ev.prevent_default(); confirm.dispatch(id); }>
                        {move || if confirm.pending().get() { "确认中…" } else { "确认收货" }}
                    </button>
                </form>
            </div>
        })}
        {unpaid.then(|| view! {
            <div class="action-bar">
                <form method="post" action="/api/form/cancel_order">
                    <input type="hidden" name="order_id" value=id />
                    // Not while a payment is being confirmed: the money may already be at WeChat.
                    <button type="submit" class="btn btn-secondary" data-testid="cancel"
                        disabled=move || cancel.pending().get() || pay_state.get() != PayState::Idle
                        on:click=move |ev| { ev.prevent_default(); cancel.dispatch(id); }>
                        {move || if cancel.pending().get() { "取消中…" } else { "取消订单" }}
                    </button>
                </form>
                <button type="button" class="btn btn-primary js-only" data-testid="pay"
                    disabled=move || pay_state.get() != PayState::Idle
                    on:click=move |_| start_payment(id, pay_state, pay_notice, error, refresh)>
                    {move || match pay_state.get() {
                        PayState::Idle => "去支付",
                        PayState::Paying => "支付中…",
                        PayState::Confirming => "确认中…",
                    }}
                </button>
            </div>
        })}
    }
}
