//! Signatures: WeChat Pay v2 (MD5 / HMAC-SHA256 over sorted parameters) and v3 (RSA-SHA256,
//! PKCS#1 v1.5).
//!
//! v2: every non-empty parameter except `sign`, keys sorted by ASCII, `k=v` joined with `&`, then
//! `&key=API_KEY`; MD5 or HMAC-SHA256 (keyed with the API key) → UPPERCASE hex. Verification compares
//! in constant time.
//!
//! v3: the merchant private key signs `METHOD\nPATH_WITH_QUERY\nTIMESTAMP\nNONCE\nBODY\n` (requests)
//! or `APPID\nTIMESTAMP\nNONCE\nprepay_id=…\n` (`wx.chooseWXPay`); WeChat's answers are verified over
//! `TIMESTAMP\nNONCE\nBODY\n`. Signing is always blinded (`sign_with_rng` with the OS CSPRNG), so the
//! private-key operation's timing does not depend on the key.
use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use md5::{Digest as _, Md5};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{RandomizedSigner, SignatureEncoding, Verifier};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::ConfigError;

/// The v2 signature algorithm (`sign_type`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum SignType {
    /// `MD5` — WeChat's default.
    #[default]
    #[serde(rename = "MD5")]
    Md5,
    /// `HMAC-SHA256`.
    #[serde(rename = "HMAC-SHA256")]
    HmacSha256,
}

impl SignType {
    /// The wire name: `MD5` or `HMAC-SHA256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::HmacSha256 => "HMAC-SHA256",
        }
    }
}

impl fmt::Display for SignType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown `sign_type` name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sign type {0:?} (expected MD5 or HMAC-SHA256)")]
pub struct UnknownSignType(pub String);

impl std::str::FromStr for SignType {
    type Err = UnknownSignType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("MD5") {
            Ok(Self::Md5)
        } else if s.eq_ignore_ascii_case("HMAC-SHA256") {
            Ok(Self::HmacSha256)
        } else {
            Err(UnknownSignType(s.chars().take(40).collect()))
        }
    }
}

/// The v2 `stringA`: non-empty parameters except `sign`, sorted by key (ASCII / byte order), joined as
/// `k=v&k=v`, raw values (no URL encoding). The API key is **not** included.
pub fn v2_string_a<'a, I>(params: I) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut kv: Vec<(&str, &str)> = params
        .into_iter()
        .filter(|(k, v)| !v.is_empty() && *k != "sign")
        .collect();
    kv.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut s = String::with_capacity(kv.iter().map(|(k, v)| k.len() + v.len() + 2).sum::<usize>());
    for (i, (k, v)) in kv.iter().enumerate() {
        if i > 0 {
            s.push('&');
        }
        s.push_str(k);
        s.push('=');
        s.push_str(v);
    }
    s
}

/// Signs a v2 `stringA` (see [`v2_string_a`]) with the API key: `stringA&key=KEY` → UPPERCASE hex.
pub fn v2_sign_string_a(string_a: &str, key: &str, sign_type: SignType) -> String {
    let mut temp = String::with_capacity(string_a.len() + key.len() + 5);
    temp.push_str(string_a);
    temp.push_str("&key=");
    temp.push_str(key);
    let out = match sign_type {
        SignType::Md5 => hex::encode_upper(Md5::digest(temp.as_bytes())),
        SignType::HmacSha256 => {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
                .expect("HMAC accepts keys of any length");
            mac.update(temp.as_bytes());
            hex::encode_upper(mac.finalize().into_bytes())
        }
    };
    zeroize::Zeroize::zeroize(&mut temp);
    out
}

/// Signs v2 parameters: [`v2_string_a`] then [`v2_sign_string_a`].
pub fn v2_sign<'a, I>(params: I, key: &str, sign_type: SignType) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    v2_sign_string_a(&v2_string_a(params), key, sign_type)
}

/// Verifies the `sign` parameter of a v2 message (answer or notification) in constant time.
/// A missing or empty `sign` fails.
pub fn v2_verify<'a, I>(params: I, key: &str, sign_type: SignType) -> bool
where
    I: IntoIterator<Item = (&'a str, &'a str)> + Clone,
{
    let Some(given) = params
        .clone()
        .into_iter()
        .find(|(k, _)| *k == "sign")
        .map(|(_, v)| v)
    else {
        return false;
    };
    if given.is_empty() {
        return false;
    }
    let expected = v2_sign(params, key, sign_type);
    let given = given.to_ascii_uppercase();
    expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

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

/// Loads an RSA public key from PEM: SPKI (`BEGIN PUBLIC KEY`, the "微信支付公钥"), PKCS#1
/// (`BEGIN RSA PUBLIC KEY`) or an X.509 certificate (`BEGIN CERTIFICATE`).
pub fn public_key_from_pem(pem: &str) -> Result<RsaPublicKey, ConfigError> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;
    let pem = pem.trim();
    if pem.contains("BEGIN CERTIFICATE") {
        return crate::certs::PlatformCert::from_pem(pem).map(|c| c.public_key().clone());
    }
    if pem.contains("BEGIN RSA PUBLIC KEY") {
        return RsaPublicKey::from_pkcs1_pem(pem).map_err(|e| bad_key("RSA public key", e));
    }
    RsaPublicKey::from_public_key_pem(pem).map_err(|e| bad_key("RSA public key", e))
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

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "192006250b4c09247ec02edce69f6a2d";
    const VECTOR: [(&str, &str); 5] = [
        ("appid", "wxd930ea5d5a258f4f"),
        ("mch_id", "10000100"),
        ("device_info", "1000"),
        ("body", "test"),
        ("nonce_str", "ibuaiVcKdpRxkhJA"),
    ];

    #[test]
    fn official_v2_md5_vector() {
        assert_eq!(
            v2_string_a(VECTOR),
            "appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA"
        );
        assert_eq!(
            v2_sign(VECTOR, KEY, SignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
    }

    #[test]
    fn official_v2_hmac_vector() {
        assert_eq!(
            v2_sign(VECTOR, KEY, SignType::HmacSha256),
            "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
        );
    }

    #[test]
    fn empty_values_and_sign_are_skipped() {
        let mut with_extra: Vec<(&str, &str)> = VECTOR.to_vec();
        with_extra.push(("attach", ""));
        with_extra.push(("sign", "WHATEVER"));
        assert_eq!(v2_string_a(with_extra.iter().copied()), v2_string_a(VECTOR));
        assert_eq!(
            v2_sign(with_extra.iter().copied(), KEY, SignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
    }

    #[test]
    fn ascii_order_not_alphabetical() {
        // Uppercase sorts before lowercase, '_' (0x5F) before lowercase letters.
        let s = v2_string_a([
            ("b", "1"),
            ("B", "2"),
            ("a_b", "3"),
            ("ab", "4"),
            ("a", "5"),
        ]);
        assert_eq!(s, "B=2&a=5&a_b=3&ab=4&b=1");
    }

    #[test]
    fn non_ascii_values_are_signed_raw_utf8() {
        let p = [("body", "腾讯充值中心-QQ会员充值"), ("appid", "wx1")];
        assert_eq!(v2_string_a(p), "appid=wx1&body=腾讯充值中心-QQ会员充值");
        // Independent computation: MD5 over the UTF-8 bytes.
        let expected = hex::encode_upper(Md5::digest(
            "appid=wx1&body=腾讯充值中心-QQ会员充值&key=k".as_bytes(),
        ));
        assert_eq!(v2_sign(p, "k", SignType::Md5), expected);
    }

    #[test]
    fn verify_accepts_good_refuses_bad() {
        let mut p: Vec<(&str, &str)> = VECTOR.to_vec();
        p.push(("sign", "9A0A8659F005D6984697E2CA0A9CF3B7"));
        assert!(v2_verify(p.iter().copied(), KEY, SignType::Md5));
        // lowercase hex from a lenient peer is still the same signature
        let mut lower = VECTOR.to_vec();
        lower.push(("sign", "9a0a8659f005d6984697e2ca0a9cf3b7"));
        assert!(v2_verify(lower.iter().copied(), KEY, SignType::Md5));
        assert!(!v2_verify(p.iter().copied(), "wrongkey", SignType::Md5));
        assert!(!v2_verify(p.iter().copied(), KEY, SignType::HmacSha256));
        let mut tampered = p.clone();
        tampered[3] = ("body", "test2");
        assert!(!v2_verify(tampered.iter().copied(), KEY, SignType::Md5));
        assert!(
            !v2_verify(VECTOR.iter().copied(), KEY, SignType::Md5),
            "missing sign"
        );
        let mut empty = VECTOR.to_vec();
        empty.push(("sign", ""));
        assert!(
            !v2_verify(empty.iter().copied(), KEY, SignType::Md5),
            "empty sign"
        );
    }

    #[test]
    fn sign_type_parses() {
        assert_eq!("md5".parse::<SignType>(), Ok(SignType::Md5));
        assert_eq!("HMAC-SHA256".parse::<SignType>(), Ok(SignType::HmacSha256));
        assert!("SHA1".parse::<SignType>().is_err());
    }

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
