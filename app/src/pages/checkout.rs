use crate::api::{
    checkout, choose_card_params, get_cart, join_region, list_addresses, quote_order,
    selected_items, Checkout,
};
use crate::components::{go_to, ErrorView, FieldMessage, PageSkeleton, Price, ServerFormError};
use crate::error::ApiError;
use crate::model::*;
use leptos::either::Either;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct CheckoutData {
    quote: Quote,
    addresses: Vec<Address>,
    /// `Some` for 立即购买 (a single item, the cart untouched).
    buy_now: Option<OrderItemInput>,
}

async fn load(buy: Option<(i64, i64)>) -> Result<CheckoutData, ApiError> {
    let buy_now = buy.map(|(sku_id, quantity)| OrderItemInput { sku_id, quantity });
    let items = match &buy_now {
        Some(item) => vec![item.clone()],
        None => selected_items(&get_cart().await?),
    };
    let quote = if items.is_empty() {
        Quote::default()
    } else {
        quote_order(items, None).await?
    };
    Ok(CheckoutData {
        quote,
        addresses: list_addresses().await?,
        buy_now,
    })
}

/// 确认订单: shipping address (saved or new), 备注, items and total; 提交订单 creates an unpaid
/// order and opens it. The page renders on the server; its form is an island ([`CheckoutForm`]).
#[component]
pub fn CheckoutPage() -> impl IntoView {
    let error = ServerFormError::take(Checkout::PATH);
    let query = use_query_map();
    let data = Resource::new(
        move || {
            query.with(|q| {
                let sku = q.get("sku")?.parse::<i64>().ok()?;
                let qty = q
                    .get("qty")
                    .and_then(|s| s.parse::<i64>().ok())
                    .unwrap_or(1);
                Some((sku, qty))
            })
        },
        load,
    );
    view! {
        <Title text="确认订单" />
        <h1 class="page-title">"确认订单"</h1>
        <Suspense fallback=PageSkeleton>
            {move || {
                let error = error.clone();
                Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorView error=e /> }.into_any(),
                    Ok(d) if d.quote.lines.is_empty() => view! {
                        <section class="empty">
                            <p>"没有要结算的商品"</p>
                            <a class="btn btn-primary" href="/cart">"返回购物车"</a>
                        </section>
                    }.into_any(),
                    Ok(d) => view! { <CheckoutForm data=d error /> }.into_any(),
                }
            })
            }}
        </Suspense>
    }
}

/// The checkout form: a plain form to `checkout` that, once the wasm runs, checks the address in
/// the browser, offers 使用微信收货地址 and 使用优惠券, and calls `checkout` itself (with the
/// coupon).
/// `error`: the plain form's error, when this render is its return.
#[island(lazy)]
fn CheckoutForm(data: CheckoutData, error: Option<ApiError>) -> impl IntoView {
    crate::components::island_started("checkout_form_loader");
    let CheckoutData {
        quote,
        addresses,
        buy_now,
    } = data;
    let has_saved = !addresses.is_empty();
    let saved = StoredValue::new(addresses.clone());
    let choice = RwSignal::new(
        addresses
            .first()
            .map(|a| a.id.to_string())
            .unwrap_or_else(|| "new".into()),
    );
    let name = RwSignal::new(String::new());
    let phone = RwSignal::new(String::new());
    let province = RwSignal::new(String::new());
    let city = RwSignal::new(String::new());
    let detail = RwSignal::new(String::new());
    let remark = RwSignal::new(String::new());
    let error = RwSignal::new(error);

    let items: Vec<OrderItemInput> = quote
        .lines
        .iter()
        .map(|l| OrderItemInput {
            sku_id: l.sku_id,
            quantity: l.quantity,
        })
        .collect();
    // 使用优惠券: a coupon from the shopper's WeChat card wallet (`wx.chooseCard`), checked and
    // priced by the server (`quote_order` with the coupon); sent with the order.
    let coupon: RwSignal<Option<(CouponInput, AppliedCoupon)>> = RwSignal::new(None);
    let coupon_error: RwSignal<Option<String>> = RwSignal::new(None);
    let coupon_items = StoredValue::new(items);
    let choose_coupon = move |_: leptos::ev::MouseEvent| {
        #[cfg(not(feature = "hydrate"))]
        let _ = (coupon_items, choose_card_params);
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            coupon_error.set(None);
            let cfg = match choose_card_params().await {
                Ok(c) => c,
                Err(e) => return coupon_error.set(Some(e.message)),
            };
            let input = match crate::wx::choose_card(&cfg).await {
                Ok(Some(input)) => input,
                Ok(None) => return,
                Err(e) => return coupon_error.set(Some(format!("无法打开卡包：{e}"))),
            };
            match quote_order(coupon_items.get_value(), Some(input.clone())).await {
                Ok(Quote {
                    coupon: Some(applied),
                    ..
                }) => coupon.set(Some((input, applied))),
                Ok(_) => coupon_error.set(Some("此优惠券不可用".into())),
                Err(e) => coupon_error.set(Some(e.message)),
            }
        });
    };
    let buy = buy_now.as_ref().map(|b| (b.sku_id, b.quantity));
    let submit = Action::new(move |input: &Checkout| {
        let input = input.clone();
        async move {
            checkout(
                input.address_id,
                input.name,
                input.phone,
                input.province,
                input.city,
                input.detail,
                input.remark,
                input.buy_sku,
                input.buy_qty,
                input.coupon,
            )
            .await
        }
    });
    Effect::new(move |_| match submit.value().get() {
        Some(Ok(created)) => go_to(&format!("/orders/{}", created.order_id)),
        Some(Err(e)) => error.set(Some(e)),
        None => {}
    });

    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let address = match choice.get_untracked().parse::<i64>() {
            Ok(id) => saved.with_value(|all| {
                all.iter().find(|a| a.id == id).map(|a| AddressInput {
                    name: a.name.clone(),
                    phone: a.phone.clone(),
                    region: a.region.clone(),
                    detail: a.detail.clone(),
                })
            }),
            Err(_) => Some(AddressInput {
                name: name.get_untracked(),
                phone: phone.get_untracked(),
                region: join_region(&province.get_untracked(), &city.get_untracked()),
                detail: detail.get_untracked(),
            }),
        };
        let Some(address) = address else { return };
        // Check in the browser first so every mistake shows at once; the server checks again.
        if let Err(fields) = address.validate() {
            error.set(Some(ApiError::validation(fields)));
            return;
        }
        error.set(None);
        submit.dispatch(Checkout {
            address_id: choice.get_untracked(),
            name: name.get_untracked(),
            phone: phone.get_untracked(),
            province: province.get_untracked(),
            city: city.get_untracked(),
            detail: detail.get_untracked(),
            remark: remark.get_untracked(),
            buy_sku: buy.map(|(sku, _)| sku),
            buy_qty: buy.map(|(_, qty)| qty),
            coupon: coupon.get_untracked().map(|(input, _)| input),
        });
    };

    // 使用微信收货地址: fills the new-address form from the shopper's WeChat addresses
    // (`wx.openAddress`); cancel leaves the form as it was. Shown once wx.config is ready.
    let wx_ready = crate::components::wx_ready();
    let use_wechat_address = move |_: leptos::ev::MouseEvent| {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            match crate::wx::open_address().await {
                Ok(Some(a)) => {
                    choice.set("new".into());
                    name.set(a.user_name);
                    phone.set(a.tel_number);
                    province.set(if PROVINCES.contains(&a.province_name.as_str()) {
                        a.province_name
                    } else {
                        String::new()
                    });
                    city.set(
                        format!("{} {}", a.city_name, a.county_name)
                            .trim()
                            .to_string(),
                    );
                    detail.set(a.detail_info);
                }
                Ok(None) => {}
                Err(e) => leptos::logging::warn!("openAddress: {e}"),
            }
        });
    };

    // The browser's own checks only when there is no saved address to choose instead.
    let need = !has_saved;
    let new_address = move || choice.get() == "new";
    let goods_total = quote.total_fen;
    let total = Signal::derive(move || {
        goods_total - coupon.with(|c| c.as_ref().map_or(0, |(_, a)| a.discount_fen))
    });
    let pending = submit.pending();
    let err = Signal::derive(move || error.get());

    let view = view! {
        <form class="checkout" method="post" action=Checkout::PATH prop:noValidate=true
            on:submit=on_submit>
            {buy_now.as_ref().map(|b| view! {
                <input type="hidden" name="buy_sku" value=b.sku_id />
                <input type="hidden" name="buy_qty" value=b.quantity />
            })}
            <section class="panel">
                <h2 class="section-title">"收货地址"</h2>
                {move || wx_ready.get().then(|| view! {
                    <button type="button" class="wx-address" data-testid="wx-address"
                        on:click=use_wechat_address>"使用微信收货地址"</button>
                })}
                {has_saved.then(|| view! {
                    <div class="saved-addresses">
                        {addresses.iter().map(|a| {
                            let id = a.id.to_string();
                            let id2 = id.clone();
                            let id3 = id.clone();
                            view! {
                                <label class="address-option" class:selected=move || choice.get() == id3>
                                    <input type="radio" name="address_id" value=id.clone()
                                        checked=move || choice.get() == id2
                                        on:change=move |_| choice.set(id.clone()) />
                                    <span>
                                        <strong>{a.name.clone()}</strong>" "{a.phone.clone()}<br />
                                        <span class="muted">{format!("{} {}", a.region, a.detail)}</span>
                                    </span>
                                </label>
                            }
                        }).collect_view()}
                        <label class="address-option" class:selected=new_address>
                            <input type="radio" name="address_id" value="new"
                                checked=new_address on:change=move |_| choice.set("new".into()) />
                            <span>"使用新地址"</span>
                        </label>
                    </div>
                })}
                <div class="address-form" class:collapsed=move || has_saved && !new_address()>
                    <label class="field">
                        <span>"收货人"</span>
                        <input name="name" autocomplete="name" maxlength="20" placeholder="姓名"
                            required=need bind:value=name />
                    </label>
                    <FieldMessage error=err field="name" />
                    <label class="field">
                        <span>"手机号"</span>
                        <input name="phone" type="tel" inputmode="tel" autocomplete="tel" maxlength="20"
                            placeholder="11 位手机号" pattern="(\\+?86)?[ -]?1[3-9][0-9 -]{9,11}"
                            required=need bind:value=phone />
                    </label>
                    <FieldMessage error=err field="phone" />
                    <label class="field">
                        <span>"省份"</span>
                        <select name="province" required=need bind:value=province>
                            <option value="">"请选择"</option>
                            {PROVINCES.iter().map(|p| view! { <option value=*p>{*p}</option> }).collect_view()}
                        </select>
                    </label>
                    <label class="field">
                        <span>"市 / 区"</span>
                        <input name="city" autocomplete="address-level2" maxlength="40"
                            placeholder="如：深圳市 南山区" required=need bind:value=city />
                    </label>
                    <FieldMessage error=err field="region" />
                    <label class="field">
                        <span>"详细地址"</span>
                        <textarea name="detail" rows="2" maxlength="120" placeholder="街道、门牌号、楼层"
                            autocomplete="street-address" required=need minlength="5"
                            bind:value=detail></textarea>
                    </label>
                    <FieldMessage error=err field="detail" />
                </div>
            </section>
            <section class="panel">
                <h2 class="section-title">"商品"</h2>
                <ul class="order-lines">
                    {quote.lines.iter().map(|l| view! {
                        <li class="order-line">
                            <img src=l.image.clone() alt=l.product_name.clone() width="120" height="120" loading="lazy" />
                            <div class="line-body">
                                <div class="line-name">{l.product_name.clone()}</div>
                                <div class="muted">{l.sku_name.clone()}</div>
                            </div>
                            <div class="line-right">
                                <Price fen=l.price_fen />
                                <div class="muted">{format!("×{}", l.quantity)}</div>
                            </div>
                        </li>
                    }).collect_view()}
                </ul>
                <label class="field">
                    <span>"备注"</span>
                    <input name="remark" maxlength="200" placeholder="选填，给商家留言" bind:value=remark />
                </label>
                <FieldMessage error=err field="remark" />
            </section>
            {move || wx_ready.get().then(|| view! {
                <section class="panel coupon-panel" data-testid="coupon-panel">
                    <h2 class="section-title">"优惠券"</h2>
                    {move || match coupon.get() {
                        Some((_, applied)) => Either::Left(view! {
                            <p class="coupon-applied" data-testid="coupon-applied">
                                {format!("{}（{}）", applied.title, applied.rule)}
                                " " <span class="coupon-off">"−" <Price fen=applied.discount_fen /></span>
                            </p>
                            <button type="button" class="link-button" on:click=move |_| coupon.set(None)>
                                "不使用优惠券"
                            </button>
                        }),
                        None => Either::Right(view! {
                            <button type="button" class="btn btn-secondary" data-testid="use-coupon"
                                on:click=choose_coupon>"使用优惠券"</button>
                        }),
                    }}
                    {move || coupon_error.get().map(|m| view! {
                        <p class="notice notice-error" role="alert" data-testid="coupon-error">{m}</p>
                    })}
                </section>
            })}
            {move || error.get().filter(|e| e.fields.is_empty() || e.code != crate::error::ErrorCode::Validation)
                .map(|e| view! { <div class="notice notice-error" role="alert">{e.message}</div> })}
            {move || error.get().filter(|e| !e.fields.is_empty())
                .map(|_| view! { <div class="notice notice-error" role="alert">"请检查收货信息"</div> })}
            <div class="checkout-bar">
                <div class="checkout-total">"实付 " <Price fen=total large=true /></div>
                <button type="submit" class="btn btn-primary" disabled=move || pending.get()
                    data-testid="submit-order">
                    {move || if pending.get() { "提交中…" } else { "提交订单" }}
                </button>
            </div>
        </form>
    };
    // On the server the island's full view type is too deep for rustc's (release) layout
    // queries: erased there. Not in the wasm, where an AnyView brings its rendering code along.
    #[cfg(feature = "ssr")]
    #[allow(clippy::let_and_return)]
    let view = view.into_any();
    view
}
