//! Lazy islands (issue 13): every `#[island(lazy)]`'s code — its view, its props' decoding, the
//! server functions it calls — is split by `cargo leptos build --split` into a wasm file of its
//! own, fetched only by pages that show that island. The main wasm keeps what all islands share
//! (Leptos's renderer and reactive system, wasm-bindgen's glue, the allocator).
//!
//! (`ShareCard` is the one island that is not lazy: in the main wasm, nothing to preload.)
//!
//! Each island's body starts with [`island_started`], which does two things:
//! - **on the server**, it writes a `<link rel="preload">` into `<head>` for each of the island's
//!   files (found by the loader's name in the split manifest), so the browser fetches them beside
//!   the main wasm instead of after it.
//! - **in the browser**, it counts the islands that have started: once every `<leptos-island>`
//!   of the page has, and the last one's hydration (synchronous, right after its body) is done,
//!   `<html>` gets the class `hydrated` — what the stylesheet's `.js-only` controls, the
//!   Playwright tests and the slow-phone benchmark wait for.

/// `loader`: the island's loader function in snake case, `<island_in_snake_case>_loader`
/// (Leptos names the split point after it).
pub fn island_started(loader: &'static str) {
    #[cfg(feature = "ssr")]
    prefetch(loader);
    #[cfg(feature = "hydrate")]
    {
        let _ = loader;
        started();
    }
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    let _ = loader;
}

/// Whether `key` (a split point in the manifest: `<name>_<decimal hash>`) is `loader`'s.
#[cfg_attr(not(feature = "ssr"), allow(dead_code))]
fn is_split_point_of(key: &str, loader: &str) -> bool {
    key.strip_prefix(loader)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|hash| !hash.is_empty() && hash.bytes().all(|b| b.is_ascii_digit()))
}

/// The island files this page's `<head>` already preloads (one per response, [`provide`]).
#[cfg(feature = "ssr")]
#[derive(Clone, Default)]
pub struct Preloaded(std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>);

/// Called by the app's root on the server: each response keeps its own list of preloads.
#[cfg(feature = "ssr")]
pub fn provide() {
    leptos::prelude::provide_context(Preloaded::default());
}

/// Writes `<link rel="preload">`s into `<head>` for the files of `loader`'s split point (and the
/// split loader's JS, once), at low priority: on a slow network a page's dozen island files,
/// fetched at the default (high) priority, held back its pictures — the largest paint went from
/// 0.63 s to 1.0 s on the home page and 1.5 s on a product page (`npm run bench`).
/// (`leptos::prefetch_lazy_fn_on_server` is Leptos's way, but its links are written after the
/// render, outside the request's reactive owner: measured here, the product page got them and the
/// home page never did. These are registered from inside the island, in its owner, like any
/// `<Link>`.)
#[cfg(feature = "ssr")]
fn prefetch(loader: &'static str) {
    use leptos::prelude::*;
    use leptos_meta::Link;

    let (Some(manifest), Some(done)) = (
        use_context::<leptos::WasmSplitManifest>(),
        use_context::<Preloaded>(),
    ) else {
        // Built without `--split`, or rendered outside the app: nothing to preload.
        return;
    };
    let Some((pkg, files, split_js)) = manifest
        .0
        .try_with_value(|(pkg, modules, split_js)| {
            modules
                .iter()
                .find(|(k, _)| is_split_point_of(k, loader))
                .map(|(_, files)| (pkg.clone(), files.clone(), split_js.clone()))
        })
        .flatten()
    else {
        return;
    };
    let nonce = leptos::nonce::use_nonce()
        .map(|n| n.to_string())
        .unwrap_or_default();
    let mut done = done.0.lock().unwrap_or_else(|e| e.into_inner());
    if done.insert(split_js.clone()) {
        // `to_html` on a leptos_meta component registers it with the page's `<head>`.
        let _ = view! {
            <Link rel="modulepreload" href=format!("{pkg}/{split_js}") crossorigin=nonce.clone()
                fetchpriority="low" />
        }
        .to_html();
    }
    for file in files {
        if done.insert(file.clone()) {
            let _ = view! {
                <Link rel="preload" href=format!("{pkg}/{file}.wasm") as_="fetch"
                    type_="application/wasm" crossorigin=nonce.clone() fetchpriority="low" />
            }
            .to_html();
        }
    }
}

#[cfg(feature = "hydrate")]
thread_local! {
    static STARTED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    static MARKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// How many islands the page holds (nested ones included).
#[cfg(feature = "hydrate")]
fn islands_on_page() -> u32 {
    web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.query_selector_all("leptos-island").ok())
        .map_or(0, |l| l.length())
}

#[cfg(feature = "hydrate")]
fn started() {
    let n = STARTED.with(|s| {
        s.set(s.get() + 1);
        s.get()
    });
    if n >= islands_on_page() {
        mark_hydrated();
    }
}

/// Called once the main wasm has started: a page without islands is hydrated at once.
#[cfg(feature = "hydrate")]
pub fn main_started() {
    if islands_on_page() == 0 {
        mark_hydrated();
    }
}

/// Adds `hydrated` to `<html>` after the current task (the last island's hydration) is done.
#[cfg(feature = "hydrate")]
fn mark_hydrated() {
    if MARKED.with(|m| m.replace(true)) {
        return;
    }
    leptos::task::spawn_local(async {
        crate::wx::sleep_ms(0).await;
        if let Some(root) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element())
        {
            let _ = root.class_list().add_1("hydrated");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::is_split_point_of;

    #[test]
    fn a_split_point_is_found_by_its_loader_name_only() {
        assert!(is_split_point_of(
            "share_card_loader_13961735312834519232",
            "share_card_loader"
        ));
        assert!(!is_split_point_of(
            "share_card_loader_x1",
            "share_card_loader"
        ));
        assert!(!is_split_point_of(
            "share_card_loader_",
            "share_card_loader"
        ));
        assert!(!is_split_point_of(
            "coupon_card_loader_1",
            "share_card_loader"
        ));
        // A loader whose name extends another's is not the other's.
        assert!(!is_split_point_of(
            "cart_editor_loader_extra_1",
            "cart_editor_loader"
        ));
    }
}
