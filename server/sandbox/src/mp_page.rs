//! The official account as a follower sees it (`/mp`): pick a test user, 关注 / 取消关注, scan a
//! parametric QR code (a scene), tap the menu the shop created, send a message, and read the
//! chat — the shop's replies, template messages, and the card events (领取 / 核销 / 删除)
//! pushed to the shop with its answer to each. Below, the user's card wallet (卡包), where a
//! code can be deleted as in WeChat (`POST /mp/card/delete`, which pushes `user_del_card`).
//! Every action is pushed to the shop's server exactly as WeChat pushes (see [`crate::mp`]).
//! Stable ids: `mp-user-N`, `mp-follow`, `mp-unfollow`, `mp-scene`, `mp-scan`, `mp-text`,
//! `mp-send`, `mp-menu`, `mp-chat`, `mp-wallet`, `mp-card-CODE`, `mp-del-CODE`.

use std::collections::HashMap;

use axum::extract::{Form, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use crate::card::CodeStatus;
use crate::mp::{MpAction, MpAnswer};
use crate::mp_api::TemplateMessage;
use crate::pages::page;
use crate::state::Sandbox;
use crate::util::{dashed_beijing, html_escape as e};

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
    /// A card event pushed to the shop (领取 / 核销 / 删除), with the shop's answer.
    Card(CardChat),
}

/// A card event in the chat.
#[derive(Clone, Debug)]
pub struct CardChat {
    /// Which push this is (its answer is filled in when it comes).
    pub(crate) id: u64,
    /// `user_get_card`, `user_consume_card`, `user_del_card`.
    pub event: String,
    /// What happened: 领取了卡券《title》（code …）.
    pub text: String,
    /// The shop's answer, or why the push failed; `None` while it is on its way.
    pub answer: Option<Result<MpAnswer, String>>,
}

const STYLE: &str = "<style>.mp-menu{display:flex;gap:8px;margin:12px}.mp-menu a,.mp-menu button,.mp-menu summary{flex:1;background:#fff;border:0;border-radius:8px;padding:10px;text-align:center;color:#191919;text-decoration:none;font-size:15px;cursor:pointer}\
.mp-menu details{flex:1}.mp-menu details a,.mp-menu details button{display:block;margin-top:4px;width:100%}\
.chat{margin:12px}.msg{background:#fff;border-radius:8px;padding:10px 12px;margin:8px 0;max-width:85%;font-size:15px;word-break:break-all}\
.msg.me{background:#95ec69;margin-left:auto}.msg.err{background:#fde2e2}.msg.ev{margin:8px auto;background:#fff8e1}.msg.ev.err{background:#fde2e2}.msg.ev p{margin:2px 0}.msg .answer{font-size:13px;color:#5f5f5f}.msg.err .answer{color:#a61b1b}\
.wallet{margin:12px;background:#fff;border-radius:8px;padding:10px 12px}.wallet h3{margin:0 0 6px;font-size:16px}.wallet ul{list-style:none;margin:0;padding:0}\
.wallet li{display:flex;flex-wrap:wrap;align-items:center;gap:4px 10px;padding:8px 0;border-top:1px solid #eee;font-size:14px}.wallet li form{margin-left:auto}\
.wallet li button{padding:6px 12px;border:1px solid #ddd;border-radius:6px;background:#fff;color:#a61b1b;cursor:pointer}.wallet .st{font-weight:600}.tpl h4{margin:0 0 6px}.tpl p{margin:2px 0;font-size:14px}\
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
            ChatEntry::Card(c) => card_entry(c),
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
    let wallet = users
        .get(me)
        .map(|u| wallet_html(&sb, &u.openid, &key))
        .unwrap_or_default();
    let body = format!(
        "{STYLE}<div class=\"bar\">公众号 · {}</div>{picker}{}{log}{}{}{}{}{wallet}\
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

/// A card event and what the shop answered.
fn card_entry(c: &CardChat) -> String {
    let (failed, answer) = match &c.answer {
        None => (false, "推送中…".to_string()),
        Some(Ok(MpAnswer {
            status: 200,
            content: Some(reply),
        })) => (false, format!("商家服务器回复：{}", render_reply(reply))),
        Some(Ok(a)) if (200..300).contains(&a.status) => {
            (false, format!("商家服务器已接收（HTTP {}）", a.status))
        }
        Some(Ok(a)) => (true, format!("商家服务器出错：HTTP {}", a.status)),
        Some(Err(why)) => (true, format!("推送失败：{}", e(why))),
    };
    format!(
        "<div class=\"msg ev{}\" data-event=\"{}\"><p>{}</p><p class=\"answer\">{answer}</p></div>",
        if failed { " err" } else { "" },
        e(&c.event),
        e(&c.text)
    )
}

/// The user's card wallet (卡包): every code with its card's title and rule, its status, until
/// when it is valid, and 删除 for a usable one.
fn wallet_html(sb: &Sandbox, openid: &str, user_key: &str) -> String {
    let now = sb.now_ms();
    let mut items = String::new();
    for code in sb.wallet(openid) {
        let card = sb.card(&code.card_id);
        let title = card
            .as_ref()
            .map(|c| c.title.clone())
            .unwrap_or_else(|| code.card_id.clone());
        let rule = card.as_ref().map(|c| c.kind.rule()).unwrap_or_default();
        let status = match code.status {
            CodeStatus::Normal if now > code.end_ms => "已过期",
            CodeStatus::Normal => "可用",
            CodeStatus::Consumed => "已核销",
            CodeStatus::Deleted => "已删除",
        };
        let delete = if code.status == CodeStatus::Normal {
            format!(
                "<form method=\"post\" action=\"mp/card/delete\"><input type=\"hidden\" name=\"user\" value=\"{}\">\
<input type=\"hidden\" name=\"code\" value=\"{c}\"><button type=\"submit\" id=\"mp-del-{c}\">删除</button></form>",
                e(user_key),
                c = e(&code.code)
            )
        } else {
            String::new()
        };
        items.push_str(&format!(
            "<li id=\"mp-card-{c}\"><b>{}</b><span>{}</span><span class=\"st\">{status}</span>\
<span class=\"muted\">code {c} · 有效期至 {}</span>{delete}</li>",
            e(&title),
            e(&rule),
            e(&dashed_beijing(code.end_ms)),
            c = e(&code.code)
        ));
    }
    if items.is_empty() {
        items.push_str("<li>（卡包是空的）</li>");
    }
    format!("<section class=\"wallet\" id=\"mp-wallet\"><h3>卡包</h3><ul>{items}</ul></section>")
}

/// `POST /mp/card/delete` (user, code): the user deletes a code from the wallet, as in WeChat's
/// 卡包 — [`Sandbox::user_delete_card`], which pushes `user_del_card` to the shop.
pub(crate) async fn delete_card(
    State(sb): State<Sandbox>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let users = sb.users();
    let Some(user) = f
        .get("user")
        .and_then(|k| users.iter().find(|u| &u.key == k))
    else {
        return (StatusCode::BAD_REQUEST, "没有这个测试用户 (unknown user)").into_response();
    };
    let code = f.get("code").map(|c| c.trim()).unwrap_or_default();
    if !sb.wallet(&user.openid).iter().any(|c| c.code == code) {
        return (
            StatusCode::NOT_FOUND,
            format!("卡包里没有这张券 (no code {code} in this wallet)"),
        )
            .into_response();
    }
    match sb.user_delete_card(&user.openid, code) {
        // From /mp/card/delete back to /mp.
        Ok(()) => (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, format!("../../mp?user={}", user.key))],
        )
            .into_response(),
        Err(why) => (
            StatusCode::CONFLICT,
            format!("这张券不能删除 (cannot delete code {code}: {why})"),
        )
            .into_response(),
    }
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
