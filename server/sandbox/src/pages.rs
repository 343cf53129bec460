//! Server-rendered pages: the OAuth picker and consent (no JavaScript needed), errors and a
//! small dashboard. Stable ids for automated browsers: `wx-user-N`, `wx-allow`, `wx-deny`,
//! `wx-switch`, `wx-error`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::oauth::AuthReq;
use crate::state::Sandbox;
use crate::util::{html_escape as e, rfc3339_beijing, yuan};

const CSS: &str = r#"*{box-sizing:border-box}
body{margin:0;font-family:-apple-system,BlinkMacSystemFont,"PingFang SC","Helvetica Neue","Microsoft YaHei",sans-serif;background:#ededed;color:#191919;-webkit-text-size-adjust:100%}
.bar{text-align:center;padding:14px 16px;font-size:17px;font-weight:600;border-bottom:1px solid #e0e0e0;background:#ededed}
.sandbox{background:#fff8e1;color:#8a6d00;font-size:12px;text-align:center;padding:4px}
.card{background:#fff;margin:12px;border-radius:8px;padding:20px}
.app{display:flex;align-items:center;gap:12px;margin-bottom:16px}
.logo{width:48px;height:48px;border-radius:8px;background:#07c160;color:#fff;display:flex;align-items:center;justify-content:center;font-size:24px;font-weight:700}
.muted{color:#5f5f5f;font-size:14px}
.perm{border-top:1px solid #eee;padding-top:14px;margin-top:14px;font-size:15px}
.btn{display:block;width:100%;padding:12px;border:0;border-radius:8px;font-size:17px;font-weight:600;margin-top:12px;cursor:pointer}
.btn-primary{background:#067d3f;color:#fff}
.btn-default{background:#f2f2f2;color:#07c160}
.users{margin:12px;border-radius:8px;overflow:hidden}
.user{display:flex;align-items:center;width:100%;background:#fff;border:0;border-bottom:1px solid #eee;padding:12px 16px;font-size:17px;text-align:left;cursor:pointer;color:#191919}
.user img,.me img{width:44px;height:44px;border-radius:6px;margin-right:12px}
.tag{margin-left:auto;color:#07c160;font-size:14px}
.me{display:flex;align-items:center;margin-top:14px;font-size:16px}
.me a{margin-left:auto;color:#576b95;font-size:14px;text-decoration:none}
.note{color:#888;font-size:13px;text-align:center;margin:16px}
table{border-collapse:collapse;width:100%;font-size:13px}td,th{border-bottom:1px solid #eee;padding:4px;text-align:left;word-break:break-all}
code{font-size:12px}"#;

pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1,maximum-scale=1,user-scalable=no\">\
<title>{}</title><style>{CSS}</style></head><body>\
<div class=\"sandbox\">微信沙箱 · WeChat sandbox</div>{body}</body></html>",
        e(title)
    )
}

fn hidden(req: &AuthReq) -> String {
    format!(
        "<input type=\"hidden\" name=\"appid\" value=\"{}\">\
<input type=\"hidden\" name=\"redirect_uri\" value=\"{}\">\
<input type=\"hidden\" name=\"response_type\" value=\"code\">\
<input type=\"hidden\" name=\"scope\" value=\"{}\">\
<input type=\"hidden\" name=\"state\" value=\"{}\">",
        e(&req.appid),
        e(&req.redirect_uri),
        e(&req.scope),
        e(&req.state)
    )
}

pub(crate) fn error_page(code: i64, msg: &str) -> Response {
    let body = format!(
        "<div class=\"bar\">微信网页授权</div><div class=\"card\" id=\"wx-error\">\
<h3>该链接无法访问</h3><p class=\"muted\" id=\"wx-error-detail\">错误码 {code}: {}</p></div>",
        e(msg)
    );
    (StatusCode::BAD_REQUEST, Html(page("该链接无法访问", &body))).into_response()
}

/// The user picker (one submit button per test user).
pub(crate) fn picker(sb: &Sandbox, req: &AuthReq, current: Option<usize>) -> Response {
    let mut users = String::new();
    for (i, u) in sb.users().iter().enumerate() {
        let tag = if current == Some(i) {
            "<span class=\"tag\">当前</span>"
        } else {
            ""
        };
        users.push_str(&format!(
            "<button type=\"submit\" class=\"user\" name=\"user\" value=\"{k}\" id=\"wx-user-{k}\" data-openid=\"{o}\">\
<img src=\"{img}\" alt=\"\"><span class=\"nick\">{n}</span>{tag}</button>",
            k = e(&u.key),
            o = e(&u.openid),
            img = e(&u.headimgurl),
            n = e(&u.nickname),
        ));
    }
    let what = if req.scope == "snsapi_base" {
        "静默授权 (snsapi_base)：选择后直接返回商户页面"
    } else {
        "用户信息授权 (snsapi_userinfo)：选择后进入授权确认"
    };
    let body = format!(
        "<div class=\"bar\">选择微信测试用户</div>\
<p class=\"note\">{what}</p>\
<form method=\"post\" action=\"sandbox_pick\" id=\"wx-picker\">{h}<div class=\"users\">{users}</div></form>\
<p class=\"note\">沙箱模拟微信客户端：所选用户会被记住（cookie <code>wxsandbox_user</code>）。</p>",
        h = hidden(req)
    );
    Html(page("选择微信用户", &body)).into_response()
}

/// The snsapi_userinfo consent page (允许 / 拒绝).
pub(crate) fn consent(sb: &Sandbox, req: &AuthReq, user: usize) -> Response {
    let u = &sb.users()[user];
    let c = sb.creds();
    let switch = format!("authorize?{}&sandbox_switch=1", req.query());
    let body = format!(
        "<div class=\"bar\">微信授权登录</div><div class=\"card\">\
<div class=\"app\"><div class=\"logo\">W</div><div><div><b id=\"wx-app-name\">{mname}</b></div>\
<div class=\"muted\">申请获得以下权限</div></div></div>\
<div class=\"perm\">· 获得你的公开信息（昵称、头像等）</div>\
<div class=\"me\"><img src=\"{img}\" alt=\"\"><span id=\"wx-current-user\">{nick}</span>\
<a href=\"{switch}\" id=\"wx-switch\">切换账号</a></div>\
<form method=\"post\" action=\"sandbox_consent\">{h}<input type=\"hidden\" name=\"user\" value=\"{key}\">\
<button type=\"submit\" class=\"btn btn-primary\" name=\"decision\" value=\"allow\" id=\"wx-allow\">允许</button>\
<button type=\"submit\" class=\"btn btn-default\" name=\"decision\" value=\"deny\" id=\"wx-deny\">拒绝</button>\
</form></div>",
        mname = e(&c.merchant_name),
        img = e(&u.headimgurl),
        nick = e(&u.nickname),
        switch = e(&switch),
        h = hidden(req),
        key = e(&u.key),
    );
    Html(page("微信授权", &body)).into_response()
}

pub(crate) fn logged_out() -> Response {
    Html(page(
        "已退出",
        "<div class=\"bar\">微信沙箱</div><div class=\"card\" id=\"wx-logged-out\">已退出沙箱用户，下次授权时重新选择。</div>",
    ))
    .into_response()
}

/// `GET /`: redirects to `dashboard` (relative links need the trailing segment).
pub(crate) async fn index(uri: axum::extract::OriginalUri) -> Response {
    let p = uri.0.path().trim_end_matches('/');
    axum::response::Redirect::to(&format!("{p}/dashboard")).into_response()
}

/// `GET /dashboard`: what the sandbox holds.
pub(crate) async fn dashboard(State(sb): State<Sandbox>) -> Response {
    let c = sb.creds();
    let mut users = String::new();
    for u in sb.users() {
        users.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            e(&u.key),
            e(&u.nickname),
            e(&u.openid)
        ));
    }
    let mut txs = String::new();
    for t in sb.transactions().iter().rev().take(50) {
        let d = sb.deliveries(&t.out_trade_no);
        let acked = d.iter().filter(|d| d.acknowledged).count();
        txs.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{:?}</td><td>{}</td><td>{}</td><td>{}</td><td>{}/{}</td><td>{}</td></tr>",
            e(&t.out_trade_no),
            t.api,
            e(&t.description),
            yuan(t.total),
            t.state.as_str(),
            acked,
            d.len(),
            rfc3339_beijing(t.created_at_ms)
        ));
    }
    let st = sb.lock();
    let counters = format!(
        "token {} · stable_token {} · getticket {}",
        st.token_fetches, st.stable_token_fetches, st.ticket_fetches
    );
    drop(st);
    let body = format!(
        "<div class=\"bar\">微信沙箱</div><div class=\"card\"><table>\
<tr><th>appid</th><td><code>{}</code></td></tr><tr><th>mchid</th><td><code>{}</code></td></tr>\
<tr><th>商户</th><td>{}</td></tr><tr><th>公钥ID</th><td><code>{}</code></td></tr>\
<tr><th>平台证书</th><td><code>{}</code></td></tr><tr><th>调用</th><td>{}</td></tr></table></div>\
<div class=\"card\"><b>测试用户</b><table>{users}</table>\
<p><a href=\"open/connect/oauth2/sandbox_logout\">退出当前沙箱用户</a></p></div>\
{cards}<div class=\"card\"><b>交易</b><table><tr><th>out_trade_no</th><th>API</th><th>描述</th><th>金额</th><th>状态</th><th>通知(确认/次)</th><th>创建</th></tr>{txs}</table></div>",
        e(&c.appid),
        e(&c.mchid),
        e(&c.merchant_name),
        e(&c.wechatpay_public_key_id),
        e(&c.platform_serial),
        counters,
        cards = crate::card::dashboard_section(&sb),
    );
    Html(page("微信沙箱", &body)).into_response()
}
