use crate::api::list_products;
use crate::components::{CouponStrip, ErrorView, PageSkeleton, ProductCard, ShareCard};
use crate::model::ProductSummary;
use leptos::prelude::*;
use leptos_meta::Title;

/// Products grouped by category, in catalogue order.
fn by_category(products: Vec<ProductSummary>) -> Vec<(String, Vec<ProductSummary>)> {
    let mut groups: Vec<(String, Vec<ProductSummary>)> = Vec::new();
    for p in products {
        match groups.iter_mut().find(|(c, _)| *c == p.category) {
            Some((_, list)) => list.push(p),
            None => groups.push((p.category.clone(), vec![p])),
        }
    }
    groups
}

/// 首页: category tabs (anchors, so they work without JavaScript) and product cards.
#[component]
pub fn HomePage() -> impl IntoView {
    let products = Resource::new(|| (), |_| list_products());
    view! {
        <Title text="首页" />
        <header class="home-header">
            <div class="brand">"wxmall"<span class="brand-sub">" 精选好物"</span></div>
        </header>
        <CouponStrip />
        <Suspense fallback=PageSkeleton>
            {move || Suspend::new(async move {
                match products.await {
                    Err(e) => view! { <ErrorView error=e /> }.into_any(),
                    Ok(list) => {
                        let image = list
                            .first()
                            .map(|p| p.image.clone())
                            .unwrap_or_else(|| "/favicon.svg".into());
                        let groups = by_category(list);
                        let mut shown = 0usize;
                        view! {
                            <ShareCard title="wxmall 精选好物" desc="新鲜水果、零食、家居好物，微信里下单" path="/" image=image />
                            <nav class="cat-tabs" aria-label="商品分类">
                                {groups.iter().enumerate().map(|(i, (name, _))| view! {
                                    <a href=format!("#cat-{i}")>{name.clone()}</a>
                                }).collect_view()}
                            </nav>
                            {groups.into_iter().enumerate().map(|(i, (name, items))| view! {
                                <section class="cat-section" id=format!("cat-{i}")>
                                    <h2 class="cat-title">{name}</h2>
                                    <div class="grid">
                                        {items.into_iter().map(|p| {
                                            shown += 1;
                                            view! { <ProductCard product=p eager={shown <= 4} /> }
                                        }).collect_view()}
                                    </div>
                                </section>
                            }).collect_view()}
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}
