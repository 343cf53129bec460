//! `wxmall doctor`: checks the live configuration the way WeChat will meet it, and says for
//! each check ok / warn / fail, what it saw, and exactly what to do — with the values to paste
//! into WeChat's consoles. The mistakes it looks for are the ones WeChat developers ask about
//! most: a redirect or JS-SDK domain that is not registered, an IP missing from the whitelist
//! (40164), a wrong appsecret or appid, a wrong Pay key or a private key that does not match its
//! serial, a notify URL WeChat cannot reach, a payment page outside the 支付授权目录 (「当前页面的
//! URL未注册」), a clock minutes off, an official-account server that does not answer its own
//! verification.

use std::path::Path;
use std::time::Duration;

use crate::db::Db;
use serde::Serialize;

use crate::wx::Wechat;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    /// What it saw.
    pub detail: String,
    /// What to do (empty when ok).
    pub fix: String,
}

/// The whole report: the checks, and the values to paste into WeChat's consoles.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
    pub paste: Vec<Paste>,
}

/// A value for a field of WeChat's consoles.
#[derive(Clone, Debug, Serialize)]
pub struct Paste {
    pub field: &'static str,
    pub value: String,
}

impl Report {
    /// Whether any check failed (exit status 1).
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }

    /// The check named `name`.
    pub fn get(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// The report for people.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for c in &self.checks {
            let tag = match c.status {
                Status::Ok => "[ ok ]",
                Status::Warn => "[warn]",
                Status::Fail => "[FAIL]",
            };
            s.push_str(&format!("{tag} {:<14} {}\n", c.name, c.detail));
            if !c.fix.is_empty() {
                s.push_str(&format!("       {:<14} → {}\n", "", c.fix));
            }
        }
        s.push_str("\nPaste into WeChat's consoles:\n");
        for p in &self.paste {
            s.push_str(&format!("  {}: {}\n", p.field, p.value));
        }
        s
    }
}

fn ok(name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        name,
        status: Status::Ok,
        detail: detail.into(),
        fix: String::new(),
    }
}

fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name,
        status: Status::Warn,
        detail: detail.into(),
        fix: fix.into(),
    }
}

fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name,
        status: Status::Fail,
        detail: detail.into(),
        fix: fix.into(),
    }
}

fn is_loopback(url: &str) -> bool {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .is_some_and(|h| h == "127.0.0.1" || h == "localhost" || h == "[::1]")
}

/// What WeChat's errcode means for the merchant.
pub fn explain_token_error(e: &wechat::mp::token::TokenError) -> String {
    use wechat::error::{ApiError, MpError};
    match e {
        wechat::mp::token::TokenError::Mp(MpError::Api(api)) => match api {
            ApiError::IpNotWhitelisted(_, ip) => format!(
                "add {} to 公众号后台 → 设置与开发 → 基本配置 → IP白名单 (the address WeChat saw this server call from)",
                ip.as_deref().unwrap_or("this server's public IP")
            ),
            ApiError::InvalidAppSecret => {
                "WECHAT_APPSECRET is wrong: copy the AppSecret again from 基本配置 (reset it if nobody has it)".into()
            }
            ApiError::InvalidAppId => {
                "WECHAT_APPID is wrong: it is the official account's AppID (wx + 16 characters) from 基本配置".into()
            }
            ApiError::InvalidCredential => {
                "the appid and appsecret do not belong together, or another system refreshed the token: use one token service".into()
            }
            ApiError::Other { errcode: 89503 | 89501 | 89506 | 89507, .. } => {
                "WeChat asks an administrator to confirm this server's IP: approve it in the 公众号 admin's WeChat, then add it to the IP白名单".into()
            }
            ApiError::Other { errcode: 40243, .. } => {
                "the AppSecret is frozen: unfreeze or reset it in 基本配置".into()
            }
            other => format!("WeChat said: {other}"),
        },
        other => format!("could not reach WeChat: {other}"),
    }
}

/// What the doctor looks at.
pub struct Inputs<'a> {
    pub public_url: &'a str,
    pub site_root: &'a Path,
    pub wechat: &'a Wechat,
    pub pool: &'a Db,
    pub redis_url: Option<&'a str>,
    pub http: reqwest::Client,
}

/// Runs every check.
pub async fn examine(i: &Inputs<'_>) -> Report {
    let public = i.public_url.trim_end_matches('/');
    let host = url::Url::parse(public)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let wx = i.wechat;
    let mut checks = Vec::new();

    // 1. The public URL.
    checks.push(if public.starts_with("https://") {
        ok("public_url", format!("{public} is https"))
    } else if is_loopback(public) {
        warn(
            "public_url",
            format!("{public} is a local http address"),
            "fine on this machine; WeChat needs the shop on https at its own domain (WXMALL_PUBLIC_URL)",
        )
    } else {
        fail(
            "public_url",
            format!("{public} is not https"),
            "serve the shop over https and set WXMALL_PUBLIC_URL=https://your.domain",
        )
    });

    // 2. The shop answers at it.
    let answered = i
        .http
        .get(format!("{public}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    // The certificate the shop is served with (https only): the handshake above read it.
    if public.starts_with("https://") {
        checks.push(match &answered {
            Ok(r) => match r
                .extensions()
                .get::<reqwest::tls::TlsInfo>()
                .and_then(|t| t.peer_certificate())
            {
                Some(der) => certificate_check(&host, der, time::OffsetDateTime::now_utc()),
                None => warn(
                    "certificate",
                    "the certificate could not be read",
                    "run the doctor with its own HTTP client (probe_client)",
                ),
            },
            Err(e) => fail(
                "certificate",
                format!("no TLS connection to {public}: {}", error_chain(e)),
                "install a certificate for this domain that browsers trust (a full chain), and renew it before it expires",
            ),
        });
    }
    checks.push(match answered {
        Ok(r) if r.status().is_success() => ok("shop_answers", format!("{public}/healthz answers")),
        Ok(r) => fail(
            "shop_answers",
            format!(
                "{public}/healthz answered HTTP {}{}",
                r.status().as_u16(),
                redirect_note(&r)
            ),
            "the proxy in front of the shop must pass every path to it",
        ),
        Err(e) => fail(
            "shop_answers",
            format!("{public} cannot be reached: {e}"),
            "start the shop, and check DNS and the reverse proxy for this URL",
        ),
    });

    // 3. MP_verify_*.txt files (网页授权域名 verification).
    let files: Vec<_> = std::fs::read_dir(i.site_root)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("MP_verify_") && n.ends_with(".txt"))
                .collect()
        })
        .unwrap_or_default();
    if files.is_empty() {
        checks.push(warn(
            "verify_files",
            "no MP_verify_*.txt in the site",
            "when 网页授权域名 asks for its file, put it in public/ (it is served at the site root) and rebuild",
        ));
    } else {
        for f in files {
            let want = std::fs::read_to_string(i.site_root.join(&f)).unwrap_or_default();
            let got = match i.http.get(format!("{public}/{f}")).send().await {
                Ok(r) if r.status().is_success() => r.text().await.ok(),
                _ => None,
            };
            checks.push(if got.as_deref().map(str::trim) == Some(want.trim()) {
                ok("verify_files", format!("{public}/{f} is served"))
            } else {
                fail(
                    "verify_files",
                    format!("{public}/{f} is not served with its content"),
                    "the proxy must serve the site root's files from the shop",
                )
            });
        }
    }

    // 3b. The pages that pay are served under the 支付授权目录.
    let directory = pay_directory(public);
    checks.push(pay_directory_check(&i.http, &directory).await);

    // 4–5. access_token, jsapi_ticket and a wx.config signature for the home page.
    match wx.tokens.access_token().await {
        Ok(_) => checks.push(ok(
            "access_token",
            "WeChat gives this server an access_token",
        )),
        Err(e) => checks.push(fail(
            "access_token",
            format!("no access_token: {e}"),
            explain_token_error(&e),
        )),
    }
    match wx.tokens.jssdk_config(&format!("{public}/")).await {
        Ok(cfg) => {
            let ok_sig = cfg.signature.len() == 40;
            checks.push(if ok_sig {
                ok(
                    "jsapi_ticket",
                    format!("jsapi_ticket works; wx.config for {public}/ is signed"),
                )
            } else {
                fail(
                    "jsapi_ticket",
                    "the wx.config signature is malformed",
                    "report this",
                )
            });
        }
        Err(e) => checks.push(fail(
            "jsapi_ticket",
            format!("no jsapi_ticket: {e}"),
            explain_token_error(&e),
        )),
    }

    // Pay v3: WeChat's platform certificates, downloaded now (for `pay_keys` below). First: a
    // merchant without a 微信支付公钥 has no other key to verify the query's answer with, and
    // the client verifies an error answer only with the keys it already holds.
    let verifier = wx.pay.v3_verifier();
    let download = match &verifier {
        Some(v) => Some(v.refresh().await),
        None => None,
    };

    // 6. WeChat Pay: a query for an order that cannot exist must come back as "does not exist",
    //    verified — anything else means the key (v2) or the key/serial pair (v3) is wrong.
    let probe = format!("DOCTOR{}", crate::shop::now());
    checks.push(match wx.pay.query(&probe).await {
        Err(e) if e.is_order_not_exist() => ok(
            "pay",
            format!("WeChat Pay {:?} answers a signed query (mchid {})", wx.pay_version, wx.mchid),
        ),
        Ok(_) => ok("pay", "WeChat Pay answers a signed query"),
        Err(e) => fail(
            "pay",
            format!("WeChat Pay refused a query: {e}"),
            match wx.pay_version {
                crate::wechat_config::PayVersion::V2 => {
                    "a signature error means WECHAT_PAY_KEY is not the 32-character API key set in 商户平台 → API安全"
                }
                crate::wechat_config::PayVersion::V3 => {
                    "a signature error means WECHAT_MCH_PRIVATE_KEY and WECHAT_MCH_SERIAL do not belong together (商户平台 → API安全 → API证书); check WECHAT_APIV3_KEY too"
                }
            },
        ),
    });

    // 6b. Pay v3: the keys WeChat's signatures are checked with.
    if let (Some(verifier), Some(download)) = (verifier, download) {
        checks.push(pay_keys_check(
            &verifier.public_key_ids(),
            download.as_ref().map(|n| *n),
            &verifier.certificates(),
            crate::shop::now(),
        ));
    }

    // 7. Notify URLs: https (unless local), under the public URL, no query, and the shop answers.
    for url in [wx.notify_url(), wx.refund_notify_url()] {
        let shape_ok = url.starts_with(public)
            && !url.contains('?')
            && (url.starts_with("https://") || is_loopback(&url));
        let reached = i
            .http
            .post(&url)
            .timeout(Duration::from_secs(5))
            .body("")
            .send()
            .await;
        checks.push(match (shape_ok, reached) {
            (true, Ok(r)) if r.status().as_u16() != 404 && !r.status().is_redirection() => {
                ok("notify_url", format!("{url} reaches the shop"))
            }
            (false, _) => fail(
                "notify_url",
                format!("{url} is not an https URL of the shop without a query"),
                "WeChat posts notifications only to https URLs: fix WXMALL_PUBLIC_URL",
            ),
            (true, Ok(r)) => fail(
                "notify_url",
                format!("{url} answered HTTP {}{}", r.status().as_u16(), redirect_note(&r)),
                if r.status().is_redirection() {
                    "WeChat follows no redirect: the proxy must pass /wechat/notify/… to the shop as it is"
                } else {
                    "the proxy must pass /wechat/notify/… to the shop"
                },
            ),
            (true, Err(e)) => fail(
                "notify_url",
                format!("{url} cannot be reached: {e}"),
                "WeChat must reach this URL from the internet",
            ),
        });
    }

    // 8. The clock, against WeChat's own `Date`.
    let api_probe = wx.hosts_api_url("/cgi-bin/token");
    let date = match i.http.get(&api_probe).send().await {
        Ok(r) => r
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        Err(_) => None,
    };
    checks.push(clock_check(
        date.as_deref(),
        time::OffsetDateTime::now_utc(),
    ));

    // 9. The official account's server answers its own verification.
    match &wx.mp {
        None => checks.push(warn(
            "mp_server",
            "no official-account server configured",
            "set WECHAT_MP_TOKEN (and WECHAT_MP_AES_KEY for 安全模式) to receive follows, scans and menu taps",
        )),
        Some(mp) => {
            let (ts, nonce) = ("1700000000", "doctor");
            let sig = mp.signature_for(ts, nonce);
            let url = format!(
                "{public}/wechat/mp?signature={sig}&timestamp={ts}&nonce={nonce}&echostr=doctor-echo"
            );
            let got = match i.http.get(&url).send().await {
                Ok(r) if r.status().is_success() => r.text().await.ok(),
                _ => None,
            };
            checks.push(if got.as_deref() == Some("doctor-echo") {
                ok("mp_server", format!("{public}/wechat/mp answers its verification"))
            } else {
                fail(
                    "mp_server",
                    format!("{public}/wechat/mp does not answer its verification"),
                    "the proxy must pass /wechat/mp to the shop; the Token in 服务器配置 must equal WECHAT_MP_TOKEN",
                )
            });
        }
    }

    // 10. Redis, when configured.
    if let Some(url) = i.redis_url {
        let reachable = async {
            let client = redis::Client::open(url).map_err(|e| e.to_string())?;
            let mut c = tokio::time::timeout(
                Duration::from_secs(3),
                client.get_multiplexed_async_connection(),
            )
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| e.to_string())?;
            redis::cmd("PING")
                .query_async::<String>(&mut c)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        checks.push(match reachable {
            Ok(_) => ok("redis", "WXMALL_REDIS_URL answers"),
            Err(e) => fail(
                "redis",
                format!("WXMALL_REDIS_URL does not answer: {e}"),
                "start Redis or fix WXMALL_REDIS_URL (several instances share tokens and limits through it)",
            ),
        });
    }

    // 11. The database: writable, migrations current.
    checks.push(database_check(i.pool).await);

    let paste = [
        (
            "网页授权域名 (公众号 → 设置与开发 → 接口权限 → 网页授权)",
            host.clone(),
        ),
        ("JS接口安全域名 (公众号设置 → 功能设置)", host),
        (
            "支付授权目录 (商户平台 → 产品中心 → 开发配置)",
            directory.directory,
        ),
        ("支付回调 notify URL", wx.notify_url()),
        ("退款回调 notify URL", wx.refund_notify_url()),
        ("服务器地址(URL) (基本配置 → 服务器配置)", wx.mp_url()),
    ]
    .into_iter()
    .map(|(field, value)| Paste { field, value })
    .collect();
    Report { checks, paste }
}

/// The pages that start a payment (`app/src/pages`): 确认订单 (`/checkout`) creates the order
/// and opens the order page (`/orders/{id}`), whose 去支付 calls `wx.chooseWXPay`. The order page
/// is asked for an order that cannot exist (ids start at 1): the shop answers with its own 404
/// page, which proves the path reaches it. `(path under the directory, as shown, whether the
/// shop's 404 page counts)`.
pub const PAY_PAGES: [(&str, &str, bool); 2] = [
    ("checkout", "checkout", false),
    ("orders/0", "orders/{id}", true),
];

/// What every page of the shop carries in its `<head>` (`app/src/lib.rs`, `shell`): tells the
/// shop's own page (a 404 included) from a proxy's.
const SHOP_PAGE_MARKER: &str = "name=\"wxmall-jssdk\"";

/// Redirects the `pay_directory` check follows by hand while they stay inside the directory.
const MAX_PAGE_REDIRECTS: usize = 3;

/// The 支付授权目录 for a public URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayDirectory {
    /// What to register, exactly: the public URL as a browser writes it, ending in `/`.
    pub directory: String,
    /// Why the public URL does not make a good directory: `(Warn | Fail, detail, fix)`.
    pub problem: Option<(Status, String, String)>,
}

/// The 支付授权目录 a shop at `public` (no trailing `/`) must register. WeChat compares it with
/// the page's URL as a case-sensitive prefix, and it must end in `/`: a public URL with a
/// query, or ending in a file name, is no directory (fail); a path with upper-case letters
/// works only when registered exactly so (warn).
pub fn pay_directory(public: &str) -> PayDirectory {
    let Ok(u) = url::Url::parse(public) else {
        return PayDirectory {
            directory: format!("{public}/"),
            problem: Some((
                Status::Fail,
                format!("WXMALL_PUBLIC_URL {public:?} is not a URL"),
                "set WXMALL_PUBLIC_URL to the shop's address, e.g. https://shop.example.com".into(),
            )),
        };
    };
    let origin = u.origin().ascii_serialization();
    let path = u.path().trim_end_matches('/');
    let last = path.rsplit('/').next().unwrap_or_default();
    if u.query().is_some() || u.fragment().is_some() {
        let directory = format!("{origin}{path}/");
        return PayDirectory {
            problem: Some((
                Status::Fail,
                format!("WXMALL_PUBLIC_URL {public} carries a query or fragment: {public}/ would not be a directory ending in /"),
                format!("set WXMALL_PUBLIC_URL={origin}{path} and register {directory} as 支付授权目录"),
            )),
            directory,
        };
    }
    if last.contains('.') {
        let parent = &path[..path.len() - last.len()];
        let directory = format!("{origin}{parent}");
        return PayDirectory {
            problem: Some((
                Status::Fail,
                format!("WXMALL_PUBLIC_URL {public} ends in a file name ({last}): {public}/ is no directory, and the pages are not under {directory}{last}/"),
                format!(
                    "set WXMALL_PUBLIC_URL={origin}{} (without the file name) and register {directory} as 支付授权目录",
                    parent.trim_end_matches('/')
                ),
            )),
            directory,
        };
    }
    let directory = format!("{origin}{path}/");
    // Upper-case letters of the path itself (not the hex digits of its %-escapes).
    let mut rest = path;
    let mut upper = false;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.get(3..).filter(|_| c == '%') {
            rest = after;
            continue;
        }
        upper |= c.is_ascii_uppercase();
        rest = &rest[c.len_utf8()..];
    }
    let problem = upper.then(|| {
        (
            Status::Warn,
            format!(
                "the path of {directory} has upper-case letters, and 支付授权目录 is case-sensitive: {} would not cover it",
                directory.to_lowercase()
            ),
            format!("register exactly {directory} as 支付授权目录 (or serve the shop at a lower-case path)"),
        )
    });
    PayDirectory { directory, problem }
}

/// The `pay_directory` check: the public URL makes a directory ([`pay_directory`]), and each of
/// [`PAY_PAGES`] is served under it — the shop's own page, no redirect out of the directory.
/// Redirects inside it are followed by hand; none is followed elsewhere.
pub async fn pay_directory_check(http: &reqwest::Client, d: &PayDirectory) -> Check {
    const NAME: &str = "pay_directory";
    let dir = &d.directory;
    if let Some((Status::Fail, detail, fix)) = &d.problem {
        return fail(NAME, detail.clone(), fix.clone());
    }
    let mut covered = Vec::new();
    for (page, shown, not_found_ok) in PAY_PAGES {
        match probe_pay_page(http, dir, &format!("{dir}{page}"), not_found_ok).await {
            Ok(()) => covered.push(format!("{dir}{shown}")),
            Err((detail, fix)) => return fail(NAME, detail, fix),
        }
    }
    let ios = "iOS checks the page the shopper landed on, Android the current one: a shopper who entered the shop at another address (a QR code or link to another domain or path) needs that directory registered too (up to 5, each ending in /)";
    let served = format!(
        "the pages that call wx.chooseWXPay are served under {dir} ({})",
        covered.join(", ")
    );
    match &d.problem {
        Some((_, detail, fix)) => warn(NAME, format!("{served}; {detail}. {ios}"), fix.clone()),
        None => ok(
            NAME,
            format!("{served}: register {dir} as 支付授权目录. {ios}"),
        ),
    }
}

/// GETs `url` (a page of the shop) as a browser opening it would land: `Err((detail, fix))`
/// unless the shop's page answers under `dir` (200, or its 404 page when `not_found_ok`).
async fn probe_pay_page(
    http: &reqwest::Client,
    dir: &str,
    url: &str,
    not_found_ok: bool,
) -> Result<(), (String, String)> {
    let outside = |target: &str| {
        (
            format!("{url} redirects to {target}, outside the 支付授权目录 {dir}"),
            format!(
                "WeChat checks the page's own URL against 支付授权目录: a page that moves to {target} gets 「当前页面的URL未注册」. Serve it at {url} without a redirect (the proxy), or set WXMALL_PUBLIC_URL to where the shop really is and register that directory"
            ),
        )
    };
    let mut at = url.to_string();
    for _ in 0..=MAX_PAGE_REDIRECTS {
        let r = http
            .get(&at)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| {
                (
                    format!("{at} cannot be reached: {}", error_chain(&e)),
                    "start the shop, and check DNS and the reverse proxy for this URL".to_string(),
                )
            })?;
        // A client that follows redirects itself has already been wherever they lead.
        let landed = r.url().as_str().to_string();
        if !landed.starts_with(dir) {
            return Err(outside(&landed));
        }
        let status = r.status();
        if status.is_redirection() {
            let target = r
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| r.url().join(l).ok())
                .map(|u| u.to_string())
                .unwrap_or_default();
            if !target.starts_with(dir) {
                return Err(outside(&target));
            }
            at = target;
            continue;
        }
        let html = r
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/html"));
        let body = r.text().await.unwrap_or_default();
        let shops = html && body.contains(SHOP_PAGE_MARKER);
        return match status.as_u16() {
            200 if shops => Ok(()),
            // The order page of an order that does not exist: the shop's own 404 page.
            404 if shops && not_found_ok => Ok(()),
            200 => Err((
                format!("{at} answers 200 but not with the shop's page"),
                "the proxy must pass the shop's pages to it".to_string(),
            )),
            code => Err((
                format!("{at} answered HTTP {code}"),
                "the proxy must pass the shop's pages (/checkout, /orders/…) to it".to_string(),
            )),
        };
    }
    Err((
        format!("{url} redirects more than {MAX_PAGE_REDIRECTS} times"),
        "serve the page without redirects".to_string(),
    ))
}

/// How long the doctor waits for each of its two questions to the database (the migrations
/// applied, a write): a database that does not answer, or that another session holds locked,
/// gets a verdict instead of a doctor that hangs.
pub const DATABASE_WAIT: Duration = Duration::from_secs(5);

/// The `database` check: the migrations this build has are applied, and a write (rolled back)
/// goes through, each within [`DATABASE_WAIT`].
pub async fn database_check(pool: &Db) -> Check {
    const NAME: &str = "database";
    let backend = pool.backend().name();
    let wait = DATABASE_WAIT.as_secs();
    let latest = pool
        .backend()
        .migrator()
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0);
    let applied = tokio::time::timeout(DATABASE_WAIT, async {
        crate::sql!(pool, e => sqlx::query_scalar::<_, Option<i64>>(
                "SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(e).await)
    })
    .await;
    let applied = match applied {
        Err(_) => {
            return fail(
                NAME,
                format!("{backend} did not answer within {wait} s"),
                "check that the database server is up and reachable from here (DATABASE_URL), and that no stuck session holds it locked",
            )
        }
        // No migrations table (PostgreSQL 42P01 undefined_table; SQLite "no such table").
        Ok(Err(sqlx::Error::Database(d)))
            if d.code().as_deref() == Some("42P01") || d.message().contains("no such table") =>
        {
            None
        }
        Ok(Err(e @ sqlx::Error::Database(_))) => {
            return fail(
                NAME,
                format!("{backend} does not let the shop read its migrations (_sqlx_migrations): {e}"),
                "DATABASE_URL's user must be the one the shop runs as, with its rights on the shop's tables",
            )
        }
        Ok(Err(e)) => {
            return fail(
                NAME,
                format!("{backend} cannot be reached: {e}"),
                "check DATABASE_URL, that the database server is up, and that this machine may connect to it",
            )
        }
        Ok(Ok(v)) => v,
    };
    let Some(applied) = applied else {
        return fail(
            NAME,
            format!("{backend} has no migrations table (_sqlx_migrations): DATABASE_URL names a database the shop has not set up"),
            "check that DATABASE_URL names the shop's database; start the shop once on it to create its tables",
        );
    };
    let written = tokio::time::timeout(DATABASE_WAIT, async {
        let mut tx = pool.begin().await?;
        // PostgreSQL waits for a lock forever by default: give up before the doctor does, so
        // the connection is free again and the error names the lock.
        if let crate::db::Tx::Postgres(t) = &mut tx {
            sqlx::query("SET LOCAL lock_timeout = '3s'")
                .execute(&mut **t)
                .await?;
        }
        crate::sql!(&mut tx, e => sqlx::query("INSERT INTO mp_messages (dedupe_key, received_at) VALUES ('doctor', 0)")
            .execute(e).await.map(crate::db::Done::from))?;
        tx.rollback().await
    })
    .await;
    let locked_fix = "look for a long transaction or a stuck process holding the database (SQLite: another program writing the file; PostgreSQL: pg_stat_activity, state 'idle in transaction'), end it, and run the doctor again";
    match written {
        Err(_) => fail(
            NAME,
            format!("{backend}: a test write (rolled back) got no answer within {wait} s: another session holds the database locked, or it does not answer"),
            locked_fix,
        ),
        Ok(Err(e)) => {
            let (code, message) = match &e {
                sqlx::Error::Database(d) => (
                    d.code().map(|c| c.into_owned()).unwrap_or_default(),
                    d.message().to_ascii_lowercase(),
                ),
                _ => (String::new(), String::new()),
            };
            // PostgreSQL 25006 read_only_sql_transaction; SQLite "attempt to write a readonly database".
            if code == "25006" || message.contains("read-only") || message.contains("readonly") {
                fail(
                    NAME,
                    format!("{backend} is read-only for the shop: {e}"),
                    "DATABASE_URL must name the primary database (not a read replica) with a user that may write; a SQLite file and its directory must be writable by the shop's user",
                )
            } else if code == "55P03" || message.contains("locked") {
                // PostgreSQL 55P03 lock_not_available; SQLite "database is locked".
                fail(
                    NAME,
                    format!("{backend}: a test write (rolled back) waited for a lock: {e}"),
                    locked_fix,
                )
            } else {
                fail(
                    NAME,
                    format!("{backend} is not writable: {e}"),
                    "check the database's permissions and free space",
                )
            }
        }
        Ok(Ok(())) if applied < latest => fail(
            NAME,
            format!("{backend}: migrations applied up to {applied}, this build has {latest}"),
            "start the shop (this build) once: it applies its migrations",
        ),
        Ok(Ok(())) => ok(
            NAME,
            format!("{backend}, writable, migrations current ({applied})"),
        ),
    }
}

/// The HTTP client the doctor probes with: it keeps the server certificate of each TLS
/// connection, which the `certificate` check reads, and follows no redirect — WeChat follows
/// none to a notify URL or the official account's server, and a payment page that moves
/// elsewhere leaves its 支付授权目录 — so each check sees the answer itself.
pub fn probe_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_info(true)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| e.to_string())
}

/// ` (a redirect to …)` when `r` is one, else nothing.
fn redirect_note(r: &reqwest::Response) -> String {
    if !r.status().is_redirection() {
        return String::new();
    }
    let to = r
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("nowhere");
    format!(" (a redirect to {to})")
}

/// An error with its causes (rustls's reason sits below reqwest's "error sending request").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// Days a certificate must still be valid for before the doctor stops warning: WeChat's
/// browser refuses an expired one, and renewals (ACME included) are due 30 days ahead.
pub const CERTIFICATE_WARN_DAYS: i64 = 14;

/// The check of the shop's TLS certificate (`der`, as the handshake presented it): valid for
/// at least [`CERTIFICATE_WARN_DAYS`] more days, else warn.
pub fn certificate_check(host: &str, der: &[u8], now: time::OffsetDateTime) -> Check {
    use x509_cert::der::Decode;
    let cert = match x509_cert::Certificate::from_der(der) {
        Ok(c) => c,
        Err(e) => {
            return fail(
                "certificate",
                format!("the certificate {host} presents cannot be read: {e}"),
                "install a well-formed certificate for this domain",
            )
        }
    };
    let not_after = cert.tbs_certificate.validity.not_after.to_unix_duration();
    let left = not_after.as_secs() as i64 - now.unix_timestamp();
    let days = left.div_euclid(86_400);
    let until = time::OffsetDateTime::from_unix_timestamp(not_after.as_secs() as i64)
        .map(|t| t.date().to_string())
        .unwrap_or_default();
    if left <= 0 {
        fail(
            "certificate",
            format!("the certificate of {host} expired on {until}"),
            "renew the certificate now: WeChat's browser refuses the shop",
        )
    } else if days < CERTIFICATE_WARN_DAYS {
        warn(
            "certificate",
            format!("the certificate of {host} expires in {days} days ({until})"),
            "renew the certificate (certbot renew, or your provider's console) before it expires",
        )
    } else {
        ok(
            "certificate",
            format!("the certificate of {host} is valid for {days} more days ({until})"),
        )
    }
}

/// Days ahead the doctor warns about WeChat Pay's platform certificate running out with no
/// newer one listed.
pub const PLATFORM_CERT_WARN_DAYS: i64 = 30;

/// Pay v3's keys for WeChat's signatures: the 微信支付公钥's id (`PUB_KEY_ID_` and digits), the
/// platform certificates (downloaded now: that they decrypt proves `WECHAT_APIV3_KEY`), and
/// whether the newest certificate has more than [`PLATFORM_CERT_WARN_DAYS`] left.
/// `public_key_ids` and `certificates` are the verifier's after `download` (its outcome).
pub fn pay_keys_check(
    public_key_ids: &[String],
    download: Result<usize, &wechat::pay::v3::certs::CertError>,
    certificates: &[(String, i64)],
    now: i64,
) -> Check {
    use wechat::pay::v3::certs::CertError;
    const NAME: &str = "pay_keys";
    for id in public_key_ids {
        let digits = id.strip_prefix("PUB_KEY_ID_").unwrap_or_default();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return fail(
                NAME,
                format!("WECHAT_PAY_PUBLIC_KEY_ID {id:?} is not a 微信支付公钥 id (PUB_KEY_ID_ and digits)"),
                "copy the id shown next to the key in 商户平台 → 账户中心 → API安全 → 微信支付公钥 (PUB_KEY_ID_…)",
            );
        }
    }
    let key_note = if public_key_ids.is_empty() {
        String::new()
    } else {
        format!("微信支付公钥 {} loaded; ", public_key_ids.join(", "))
    };
    match download {
        Err(CertError::Decrypt(e)) => fail(
            NAME,
            format!("WeChat's platform certificates do not decrypt with WECHAT_APIV3_KEY: {e}"),
            "WECHAT_APIV3_KEY must be the 32-character APIv3 key set in 商户平台 → API安全 → 设置APIv3密钥 (not the v2 API key); notifications cannot be read without it",
        ),
        Err(e) if public_key_ids.is_empty() => fail(
            NAME,
            format!("no 微信支付公钥 configured and WeChat's platform certificates cannot be downloaded: {e}"),
            "set WECHAT_PAY_PUBLIC_KEY and WECHAT_PAY_PUBLIC_KEY_ID (商户平台 → API安全 → 微信支付公钥), or make /v3/certificates reachable",
        ),
        // Merchants that have only the 微信支付公钥 get no platform certificates: fine.
        Err(e) => ok(
            NAME,
            format!("{key_note}no platform certificates ({e}): WeChat's signatures are checked with the public key"),
        ),
        Ok(_) => {
            let Some((serial, not_after)) = certificates.iter().max_by_key(|(_, t)| *t) else {
                return if public_key_ids.is_empty() {
                    fail(
                        NAME,
                        "WeChat listed no valid platform certificate and no 微信支付公钥 is configured",
                        "set WECHAT_PAY_PUBLIC_KEY and WECHAT_PAY_PUBLIC_KEY_ID (商户平台 → API安全 → 微信支付公钥)",
                    )
                } else {
                    ok(NAME, format!("{key_note}no platform certificates listed"))
                };
            };
            let days = (not_after - now).div_euclid(86_400);
            let until = time::OffsetDateTime::from_unix_timestamp(*not_after)
                .map(|t| t.date().to_string())
                .unwrap_or_default();
            let detail = format!(
                "{key_note}{} platform certificate(s) downloaded and decrypted with WECHAT_APIV3_KEY (32 bytes); the newest, {serial}, is valid until {until}",
                certificates.len()
            );
            if days < PLATFORM_CERT_WARN_DAYS && public_key_ids.is_empty() {
                warn(
                    NAME,
                    format!("{detail}: {days} days left and no newer certificate listed"),
                    "WeChat Pay is moving merchants from platform certificates to the 微信支付公钥: apply for one (商户平台 → API安全 → 微信支付公钥) and set WECHAT_PAY_PUBLIC_KEY and WECHAT_PAY_PUBLIC_KEY_ID before it runs out, or notifications and answers cannot be verified",
                )
            } else {
                ok(NAME, detail)
            }
        }
    }
}

/// The clock check on WeChat's `Date` header.
pub fn clock_check(date: Option<&str>, now: time::OffsetDateTime) -> Check {
    let Some(date) = date else {
        return warn(
            "clock",
            "WeChat's answer carried no Date",
            "make sure this server's clock is synchronised (chrony / systemd-timesyncd)",
        );
    };
    let parsed = time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc2822);
    match parsed {
        Ok(theirs) => {
            let skew = (now - theirs).whole_seconds();
            if skew.abs() <= 60 {
                ok("clock", format!("within {}s of WeChat", skew.abs()))
            } else {
                fail(
                    "clock",
                    format!("{skew}s off WeChat's clock"),
                    "synchronise this server's clock (chrony / systemd-timesyncd): Pay v3 refuses requests more than 5 minutes off",
                )
            }
        }
        Err(_) => warn("clock", format!("cannot read WeChat's Date {date:?}"), ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pay_keys_check_names_each_mistake() {
        use wechat::pay::v3::certs::CertError;
        let now = 1_796_457_600; // 2026-12-05
        let day = 86_400;
        let id = vec!["PUB_KEY_ID_0114232134912410000000000000".to_string()];
        let certs = vec![(
            "5157F09EFDC096DE15EBE81A47057A7232F1B8E1".to_string(),
            now + 400 * day,
        )];
        // Healthy: the public key and a certificate with a year left.
        let c = pay_keys_check(&id, Ok(1), &certs, now);
        assert_eq!(c.status, Status::Ok, "{c:?}");
        assert!(
            c.detail.contains("PUB_KEY_ID_0114") && c.detail.contains("2028-01-09"),
            "{c:?}"
        );
        // An id that is not a 微信支付公钥 id (the certificate serial pasted instead, say).
        for bad in [
            "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
            "PUB_KEY_ID_",
            "PUB_KEY_ID_12AB",
        ] {
            let c = pay_keys_check(&[bad.to_string()], Ok(1), &certs, now);
            assert_eq!(c.status, Status::Fail, "{bad}: {c:?}");
            assert!(c.fix.contains("PUB_KEY_ID_"), "{c:?}");
        }
        // The APIv3 key does not decrypt WeChat's certificates.
        let err = CertError::Decrypt(wechat::pay::v3::aead::DecryptError("tag mismatch"));
        let c = pay_keys_check(&id, Err(&err), &[], now);
        assert_eq!(c.status, Status::Fail, "{c:?}");
        assert!(
            c.fix.contains("WECHAT_APIV3_KEY") && c.fix.contains("APIv3"),
            "{c:?}"
        );
        // The only certificate runs out in 10 days, no public key to fall back on.
        let short = vec![("ABC".to_string(), now + 10 * day)];
        let c = pay_keys_check(&[], Ok(1), &short, now);
        assert_eq!(c.status, Status::Warn, "{c:?}");
        assert!(c.detail.contains("10 days"), "{c:?}");
        assert!(c.fix.contains("WECHAT_PAY_PUBLIC_KEY"), "{c:?}");
        // … with the public key configured, that is fine.
        assert_eq!(pay_keys_check(&id, Ok(1), &short, now).status, Status::Ok);
        // Nothing to verify with at all.
        let down = CertError::Api {
            status: 404,
            code: "NOT_FOUND".into(),
        };
        assert_eq!(
            pay_keys_check(&[], Err(&down), &[], now).status,
            Status::Fail
        );
        // Public-key-only merchants get no certificates: fine.
        assert_eq!(pay_keys_check(&id, Err(&down), &[], now).status, Status::Ok);
    }

    #[test]
    fn the_payment_directory_is_the_public_url_as_a_browser_writes_it() {
        let d = pay_directory("https://shop.example.com");
        assert_eq!(d.directory, "https://shop.example.com/");
        assert_eq!(d.problem, None);
        // A path: the directory under it; the host as browsers write it, no default port.
        assert_eq!(
            pay_directory("https://example.com/mall").directory,
            "https://example.com/mall/"
        );
        assert_eq!(
            pay_directory("https://Shop.Example.com:443").directory,
            "https://shop.example.com/"
        );
        assert_eq!(
            pay_directory("http://127.0.0.1:3000").directory,
            "http://127.0.0.1:3000/"
        );
        // %-escapes are not upper case.
        assert_eq!(pay_directory("https://example.com/%E5%95%86").problem, None);
        // Upper case in the path: works when registered exactly so.
        let d = pay_directory("https://example.com/Mall");
        assert_eq!(d.directory, "https://example.com/Mall/");
        let (status, detail, fix) = d.problem.unwrap();
        assert_eq!(status, Status::Warn);
        assert!(detail.contains("https://example.com/mall/"), "{detail}");
        assert!(
            fix.contains("register exactly https://example.com/Mall/"),
            "{fix}"
        );
        // A file name: no directory; the one to register is its parent.
        for (public, dir, fixed) in [
            (
                "https://example.com/shop/index.html",
                "https://example.com/shop/",
                "WXMALL_PUBLIC_URL=https://example.com/shop ",
            ),
            (
                "https://example.com/index.php",
                "https://example.com/",
                "WXMALL_PUBLIC_URL=https://example.com ",
            ),
        ] {
            let d = pay_directory(public);
            assert_eq!(d.directory, dir);
            let (status, detail, fix) = d.problem.unwrap();
            assert_eq!(status, Status::Fail);
            assert!(detail.contains("file name"), "{detail}");
            assert!(
                fix.contains(fixed) && fix.contains(&format!("register {dir}")),
                "{fix}"
            );
        }
        // A query: what would be pasted does not end the path with /.
        let d = pay_directory("https://example.com/?from=menu");
        assert_eq!(d.directory, "https://example.com/");
        let (status, _, fix) = d.problem.unwrap();
        assert_eq!(status, Status::Fail);
        assert!(fix.contains("register https://example.com/ "), "{fix}");
    }

    #[test]
    fn the_clock_check_reads_http_dates() {
        let now = time::OffsetDateTime::from_unix_timestamp(1_796_457_600).unwrap(); // 2026-12-05 08:00 UTC
        assert_eq!(
            clock_check(Some("Sat, 05 Dec 2026 08:00:30 GMT"), now).status,
            Status::Ok
        );
        let off = clock_check(Some("Sat, 05 Dec 2026 07:55:00 GMT"), now);
        assert_eq!(off.status, Status::Fail);
        assert!(off.detail.contains("300s"), "{}", off.detail);
        assert_eq!(clock_check(None, now).status, Status::Warn);
    }
}
