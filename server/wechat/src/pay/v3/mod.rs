//! WeChat Pay API v3 (JSON, RSA-SHA256 signatures, AES-256-GCM resources): JSAPI prepay, query, close,
//! refund, refund query, trade bill, certificate download, notifications, and the page's pay
//! parameters.
//!
//! * this module — the merchant's configuration ([`PayV3Config`]);
//! * [`sign`] — RSA-SHA256 with the merchant key ([`MerchantKey`]), the signed messages, and the
//!   page's `chooseWXPay` parameters;
//! * [`aead`] — the APIv3 key ([`ApiV3Key`]) and `AEAD_AES_256_GCM`;
//! * [`request`] — signed requests (`Authorization`);
//! * [`certs`] — platform certificates, WeChat Pay public keys, the [`Verifier`];
//! * [`notify`] — payment and refund notifications;
//! * [`PayV3Client`] — the calls.
//!
//! Built on the shared types of [`crate::pay`]; nothing here uses v2. Within v3 the files depend on
//! each other one way only: `sign`, `aead` ← `request` ← `certs` ← `notify` ← `client`.
//!
//! Every request carries
//! `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",timestamp="…",serial_no="…",signature="…"`
//! with the signature over `METHOD\nPATH_WITH_QUERY\nTIMESTAMP\nNONCE\nBODY\n`, where the path is the
//! one WeChat sees — the part after the configured base, starting with `/v3/`. The body is serialized
//! once and the very bytes signed are the bytes sent. Every answer's signature is verified over the raw
//! body bytes before anything is parsed; an answer without signature headers is refused.
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::config::BaseUrl;
use crate::http::DEFAULT_TIMEOUT;

pub mod aead;
pub mod certs;
mod client;
pub mod notify;
pub mod request;
pub mod sign;

pub use aead::ApiV3Key;
pub use certs::{CertDownloader, Verifier};
pub use client::{PayV3Client, PayV3Error};
pub use sign::MerchantKey;

/// Configuration of a v3 merchant.
#[derive(Clone)]
pub struct PayV3Config {
    /// The official account's appid.
    pub appid: String,
    /// Merchant id (`mchid`).
    pub mchid: String,
    /// Serial number of the merchant API certificate (`serial_no` in `Authorization`).
    pub merchant_serial: String,
    /// The merchant API private key.
    pub private_key: Arc<MerchantKey>,
    /// The APIv3 key (decrypts notifications and certificates).
    pub apiv3_key: ApiV3Key,
    /// Pay base (`https://api.mch.weixin.qq.com`, or the sandbox).
    pub base: BaseUrl,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl fmt::Debug for PayV3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PayV3Config")
            .field("appid", &self.appid)
            .field("mchid", &self.mchid)
            .field("merchant_serial", &self.merchant_serial)
            .field("private_key", &"***")
            .field("apiv3_key", &"***")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl PayV3Config {
    /// A configuration with the default timeout.
    pub fn new(
        appid: impl Into<String>,
        mchid: impl Into<String>,
        merchant_serial: impl Into<String>,
        private_key: MerchantKey,
        apiv3_key: ApiV3Key,
        base: BaseUrl,
    ) -> Self {
        Self {
            appid: appid.into(),
            mchid: mchid.into(),
            merchant_serial: merchant_serial.into(),
            private_key: Arc::new(private_key),
            apiv3_key,
            base,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}
