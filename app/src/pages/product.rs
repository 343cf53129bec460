use crate::api::{checkout_path, get_product, run_for_outcome, AddToCart, BuyNow};
use crate::components::{
    go_to, CouponStrip, ErrorView, PageSkeleton, Price, ServerFormError, ShareCard,
};
use crate::error::ApiError;
use crate::model::{ProductDetail, Sku, MAX_LINE_QUANTITY};
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

/// 商品详情: images, description, SKU choice, quantity stepper, 加入购物车 / 立即购买.
#[component]
pub fn ProductPage() -> impl IntoView {
    let params = use_params_map();
    let product = Resource::new(
        move || params.with(|p| p.get("id").and_then(|s| s.parse::<i64>().ok())),
        |id| async move {
            match id {
                Some(id) => get_product(id).await,
                None => Err(ApiError::not_found("商品")),
            }
        },
    );
    view! {
        <Suspense fallback=PageSkeleton>
            {move || Suspend::new(async move {
                match product.await {
                    Ok(p) => view! { <ProductView product=p /> }.into_any(),
                    Err(e) => view! { <Title text="商品" /><ErrorView error=e /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ProductView(product: ProductDetail) -> impl IntoView {
    let name = product.name.clone();
    let share_desc = {
        let price = product.skus.iter().map(|s| s.price_fen).min().unwrap_or(0);
        let text: String = product.description.chars().take(40).collect();
        format!("¥{} 起 · {text}", crate::model::format_fen(price))
    };
    let notice = ServerFormError::take(AddToCart::PATH)
        .or_else(|| ServerFormError::take(BuyNow::PATH))
        .map(|e| e.message);
    view! {
        <Title text=name.clone() />
        <ShareCard
            title=name.clone()
            desc=share_desc
            path=format!("/product/{}", product.id)
            image=product.images.first().cloned().unwrap_or_else(|| "/favicon.svg".into())
        />
        // Scrolls sideways: focusable, so a keyboard can scroll it too.
        <div class="gallery" role="region" aria-label="商品图片" tabindex="0">
            {product.images.iter().enumerate().map(|(i, src)| view! {
                <img src=src.clone() alt=format!("{} 图 {}", name, i + 1) width="800" height="800"
                    loading=if i == 0 { "eager" } else { "lazy" } decoding="async" />
            }).collect_view()}
        </div>
        <ProductBuy skus=product.skus.clone() name=product.name.clone()
            category=product.category.clone() notice>
            <CouponStrip />
        </ProductBuy>
        <section class="panel">
            <h2 class="section-title">"商品详情"</h2>
            <p class="description">{product.description.clone()}</p>
        </section>
    }
}

/// The price (of the chosen SKU), the SKU choice, the quantity stepper and 加入购物车 / 立即购买:
/// the product page's island. A plain form underneath (`add_to_cart`, and `buy_now` for
/// 立即购买), so it works before and without the wasm; with it, the same buttons call the same two
/// functions, 加入购物车 staying on the page. `children`: what sits between the price and the
/// form (the coupons).
#[island(lazy)]
fn ProductBuy(
    skus: Vec<Sku>,
    name: String,
    category: String,
    /// The plain form's error, when this render is its return.
    notice: Option<String>,
    children: Children,
) -> impl IntoView {
    crate::components::island_started("product_buy_loader");
    let first_available = skus
        .iter()
        .find(|s| s.stock > 0)
        .or(skus.first())
        .map(|s| s.id);
    let max_stock_any = skus
        .iter()
        .map(|s| s.stock)
        .max()
        .unwrap_or(0)
        .clamp(1, MAX_LINE_QUANTITY);
    let all = StoredValue::new(skus.clone());
    let selected = RwSignal::new(first_available);
    let quantity = RwSignal::new(1i64);
    let sku = move || {
        let id = selected.get();
        all.with_value(|all| all.iter().find(|s| Some(s.id) == id).cloned())
    };
    let stock = move || sku().map(|s| s.stock).unwrap_or(0);
    let max_qty = move || stock().clamp(1, MAX_LINE_QUANTITY);
    let price = Signal::derive(move || sku().map(|s| s.price_fen).unwrap_or(0));
    let sold_out = move || stock() <= 0;

    let notice = RwSignal::new(notice.map(|m| (false, m)));
    // Both actions are called for their outcome only (`run_for_outcome`): the island needs no
    // decoder for the cart 加入购物车 answers nor for 立即购买's quote.
    let add = Action::new(move |(sku_id, qty): &(i64, i64)| {
        run_for_outcome(AddToCart {
            sku_id: *sku_id,
            quantity: *qty,
        })
    });
    Effect::new(move |_| {
        if let Some(result) = add.value().get() {
            notice.set(Some(match result {
                Ok(_) => (true, "已加入购物车".to_string()),
                Err(e) => (false, e.message),
            }));
        }
    });

    let on_add = move |ev: leptos::ev::MouseEvent| {
        ev.prevent_default();
        if let Some(id) = selected.get_untracked() {
            add.dispatch((id, quantity.get_untracked()));
        }
    };
    let buy = Action::new(move |(sku_id, qty): &(i64, i64)| {
        let (sku_id, qty) = (*sku_id, *qty);
        async move {
            run_for_outcome(BuyNow {
                sku_id,
                quantity: qty,
            })
            .await
            .map(|()| (sku_id, qty))
        }
    });
    Effect::new(move |_| match buy.value().get() {
        Some(Ok((sku_id, qty))) => go_to(&checkout_path(sku_id, qty)),
        Some(Err(e)) => notice.set(Some((false, e.message))),
        None => {}
    });
    let on_buy = move |ev: leptos::ev::MouseEvent| {
        ev.prevent_default();
        if let Some(id) = selected.get_untracked() {
            buy.dispatch((id, quantity.get_untracked()));
        }
    };
    view! {
        <section class="panel product-head">
            <Price fen=price large=true />
            <h1 class="product-name">{name}</h1>
            <p class="muted">{category}</p>
        </section>
        {children()}
        <form class="panel" method="post" action=AddToCart::PATH>
            <fieldset class="sku-choice">
                <legend>"规格"</legend>
                {skus.into_iter().map(|s| {
                    let id = s.id;
                    let out = s.stock <= 0;
                    view! {
                        <label class="sku-option" class:selected=move || selected.get() == Some(id) class:disabled=out>
                            <input type="radio" name="sku_id" value=id disabled=out
                                checked=first_available == Some(id)
                                on:change=move |_| { selected.set(Some(id)); quantity.update(|q| *q = (*q).min(max_qty())); } />
                            <span class="sku-name">{s.name}</span>
                            <span class="sku-meta">
                                "¥" {crate::model::format_fen(s.price_fen)}
                                {if out { " · 无货".to_string() } else { format!(" · 库存 {}", s.stock) }}
                            </span>
                        </label>
                    }
                }).collect_view()}
            </fieldset>
            <div class="qty-row">
                <span>"数量"</span>
                <div class="stepper">
                    <button type="button" class="js-only" aria-label="减少"
                        disabled=move || { quantity.get() <= 1 }
                        on:click=move |_| quantity.update(|q| *q = (*q - 1).max(1))>"−"</button>
                    // `value`: what a page without JavaScript posts; `prop:value` follows the stepper.
                    <input type="number" name="quantity" inputmode="numeric" min="1" value="1" aria-label="购买数量"
                        max=move || if selected.get().is_some() { max_qty() } else { max_stock_any }
                        prop:value=move || quantity.get().to_string()
                        on:input=move |ev| {
                            if let Ok(v) = event_target_value(&ev).parse::<i64>() {
                                quantity.set(v.clamp(1, max_qty()));
                            }
                        } />
                    <button type="button" class="js-only" aria-label="增加"
                        disabled=move || { quantity.get() >= max_qty() }
                        on:click=move |_| quantity.update(|q| *q = (*q + 1).min(max_qty()))>"+"</button>
                </div>
            </div>
            {move || notice.get().map(|(ok, msg)| view! {
                <div class=if ok { "notice notice-ok" } else { "notice notice-error" } role="status">
                    {msg}
                    {ok.then(|| view! { <a href="/cart">" 去购物车 ›"</a> })}
                </div>
            })}
            <div class="action-bar">
                <button type="submit" class="btn btn-secondary"
                    disabled=move || { sold_out() || add.pending().get() }
                    on:click=on_add>
                    {move || if add.pending().get() { "加入中…" } else { "加入购物车" }}
                </button>
                <button type="submit" formaction=BuyNow::PATH class="btn btn-primary"
                    disabled=move || { sold_out() || buy.pending().get() } on:click=on_buy>
                    {move || if sold_out() { "已售罄" } else { "立即购买" }}
                </button>
            </div>
        </form>
    }
}
