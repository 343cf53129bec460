//! The official account as a follower sees it (`/mp`): pick a test user, 关注 / 取消关注, scan a
//! parametric QR code (a scene), tap the menu the shop created, send a message, and read the
//! chat — the shop's replies and template messages. Every action is pushed to the shop's
//! server exactly as WeChat pushes (see [`crate::mp`]). Stable ids: `mp-user-N`, `mp-follow`,
//! `mp-unfollow`, `mp-scene`, `mp-scan`, `mp-text`, `mp-send`, `mp-menu`, `mp-chat`.

use std::collections::HashMap;

use axum::extract::{Form, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use crate::mp::MpAction;
use crate::mp_api::TemplateMessage;
use crate::pages::page;
use crate::state::Sandbox;
use crate::util::html_escape as e;

/// One line of the chat.
#[derive(Clone, Debug)]
pub enum ChatEntry {
    /// What the follower did or wrote.
    Follower(String),
    /// The shop's passive reply (its text may hold `<a href>` links, as WeChat renders them).
    Reply(String),
    /// A template message.
    Template(TemplateMessage),
    /// The push failed (shown so a developer sees why).
    Error(String),
}

const STYLE: &str = "<style>.mp-menu{display:flex;gap:8px;margin:12px}.mp-menu a,.mp-menu button,.mp-menu summary{flex:1;background:#fff;border:0;border-radius:8px;padding:10px;text-align:center;color:#191919;text-decoration:none;font-size:15px;cursor:pointer}\
.mp-menu details{flex:1}.mp-menu details a,.mp-menu details button{display:block;margin-top:4px;width:100%}\
.chat{margin:12px}.msg{background:#fff;border-radius:8px;padding:10px 12px;margin:8px 0;max-width:85%;font-size:15px;word-break:break-all}\
.msg.me{background:#95ec69;margin-left:auto}.msg.err{background:#fde2e2}.tpl h4{margin:0 0 6px}.tpl p{margin:2px 0;font-size:14px}\
.row{display:flex;gap:8px;margin:12px}.row input{flex:1;padding:10px;border:1px solid #ddd;border-radius:8px;font-size:15px}\
.row button{padding:10px 14px;border:0;border-radius:8px;background:#067d3f;color:#fff;font-size:15px}\
.users a{display:inline-block;margin:4px;padding:6px 10px;background:#fff;border-radius:6px;color:#191919;text-decoration:none}.users a.cur{background:#067d3f;color:#fff}</style>";

/// The shop's reply as WeChat shows it: text, with `<a href="http(s)://…">…</a>` as links;
/// everything else escaped.
fn render_reply(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("<a href=\"") {
        out.push_str(&e(&rest[..start]));
        let after = &rest[start + 9..];
        let parsed = after.find("\">").and_then(|q| {
            let url = &after[..q];
            let inner = &after[q + 2..];
            let close = inner.find("</a>")?;
            Some((url, &inner[..close], &inner[close + 4..]))
        });
        match parsed {
            Some((url, label, tail))
                if url.starts_with("http://") || url.starts_with("https://") =>
            {
                out.push_str(&format!(
                    "<a class=\"mp-link\" href=\"{}\">{}</a>",
                    e(url),
                    e(label)
                ));
                rest = tail;
            }
            _ => {
                out.push_str(&e(&rest[start..start + 9]));
                rest = after;
            }
        }
    }
    out.push_str(&e(rest));
    out
}

fn user_of(sb: &Sandbox, key: Option<&String>) -> usize {
    key.and_then(|k| sb.users().iter().position(|u| &u.key == k))
        .unwrap_or(0)
}

fn menu_html(menu: Option<&Value>, user_key: &str) -> String {
    let Some(buttons) = menu.and_then(|m| m.get("button")).and_then(Value::as_array) else {
        return "<p class=\"note\" id=\"mp-menu\">（公众号还没有菜单）</p>".into();
    };
    let leaf = |b: &Value| -> String {
        let name = e(b.get("name").and_then(Value::as_str).unwrap_or_default());
        match b.get("type").and_then(Value::as_str) {
            Some("view") => format!(
                "<a href=\"{}\">{name}</a>",
                e(b.get("url").and_then(Value::as_str).unwrap_or("#"))
            ),
            Some("click") => format!(
                "<form method=\"post\" action=\"mp\"><input type=\"hidden\" name=\"user\" value=\"{}\">\
<input type=\"hidden\" name=\"action\" value=\"click\"><input type=\"hidden\" name=\"key\" value=\"{}\">\
<button type=\"submit\">{name}</button></form>",
                e(user_key),
                e(b.get("key").and_then(Value::as_str).unwrap_or_default())
            ),
            _ => format!("<span>{name}</span>"),
        }
    };
    let mut html = String::from("<nav class=\"mp-menu\" id=\"mp-menu\">");
    for b in buttons {
        match b.get("sub_button").and_then(Value::as_array) {
            Some(subs) if !subs.is_empty() => {
                html.push_str(&format!(
                    "<details><summary>{}</summary>",
                    e(b.get("name").and_then(Value::as_str).unwrap_or_default())
                ));
                for s in subs {
                    html.push_str(&leaf(s));
                }
                html.push_str("</details>");
            }
            _ => html.push_str(&leaf(b)),
        }
    }
    html.push_str("</nav>");
    html
}

/// `GET /mp?user=KEY`
pub(crate) async fn show(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let users = sb.users();
    let me = user_of(&sb, q.get("user"));
    let key = users.get(me).map(|u| u.key.clone()).unwrap_or_default();
    let (menu, chat, server) = {
        let st = sb.lock();
        (
            st.menu.clone(),
            st.mp_chat
                .iter()
                .filter(|(u, _)| *u == me)
                .map(|(_, c)| c.clone())
                .collect::<Vec<_>>(),
            st.mp_server_url.clone(),
        )
    };
    let mut picker = String::from("<div class=\"users\">");
    for (i, u) in users.iter().enumerate() {
        picker.push_str(&format!(
            "<a id=\"mp-user-{k}\" href=\"mp?user={k}\"{cur}>{n}</a>",
            k = e(&u.key),
            n = e(&u.nickname),
            cur = if i == me { " class=\"cur\"" } else { "" }
        ));
    }
    picker.push_str("</div>");
    let mut log = String::from("<div class=\"chat\" id=\"mp-chat\">");
    for c in &chat {
        log.push_str(&match c {
            ChatEntry::Follower(t) => format!("<div class=\"msg me\">{}</div>", e(t)),
            ChatEntry::Reply(t) => format!("<div class=\"msg reply\">{}</div>", render_reply(t)),
            ChatEntry::Error(t) => format!("<div class=\"msg err\">{}</div>", e(t)),
            ChatEntry::Template(m) => {
                let mut fields: Vec<(&String, &String)> = m.data.iter().collect();
                fields.sort();
                let first = m
                    .data
                    .get("first")
                    .cloned()
                    .unwrap_or_else(|| "模板消息".into());
                let lines: String = fields
                    .iter()
                    .filter(|(k, _)| k.as_str() != "first")
                    .map(|(k, v)| format!("<p><span class=\"muted\">{}</span> {}</p>", e(k), e(v)))
                    .collect();
                let link = m
                    .url
                    .as_ref()
                    .map(|u| format!("<p><a class=\"mp-link\" href=\"{}\">详情</a></p>", e(u)))
                    .unwrap_or_default();
                format!(
                    "<div class=\"msg tpl\"><h4>{}</h4>{lines}{link}</div>",
                    e(&first)
                )
            }
        });
    }
    log.push_str("</div>");
    let form = |action: &str, extra: &str, label: &str, id: &str| {
        format!(
            "<form method=\"post\" action=\"mp\" class=\"row\"><input type=\"hidden\" name=\"user\" value=\"{}\">\
<input type=\"hidden\" name=\"action\" value=\"{action}\">{extra}<button type=\"submit\" id=\"{id}\">{label}</button></form>",
            e(&key)
        )
    };
    let body = format!(
        "{STYLE}<div class=\"bar\">公众号 · {}</div>{picker}{}{log}{}{}{}{}\
<p class=\"note\">推送到 {}</p>",
        e(&sb.credentials().merchant_name),
        menu_html(menu.as_ref(), &key),
        form("subscribe", "", "关注", "mp-follow"),
        form("unsubscribe", "", "取消关注", "mp-unfollow"),
        form(
            "scan",
            "<input name=\"scene\" id=\"mp-scene\" placeholder=\"二维码场景，如 product:3\">",
            "扫码",
            "mp-scan"
        ),
        form(
            "text",
            "<input name=\"content\" id=\"mp-text\" placeholder=\"发消息\">",
            "发送",
            "mp-send"
        ),
        e(server.as_deref().unwrap_or("（未设置）")),
    );
    Html(page("公众号", &body)).into_response()
}

/// `POST /mp` (user, action = subscribe | unsubscribe | scan | click | text, scene, key, content)
pub(crate) async fn act(
    State(sb): State<Sandbox>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let me = user_of(&sb, f.get("user"));
    let key = sb
        .users()
        .get(me)
        .map(|u| u.key.clone())
        .unwrap_or_default();
    let get = |k: &str| f.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let (action, said) = match get("action").as_str() {
        "subscribe" => (
            MpAction::Subscribe { scene: None },
            "（关注了公众号）".to_string(),
        ),
        "unsubscribe" => (MpAction::Unsubscribe, "（取消了关注）".to_string()),
        "scan" => {
            let scene = get("scene");
            // A follower scans; someone who does not follow yet follows through the code.
            let follows = sb.lock().mp_chat.iter().rev().find_map(|(u, c)| match c {
                ChatEntry::Follower(t) if *u == me && t.starts_with("（关注") => Some(true),
                ChatEntry::Follower(t) if *u == me && t.starts_with("（取消") => Some(false),
                _ => None,
            });
            if follows == Some(true) {
                (
                    MpAction::Scan {
                        scene: scene.clone(),
                    },
                    format!("（扫描了二维码 {scene}）"),
                )
            } else {
                (
                    MpAction::Subscribe {
                        scene: Some(scene.clone()),
                    },
                    format!("（关注了公众号：扫描二维码 {scene}）"),
                )
            }
        }
        "click" => {
            let k = get("key");
            (
                MpAction::Click { key: k.clone() },
                format!("（点了菜单 {k}）"),
            )
        }
        "text" => {
            let content = get("content");
            (
                MpAction::Text {
                    content: content.clone(),
                },
                content,
            )
        }
        _ => return (StatusCode::BAD_REQUEST, "unknown action").into_response(),
    };
    let server = sb.lock().mp_server_url.clone();
    sb.lock().mp_chat.push((me, ChatEntry::Follower(said)));
    let now = {
        let mut st = sb.lock();
        let wall = time::OffsetDateTime::now_utc().unix_timestamp();
        let last = st.mp_clock.get(&me).copied().unwrap_or(0);
        let t = wall.max(last + 1);
        st.mp_clock.insert(me, t);
        t
    };
    let entry = match server {
        None => ChatEntry::Error("the shop set no official-account server URL".into()),
        Some(url) => {
            let push = sb.mp_message(me, &action, now);
            match sb.push_to_mp(&url, &push).await {
                Ok(a) if a.status == 200 => match a.content {
                    Some(text) => ChatEntry::Reply(text),
                    None => return see_other(&key),
                },
                Ok(a) => ChatEntry::Error(format!("the shop answered HTTP {}", a.status)),
                Err(err) => ChatEntry::Error(err.to_string()),
            }
        }
    };
    sb.lock().mp_chat.push((me, entry));
    see_other(&key)
}

fn see_other(key: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("mp?user={key}"))],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_keep_http_links_and_escape_everything_else() {
        assert_eq!(
            render_reply("欢迎！<a href=\"https://s.example/p/3\">看看</a><script>x</script>"),
            "欢迎！<a class=\"mp-link\" href=\"https://s.example/p/3\">看看</a>&lt;script&gt;x&lt;/script&gt;"
        );
        assert!(!render_reply("<a href=\"javascript:alert(1)\">x</a>").contains("<a "));
    }
}
