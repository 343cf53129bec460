use leptos::prelude::*;

/// Whether `wx.config` succeeded for this page (context of the islands' shared root, set by
/// [`configure_wx`]). Absent while rendering on the server, where it counts as not ready.
#[derive(Clone, Copy)]
pub struct WxReady(pub RwSignal<bool>);

/// Whether `wx.config` succeeded (`false` on the server and until it has). Call it where an
/// island is created, where its context is: inside an event handler there is none, and the
/// answer would always be `false`.
///
/// It stays `false` until the island has hydrated: the server rendered the island with the
/// JS-SDK not ready, and hydration must meet the same view. A lazy island's file may arrive after
/// `wx.config` has succeeded (seen in CI: checkout's 使用微信收货地址 hydrated as a button the
/// server never sent, and the island panicked); its effects run once it is hydrated, and the
/// controls that need the JS-SDK appear then.
pub fn wx_ready() -> Signal<bool> {
    let ready = use_context::<WxReady>();
    let hydrated = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| hydrated.set(true));
    Signal::derive(move || hydrated.get() && ready.is_some_and(|r| r.0.get()))
}

/// Configures the JS-SDK for this page once the wasm runs, and puts [`WxReady`] into the context
/// of the reactive root every island hangs from (call right after `hydrate_islands`). Every
/// navigation is a page load, so once per page: signed for the current URL on Android, for the
/// landing URL on iOS (the same URL, unless the page changed its own address since).
#[cfg(feature = "hydrate")]
pub fn configure_wx() {
    let ready = RwSignal::new(false);
    provide_context(WxReady(ready));
    if super::wx_env().jssdk_url.is_empty() {
        return;
    }
    leptos::task::spawn_local(async move {
        if !crate::wx::wait_for_sdk(8000).await {
            return;
        }
        let url = crate::wx::sign_url();
        let result = match crate::api::sign_jssdk_config(url).await {
            Ok(cfg) => crate::wx::config(&cfg).await,
            Err(e) => Err(e.message),
        };
        match result {
            Ok(()) => ready.set(true),
            Err(e) => leptos::logging::warn!("wx.config failed: {e}"),
        }
    });
}
