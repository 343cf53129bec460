//! The page's share card in WeChat (转发给朋友 / 分享到朋友圈): set with
//! `wx.updateAppMessageShareData` and `wx.updateTimelineShareData` once `wx.config` is ready for
//! the page. The link is absolute, on the page's own origin (it must lie in the JS接口安全域名),
//! and carries the share channel `from=share`.

use leptos::prelude::*;

/// A share card: the title and description WeChat shows, the page it opens (a path of this
/// shop) and its picture (a path or an absolute URL). An island that renders nothing: its props
/// travel in the page, its effect runs in the browser. Not lazy, unlike the others: it is in the
/// main wasm (on the home and product pages, small, and made of code every island shares; as a
/// lazy island it cost those pages ten more wasm files, issue 13).
#[island]
pub fn ShareCard(
    #[prop(into)] title: String,
    #[prop(into)] desc: String,
    #[prop(into)] path: String,
    #[prop(into)] image: String,
) -> impl IntoView {
    crate::components::island_started("share_card_loader");
    #[cfg(feature = "hydrate")]
    let ready = super::wx_ready();
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if !ready.get() {
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
    #[cfg(not(feature = "hydrate"))]
    let _ = (title, desc, path, image);
}
