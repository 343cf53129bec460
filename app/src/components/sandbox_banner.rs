use crate::model::WxEnv;
use leptos::prelude::*;

/// What the server said about WeChat: from Leptos context while rendering on the server, from
/// the `<meta>` tags the shell wrote into `<head>` once hydrated (so both render the same).
pub fn wx_env() -> WxEnv {
    #[cfg(feature = "hydrate")]
    {
        let meta = |name: &str| {
            web_sys::window()
                .and_then(|w| w.document())
                .and_then(|d| {
                    d.query_selector(&format!("meta[name=\"{name}\"]"))
                        .ok()
                        .flatten()
                })
                .and_then(|m| m.get_attribute("content"))
                .unwrap_or_default()
        };
        WxEnv {
            sandbox: meta("wxmall-sandbox") == "1",
            jssdk_url: meta("wxmall-jssdk"),
        }
    }
    #[cfg(not(feature = "hydrate"))]
    {
        use_context::<WxEnv>().unwrap_or_default()
    }
}

/// A small strip on every page while the shop runs against the embedded WeChat sandbox.
#[component]
pub fn SandboxBanner() -> impl IntoView {
    wx_env().sandbox.then(|| {
        view! {
            <div class="sandbox-banner" role="note" data-testid="sandbox-banner">
                "沙箱模式：未连接真实微信支付"
            </div>
        }
    })
}
