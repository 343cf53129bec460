//! The v3 signature (RSA-SHA256, PKCS#1 v1.5), and the page's `chooseWXPay` parameters signed with it.
//!
//! The merchant private key signs `METHOD\nPATH_WITH_QUERY\nTIMESTAMP\nNONCE\nBODY\n` (requests)
//! or `APPID\nTIMESTAMP\nNONCE\nprepay_id=…\n` (`wx.chooseWXPay`); WeChat's answers are verified over
//! `TIMESTAMP\nNONCE\nBODY\n`. Signing is always blinded (`sign_with_rng` with the OS CSPRNG), so the
//! private-key operation's timing does not depend on the key.
use std::fmt;

use base64::Engine as _;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{RandomizedSigner, SignatureEncoding, Verifier};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;

use wechat_js::ChooseWxPay;

use crate::config::ConfigError;
use crate::pay::PrepayId;

/// The v3 request message: `METHOD\nPATH_WITH_QUERY\nTIMESTAMP\nNONCE\nBODY\n` (BODY empty for GET).
pub fn v3_request_message(
    method: &str,
    path_with_query: &str,
    timestamp: &str,
    nonce: &str,
    body: &str,
) -> String {
    format!("{method}\n{path_with_query}\n{timestamp}\n{nonce}\n{body}\n")
}

/// The v3 answer / notification message: `TIMESTAMP\nNONCE\nBODY\n`, over the raw body bytes.
pub fn v3_response_message(timestamp: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(timestamp.len() + nonce.len() + body.len() + 3);
    m.extend_from_slice(timestamp.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(nonce.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(body);
    m.push(b'\n');
    m
}

/// The v3 `wx.chooseWXPay` / `getBrandWCPayRequest` message: `APPID\nTIMESTAMP\nNONCE\nprepay_id=…\n`.
pub fn v3_pay_message(appid: &str, timestamp: &str, nonce: &str, package: &str) -> String {
    format!("{appid}\n{timestamp}\n{nonce}\n{package}\n")
}

/// The merchant's API private key (`apiclient_key.pem`). `Debug` is redacted; the key is wiped on drop
/// (by `rsa`).
#[derive(Clone)]
pub struct MerchantKey {
    signer: SigningKey<Sha256>,
    public: RsaPublicKey,
}

impl fmt::Debug for MerchantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MerchantKey(RSA-{}, ***)", self.public.size() * 8)
    }
}

impl MerchantKey {
    /// Loads a PEM private key, PKCS#8 (`BEGIN PRIVATE KEY`, what WeChat issues) or PKCS#1
    /// (`BEGIN RSA PRIVATE KEY`). Keys shorter than 2048 bits are refused.
    pub fn from_pem(pem: &str) -> Result<Self, ConfigError> {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        let pem = pem.trim();
        let key = if pem.contains("BEGIN RSA PRIVATE KEY") {
            RsaPrivateKey::from_pkcs1_pem(pem).map_err(|e| bad_key("PKCS#1 RSA private key", e))?
        } else if pem.contains("BEGIN PRIVATE KEY") {
            RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| bad_key("PKCS#8 RSA private key", e))?
        } else if pem.contains("ENCRYPTED PRIVATE KEY") {
            return Err(ConfigError::InvalidKey {
                what: "merchant private key",
                reason: "encrypted PEM is not supported; decrypt it first".into(),
            });
        } else {
            return Err(ConfigError::InvalidKey {
                what: "merchant private key",
                reason: "expected a PEM 'PRIVATE KEY' or 'RSA PRIVATE KEY' block".into(),
            });
        };
        Self::from_key(key)
    }

    /// Reads [`MerchantKey::from_pem`] from a file.
    pub fn from_pem_file(path: impl AsRef<std::path::Path>) -> Result<Self, ConfigError> {
        let pem = std::fs::read_to_string(path.as_ref()).map_err(|e| ConfigError::InvalidKey {
            what: "merchant private key file",
            reason: format!("{}: {}", path.as_ref().display(), e.kind()),
        })?;
        Self::from_pem(&pem)
    }

    /// Wraps an already-parsed key.
    pub fn from_key(key: RsaPrivateKey) -> Result<Self, ConfigError> {
        if key.size() < 256 {
            return Err(ConfigError::InvalidKey {
                what: "merchant private key",
                reason: format!("{} bits; at least 2048 required", key.size() * 8),
            });
        }
        key.validate()
            .map_err(|e| bad_key("merchant private key", e))?;
        let public = key.to_public_key();
        Ok(Self {
            signer: SigningKey::<Sha256>::new(key),
            public,
        })
    }

    /// The matching public key.
    pub fn public_key(&self) -> &RsaPublicKey {
        &self.public
    }

    /// RSA-SHA256 (PKCS#1 v1.5) over `message`, blinded with the OS CSPRNG; raw signature bytes.
    /// CPU-bound (≈1 ms): call it from `spawn_blocking` on async paths.
    pub fn sign_raw(&self, message: &[u8]) -> Vec<u8> {
        self.signer
            .sign_with_rng(&mut rand::rngs::OsRng, message)
            .to_vec()
    }

    /// [`MerchantKey::sign_raw`], base64 (standard alphabet, padded), as WeChat wants it.
    pub fn sign_base64(&self, message: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.sign_raw(message))
    }
}

fn bad_key(what: &'static str, e: impl fmt::Display) -> ConfigError {
    ConfigError::InvalidKey {
        what,
        reason: e.to_string(),
    }
}

/// Verifies a base64 RSA-SHA256 (PKCS#1 v1.5) signature. Any decoding problem is simply `false`.
pub fn rsa_verify_base64(key: &RsaPublicKey, message: &[u8], signature_b64: &str) -> bool {
    let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(signature_b64.trim()) else {
        return false;
    };
    if sig.len() != key.size() {
        return false;
    }
    let Ok(sig) = Signature::try_from(sig.as_slice()) else {
        return false;
    };
    VerifyingKey::<Sha256>::new(key.clone())
        .verify(message, &sig)
        .is_ok()
}

/// The page's `chooseWXPay` parameters, signed with the merchant key over
/// `APPID\nTIMESTAMP\nNONCE\nprepay_id=…\n` (`signType: "RSA"`), with a fresh nonce and the current
/// time. One blinded RSA signature (≈1 ms).
pub fn choose_wx_pay(appid: &str, prepay_id: &PrepayId, key: &MerchantKey) -> ChooseWxPay {
    choose_wx_pay_with(
        appid,
        prepay_id,
        key,
        &crate::unix_now().to_string(),
        &crate::nonce(),
    )
}

/// [`choose_wx_pay`] with the given timestamp and nonce.
pub fn choose_wx_pay_with(
    appid: &str,
    prepay_id: &PrepayId,
    key: &MerchantKey,
    timestamp: &str,
    nonce: &str,
) -> ChooseWxPay {
    let package = prepay_id.package();
    let msg = v3_pay_message(appid, timestamp, nonce, &package);
    ChooseWxPay {
        app_id: appid.to_owned(),
        time_stamp: timestamp.to_owned(),
        nonce_str: nonce.to_owned(),
        package,
        sign_type: "RSA".to_owned(),
        pay_sign: key.sign_base64(msg.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_messages() {
        assert_eq!(
            v3_request_message(
                "GET",
                "/v3/certificates",
                "1554208460",
                "593BEC0C930BF1AFEB40B4A08C8FB242",
                ""
            ),
            "GET\n/v3/certificates\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"
        );
        assert_eq!(v3_response_message("1", "n", b"{}"), b"1\nn\n{}\n");
        assert_eq!(
            v3_pay_message("wx8888888888888888", "1414561699", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", "prepay_id=wx201410272009395522657a690389285100"),
            "wx8888888888888888\n1414561699\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\nprepay_id=wx201410272009395522657a690389285100\n"
        );
    }
}
