//! OAuth2 web authorization (网页授权): capture the user's openid (and, with consent, profile).
//!
//! 1. Redirect the browser to [`OAuthClient::authorize_url`] with a fresh unguessable `state` from
//!    [`new_state`], stored in the session.
//! 2. On the callback, check `state`, then [`OAuthClient::exchange_code`] on the server.
//! 3. With `snsapi_userinfo`, [`OAuthClient::userinfo`].
//!
//! Only the server's own callback may bind an openid to a session; never trust an openid from a query
//! string or form. The appsecret and tokens stay on the server ([`Secret`]).
use std::fmt;
use std::time::Duration;

use tracing::instrument;

use crate::config::{BaseUrl, Hosts};
use crate::error::{parse_mp, MpError};
use crate::http::{encode, read_capped, HttpError, DEFAULT_TIMEOUT, MAX_ANSWER_BYTES};
use crate::secret::Secret;

/// The authorization scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Scope {
    /// `snsapi_base`: silent, openid only.
    #[serde(rename = "snsapi_base")]
    Base,
    /// `snsapi_userinfo`: consent page, then nickname/avatar/unionid.
    #[serde(rename = "snsapi_userinfo")]
    UserInfo,
}

impl Scope {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Base => "snsapi_base",
            Self::UserInfo => "snsapi_userinfo",
        }
    }
}

/// Why an authorize URL could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizeUrlError {
    /// `state` must be 1–128 characters of `[a-zA-Z0-9]`.
    #[error("state must be 1-128 characters of [a-zA-Z0-9]")]
    InvalidState,
    /// `redirect_uri` must be an absolute http(s) URL.
    #[error("redirect_uri must be an absolute http(s) URL")]
    InvalidRedirectUri,
}

/// A fresh `state`: 32 random alphanumerics (CSPRNG). Store it in the session and compare on return.
pub fn new_state() -> String {
    crate::nonce()
}

/// Whether `state` has WeChat's allowed shape.
pub fn is_valid_state(state: &str) -> bool {
    !state.is_empty() && state.len() <= 128 && state.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The answer of the code exchange and of refresh.
#[derive(Clone, serde::Deserialize)]
pub struct OAuthToken {
    /// Web-authorization access token (not the base access_token).
    pub access_token: Secret<String>,
    /// Seconds until it expires (7200).
    pub expires_in: u64,
    /// Refresh token (30 days).
    pub refresh_token: Secret<String>,
    /// The user's openid under this appid.
    pub openid: String,
    /// Granted scope(s), comma separated.
    #[serde(default)]
    pub scope: String,
    /// Present when the account is bound to an open platform.
    #[serde(default)]
    pub unionid: Option<String>,
    /// 1 when the user is in "snapshot page" mode (朋友圈快照页): no real openid consent.
    #[serde(default)]
    pub is_snapshotuser: Option<i32>,
}

impl fmt::Debug for OAuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthToken")
            .field("access_token", &"***")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &"***")
            .field("openid", &self.openid)
            .field("scope", &self.scope)
            .field("unionid", &self.unionid)
            .finish()
    }
}

impl OAuthToken {
    /// The user granted `snsapi_userinfo`.
    pub fn has_userinfo_scope(&self) -> bool {
        self.scope
            .split(',')
            .any(|s| s.trim() == Scope::UserInfo.as_str())
    }
}

/// A user's profile (`/sns/userinfo`, `lang=zh_CN`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserInfo {
    /// openid.
    pub openid: String,
    /// Nickname.
    #[serde(default)]
    pub nickname: String,
    /// 0 unknown, 1 male, 2 female (WeChat now always sends 0).
    #[serde(default)]
    pub sex: i32,
    /// Province.
    #[serde(default)]
    pub province: String,
    /// City.
    #[serde(default)]
    pub city: String,
    /// Country.
    #[serde(default)]
    pub country: String,
    /// Avatar URL.
    #[serde(default)]
    pub headimgurl: String,
    /// Privileges.
    #[serde(default)]
    pub privilege: Vec<String>,
    /// unionid, if bound.
    #[serde(default)]
    pub unionid: Option<String>,
}

/// OAuth client for one appid.
#[derive(Clone)]
pub struct OAuthClient {
    appid: String,
    secret: Secret<String>,
    open: BaseUrl,
    api: BaseUrl,
    http: reqwest::Client,
    timeout: Duration,
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("appid", &self.appid)
            .field("open", &self.open)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl OAuthClient {
    /// A client for `appid` with its appsecret.
    pub fn new(
        appid: impl Into<String>,
        secret: Secret<String>,
        hosts: &Hosts,
        http: reqwest::Client,
    ) -> Self {
        Self {
            appid: appid.into(),
            secret,
            open: hosts.open.clone(),
            api: hosts.api.clone(),
            http,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Overrides the per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The authorize URL, parameters in WeChat's exact order:
    /// `…/connect/oauth2/authorize?appid=…&redirect_uri=…&response_type=code&scope=…&state=…#wechat_redirect`.
    pub fn authorize_url(
        &self,
        redirect_uri: &str,
        scope: Scope,
        state: &str,
    ) -> Result<String, AuthorizeUrlError> {
        if !is_valid_state(state) {
            return Err(AuthorizeUrlError::InvalidState);
        }
        match url::Url::parse(redirect_uri) {
            Ok(u) if (u.scheme() == "https" || u.scheme() == "http") && u.host_str().is_some() => {}
            _ => return Err(AuthorizeUrlError::InvalidRedirectUri),
        }
        Ok(format!(
            "{}?appid={}&redirect_uri={}&response_type=code&scope={}&state={}#wechat_redirect",
            self.open.join("/connect/oauth2/authorize"),
            encode(&self.appid),
            encode(redirect_uri),
            scope.as_str(),
            state
        ))
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path_and_query: &str,
    ) -> Result<T, MpError> {
        let resp = self
            .http
            .get(self.api.join(path_and_query))
            .timeout(self.timeout)
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(HttpError::Status {
                status: resp.status().as_u16(),
            }
            .into());
        }
        let body = read_capped(resp, MAX_ANSWER_BYTES).await?;
        parse_mp(&body)
    }

    /// Exchanges the callback's `code` (server side only). 40029 → [`crate::ApiError::InvalidCode`],
    /// 40163 → [`crate::ApiError::CodeUsed`]: restart the flow once, never loop.
    #[instrument(skip_all)]
    pub async fn exchange_code(&self, code: &str) -> Result<OAuthToken, MpError> {
        if code.is_empty() || code.len() > 512 {
            return Err(MpError::InvalidInput("code"));
        }
        let q = format!(
            "/sns/oauth2/access_token?appid={}&secret={}&code={}&grant_type=authorization_code",
            encode(&self.appid),
            encode(self.secret.expose_str()),
            encode(code)
        );
        let t: OAuthToken = self.get_json(&q).await?;
        if t.openid.is_empty() || t.access_token.expose_str().is_empty() {
            return Err(MpError::Malformed("missing openid or access_token".into()));
        }
        Ok(t)
    }

    /// Refreshes a web-authorization access token (refresh tokens last 30 days).
    #[instrument(skip_all)]
    pub async fn refresh(&self, refresh_token: &Secret<String>) -> Result<OAuthToken, MpError> {
        let q = format!(
            "/sns/oauth2/refresh_token?appid={}&grant_type=refresh_token&refresh_token={}",
            encode(&self.appid),
            encode(refresh_token.expose_str())
        );
        self.get_json(&q).await
    }

    /// The user's profile (`snsapi_userinfo` only), in Chinese (`lang=zh_CN`).
    #[instrument(skip(self, access_token))]
    pub async fn userinfo(
        &self,
        access_token: &Secret<String>,
        openid: &str,
    ) -> Result<UserInfo, MpError> {
        let q = format!(
            "/sns/userinfo?access_token={}&openid={}&lang=zh_CN",
            encode(access_token.expose_str()),
            encode(openid)
        );
        self.get_json(&q).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> OAuthClient {
        OAuthClient::new(
            "wx520c15f417810387",
            "s".into(),
            &Hosts::default(),
            reqwest::Client::new(),
        )
    }

    #[test]
    fn authorize_url_exact() {
        let u = client()
            .authorize_url(
                "https://chong.qq.com/php/index.php?d=&c=wxAdapter&m=mobileDeal&showwxpaytitle=1&vb2ctag=4_2030_5_1194_60",
                Scope::Base,
                "123",
            )
            .expect("url");
        assert_eq!(
            u,
            "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx520c15f417810387&redirect_uri=https%3A%2F%2Fchong.qq.com%2Fphp%2Findex.php%3Fd%3D%26c%3DwxAdapter%26m%3DmobileDeal%26showwxpaytitle%3D1%26vb2ctag%3D4_2030_5_1194_60&response_type=code&scope=snsapi_base&state=123#wechat_redirect"
        );
        let u = client()
            .authorize_url("https://a.com/cb", Scope::UserInfo, "abcXYZ09")
            .expect("url");
        assert!(
            u.ends_with("&response_type=code&scope=snsapi_userinfo&state=abcXYZ09#wechat_redirect"),
            "{u}"
        );
    }

    #[test]
    fn authorize_url_with_sandbox_prefix() {
        let hosts = Hosts::all("http://127.0.0.1:3000/sandbox/api").expect("hosts");
        let c = OAuthClient::new("wx1", "s".into(), &hosts, reqwest::Client::new());
        let u = c
            .authorize_url("http://127.0.0.1:3000/auth/cb", Scope::Base, "s1")
            .expect("url");
        assert!(u.starts_with("http://127.0.0.1:3000/sandbox/api/connect/oauth2/authorize?appid=wx1&redirect_uri=http%3A%2F%2F127.0.0.1%3A3000%2Fauth%2Fcb&"), "{u}");
    }

    #[test]
    fn state_rules() {
        let c = client();
        for bad in ["", "a-b", "a b", "中文", &"a".repeat(129)] {
            assert_eq!(
                c.authorize_url("https://a.com/", Scope::Base, bad),
                Err(AuthorizeUrlError::InvalidState),
                "{bad}"
            );
        }
        assert_eq!(
            c.authorize_url("/relative", Scope::Base, "s"),
            Err(AuthorizeUrlError::InvalidRedirectUri)
        );
        let s = new_state();
        assert!(is_valid_state(&s) && s.len() == 32);
        assert_ne!(new_state(), s);
    }

    #[test]
    fn token_debug_redacted() {
        let t: OAuthToken = serde_json::from_str(r#"{"access_token":"AT-SECRET","expires_in":7200,"refresh_token":"RT-SECRET","openid":"o1","scope":"snsapi_userinfo"}"#).expect("json");
        let d = format!("{t:?}");
        assert!(!d.contains("AT-SECRET") && !d.contains("RT-SECRET"), "{d}");
        assert!(t.has_userinfo_scope());
    }
}
