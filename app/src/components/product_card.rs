use super::Price;
use crate::model::ProductSummary;
use leptos::prelude::*;

/// A product tile on the home page. Only the first few images load eagerly; the rest are lazy
/// and sized up front so nothing shifts while they arrive.
#[component]
pub fn ProductCard(product: ProductSummary, eager: bool) -> impl IntoView {
    let href = format!("/product/{}", product.id);
    let sold_out = product.sold_out();
    let min_price = product.min_price_fen().unwrap_or(0);
    let several_prices = product
        .skus
        .iter()
        .any(|s| Some(s.price_fen) != product.min_price_fen());
    view! {
        <a class="card" href=href data-testid="product-card">
            <div class="card-image">
                <img
                    src=product.image.clone()
                    alt=product.name.clone()
                    width="400"
                    height="400"
                    loading=if eager { "eager" } else { "lazy" }
                    decoding="async"
                />
                {sold_out.then(|| view! { <span class="badge badge-soldout">"已售罄"</span> })}
            </div>
            <div class="card-body">
                <div class="card-name">{product.name.clone()}</div>
                <div class="card-price">
                    <Price fen=min_price />
                    {several_prices.then(|| view! { <span class="muted">" 起"</span> })}
                </div>
            </div>
        </a>
    }
}
