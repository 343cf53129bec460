//! Base access_token (`/cgi-bin/token`, `/cgi-bin/stable_token`) and jsapi_ticket.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::answer::pre;
use crate::crypto::{ct_eq, random_alnum};
use crate::state::{BaseToken, Endpoint, Sandbox, State as St};
use crate::util::errcode;

fn refuse(what: &str, code: i64, msg: &str) -> Response {
    tracing::warn!(target: "wechat_sandbox", endpoint = what, errcode = code, reason = msg, "refused");
    errcode(code, msg)
}

/// grant_type / appid / secret checks shared by the token endpoints.
fn check_app(
    sb: &Sandbox,
    what: &str,
    grant_type: Option<&str>,
    appid: Option<&str>,
    secret: Option<&str>,
) -> Result<(), Response> {
    let c = sb.creds();
    match grant_type {
        Some("client_credential") => {}
        None | Some("") => {
            return Err(refuse(
                what,
                40002,
                "invalid grant_type: grant_type missing",
            ))
        }
        Some(_) => return Err(refuse(what, 40002, "invalid grant_type")),
    }
    match appid {
        None | Some("") => return Err(refuse(what, 41002, "appid missing")),
        Some(a) if a != c.appid => return Err(refuse(what, 40013, "invalid appid")),
        _ => {}
    }
    match secret {
        None | Some("") => return Err(refuse(what, 41004, "appsecret missing")),
        Some(s) if !ct_eq(s, &c.appsecret) => return Err(refuse(what, 40125, "invalid appsecret")),
        _ => {}
    }
    Ok(())
}

fn new_token() -> String {
    format!("{}_{}", random_alnum(64), random_alnum(40))
}

/// Checks a base access_token: Ok, or (errcode, errmsg).
pub(crate) fn validate_base_token(
    st: &St,
    token: &str,
    now: i64,
) -> Result<(), (i64, &'static str)> {
    match st.base_tokens.get(token) {
        None => Err((
            40001,
            "invalid credential, access_token is invalid or not latest",
        )),
        Some(t) if t.expires_at <= now => Err((42001, "access_token expired")),
        Some(t) if t.superseded_at.is_some_and(|s| s <= now) => Err((
            40001,
            "invalid credential, access_token is invalid or not latest",
        )),
        Some(_) => Ok(()),
    }
}

fn prune(st: &mut St, now: i64) {
    st.base_tokens
        .retain(|_, t| t.expires_at > now - 86_400_000);
    st.tickets.retain(|_, exp| *exp > now - 86_400_000);
    st.card.tickets.retain(|_, exp| *exp > now - 86_400_000);
}

/// `GET /cgi-bin/token?grant_type=client_credential&appid&secret`
pub(crate) async fn token(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    sb.lock().token_fetches += 1;
    if let Err(r) = pre(&sb, Endpoint::CgiToken).await {
        return r;
    }
    let g = |k: &str| q.get(k).map(String::as_str);
    if let Err(r) = check_app(
        &sb,
        "cgi-bin/token",
        g("grant_type"),
        g("appid"),
        g("secret"),
    ) {
        return r;
    }
    let o = sb.opts();
    let now = sb.now_ms();
    let token = new_token();
    let mut st = sb.lock();
    prune(&mut st, now);
    if let Some(old) = st.plain_current.take() {
        if let Some(t) = st.base_tokens.get_mut(&old) {
            let until = now + o.token_overlap.as_millis() as i64;
            t.superseded_at = Some(t.superseded_at.map_or(until, |s| s.min(until)));
        }
    }
    st.base_tokens.insert(
        token.clone(),
        BaseToken {
            expires_at: now + o.access_token_ttl.as_millis() as i64,
            superseded_at: None,
        },
    );
    st.plain_current = Some(token.clone());
    Json(json!({"access_token": token, "expires_in": o.access_token_ttl.as_secs()})).into_response()
}

/// `POST /cgi-bin/stable_token` `{"grant_type","appid","secret","force_refresh"}`
pub(crate) async fn stable_token(State(sb): State<Sandbox>, body: Bytes) -> Response {
    sb.lock().stable_token_fetches += 1;
    if let Err(r) = pre(&sb, Endpoint::StableToken).await {
        return r;
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return refuse("cgi-bin/stable_token", 47001, "data format error");
    };
    let g = |k: &str| v.get(k).and_then(|x| x.as_str());
    if let Err(r) = check_app(
        &sb,
        "cgi-bin/stable_token",
        g("grant_type"),
        g("appid"),
        g("secret"),
    ) {
        return r;
    }
    let force = match v.get("force_refresh") {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(_) => {
            return refuse(
                "cgi-bin/stable_token",
                47001,
                "data format error: force_refresh must be a boolean",
            )
        }
    };
    let o = sb.opts();
    let now = sb.now_ms();
    let overlap = o.token_overlap.as_millis() as i64;
    let mut st = sb.lock();
    prune(&mut st, now);
    if let Some(cur) = st.stable_current.clone() {
        if let Some(t) = st.base_tokens.get_mut(&cur) {
            let valid = t.expires_at > now && t.superseded_at.is_none_or(|s| s > now);
            if valid && !force && t.expires_at - now > overlap {
                let left = (t.expires_at - now) / 1000;
                return Json(json!({"access_token": cur, "expires_in": left})).into_response();
            }
            if valid && force {
                t.superseded_at = Some(now + overlap);
            }
        }
    }
    let token = new_token();
    st.base_tokens.insert(
        token.clone(),
        BaseToken {
            expires_at: now + o.access_token_ttl.as_millis() as i64,
            superseded_at: None,
        },
    );
    st.stable_current = Some(token.clone());
    Json(json!({"access_token": token, "expires_in": o.access_token_ttl.as_secs()})).into_response()
}

/// `GET /cgi-bin/ticket/getticket?access_token&type=jsapi`
pub(crate) async fn getticket(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let card = q.get("type").map(String::as_str) == Some("wx_card");
    if card {
        sb.lock().card.ticket_fetches += 1;
    } else {
        sb.lock().ticket_fetches += 1;
    }
    if let Err(r) = pre(&sb, Endpoint::GetTicket).await {
        return r;
    }
    let what = "cgi-bin/ticket/getticket";
    let Some(token) = q.get("access_token").filter(|t| !t.is_empty()) else {
        return refuse(what, 41001, "access_token missing");
    };
    let now = sb.now_ms();
    let ttl = sb.opts().access_token_ttl;
    let mut st = sb.lock();
    if let Err((code, msg)) = validate_base_token(&st, token, now) {
        drop(st);
        return refuse(what, code, msg);
    }
    match q.get("type").map(String::as_str) {
        Some("jsapi" | "wx_card") => {}
        _ => {
            drop(st);
            return refuse(what, 40097, "invalid args: type must be jsapi or wx_card");
        }
    }
    prune(&mut st, now);
    let ticket = format!(
        "{}-{}_{}",
        random_alnum(40),
        random_alnum(20),
        random_alnum(24)
    );
    // Card api_tickets are kept apart: a jsapi_ticket never validates a cardSign / cardExt, nor
    // a card ticket a wx.config.
    let tickets = if card {
        &mut st.card.tickets
    } else {
        &mut st.tickets
    };
    tickets.insert(ticket.clone(), now + ttl.as_millis() as i64);
    Json(json!({"errcode": 0, "errmsg": "ok", "ticket": ticket, "expires_in": ttl.as_secs()}))
        .into_response()
}
