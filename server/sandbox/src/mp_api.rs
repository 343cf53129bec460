//! The official account's APIs: menu (`menu/create`, `get_current_selfmenu_info`, `menu/delete`),
//! parametric QR codes (`qrcode/create`) and template messages (`message/template/send`), with
//! WeChat's checks and errcodes for what shops get wrong.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};

use crate::crypto::random_alnum;
use crate::state::Sandbox;
use crate::token::validate_base_token;
use crate::util::errcode;

/// A template message as the shop sent it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TemplateMessage {
    /// WeChat's id of the message.
    pub msgid: i64,
    /// The recipient's openid.
    pub touser: String,
    /// The template.
    pub template_id: String,
    /// Where tapping the message leads.
    pub url: Option<String>,
    /// `{key: value}` of the template's fields.
    pub data: HashMap<String, String>,
}

fn refuse(what: &str, code: i64, msg: &str) -> Response {
    tracing::warn!(target: "wechat_sandbox", endpoint = what, errcode = code, reason = msg, "refused");
    errcode(code, msg)
}

/// The access_token check every API here starts with.
fn token_ok(sb: &Sandbox, what: &str, q: &HashMap<String, String>) -> Result<(), Response> {
    let Some(token) = q.get("access_token").filter(|t| !t.is_empty()) else {
        return Err(refuse(what, 41001, "access_token missing"));
    };
    let now = sb.now_ms();
    let st = sb.lock();
    validate_base_token(&st, token, now).map_err(|(code, msg)| {
        drop(st);
        refuse(what, code, msg)
    })
}

fn json_body(what: &str, body: &[u8]) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|_| refuse(what, 47001, "data format error"))
}

fn ok() -> Response {
    errcode(0, "ok")
}

/// Checks a menu the way WeChat does: 1–3 buttons, each with a name and either 1–5 sub-buttons
/// or a type (`view` needs an http(s) `url`, `click` a `key`).
fn check_menu(menu: &Value) -> Result<(), (i64, &'static str)> {
    let buttons = menu
        .get("button")
        .and_then(Value::as_array)
        .ok_or((40016, "invalid button size"))?;
    if buttons.is_empty() || buttons.len() > 3 {
        return Err((40016, "invalid button size"));
    }
    fn leaf(b: &Value) -> Result<(), (i64, &'static str)> {
        let name = b.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() || name.chars().count() > 16 {
            return Err((40018, "invalid button name size"));
        }
        match b.get("type").and_then(Value::as_str) {
            Some("view") => {
                let url = b.get("url").and_then(Value::as_str).unwrap_or_default();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err((40055, "invalid button url domain"));
                }
            }
            Some("click") => {
                if b.get("key")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .is_empty()
                {
                    return Err((40019, "invalid button key size"));
                }
            }
            Some(_) => {}
            None => return Err((40017, "invalid button type")),
        }
        Ok(())
    }
    for b in buttons {
        match b.get("sub_button").and_then(Value::as_array) {
            Some(subs) if !subs.is_empty() => {
                if subs.len() > 5 {
                    return Err((40023, "invalid sub button size"));
                }
                let name = b.get("name").and_then(Value::as_str).unwrap_or_default();
                if name.is_empty() || name.chars().count() > 8 {
                    return Err((40018, "invalid button name size"));
                }
                for s in subs {
                    leaf(s)?;
                }
            }
            _ => leaf(b)?,
        }
    }
    Ok(())
}

/// `POST /cgi-bin/menu/create?access_token=`
pub(crate) async fn menu_create(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let what = "cgi-bin/menu/create";
    if let Err(r) = token_ok(&sb, what, &q) {
        return r;
    }
    let menu = match json_body(what, &body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Err((code, msg)) = check_menu(&menu) {
        return refuse(what, code, msg);
    }
    sb.lock().menu = Some(json!({"button": menu["button"].clone()}));
    ok()
}

/// `GET /cgi-bin/menu/delete?access_token=`
pub(crate) async fn menu_delete(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = token_ok(&sb, "cgi-bin/menu/delete", &q) {
        return r;
    }
    sb.lock().menu = None;
    ok()
}

/// `GET /cgi-bin/get_current_selfmenu_info?access_token=`
pub(crate) async fn menu_info(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = token_ok(&sb, "cgi-bin/get_current_selfmenu_info", &q) {
        return r;
    }
    match sb.lock().menu.clone() {
        Some(menu) => Json(json!({"is_menu_open": 1, "selfmenu_info": menu})).into_response(),
        None => Json(json!({"is_menu_open": 0})).into_response(),
    }
}

/// `POST /cgi-bin/qrcode/create?access_token=` (`QR_STR_SCENE` temporary, `QR_LIMIT_STR_SCENE`
/// permanent; numeric scenes are refused here: the shop uses string scenes).
pub(crate) async fn qrcode_create(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let what = "cgi-bin/qrcode/create";
    if let Err(r) = token_ok(&sb, what, &q) {
        return r;
    }
    let req = match json_body(what, &body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let scene = req
        .pointer("/action_info/scene/scene_str")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if scene.is_empty() || scene.len() > 64 {
        return refuse(
            what,
            40097,
            "invalid args: scene_str must be 1 to 64 characters",
        );
    }
    let expire = match req.get("action_name").and_then(Value::as_str) {
        Some("QR_STR_SCENE") => {
            let s = req
                .get("expire_seconds")
                .and_then(Value::as_i64)
                .unwrap_or(30);
            Some(s.clamp(60, 2_592_000))
        }
        Some("QR_LIMIT_STR_SCENE") => None,
        _ => return refuse(what, 40097, "invalid args: action_name"),
    };
    let ticket = format!("gQ{}", random_alnum(62));
    let url = format!("http://weixin.qq.com/q/{}", random_alnum(22));
    let expires_at = expire.map(|s| sb.now_ms() + s * 1000);
    sb.lock()
        .qrcodes
        .insert(ticket.clone(), (scene, expires_at));
    let mut answer = json!({"ticket": ticket, "url": url});
    if let Some(s) = expire {
        answer["expire_seconds"] = json!(s);
    }
    Json(answer).into_response()
}

/// `POST /cgi-bin/message/template/send?access_token=`
pub(crate) async fn template_send(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let what = "cgi-bin/message/template/send";
    if let Err(r) = token_ok(&sb, what, &q) {
        return r;
    }
    let req = match json_body(what, &body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let touser = req
        .get("touser")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !sb.users().iter().any(|u| u.openid == touser) {
        return refuse(what, 40003, "invalid openid");
    }
    let template_id = req
        .get("template_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if template_id.is_empty() {
        return refuse(what, 40037, "invalid template_id");
    }
    let Some(fields) = req.get("data").and_then(Value::as_object) else {
        return refuse(what, 47001, "data format error");
    };
    let mut data = HashMap::new();
    for (k, v) in fields {
        let Some(value) = v.get("value").and_then(Value::as_str) else {
            return refuse(
                what,
                47001,
                "data format error: each field is {\"value\": …}",
            );
        };
        data.insert(k.clone(), value.to_string());
    }
    let user = sb.users().iter().position(|u| u.openid == touser);
    let mut st = sb.lock();
    let msgid = 200_000_000 + st.template_messages.len() as i64;
    let message = TemplateMessage {
        msgid,
        touser: touser.to_string(),
        template_id: template_id.to_string(),
        url: req.get("url").and_then(Value::as_str).map(str::to_string),
        data,
    };
    if let Some(user) = user {
        st.mp_chat
            .push((user, crate::mp_page::ChatEntry::Template(message.clone())));
    }
    st.template_messages.push(message);
    Json(json!({"errcode": 0, "errmsg": "ok", "msgid": msgid})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menus_are_checked_as_wechat_does() {
        let good = json!({"button": [
            {"type": "view", "name": "首页", "url": "https://shop.example/"},
            {"name": "我的", "sub_button": [
                {"type": "view", "name": "我的订单", "url": "https://shop.example/orders"},
                {"type": "click", "name": "联系客服", "key": "HELP"}
            ]}
        ]});
        assert_eq!(check_menu(&good), Ok(()));
        let four = json!({"button": [good["button"][0], good["button"][0], good["button"][0], good["button"][0]]});
        assert_eq!(check_menu(&four).unwrap_err().0, 40016);
        let no_url = json!({"button": [{"type": "view", "name": "首页"}]});
        assert_eq!(check_menu(&no_url).unwrap_err().0, 40055);
        let no_key = json!({"button": [{"type": "click", "name": "客服"}]});
        assert_eq!(check_menu(&no_key).unwrap_err().0, 40019);
    }
}
