//! The axum router: Leptos pages and server functions, static assets, health.

use crate::assets;
use crate::session::{self, SessionConfig};
use app::port::SharedShop;
use app::{shell, App};
use axum::extract::FromRef;
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::path::Path;
use std::sync::Arc;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// The largest request body the pages and the API take (WeChat's routes have their own cap).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The longest a page or API request may take.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What every handler can reach. Cloned for every request — axum clones each route's service,
/// and Leptos's page and server-function handlers hold the state — so it is one shared
/// allocation: a clone is one reference count, not Leptos's options' and the WeChat settings'
/// every string (6.7% of the CPU of `GET /` served from the page cache, `perf`, issue 13).
#[derive(Clone)]
pub struct AppState(Arc<AppStateFields>);

/// The fields of [`AppState`].
pub struct AppStateFields {
    pub leptos: LeptosOptions,
    pub shop: SharedShop,
    /// What pages need to know about WeChat (JS-SDK URL, sandbox banner).
    pub wx_env: app::model::WxEnv,
}

impl AppState {
    pub fn new(leptos: LeptosOptions, shop: SharedShop, wx_env: app::model::WxEnv) -> Self {
        Self(Arc::new(AppStateFields {
            leptos,
            shop,
            wx_env,
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateFields;
    fn deref(&self) -> &AppStateFields {
        &self.0
    }
}

/// The WeChat side of the router: OAuth entry and callback, notifications, the sandbox.
#[derive(Clone)]
pub struct WechatRoutes {
    pub wx: std::sync::Arc<crate::wx::Wechat>,
    pub pool: crate::db::Db,
    pub payments: crate::payments::Payments,
    /// The official account's server, when configured.
    pub mp: Option<crate::mp::MpState>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

async fn health() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-store")], "ok")
}

/// Server functions answer every error with status 500; this gives each API error the status
/// its stable `code` stands for (400 validation, 404 not found, 409 out of stock …).
/// Redirects of plain form posts are left alone.
pub async fn api_error_status(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let is_api = req.uri().path().starts_with("/api/");
    let res = next.run(req).await;
    if !is_api || res.status() != axum::http::StatusCode::INTERNAL_SERVER_ERROR {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        parts.status = axum::http::StatusCode::INTERNAL_SERVER_ERROR;
        return axum::response::Response::from_parts(parts, axum::body::Body::empty());
    };
    if let Ok(err) = serde_json::from_slice::<app::error::ApiError>(&bytes) {
        if let Ok(status) = axum::http::StatusCode::from_u16(err.code.http_status()) {
            parts.status = status;
        }
    }
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// The app's routes, generated once per process. `generate_route_list` renders the app while a
/// process-global flag (leptos_server's `SuppressResourceLoad`) makes every resource polled for
/// the first time meanwhile wait forever (leptos-rs/leptos#4773): a page rendering then in
/// another shop of the same process — the tests run many at once — would never finish.
/// Generated once, before any shop of the process can serve, the window never meets a render.
fn route_list() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> =
        std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

pub fn router(
    state: AppState,
    sessions: SessionConfig,
    gate: crate::guard::Gate,
    site_root: &Path,
    wechat: Option<WechatRoutes>,
    admin: Option<crate::admin::AdminState>,
    pages: Option<crate::page_cache::PageCache>,
) -> Router {
    // The closures below are cloned with their route for every request (see `AppState`): they
    // hold the state, and clone what they provide only when a page is rendered.
    let context = {
        let state = state.clone();
        move || {
            provide_context(state.shop.clone());
            provide_context(state.wx_env.clone());
        }
    };
    let app_shell = {
        let state = state.clone();
        move || shell(state.leptos.clone())
    };

    // Unknown paths that are no file render the app, whose router answers 404.
    let not_found = {
        let handler =
            leptos_axum::render_app_to_stream_with_context(context.clone(), app_shell.clone());
        axum::routing::any(handler)
    };
    let static_files = ServeDir::new(site_root)
        .precompressed_br()
        .precompressed_gzip()
        .fallback(not_found);

    let mut pages_and_api =
        Router::new().leptos_routes_with_context(&state, route_list(), context, app_shell);
    // Rendered pages everyone sees alike, kept while the catalogue stays as it was
    // (`page_cache`); inside the OAuth entry and the session layers added below.
    if let Some(pages) = pages {
        pages_and_api = pages_and_api.layer(axum::middleware::from_fn_with_state(
            pages,
            crate::page_cache::serve,
        ));
    }
    let mut wechat_only: Router<AppState> = Router::new();
    if let Some(w) = wechat {
        let oauth_state = crate::oauth::OAuthState {
            wx: w.wx.clone(),
            pool: w.pool.clone(),
            sessions: sessions.clone(),
            limits: gate.limits.clone(),
        };
        pages_and_api = pages_and_api
            .route(
                "/wechat/oauth/callback",
                get(crate::oauth::callback).with_state(oauth_state.clone()),
            )
            .route(
                "/wechat/oauth/profile",
                get(crate::oauth::ask_profile).with_state(oauth_state.clone()),
            )
            .layer(axum::middleware::from_fn_with_state(
                oauth_state,
                crate::oauth::entry,
            ));
        wechat_only = wechat_only.merge(
            crate::payments::notify::router(crate::payments::notify::NotifyState {
                payments: w.payments.clone(),
                gateway: w.wx.pay.clone(),
                appid: w.wx.appid.clone(),
                mchid: w.wx.mchid.clone(),
                version: w.wx.pay_version,
                refusals: Default::default(),
            })
            .layer(axum::middleware::from_fn_with_state(
                gate.clone(),
                crate::guard::rate_limit,
            )),
        );
        if let Some(mp) = w.mp.clone() {
            wechat_only = wechat_only.route(
                "/wechat/mp",
                get(crate::mp::verify)
                    .post(crate::mp::receive)
                    .with_state(mp)
                    .layer(tower_http::limit::RequestBodyLimitLayer::new(
                        wechat::mp::server::MAX_MESSAGE_BYTES,
                    )),
            );
        }
        #[cfg(feature = "sandbox")]
        if let Some(sb) = &w.wx.embedded {
            wechat_only = wechat_only.nest_service("/sandbox", wechat_sandbox::router(sb.clone()));
        }
    }
    // Rate limits run inside the session layer (they count per session too).
    let pages_and_api = pages_and_api
        .layer(axum::middleware::from_fn_with_state(
            gate.clone(),
            crate::guard::rate_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            sessions.clone(),
            session::form_errors,
        ))
        .layer(axum::middleware::from_fn_with_state(
            sessions,
            session::middleware,
        ))
        .layer(axum::middleware::from_fn_with_state(
            gate.clone(),
            crate::guard::api_writes,
        ))
        // Bodies: the API's JSON and the plain forms are small (an order with 20 lines and an
        // address is ~2 KB); more is refused with 413 before it is read.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            MAX_BODY_BYTES,
        ))
        // A request that takes longer than this (a stuck WeChat call has its own, shorter,
        // timeout) is answered 408 and its work dropped.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::from_fn(api_error_status))
        // Pages and JSON travel compressed when the client asks (the home page: 17 KB of HTML,
        // ≈3.4 KB gzip). Outside `api_error_status`, which reads the plain body. Static files
        // are precompressed instead, and WeChat's routes answer plain, as WeChat expects.
        .layer(tower_http::compression::CompressionLayer::new());

    // The console's API: no shopper session, its own cookie and checks (`admin`).
    let console = match admin {
        Some(st) => {
            let timeout = || {
                tower_http::timeout::TimeoutLayer::with_status_code(
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    REQUEST_TIMEOUT,
                )
            };
            // The pages (/admin, server-rendered forms) call the same API, in process.
            let api_for_forms: Router = Router::new().nest(
                "/admin/api",
                crate::admin::router(st.clone()).layer(timeout()),
            );
            Router::new()
                .nest(
                    "/admin/api",
                    crate::admin::router(st.clone()).layer(timeout()),
                )
                .merge(crate::admin::pages::router(st.clone(), api_for_forms))
                // Uploaded pictures: named by their content, so cached for a year.
                .nest_service(
                    "/uploads",
                    tower::ServiceBuilder::new()
                        .layer(SetResponseHeaderLayer::overriding(
                            header::CACHE_CONTROL,
                            HeaderValue::from_static("public, max-age=31536000, immutable"),
                        ))
                        .service(ServeDir::new(&st.uploads)),
                )
        }
        None => Router::new(),
    };
    Router::new()
        .route("/healthz", get(health))
        .merge(console)
        .merge(wechat_only)
        .merge(pages_and_api)
        .fallback_service(
            Router::new()
                .fallback_service(static_files)
                // Files read once, then answered from memory (`assets::memory`).
                .layer(axum::middleware::from_fn_with_state(
                    assets::memory::MemorySite::new(site_root),
                    assets::memory::serve,
                ))
                .layer(axum::middleware::from_fn(assets::cache_headers)),
        )
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ))
        // Outermost but for tracing: the client's address, and the headers every answer carries.
        .layer(axum::middleware::from_fn_with_state(
            gate,
            crate::guard::identify,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
