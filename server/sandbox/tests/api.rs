//! OAuth, base token / jsapi_ticket and wx.config, over HTTP.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use wechat_sandbox::{Endpoint, Fault};

async fn get_json(r: &Running, path_and_query: &str) -> Value {
    r.http
        .get(format!("{}{}", r.base, path_and_query))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn authorize_query(scope: &str, state: &str) -> String {
    let c = creds();
    format!(
        "appid={}&redirect_uri={}&response_type=code&scope={scope}&state={state}",
        c.appid,
        url::form_urlencoded::byte_serialize(b"https://shop.example/auth/callback?from=menu#/home")
            .collect::<String>()
    )
}

fn location(resp: &reqwest::Response) -> url::Url {
    url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap()
}

fn param(u: &url::Url, k: &str) -> Option<String> {
    u.query_pairs()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.into_owned())
}

async fn exchange(r: &Running, code: &str) -> Value {
    let c = creds();
    get_json(
        r,
        &format!(
            "/api/sns/oauth2/access_token?appid={}&secret={}&code={code}&grant_type=authorization_code",
            c.appid, c.appsecret
        ),
    )
    .await
}

#[tokio::test]
async fn oauth_base_picker_then_code_is_single_use() {
    let r = start().await;
    let c = creds();
    let users = r.sandbox.users();
    // No remembered user: the picker, with stable ids.
    let page = r
        .http
        .get(format!(
            "{}/open/connect/oauth2/authorize?{}",
            r.base,
            authorize_query("snsapi_base", "abc123")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"wx-user-1\"") && html.contains(&users[0].nickname));
    assert!(html.contains("action=\"sandbox_pick\""));

    // Pick user 2 (what the form posts).
    let resp = r
        .http
        .post(format!("{}/open/connect/oauth2/sandbox_pick", r.base))
        .form(&[
            ("appid", c.appid.as_str()),
            (
                "redirect_uri",
                "https://shop.example/auth/callback?from=menu#/home",
            ),
            ("response_type", "code"),
            ("scope", "snsapi_base"),
            ("state", "abc123"),
            ("user", "2"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert!(resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with("wxsandbox_user=2"));
    let loc = location(&resp);
    assert_eq!(loc.host_str(), Some("shop.example"));
    assert_eq!(loc.path(), "/auth/callback");
    assert_eq!(param(&loc, "from").as_deref(), Some("menu"));
    assert_eq!(param(&loc, "state").as_deref(), Some("abc123"));
    assert_eq!(loc.fragment(), Some("/home"));
    let code = param(&loc, "code").unwrap();

    let tok = exchange(&r, &code).await;
    assert_eq!(tok["openid"], users[1].openid.as_str(), "{tok}");
    assert_eq!(tok["scope"], "snsapi_base");
    assert_eq!(tok["expires_in"], 7200);
    assert!(tok["refresh_token"].is_string() && tok["unionid"].is_string());

    // Single use.
    assert_eq!(exchange(&r, &code).await["errcode"], 40163);
    assert_eq!(exchange(&r, "nonsense").await["errcode"], 40029);

    // snsapi_base token cannot read the profile.
    let ui = get_json(
        &r,
        &format!(
            "/api/sns/userinfo?access_token={}&openid={}&lang=zh_CN",
            tok["access_token"].as_str().unwrap(),
            users[1].openid
        ),
    )
    .await;
    assert_eq!(ui["errcode"], 48001);

    // Bad secret / appid.
    let code = r.sandbox.issue_oauth_code(0, "snsapi_base");
    let bad = get_json(
        &r,
        &format!(
            "/api/sns/oauth2/access_token?appid={}&secret=wrong&code={code}&grant_type=authorization_code",
            c.appid
        ),
    )
    .await;
    assert_eq!(bad["errcode"], 40125);
    let bad = get_json(
        &r,
        &format!(
            "/api/sns/oauth2/access_token?appid=wx0000000000000000&secret={}&code={code}&grant_type=authorization_code",
            c.appsecret
        ),
    )
    .await;
    assert_eq!(bad["errcode"], 40013);
    // The failed attempts did not burn the code.
    assert_eq!(
        exchange(&r, &code).await["openid"],
        users[0].openid.as_str()
    );
}

#[tokio::test]
async fn oauth_base_is_silent_with_a_remembered_user() {
    let r = start().await;
    let resp = r
        .http
        .get(format!(
            "{}/open/connect/oauth2/authorize?{}",
            r.base,
            authorize_query("snsapi_base", "S1")
        ))
        .header("Cookie", "a=b; wxsandbox_user=3")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let code = param(&location(&resp), "code").unwrap();
    assert_eq!(
        exchange(&r, &code).await["openid"],
        r.sandbox.users()[2].openid.as_str()
    );

    // sandbox_switch=1 shows the picker again, marking the current user.
    let page = r
        .http
        .get(format!(
            "{}/open/connect/oauth2/authorize?{}&sandbox_switch=1",
            r.base,
            authorize_query("snsapi_base", "S1")
        ))
        .header("Cookie", "wxsandbox_user=3")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("当前"));
}

#[tokio::test]
async fn oauth_userinfo_consent_allow_and_deny() {
    let r = start().await;
    let c = creds();
    let users = r.sandbox.users();
    let page = r
        .http
        .get(format!(
            "{}/open/connect/oauth2/authorize?{}",
            r.base,
            authorize_query("snsapi_userinfo", "xyz")
        ))
        .header("Cookie", "wxsandbox_user=1")
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"wx-allow\"") && html.contains(">允许<"));
    assert!(html.contains("id=\"wx-deny\"") && html.contains(">拒绝<"));
    assert!(html.contains("id=\"wx-switch\""));

    let consent = |decision: &'static str| {
        let c = c.clone();
        let http = r.http.clone();
        let url = format!("{}/open/connect/oauth2/sandbox_consent", r.base);
        async move {
            http.post(url)
                .form(&[
                    ("appid", c.appid.as_str()),
                    ("redirect_uri", "https://shop.example/cb"),
                    ("response_type", "code"),
                    ("scope", "snsapi_userinfo"),
                    ("state", "xyz"),
                    ("user", "1"),
                    ("decision", decision),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let denied = consent("deny").await;
    assert_eq!(denied.status(), 302);
    let loc = location(&denied);
    assert_eq!(param(&loc, "code"), None);
    assert_eq!(param(&loc, "state").as_deref(), Some("xyz"));

    let allowed = consent("allow").await;
    let code = param(&location(&allowed), "code").unwrap();
    let tok = exchange(&r, &code).await;
    assert_eq!(tok["scope"], "snsapi_userinfo");
    let access = tok["access_token"].as_str().unwrap();
    let ui = get_json(
        &r,
        &format!(
            "/api/sns/userinfo?access_token={access}&openid={}&lang=zh_CN",
            users[0].openid
        ),
    )
    .await;
    assert_eq!(ui["nickname"], users[0].nickname.as_str(), "{ui}");
    assert_eq!(ui["unionid"], users[0].unionid.as_str());
    assert!(ui["headimgurl"]
        .as_str()
        .unwrap()
        .starts_with("data:image/svg+xml"));
    assert_eq!(ui["privilege"], json!([]));
    // Wrong openid for the token.
    let ui = get_json(
        &r,
        &format!(
            "/api/sns/userinfo?access_token={access}&openid={}&lang=zh_CN",
            users[1].openid
        ),
    )
    .await;
    assert_eq!(ui["errcode"], 40003);

    // Refresh gives a new working token; a bogus refresh token does not.
    let rt = tok["refresh_token"].as_str().unwrap();
    let refreshed = get_json(
        &r,
        &format!(
            "/api/sns/oauth2/refresh_token?appid={}&grant_type=refresh_token&refresh_token={rt}",
            c.appid
        ),
    )
    .await;
    let access2 = refreshed["access_token"].as_str().unwrap();
    assert_ne!(access2, access);
    let ui = get_json(
        &r,
        &format!(
            "/api/sns/userinfo?access_token={access2}&openid={}",
            users[0].openid
        ),
    )
    .await;
    assert_eq!(ui["openid"], users[0].openid.as_str());
    let bad = get_json(
        &r,
        &format!(
            "/api/sns/oauth2/refresh_token?appid={}&grant_type=refresh_token&refresh_token=nope",
            c.appid
        ),
    )
    .await;
    assert_eq!(bad["errcode"], 40030);
    // sns token expiry.
    r.sandbox.advance_clock(Duration::from_secs(7201));
    let ui = get_json(
        &r,
        &format!(
            "/api/sns/userinfo?access_token={access2}&openid={}",
            users[0].openid
        ),
    )
    .await;
    assert_eq!(ui["errcode"], 42001);
}

#[tokio::test]
async fn oauth_authorize_validates_like_wechat() {
    let r = start().await;
    let c = creds();
    let ru = "https%3A%2F%2Fshop.example%2Fcb";
    let cases = [
        // wrong order
        format!("redirect_uri={ru}&appid={}&response_type=code&scope=snsapi_base&state=a", c.appid),
        // bad appid
        format!("appid=wx0000000000000000&redirect_uri={ru}&response_type=code&scope=snsapi_base&state=a"),
        // bad scope
        format!("appid={}&redirect_uri={ru}&response_type=code&scope=snsapi_login&state=a", c.appid),
        // bad state charset
        format!("appid={}&redirect_uri={ru}&response_type=code&scope=snsapi_base&state=a-b", c.appid),
        // state too long
        format!("appid={}&redirect_uri={ru}&response_type=code&scope=snsapi_base&state={}", c.appid, "a".repeat(129)),
        // missing state
        format!("appid={}&redirect_uri={ru}&response_type=code&scope=snsapi_base", c.appid),
        // response_type
        format!("appid={}&redirect_uri={ru}&response_type=token&scope=snsapi_base&state=a", c.appid),
        // relative redirect_uri
        format!("appid={}&redirect_uri=%2Fcb&response_type=code&scope=snsapi_base&state=a", c.appid),
    ];
    for q in cases {
        let resp = r
            .http
            .get(format!("{}/open/connect/oauth2/authorize?{q}", r.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{q}");
        assert!(
            resp.text().await.unwrap().contains("id=\"wx-error\""),
            "{q}"
        );
    }
    // 128 bytes of state is fine.
    let ok = r
        .http
        .get(format!(
            "{}/open/connect/oauth2/authorize?appid={}&redirect_uri={ru}&response_type=code&scope=snsapi_base&state={}",
            r.base,
            c.appid,
            "a".repeat(128)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // OAuth domains, when configured, are enforced.
    r.sandbox
        .update_options(|o| o.oauth_domains = vec!["mall.example".into()]);
    let resp = r
        .http
        .get(format!(
            "{}/open/connect/oauth2/authorize?{}",
            r.base,
            authorize_query("snsapi_base", "a")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn oauth_code_expires_after_five_minutes() {
    let r = start().await;
    let code = r.sandbox.issue_oauth_code(0, "snsapi_base");
    r.sandbox.advance_clock(Duration::from_secs(301));
    assert_eq!(exchange(&r, &code).await["errcode"], 42003);
    let code = r.sandbox.issue_oauth_code(0, "snsapi_base");
    r.sandbox.advance_clock(Duration::from_secs(290));
    assert!(exchange(&r, &code).await["openid"].is_string());
}

async fn cgi_token(r: &Running) -> String {
    let c = creds();
    let v = get_json(
        r,
        &format!(
            "/api/cgi-bin/token?grant_type=client_credential&appid={}&secret={}",
            c.appid, c.appsecret
        ),
    )
    .await;
    assert_eq!(v["expires_in"], 7200, "{v}");
    v["access_token"].as_str().unwrap().to_string()
}

async fn ticket(r: &Running, token: &str) -> Value {
    get_json(
        r,
        &format!("/api/cgi-bin/ticket/getticket?access_token={token}&type=jsapi"),
    )
    .await
}

async fn stable(r: &Running, force: bool) -> Value {
    let c = creds();
    r.http
        .post(format!("{}/api/cgi-bin/stable_token", r.base))
        .json(&json!({"grant_type": "client_credential", "appid": c.appid, "secret": c.appsecret, "force_refresh": force}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn cgi_token_invalidates_the_previous_one_after_an_overlap() {
    let r = start().await;
    let a = cgi_token(&r).await;
    assert_eq!(ticket(&r, &a).await["errcode"], 0);
    let b = cgi_token(&r).await;
    assert_ne!(a, b);
    // Overlap: the old token still works for a while…
    r.sandbox.advance_clock(Duration::from_secs(200));
    assert_eq!(ticket(&r, &a).await["errcode"], 0);
    // …then not.
    r.sandbox.advance_clock(Duration::from_secs(101));
    assert_eq!(ticket(&r, &a).await["errcode"], 40001);
    let t = ticket(&r, &b).await;
    assert_eq!(t["errcode"], 0);
    assert_eq!(t["errmsg"], "ok");
    assert_eq!(t["expires_in"], 7200);
    assert!(t["ticket"].as_str().unwrap().len() > 40);
    // Expiry.
    r.sandbox.advance_clock(Duration::from_secs(7200));
    assert_eq!(ticket(&r, &b).await["errcode"], 42001);
    assert_eq!(ticket(&r, "garbage").await["errcode"], 40001);
    assert_eq!(r.sandbox.token_fetches(), 2);
    assert_eq!(r.sandbox.ticket_fetches(), 6);
    // Bad credentials.
    let c = creds();
    let v = get_json(
        &r,
        &format!(
            "/api/cgi-bin/token?grant_type=client_credential&appid={}&secret=x",
            c.appid
        ),
    )
    .await;
    assert_eq!(v["errcode"], 40125);
    let v = get_json(
        &r,
        &format!(
            "/api/cgi-bin/token?grant_type=client_credential&appid=wx1&secret={}",
            c.appsecret
        ),
    )
    .await;
    assert_eq!(v["errcode"], 40013);
}

#[tokio::test]
async fn stable_token_does_not_invalidate() {
    let r = start().await;
    let s1 = stable(&r, false).await;
    let s2 = stable(&r, false).await;
    assert_eq!(s1["access_token"], s2["access_token"]);
    // /cgi-bin/token does not touch the stable token.
    let _ = cgi_token(&r).await;
    let _ = cgi_token(&r).await;
    r.sandbox.advance_clock(Duration::from_secs(400));
    let st = s1["access_token"].as_str().unwrap();
    assert_eq!(ticket(&r, st).await["errcode"], 0);
    // force_refresh gives a new one; the old keeps working only for the overlap.
    let s3 = stable(&r, true).await;
    assert_ne!(s3["access_token"], s1["access_token"]);
    assert_eq!(ticket(&r, st).await["errcode"], 0);
    r.sandbox.advance_clock(Duration::from_secs(301));
    assert_eq!(ticket(&r, st).await["errcode"], 40001);
    assert_eq!(
        ticket(&r, s3["access_token"].as_str().unwrap()).await["errcode"],
        0
    );
    assert_eq!(r.sandbox.stable_token_fetches(), 3);
    // Bad JSON.
    let v: Value = r
        .http
        .post(format!("{}/api/cgi-bin/stable_token", r.base))
        .body("{nope")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["errcode"], 47001);
}

#[tokio::test]
async fn faults_can_be_injected() {
    let r = start().await;
    r.sandbox
        .fail_next(Endpoint::CgiToken, Fault::errcode(-1, "system error"));
    r.sandbox.fail_next(
        Endpoint::CgiToken,
        Fault::Http {
            status: 502,
            body: "bad gateway".into(),
        },
    );
    let c = creds();
    let q = format!(
        "/api/cgi-bin/token?grant_type=client_credential&appid={}&secret={}",
        c.appid, c.appsecret
    );
    assert_eq!(
        get_json(&r, &q).await,
        json!({"errcode": -1, "errmsg": "system error"})
    );
    let resp = r.http.get(format!("{}{q}", r.base)).send().await.unwrap();
    assert_eq!(resp.status(), 502);
    let token = cgi_token(&r).await;
    r.sandbox.fail_next(
        Endpoint::GetTicket,
        Fault::errcode(40001, "invalid credential"),
    );
    assert_eq!(ticket(&r, &token).await["errcode"], 40001);
    assert_eq!(ticket(&r, &token).await["errcode"], 0);
    r.sandbox.fail_next(
        Endpoint::StableToken,
        Fault::Delay(Duration::from_millis(300)),
    );
    let t0 = std::time::Instant::now();
    assert!(stable(&r, false).await["access_token"].is_string());
    assert!(t0.elapsed() >= Duration::from_millis(300));
    r.sandbox.expire_access_tokens();
    assert_eq!(ticket(&r, &token).await["errcode"], 42001);
}

async fn config(r: &Running, body: Value) -> Value {
    r.http
        .post(format!("{}/jsapi/config", r.base))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn wx_config_checks_the_sha1_signature() {
    let r = start().await;
    let c = creds();
    let token = cgi_token(&r).await;
    let t = ticket(&r, &token).await["ticket"]
        .as_str()
        .unwrap()
        .to_string();
    let url = "https://shop.example/pay/confirm?order=42&from=timeline";
    let ts = now_secs().to_string();
    let n = nonce();
    let sig = jsapi_sha1(&t, &n, &ts, url);
    let good = json!({"appId": c.appid, "timestamp": ts, "nonceStr": n, "signature": sig, "url": url, "jsApiList": ["chooseWXPay"]});
    let v = config(&r, good.clone()).await;
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["configId"].is_string());
    // Numeric timestamp is accepted (JS may pass a number).
    let mut numeric = good.clone();
    numeric["timestamp"] = json!(ts.parse::<i64>().unwrap());
    assert_eq!(config(&r, numeric).await["ok"], true);

    // One byte off anywhere → invalid signature.
    for (k, v) in [
        ("signature", {
            let mut s = sig.clone();
            s.replace_range(0..1, if s.starts_with('0') { "1" } else { "0" });
            s
        }),
        ("url", format!("{url}&x")),
        (
            "url",
            "https://shop.example/pay/confirm?order=43&from=timeline".to_string(),
        ),
        ("nonceStr", format!("{n}X")),
        ("timestamp", (ts.parse::<i64>().unwrap() + 1).to_string()),
    ] {
        let mut b = good.clone();
        b[k] = json!(v);
        let res = config(&r, b).await;
        assert_eq!(res["errMsg"], "config:invalid signature", "{k}: {res}");
    }
    let mut b = good.clone();
    b["appId"] = json!("wx0000000000000000");
    assert_eq!(config(&r, b).await["errMsg"], "config:invalid url domain");
    // JS safe domains, when configured.
    r.sandbox
        .update_options(|o| o.js_safe_domains = vec!["mall.example".into()]);
    assert_eq!(
        config(&r, good.clone()).await["errMsg"],
        "config:invalid url domain"
    );
    r.sandbox.update_options(|o| o.js_safe_domains.clear());
    // Expired ticket → invalid signature.
    r.sandbox.expire_jsapi_tickets();
    assert_eq!(config(&r, good).await["errMsg"], "config:invalid signature");
    let events = r.sandbox.js_events();
    assert!(events.iter().any(|e| e.kind == "config" && e.ok));
    assert!(events.iter().any(|e| e.kind == "config" && !e.ok));
}

#[tokio::test]
async fn wx_config_accepts_the_official_vector() {
    let r = start().await;
    let c = creds();
    let t =
        "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg";
    r.sandbox.adopt_jsapi_ticket(t);
    let mut body = json!({
        "appId": c.appid, "timestamp": "1414587457", "nonceStr": "Wm3WZYTPz0wzccnW",
        "signature": "0f9de62fce790f9a083d5c99e95740ceb90c27ed",
        "url": "http://mp.weixin.qq.com?params=value", "jsApiList": []
    });
    assert_eq!(config(&r, body.clone()).await["ok"], true);
    body["signature"] = json!("0f9de62fce790f9a083d5c99e95740ceb90c27ee");
    assert_eq!(
        config(&r, body.clone()).await["errMsg"],
        "config:invalid signature"
    );
    body["signature"] = json!("0f9de62fce790f9a083d5c99e95740ceb90c27ed");
    body["url"] = json!("http://mp.weixin.qq.com?params=valuf");
    assert_eq!(config(&r, body).await["errMsg"], "config:invalid signature");
}

#[tokio::test]
async fn shim_script_and_dashboard_are_served() {
    let r = start().await;
    let resp = r
        .http
        .get(format!("{}/jweixin.js", r.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/javascript"));
    let js = resp.text().await.unwrap();
    assert!(
        js.contains("WeixinJSBridge") && js.contains("__wxSandbox") && js.contains("chooseWXPay")
    );
    let idx = r.http.get(&r.base).send().await.unwrap();
    assert_eq!(idx.headers()["location"], "/sandbox/dashboard");
    let dash = r
        .http
        .get(format!("{}/dashboard", r.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(dash.contains(&creds().appid));
    assert!(!dash.contains(&creds().appsecret));
}
