//! WeChat configuration: real credentials from the environment, or the embedded sandbox.
//!
//! No `WECHAT_APPID` → the embedded sandbox: credentials are derived from a seed kept in the
//! data directory (so openids and keys survive restarts), the sandbox is nested at `/sandbox`
//! and the WeChat hosts point at it. With `WECHAT_APPID`, everything a payment needs must be
//! present: a half-filled configuration stops the start with the names of what is missing.
//!
//! Every secret lives in a type whose `Debug` is redacted (`Secret`, `MerchantKey`,
//! `ApiV3Key`) and none of these types is `Serialize`.

use crate::config::ConfigError;
use std::path::Path;
use wechat::pay::v3::aead::ApiV3Key;
use wechat::pay::v3::sign::MerchantKey;
use wechat::{Hosts, Secret, SignType};

/// Which WeChat Pay API the shop speaks (`WECHAT_PAY_VERSION`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayVersion {
    V2,
    V3,
}

/// What the environment says about WeChat.
#[derive(Clone, Debug)]
pub struct WechatSettings {
    /// Sandbox behaviour: the banner on every page, and any browser counts as WeChat's
    /// (`WECHAT_SANDBOX=1`, implied by the embedded sandbox).
    pub sandbox: bool,
    pub source: WechatSource,
    /// `WXMALL_REDIS_URL`: share the access_token / jsapi_ticket with other instances.
    pub redis_url: Option<String>,
    /// `WXMALL_REDIS_PREFIX`: what every Redis key of this shop starts with, so that two shops
    /// (or a staging and a live one) can share one Redis without sharing limits; `None`: the
    /// default keys (`wechat:APPID:…` for tokens, `wxmall:rl:…` for rate limits).
    pub redis_prefix: Option<String>,
    /// `WECHAT_MP_TOKEN` / `WECHAT_MP_AES_KEY`: the official account's server (`/wechat/mp`).
    /// In sandbox mode the sandbox's own are used.
    pub mp: Option<MpSettings>,
    /// `WECHAT_TEMPLATE_PAID`: the template id of the "order paid" message (see
    /// `crate::mp::OrderTemplate`); `None`: no message. The sandbox accepts any id and has one by
    /// default.
    pub template_paid: Option<String>,
    /// `WECHAT_TEMPLATE_SHIPPED`: the template id of the "order shipped" message.
    pub template_shipped: Option<String>,
}

/// The official account's 服务器配置.
#[derive(Clone, Debug)]
pub struct MpSettings {
    pub token: Secret<String>,
    /// The EncodingAESKey (safe or compatible mode); `None`: plaintext mode.
    pub encoding_aes_key: Option<Secret<String>>,
}

#[derive(Clone, Debug)]
pub enum WechatSource {
    #[cfg(feature = "sandbox")]
    /// The embedded sandbox. `credentials` is set by tests (key generation is slow in debug
    /// builds); otherwise they are derived from the seed in the data directory.
    Embedded {
        pay_version: PayVersion,
        credentials: Option<Box<wechat_sandbox::SandboxCredentials>>,
    },
    /// A real official account and merchant (or an external sandbox reached through
    /// `WECHAT_*_BASE`).
    External(Box<Credentials>),
}

/// An official account plus merchant.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub appid: String,
    pub appsecret: Secret<String>,
    pub mchid: String,
    pub pay: PayCredentials,
    pub hosts: Hosts,
}

// Made once at start and kept for the process: the size difference between the variants is
// irrelevant.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum PayCredentials {
    V2 {
        key: Secret<String>,
        sign_type: SignType,
        /// The merchant API certificate for refunds (mutual TLS); without it, refunds fail
        /// with a clear error.
        refund_identity: Option<RefundIdentity>,
    },
    V3 {
        apiv3_key: ApiV3Key,
        merchant_serial: String,
        private_key: MerchantKey,
        /// The "微信支付公钥" and its id (`PUB_KEY_ID_…`), PEM.
        public_key: Option<(String, String)>,
    },
}

/// The merchant's API certificate, which Pay v2 refunds present over mutual TLS.
#[derive(Clone, Debug)]
pub enum RefundIdentity {
    /// `WECHAT_MCH_CERT` (`apiclient_cert.pem`) with the key in `WECHAT_MCH_PRIVATE_KEY`
    /// (`apiclient_key.pem`), each a file path or inline PEM.
    Pem { cert: String, key: Secret<String> },
    /// `WECHAT_MCH_P12` (`apiclient_cert.p12`, a file path; its password is the mchid).
    Pkcs12(Secret<Vec<u8>>),
}

impl PayCredentials {
    pub fn version(&self) -> PayVersion {
        match self {
            Self::V2 { .. } => PayVersion::V2,
            Self::V3 { .. } => PayVersion::V3,
        }
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn invalid(name: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        message: message.into(),
    }
}

fn parse_version(raw: Option<String>) -> Result<Option<PayVersion>, ConfigError> {
    match raw.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(None),
        Some("v2" | "2") => Ok(Some(PayVersion::V2)),
        Some("v3" | "3") => Ok(Some(PayVersion::V3)),
        Some(other) => Err(invalid(
            "WECHAT_PAY_VERSION",
            format!("expected v2 or v3, got {other:?}"),
        )),
    }
}

/// A PEM given inline or as a file path. An error names the variable, never its value (it may
/// be a private key).
fn pem_or_file(name: &'static str, raw: &str) -> Result<String, ConfigError> {
    if raw.contains("-----BEGIN") {
        return Ok(raw.to_string());
    }
    if raw.contains('\n') || raw.len() > 1024 {
        return Err(invalid(
            name,
            "is neither a PEM (-----BEGIN …) nor the path of a file",
        ));
    }
    std::fs::read_to_string(Path::new(raw)).map_err(|e| {
        invalid(
            name,
            format!("cannot read the file it names ({})", e.kind()),
        )
    })
}

impl WechatSource {
    /// The embedded sandbox (never, in a build without the `sandbox` feature).
    pub fn is_embedded(&self) -> bool {
        #[cfg(feature = "sandbox")]
        return matches!(self, Self::Embedded { .. });
        #[cfg(not(feature = "sandbox"))]
        return false;
    }
}

impl WechatSettings {
    /// The embedded sandbox with generated (or given) credentials.
    #[cfg(feature = "sandbox")]
    pub fn embedded(pay_version: PayVersion) -> Self {
        Self {
            sandbox: true,
            source: WechatSource::Embedded {
                pay_version,
                credentials: None,
            },
            redis_url: None,
            redis_prefix: None,
            mp: None,
            template_paid: Some("sandbox-order-paid".into()),
            template_shipped: Some("sandbox-order-shipped".into()),
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&var)
    }

    /// Reads the settings through `var` (the environment, or a map in tests).
    pub fn from_vars(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let sandbox_flag = match var("WECHAT_SANDBOX") {
            Some(raw) => crate::config::parse_bool("WECHAT_SANDBOX", &raw)?,
            None => false,
        };
        let version = parse_version(var("WECHAT_PAY_VERSION"))?;
        let redis_url = var("WXMALL_REDIS_URL");
        let redis_prefix = var("WXMALL_REDIS_PREFIX");
        let Some(appid) = var("WECHAT_APPID") else {
            // Nothing but sandbox-compatible settings may be given without an appid: a
            // merchant key without an account is a mistake worth stopping for.
            let stray: Vec<&str> = [
                "WECHAT_APPSECRET",
                "WECHAT_MCHID",
                "WECHAT_PAY_KEY",
                "WECHAT_APIV3_KEY",
                "WECHAT_MCH_SERIAL",
                "WECHAT_MCH_PRIVATE_KEY",
                "WECHAT_MCH_CERT",
                "WECHAT_MCH_P12",
                "WECHAT_MP_TOKEN",
                "WECHAT_MP_AES_KEY",
            ]
            .into_iter()
            .filter(|n| var(n).is_some())
            .collect();
            if !stray.is_empty() {
                return Err(invalid(
                    "WECHAT_APPID",
                    format!(
                        "missing, but {} set (set WECHAT_APPID, or unset them for the sandbox)",
                        stray.join(", ")
                    ),
                ));
            }
            #[cfg(feature = "sandbox")]
            {
                let mut s = Self::embedded(version.unwrap_or(PayVersion::V3));
                s.redis_url = redis_url;
                s.redis_prefix = redis_prefix;
                if let Some(t) = var("WECHAT_TEMPLATE_PAID") {
                    s.template_paid = Some(t);
                }
                if let Some(t) = var("WECHAT_TEMPLATE_SHIPPED") {
                    s.template_shipped = Some(t);
                }
                return Ok(s);
            }
            #[cfg(not(feature = "sandbox"))]
            {
                let _ = (version, redis_url, redis_prefix, sandbox_flag);
                return Err(invalid(
                    "WECHAT_APPID",
                    "not set, and this build has no embedded WeChat sandbox (built without the \
                     `sandbox` feature): set the WeChat credentials (WECHAT_APPID, \
                     WECHAT_APPSECRET, WECHAT_MCHID …)",
                ));
            }
        };
        let mut missing: Vec<&'static str> = Vec::new();
        let mut need = |name: &'static str| {
            let v = var(name);
            if v.is_none() {
                missing.push(name);
            }
            v.unwrap_or_default()
        };
        let appsecret = need("WECHAT_APPSECRET");
        let mchid = need("WECHAT_MCHID");
        let version = version.unwrap_or(PayVersion::V3);
        let (v2_key, v3_parts) = match version {
            PayVersion::V2 => (need("WECHAT_PAY_KEY"), None),
            PayVersion::V3 => (
                String::new(),
                Some((
                    need("WECHAT_APIV3_KEY"),
                    need("WECHAT_MCH_SERIAL"),
                    need("WECHAT_MCH_PRIVATE_KEY"),
                )),
            ),
        };
        let pub_key = var("WECHAT_PAY_PUBLIC_KEY");
        let pub_key_id = var("WECHAT_PAY_PUBLIC_KEY_ID");
        match (&pub_key, &pub_key_id) {
            (Some(_), None) => missing.push("WECHAT_PAY_PUBLIC_KEY_ID"),
            (None, Some(_)) => missing.push("WECHAT_PAY_PUBLIC_KEY"),
            _ => {}
        }
        if !missing.is_empty() {
            let v = match version {
                PayVersion::V2 => "v2",
                PayVersion::V3 => "v3",
            };
            return Err(invalid(
                "WECHAT_APPID",
                format!(
                    "WeChat Pay {v} is half configured; missing: {}",
                    missing.join(", ")
                ),
            ));
        }
        let pay = match v3_parts {
            None => {
                let sign_type = match var("WECHAT_PAY_SIGN_TYPE").as_deref() {
                    None => SignType::Md5,
                    Some(s) if s.eq_ignore_ascii_case("MD5") => SignType::Md5,
                    Some(s) if s.eq_ignore_ascii_case("HMAC-SHA256") => SignType::HmacSha256,
                    Some(other) => {
                        return Err(invalid(
                            "WECHAT_PAY_SIGN_TYPE",
                            format!("expected MD5 or HMAC-SHA256, got {other:?}"),
                        ))
                    }
                };
                if v2_key.len() != 32 {
                    return Err(invalid("WECHAT_PAY_KEY", "must be 32 characters"));
                }
                let refund_identity = match (
                    var("WECHAT_MCH_P12"),
                    var("WECHAT_MCH_CERT"),
                    var("WECHAT_MCH_PRIVATE_KEY"),
                ) {
                    (Some(p12), _, _) => Some(RefundIdentity::Pkcs12(Secret::new(
                        std::fs::read(Path::new(&p12)).map_err(|e| {
                            invalid(
                                "WECHAT_MCH_P12",
                                format!("cannot read the file: {}", e.kind()),
                            )
                        })?,
                    ))),
                    (None, Some(cert), Some(key)) => Some(RefundIdentity::Pem {
                        cert: pem_or_file("WECHAT_MCH_CERT", &cert)?,
                        key: Secret::from(pem_or_file("WECHAT_MCH_PRIVATE_KEY", &key)?),
                    }),
                    (None, Some(_), None) => return Err(invalid(
                        "WECHAT_MCH_PRIVATE_KEY",
                        "missing: WECHAT_MCH_CERT needs its key (apiclient_key.pem) for refunds",
                    )),
                    (None, None, _) => None,
                };
                PayCredentials::V2 {
                    key: Secret::from(v2_key),
                    sign_type,
                    refund_identity,
                }
            }
            Some((apiv3, serial, key_path)) => {
                let apiv3_key = ApiV3Key::new(&apiv3)
                    .map_err(|e| invalid("WECHAT_APIV3_KEY", e.to_string()))?;
                // A file path or the PEM itself (`"$(cat apiclient_key.pem)"`), like the public key.
                let pem = pem_or_file("WECHAT_MCH_PRIVATE_KEY", &key_path)?;
                let private_key = MerchantKey::from_pem(&pem).map_err(|_| {
                    invalid(
                        "WECHAT_MCH_PRIVATE_KEY",
                        "is not an RSA private key in PEM (PKCS#8 or PKCS#1)",
                    )
                })?;
                let public_key = match (pub_key, pub_key_id) {
                    (Some(pem), Some(id)) => {
                        let pem = pem_or_file("WECHAT_PAY_PUBLIC_KEY", &pem)?;
                        wechat::pay::v3::certs::public_key_from_pem(&pem)
                            .map_err(|e| invalid("WECHAT_PAY_PUBLIC_KEY", e.to_string()))?;
                        Some((id, pem))
                    }
                    _ => None,
                };
                PayCredentials::V3 {
                    apiv3_key,
                    merchant_serial: serial,
                    private_key,
                    public_key,
                }
            }
        };
        let hosts = Hosts::from_vars(var).map_err(|e| invalid("WECHAT_*_BASE", e.to_string()))?;
        let mp = match (var("WECHAT_MP_TOKEN"), var("WECHAT_MP_AES_KEY")) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(invalid(
                    "WECHAT_MP_TOKEN",
                    "missing, but WECHAT_MP_AES_KEY is set (both come from 服务器配置)",
                ))
            }
            (Some(token), aes) => {
                if token.len() < 3
                    || token.len() > 32
                    || !token.chars().all(|c| c.is_ascii_alphanumeric())
                {
                    return Err(invalid(
                        "WECHAT_MP_TOKEN",
                        "must be 3 to 32 letters or digits, as in 服务器配置",
                    ));
                }
                if let Some(k) = &aes {
                    wechat::mp::server::AesKey::from_encoding_aes_key(k)
                        .map_err(|e| invalid("WECHAT_MP_AES_KEY", e.to_string()))?;
                }
                Some(MpSettings {
                    token: Secret::from(token),
                    encoding_aes_key: aes.map(Secret::from),
                })
            }
        };
        Ok(Self {
            sandbox: sandbox_flag,
            source: WechatSource::External(Box::new(Credentials {
                appid,
                appsecret: Secret::from(appsecret),
                mchid,
                pay,
                hosts,
            })),
            redis_url,
            redis_prefix,
            mp,
            template_paid: var("WECHAT_TEMPLATE_PAID").filter(|t| !t.trim().is_empty()),
            template_shipped: var("WECHAT_TEMPLATE_SHIPPED").filter(|t| !t.trim().is_empty()),
        })
    }
}

/// The sandbox seed in `data_dir/sandbox.seed`, created once.
#[cfg(feature = "sandbox")]
pub fn sandbox_seed(data_dir: &Path) -> std::io::Result<u64> {
    let path = data_dir.join("sandbox.seed");
    if let Ok(s) = std::fs::read_to_string(&path) {
        if let Ok(seed) = s.trim().parse::<u64>() {
            return Ok(seed);
        }
    }
    std::fs::create_dir_all(data_dir)?;
    let seed: u64 = rand::random();
    let tmp = data_dir.join("sandbox.seed.tmp");
    std::fs::write(&tmp, seed.to_string())?;
    std::fs::rename(&tmp, &path)?;
    Ok(seed)
}

/// Credentials for the shop's side of the embedded sandbox.
#[cfg(feature = "sandbox")]
pub fn sandbox_credentials(
    creds: &wechat_sandbox::SandboxCredentials,
    public_url: &str,
    version: PayVersion,
) -> Result<Credentials, ConfigError> {
    let hosts = Hosts {
        open: base(&format!("{public_url}/sandbox/open"))?,
        api: base(&format!("{public_url}/sandbox/api"))?,
        pay: base(&format!("{public_url}/sandbox/pay"))?,
    };
    let pay = match version {
        // The embedded sandbox speaks plain HTTP: its refunds need no client certificate.
        PayVersion::V2 => PayCredentials::V2 {
            key: Secret::from(creds.pay_key_v2.clone()),
            sign_type: SignType::Md5,
            refund_identity: None,
        },
        PayVersion::V3 => PayCredentials::V3 {
            apiv3_key: ApiV3Key::new(&creds.apiv3_key)
                .map_err(|e| invalid("sandbox", e.to_string()))?,
            merchant_serial: creds.merchant_serial.clone(),
            private_key: MerchantKey::from_pem(&creds.merchant_private_key_pem)
                .map_err(|e| invalid("sandbox", e.to_string()))?,
            public_key: Some((
                creds.wechatpay_public_key_id.clone(),
                creds.wechatpay_public_key_pem.clone(),
            )),
        },
    };
    Ok(Credentials {
        appid: creds.appid.clone(),
        appsecret: Secret::from(creds.appsecret.clone()),
        mchid: creds.mchid.clone(),
        pay,
        hosts,
    })
}

#[cfg(feature = "sandbox")]
fn base(s: &str) -> Result<wechat::BaseUrl, ConfigError> {
    wechat::BaseUrl::parse(s).map_err(|e| invalid("WXMALL_PUBLIC_URL", e.to_string()))
}

#[cfg(all(test, feature = "sandbox"))]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            parse_version(Some("v2".into())).unwrap(),
            Some(PayVersion::V2)
        );
        assert_eq!(
            parse_version(Some("V3".into())).unwrap(),
            Some(PayVersion::V3)
        );
        assert_eq!(parse_version(None).unwrap(), None);
        assert!(parse_version(Some("v4".into())).is_err());
    }

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| m.get(k).cloned()
    }

    #[test]
    fn no_appid_is_the_sandbox() {
        let s = WechatSettings::from_vars(&vars(&[])).unwrap();
        assert!(s.sandbox);
        assert!(matches!(
            s.source,
            WechatSource::Embedded {
                pay_version: PayVersion::V3,
                ..
            }
        ));
        let s = WechatSettings::from_vars(&vars(&[("WECHAT_PAY_VERSION", "v2")])).unwrap();
        assert!(matches!(
            s.source,
            WechatSource::Embedded {
                pay_version: PayVersion::V2,
                ..
            }
        ));
    }

    #[test]
    fn the_official_accounts_server_settings_are_checked_without_echoing_them() {
        let base = [
            ("WECHAT_APPID", "wx0123456789abcdef"),
            ("WECHAT_APPSECRET", "s"),
            ("WECHAT_MCHID", "1900000109"),
            ("WECHAT_PAY_VERSION", "v2"),
            ("WECHAT_PAY_KEY", "0123456789abcdef0123456789abcdef"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut all = base.to_vec();
            all.extend_from_slice(extra);
            WechatSettings::from_vars(&vars(&all))
        };
        assert!(with(&[]).unwrap().mp.is_none());
        let s = with(&[("WECHAT_MP_TOKEN", "pamtest")]).unwrap();
        assert!(s.mp.unwrap().encoding_aes_key.is_none(), "plaintext mode");
        let s = with(&[
            ("WECHAT_MP_TOKEN", "pamtest"),
            (
                "WECHAT_MP_AES_KEY",
                "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
            ),
        ])
        .unwrap();
        assert!(s.mp.unwrap().encoding_aes_key.is_some());
        let err = with(&[
            ("WECHAT_MP_TOKEN", "pamtest"),
            ("WECHAT_MP_AES_KEY", "secret-but-too-short"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("WECHAT_MP_AES_KEY"), "{err}");
        assert!(
            !err.contains("secret-but-too-short"),
            "never the value: {err}"
        );
        let err = with(&[(
            "WECHAT_MP_AES_KEY",
            "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        )])
        .unwrap_err()
        .to_string();
        assert!(err.contains("WECHAT_MP_TOKEN"), "{err}");
        // Without an appid (the sandbox), a stray MP token is a mistake worth stopping for.
        let err = WechatSettings::from_vars(&vars(&[("WECHAT_MP_TOKEN", "pamtest")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("WECHAT_MP_TOKEN"), "{err}");
    }

    #[test]
    fn half_configurations_name_what_is_missing() {
        let err = WechatSettings::from_vars(&vars(&[
            ("WECHAT_APPID", "wx0123456789abcdef"),
            ("WECHAT_APPSECRET", "s"),
            ("WECHAT_MCHID", "1900000109"),
            ("WECHAT_APIV3_KEY", "0123456789abcdef0123456789abcdef"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("WECHAT_MCH_SERIAL") && err.contains("WECHAT_MCH_PRIVATE_KEY"),
            "{err}"
        );
        assert!(!err.contains("WECHAT_APPSECRET"), "{err}");
        let err = WechatSettings::from_vars(&vars(&[
            ("WECHAT_APPID", "wx1"),
            ("WECHAT_PAY_VERSION", "v2"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("WECHAT_APPSECRET")
                && err.contains("WECHAT_MCHID")
                && err.contains("WECHAT_PAY_KEY"),
            "{err}"
        );
        let err = WechatSettings::from_vars(&vars(&[("WECHAT_MCHID", "1900000109")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("WECHAT_APPID"), "{err}");
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let s = WechatSettings::from_vars(&vars(&[
            ("WECHAT_APPID", "wx0123456789abcdef"),
            ("WECHAT_APPSECRET", "topsecretappsecret"),
            ("WECHAT_MCHID", "1900000109"),
            ("WECHAT_PAY_VERSION", "v2"),
            ("WECHAT_PAY_KEY", "k0123456789abcdef0123456789abcde"),
        ]))
        .unwrap();
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("topsecretappsecret") && !shown.contains("k0123456789abcdef"),
            "{shown}"
        );
    }

    #[test]
    fn seed_is_stable() {
        let dir = tempfile::tempdir().unwrap();
        let a = sandbox_seed(dir.path()).unwrap();
        let b = sandbox_seed(dir.path()).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn the_private_key_may_be_inline_and_is_never_echoed() {
        let creds = wechat_sandbox::SandboxCredentials::from_seed(7);
        let pem = creds.merchant_private_key_pem.clone();
        let base = [
            ("WECHAT_APPID", "wx0123456789abcdef"),
            ("WECHAT_APPSECRET", "secret-secret-secret"),
            ("WECHAT_MCHID", "1900000109"),
            ("WECHAT_APIV3_KEY", "0123456789abcdef0123456789abcdef"),
            (
                "WECHAT_MCH_SERIAL",
                "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
            ),
        ];
        // Inline, as `WECHAT_MCH_PRIVATE_KEY="$(cat apiclient_key.pem)"` gives it.
        let mut ok = base.to_vec();
        ok.push(("WECHAT_MCH_PRIVATE_KEY", &pem));
        assert!(WechatSettings::from_vars(&vars(&ok)).is_ok());
        // Broken: the error names the variable and shows none of the key.
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let second_line = pem.lines().nth(2).unwrap();
        let broken = pem.replace(second_line, &second_line[..20]);
        assert_ne!(broken, pem);
        let headless = body.clone();
        for bad in [broken.as_str(), headless.as_str()] {
            let mut v = base.to_vec();
            v.push(("WECHAT_MCH_PRIVATE_KEY", bad));
            let err = WechatSettings::from_vars(&vars(&v))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("WECHAT_MCH_PRIVATE_KEY"), "{err}");
            for line in pem.lines().filter(|l| l.len() > 20) {
                assert!(!err.contains(line), "the key leaks into: {err}");
            }
            assert!(!err.contains(&body[..40]), "{err}");
        }
    }
}
