//! Errors of the official-account API (`api.weixin.qq.com`): OAuth, base token, jsapi_ticket.
//!
//! WeChat answers failures as `{"errcode": N, "errmsg": "..."}`. The codes a shop has to react to get
//! their own [`ApiError`] variant so they can be matched; anything else is [`ApiError::Other`].
use crate::http::HttpError;

/// A WeChat `errcode` from `api.weixin.qq.com`, typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// -1: system busy; retry later.
    #[error("WeChat is busy (-1)")]
    SystemBusy,
    /// 40001: invalid credential — the access_token is invalid/expired, or the appsecret is wrong.
    #[error("invalid credential or access_token (40001)")]
    InvalidCredential,
    /// 40002: invalid grant_type.
    #[error("invalid grant_type (40002)")]
    InvalidGrantType,
    /// 40003: invalid openid.
    #[error("invalid openid (40003)")]
    InvalidOpenid,
    /// 40013: invalid appid.
    #[error("invalid appid (40013)")]
    InvalidAppId,
    /// 40014: invalid access_token.
    #[error("invalid access_token (40014)")]
    InvalidAccessToken,
    /// 40029: invalid OAuth code (wrong, expired, or for another appid).
    #[error("invalid OAuth code (40029)")]
    InvalidCode,
    /// 40030: invalid refresh_token.
    #[error("invalid refresh_token (40030)")]
    InvalidRefreshToken,
    /// 40125: invalid appsecret.
    #[error("invalid appsecret (40125)")]
    InvalidAppSecret,
    /// 40163: the OAuth code was already used (refresh, back button, double redirect). Restart the
    /// flow once; never loop.
    #[error("OAuth code already used (40163)")]
    CodeUsed,
    /// 40164 / 61004: the calling IP is not on the API IP whitelist; the address WeChat saw
    /// (from its errmsg `invalid ip 1.2.3.4 ipv6 …, not in whitelist`), when it said.
    #[error("caller IP {ip} not whitelisted ({0})", ip = .1.as_deref().unwrap_or("?"))]
    IpNotWhitelisted(i64, Option<String>),
    /// 41001: access_token missing.
    #[error("access_token missing (41001)")]
    MissingAccessToken,
    /// 42001: access_token expired.
    #[error("access_token expired (42001)")]
    AccessTokenExpired,
    /// 42002: refresh_token expired (30 days): the user must authorize again.
    #[error("refresh_token expired (42002)")]
    RefreshTokenExpired,
    /// 42003: OAuth code expired (5 minutes).
    #[error("OAuth code expired (42003)")]
    CodeExpired,
    /// 45009 / 45011: API quota reached (daily or per minute).
    #[error("API quota reached ({0})")]
    QuotaExceeded(i64),
    /// 48001: the account has no permission for this API (e.g. snsapi_userinfo not granted).
    #[error("API unauthorized (48001)")]
    ApiUnauthorized,
    /// 50001: the user has not authorized this API.
    #[error("user has not authorized this API (50001)")]
    UserUnauthorized,
    /// Any other code.
    #[error("WeChat error {errcode}: {errmsg}")]
    Other {
        /// WeChat's code.
        errcode: i64,
        /// WeChat's message.
        errmsg: String,
    },
}

/// The IPv4 address in a 40164 errmsg (`invalid ip 1.2.3.4 ipv6 ::ffff:1.2.3.4, not in whitelist`).
fn ip_in(errmsg: &str) -> Option<String> {
    let rest = errmsg.split("invalid ip ").nth(1)?;
    let ip = rest.split([' ', ',']).next()?;
    ip.parse::<std::net::IpAddr>().ok().map(|a| a.to_string())
}

impl ApiError {
    /// Types an `errcode`/`errmsg` pair. `errcode` 0 is not an error; callers check before.
    pub fn from_code(errcode: i64, errmsg: &str) -> Self {
        match errcode {
            -1 => Self::SystemBusy,
            40001 => Self::InvalidCredential,
            40002 => Self::InvalidGrantType,
            40003 => Self::InvalidOpenid,
            40013 => Self::InvalidAppId,
            40014 => Self::InvalidAccessToken,
            40029 => Self::InvalidCode,
            40030 => Self::InvalidRefreshToken,
            40125 => Self::InvalidAppSecret,
            40163 => Self::CodeUsed,
            40164 | 61004 => Self::IpNotWhitelisted(errcode, ip_in(errmsg)),
            41001 => Self::MissingAccessToken,
            42001 => Self::AccessTokenExpired,
            42002 => Self::RefreshTokenExpired,
            42003 => Self::CodeExpired,
            45009 | 45011 => Self::QuotaExceeded(errcode),
            48001 => Self::ApiUnauthorized,
            50001 => Self::UserUnauthorized,
            _ => Self::Other {
                errcode,
                errmsg: errmsg.chars().take(200).collect(),
            },
        }
    }

    /// WeChat's numeric code.
    pub fn code(&self) -> i64 {
        match self {
            Self::SystemBusy => -1,
            Self::InvalidCredential => 40001,
            Self::InvalidGrantType => 40002,
            Self::InvalidOpenid => 40003,
            Self::InvalidAppId => 40013,
            Self::InvalidAccessToken => 40014,
            Self::InvalidCode => 40029,
            Self::InvalidRefreshToken => 40030,
            Self::InvalidAppSecret => 40125,
            Self::CodeUsed => 40163,
            Self::IpNotWhitelisted(c, _) | Self::QuotaExceeded(c) => *c,
            Self::MissingAccessToken => 41001,
            Self::AccessTokenExpired => 42001,
            Self::RefreshTokenExpired => 42002,
            Self::CodeExpired => 42003,
            Self::ApiUnauthorized => 48001,
            Self::UserUnauthorized => 50001,
            Self::Other { errcode, .. } => *errcode,
        }
    }

    /// 40001 / 40014 / 42001: the access_token used was rejected — drop it (if still cached) and
    /// retry once with a fresh one.
    pub fn is_access_token_invalid(&self) -> bool {
        matches!(
            self,
            Self::InvalidCredential | Self::InvalidAccessToken | Self::AccessTokenExpired
        )
    }

    /// 40029 / 40163 / 42003: the OAuth code cannot be exchanged; restart authorization (once).
    pub fn is_code_unusable(&self) -> bool {
        matches!(self, Self::InvalidCode | Self::CodeUsed | Self::CodeExpired)
    }
}

/// A failed call to the official-account API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MpError {
    /// WeChat answered with an `errcode`.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Transport failure (timeout, connect, status, size).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// WeChat's answer could not be understood.
    #[error("malformed answer from WeChat: {0}")]
    Malformed(String),
    /// The caller passed something unusable (e.g. an empty code).
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),
}

impl MpError {
    /// The typed WeChat error, if WeChat answered with one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(e) => Some(e),
            _ => None,
        }
    }
}

impl From<reqwest::Error> for MpError {
    fn from(e: reqwest::Error) -> Self {
        Self::Http(e.into())
    }
}

/// Parses an `api.weixin.qq.com` answer: a non-zero `errcode` becomes [`ApiError`], otherwise `T`.
pub(crate) fn parse_mp<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, MpError> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default)]
        errcode: Option<i64>,
        #[serde(default)]
        errmsg: Option<String>,
    }
    let probe: Probe = serde_json::from_slice(body)
        .map_err(|e| MpError::Malformed(crate::http::json_error(&e)))?;
    if let Some(code) = probe.errcode {
        if code != 0 {
            return Err(ApiError::from_code(code, probe.errmsg.as_deref().unwrap_or("")).into());
        }
    }
    serde_json::from_slice(body).map_err(|e| MpError::Malformed(crate::http::json_error(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for c in [
            -1, 40001, 40002, 40003, 40013, 40014, 40029, 40030, 40125, 40163, 40164, 61004, 41001,
            42001, 42002, 42003, 45009, 45011, 48001, 50001, 99999,
        ] {
            assert_eq!(ApiError::from_code(c, "m").code(), c);
        }
        assert_eq!(
            ApiError::from_code(40163, "code been used"),
            ApiError::CodeUsed
        );
        assert!(matches!(
            ApiError::from_code(12345, "x"),
            ApiError::Other { errcode: 12345, .. }
        ));
        assert!(ApiError::from_code(42001, "").is_access_token_invalid());
        assert_eq!(
            ApiError::from_code(
                40164,
                "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist rid: 1"
            ),
            ApiError::IpNotWhitelisted(40164, Some("203.0.113.7".into()))
        );
        assert!(!ApiError::from_code(40029, "").is_access_token_invalid());
    }

    #[test]
    fn parse_mp_maps_errcode() {
        #[derive(serde::Deserialize, Debug)]
        struct T {
            #[allow(dead_code)]
            ticket: String,
        }
        let e = parse_mp::<T>(br#"{"errcode":40029,"errmsg":"invalid code"}"#).expect_err("err");
        assert!(matches!(e, MpError::Api(ApiError::InvalidCode)));
        let ok = parse_mp::<T>(br#"{"errcode":0,"errmsg":"ok","ticket":"t"}"#);
        assert!(ok.is_ok());
        assert!(matches!(
            parse_mp::<T>(b"<html>"),
            Err(MpError::Malformed(_))
        ));
    }
}
