//! Web authorization: the authorize page (user picker + consent) and the sns endpoints.

use std::collections::HashMap;

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::answer::pre;
use crate::crypto::{ct_eq, random_alnum};
use crate::pages;
use crate::state::{Endpoint, Sandbox, SnsRefresh, SnsToken};
use crate::util::errcode;

pub(crate) const USER_COOKIE: &str = "wxsandbox_user";

/// A validated authorize request.
#[derive(Clone, Debug)]
pub(crate) struct AuthReq {
    pub redirect_uri: String,
    pub scope: String,
    pub state: String,
    pub appid: String,
}

impl AuthReq {
    /// The query string in WeChat's order (for links back to `authorize`).
    pub(crate) fn query(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("appid", &self.appid)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", &self.scope)
            .append_pair("state", &self.state)
            .finish()
    }
}

const ORDER: [&str; 5] = ["appid", "redirect_uri", "response_type", "scope", "state"];

/// Validates the parameters as WeChat does (presence, order, values). Err: (code, message).
pub(crate) fn validate(sb: &Sandbox, pairs: &[(String, String)]) -> Result<AuthReq, (i64, String)> {
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let c = sb.creds();
    let appid = get("appid").unwrap_or_default();
    if appid.is_empty() {
        return Err((10012, "appid不能为空 (appid missing)".into()));
    }
    if appid != c.appid {
        return Err((40013, "invalid appid".into()));
    }
    let redirect_uri = get("redirect_uri").unwrap_or_default();
    if redirect_uri.is_empty() {
        return Err((10011, "redirect_uri不能为空".into()));
    }
    let Ok(ru) = url::Url::parse(redirect_uri) else {
        return Err((
            10003,
            "redirect_uri参数错误 (must be an absolute, URL-encoded http(s) URL)".into(),
        ));
    };
    if !matches!(ru.scheme(), "http" | "https") || ru.host_str().is_none() {
        return Err((
            10003,
            "redirect_uri参数错误 (scheme must be http or https)".into(),
        ));
    }
    let domains = sb.opts().oauth_domains;
    let host = ru.host_str().unwrap_or_default();
    let host_port = match ru.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    if !domains.is_empty() && !domains.iter().any(|d| d == host || *d == host_port) {
        return Err((10003, format!("redirect_uri域名与后台配置不一致 ({host})")));
    }
    match get("response_type") {
        Some("code") => {}
        _ => return Err((10001, "response_type参数错误 (must be code)".into())),
    }
    let scope = get("scope").unwrap_or_default();
    if scope.is_empty() {
        return Err((10010, "scope不能为空".into()));
    }
    if scope != "snsapi_base" && scope != "snsapi_userinfo" {
        return Err((10005, format!("此公众号并没有这些scope的权限 ({scope})")));
    }
    let state = get("state").unwrap_or_default();
    if state.is_empty() {
        return Err((10013, "state不能为空".into()));
    }
    if state.len() > 128 || !state.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err((
            10013,
            "state参数错误 (only [a-zA-Z0-9], at most 128 bytes)".into(),
        ));
    }
    // WeChat matches the link strictly: the five parameters first, in this order.
    let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    if keys.len() < ORDER.len() || keys[..ORDER.len()] != ORDER {
        return Err((
            10016,
            format!(
                "参数顺序错误: expected appid, redirect_uri, response_type, scope, state; got {}",
                keys.join(", ")
            ),
        ));
    }
    Ok(AuthReq {
        appid: appid.to_string(),
        redirect_uri: redirect_uri.to_string(),
        scope: scope.to_string(),
        state: state.to_string(),
    })
}

pub(crate) fn cookie_user(sb: &Sandbox, headers: &HeaderMap) -> Option<usize> {
    for v in headers.get_all(header::COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for part in s.split(';') {
            if let Some((k, val)) = part.trim().split_once('=') {
                if k == USER_COOKIE {
                    if let Some(i) = sb.users().iter().position(|u| u.key == val) {
                        return Some(i);
                    }
                }
            }
        }
    }
    None
}

fn user_cookie(key: &str) -> String {
    format!("{USER_COOKIE}={key}; Path=/; Max-Age=2592000; SameSite=Lax")
}

fn redirect_back(req: &AuthReq, code: Option<&str>) -> Response {
    let mut u = url::Url::parse(&req.redirect_uri).expect("validated");
    {
        let mut qp = u.query_pairs_mut();
        if let Some(c) = code {
            qp.append_pair("code", c);
        }
        qp.append_pair("state", &req.state);
    }
    (StatusCode::FOUND, [(header::LOCATION, u.to_string())]).into_response()
}

fn refused_page(code: i64, msg: &str) -> Response {
    tracing::warn!(target: "wechat_sandbox", endpoint = "oauth2/authorize", code, reason = msg, "refused");
    pages::error_page(code, msg)
}

/// `GET /open/connect/oauth2/authorize?appid&redirect_uri&response_type=code&scope&state`
pub(crate) async fn authorize(State(sb): State<Sandbox>, uri: Uri, headers: HeaderMap) -> Response {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let req = match validate(&sb, &pairs) {
        Ok(r) => r,
        Err((code, msg)) => return refused_page(code, &msg),
    };
    let switch = pairs.iter().any(|(k, v)| k == "sandbox_switch" && v == "1");
    let current = cookie_user(&sb, &headers);
    match current {
        Some(u) if !switch => {
            if req.scope == "snsapi_base" {
                // Silent, as in WeChat: straight back with a code.
                let code = sb.new_code(u, &req.scope);
                redirect_back(&req, Some(&code))
            } else {
                pages::consent(&sb, &req, u)
            }
        }
        _ => pages::picker(&sb, &req, current),
    }
}

fn form_pairs(f: &HashMap<String, String>) -> Vec<(String, String)> {
    ORDER
        .iter()
        .map(|k| (k.to_string(), f.get(*k).cloned().unwrap_or_default()))
        .collect()
}

fn form_user(sb: &Sandbox, f: &HashMap<String, String>) -> Option<usize> {
    let key = f.get("user")?;
    sb.users().iter().position(|u| &u.key == key)
}

/// `POST /open/connect/oauth2/sandbox_pick` (the picker's form).
pub(crate) async fn pick(
    State(sb): State<Sandbox>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let req = match validate(&sb, &form_pairs(&f)) {
        Ok(r) => r,
        Err((code, msg)) => return refused_page(code, &msg),
    };
    let Some(u) = form_user(&sb, &f) else {
        return refused_page(10016, "unknown sandbox user");
    };
    let key = sb.users()[u].key.clone();
    let mut r = if req.scope == "snsapi_base" {
        let code = sb.new_code(u, &req.scope);
        redirect_back(&req, Some(&code))
    } else {
        pages::consent(&sb, &req, u)
    };
    if let Ok(v) = user_cookie(&key).parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// `POST /open/connect/oauth2/sandbox_consent` (允许 / 拒绝).
pub(crate) async fn consent(
    State(sb): State<Sandbox>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let req = match validate(&sb, &form_pairs(&f)) {
        Ok(r) => r,
        Err((code, msg)) => return refused_page(code, &msg),
    };
    let Some(u) = form_user(&sb, &f) else {
        return refused_page(10016, "unknown sandbox user");
    };
    if f.get("decision").map(String::as_str) == Some("allow") {
        let code = sb.new_code(u, &req.scope);
        redirect_back(&req, Some(&code))
    } else {
        // Denied: back without a code, as WeChat does.
        redirect_back(&req, None)
    }
}

/// `GET /open/connect/oauth2/sandbox_logout`: forget the remembered user.
pub(crate) async fn logout() -> Response {
    let mut r = pages::logged_out();
    if let Ok(v) = format!("{USER_COOKIE}=; Path=/; Max-Age=0; SameSite=Lax").parse() {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

fn refuse(what: &str, code: i64, msg: &str) -> Response {
    tracing::warn!(target: "wechat_sandbox", endpoint = what, errcode = code, reason = msg, "refused");
    errcode(code, msg)
}

fn check_appid_secret(
    sb: &Sandbox,
    what: &str,
    q: &HashMap<String, String>,
    need_secret: bool,
) -> Result<(), Response> {
    let c = sb.creds();
    match q.get("appid").map(String::as_str) {
        None | Some("") => return Err(refuse(what, 41002, "appid missing")),
        Some(a) if a != c.appid => return Err(refuse(what, 40013, "invalid appid")),
        _ => {}
    }
    if need_secret {
        match q.get("secret").map(String::as_str) {
            None | Some("") => return Err(refuse(what, 41004, "appsecret missing")),
            Some(s) if !ct_eq(s, &c.appsecret) => {
                return Err(refuse(what, 40125, "invalid appsecret"))
            }
            _ => {}
        }
    }
    Ok(())
}

fn issue_sns(sb: &Sandbox, user: usize, scope: &str, refresh: Option<String>) -> serde_json::Value {
    let o = sb.opts();
    let now = sb.now_ms();
    let access = random_alnum(88);
    let mut st = sb.lock();
    st.sns_tokens.retain(|_, t| t.expires_at > now - 86_400_000);
    st.sns_tokens.insert(
        access.clone(),
        SnsToken {
            user,
            scope: scope.to_string(),
            expires_at: now + o.access_token_ttl.as_millis() as i64,
        },
    );
    let refresh = refresh.unwrap_or_else(|| {
        let r = random_alnum(88);
        st.sns_refresh.insert(
            r.clone(),
            SnsRefresh {
                user,
                scope: scope.to_string(),
                expires_at: now + o.refresh_token_ttl.as_millis() as i64,
            },
        );
        r
    });
    let u = &sb.inner.users[user];
    json!({
        "access_token": access,
        "expires_in": o.access_token_ttl.as_secs(),
        "refresh_token": refresh,
        "openid": u.openid,
        "scope": scope,
        "unionid": u.unionid,
    })
}

/// `GET /sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code`
pub(crate) async fn access_token(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = pre(&sb, Endpoint::SnsAccessToken).await {
        return r;
    }
    let what = "sns/oauth2/access_token";
    if let Err(r) = check_appid_secret(&sb, what, &q, true) {
        return r;
    }
    let Some(code) = q.get("code").filter(|c| !c.is_empty()) else {
        return refuse(what, 41008, "missing code");
    };
    if q.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return refuse(what, 40002, "invalid grant_type");
    }
    let now = sb.now_ms();
    let (user, scope, snapshot) = {
        let mut st = sb.lock();
        match st.codes.get_mut(code.as_str()) {
            None => {
                drop(st);
                return refuse(what, 40029, "invalid code");
            }
            Some(c) if c.used => {
                drop(st);
                return refuse(what, 40163, "code been used");
            }
            Some(c) if c.expires_at <= now => {
                drop(st);
                return refuse(what, 42003, "code expired (oauth_code timeout)");
            }
            Some(c) => {
                c.used = true;
                (c.user, c.scope.clone(), c.snapshot)
            }
        }
    };
    let mut answer = issue_sns(&sb, user, &scope, None);
    if snapshot {
        // A virtual openid, the same for this user every time, and no unionid.
        let real = answer["openid"].as_str().unwrap_or_default().to_string();
        answer["openid"] = json!(format!(
            "o_snapshot_{}",
            &real[real.len().saturating_sub(16)..]
        ));
        answer["is_snapshotuser"] = json!(1);
        if let Some(o) = answer.as_object_mut() {
            o.remove("unionid");
        }
    }
    Json(answer).into_response()
}

/// `GET /sns/oauth2/refresh_token?appid&grant_type=refresh_token&refresh_token`
pub(crate) async fn refresh_token(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = pre(&sb, Endpoint::SnsRefreshToken).await {
        return r;
    }
    let what = "sns/oauth2/refresh_token";
    if let Err(r) = check_appid_secret(&sb, what, &q, false) {
        return r;
    }
    if q.get("grant_type").map(String::as_str) != Some("refresh_token") {
        return refuse(what, 40002, "invalid grant_type");
    }
    let Some(rt) = q.get("refresh_token").filter(|c| !c.is_empty()) else {
        return refuse(what, 41003, "refresh_token missing");
    };
    let now = sb.now_ms();
    let found = sb
        .lock()
        .sns_refresh
        .get(rt.as_str())
        .map(|r| (r.user, r.scope.clone(), r.expires_at));
    match found {
        None => refuse(what, 40030, "invalid refresh_token"),
        Some((_, _, exp)) if exp <= now => refuse(what, 42002, "refresh_token expired"),
        Some((user, scope, _)) => {
            Json(issue_sns(&sb, user, &scope, Some(rt.clone()))).into_response()
        }
    }
}

/// Checks an sns access_token against an openid: Ok(user, scope) or an error answer.
fn check_sns(
    sb: &Sandbox,
    what: &str,
    q: &HashMap<String, String>,
) -> Result<(usize, String), Response> {
    let Some(token) = q.get("access_token").filter(|c| !c.is_empty()) else {
        return Err(refuse(what, 41001, "access_token missing"));
    };
    let now = sb.now_ms();
    let found = sb
        .lock()
        .sns_tokens
        .get(token.as_str())
        .map(|t| (t.user, t.scope.clone(), t.expires_at));
    let (user, scope) = match found {
        None => {
            return Err(refuse(
                what,
                40001,
                "invalid credential, access_token is invalid or not latest",
            ))
        }
        Some((_, _, exp)) if exp <= now => return Err(refuse(what, 42001, "access_token expired")),
        Some((u, s, _)) => (u, s),
    };
    match q.get("openid") {
        Some(o) if *o == sb.inner.users[user].openid => Ok((user, scope)),
        Some(o) if !o.is_empty() => Err(refuse(what, 40003, "invalid openid")),
        _ => Err(refuse(what, 41009, "missing openid")),
    }
}

/// `GET /sns/userinfo?access_token&openid&lang=zh_CN`
pub(crate) async fn userinfo(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = pre(&sb, Endpoint::SnsUserinfo).await {
        return r;
    }
    let what = "sns/userinfo";
    let (user, scope) = match check_sns(&sb, what, &q) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if scope != "snsapi_userinfo" {
        return refuse(what, 48001, "api unauthorized (token scope is snsapi_base)");
    }
    if let Some(lang) = q.get("lang") {
        if !matches!(lang.as_str(), "zh_CN" | "zh_TW" | "en") {
            return refuse(what, 40130, "invalid lang");
        }
    }
    let u = &sb.inner.users[user];
    Json(json!({
        "openid": u.openid,
        "nickname": u.nickname,
        "sex": 0,
        "province": "",
        "city": "",
        "country": "",
        "headimgurl": u.headimgurl,
        "privilege": [],
        "unionid": u.unionid,
    }))
    .into_response()
}

/// `GET /sns/auth?access_token&openid`
pub(crate) async fn auth(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match check_sns(&sb, "sns/auth", &q) {
        Ok(_) => Json(json!({"errcode": 0, "errmsg": "ok"})).into_response(),
        Err(r) => r,
    }
}
