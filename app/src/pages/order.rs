use crate::api::{get_order, CancelOrder, ConfirmReceipt, RequestAftersale};
use crate::components::{
    format_time, ErrorView, FieldMessage, PageSkeleton, Price, ServerFormError,
};
use crate::error::ApiError;
use crate::model::{AftersaleKind, AftersaleView, Order, OrderStatus, AFTERSALE_REASONS};
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

/// 订单详情: status, items, amounts, address, times; 去支付 and 取消订单 while unpaid, 确认收货
/// once shipped, 申请售后 once paid. Rendered on the server; the controls are plain forms that
/// answer with this page again, and 去支付 (which needs WeChat's JS-SDK) is an island
/// ([`OrderActions`]).
#[component]
pub fn OrderPage() -> impl IntoView {
    let params = use_params_map();
    let order = Resource::new(
        move || params.with(|p| p.get("id").and_then(|s| s.parse::<i64>().ok())),
        |id| async move {
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
                    Ok(o) => view! { <OrderView order=o /> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Where a payment started on this page stands.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PayState {
    Idle,
    /// Asking the server for the pay parameters / the pay sheet is open.
    Paying,
    /// WeChat said ok; waiting for the server to see the payment.
    Confirming,
}

/// 去支付: pay_order → chooseWXPay (or getBrandWCPayRequest, without `wx.config`) → poll
/// order_status until paid, then load the page again (it shows the paid order).
#[cfg(feature = "hydrate")]
fn start_payment(
    id: i64,
    configured: bool,
    state: RwSignal<PayState>,
    notice: RwSignal<Option<String>>,
    error: RwSignal<Option<String>>,
) {
    use crate::wx::PayOutcome;
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
                            if let Some(w) = web_sys::window() {
                                let _ = w.location().reload();
                            }
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

/// The order's latest after-sales request: what was asked, where it stands, the merchant's word.
#[component]
fn AftersaleStatus(a: AftersaleView) -> impl IntoView {
    view! {
        <section class="panel" data-testid="aftersale">
            <div class="panel-head">
                <h2 class="section-title">{format!("售后 · {}", a.kind.label())}</h2>
                <span class=format!("aftersale-state aftersale-{}", a.status.as_str())
                    data-testid="aftersale-status">{a.status.label()}</span>
            </div>
            <dl class="facts">
                <dt>"申请原因"</dt><dd>{a.reason.clone()}</dd>
                {(!a.note.is_empty()).then(|| view! { <dt>"补充说明"</dt><dd>{a.note.clone()}</dd> })}
                <dt>"申请时间"</dt><dd>{format_time(a.created_at)}</dd>
                {a.decided_at.map(|t| view! { <dt>"处理时间"</dt><dd>{format_time(t)}</dd> })}
                {(!a.decision_reason.is_empty()).then(|| view! {
                    <dt>"商家说明"</dt><dd data-testid="aftersale-decision">{a.decision_reason.clone()}</dd>
                })}
                {a.received_at.map(|t| view! { <dt>"商家收货"</dt><dd>{format_time(t)}</dd> })}
                {a.refund_fen.map(|f| view! { <dt>"退款金额"</dt><dd><Price fen=f /></dd> })}
            </dl>
        </section>
    }
}

/// 申请售后: a `<details>` that opens without JavaScript, with a plain form to
/// `request_aftersale`, which answers with this page again (open, with the error, when
/// the request was refused).
#[component]
fn AftersaleForm(order_id: i64, shipped: bool) -> impl IntoView {
    let error = ServerFormError::take(RequestAftersale::PATH);
    let open = error.is_some();
    let general = error
        .as_ref()
        .filter(|e| e.fields.is_empty())
        .map(|e| e.message.clone());
    let err = Signal::derive(move || error.clone());
    view! {
        <details class="panel aftersale-form" open=open>
            <summary class="section-title" data-testid="aftersale-open">"申请售后"</summary>
            <form method="post" action=RequestAftersale::PATH>
                <input type="hidden" name="order_id" value=order_id />
                <fieldset class="field kind-choice">
                    <legend>"售后类型"</legend>
                    <label>
                        <input type="radio" name="kind" value=AftersaleKind::RefundOnly.as_str()
                            checked=true />
                        " 仅退款"
                    </label>
                    {shipped.then(|| view! {
                        <label>
                            <input type="radio" name="kind" value=AftersaleKind::ReturnRefund.as_str() />
                            " 退货退款"
                        </label>
                    })}
                </fieldset>
                <FieldMessage error=err field="kind" />
                <label class="field">
                    <span>"原因"</span>
                    <select name="reason" required=true data-testid="aftersale-reason">
                        <option value="">"请选择"</option>
                        {AFTERSALE_REASONS.iter().map(|r| view! { <option value=*r>{*r}</option> }).collect_view()}
                    </select>
                </label>
                <FieldMessage error=err field="reason" />
                <label class="field">
                    <span>"补充说明"</span>
                    <textarea name="note" rows="2" maxlength="200" placeholder="选填：具体情况"></textarea>
                </label>
                <FieldMessage error=err field="note" />
                {general.map(|m| view! { <div class="notice notice-error" role="alert">{m}</div> })}
                <button type="submit" class="btn btn-primary" data-testid="aftersale-submit">
                    "提交申请"
                </button>
            </form>
        </details>
    }
}

#[component]
fn OrderView(order: Order) -> impl IntoView {
    let id = order.order_id;
    // A paid or shipped order without a request in progress may ask for one.
    let may_ask = matches!(order.status, OrderStatus::Paid | OrderStatus::Shipped)
        && !order.aftersale.as_ref().is_some_and(|a| a.status.is_open());
    let unpaid = order.status == OrderStatus::Unpaid;
    let shipped = order.status == OrderStatus::Shipped;
    let goods_total: i64 = order
        .lines
        .iter()
        .map(|l| l.unit_price_fen * l.quantity)
        .sum();
    let error = ServerFormError::take(CancelOrder::PATH)
        .or_else(|| ServerFormError::take(ConfirmReceipt::PATH))
        .map(|e| e.message);
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
                {(order.discount_fen > 0).then(|| view! {
                    <dt>{format!("优惠券 {}", order.coupon_title.clone().unwrap_or_default())}</dt>
                    <dd class="coupon-off" data-testid="order-discount">"−" <Price fen=order.discount_fen /></dd>
                })}
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
        {order.aftersale.clone().map(|a| view! { <AftersaleStatus a /> })}
        {may_ask.then(|| view! { <AftersaleForm order_id=id shipped /> })}
        <OrderActions order_id=id unpaid shipped error />
    }
}

/// The order's messages and its action bar: 确认收货 (shipped), 取消订单 and 去支付 (unpaid).
/// 确认收货 and 取消订单 are plain forms, with or without the wasm; 去支付 needs it (`.js-only`)
/// and keeps 取消订单 disabled while a payment is under way.
#[island(lazy)]
fn OrderActions(
    order_id: i64,
    unpaid: bool,
    shipped: bool,
    /// The plain forms' error, when this render is their return.
    error: Option<String>,
) -> impl IntoView {
    crate::components::island_started("order_actions_loader");
    let id = order_id;
    let error = RwSignal::new(error);
    let pay_notice = RwSignal::new(None::<String>);
    let pay_state = RwSignal::new(PayState::Idle);
    // A form that was sent: its button says so until the next page arrives.
    let confirming = RwSignal::new(false);
    let cancelling = RwSignal::new(false);
    let wx_ready = crate::components::wx_ready();
    let pay = move |_: leptos::ev::MouseEvent| {
        #[cfg(feature = "hydrate")]
        start_payment(id, wx_ready.get_untracked(), pay_state, pay_notice, error);
        #[cfg(not(feature = "hydrate"))]
        let _ = wx_ready;
    };
    view! {
        {move || error.get().map(|m| view! { <div class="notice notice-error" role="alert">{m}</div> })}
        {move || pay_notice.get().map(|m| view! { <div class="notice" role="status">{m}</div> })}
        {shipped.then(|| view! {
            <div class="action-bar">
                <form method="post" action=ConfirmReceipt::PATH
                    on:submit=move |_| confirming.set(true)>
                    <input type="hidden" name="order_id" value=id />
                    <button type="submit" class="btn btn-primary" data-testid="confirm-receipt"
                        disabled=move || confirming.get()>
                        {move || if confirming.get() { "确认中…" } else { "确认收货" }}
                    </button>
                </form>
            </div>
        })}
        {unpaid.then(|| view! {
            <div class="action-bar">
                <form method="post" action=CancelOrder::PATH
                    on:submit=move |_| cancelling.set(true)>
                    <input type="hidden" name="order_id" value=id />
                    // Not while a payment is being confirmed: the money may already be at WeChat.
                    <button type="submit" class="btn btn-secondary" data-testid="cancel"
                        disabled=move || cancelling.get() || pay_state.get() != PayState::Idle>
                        {move || if cancelling.get() { "取消中…" } else { "取消订单" }}
                    </button>
                </form>
                <button type="button" class="btn btn-primary js-only" data-testid="pay"
                    disabled=move || pay_state.get() != PayState::Idle
                    on:click=pay>
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
