use crate::api::get_profile;
use crate::components::{ErrorView, PageSkeleton};
use crate::model::{OrderFilter, Profile};
use leptos::prelude::*;
use leptos_meta::Title;

/// 我的: the shopper's WeChat profile (shared through `snsapi_userinfo`, asked for by the
/// server when this page is opened without it) and shortcuts into 我的订单 by status.
#[component]
pub fn MePage() -> impl IntoView {
    let profile = Resource::new(|| (), |_| get_profile());
    view! {
        <Title text="我的" />
        <Transition fallback=PageSkeleton>
            {move || Suspend::new(async move {
                match profile.await {
                    Err(e) => view! { <ErrorView error=e /> }.into_any(),
                    Ok(p) => view! { <MeView profile=p /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn MeView(profile: Profile) -> impl IntoView {
    let shared = profile.nickname.is_some();
    let name = profile
        .nickname
        .clone()
        .unwrap_or_else(|| "微信用户".to_string());
    let initial: String = name.chars().take(1).collect();
    let avatar = match profile.avatar_url.clone() {
        Some(src) => view! {
            <img class="avatar" src=src alt="" width="64" height="64" data-testid="avatar" />
        }
        .into_any(),
        None => {
            view! { <div class="avatar avatar-empty" aria-hidden="true">{initial}</div> }.into_any()
        }
    };
    let counts = profile.order_counts;
    view! {
        <h1 class="visually-hidden">"我的"</h1>
        <section class="profile-card" data-testid="profile">
            {avatar}
            <div class="profile-text">
                <div class="profile-name" data-testid="nickname">{name}</div>
                {(!profile.wechat).then(|| view! { <div class="profile-sub">"未登录微信"</div> })}
            </div>
            // A full navigation (rel=external): it leaves the app for WeChat's consent page.
            {profile.wechat.then(|| view! {
                <a class="profile-action" href="/wechat/oauth/profile" rel="external" data-testid="share-profile">
                    {if shared { "更新头像昵称" } else { "授权头像昵称" }}
                </a>
            })}
        </section>
        <section class="panel">
            <a class="panel-head" href="/orders" data-testid="all-orders">
                <h2 class="section-title">"我的订单"</h2>
                <span class="muted">"全部订单 ›"</span>
            </a>
            <nav class="order-shortcuts" aria-label="按状态查看订单">
                {OrderFilter::ALL.into_iter().map(|s| {
                    let n = counts.get(s);
                    view! {
                        <a href=format!("/orders?status={}", s.as_str()) data-testid=format!("count-{}", s.as_str())>
                            <span class="shortcut-count">{n}</span>
                            <span class="shortcut-label">{s.label()}</span>
                        </a>
                    }
                }).collect_view()}
            </nav>
        </section>
    }
}
