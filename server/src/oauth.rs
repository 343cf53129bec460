//! Entry and identity: WeChat web authorization (网页授权) in front of the pages.
//!
//! A page GET from inside WeChat whose session has no openid is sent to WeChat's authorize URL
//! (`snsapi_base`, silent). The `state` is a random token stored server side, single-use (deleted
//! when it comes back), bound to the browser session, valid for ten minutes, and carrying the
//! page to return to. The callback exchanges the code on the server, binds the openid to a
//! fresh session and goes back. An openid is only ever taken from WeChat's answer to that
//! exchange, never from a query string or form.
//!
//! Every page signs in with `snsapi_base`, the 我的 page too: asking for `snsapi_userinfo` on a
//! first visit is what makes WeChat show a visitor the snapshot page (朋友圈快照页) instead of the
//! shop. The profile is asked for only when the shopper presses 授权头像昵称 on 我的
//! (`/wechat/oauth/profile`); a "no" there still leaves the shopper signed in (silently, through
//! `snsapi_base`, if they were not yet) and is remembered.
//!
//! Outside WeChat (real credentials), pages ask to be opened in WeChat, with a QR code. In
//! sandbox mode any browser counts as WeChat's. Clients that are no browser at all (no
//! `Mozilla/` user agent: API clients, health checks, crawlers' fetchers) are left alone, as is
//! everything that is not a page (`/api`, `/pkg`, `/sandbox`, `/wechat`, files).

use crate::db::Db;
use crate::session::{self, SessionConfig};
use crate::shop::sessions;
use crate::wx::Wechat;
use app::port::SessionId;
use axum::extract::{Query, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use std::sync::Arc;
use wechat::mp::oauth::Scope;

/// How long a `state` stays usable (WeChat's codes live 5 minutes; people are slower).
const STATE_TTL_SECS: i64 = 600;

#[derive(Clone)]
pub struct OAuthState {
    pub wx: Arc<Wechat>,
    pub pool: Db,
    pub sessions: SessionConfig,
    /// Each redirect to WeChat writes a state row: counted per client address.
    pub limits: Option<Arc<crate::guard::Limits>>,
}

/// What one trip to WeChat's authorize page is for (stored with its `state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Flow {
    scope: Scope,
    /// This flow is the one restart allowed after "code been used" (40163).
    restarted: bool,
    /// The shopper declined `snsapi_userinfo` just before; remember it once signed in.
    profile_declined: bool,
}

impl Flow {
    fn new(scope: Scope) -> Self {
        Self {
            scope,
            restarted: false,
            profile_declined: false,
        }
    }
}

fn parse_scope(s: &str) -> Scope {
    if s == Scope::UserInfo.as_str() {
        Scope::UserInfo
    } else {
        Scope::Base
    }
}

/// Paths that are never pages.
fn is_page_path(path: &str) -> bool {
    const NOT_PAGES: [&str; 8] = [
        "/api/",
        "/pkg/",
        "/images/",
        "/sandbox",
        "/wechat/",
        "/healthz",
        "/favicon",
        "/MP_verify_",
    ];
    !NOT_PAGES.iter().any(|p| path.starts_with(p))
}

/// The page to come back to: a same-origin relative path only (`/…`, not `//…` or `/\…`, no
/// control characters); anything else becomes `/`.
pub fn safe_return_path(raw: &str) -> String {
    let ok = raw.starts_with('/')
        && !raw.starts_with("//")
        && !raw.starts_with("/\\")
        && raw.len() <= 1024
        && !raw.chars().any(|c| c.is_control() || c == '\\');
    if ok {
        raw.to_string()
    } else {
        "/".to_string()
    }
}

fn user_agent(req: &Request) -> &str {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The middleware in front of the pages (inside the session middleware).
pub async fn entry(State(st): State<OAuthState>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET || !is_page_path(req.uri().path()) {
        return next.run(req).await;
    }
    let ua = user_agent(&req);
    let is_browser = ua.starts_with("Mozilla/");
    let in_wechat = ua.contains("MicroMessenger") || (st.wx.sandbox && is_browser);
    if !is_browser && !in_wechat {
        return next.run(req).await;
    }
    let Some(session) = req.extensions().get::<SessionId>().cloned() else {
        return next.run(req).await;
    };
    let scope = match sessions::identity(&st.pool, &session).await {
        Ok(Some(_)) => return next.run(req).await,
        Ok(None) => Scope::Base,
        Err(_) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, "服务器开小差了", "/"),
    };
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    if !in_wechat {
        return open_in_wechat(&st.wx, &safe_return_path(&path_and_query));
    }
    if let Some(limits) = &st.limits {
        let ip = req
            .extensions()
            .get::<app::port::ClientIp>()
            .map(|c| c.0)
            .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
        if let Err(retry) = limits.admit(crate::guard::Class::OAuth, ip, None).await {
            return crate::guard::too_many(retry);
        }
    }
    match start(
        &st,
        &session,
        &safe_return_path(&path_and_query),
        Flow::new(scope),
    )
    .await
    {
        Ok(r) => r,
        Err(r) => r,
    }
}

/// `GET /wechat/oauth/profile`: the 我的 page's 授权 button — ask WeChat for the profile now
/// (`snsapi_userinfo`), then come back to the 我的 page.
pub async fn ask_profile(State(st): State<OAuthState>, req: Request) -> Response {
    let Some(session) = req.extensions().get::<SessionId>().cloned() else {
        return error_page(StatusCode::BAD_REQUEST, "请开启 Cookie 后重试", "/me");
    };
    match start(&st, &session, "/me", Flow::new(Scope::UserInfo)).await {
        Ok(r) | Err(r) => r,
    }
}

/// Stores a fresh state and redirects to WeChat's authorize page.
async fn start(
    st: &OAuthState,
    session: &SessionId,
    return_to: &str,
    flow: Flow,
) -> Result<Response, Response> {
    let state = wechat::mp::oauth::new_state();
    let now = crate::shop::now();
    let stored = async {
        crate::sql!(&st.pool, e => sqlx::query("DELETE FROM oauth_states WHERE expires_at < $1")
            .bind(now)
            .execute(e).await.map(crate::db::Done::from))?;
        crate::sql!(&st.pool, e => sqlx::query(
            "INSERT INTO oauth_states \
             (state, session_id, return_to, restarted, expires_at, scope, profile_declined) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&state)
        .bind(&session.0)
        .bind(return_to)
        .bind(flow.restarted)
        .bind(now + STATE_TTL_SECS)
        .bind(flow.scope.as_str())
        .bind(flow.profile_declined)
        .execute(e).await.map(crate::db::Done::from))
    }
    .await;
    if let Err(e) = stored {
        tracing::error!(error = %e, "cannot store the OAuth state");
        return Err(error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "服务器开小差了，请稍后再试",
            return_to,
        ));
    }
    let url = st
        .wx
        .oauth
        .authorize_url(&st.wx.oauth_redirect_uri(), flow.scope, &state)
        .map_err(|e| {
            tracing::error!(error = %e, "cannot build the authorize URL");
            error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "服务器开小差了，请稍后再试",
                return_to,
            )
        })?;
    Ok(no_store(found(&url)))
}

#[derive(serde::Deserialize)]
pub struct Callback {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

/// `GET /wechat/oauth/callback?code=…&state=…`
pub async fn callback(
    State(st): State<OAuthState>,
    Query(q): Query<Callback>,
    req: Request,
) -> Response {
    let Some(session) = req.extensions().get::<SessionId>().cloned() else {
        return error_page(StatusCode::BAD_REQUEST, "请开启 Cookie 后重试", "/");
    };
    let state = q.state.unwrap_or_default();
    if !wechat::mp::oauth::is_valid_state(&state) {
        return error_page(StatusCode::BAD_REQUEST, "登录链接无效，请重新进入", "/");
    }
    // Single use: whoever deletes the row owns it.
    let row: Option<(String, String, bool, i64, String, bool)> = match crate::sql!(&st.pool, e => sqlx::query_as(
        "DELETE FROM oauth_states WHERE state = $1 \
         RETURNING session_id, return_to, restarted, expires_at, scope, profile_declined",
    )
    .bind(&state)
    .fetch_optional(e).await)
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the OAuth state");
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "服务器开小差了，请稍后再试",
                "/",
            );
        }
    };
    let Some((owner, return_to, restarted, expires_at, scope, profile_declined)) = row else {
        tracing::warn!("OAuth callback with an unknown or used state");
        return error_page(StatusCode::BAD_REQUEST, "登录链接已失效，请重新进入", "/");
    };
    let return_to = safe_return_path(&return_to);
    if owner != session.0 || expires_at < crate::shop::now() {
        tracing::warn!(
            expired = expires_at < crate::shop::now(),
            "OAuth state of another session or expired"
        );
        return error_page(
            StatusCode::BAD_REQUEST,
            "登录链接已失效，请重新进入",
            &return_to,
        );
    }
    let flow = Flow {
        scope: parse_scope(&scope),
        restarted,
        profile_declined,
    };
    let Some(code) = q.code.filter(|c| !c.is_empty()) else {
        if flow.scope == Scope::UserInfo {
            return profile_declined_by(&st, &session, &return_to).await;
        }
        return error_page(
            StatusCode::FORBIDDEN,
            "需要微信授权才能继续购物",
            &return_to,
        );
    };
    match st.wx.oauth.exchange_code(&code).await {
        // The 朋友圈快照页 (a page opened from a Moments share): WeChat hands out a virtual
        // openid without the user's consent. It is never bound; the shopper is asked to open
        // the full page, where the real sign-in happens.
        Ok(token) if token.is_snapshotuser == Some(1) => {
            tracing::info!("snapshot-page visitor: not signed in");
            snapshot_page(&return_to)
        }
        Ok(token) => {
            let fresh = session::new_session_id();
            let user = match sessions::bind_openid(
                &st.pool,
                &session,
                &fresh,
                &token.openid,
                token.unionid.as_deref(),
            )
            .await
            {
                Ok(user) => user,
                Err(e) => {
                    tracing::error!(error = %e, "cannot bind the openid");
                    return error_page(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "服务器开小差了，请稍后再试",
                        &return_to,
                    );
                }
            };
            tracing::info!(scope = %token.scope, "WeChat user signed in");
            // The profile is a nicety: without it the shopper is still signed in. Not getting
            // it counts as a "no" for a while, or the 我的 page would send the shopper back to
            // WeChat on every visit while WeChat fails.
            let mut got_profile = false;
            if flow.scope == Scope::UserInfo && token.has_userinfo_scope() {
                match st
                    .wx
                    .oauth
                    .userinfo(&token.access_token, &token.openid)
                    .await
                {
                    Ok(info) => {
                        match sessions::save_profile(
                            &st.pool,
                            user,
                            &info.nickname,
                            &info.headimgurl,
                        )
                        .await
                        {
                            Ok(()) => got_profile = true,
                            Err(e) => {
                                tracing::error!(error = %e, "cannot store the WeChat profile")
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "WeChat userinfo failed"),
                }
            }
            if !got_profile && (flow.scope == Scope::UserInfo || flow.profile_declined) {
                if let Err(e) = sessions::decline_profile(&st.pool, user).await {
                    tracing::error!(error = %e, "cannot remember the declined profile");
                }
            }
            let jar = session::issue(&st.sessions, &fresh);
            no_store((jar, found(&return_to)).into_response())
        }
        Err(wechat::MpError::Api(e)) if e.is_code_unusable() => {
            // A refresh or the back button replays a used code: start over once, never loop.
            if restarted {
                tracing::warn!(error = %e, "OAuth code unusable again after a restart");
                return error_page(StatusCode::BAD_REQUEST, "微信授权失败，请重试", &return_to);
            }
            tracing::info!(error = %e, "OAuth code unusable; restarting the flow once");
            let again = Flow {
                restarted: true,
                ..flow
            };
            match start(&st, &session, &return_to, again).await {
                Ok(r) | Err(r) => r,
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "OAuth code exchange failed");
            error_page(
                StatusCode::BAD_GATEWAY,
                "微信授权暂时不可用，请稍后再试",
                &return_to,
            )
        }
    }
}

/// The shopper pressed 拒绝 on WeChat's profile consent (WeChat comes back without a code).
/// Signed in already: remember the "no" and go back. Not yet: sign in silently with
/// `snsapi_base`, carrying the "no" along.
async fn profile_declined_by(st: &OAuthState, session: &SessionId, return_to: &str) -> Response {
    match sessions::identity(&st.pool, session).await {
        Ok(Some(id)) => {
            if let Err(e) = sessions::decline_profile(&st.pool, id.user_id).await {
                tracing::error!(error = %e, "cannot remember the declined profile");
            }
            tracing::info!("WeChat profile declined");
            no_store(found(return_to))
        }
        Ok(None) => {
            let flow = Flow {
                profile_declined: true,
                ..Flow::new(Scope::Base)
            };
            match start(st, session, return_to, flow).await {
                Ok(r) | Err(r) => r,
            }
        }
        Err(_) => error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "服务器开小差了，请稍后再试",
            return_to,
        ),
    }
}

/// 302 Found, what WeChat's own redirects use (axum's `Redirect::to` is 303).
fn found(location: &str) -> Response {
    match header::HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => error_page(StatusCode::BAD_REQUEST, "链接无效", "/"),
    }
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title} · wxmall</title>\
<style>body{{font-family:-apple-system,BlinkMacSystemFont,\"PingFang SC\",\"Microsoft YaHei\",sans-serif;\
margin:0;padding:48px 24px;text-align:center;color:#191919;background:#f7f7f7}}\
h1{{font-size:20px;font-weight:600}}p{{color:#666}}a.btn{{display:inline-block;margin-top:16px;padding:10px 28px;\
border-radius:8px;background:#07c160;color:#fff;text-decoration:none}}svg{{width:220px;height:220px;background:#fff;padding:8px}}</style>\
</head><body>{body}</body></html>"
    )
}

/// A page for a failed sign-in, with a link that starts again.
fn error_page(status: StatusCode, message: &str, retry: &str) -> Response {
    let retry = safe_return_path(retry);
    let body = format!(
        "<h1 id=\"oauth-error\">{}</h1><p>链接可能已过期或被重复使用。</p><a class=\"btn\" id=\"oauth-retry\" href=\"{}\">重新进入</a>",
        escape(message),
        escape(&retry)
    );
    no_store((status, Html(page("无法登录", &body))).into_response())
}

/// The answer for a 朋友圈快照页 visitor: how to get to the full shop.
fn snapshot_page(return_to: &str) -> Response {
    let retry = safe_return_path(return_to);
    let body = format!(
        "<h1 id=\"snapshot-page\">请前往完整服务</h1>\
<p>当前为朋友圈快照页，无法登录和购买。请点击页面底部的“使用完整服务”，或在微信中重新打开本店。</p>\
<a class=\"btn\" id=\"snapshot-retry\" href=\"{}\">重新进入</a>",
        escape(&retry)
    );
    no_store((StatusCode::OK, Html(page("请前往完整服务", &body))).into_response())
}

/// Outside WeChat with real credentials: the shop needs the WeChat identity to sell.
fn open_in_wechat(wx: &Wechat, path: &str) -> Response {
    let url = format!("{}{}", wx.public_url, path);
    let svg = qrcode::QrCode::new(url.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color>()
                .min_dimensions(200, 200)
                .quiet_zone(false)
                .build()
        })
        .unwrap_or_default();
    // The SVG comes from the renderer (no user text in it); drop its XML prolog.
    let svg = svg.find("<svg").map(|i| &svg[i..]).unwrap_or("");
    let body = format!(
        "<h1 id=\"open-in-wechat\">请在微信中打开</h1><p>用微信“扫一扫”扫描下方二维码继续购物</p>\
<div class=\"qr\" data-testid=\"qr\">{svg}</div><p class=\"url\">{}</p>",
        escape(&url)
    );
    no_store(Html(page("请在微信中打开", &body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_origin_relative_paths_come_back() {
        assert_eq!(safe_return_path("/orders/3?x=1"), "/orders/3?x=1");
        for bad in [
            "//evil.example/x",
            "/\\evil.example",
            "https://evil.example/",
            "evil",
            "",
            "/a\r\nb",
        ] {
            assert_eq!(safe_return_path(bad), "/", "{bad:?}");
        }
    }

    #[test]
    fn pages_are_what_is_not_api_or_files() {
        assert!(is_page_path("/"));
        assert!(is_page_path("/orders/1"));
        for p in [
            "/api/get_cart",
            "/pkg/wxmall.js",
            "/sandbox/jweixin.js",
            "/wechat/notify/v3",
            "/images/a.svg",
        ] {
            assert!(!is_page_path(p), "{p}");
        }
    }
}
