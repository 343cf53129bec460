//! Test helpers. Signatures here are computed independently of the sandbox's own code.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;
use wechat_sandbox::{Sandbox, SandboxCredentials, SandboxOptions};

pub fn creds() -> SandboxCredentials {
    static C: OnceLock<SandboxCredentials> = OnceLock::new();
    C.get_or_init(|| SandboxCredentials::from_seed(20240601))
        .clone()
}

/// Fast retries for tests.
pub fn fast_options() -> SandboxOptions {
    SandboxOptions {
        notify_retry_delays: vec![std::time::Duration::from_millis(100); 4],
        notify_duplicate_after: Some(std::time::Duration::from_millis(150)),
        notify_timeout: std::time::Duration::from_secs(3),
        ..SandboxOptions::default()
    }
}

pub struct Running {
    pub sandbox: Sandbox,
    /// e.g. `http://127.0.0.1:1234`
    pub origin: String,
    /// `{origin}/sandbox`
    pub base: String,
    pub http: reqwest::Client,
    /// The mutual-TLS listener for `/secapi/…` (`https://127.0.0.1:<port>`).
    pub secapi: String,
    /// A client presenting the merchant's API certificate and trusting the sandbox CA.
    pub mtls: reqwest::Client,
}

impl Running {
    /// Where a Pay v2 path is called, and with which client: `/secapi/…` over mutual TLS on the
    /// secapi listener with the merchant certificate, the rest over plain HTTP.
    pub fn v2_target(&self, path: &str) -> (&reqwest::Client, String) {
        if path.starts_with("/secapi/") {
            (&self.mtls, format!("{}{path}", self.secapi))
        } else {
            (&self.http, format!("{}/pay{path}", self.base))
        }
    }
}

/// A client for the secapi listener: trusts the sandbox CA, presents `identity` if any.
pub fn secapi_client(sandbox: &Sandbox, identity: Option<(&str, &str)>) -> reqwest::Client {
    let ca =
        reqwest::Certificate::from_pem(sandbox.ca_certificate_pem().unwrap().as_bytes()).unwrap();
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca);
    if let Some((cert, key)) = identity {
        b = b.identity(reqwest::Identity::from_pem(format!("{key}\n{cert}").as_bytes()).unwrap());
    }
    b.build().unwrap()
}

pub async fn start() -> Running {
    start_with(fast_options()).await
}

pub async fn start_with(opts: SandboxOptions) -> Running {
    start_with_credentials(creds(), opts).await
}

/// A sandbox with other credentials than [`creds`] (the same merchant key, so the helpers'
/// signatures still hold).
pub async fn start_with_credentials(c: SandboxCredentials, opts: SandboxOptions) -> Running {
    let sandbox = Sandbox::with_options(c, opts).unwrap();
    let app = Router::new().nest("/sandbox", wechat_sandbox::router(sandbox.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let origin = format!("http://{addr}");
    let secapi = wechat_sandbox::serve_secapi(
        sandbox.clone(),
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
    let cert = sandbox.merchant_certificate_pem().unwrap();
    let mtls = secapi_client(&sandbox, Some((&cert, &creds().merchant_private_key_pem)));
    Running {
        secapi: secapi.base,
        mtls,
        sandbox,
        base: format!("{origin}/sandbox"),
        origin,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

// ---------- independent signature code ----------

pub fn v2_sign_md5(params: &BTreeMap<String, String>, key: &str) -> String {
    let s = v2_string(params, key);
    hex::encode_upper(Md5::digest(s.as_bytes()))
}

pub fn v2_sign_hmac(params: &BTreeMap<String, String>, key: &str) -> String {
    let s = v2_string(params, key);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(s.as_bytes());
    hex::encode_upper(mac.finalize().into_bytes())
}

fn v2_string(params: &BTreeMap<String, String>, key: &str) -> String {
    let mut parts: Vec<String> = params
        .iter()
        .filter(|(k, v)| k.as_str() != "sign" && !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    parts.push(format!("key={key}"));
    parts.join("&")
}

pub fn jsapi_sha1(ticket: &str, nonce: &str, ts: &str, url: &str) -> String {
    use sha1::Digest as _;
    let s = format!("jsapi_ticket={ticket}&noncestr={nonce}&timestamp={ts}&url={url}");
    hex::encode(sha1::Sha1::digest(s.as_bytes()))
}

pub fn merchant_key() -> RsaPrivateKey {
    RsaPrivateKey::from_pkcs8_pem(&creds().merchant_private_key_pem).unwrap()
}

pub fn rsa_sign_b64(key: &RsaPrivateKey, msg: &str) -> String {
    B64.encode(
        SigningKey::<Sha256>::new(key.clone())
            .sign(msg.as_bytes())
            .to_bytes(),
    )
}

pub fn rsa_verify_b64(pem: &str, msg: &[u8], sig: &str) -> bool {
    let key = RsaPublicKey::from_public_key_pem(pem).unwrap();
    let Ok(raw) = B64.decode(sig) else {
        return false;
    };
    let Ok(sig) = Signature::try_from(raw.as_slice()) else {
        return false;
    };
    VerifyingKey::<Sha256>::new(key).verify(msg, &sig).is_ok()
}

/// Public key PEM of the platform certificate (parsed independently of the sandbox).
pub fn platform_cert_public_pem() -> String {
    use rsa::pkcs8::EncodePublicKey;
    use x509_cert::der::{DecodePem, Encode};
    let cert =
        x509_cert::Certificate::from_pem(creds().platform_certificate_pem.as_bytes()).unwrap();
    let spki_der = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap();
    let key = RsaPublicKey::from_public_key_der(&spki_der).unwrap();
    key.to_public_key_pem(rsa::pkcs8::LineEnding::LF).unwrap()
}

/// Verifies `Wechatpay-*` headers over the body with the key its serial names.
pub fn verify_wechatpay(headers: &HeaderMap, body: &[u8]) -> bool {
    let c = creds();
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (ts, nonce, sig, serial) = (
        h("Wechatpay-Timestamp"),
        h("Wechatpay-Nonce"),
        h("Wechatpay-Signature"),
        h("Wechatpay-Serial"),
    );
    let pem = if serial == c.wechatpay_public_key_id {
        c.wechatpay_public_key_pem.clone()
    } else if serial.eq_ignore_ascii_case(&c.platform_serial) {
        platform_cert_public_pem()
    } else {
        return false;
    };
    let Ok(t) = ts.parse::<i64>() else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - t).abs() > 300 {
        return false;
    }
    let mut msg = format!("{ts}\n{nonce}\n").into_bytes();
    msg.extend_from_slice(body);
    msg.push(b'\n');
    rsa_verify_b64(&pem, &msg, &sig)
}

pub fn reqwest_headers(h: &reqwest::header::HeaderMap) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (k, v) in h {
        m.insert(k.clone(), v.clone());
    }
    m
}

pub fn aes_gcm_decrypt(key: &[u8], nonce: &str, aad: &str, ct_b64: &str) -> Vec<u8> {
    let cipher = Aes256Gcm::new_from_slice(key).unwrap();
    cipher
        .decrypt(
            Nonce::from_slice(nonce.as_bytes()),
            Payload {
                msg: &B64.decode(ct_b64).unwrap(),
                aad: aad.as_bytes(),
            },
        )
        .expect("decrypts with the APIv3 key")
}

// ---------- XML (tiny, independent) ----------

/// A parameter map from pairs.
pub fn m(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `p` with its v2 MD5 `sign` (the sandbox credentials' API key) added.
pub fn signed_md5(mut p: BTreeMap<String, String>) -> BTreeMap<String, String> {
    let s = v2_sign_md5(&p, &creds().pay_key_v2);
    p.insert("sign".into(), s);
    p
}

pub fn to_xml(m: &BTreeMap<String, String>) -> String {
    let mut s = String::from("<xml>");
    for (k, v) in m {
        s.push_str(&format!("<{k}><![CDATA[{v}]]></{k}>"));
    }
    s.push_str("</xml>");
    s
}

/// Parses `<xml><k><![CDATA[v]]></k>|<k>v</k>…</xml>` (flat, as WeChat writes it).
pub fn from_xml(s: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let inner = s
        .trim()
        .strip_prefix("<xml>")
        .and_then(|x| x.strip_suffix("</xml>"))
        .expect("xml root");
    let mut rest = inner;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').unwrap() + start;
        let name = &rest[start + 1..end];
        let close = format!("</{name}>");
        let vend = rest[end + 1..].find(&close).unwrap() + end + 1;
        let mut v = &rest[end + 1..vend];
        if let Some(x) = v
            .strip_prefix("<![CDATA[")
            .and_then(|x| x.strip_suffix("]]>"))
        {
            v = x;
        }
        m.insert(name.to_string(), v.to_string());
        rest = &rest[vend + close.len()..];
    }
    m
}

pub fn nonce() -> String {
    use rand::Rng;
    let mut r = rand::thread_rng();
    (0..16)
        .map(|_| char::from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[r.gen_range(0..36)]))
        .collect()
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ---------- a notify receiver ----------

#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<Received>>>,
    /// Answer failures for the first N requests.
    pub fail_first: Arc<Mutex<usize>>,
}

impl Receiver {
    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

/// A notify_url receiver. `v2`: answers the XML ack; else 204. The first `fail_first`
/// requests get a 500.
pub async fn receiver(v2: bool, fail_first: usize) -> Receiver {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let fail = Arc::new(Mutex::new(fail_first));
    let (g, f) = (got.clone(), fail.clone());
    let app = Router::new().route(
        "/notify",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (g, f) = (g.clone(), f.clone());
            async move {
                g.lock().unwrap().push(Received { headers, body });
                let mut left = f.lock().unwrap();
                if *left > 0 {
                    *left -= 1;
                    return (StatusCode::INTERNAL_SERVER_ERROR, "busy").into_response();
                }
                if v2 {
                    "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>".into_response()
                } else {
                    StatusCode::NO_CONTENT.into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver {
        url: format!("http://{addr}/notify"),
        got,
        fail_first: fail,
    }
}

pub async fn wait_until(mut f: impl FnMut() -> bool, ms: u64) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_millis(ms);
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    f()
}
