//! The shop's live WeChat handles, built once at start from [`WechatSettings`]: the OAuth
//! client, the token manager (JS-SDK signatures), the pay gateway (v2 or v3 behind one trait)
//! and, in sandbox mode, the embedded sandbox itself.

use crate::config::ConfigError;
#[cfg(feature = "sandbox")]
use crate::wechat_config::{sandbox_credentials, sandbox_seed};
use crate::wechat_config::{
    Credentials, PayCredentials, PayVersion, RefundIdentity, WechatSettings, WechatSource,
};
use std::path::Path;
use std::sync::Arc;
use wechat::mp::oauth::OAuthClient;
use wechat::mp::token::{MemoryTokenCache, TokenCache, TokenManager};
use wechat::PayGateway;

/// The production JS-SDK.
pub const JSSDK_URL: &str = "https://res.wx.qq.com/open/js/jweixin-1.6.0.js";

pub struct Wechat {
    pub appid: String,
    pub mchid: String,
    /// Sandbox behaviour (banner; any browser counts as WeChat's).
    pub sandbox: bool,
    /// The shop's public origin, without trailing slash.
    pub public_url: String,
    pub oauth: OAuthClient,
    pub tokens: TokenManager,
    /// The official account's APIs (menu, QR codes, template messages).
    pub mp_api: wechat::mp::api::MpApi,
    /// WeChat cards (卡券): the coupons in shoppers' card wallets.
    pub cards: wechat::mp::card::CardApi,
    /// `WECHAT_TEMPLATE_PAID`.
    pub template_paid: Option<String>,
    /// `WECHAT_TEMPLATE_SHIPPED`.
    pub template_shipped: Option<String>,
    /// WeChat's API host (`https://api.weixin.qq.com`, or a sandbox's).
    api_base: wechat::BaseUrl,
    pub pay: Arc<dyn PayGateway>,
    pub pay_version: PayVersion,
    /// The embedded sandbox, when there is one (nested at `/sandbox`).
    pub embedded: Option<Embedded>,
    /// Where pages load the JS-SDK from.
    pub jssdk_url: String,
    /// The official account's server (`/wechat/mp`), when configured (always in sandbox mode).
    pub mp: Option<Arc<wechat::mp::server::MpServer>>,
    /// The embedded sandbox's mutual-TLS listener for v2 refunds (stopped with the shop).
    _secapi: Option<AbortOnDrop>,
}

/// Stops a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The embedded WeChat sandbox; nothing at all in a build without the `sandbox` feature.
#[cfg(feature = "sandbox")]
pub type Embedded = wechat_sandbox::Sandbox;
#[cfg(not(feature = "sandbox"))]
pub type Embedded = std::convert::Infallible;

/// The embedded sandbox's `/secapi/…` listener and a client that presents the sandbox merchant's
/// API certificate (`apiclient_cert.pem` issued by the sandbox CA, on the merchant key) and
/// trusts only the sandbox CA.
struct SandboxSecapi {
    base: wechat::BaseUrl,
    client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

#[cfg(feature = "sandbox")]
impl SandboxSecapi {
    async fn start(sb: &wechat_sandbox::Sandbox) -> Result<Self, WechatStartError> {
        let fail = |e: &dyn std::fmt::Display| {
            WechatStartError::Client(format!("sandbox refund listener: {e}"))
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| fail(&e))?;
        let server = wechat_sandbox::serve_secapi(sb.clone(), listener)
            .await
            .map_err(|e| fail(&e))?;
        let build = || -> Result<reqwest::Client, String> {
            let ca = sb.ca_certificate_pem().map_err(|e| e.to_string())?;
            let cert = sb.merchant_certificate_pem().map_err(|e| e.to_string())?;
            let identity = wechat::pay::v2::identity_from_pem(
                cert.as_bytes(),
                sb.credentials().merchant_private_key_pem.as_bytes(),
            )
            .map_err(|e| e.to_string())?;
            reqwest::Client::builder()
                .use_rustls_tls()
                .tls_built_in_root_certs(false)
                .add_root_certificate(
                    reqwest::Certificate::from_pem(ca.as_bytes()).map_err(|e| e.to_string())?,
                )
                .identity(identity)
                .build()
                .map_err(|e| e.to_string())
        };
        let client = match build() {
            Ok(c) => c,
            Err(e) => {
                server.task.abort();
                return Err(fail(&e));
            }
        };
        let base = wechat::BaseUrl::parse(&server.base).map_err(|e| fail(&e))?;
        Ok(Self {
            base,
            client,
            task: server.task,
        })
    }
}

impl std::fmt::Debug for Wechat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wechat")
            .field("appid", &self.appid)
            .field("mchid", &self.mchid)
            .field("sandbox", &self.sandbox)
            .field("pay_version", &self.pay_version)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WechatStartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("WeChat client: {0}")]
    Client(String),
    #[error("cannot keep the sandbox seed in {dir}: {source}")]
    Seed { dir: String, source: std::io::Error },
    #[error("cannot reach the token cache at WXMALL_REDIS_URL: {0}")]
    Redis(String),
}

impl Wechat {
    pub async fn start(
        settings: &WechatSettings,
        public_url: &str,
        data_dir: &Path,
    ) -> Result<Self, WechatStartError> {
        let http =
            wechat::http::default_client().map_err(|e| WechatStartError::Client(e.to_string()))?;
        #[cfg(not(feature = "sandbox"))]
        let _ = data_dir;
        let (creds, embedded, version) = match &settings.source {
            #[cfg(feature = "sandbox")]
            WechatSource::Embedded {
                pay_version,
                credentials,
            } => {
                let sb_creds = match credentials {
                    Some(c) => (**c).clone(),
                    None => {
                        let seed =
                            sandbox_seed(data_dir).map_err(|source| WechatStartError::Seed {
                                dir: data_dir.display().to_string(),
                                source,
                            })?;
                        // Three RSA-2048 keys: seconds in a debug build, so off the async workers.
                        tokio::task::spawn_blocking(move || {
                            wechat_sandbox::SandboxCredentials::from_seed(seed)
                        })
                        .await
                        .map_err(|e| WechatStartError::Client(e.to_string()))?
                    }
                };
                let creds = sandbox_credentials(&sb_creds, public_url, *pay_version)?;
                let sandbox = wechat_sandbox::Sandbox::new(sb_creds);
                // The sandbox's official account pushes to this shop's server.
                sandbox
                    .set_mp_server_url(&format!("{}/wechat/mp", public_url.trim_end_matches('/')));
                (creds, Some(sandbox), *pay_version)
            }
            WechatSource::External(c) => {
                let c: Credentials = (**c).clone();
                let v = c.pay.version();
                (c, None, v)
            }
        };
        let cache: Arc<dyn TokenCache> = match &settings.redis_url {
            Some(url) => Arc::new(
                wechat::mp::token::RedisTokenCache::connect(url)
                    .await
                    .map_err(|e| WechatStartError::Redis(e.to_string()))?,
            ),
            None => Arc::new(MemoryTokenCache::new()),
        };
        let oauth = OAuthClient::new(
            &creds.appid,
            creds.appsecret.clone(),
            &creds.hosts,
            http.clone(),
        );
        let mut token_options = wechat::mp::token::TokenOptions::default();
        if let Some(prefix) = &settings.redis_prefix {
            token_options.key_prefix = format!("{prefix}:wechat");
        }
        let tokens = TokenManager::with_options(
            &creds.appid,
            creds.appsecret.clone(),
            &creds.hosts,
            http.clone(),
            cache,
            token_options,
        );
        let mp_api =
            wechat::mp::api::MpApi::new(tokens.clone(), http.clone(), creds.hosts.api.clone());
        let cards =
            wechat::mp::card::CardApi::new(tokens.clone(), http.clone(), creds.hosts.api.clone());
        let mut secapi_task = None;
        let pay: Arc<dyn PayGateway> = match &creds.pay {
            PayCredentials::V2 {
                key,
                sign_type,
                refund_identity,
            } => {
                let cfg = wechat::pay::v2::PayV2Config::new(
                    &creds.appid,
                    &creds.mchid,
                    key.clone(),
                    *sign_type,
                    creds.hosts.pay.clone(),
                );
                // The embedded sandbox asks for the merchant certificate on a TLS listener of
                // its own, as WeChat does on `/secapi/…`.
                #[cfg(feature = "sandbox")]
                let sandbox_refunds = match (refund_identity, &embedded) {
                    (None, Some(sb)) => Some(SandboxSecapi::start(sb).await?),
                    _ => None,
                };
                #[cfg(not(feature = "sandbox"))]
                let sandbox_refunds: Option<SandboxSecapi> = None;
                let cfg = match &sandbox_refunds {
                    Some(s) => cfg.with_secapi_base(s.base.clone()),
                    None => cfg,
                };
                let client = wechat::pay::v2::PayV2Client::new(cfg, http.clone());
                let client = match (refund_identity, sandbox_refunds) {
                    (Some(RefundIdentity::Pem { cert, key }), _) => client
                        .with_refund_identity(
                            wechat::pay::v2::identity_from_pem(
                                cert.as_bytes(),
                                key.expose_str().as_bytes(),
                            )
                            .map_err(|e| ConfigError::Invalid {
                                name: "WECHAT_MCH_CERT",
                                message: e.to_string(),
                            })?,
                        )
                        .map_err(|e| ConfigError::Invalid {
                            name: "WECHAT_MCH_CERT",
                            message: e.to_string(),
                        })?,
                    (Some(RefundIdentity::Pkcs12(der)), _) => client
                        .with_refund_identity(
                            wechat::pay::v2::identity_from_pkcs12(der.expose(), &creds.mchid)
                                .map_err(|e| ConfigError::Invalid {
                                    name: "WECHAT_MCH_P12",
                                    message: e.to_string(),
                                })?,
                        )
                        .map_err(|e| ConfigError::Invalid {
                            name: "WECHAT_MCH_P12",
                            message: e.to_string(),
                        })?,
                    (None, Some(sandbox)) => {
                        let c = client.with_refund_client(sandbox.client);
                        secapi_task = Some(AbortOnDrop(sandbox.task));
                        c
                    }
                    (None, None) => client,
                };
                Arc::new(client)
            }
            PayCredentials::V3 {
                apiv3_key,
                merchant_serial,
                private_key,
                public_key,
            } => {
                let cfg = wechat::pay::v3::PayV3Config::new(
                    &creds.appid,
                    &creds.mchid,
                    merchant_serial,
                    private_key.clone(),
                    apiv3_key.clone(),
                    creds.hosts.pay.clone(),
                );
                let pk = public_key
                    .as_ref()
                    .map(|(id, pem)| (id.as_str(), pem.as_str()));
                Arc::new(
                    wechat::pay::v3::PayV3Client::with_downloaded_certificates(
                        cfg,
                        http.clone(),
                        pk,
                    )
                    .map_err(ConfigError::from_wechat)?,
                )
            }
        };
        let sandbox = settings.sandbox || embedded.is_some();
        let jssdk_url = if embedded.is_some() {
            "/sandbox/jweixin.js".to_string()
        } else {
            JSSDK_URL.to_string()
        };
        let mp = match (&settings.mp, &embedded) {
            (Some(m), _) => Some(Arc::new(
                wechat::mp::server::MpServer::new(
                    m.token.expose_str(),
                    m.encoding_aes_key.as_ref().map(|k| k.expose_str()),
                    &creds.appid,
                )
                .map_err(|e| ConfigError::Invalid {
                    name: "WECHAT_MP_AES_KEY",
                    message: e.to_string(),
                })?,
            )),
            #[cfg(feature = "sandbox")]
            (None, Some(sb)) => {
                let c = sb.credentials();
                Some(Arc::new(
                    wechat::mp::server::MpServer::new(
                        &c.mp_token,
                        Some(c.mp_encoding_aes_key.as_str()),
                        &creds.appid,
                    )
                    .map_err(|e| WechatStartError::Client(format!("sandbox mp keys: {e}")))?,
                ))
            }
            _ => None,
        };
        Ok(Self {
            mp,
            mp_api,
            cards,
            template_paid: settings.template_paid.clone(),
            template_shipped: settings.template_shipped.clone(),
            api_base: creds.hosts.api.clone(),
            appid: creds.appid.clone(),
            mchid: creds.mchid.clone(),
            sandbox,
            public_url: public_url.trim_end_matches('/').to_string(),
            oauth,
            tokens,
            pay,
            pay_version: version,
            embedded,
            jssdk_url,
            _secapi: secapi_task,
        })
    }

    /// Where WeChat Pay posts notifications (the route matching the configured version).
    pub fn notify_url(&self) -> String {
        match self.pay_version {
            PayVersion::V2 => format!("{}/wechat/notify/v2", self.public_url),
            PayVersion::V3 => format!("{}/wechat/notify/v3", self.public_url),
        }
    }

    /// Where WeChat Pay posts refund notifications (sent with every refund request).
    pub fn refund_notify_url(&self) -> String {
        match self.pay_version {
            PayVersion::V2 => format!("{}/wechat/notify/refund/v2", self.public_url),
            PayVersion::V3 => format!("{}/wechat/notify/refund/v3", self.public_url),
        }
    }

    /// A URL on WeChat's API host.
    pub fn hosts_api_url(&self, path: &str) -> String {
        self.api_base.join(path)
    }

    /// The official account's 服务器地址 (URL) to paste in 服务器配置.
    pub fn mp_url(&self) -> String {
        format!("{}/wechat/mp", self.public_url)
    }

    pub fn oauth_redirect_uri(&self) -> String {
        format!("{}/wechat/oauth/callback", self.public_url)
    }

    /// What the pages need to know (no secret in it).
    pub fn env(&self) -> app::model::WxEnv {
        app::model::WxEnv {
            sandbox: self.sandbox,
            jssdk_url: self.jssdk_url.clone(),
        }
    }
}

impl ConfigError {
    fn from_wechat(e: wechat::ConfigError) -> Self {
        ConfigError::Invalid {
            name: "WECHAT_PAY_PUBLIC_KEY",
            message: e.to_string(),
        }
    }
}
