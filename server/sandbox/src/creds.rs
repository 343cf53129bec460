//! Credentials shared by the shop (merchant side) and the sandbox ("WeChat" side).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::EncodePem;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;

use crate::SandboxError;

/// Everything both sides need: the official account (appid/secret), the merchant
/// (mchid, v2 key, APIv3 key, merchant RSA key pair + serial) and "WeChat Pay"'s own keys
/// (WeChat Pay public key + `PUB_KEY_ID_…`, platform certificate + serial).
///
/// The shop uses every field except the two marked *sandbox side only*.
/// `Serialize`/`Deserialize` let a dev server persist the credentials across restarts.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SandboxCredentials {
    /// Official-account AppID, `wx` + 16 hex digits.
    pub appid: String,
    /// AppSecret (32 hex digits).
    pub appsecret: String,
    /// Merchant id (10 digits).
    pub mchid: String,
    /// Merchant display name shown on the pay sheet.
    pub merchant_name: String,
    /// Pay v2 API key (32 characters) for MD5 / HMAC-SHA256 signatures.
    pub pay_key_v2: String,
    /// APIv3 key (32 ASCII bytes) for AEAD_AES_256_GCM.
    pub apiv3_key: String,
    /// Merchant private key (PKCS#8 PEM): signs v3 requests and v3 `paySign`.
    pub merchant_private_key_pem: String,
    /// Merchant public key (SPKI PEM), what "WeChat" verifies with.
    pub merchant_public_key_pem: String,
    /// Merchant API certificate serial number (40 uppercase hex digits).
    pub merchant_serial: String,
    /// `PUB_KEY_ID_…`: `Wechatpay-Serial` of answers signed with the WeChat Pay public key.
    pub wechatpay_public_key_id: String,
    /// WeChat Pay public key (SPKI PEM).
    pub wechatpay_public_key_pem: String,
    /// Platform certificate serial (40 uppercase hex digits).
    pub platform_serial: String,
    /// Platform certificate (PEM), also downloadable from `GET /v3/certificates`.
    pub platform_certificate_pem: String,
    /// Official-account server Token (服务器配置), 32 characters.
    #[serde(default)]
    pub mp_token: String,
    /// Official-account EncodingAESKey (43 characters of base64): the sandbox pushes in safe mode.
    #[serde(default)]
    pub mp_encoding_aes_key: String,
    /// The official account's original id (`gh_` + 12 hex digits), `ToUserName` of its pushes.
    #[serde(default)]
    pub mp_original_id: String,
    /// *Sandbox side only*: the private half of the WeChat Pay public key.
    pub wechatpay_private_key_pem: String,
    /// *Sandbox side only*: the private key of the platform certificate.
    pub platform_private_key_pem: String,
}

impl fmt::Debug for SandboxCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxCredentials")
            .field("appid", &self.appid)
            .field("appsecret", &"<redacted>")
            .field("mchid", &self.mchid)
            .field("merchant_name", &self.merchant_name)
            .field("pay_key_v2", &"<redacted>")
            .field("apiv3_key", &"<redacted>")
            .field("merchant_serial", &self.merchant_serial)
            .field("wechatpay_public_key_id", &self.wechatpay_public_key_id)
            .field("platform_serial", &self.platform_serial)
            .finish_non_exhaustive()
    }
}

const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn pick(rng: &mut StdRng, chars: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| chars[rng.gen_range(0..chars.len())] as char)
        .collect()
}

fn private_pem(key: &RsaPrivateKey) -> Result<String, SandboxError> {
    Ok(key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| SandboxError::Key(e.to_string()))?
        .to_string())
}

fn public_pem(key: &RsaPublicKey) -> Result<String, SandboxError> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|e| SandboxError::Key(e.to_string()))
}

pub(crate) fn parse_private(pem: &str) -> Result<RsaPrivateKey, SandboxError> {
    RsaPrivateKey::from_pkcs8_pem(pem.trim())
        .or_else(|_| {
            use rsa::pkcs1::DecodeRsaPrivateKey;
            RsaPrivateKey::from_pkcs1_pem(pem.trim())
        })
        .map_err(|e| SandboxError::Key(format!("bad RSA private key PEM: {e}")))
}

impl SandboxCredentials {
    /// Fresh random credentials (three RSA-2048 keys: takes a moment in debug builds).
    pub fn generate() -> Self {
        Self::from_seed(rand::rngs::OsRng.next_u64())
    }

    /// Deterministic credentials: the same seed always gives the same ids, keys and serials
    /// (the platform certificate's validity starts "now").
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let ids = Ids::draw(&mut rng);
        let mut gen = || RsaPrivateKey::new(&mut rng, 2048).expect("RSA-2048 key generation");
        let merchant = gen();
        let wechatpay = gen();
        let platform = gen();
        Self::assemble(ids, &merchant, &wechatpay, &platform).expect("fresh keys encode")
    }

    /// Deterministic ids from `seed`, with fixed keys (fast: no key generation). Each PEM is
    /// PKCS#8 or PKCS#1; the three keys should differ.
    pub fn from_seed_with_keys(
        seed: u64,
        merchant_private_key_pem: &str,
        wechatpay_private_key_pem: &str,
        platform_private_key_pem: &str,
    ) -> Result<Self, SandboxError> {
        let mut rng = StdRng::seed_from_u64(seed);
        let ids = Ids::draw(&mut rng);
        Self::assemble(
            ids,
            &parse_private(merchant_private_key_pem)?,
            &parse_private(wechatpay_private_key_pem)?,
            &parse_private(platform_private_key_pem)?,
        )
    }

    /// The same credentials with the platform certificate issued again — same key, same
    /// serial — valid from now for `validity` instead of [`PLATFORM_CERTIFICATE_VALIDITY`]: a
    /// certificate about to run out, as merchants meet it. A sandbox built with them serves it
    /// from `GET /v3/certificates` as any other (`effective_time` and `expire_time` are the
    /// certificate's own).
    pub fn with_platform_certificate_validity(
        mut self,
        validity: Duration,
    ) -> Result<Self, SandboxError> {
        let key = parse_private(&self.platform_private_key_pem)?;
        self.platform_certificate_pem = make_certificate(&key, &self.platform_serial, validity)?;
        Ok(self)
    }

    fn assemble(
        ids: Ids,
        merchant: &RsaPrivateKey,
        wechatpay: &RsaPrivateKey,
        platform: &RsaPrivateKey,
    ) -> Result<Self, SandboxError> {
        let platform_certificate_pem = make_certificate(
            platform,
            &ids.platform_serial,
            PLATFORM_CERTIFICATE_VALIDITY,
        )?;
        // Derived from the appsecret (no further draws: the keys of a seed stay what they were).
        let mp = {
            use sha2::Digest;
            sha2::Sha256::digest(format!("mp:{}", ids.appsecret).as_bytes())
        };
        let mp2 = {
            use sha2::Digest;
            sha2::Sha256::digest(format!("mp-aes:{}", ids.appsecret).as_bytes())
        };
        let mp_token = hex::encode(&mp[..16]);
        let mp_original_id = format!("gh_{}", &hex::encode(&mp[16..22]));
        let mp_encoding_aes_key = {
            use base64::Engine as _;
            let s = base64::engine::general_purpose::STANDARD.encode(&mp2[..32]);
            s.trim_end_matches('=').to_string()
        };
        Ok(Self {
            mp_token,
            mp_encoding_aes_key,
            mp_original_id,
            appid: ids.appid,
            appsecret: ids.appsecret,
            mchid: ids.mchid,
            merchant_name: "wxmall 演示商户".to_string(),
            pay_key_v2: ids.pay_key_v2,
            apiv3_key: ids.apiv3_key,
            merchant_private_key_pem: private_pem(merchant)?,
            merchant_public_key_pem: public_pem(&merchant.to_public_key())?,
            merchant_serial: ids.merchant_serial,
            wechatpay_public_key_id: ids.wechatpay_public_key_id,
            wechatpay_public_key_pem: public_pem(&wechatpay.to_public_key())?,
            platform_serial: ids.platform_serial,
            platform_certificate_pem,
            wechatpay_private_key_pem: private_pem(wechatpay)?,
            platform_private_key_pem: private_pem(platform)?,
        })
    }
}

struct Ids {
    appid: String,
    appsecret: String,
    mchid: String,
    pay_key_v2: String,
    apiv3_key: String,
    merchant_serial: String,
    wechatpay_public_key_id: String,
    platform_serial: String,
}

impl Ids {
    fn draw(rng: &mut StdRng) -> Self {
        let mchid = format!("19{}", pick(rng, b"0123456789", 8));
        Self {
            appid: format!("wx{}", pick(rng, b"0123456789abcdef", 16)),
            appsecret: pick(rng, b"0123456789abcdef", 32),
            pay_key_v2: pick(rng, ALNUM, 32),
            apiv3_key: pick(rng, ALNUM, 32),
            merchant_serial: pick(rng, b"0123456789ABCDEF", 40),
            wechatpay_public_key_id: format!(
                "PUB_KEY_ID_01{}{}",
                mchid,
                pick(rng, b"0123456789", 16)
            ),
            // First digit below 8 so the DER INTEGER is positive without padding.
            platform_serial: format!(
                "{}{}",
                pick(rng, b"1234567", 1),
                pick(rng, b"0123456789ABCDEF", 39)
            ),
            mchid,
        }
    }
}

/// How long the platform certificate of new credentials is valid, from the moment they are made
/// (five years; [`SandboxCredentials::with_platform_certificate_validity`] chooses another).
pub const PLATFORM_CERTIFICATE_VALIDITY: Duration = Duration::from_secs(5 * 365 * 86_400);

fn make_certificate(
    key: &RsaPrivateKey,
    serial_hex: &str,
    validity: Duration,
) -> Result<String, SandboxError> {
    let err = |e: &dyn fmt::Display| SandboxError::Certificate(e.to_string());
    let serial = hex::decode(serial_hex).map_err(|e| err(&e))?;
    let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone());
    let spki = SubjectPublicKeyInfoOwned::from_key(key.to_public_key()).map_err(|e| err(&e))?;
    let subject = Name::from_str(
        "CN=Tenpay.com Sandbox Platform,OU=Tenpay.com CA Center,O=Tenpay.com,L=Shenzhen,ST=Guangdong,C=CN",
    )
    .map_err(|e| err(&e))?;
    let validity = Validity::from_now(validity).map_err(|e| err(&e))?;
    let builder = CertificateBuilder::new(
        Profile::Root,
        SerialNumber::new(&serial).map_err(|e| err(&e))?,
        validity,
        subject,
        spki,
        &signer,
    )
    .map_err(|e| err(&e))?;
    let cert = builder
        .build::<rsa::pkcs1v15::Signature>()
        .map_err(|e| err(&e))?;
    cert.to_pem(LineEnding::LF).map_err(|e| err(&e))
}
