//! Configuration from the environment. Every name is documented in the README's
//! configuration table; defaults give the embedded setup (SQLite file, WeChat sandbox,
//! http://127.0.0.1:3000).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}: {message}")]
    Invalid { name: &'static str, message: String },
}

/// The shop's settings, read once at start.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `WXMALL_ADDR` (or cargo-leptos's `LEPTOS_SITE_ADDR`): where to listen.
    pub addr: SocketAddr,
    /// `DATABASE_URL`: default `sqlite://data/wxmall.db?mode=rwc`.
    pub database_url: String,
    /// `WXMALL_DATA_DIR`: where generated state lives (session key). Default `data`.
    pub data_dir: PathBuf,
    /// `LEPTOS_SITE_ROOT`: the built site (`pkg/`, images). Default `target/site`.
    pub site_root: PathBuf,
    /// `WXMALL_ORDER_TTL`: how long an unpaid order holds its stock. Default `30m`.
    pub order_ttl: Duration,
    /// `WXMALL_DEMO_CATALOGUE`: load the demo catalogue into an empty database. Default: on in
    /// sandbox mode only.
    pub demo_catalogue: bool,
    /// `WXMALL_PAGE_CACHE`: keep rendered home and product pages (`page_cache`). Default on;
    /// `off` renders every page (to measure what the cache saves, or to rule it out).
    pub page_cache: bool,
    /// `WXMALL_PUBLIC_URL`: the shop's public origin. Default `http://{addr}`.
    pub public_url: String,
    /// `WECHAT_*`: the official account and merchant, or the embedded sandbox.
    pub wechat: crate::wechat_config::WechatSettings,
    /// `WXMALL_SWEEP_INTERVAL`: how often unpaid orders are expired and reconciled. Default `60s`.
    pub sweep_interval: Duration,
    /// `WXMALL_RECONCILE_AT`: when (China time, `HH:MM`) yesterday's WeChat bill is compared
    /// with the shop's books every day; `off` turns it off. Default `10:00` (WeChat serves a
    /// day's bill from about 9 the next morning).
    pub reconcile_at: Option<time::Time>,
    /// `WXMALL_TRUSTED_PROXIES`: the reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: crate::guard::TrustedProxies,
    /// `WXMALL_RATE_LIMIT` (`off` → `None`) and `WXMALL_RATE_LIMITS`.
    pub rate_limits: Option<crate::guard::RateLimitSettings>,
    /// `WXMALL_MAX_UNPAID_ORDERS`: unpaid orders one shopper may hold at once. Default 5.
    pub max_unpaid_orders: i64,
    /// `WXMALL_STATUS_QUERY_INTERVAL`: `order_status` asks WeChat about one order at most this
    /// often. Default `3s`.
    pub status_query_interval: Duration,
    /// `WXMALL_SESSION_SECRET`: the cookie-signing secret (≥ 32 bytes); none: a key file in
    /// the data directory.
    pub session_secret: Option<wechat::Secret<String>>,
    /// `LEPTOS_ENV=DEV` (cargo-leptos's dev mode).
    pub leptos_dev: bool,
    /// `WXMALL_SESSION_IDLE`: a session not seen for this long is deleted on the server.
    /// Default `30d`.
    pub session_idle: Duration,
    /// `WXMALL_MP_REPLIES`: a JSON file of the official account's replies (welcome, keywords,
    /// menu click keys); built-in defaults otherwise.
    pub mp_replies: Option<PathBuf>,
    /// `WXMALL_AUTO_COMPLETE`: a shipped order completes by itself this long after shipping
    /// (default 10 days).
    pub auto_complete: Duration,
}

/// An `http://` URL on this machine (127.0.0.0/8, `localhost`, `[::1]`).
pub fn is_loopback_http(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    u.scheme() == "http"
        && match u.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
}

/// Parses `HH:MM` (24 hours) or `off`.
pub fn parse_time_of_day(raw: &str) -> Option<Option<time::Time>> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("off") {
        return Some(None);
    }
    let (h, m) = raw.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u8, u8) = (h.parse().ok()?, m.parse().ok()?);
    time::Time::from_hms(h, m, 0).ok().map(Some)
}

/// `LEPTOS_SITE_ROOT`, else `target/site` (what `cargo leptos build` writes).
pub fn site_root_from_env() -> PathBuf {
    PathBuf::from(var("LEPTOS_SITE_ROOT").unwrap_or_else(|| "target/site".into()))
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Parses `90`, `90s`, `30m`, `2h` into a duration.
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let (num, unit) = raw
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| raw.split_at(i))
        .unwrap_or((raw, "s"));
    let n: u64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "s" | "" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}

pub(crate) fn parse_bool(name: &'static str, raw: &str) -> Result<bool, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(ConfigError::Invalid {
            name,
            message: format!("expected 1/0/true/false, got {other:?}"),
        }),
    }
}

/// `WXMALL_DATA_DIR`, default `data`.
pub fn data_dir_from_env() -> PathBuf {
    PathBuf::from(var("WXMALL_DATA_DIR").unwrap_or_else(|| "data".into()))
}

/// `DATABASE_URL`, default the SQLite file `wxmall.db` in the data directory.
pub fn database_url_from_env() -> String {
    var("DATABASE_URL").unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            data_dir_from_env().join("wxmall.db").display()
        )
    })
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&var)
    }

    /// Reads the settings through `var` (the environment, or a map in tests).
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let addr_raw = var("WXMALL_ADDR")
            .or_else(|| var("LEPTOS_SITE_ADDR"))
            .unwrap_or_else(|| "127.0.0.1:3000".into());
        let addr: SocketAddr = addr_raw.parse().map_err(|e| ConfigError::Invalid {
            name: "WXMALL_ADDR",
            message: format!("{addr_raw:?} is not a socket address: {e}"),
        })?;
        let data_dir = PathBuf::from(var("WXMALL_DATA_DIR").unwrap_or_else(|| "data".into()));
        let database_url = var("DATABASE_URL").unwrap_or_else(|| {
            format!("sqlite://{}?mode=rwc", data_dir.join("wxmall.db").display())
        });
        let order_ttl = match var("WXMALL_ORDER_TTL") {
            Some(raw) => parse_duration(&raw).ok_or_else(|| ConfigError::Invalid {
                name: "WXMALL_ORDER_TTL",
                message: format!("{raw:?} is not a duration like 30m, 900s or 2h"),
            })?,
            None => Duration::from_secs(30 * 60),
        };
        let public_url = var("WXMALL_PUBLIC_URL")
            .unwrap_or_else(|| format!("http://{addr}"))
            .trim_end_matches('/')
            .to_string();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                name: "WXMALL_PUBLIC_URL",
                message: format!("{public_url:?} must start with http:// or https://"),
            });
        }
        let sweep_interval = match var("WXMALL_SWEEP_INTERVAL") {
            Some(raw) => parse_duration(&raw).ok_or_else(|| ConfigError::Invalid {
                name: "WXMALL_SWEEP_INTERVAL",
                message: format!("{raw:?} is not a duration like 60s or 5m"),
            })?,
            None => Duration::from_secs(60),
        };
        let reconcile_at = match var("WXMALL_RECONCILE_AT") {
            Some(raw) => parse_time_of_day(&raw).ok_or_else(|| ConfigError::Invalid {
                name: "WXMALL_RECONCILE_AT",
                message: format!("{raw:?} is not a time of day like 10:00, or off"),
            })?,
            None => time::Time::from_hms(10, 0, 0).ok(),
        };
        let wechat = crate::wechat_config::WechatSettings::from_vars(&var)?;
        let sandbox = wechat.source.is_embedded();
        let local = is_loopback_http(&public_url);
        if sandbox && !local {
            let asked = match var("WXMALL_SANDBOX") {
                Some(raw) => parse_bool("WXMALL_SANDBOX", &raw)?,
                None => false,
            };
            if !asked {
                // A secret that was never mounted must not turn a live shop into a sandbox
                // anyone can "pay" in.
                return Err(ConfigError::Invalid {
                    name: "WECHAT_APPID",
                    message: format!(
                        "not set, and the public URL {public_url} is not a local http:// address: \
                         set the WeChat credentials (WECHAT_APPID, WECHAT_APPSECRET, WECHAT_MCHID …), \
                         or WXMALL_SANDBOX=1 to run the embedded WeChat sandbox there on purpose"
                    ),
                });
            }
        }
        if !sandbox && public_url.starts_with("http://") && !local {
            return Err(ConfigError::Invalid {
                name: "WXMALL_PUBLIC_URL",
                message: format!(
                    "{public_url} is plain http: with real WeChat credentials the shop must be \
                     served over https (WeChat Pay and the session cookie need it)"
                ),
            });
        }
        // The demo catalogue belongs to the sandbox: a real shop starts empty.
        let demo_catalogue = match var("WXMALL_DEMO_CATALOGUE") {
            Some(raw) => parse_bool("WXMALL_DEMO_CATALOGUE", &raw)?,
            None => sandbox,
        };
        let page_cache = match var("WXMALL_PAGE_CACHE") {
            Some(raw) => parse_bool("WXMALL_PAGE_CACHE", &raw)?,
            None => true,
        };
        let trusted_proxies = match var("WXMALL_TRUSTED_PROXIES") {
            Some(raw) => crate::guard::TrustedProxies::parse(&raw).map_err(|message| {
                ConfigError::Invalid {
                    name: "WXMALL_TRUSTED_PROXIES",
                    message,
                }
            })?,
            None => Default::default(),
        };
        let limits_on = match var("WXMALL_RATE_LIMIT") {
            Some(raw) => parse_bool("WXMALL_RATE_LIMIT", &raw)?,
            None => true,
        };
        let rate_limits = match (limits_on, var("WXMALL_RATE_LIMITS")) {
            (false, _) => None,
            (true, None) => Some(crate::guard::RateLimitSettings::default()),
            (true, Some(raw)) => Some(crate::guard::RateLimitSettings::parse(&raw).map_err(
                |message| ConfigError::Invalid {
                    name: "WXMALL_RATE_LIMITS",
                    message,
                },
            )?),
        };
        let max_unpaid_orders = match var("WXMALL_MAX_UNPAID_ORDERS") {
            Some(raw) => raw
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| ConfigError::Invalid {
                    name: "WXMALL_MAX_UNPAID_ORDERS",
                    message: format!("{raw:?} is not a whole number from 1"),
                })?,
            None => 5,
        };
        let status_query_interval = match var("WXMALL_STATUS_QUERY_INTERVAL") {
            Some(raw) => parse_duration(&raw).ok_or_else(|| ConfigError::Invalid {
                name: "WXMALL_STATUS_QUERY_INTERVAL",
                message: format!("{raw:?} is not a duration like 3s"),
            })?,
            None => Duration::from_secs(3),
        };
        let session_idle = match var("WXMALL_SESSION_IDLE") {
            Some(raw) => parse_duration(&raw).ok_or_else(|| ConfigError::Invalid {
                name: "WXMALL_SESSION_IDLE",
                message: format!("{raw:?} is not a duration like 30d or 12h"),
            })?,
            None => Duration::from_secs(30 * 86_400),
        };
        let auto_complete = match var("WXMALL_AUTO_COMPLETE") {
            Some(raw) => parse_duration(&raw).ok_or_else(|| ConfigError::Invalid {
                name: "WXMALL_AUTO_COMPLETE",
                message: format!("{raw:?} is not a duration like 10d"),
            })?,
            None => Duration::from_secs(10 * 86_400),
        };
        Ok(Self {
            auto_complete,
            mp_replies: var("WXMALL_MP_REPLIES").map(PathBuf::from),
            session_idle,
            session_secret: var("WXMALL_SESSION_SECRET").map(wechat::Secret::from),
            leptos_dev: var("LEPTOS_ENV").as_deref() == Some("DEV"),
            status_query_interval,
            wechat,
            sweep_interval,
            reconcile_at,
            addr,
            database_url,
            data_dir,
            site_root: site_root_from_env(),
            order_ttl,
            demo_catalogue,
            page_cache,
            public_url,
            trusted_proxies,
            rate_limits,
            max_unpaid_orders,
        })
    }

    /// Settings for tests: everything on loopback, a private database, no demo data unless asked.
    #[cfg(feature = "sandbox")]
    pub fn for_tests(database_url: String, data_dir: PathBuf) -> Self {
        Self {
            addr: "127.0.0.1:0".parse().expect("literal address"),
            database_url,
            data_dir,
            site_root: PathBuf::from("target/site"),
            order_ttl: Duration::from_secs(30 * 60),
            demo_catalogue: true,
            page_cache: true,
            public_url: "http://127.0.0.1:3000".into(),
            wechat: crate::wechat_config::WechatSettings::embedded(
                crate::wechat_config::PayVersion::V3,
            ),
            sweep_interval: Duration::from_secs(60),
            reconcile_at: None,
            trusted_proxies: Default::default(),
            // Tests that exercise the limits turn them on.
            rate_limits: None,
            max_unpaid_orders: 5,
            status_query_interval: Duration::from_secs(3),
            session_secret: None,
            leptos_dev: false,
            session_idle: Duration::from_secs(30 * 86_400),
            mp_replies: None,
            auto_complete: Duration::from_secs(10 * 86_400),
        }
    }
}

#[cfg(all(test, feature = "sandbox"))]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("900"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(
            parse_duration("30d"),
            Some(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(parse_duration("0"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn times_of_day() {
        assert_eq!(
            parse_time_of_day("10:00"),
            Some(time::Time::from_hms(10, 0, 0).ok())
        );
        assert_eq!(
            parse_time_of_day("9:30"),
            Some(time::Time::from_hms(9, 30, 0).ok())
        );
        assert_eq!(parse_time_of_day("off"), Some(None));
        for bad in ["24:00", "10", "10:0", "ab:cd", "", "10:60"] {
            assert_eq!(parse_time_of_day(bad), None, "{bad}");
        }
    }

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_vars(&move |k: &str| map.get(k).cloned())
    }

    const V2: [(&str, &str); 5] = [
        ("WECHAT_APPID", "wx0123456789abcdef"),
        ("WECHAT_APPSECRET", "secret-secret-secret"),
        ("WECHAT_MCHID", "1900000109"),
        ("WECHAT_PAY_VERSION", "v2"),
        ("WECHAT_PAY_KEY", "k0123456789abcdef0123456789abcde"),
    ];

    #[test]
    fn the_sandbox_runs_only_when_local_or_asked_for() {
        // Plainly local: the sandbox, with the demo catalogue.
        let local = settings(&[]).unwrap();
        assert!(local.demo_catalogue);
        assert!(settings(&[("WXMALL_PUBLIC_URL", "http://localhost:8080")]).is_ok());
        // A public https shop whose WeChat variables never arrived: stop, naming WECHAT_APPID.
        let err = settings(&[("WXMALL_PUBLIC_URL", "https://shop.example.com")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("WECHAT_APPID"), "{err}");
        let err = settings(&[("WXMALL_PUBLIC_URL", "http://192.168.1.20:3000")]).unwrap_err();
        assert!(err.to_string().starts_with("WECHAT_APPID"), "{err}");
        // Asked for on purpose.
        let demo = settings(&[
            ("WXMALL_PUBLIC_URL", "https://demo.example.com"),
            ("WXMALL_SANDBOX", "1"),
        ])
        .unwrap();
        assert!(demo.demo_catalogue);
    }

    #[test]
    fn real_credentials_need_https_and_start_without_the_demo_catalogue() {
        let mut vars = V2.to_vec();
        vars.push(("WXMALL_PUBLIC_URL", "https://shop.example.com"));
        let real = settings(&vars).unwrap();
        assert!(!real.demo_catalogue, "a real shop starts empty");
        vars.push(("WXMALL_DEMO_CATALOGUE", "1"));
        assert!(settings(&vars).unwrap().demo_catalogue);
        let mut plain = V2.to_vec();
        plain.push(("WXMALL_PUBLIC_URL", "http://shop.example.com"));
        let err = settings(&plain).unwrap_err().to_string();
        assert!(
            err.starts_with("WXMALL_PUBLIC_URL") && err.contains("https"),
            "{err}"
        );
    }

    #[test]
    fn limits_proxies_and_caps_are_read_and_checked() {
        let s = settings(&[]).unwrap();
        assert!(s.rate_limits.is_some(), "on by default");
        assert_eq!(s.max_unpaid_orders, 5);
        assert!(settings(&[("WXMALL_RATE_LIMIT", "off")])
            .unwrap()
            .rate_limits
            .is_none());
        let err = settings(&[("WXMALL_TRUSTED_PROXIES", "10.0.0.0/99")]).unwrap_err();
        assert!(
            err.to_string().starts_with("WXMALL_TRUSTED_PROXIES"),
            "{err}"
        );
        let err = settings(&[("WXMALL_RATE_LIMITS", "order=lots")]).unwrap_err();
        assert!(err.to_string().starts_with("WXMALL_RATE_LIMITS"), "{err}");
        let err = settings(&[("WXMALL_MAX_UNPAID_ORDERS", "0")]).unwrap_err();
        assert!(
            err.to_string().starts_with("WXMALL_MAX_UNPAID_ORDERS"),
            "{err}"
        );
        assert!(is_loopback_http("http://127.0.0.9:1"));
        assert!(is_loopback_http("http://[::1]:3000"));
        assert!(!is_loopback_http("https://127.0.0.1"));
        assert!(!is_loopback_http("http://10.0.0.1"));
    }
}
