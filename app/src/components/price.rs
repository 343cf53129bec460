use crate::model::format_fen;
use leptos::prelude::*;

/// A price in yuan with two decimals, from integer fen: `¥19.90`.
#[component]
pub fn Price(#[prop(into)] fen: Signal<i64>, #[prop(optional)] large: bool) -> impl IntoView {
    view! {
        <span class="price" class:price-large=large>
            <span class="price-currency">"¥"</span>
            {move || format_fen(fen.get())}
        </span>
    }
}
