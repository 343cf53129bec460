use crate::components::ErrorView;
use crate::error::ApiError;
use leptos::prelude::*;
use leptos_meta::Title;

/// Any path the router does not know: a 404 page with a way back.
#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <Title text="页面不存在" />
        <ErrorView error=ApiError::not_found("页面") />
    }
}
