//! A throw-away "shop" around the sandbox, for eyeballing the pages:
//! `cargo run -p wechat-sandbox --example demo` then open http://127.0.0.1:8099/demo
//! (`/demo?auto=1` opens the pay sheet by itself). It signs with its own few lines of code,
//! as the real shop does with the `wechat` crate.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::{get, post};
use axum::Router;
use md5::{Digest, Md5};
use wechat_sandbox::{Sandbox, SandboxCredentials};

#[derive(Clone)]
struct App {
    sb: Sandbox,
    origin: String,
}

fn md5_sign(p: &BTreeMap<&str, String>, key: &str) -> String {
    let mut s: Vec<String> = p
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    s.push(format!("key={key}"));
    hex::encode_upper(Md5::digest(s.join("&").as_bytes()))
}

fn field(xml: &str, k: &str) -> String {
    let a = format!("<{k}><![CDATA[");
    xml.split_once(&a)
        .and_then(|(_, r)| r.split_once("]]>"))
        .map(|(v, _)| v.to_string())
        .unwrap_or_default()
}

async fn demo(State(app): State<App>, Query(q): Query<BTreeMap<String, String>>) -> Html<String> {
    let c = app.sb.credentials().clone();
    let base = format!("{}/sandbox", app.origin);
    let http = reqwest::Client::new();
    let tok: serde_json::Value = http
        .get(format!(
            "{base}/api/cgi-bin/token?grant_type=client_credential&appid={}&secret={}",
            c.appid, c.appsecret
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t: serde_json::Value = http
        .get(format!(
            "{base}/api/cgi-bin/ticket/getticket?access_token={}&type=jsapi",
            tok["access_token"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let no = format!(
        "DEMO{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let mut p: BTreeMap<&str, String> = BTreeMap::new();
    for (k, v) in [
        ("appid", c.appid.clone()),
        ("mch_id", c.mchid.clone()),
        ("nonce_str", "demo".into()),
        ("body", "wxmall-演示商品 ×2".into()),
        ("out_trade_no", no),
        ("total_fee", "1990".into()),
        ("spbill_create_ip", "127.0.0.1".into()),
        ("notify_url", format!("{}/demo/notify", app.origin)),
        ("trade_type", "JSAPI".into()),
        ("openid", app.sb.users()[0].openid.clone()),
    ] {
        p.insert(k, v);
    }
    let sign = md5_sign(&p, &c.pay_key_v2);
    let xml: String = p
        .iter()
        .map(|(k, v)| format!("<{k}><![CDATA[{v}]]></{k}>"))
        .collect();
    let answer = http
        .post(format!("{base}/pay/pay/unifiedorder"))
        .body(format!("<xml>{xml}<sign>{sign}</sign></xml>"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let package = format!("prepay_id={}", field(&answer, "prepay_id"));
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let mut url = format!("{}/demo", app.origin);
    if q.contains_key("auto") {
        url.push_str("?auto=1");
    }
    let sig = {
        use sha1::Digest as _;
        let s = format!(
            "jsapi_ticket={}&noncestr=demo&timestamp={ts}&url={url}",
            t["ticket"].as_str().unwrap()
        );
        hex::encode(sha1::Sha1::digest(s.as_bytes()))
    };
    let mut pp: BTreeMap<&str, String> = BTreeMap::new();
    for (k, v) in [
        ("appId", c.appid.clone()),
        ("timeStamp", ts.clone()),
        ("nonceStr", "demo".into()),
        ("package", package.clone()),
        ("signType", "MD5".into()),
    ] {
        pp.insert(k, v);
    }
    let pay_sign = md5_sign(&pp, &c.pay_key_v2);
    Html(format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<script src="/sandbox/jweixin.js"></script></head><body style="font-family:sans-serif;padding:16px">
<h3>wxmall demo</h3><p id="state">config…</p><button id="buy" style="padding:10px 20px">立即支付 ¥19.90</button>
<script>
wx.config({{appId:'{appid}',timestamp:{ts},nonceStr:'demo',signature:'{sig}',jsApiList:['chooseWXPay']}});
function pay(){{ wx.chooseWXPay({{timestamp:'{ts}',nonceStr:'demo',package:'{package}',signType:'MD5',paySign:'{pay_sign}',
  success:function(r){{document.getElementById('state').textContent=r.errMsg}},
  cancel:function(r){{document.getElementById('state').textContent=r.errMsg}},
  fail:function(r){{document.getElementById('state').textContent=r.errMsg}}}}); }}
wx.ready(function(){{ document.getElementById('state').textContent='ready'; if (location.search.indexOf('auto')>=0) pay(); }});
wx.error(function(e){{ document.getElementById('state').textContent=e.errMsg; }});
document.getElementById('buy').onclick=pay;
</script></body></html>"#,
        appid = c.appid
    ))
}

#[tokio::main]
async fn main() {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8099".into());
    let origin = format!("http://127.0.0.1:{port}");
    let sb = Sandbox::new(SandboxCredentials::from_seed(1));
    let app = Router::new()
        .route("/demo", get(demo))
        .route(
            "/demo/notify",
            post(|| async { "<xml><return_code><![CDATA[SUCCESS]]></return_code></xml>" }),
        )
        .with_state(App {
            sb: sb.clone(),
            origin: origin.clone(),
        })
        .nest("/sandbox", sb.router());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    println!("demo on {origin}/demo · sandbox dashboard {origin}/sandbox/dashboard");
    axum::serve(listener, app).await.unwrap();
}
