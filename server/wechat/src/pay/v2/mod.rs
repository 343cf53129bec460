//! WeChat Pay API v2 (XML, MD5 / HMAC-SHA256): unifiedorder (JSAPI), orderquery, closeorder, refund
//! (mutual TLS), refundquery, downloadbill, payment and refund notifications, and the page's pay
//! parameters.
//!
//! * this module — the merchant's configuration ([`PayV2Config`]), errors, client identities;
//! * [`sign`] — the v2 signature (MD5 / HMAC-SHA256 over sorted parameters) and the page's
//!   `chooseWXPay` parameters;
//! * [`notify`] — payment and refund notifications;
//! * [`PayV2Client`] — the calls.
//!
//! Built on the shared types of [`crate::pay`]; nothing here uses v3.
use std::time::Duration;

use crate::config::{BaseUrl, ConfigError};
use crate::http::{HttpError, DEFAULT_TIMEOUT};
use crate::pay::bill::BillError;
use crate::pay::PayErrCode;
use crate::secret::Secret;
use crate::xml::XmlError;

mod client;
pub mod notify;
pub mod sign;

pub use client::PayV2Client;
pub use sign::SignType;

/// Configuration of a v2 merchant.
#[derive(Debug, Clone)]
pub struct PayV2Config {
    /// The official account's appid.
    pub appid: String,
    /// Merchant id (`mch_id`).
    pub mchid: String,
    /// The API key (32 characters, set in the merchant platform).
    pub key: Secret<String>,
    /// MD5 (default) or HMAC-SHA256.
    pub sign_type: SignType,
    /// Pay base (`https://api.mch.weixin.qq.com`, or the sandbox).
    pub base: BaseUrl,
    /// Base of the `/secapi/…` calls (mutual TLS); `None`: [`PayV2Config::base`], as at WeChat
    /// (one host). The embedded sandbox serves them on a TLS listener of its own.
    pub secapi_base: Option<BaseUrl>,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl PayV2Config {
    /// A configuration with the default timeout.
    pub fn new(
        appid: impl Into<String>,
        mchid: impl Into<String>,
        key: Secret<String>,
        sign_type: SignType,
        base: BaseUrl,
    ) -> Self {
        Self {
            appid: appid.into(),
            mchid: mchid.into(),
            key,
            sign_type,
            base,
            secapi_base: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Sends `/secapi/…` calls to `base` instead of [`PayV2Config::base`].
    pub fn with_secapi_base(mut self, base: BaseUrl) -> Self {
        self.secapi_base = Some(base);
        self
    }

    /// The URL of a call: `/secapi/…` paths on [`PayV2Config::secapi_base`] when set.
    pub(crate) fn url(&self, path: &str) -> String {
        match &self.secapi_base {
            Some(b) if path.starts_with("/secapi/") => b.join(path),
            _ => self.base.join(path),
        }
    }
}

/// A failed v2 call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayV2Error {
    /// Refused locally; nothing was sent.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// Transport failure.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The answer is not acceptable XML.
    #[error("answer XML: {0}")]
    Xml(#[from] XmlError),
    /// `return_code` FAIL (WeChat refused the call itself: signature, parameters…). Unsigned.
    #[error("return_code FAIL: {0}")]
    ReturnFail(String),
    /// The answer carries no `sign`.
    #[error("answer is not signed")]
    MissingSignature,
    /// The answer's `sign` does not verify: it must not be trusted.
    #[error("answer signature invalid")]
    BadSignature,
    /// `result_code` FAIL: a business error.
    #[error("WeChat Pay error {err_code}: {err_code_des}")]
    Business {
        /// Typed code.
        code: PayErrCode,
        /// WeChat's `err_code`.
        err_code: String,
        /// WeChat's `err_code_des`.
        err_code_des: String,
    },
    /// The answer is for another appid.
    #[error("answer is for another appid")]
    AppIdMismatch,
    /// The answer is for another merchant.
    #[error("answer is for another mch_id")]
    MchIdMismatch,
    /// A field is missing or invalid.
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// The trade bill is unusable.
    #[error(transparent)]
    Bill(#[from] BillError),
    /// Refund needs the merchant certificate: see [`PayV2Client::with_refund_identity`].
    #[error("refunds need the merchant client certificate, which is not configured")]
    RefundNotConfigured,
}

impl PayV2Error {
    /// The typed business code, if WeChat answered with one.
    pub fn code(&self) -> Option<&PayErrCode> {
        match self {
            Self::Business { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Builds a client identity from the merchant certificate and key in PEM (`apiclient_cert.pem`,
/// `apiclient_key.pem`).
pub fn identity_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<reqwest::Identity, ConfigError> {
    let mut buf = Vec::with_capacity(cert_pem.len() + key_pem.len() + 1);
    buf.extend_from_slice(key_pem);
    buf.push(b'\n');
    buf.extend_from_slice(cert_pem);
    let id = reqwest::Identity::from_pem(&buf).map_err(|e| ConfigError::InvalidKey {
        what: "merchant client certificate",
        reason: e.without_url().to_string(),
    });
    zeroize::Zeroize::zeroize(&mut buf);
    id
}

/// Builds a client identity from `apiclient_cert.p12` (its password is the mchid).
#[cfg(feature = "pkcs12")]
pub fn identity_from_pkcs12(der: &[u8], password: &str) -> Result<reqwest::Identity, ConfigError> {
    use base64::Engine as _;
    let bad = |reason: String| ConfigError::InvalidKey {
        what: "merchant PKCS#12 bundle",
        reason,
    };
    let ks = p12_keystore::KeyStore::from_pkcs12(
        der,
        password,
        p12_keystore::Pkcs12ImportPolicy::Relaxed,
    )
    .map_err(|e| bad(e.to_string()))?;
    let (_, chain) = ks
        .private_key_chain()
        .ok_or_else(|| bad("no private key in the bundle".into()))?;
    if chain.certs().is_empty() {
        return Err(bad("no certificate in the bundle".into()));
    }
    fn pem(label: &str, der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut s = format!("-----BEGIN {label}-----\n");
        for line in b64.as_bytes().chunks(64) {
            s.push_str(std::str::from_utf8(line).unwrap_or_default());
            s.push('\n');
        }
        s.push_str(&format!("-----END {label}-----\n"));
        s
    }
    let mut key = pem("PRIVATE KEY", chain.key().as_der());
    let certs: String = chain
        .certs()
        .iter()
        .map(|c| pem("CERTIFICATE", c.as_der()))
        .collect();
    let id = identity_from_pem(certs.as_bytes(), key.as_bytes());
    zeroize::Zeroize::zeroize(&mut key);
    id
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn secapi_calls_go_to_their_own_base_when_set() {
        let cfg = PayV2Config::new(
            "wx1",
            "1900000109",
            Secret::new("k".repeat(32)),
            SignType::Md5,
            BaseUrl::parse("https://api.mch.weixin.qq.com").unwrap(),
        );
        assert_eq!(
            cfg.url("/secapi/pay/refund"),
            "https://api.mch.weixin.qq.com/secapi/pay/refund"
        );
        let cfg = cfg.with_secapi_base(BaseUrl::parse("https://127.0.0.1:4443").unwrap());
        assert_eq!(
            cfg.url("/secapi/pay/refund"),
            "https://127.0.0.1:4443/secapi/pay/refund"
        );
        assert_eq!(
            cfg.url("/pay/orderquery"),
            "https://api.mch.weixin.qq.com/pay/orderquery"
        );
    }
}
