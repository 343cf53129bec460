//! The sandbox's own implementations of WeChat's signature and encryption schemes.
//!
//! Deliberately independent of the shop's `wechat` crate: if both sides shared code, a
//! consistent-but-wrong implementation would pass here and fail at WeChat.

use std::collections::BTreeMap;

use aes::cipher::generic_array::GenericArray;
use aes::cipher::BlockEncrypt;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use md5::{Digest as _, Md5};
use rand::Rng;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha1::Sha1;
use sha2::Sha256;

/// Pay v2 signature algorithms (`sign_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum V2SignType {
    /// `MD5` (the default when `sign_type` is absent).
    #[serde(rename = "MD5")]
    Md5,
    /// `HMAC-SHA256`.
    #[serde(rename = "HMAC-SHA256")]
    HmacSha256,
}

impl V2SignType {
    /// Parses a `sign_type` / `signType` value exactly as WeChat spells it.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "MD5" => Some(Self::Md5),
            "HMAC-SHA256" => Some(Self::HmacSha256),
            _ => None,
        }
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::HmacSha256 => "HMAC-SHA256",
        }
    }
}

/// `k1=v1&k2=v2…&key=KEY` over the non-empty parameters except `sign`, keys in ASCII order.
pub(crate) fn v2_string_to_sign(params: &BTreeMap<String, String>, key: &str) -> String {
    let mut s = String::new();
    for (k, v) in params {
        if k == "sign" || v.is_empty() {
            continue;
        }
        s.push_str(k);
        s.push('=');
        s.push_str(v);
        s.push('&');
    }
    s.push_str("key=");
    s.push_str(key);
    s
}

/// Pay v2 signature: uppercase hex MD5 / HMAC-SHA256 (keyed with the API key).
pub(crate) fn v2_sign(params: &BTreeMap<String, String>, key: &str, ty: V2SignType) -> String {
    let s = v2_string_to_sign(params, key);
    match ty {
        V2SignType::Md5 => hex::encode_upper(Md5::digest(s.as_bytes())),
        V2SignType::HmacSha256 => {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
                .expect("HMAC accepts any key");
            mac.update(s.as_bytes());
            hex::encode_upper(mac.finalize().into_bytes())
        }
    }
}

/// JS-SDK `wx.config` signature: lowercase hex SHA-1 of
/// `jsapi_ticket=T&noncestr=N&timestamp=TS&url=U`.
pub(crate) fn jsapi_signature(ticket: &str, noncestr: &str, timestamp: &str, url: &str) -> String {
    let s = format!("jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}");
    hex::encode(Sha1::digest(s.as_bytes()))
}

/// Base64 RSA-SHA256 (PKCS#1 v1.5) signature.
pub(crate) fn rsa_sign(key: &RsaPrivateKey, msg: &[u8]) -> String {
    let signer = SigningKey::<Sha256>::new(key.clone());
    B64.encode(signer.sign(msg).to_bytes())
}

/// Verifies a base64 RSA-SHA256 (PKCS#1 v1.5) signature.
pub(crate) fn rsa_verify(key: &RsaPublicKey, msg: &[u8], sig_b64: &str) -> bool {
    let Ok(raw) = B64.decode(sig_b64.trim()) else {
        return false;
    };
    let Ok(sig) = Signature::try_from(raw.as_slice()) else {
        return false;
    };
    VerifyingKey::<Sha256>::new(key.clone())
        .verify(msg, &sig)
        .is_ok()
}

/// AEAD_AES_256_GCM as WeChat Pay uses it: base64(ciphertext || tag).
pub(crate) fn aes_gcm_encrypt(key: &[u8], nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> String {
    let cipher = Aes256Gcm::new_from_slice(key).expect("APIv3 key is 32 bytes");
    let ct = cipher
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("AES-GCM encryption cannot fail");
    B64.encode(ct)
}

/// The AES-256 key of v2 refund notifications: the 32 ASCII bytes of the lowercase hex MD5 of
/// the v2 API key.
pub(crate) fn v2_refund_key(pay_key_v2: &str) -> [u8; 32] {
    let hex = hex::encode(Md5::digest(pay_key_v2.as_bytes()));
    let mut k = [0u8; 32];
    k.copy_from_slice(hex.as_bytes());
    k
}

/// AES-256-ECB with PKCS#7 padding, base64 (a v2 refund notification's `req_info`).
pub(crate) fn aes_ecb_encrypt_b64(key: &[u8; 32], plaintext: &[u8]) -> String {
    let cipher = aes::Aes256::new(GenericArray::from_slice(key));
    let pad = 16 - plaintext.len() % 16;
    let mut data = plaintext.to_vec();
    data.extend(std::iter::repeat_n(pad as u8, pad));
    for block in data.chunks_exact_mut(16) {
        cipher.encrypt_block(GenericArray::from_mut_slice(block));
    }
    B64.encode(data)
}

/// Random string over `[0-9A-Za-z]`.
pub(crate) fn random_alnum(n: usize) -> String {
    const CHARS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// Random uppercase hex string of `n` characters.
pub(crate) fn random_hex_upper(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| b"0123456789ABCDEF"[rng.gen_range(0..16)] as char)
        .collect()
}

/// Random decimal digits.
pub(crate) fn random_digits(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| (b'0' + rng.gen_range(0..10u8)) as char)
        .collect()
}

/// Constant-time-ish string equality (length leaks, which is fine here).
pub(crate) fn ct_eq(a: &str, b: &str) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.bytes()
        .zip(b.bytes())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector_params() -> BTreeMap<String, String> {
        [
            ("appid", "wxd930ea5d5a258f4f"),
            ("mch_id", "10000100"),
            ("device_info", "1000"),
            ("body", "test"),
            ("nonce_str", "ibuaiVcKdpRxkhJA"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn v2_official_vectors() {
        let key = "192006250b4c09247ec02edce69f6a2d";
        let mut p = vector_params();
        assert_eq!(
            v2_sign(&p, key, V2SignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
        assert_eq!(
            v2_sign(&p, key, V2SignType::HmacSha256),
            "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
        );
        // Empty values and `sign` itself are not signed.
        p.insert("sign".into(), "whatever".into());
        p.insert("attach".into(), String::new());
        assert_eq!(
            v2_sign(&p, key, V2SignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
        // One byte changed → different signature.
        p.insert("body".into(), "tesT".into());
        assert_ne!(
            v2_sign(&p, key, V2SignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
    }

    #[test]
    fn aes_256_ecb_known_answer() {
        // FIPS-197 appendix C.3 (AES-256), one block, then PKCS#7 adds a full padding block.
        let key: [u8; 32] =
            hex::decode("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
                .unwrap()
                .try_into()
                .unwrap();
        let pt = hex::decode("00112233445566778899aabbccddeeff").unwrap();
        let ct = B64.decode(aes_ecb_encrypt_b64(&key, &pt)).unwrap();
        assert_eq!(ct.len(), 32);
        assert_eq!(hex::encode(&ct[..16]), "8ea2b7ca516745bfeafc49904b496089");
        assert_eq!(
            std::str::from_utf8(&v2_refund_key("192006250b4c09247ec02edce69f6a2d")).unwrap(),
            hex::encode(Md5::digest(b"192006250b4c09247ec02edce69f6a2d"))
        );
    }

    #[test]
    fn jsapi_official_vector() {
        let t = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg";
        assert_eq!(
            jsapi_signature(
                t,
                "Wm3WZYTPz0wzccnW",
                "1414587457",
                "http://mp.weixin.qq.com?params=value"
            ),
            "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
        );
        assert_ne!(
            jsapi_signature(
                t,
                "Wm3WZYTPz0wzccnW",
                "1414587458",
                "http://mp.weixin.qq.com?params=value"
            ),
            "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
        );
    }
}
