//! The APIv3 key and `AEAD_AES_256_GCM`, with which WeChat encrypts v3 notification resources and
//! platform certificates.
use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;

use crate::config::ConfigError;
use crate::secret::Secret;

/// The 32-byte APIv3 key (AES-256-GCM). Redacted in `Debug`, wiped on drop.
#[derive(Clone)]
pub struct ApiV3Key(Secret<[u8; 32]>);

impl fmt::Debug for ApiV3Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiV3Key(***)")
    }
}

impl ApiV3Key {
    /// From the 32-character key set in the merchant platform.
    pub fn new(key: &str) -> Result<Self, ConfigError> {
        let b = key.as_bytes();
        let arr: [u8; 32] = b.try_into().map_err(|_| ConfigError::InvalidKey {
            what: "APIv3 key",
            reason: format!("must be exactly 32 bytes, got {}", b.len()),
        })?;
        Ok(Self(Secret::new(arr)))
    }

    /// From raw bytes.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self(Secret::new(key))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.0.expose().into())
    }
}

/// AES-256-GCM decryption failed (wrong key, tampered ciphertext, bad nonce or encoding).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("AES-256-GCM decryption failed: {0}")]
pub struct DecryptError(pub &'static str);

/// Decrypts a WeChat `AEAD_AES_256_GCM` resource: base64 `ciphertext` (with the 16-byte tag at its
/// end), 12-byte `nonce`, `associated_data` as AAD.
pub fn decrypt_resource(
    key: &ApiV3Key,
    nonce: &str,
    associated_data: &str,
    ciphertext_b64: &str,
) -> Result<Vec<u8>, DecryptError> {
    if nonce.len() != 12 {
        return Err(DecryptError("nonce must be 12 bytes"));
    }
    let ct = base64::engine::general_purpose::STANDARD
        .decode(ciphertext_b64.trim())
        .map_err(|_| DecryptError("ciphertext is not base64"))?;
    if ct.len() < 16 {
        return Err(DecryptError("ciphertext shorter than the tag"));
    }
    key.cipher()
        .decrypt(
            Nonce::from_slice(nonce.as_bytes()),
            Payload {
                msg: &ct,
                aad: associated_data.as_bytes(),
            },
        )
        .map_err(|_| DecryptError("authentication failed"))
}

/// Encrypts like WeChat does (tests, and the sandbox that plays WeChat). Returns base64 ciphertext+tag.
pub fn encrypt_resource(
    key: &ApiV3Key,
    nonce: &str,
    associated_data: &str,
    plaintext: &[u8],
) -> Result<String, DecryptError> {
    if nonce.len() != 12 {
        return Err(DecryptError("nonce must be 12 bytes"));
    }
    let ct = key
        .cipher()
        .encrypt(
            Nonce::from_slice(nonce.as_bytes()),
            Payload {
                msg: plaintext,
                aad: associated_data.as_bytes(),
            },
        )
        .map_err(|_| DecryptError("encryption failed"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(ct))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aead_round_trip_and_refusals() {
        let key = ApiV3Key::new("0123456789abcdef0123456789abcdef").expect("key");
        let ct = encrypt_resource(&key, "abcdefghijkl", "transaction", b"{\"a\":1}").expect("enc");
        assert_eq!(
            decrypt_resource(&key, "abcdefghijkl", "transaction", &ct).expect("dec"),
            b"{\"a\":1}"
        );
        assert!(decrypt_resource(&key, "abcdefghijkl", "other-ad", &ct).is_err());
        assert!(decrypt_resource(&key, "abcdefghijkm", "transaction", &ct).is_err());
        assert!(decrypt_resource(&key, "short", "transaction", &ct).is_err());
        assert!(decrypt_resource(&key, "abcdefghijkl", "transaction", "%%%").is_err());
        assert!(decrypt_resource(&key, "abcdefghijkl", "transaction", "AAAA").is_err());
        let other = ApiV3Key::new("fedcba9876543210fedcba9876543210").expect("key");
        assert!(decrypt_resource(&other, "abcdefghijkl", "transaction", &ct).is_err());
        assert!(ApiV3Key::new("short").is_err());
        assert!(!format!("{key:?}").contains("0123"));
    }
}
