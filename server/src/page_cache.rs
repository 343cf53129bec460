//! Rendered pages kept between shoppers: the home page and the product pages are the same for
//! everyone, and rendering one costs far more CPU than serving it (issue 13).
//!
//! - **What**: `GET /` and `GET /product/{id}` without a query string, answered 200 with HTML
//!   and no `Set-Cookie`, for a request that carries no form error to show (a plain form's error
//!   is rendered into the page it returns to, for that shopper only).
//! - **How long**: a page is kept with the catalogue's current copy ([`CatalogueCache`]), so any
//!   change to categories, products, SKUs, stock or coupons — by this instance, another one, or
//!   SQL by hand — drops it at once, on every instance; and for at most [`MAX_AGE`], because a
//!   coupon's start or end is decided by the clock, not by a write.
//! - **Each answer gets its own CSP nonce**: the kept page's nonce is replaced, in the HTML and
//!   in the `Content-Security-Policy` header, by a fresh one.
//!
//! This layer sits inside the OAuth entry and the session layers: a shopper who must sign in is
//! sent to WeChat before any page is looked up, and sessions are kept as for any page.

use crate::db::Db;
use crate::shop::catalog_cache::{CachedPage, CatalogueCache};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::{Duration, Instant};

/// The longest a rendered page is served (coupons start and stop by the clock).
pub const MAX_AGE: Duration = Duration::from_secs(5);
/// A page larger than this is not kept (the home page is ≈17 KB)…
const MAX_PAGE_BYTES: usize = 1 << 20;
/// …and one larger than this is not even read into memory to decide (served as it streams).
const MAX_READ_BYTES: usize = 16 << 20;

#[derive(Clone)]
pub struct PageCache {
    pub catalogue: CatalogueCache,
    pub pool: Db,
}

/// Whether the page at `path` is the same for every shopper.
fn shared_page(path: &str) -> bool {
    path == "/"
        || path.strip_prefix("/product/").is_some_and(|id| {
            // The canonical form only (`/product/01` is rendered, never kept): at most one kept
            // page per product.
            !id.is_empty()
                && id.len() <= 18
                && !id.starts_with('0')
                && id.bytes().all(|b| b.is_ascii_digit())
        })
}

/// The nonce of a `Content-Security-Policy` value (`'nonce-…'`).
fn nonce_of(csp: &str) -> Option<&str> {
    let start = csp.find("'nonce-")? + "'nonce-".len();
    let len = csp[start..].find('\'')?;
    let nonce = &csp[start..start + len];
    // Leptos's nonces are 16 random bytes in base64: long enough that replacing every
    // occurrence in the page can only ever touch the nonce itself.
    (nonce.len() >= 16).then_some(nonce)
}

pub async fn serve(State(cache): State<PageCache>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET
        || req.uri().query().is_some()
        || !shared_page(req.uri().path())
        || req.extensions().get::<app::port::FormError>().is_some()
    {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let (hit, slot) = match cache.catalogue.page(&cache.pool, &path, MAX_AGE).await {
        Ok(found) => found,
        Err(_) => return next.run(req).await,
    };
    if let Some(page) = hit {
        return answer(&page);
    }
    let res = next.run(req).await;
    let keep = res.status() == StatusCode::OK
        && !res.headers().contains_key(header::SET_COOKIE)
        && res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/html"));
    let nonce = res
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .and_then(nonce_of)
        .map(str::to_string);
    let (Some(nonce), true) = (nonce, keep) else {
        return res;
    };
    // Rendering streams; a page with a known length above the limit is passed on as it is.
    let declared = axum::body::HttpBody::size_hint(res.body()).upper();
    if declared.is_some_and(|n| n > MAX_READ_BYTES as u64) {
        return res;
    }
    let (parts, body) = res.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_READ_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            // The render failed midway (or grew past any sensible page): the headers said 200,
            // but a cut page must not pass for a whole one.
            tracing::error!(error = %e, path, "a page's render failed while it was read");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    if bytes.len() > MAX_PAGE_BYTES {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let Ok(html) = String::from_utf8(bytes.to_vec()) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let mut headers = parts.headers.clone();
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::DATE);
    cache.catalogue.keep_page(
        slot,
        &path,
        CachedPage {
            made: Instant::now(),
            headers,
            html,
            nonce,
        },
    );
    Response::from_parts(parts, Body::from(bytes))
}

/// A kept page with a fresh nonce.
fn answer(page: &CachedPage) -> Response {
    let fresh = leptos::nonce::Nonce::new().to_string();
    let html = page.html.replace(&page.nonce, &fresh);
    let mut res = Response::new(Body::from(html));
    *res.headers_mut() = page.headers.clone();
    if let Some(csp) = page
        .headers
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
    {
        if let Ok(v) = HeaderValue::from_str(&csp.replace(&page.nonce, &fresh)) {
            res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_pages_everyone_sees_alike_are_kept() {
        assert!(shared_page("/"));
        assert!(shared_page("/product/12"));
        for p in [
            "/cart",
            "/me",
            "/orders",
            "/product/",
            "/product/1/x",
            "/product/abc",
            "/product/01",
            "/product/0",
            "/api/list_products",
        ] {
            assert!(!shared_page(p), "{p}");
        }
    }

    #[test]
    fn the_nonce_is_read_from_the_policy() {
        let csp = "default-src 'self'; script-src 'self' 'nonce-AbCdEfGhIjKlMnOpQrStUv' 'wasm-unsafe-eval'";
        assert_eq!(nonce_of(csp), Some("AbCdEfGhIjKlMnOpQrStUv"));
        assert_eq!(nonce_of("script-src 'self'"), None);
        assert_eq!(nonce_of("script-src 'nonce-short'"), None);
    }
}
