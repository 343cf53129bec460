use leptos::prelude::*;

/// Whether `wx.config` succeeded for the URL that counts right now (context, set by [`WxSdk`]).
#[derive(Clone, Copy)]
pub struct WxReady(pub RwSignal<bool>);

/// Configures the JS-SDK once hydrated, and again after client-side navigation whenever the URL
/// WeChat checks changed (the current URL on Android; on iOS the landing URL, which does not).
/// Renders nothing.
#[component]
pub fn WxSdk() -> impl IntoView {
    let ready = RwSignal::new(false);
    provide_context(WxReady(ready));
    #[cfg(feature = "hydrate")]
    {
        let location = leptos_router::hooks::use_location();
        let last = StoredValue::new(String::new());
        Effect::new(move |_| {
            // Re-run on every navigation.
            let _ = (location.pathname.get(), location.search.get());
            if super::wx_env().jssdk_url.is_empty() {
                return;
            }
            leptos::task::spawn_local(async move {
                if !crate::wx::wait_for_sdk(8000).await {
                    return;
                }
                // The router updates its signals before the browser's URL (pushState): read
                // the URL a tick later.
                crate::wx::sleep_ms(30).await;
                let url = crate::wx::sign_url();
                if last.get_value() == url {
                    return;
                }
                last.set_value(url.clone());
                ready.set(false);
                let result = match crate::api::sign_jssdk_config(url.clone()).await {
                    Ok(cfg) => crate::wx::config(&cfg).await,
                    Err(e) => Err(e.message),
                };
                match result {
                    // Still the URL that counts (no navigation meanwhile)?
                    Ok(()) if last.get_value() == url => ready.set(true),
                    Ok(()) => {}
                    Err(e) => {
                        leptos::logging::warn!("wx.config failed: {e}");
                        // Let the next navigation try again.
                        last.set_value(String::new());
                    }
                }
            });
        });
    }
}
