use crate::api::{get_cart, select_cart_line, update_cart, SelectCartLine, UpdateCart};
use crate::components::{ErrorView, PageSkeleton, Price, ServerFormError};
use crate::error::ApiError;
use crate::model::{Cart, CartLine, MAX_LINE_QUANTITY};
use leptos::either::Either;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;

/// A change the shopper makes to one cart line.
#[derive(Clone, Copy, Debug)]
enum Edit {
    Quantity(i64, i64),
    Select(i64, bool),
}

/// 购物车: lines with quantity edit, selection and removal; the selected total; 去结算.
/// Every control is a small form to `update_cart` or `select_cart_line`, so the cart works
/// without JavaScript; with it, the same controls call the same functions and the cart
/// ([`CartEditor`], an island) updates in place.
#[component]
pub fn CartPage() -> impl IntoView {
    let cart = Resource::new(|| (), |_| get_cart());
    let error = ServerFormError::take(UpdateCart::PATH)
        .or_else(|| ServerFormError::take(SelectCartLine::PATH));
    view! {
        <Title text="购物车" />
        <h1 class="page-title">"购物车"</h1>
        <Suspense fallback=PageSkeleton>
            {move || {
                let error = error.clone();
                Suspend::new(async move {
                    match cart.await {
                        Err(e) => view! { <ErrorView error=e /> }.into_any(),
                        Ok(cart) => view! { <CartEditor cart error /> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

/// The cart as the server last answered: from the page's render at first, then from each change.
#[island(lazy)]
fn CartEditor(cart: Cart, error: Option<ApiError>) -> impl IntoView {
    crate::components::island_started("cart_editor_loader");
    let edit = Action::new(|e: &Edit| {
        let e = *e;
        async move {
            match e {
                Edit::Quantity(sku, q) => update_cart(sku, q).await,
                Edit::Select(sku, s) => select_cart_line(sku, s).await,
            }
        }
    });
    let current = RwSignal::new(cart);
    let error = RwSignal::new(error);
    Effect::new(move |_| match edit.value().get() {
        Some(Ok(cart)) => {
            current.set(cart);
            error.set(None);
        }
        Some(Err(e)) => error.set(Some(e)),
        None => {}
    });
    move || {
        let cart = current.get();
        // `Either`, not `into_any`: an AnyView brings all of its rendering code into the wasm.
        if cart.lines.is_empty() {
            Either::Left(view! { <EmptyCart /> })
        } else {
            Either::Right(view! { <CartView cart edit error /> })
        }
    }
}

#[component]
fn EmptyCart() -> impl IntoView {
    view! {
        <section class="empty">
            <img src="/images/empty-cart.svg" alt="" width="200" height="150" />
            <p>"购物车还是空的"</p>
            <a class="btn btn-primary" href="/">"去逛逛"</a>
        </section>
    }
}

#[component]
fn CartView(
    cart: Cart,
    edit: Action<Edit, Result<Cart, ApiError>>,
    error: RwSignal<Option<ApiError>>,
) -> impl IntoView {
    let pending = edit.pending();
    let total = cart.selected_total_fen;
    let count = cart.selected_count;
    view! {
        {move || error.get().map(|e| view! { <div class="notice notice-error" role="alert">{e.message}</div> })}
        <ul class="cart-lines" aria-busy=move || pending.get().to_string()>
            {cart.lines.into_iter().map(|line| view! { <CartLineView line edit /> }).collect_view()}
        </ul>
        <div class="checkout-bar">
            <div class="checkout-total">
                "合计 " <Price fen=total large=true />
                <span class="muted">{format!(" 共 {count} 件")}</span>
            </div>
            {if count > 0 {
                Either::Left(view! { <a class="btn btn-primary" href="/checkout" data-testid="go-checkout">"去结算"</a> })
            } else {
                Either::Right(view! { <span class="btn btn-primary btn-disabled" aria-disabled="true">"去结算"</span> })
            }}
        </div>
    }
}

#[component]
fn CartLineView(line: CartLine, edit: Action<Edit, Result<Cart, ApiError>>) -> impl IntoView {
    let sku = line.sku_id;
    let q = line.quantity;
    let at_max = q >= line.stock.min(MAX_LINE_QUANTITY);
    let at_min = q <= 1;
    let selected = line.selected;
    let subtotal = line.subtotal_fen();
    let on = move |e: Edit| {
        move |ev: leptos::ev::MouseEvent| {
            ev.prevent_default();
            edit.dispatch(e);
        }
    };
    let busy = edit.pending();
    view! {
        <li class="cart-line" data-testid="cart-line" data-sku=sku>
            <form method="post" action=SelectCartLine::PATH class="line-select">
                <input type="hidden" name="sku_id" value=sku />
                <input type="hidden" name="selected" value=(!selected).to_string() />
                <button type="submit" class="checkbox" class:checked=selected
                    aria-pressed=selected.to_string()
                    aria-label=if selected { "取消选择" } else { "选择" }
                    disabled=move || busy.get()
                    on:click=on(Edit::Select(sku, !selected))></button>
            </form>
            <a href=format!("/product/{}", line.product_id) class="line-image">
                <img src=line.image.clone() alt=line.product_name.clone() width="160" height="160" loading="lazy" />
            </a>
            <div class="line-body">
                <a href=format!("/product/{}", line.product_id) class="line-name">{line.product_name.clone()}</a>
                <div class="muted line-sku">{line.sku_name.clone()}</div>
                {(line.stock < line.quantity).then(|| view! {
                    <div class="field-error">{format!("库存不足，仅剩 {} 件", line.stock)}</div>
                })}
                <div class="line-foot">
                    <Price fen=line.price_fen />
                    <div class="stepper">
                        <form method="post" action=UpdateCart::PATH>
                            <input type="hidden" name="sku_id" value=sku />
                            <input type="hidden" name="quantity" value=q - 1 />
                            <button type="submit" aria-label="减少" disabled=move || at_min || busy.get()
                                on:click=on(Edit::Quantity(sku, q - 1))>"−"</button>
                        </form>
                        <span class="qty" data-testid="line-qty">{q}</span>
                        <form method="post" action=UpdateCart::PATH>
                            <input type="hidden" name="sku_id" value=sku />
                            <input type="hidden" name="quantity" value=q + 1 />
                            <button type="submit" aria-label="增加" disabled=move || at_max || busy.get()
                                on:click=on(Edit::Quantity(sku, q + 1))>"+"</button>
                        </form>
                    </div>
                </div>
                <div class="line-subtotal muted">"小计 ¥" {crate::model::format_fen(subtotal)}</div>
            </div>
            <form method="post" action=UpdateCart::PATH class="line-remove">
                <input type="hidden" name="sku_id" value=sku />
                <input type="hidden" name="quantity" value="0" />
                <button type="submit" class="link-button" disabled=move || busy.get()
                    on:click=on(Edit::Quantity(sku, 0))>"删除"</button>
            </form>
        </li>
    }
}
