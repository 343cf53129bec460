//! The coupons on offer, each with 领取: the signed `cardExt` from the server, then `wx.addCard`
//! puts the coupon into the shopper's WeChat card wallet (卡包), where checkout finds it.

use crate::api::{card_ext, coupon_offers};
use crate::model::CouponOffer;
use leptos::prelude::*;

/// A strip of coupon cards; nothing at all when the shop offers none. Rendered on the server.
#[component]
pub fn CouponStrip() -> impl IntoView {
    let offers = Resource::new(|| (), |_| coupon_offers());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let list = offers.await.unwrap_or_default();
                (!list.is_empty()).then(|| view! {
                    <section class="coupons" aria-label="优惠券" data-testid="coupons">
                        {list.into_iter().map(|c| view! { <CouponCard offer=c /> }).collect_view()}
                    </section>
                })
            })}
        </Suspense>
    }
}

/// One coupon and its 领取 button: an island (the only part of the strip that runs in the browser).
#[island(lazy)]
fn CouponCard(offer: CouponOffer) -> impl IntoView {
    crate::components::island_started("coupon_card_loader");
    // None: not tapped yet; Some(Ok(msg)) taken; Some(Err(msg)) failed.
    let state: RwSignal<Option<Result<String, String>>> = RwSignal::new(None);
    let busy = RwSignal::new(false);
    let card_id = StoredValue::new(offer.card_id.clone());
    let take = move |_: leptos::ev::MouseEvent| {
        #[cfg(not(feature = "hydrate"))]
        let _ = (card_id, card_ext);
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            busy.set(true);
            let outcome = match card_ext(card_id.get_value()).await {
                Err(e) => Err(e.message),
                Ok(card) => match crate::wx::add_card(&card).await {
                    Ok(true) => Ok("已放入微信卡包".to_string()),
                    Ok(false) => Err("已取消".to_string()),
                    Err(e) => Err(format!("领取失败：{e}")),
                },
            };
            busy.set(false);
            state.set(Some(outcome));
        });
    };
    view! {
        <div class="coupon-card" data-testid="coupon-card">
            <div>
                <div class="coupon-rule">{offer.rule.clone()}</div>
                <div>{offer.title.clone()}</div>
                <div class="coupon-meta">{offer.validity.clone()}</div>
                {move || state.get().map(|s| {
                    let (role, m) = match s {
                        Ok(m) => ("status", m),
                        Err(m) => ("alert", m),
                    };
                    view! { <div class="coupon-meta" role=role>{m}</div> }
                })}
            </div>
            <button type="button" class="btn btn-primary" data-testid="take-coupon"
                disabled=move || busy.get() on:click=take>"领取"</button>
        </div>
    }
}
