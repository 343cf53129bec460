//! WeChat Pay v3 trust: platform certificates, the "微信支付公钥", and the
//! [`Verifier`] that checks every answer and notification.
//!
//! The key that verifies a message is chosen by its `Wechatpay-Serial` header: `PUB_KEY_ID_…` selects a
//! configured WeChat Pay public key, anything else a platform certificate with that serial. Serials are
//! compared case-insensitively (and without leading zeros: Java and Go print certificate serials as
//! numbers). Both kinds work at once, as during a merchant's migration.
//!
//! Platform certificates come from `GET /v3/certificates`, decrypted with the APIv3 key (which
//! authenticates them: only WeChat and the merchant know that key). They are re-downloaded every
//! `refresh_every` (12 h by default) and when an unknown serial shows up, at most once per
//! `min_refresh_interval` (so forged serials cannot make us hammer WeChat).
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use http::{HeaderMap, Method, StatusCode};
use rsa::RsaPublicKey;
use tracing::{instrument, warn};
use x509_cert::der::{Decode, DecodePem, Encode};

use crate::config::{BaseUrl, ConfigError};
use crate::http::HttpError;
use crate::pay::notify::NotifyError;

use super::aead::{decrypt_resource, ApiV3Key, DecryptError};
use super::request::{send_signed, ErrorBody, RequestSigner};
use super::sign::{rsa_verify_base64, v3_response_message};
use super::PayV3Config;

/// Header carrying the answer's timestamp.
pub const HEADER_TIMESTAMP: &str = "Wechatpay-Timestamp";
/// Header carrying the answer's nonce.
pub const HEADER_NONCE: &str = "Wechatpay-Nonce";
/// Header carrying the base64 signature.
pub const HEADER_SIGNATURE: &str = "Wechatpay-Signature";
/// Header carrying the serial of the key that signed.
pub const HEADER_SERIAL: &str = "Wechatpay-Serial";
/// Optional header naming the signature scheme.
pub const HEADER_SIGNATURE_TYPE: &str = "Wechatpay-Signature-Type";
/// The only signature scheme WeChat Pay v3 uses.
pub const SIGNATURE_SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";
/// Largest accepted clock difference between WeChat's timestamp and ours.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// Serial normal form: uppercase; certificate serials also lose leading zeros (`PUB_KEY_ID_…` ids
/// are kept whole).
pub fn canonical_serial(serial: &str) -> String {
    let up = serial.trim().to_ascii_uppercase();
    if up.starts_with("PUB_KEY_ID_") {
        return up;
    }
    let t = up.trim_start_matches('0');
    if t.is_empty() {
        "0".to_owned()
    } else {
        t.to_owned()
    }
}

/// A WeChat Pay platform certificate: serial, public key, validity.
#[derive(Clone)]
pub struct PlatformCert {
    serial: String,
    public_key: RsaPublicKey,
    not_before: i64,
    not_after: i64,
}

impl fmt::Debug for PlatformCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformCert")
            .field("serial", &self.serial)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish()
    }
}

impl PlatformCert {
    /// Parses a PEM certificate.
    pub fn from_pem(pem: &str) -> Result<Self, ConfigError> {
        let c = x509_cert::Certificate::from_pem(pem.trim().as_bytes()).map_err(|e| {
            ConfigError::InvalidKey {
                what: "platform certificate",
                reason: e.to_string(),
            }
        })?;
        Self::from_cert(&c)
    }

    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, ConfigError> {
        let c = x509_cert::Certificate::from_der(der).map_err(|e| ConfigError::InvalidKey {
            what: "platform certificate",
            reason: e.to_string(),
        })?;
        Self::from_cert(&c)
    }

    fn from_cert(c: &x509_cert::Certificate) -> Result<Self, ConfigError> {
        use rsa::pkcs8::DecodePublicKey;
        let bad = |reason: String| ConfigError::InvalidKey {
            what: "platform certificate",
            reason,
        };
        let tbs = &c.tbs_certificate;
        let spki = tbs
            .subject_public_key_info
            .to_der()
            .map_err(|e| bad(e.to_string()))?;
        let public_key = RsaPublicKey::from_public_key_der(&spki)
            .map_err(|e| bad(format!("not an RSA key: {e}")))?;
        let serial = canonical_serial(&hex::encode_upper(tbs.serial_number.as_bytes()));
        let not_before = tbs.validity.not_before.to_unix_duration().as_secs() as i64;
        let not_after = tbs.validity.not_after.to_unix_duration().as_secs() as i64;
        Ok(Self {
            serial,
            public_key,
            not_before,
            not_after,
        })
    }

    /// Canonical serial (uppercase hex, no leading zeros).
    pub fn serial(&self) -> &str {
        &self.serial
    }
    /// The certificate's RSA public key.
    pub fn public_key(&self) -> &RsaPublicKey {
        &self.public_key
    }
    /// Expiry, Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }
    /// Whether `now` (Unix seconds) is inside the validity period.
    pub fn is_valid_at(&self, now: i64) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

/// Why a v3 answer or notification failed verification. Every case is a refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A `Wechatpay-*` header is absent (never treated as "skip verification").
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header is present but unusable.
    #[error("invalid header {0}")]
    BadHeader(&'static str),
    /// `Wechatpay-Timestamp` is more than 5 minutes from our clock (replay).
    #[error("timestamp {skew_secs}s away from local time")]
    StaleTimestamp {
        /// Difference in seconds (positive: WeChat's timestamp is in the future).
        skew_secs: i64,
    },
    /// No public key or certificate with this serial (after a rate-limited re-download).
    #[error("unknown signing key serial {0}")]
    UnknownSerial(String),
    /// The certificate with this serial has expired (or is not yet valid).
    #[error("platform certificate {0} is outside its validity period")]
    ExpiredCertificate(String),
    /// The signature does not verify (tampered body, forged or probe signature).
    #[error("bad signature")]
    BadSignature,
}

/// A refused signature is a refused notification, with the same reason.
impl From<VerifyError> for NotifyError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::MissingHeader(h) => Self::MissingHeader(h),
            VerifyError::BadHeader(h) => Self::BadHeader(h),
            VerifyError::StaleTimestamp { skew_secs } => Self::StaleTimestamp { skew_secs },
            VerifyError::UnknownSerial(s) => Self::UnknownSerial(s),
            VerifyError::ExpiredCertificate(s) => Self::ExpiredCertificate(s),
            VerifyError::BadSignature => Self::BadSignature,
        }
    }
}

/// Failures refreshing platform certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// No downloader configured (public-key mode only).
    #[error("certificate download is not configured")]
    NoDownloader,
    /// A download was attempted less than `min_refresh_interval` ago.
    #[error("certificate download rate-limited")]
    RateLimited,
    /// Transport failure.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// WeChat answered with an error.
    #[error("WeChat answered HTTP {status}: {code}")]
    Api {
        /// HTTP status.
        status: u16,
        /// WeChat's `code`.
        code: String,
    },
    /// The answer could not be understood.
    #[error("malformed certificate list: {0}")]
    Malformed(String),
    /// A certificate could not be decrypted with the APIv3 key.
    #[error(transparent)]
    Decrypt(#[from] DecryptError),
    /// The answer's own signature failed.
    #[error("certificate list answer: {0}")]
    Verify(#[from] VerifyError),
}

/// The headers of a signed v3 message.
#[derive(Debug, Clone)]
pub struct SignedHeaders<'a> {
    /// `Wechatpay-Timestamp`.
    pub timestamp: &'a str,
    /// `Wechatpay-Nonce`.
    pub nonce: &'a str,
    /// `Wechatpay-Signature`.
    pub signature: &'a str,
    /// `Wechatpay-Serial`.
    pub serial: &'a str,
}

impl<'a> SignedHeaders<'a> {
    /// Extracts the four headers; any absent or non-ASCII one is an error.
    pub fn from_headers(h: &'a HeaderMap) -> Result<Self, VerifyError> {
        fn get<'b>(h: &'b HeaderMap, name: &'static str) -> Result<&'b str, VerifyError> {
            let v = h.get(name).ok_or(VerifyError::MissingHeader(name))?;
            let s = v.to_str().map_err(|_| VerifyError::BadHeader(name))?.trim();
            if s.is_empty() {
                return Err(VerifyError::MissingHeader(name));
            }
            Ok(s)
        }
        if let Some(t) = h.get(HEADER_SIGNATURE_TYPE) {
            if t.to_str()
                .map(|s| s.trim() != SIGNATURE_SCHEME)
                .unwrap_or(true)
            {
                return Err(VerifyError::BadHeader(HEADER_SIGNATURE_TYPE));
            }
        }
        Ok(Self {
            timestamp: get(h, HEADER_TIMESTAMP)?,
            nonce: get(h, HEADER_NONCE)?,
            signature: get(h, HEADER_SIGNATURE)?,
            serial: get(h, HEADER_SERIAL)?,
        })
    }

    fn check_time(&self, now: i64, max_skew: Duration) -> Result<(), VerifyError> {
        if self.timestamp.len() > 12 || !self.timestamp.bytes().all(|b| b.is_ascii_digit()) {
            return Err(VerifyError::BadHeader(HEADER_TIMESTAMP));
        }
        let ts: i64 = self
            .timestamp
            .parse()
            .map_err(|_| VerifyError::BadHeader(HEADER_TIMESTAMP))?;
        let skew = ts - now;
        if skew.unsigned_abs() > max_skew.as_secs() {
            return Err(VerifyError::StaleTimestamp { skew_secs: skew });
        }
        Ok(())
    }
}

enum Lookup {
    Found(RsaPublicKey),
    Expired,
    Unknown,
}

#[derive(Default)]
struct RefreshState {
    last_attempt: Option<Instant>,
    last_success: Option<Instant>,
}

/// Verifies WeChat Pay v3 answers and notifications. Share one per merchant (`Arc<Verifier>`).
pub struct Verifier {
    public_keys: HashMap<String, RsaPublicKey>,
    certs: RwLock<HashMap<String, PlatformCert>>,
    downloader: Option<CertDownloader>,
    refresh: tokio::sync::Mutex<RefreshState>,
    refresh_every: Duration,
    min_refresh_interval: Duration,
    max_skew: Duration,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let certs: Vec<String> = self
            .certs
            .read()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("Verifier")
            .field("public_keys", &self.public_keys.keys().collect::<Vec<_>>())
            .field("certs", &certs)
            .field("downloads", &self.downloader.is_some())
            .finish()
    }
}

/// Builds a [`Verifier`].
#[derive(Default)]
pub struct VerifierBuilder {
    public_keys: HashMap<String, RsaPublicKey>,
    certs: HashMap<String, PlatformCert>,
    downloader: Option<CertDownloader>,
    refresh_every: Option<Duration>,
    min_refresh_interval: Option<Duration>,
    max_skew: Option<Duration>,
}

impl VerifierBuilder {
    /// Adds a "微信支付公钥" with its id (`PUB_KEY_ID_…`), PEM (SPKI or PKCS#1).
    pub fn wechatpay_public_key(mut self, key_id: &str, pem: &str) -> Result<Self, ConfigError> {
        let key = public_key_from_pem(pem)?;
        self.public_keys.insert(canonical_serial(key_id), key);
        Ok(self)
    }

    /// Adds a public key object under an id.
    pub fn public_key(mut self, key_id: &str, key: RsaPublicKey) -> Self {
        self.public_keys.insert(canonical_serial(key_id), key);
        self
    }

    /// Adds a platform certificate (PEM), e.g. one saved from an earlier download.
    pub fn platform_certificate_pem(mut self, pem: &str) -> Result<Self, ConfigError> {
        let c = PlatformCert::from_pem(pem)?;
        self.certs.insert(c.serial.clone(), c);
        Ok(self)
    }

    /// Downloads platform certificates from `GET /v3/certificates` as needed.
    pub fn downloader(mut self, d: CertDownloader) -> Self {
        self.downloader = Some(d);
        self
    }

    /// Periodic re-download interval (default 12 h).
    pub fn refresh_every(mut self, d: Duration) -> Self {
        self.refresh_every = Some(d);
        self
    }

    /// Smallest interval between two downloads (default 60 s).
    pub fn min_refresh_interval(mut self, d: Duration) -> Self {
        self.min_refresh_interval = Some(d);
        self
    }

    /// Timestamp window (default and maximum sensible: 5 minutes).
    pub fn max_clock_skew(mut self, d: Duration) -> Self {
        self.max_skew = Some(d);
        self
    }

    /// Builds the verifier.
    pub fn build(self) -> Verifier {
        Verifier {
            public_keys: self.public_keys,
            certs: RwLock::new(self.certs),
            downloader: self.downloader,
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
            refresh_every: self.refresh_every.unwrap_or(Duration::from_secs(12 * 3600)),
            min_refresh_interval: self.min_refresh_interval.unwrap_or(Duration::from_secs(60)),
            max_skew: self.max_skew.unwrap_or(MAX_CLOCK_SKEW),
        }
    }
}

impl Verifier {
    /// Starts a builder.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }

    /// The ids of the 微信支付公钥 this verifier holds (canonical form: `PUB_KEY_ID_…`).
    pub fn public_key_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.public_keys.keys().cloned().collect();
        v.sort();
        v
    }

    /// The platform certificates currently held: serial (canonical form) and the end of its
    /// validity (unix seconds), by serial.
    pub fn certificates(&self) -> Vec<(String, i64)> {
        let mut v: Vec<(String, i64)> = self
            .certs
            .read()
            .map(|m| {
                m.values()
                    .map(|c| (c.serial.clone(), c.not_after))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Serials of the platform certificates currently held (canonical form).
    pub fn certificate_serials(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .certs
            .read()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    fn lookup(&self, serial: &str, now: i64, extra: &[PlatformCert]) -> Lookup {
        let s = canonical_serial(serial);
        if let Some(k) = self.public_keys.get(&s) {
            return Lookup::Found(k.clone());
        }
        let from_extra = extra.iter().find(|c| c.serial == s).cloned();
        let cert = from_extra.or_else(|| self.certs.read().ok().and_then(|m| m.get(&s).cloned()));
        match cert {
            Some(c) if c.is_valid_at(now) => Lookup::Found(c.public_key),
            Some(_) => Lookup::Expired,
            None => Lookup::Unknown,
        }
    }

    fn verify_with(
        &self,
        h: &SignedHeaders<'_>,
        body: &[u8],
        now: i64,
        extra: &[PlatformCert],
    ) -> Result<(), VerifyError> {
        h.check_time(now, self.max_skew)?;
        let key = match self.lookup(h.serial, now, extra) {
            Lookup::Found(k) => k,
            Lookup::Expired => {
                return Err(VerifyError::ExpiredCertificate(canonical_serial(h.serial)))
            }
            Lookup::Unknown => return Err(VerifyError::UnknownSerial(short(h.serial))),
        };
        let msg = v3_response_message(h.timestamp, h.nonce, body);
        if rsa_verify_base64(&key, &msg, h.signature) {
            Ok(())
        } else {
            Err(VerifyError::BadSignature)
        }
    }

    /// Verifies with the keys already held, without any download (synchronous).
    pub fn verify_cached(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
        let h = SignedHeaders::from_headers(headers)?;
        self.verify_with(&h, body, crate::unix_now(), &[])
    }

    /// Verifies `Wechatpay-*` headers over the raw `body`. Refreshes certificates when due and, rate
    /// limited, when the serial is unknown.
    #[instrument(level = "debug", skip_all)]
    pub async fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
        let h = SignedHeaders::from_headers(headers)?;
        // Cheap checks before any network work: a stale replay never triggers a download.
        h.check_time(crate::unix_now(), self.max_skew)?;
        if self.downloader.is_some() {
            self.refresh_if_due().await;
        }
        match self.verify_with(&h, body, crate::unix_now(), &[]) {
            Err(VerifyError::UnknownSerial(_) | VerifyError::ExpiredCertificate(_))
                if self.downloader.is_some()
                    && !canonical_serial(h.serial).starts_with("PUB_KEY_ID_") =>
            {
                match self.refresh_rate_limited().await {
                    Ok(_) | Err(CertError::RateLimited) => {}
                    Err(e) => warn!(error = %e, "platform certificate download failed"),
                }
                self.verify_with(&h, body, crate::unix_now(), &[])
            }
            other => other,
        }
    }

    async fn refresh_if_due(&self) {
        let due = {
            let Ok(st) = self.refresh.try_lock() else {
                return; // someone is refreshing; use what we have
            };
            match st.last_success {
                Some(t) => t.elapsed() >= self.refresh_every,
                None => st
                    .last_attempt
                    .is_none_or(|t| t.elapsed() >= self.min_refresh_interval),
            }
        };
        if due {
            if let Err(e) = self.refresh_rate_limited().await {
                if !matches!(e, CertError::RateLimited) {
                    warn!(error = %e, "platform certificate refresh failed; keeping the current ones");
                }
            }
        }
    }

    async fn refresh_rate_limited(&self) -> Result<usize, CertError> {
        let mut st = self.refresh.lock().await;
        if let Some(t) = st.last_attempt {
            if t.elapsed() < self.min_refresh_interval {
                return Err(CertError::RateLimited);
            }
        }
        st.last_attempt = Some(Instant::now());
        let n = self.download_and_install().await?;
        st.last_success = Some(Instant::now());
        Ok(n)
    }

    /// Downloads the platform certificates now (ignoring the rate limit) and installs them.
    /// Returns how many valid certificates WeChat listed.
    pub async fn refresh(&self) -> Result<usize, CertError> {
        let mut st = self.refresh.lock().await;
        st.last_attempt = Some(Instant::now());
        let n = self.download_and_install().await?;
        st.last_success = Some(Instant::now());
        Ok(n)
    }

    async fn download_and_install(&self) -> Result<usize, CertError> {
        let dl = self.downloader.as_ref().ok_or(CertError::NoDownloader)?;
        let (headers, body) = dl.fetch().await?;
        let certs = parse_certificate_list(&body, dl.apiv3_key())?;
        // The answer is signed by one of the certificates it carries (first download) or by a key we
        // already trust.
        let h = SignedHeaders::from_headers(&headers)?;
        self.verify_with(&h, &body, crate::unix_now(), &certs)?;
        let now = crate::unix_now();
        let n = certs.len();
        if let Ok(mut map) = self.certs.write() {
            map.retain(|_, c| c.not_after >= now);
            for c in certs {
                map.insert(c.serial.clone(), c);
            }
        }
        Ok(n)
    }
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Parses and decrypts a `GET /v3/certificates` answer body.
pub fn parse_certificate_list(body: &[u8], key: &ApiV3Key) -> Result<Vec<PlatformCert>, CertError> {
    #[derive(serde::Deserialize)]
    struct List {
        data: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        serial_no: String,
        encrypt_certificate: Enc,
    }
    #[derive(serde::Deserialize)]
    struct Enc {
        algorithm: String,
        nonce: String,
        #[serde(default)]
        associated_data: String,
        ciphertext: String,
    }
    let list: List = serde_json::from_slice(body)
        .map_err(|e| CertError::Malformed(crate::http::json_error(&e)))?;
    let now = crate::unix_now();
    let mut out = Vec::with_capacity(list.data.len());
    for item in list.data {
        let e = item.encrypt_certificate;
        if e.algorithm != "AEAD_AES_256_GCM" {
            return Err(CertError::Malformed(format!(
                "unsupported algorithm {}",
                short(&e.algorithm)
            )));
        }
        let pem = decrypt_resource(key, &e.nonce, &e.associated_data, &e.ciphertext)?;
        let pem = String::from_utf8(pem)
            .map_err(|_| CertError::Malformed("certificate is not UTF-8".into()))?;
        let cert = PlatformCert::from_pem(&pem).map_err(|e| CertError::Malformed(e.to_string()))?;
        if cert.serial != canonical_serial(&item.serial_no) {
            return Err(CertError::Malformed(format!(
                "serial_no {} does not match the certificate's serial {}",
                short(&item.serial_no),
                cert.serial
            )));
        }
        if cert.not_after < now {
            continue;
        }
        out.push(cert);
    }
    Ok(out)
}

/// Convenience: a shareable verifier.
pub type SharedVerifier = Arc<Verifier>;

/// Loads an RSA public key from PEM: SPKI (`BEGIN PUBLIC KEY`, the "微信支付公钥"), PKCS#1
/// (`BEGIN RSA PUBLIC KEY`) or an X.509 certificate (`BEGIN CERTIFICATE`).
pub fn public_key_from_pem(pem: &str) -> Result<RsaPublicKey, ConfigError> {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;
    let pem = pem.trim();
    if pem.contains("BEGIN CERTIFICATE") {
        return PlatformCert::from_pem(pem).map(|c| c.public_key().clone());
    }
    if pem.contains("BEGIN RSA PUBLIC KEY") {
        return RsaPublicKey::from_pkcs1_pem(pem).map_err(|e| bad_public_key(&e));
    }
    RsaPublicKey::from_public_key_pem(pem).map_err(|e| bad_public_key(&e))
}

fn bad_public_key(e: &dyn fmt::Display) -> ConfigError {
    ConfigError::InvalidKey {
        what: "RSA public key",
        reason: e.to_string(),
    }
}

/// Downloads platform certificates (`GET /v3/certificates`) for a [`Verifier`].
#[derive(Clone)]
pub struct CertDownloader {
    signer: RequestSigner,
    apiv3_key: ApiV3Key,
    base: BaseUrl,
    http: reqwest::Client,
    timeout: Duration,
}

impl fmt::Debug for CertDownloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertDownloader({:?}, {})", self.signer, self.base)
    }
}

impl CertDownloader {
    /// A downloader using the merchant's credentials.
    pub fn new(cfg: &PayV3Config, http: reqwest::Client) -> Self {
        Self {
            signer: RequestSigner::new(
                cfg.mchid.clone(),
                cfg.merchant_serial.clone(),
                cfg.private_key.clone(),
            ),
            apiv3_key: cfg.apiv3_key.clone(),
            base: cfg.base.clone(),
            http,
            timeout: cfg.timeout,
        }
    }

    pub(crate) fn apiv3_key(&self) -> &ApiV3Key {
        &self.apiv3_key
    }

    #[instrument(level = "debug", skip_all)]
    pub(crate) async fn fetch(&self) -> Result<(HeaderMap, Vec<u8>), CertError> {
        let (status, headers, body) = send_signed(
            &self.http,
            &self.base,
            &self.signer,
            self.timeout,
            Method::GET,
            "/v3/certificates",
            None,
        )
        .await?;
        if status != StatusCode::OK {
            let code = serde_json::from_slice::<ErrorBody>(&body)
                .map(|e| e.code)
                .unwrap_or_default();
            return Err(CertError::Api {
                status: status.as_u16(),
                code: code.chars().take(64).collect(),
            });
        }
        Ok((headers, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_canonical() {
        assert_eq!(
            canonical_serial("5157f09efdc096de15ebe81a47057a7232f1b8e1"),
            "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
        );
        assert_eq!(canonical_serial("00AB"), "AB");
        assert_eq!(
            canonical_serial("pub_key_id_0114232134912410000000000000"),
            "PUB_KEY_ID_0114232134912410000000000000"
        );
    }

    #[test]
    fn headers_required() {
        let mut h = HeaderMap::new();
        assert_eq!(
            SignedHeaders::from_headers(&h).err(),
            Some(VerifyError::MissingHeader(HEADER_TIMESTAMP))
        );
        h.insert(HEADER_TIMESTAMP, "1".parse().expect("hv"));
        h.insert(HEADER_NONCE, "n".parse().expect("hv"));
        h.insert(HEADER_SERIAL, "s".parse().expect("hv"));
        assert_eq!(
            SignedHeaders::from_headers(&h).err(),
            Some(VerifyError::MissingHeader(HEADER_SIGNATURE))
        );
        h.insert(HEADER_SIGNATURE, "".parse().expect("hv"));
        assert_eq!(
            SignedHeaders::from_headers(&h).err(),
            Some(VerifyError::MissingHeader(HEADER_SIGNATURE))
        );
        h.insert(HEADER_SIGNATURE, "x".parse().expect("hv"));
        assert!(SignedHeaders::from_headers(&h).is_ok());
        h.insert(
            HEADER_SIGNATURE_TYPE,
            "WECHATPAY2-SHA256-RSA1024".parse().expect("hv"),
        );
        assert_eq!(
            SignedHeaders::from_headers(&h).err(),
            Some(VerifyError::BadHeader(HEADER_SIGNATURE_TYPE))
        );
    }
}
