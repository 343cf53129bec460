//! Where WeChat lives: the three base URLs, injectable so tests and the embedded sandbox can stand in.
//!
//! A base may carry a path prefix (`http://127.0.0.1:3000/sandbox/api`); API paths are appended to it
//! verbatim, and the v3 signature covers only the part after the base (the path WeChat itself sees).
use std::fmt;

/// Configuration problems (bad base URL, unusable key material). Found at start-up, never per request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A base URL is not an absolute `http(s)` URL without query or fragment.
    #[error("invalid WeChat base URL {url:?}: {reason}")]
    InvalidBaseUrl {
        /// The rejected value.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An environment variable holds something unusable.
    #[error("environment variable {name} is not valid unicode")]
    BadEnv {
        /// The variable.
        name: &'static str,
    },
    /// A key (private key, public key, certificate, APIv3 key) could not be loaded.
    #[error("invalid {what}: {reason}")]
    InvalidKey {
        /// Which key.
        what: &'static str,
        /// Why (never the key material itself).
        reason: String,
    },
}

/// An absolute `http`/`https` base URL, stored without a trailing slash.
#[derive(Clone, PartialEq, Eq)]
pub struct BaseUrl(String);

impl BaseUrl {
    /// Parses and normalises a base URL (`https://api.mch.weixin.qq.com`, `http://127.0.0.1:3000/sandbox/api/`).
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let bad = |reason| ConfigError::InvalidBaseUrl {
            url: s.to_owned(),
            reason,
        };
        let u = url::Url::parse(s).map_err(|_| bad("not an absolute URL"))?;
        if u.scheme() != "http" && u.scheme() != "https" {
            return Err(bad("scheme must be http or https"));
        }
        if u.host_str().is_none() {
            return Err(bad("missing host"));
        }
        if u.query().is_some() || u.fragment().is_some() {
            return Err(bad("must not have a query or fragment"));
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err(bad("must not carry credentials"));
        }
        let mut out = u.as_str().to_owned();
        while out.ends_with('/') {
            out.pop();
        }
        Ok(Self(out))
    }

    /// The base as a string, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Appends `path_and_query` (which must start with `/`) to the base: the base's own path prefix is
    /// kept, nothing is re-encoded.
    pub fn join(&self, path_and_query: &str) -> String {
        debug_assert!(path_and_query.starts_with('/'));
        let mut s = String::with_capacity(self.0.len() + path_and_query.len() + 1);
        s.push_str(&self.0);
        if !path_and_query.starts_with('/') {
            s.push('/');
        }
        s.push_str(path_and_query);
        s
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({})", self.0)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for BaseUrl {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The three WeChat hosts. [`Hosts::default`] is production.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hosts {
    /// OAuth authorize page, `https://open.weixin.qq.com` (the user's browser goes there).
    pub open: BaseUrl,
    /// Official-account API, `https://api.weixin.qq.com` (tokens, tickets, OAuth exchange).
    pub api: BaseUrl,
    /// WeChat Pay, `https://api.mch.weixin.qq.com`.
    pub pay: BaseUrl,
}

/// Production open-platform base.
pub const OPEN_BASE: &str = "https://open.weixin.qq.com";
/// Production API base.
pub const API_BASE: &str = "https://api.weixin.qq.com";
/// Production WeChat Pay base.
pub const PAY_BASE: &str = "https://api.mch.weixin.qq.com";

impl Default for Hosts {
    fn default() -> Self {
        Self {
            open: BaseUrl(OPEN_BASE.to_owned()),
            api: BaseUrl(API_BASE.to_owned()),
            pay: BaseUrl(PAY_BASE.to_owned()),
        }
    }
}

impl Hosts {
    /// All three hosts under one base (the sandbox serves everything from one prefix).
    pub fn all(base: &str) -> Result<Self, ConfigError> {
        let b = BaseUrl::parse(base)?;
        Ok(Self {
            open: b.clone(),
            api: b.clone(),
            pay: b,
        })
    }

    /// Production defaults overridden by `WECHAT_OPEN_BASE`, `WECHAT_API_BASE`, `WECHAT_PAY_BASE`.
    pub fn from_env() -> Result<Self, ConfigError> {
        for name in ["WECHAT_OPEN_BASE", "WECHAT_API_BASE", "WECHAT_PAY_BASE"] {
            if let Err(std::env::VarError::NotUnicode(_)) = std::env::var(name) {
                return Err(ConfigError::BadEnv { name });
            }
        }
        Self::from_vars(&|name| std::env::var(name).ok())
    }

    /// `WECHAT_OPEN_BASE` / `WECHAT_API_BASE` / `WECHAT_PAY_BASE` read through `var` (an
    /// application's own configuration, or a map in tests); unset or blank → WeChat's hosts.
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let base = |name: &str, default: &str| match var(name) {
            Some(v) if !v.trim().is_empty() => BaseUrl::parse(v.trim()),
            _ => BaseUrl::parse(default),
        };
        Ok(Self {
            open: base("WECHAT_OPEN_BASE", OPEN_BASE)?,
            api: base("WECHAT_API_BASE", API_BASE)?,
            pay: base("WECHAT_PAY_BASE", PAY_BASE)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_with_prefix() {
        let b = BaseUrl::parse("http://127.0.0.1:3000/sandbox/api/").expect("base");
        assert_eq!(b.as_str(), "http://127.0.0.1:3000/sandbox/api");
        assert_eq!(
            b.join("/v3/pay/transactions/jsapi"),
            "http://127.0.0.1:3000/sandbox/api/v3/pay/transactions/jsapi"
        );
        let p = BaseUrl::parse("https://api.mch.weixin.qq.com").expect("base");
        assert_eq!(
            p.join("/pay/unifiedorder"),
            "https://api.mch.weixin.qq.com/pay/unifiedorder"
        );
    }

    #[test]
    fn refuses_bad_bases() {
        for s in [
            "",
            "api.weixin.qq.com",
            "ftp://x",
            "https://x/?a=1",
            "https://x/#f",
            "https://u:p@x/",
        ] {
            assert!(BaseUrl::parse(s).is_err(), "{s}");
        }
    }
}
