//! The page's share card in WeChat (转发给朋友 / 分享到朋友圈): set with
//! `wx.updateAppMessageShareData` and `wx.updateTimelineShareData` once `wx.config` is ready for
//! the URL that counts (the landing URL on iOS), and again on every page that renders one, also
//! after client-side navigation. The link is absolute, on the page's own origin (it must lie in
//! the JS接口安全域名), and carries the share channel `from=share`.

use leptos::prelude::*;

/// A share card: the title and description WeChat shows, the page it opens (a path of this
/// shop) and its picture (a path or an absolute URL).
#[component]
pub fn ShareCard(
    #[prop(into)] title: String,
    #[prop(into)] desc: String,
    #[prop(into)] path: String,
    #[prop(into)] image: String,
) -> impl IntoView {
    #[cfg(feature = "hydrate")]
    {
        let ready = use_context::<super::WxReady>();
        Effect::new(move |_| {
            let Some(ready) = ready else { return };
            if !ready.0.get() {
                return;
            }
            let Some(origin) = web_sys::window().and_then(|w| w.location().origin().ok()) else {
                return;
            };
            let sep = if path.contains('?') { '&' } else { '?' };
            let img_url = if image.starts_with("http://") || image.starts_with("https://") {
                image.clone()
            } else {
                format!("{origin}{image}")
            };
            crate::wx::share(&crate::wx::Share {
                title: title.clone(),
                desc: desc.clone(),
                link: format!("{origin}{path}{sep}from=share"),
                img_url,
            });
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (title, desc, path, image);
}
