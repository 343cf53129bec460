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
    /// `WXMALL_DEMO_CATALOGUE`: load the demo catalogue into an empty database. Default on.
    pub demo_catalogue: bool,
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
        let addr_raw = var("WXMALL_ADDR")
            .or_else(|| var("LEPTOS_SITE_ADDR"))
            .unwrap_or_else(|| "127.0.0.1:3000".into());
        let addr: SocketAddr = addr_raw.parse().map_err(|e| ConfigError::Invalid {
            name: "WXMALL_ADDR",
            message: format!("{addr_raw:?} is not a socket address: {e}"),
        })?;
        let data_dir = data_dir_from_env();
        let database_url = database_url_from_env();
        let order_ttl = match var("WXMALL_ORDER_TTL") {
            Some(raw) => parse_duration(&raw).ok_or_else(|| ConfigError::Invalid {
                name: "WXMALL_ORDER_TTL",
                message: format!("{raw:?} is not a duration like 30m, 900s or 2h"),
            })?,
            None => Duration::from_secs(30 * 60),
        };
        let demo_catalogue = match var("WXMALL_DEMO_CATALOGUE") {
            Some(raw) => parse_bool("WXMALL_DEMO_CATALOGUE", &raw)?,
            None => true,
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
        Ok(Self {
            wechat: crate::wechat_config::WechatSettings::from_env()?,
            sweep_interval,
            reconcile_at,
            addr,
            database_url,
            data_dir,
            site_root: PathBuf::from(
                var("LEPTOS_SITE_ROOT").unwrap_or_else(|| "target/site".into()),
            ),
            order_ttl,
            demo_catalogue,
            public_url,
        })
    }

    /// Settings for tests: everything on loopback, a private database, no demo data unless asked.
    pub fn for_tests(database_url: String, data_dir: PathBuf) -> Self {
        Self {
            addr: "127.0.0.1:0".parse().expect("literal address"),
            database_url,
            data_dir,
            site_root: PathBuf::from("target/site"),
            order_ttl: Duration::from_secs(30 * 60),
            demo_catalogue: true,
            public_url: "http://127.0.0.1:3000".into(),
            wechat: crate::wechat_config::WechatSettings::embedded(
                crate::wechat_config::PayVersion::V3,
            ),
            sweep_interval: Duration::from_secs(60),
            reconcile_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("900"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
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
}
