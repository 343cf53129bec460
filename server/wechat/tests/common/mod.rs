//! Shared test fixtures: RSA keys and certificates generated once per test binary with the openssl
//! CLI, an independent "WeChat side" signer (the `rsa` crate used directly, not this crate's signing
//! code), and a helper that serves an axum router on 127.0.0.1:0.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine as _;
use http::{HeaderMap, HeaderValue};
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer, Verifier as _};
use rsa::RsaPrivateKey;
use sha2::Sha256;

pub const APPID: &str = "wxd930ea5d5a258f4f";
pub const MCHID: &str = "1900000109";
pub const MCH_SERIAL: &str = "3775B6A45ACD588826D15E583A95F5DD26B8A1B0";
pub const APIV3_KEY: &str = "0123456789abcdef0123456789ABCDEF";
pub const PLAT_SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1";
pub const PLAT2_SERIAL: &str = "7A1B2C3D4E5F60718293A4B5C6D7E8F901234567";
pub const PUB_KEY_ID: &str = "PUB_KEY_ID_0114232134912410000000000000";

pub struct Keys {
    pub dir: tempfile::TempDir,
    pub mch_pem: String,
    pub mch_pkcs1_pem: String,
    pub mch_pub_pem_path: PathBuf,
    pub mch_cert_pem: String,
    pub mch_p12: Vec<u8>,
    pub plat_key: RsaPrivateKey,
    pub plat_cert_pem: String,
    pub plat2_key: RsaPrivateKey,
    pub plat2_cert_pem: String,
    pub pubkey_key: RsaPrivateKey,
    pub pubkey_pem: String,
    pub other_key: RsaPrivateKey,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl CLI must be installed");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read(dir: &Path, f: &str) -> String {
    std::fs::read_to_string(dir.join(f)).expect("read generated file")
}

fn genkey(dir: &Path, name: &str) -> RsaPrivateKey {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            name,
        ],
    );
    RsaPrivateKey::from_pkcs8_pem(&read(dir, name)).expect("parse generated key")
}

fn selfsigned(dir: &Path, key: &str, serial: &str, cn: &str, out: &str) -> String {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            key,
            "-subj",
            &format!("/CN={cn}"),
            "-days",
            "30",
            "-set_serial",
            &format!("0x{serial}"),
            "-out",
            out,
        ],
    );
    read(dir, out)
}

pub fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        genkey(d, "mch.pem");
        openssl(
            d,
            &["pkey", "-in", "mch.pem", "-pubout", "-out", "mch_pub.pem"],
        );
        openssl(
            d,
            &[
                "rsa",
                "-in",
                "mch.pem",
                "-traditional",
                "-out",
                "mch_pkcs1.pem",
            ],
        );
        let mch_cert_pem = selfsigned(d, "mch.pem", MCH_SERIAL, "1900000109", "mch_cert.pem");
        openssl(
            d,
            &[
                "pkcs12",
                "-export",
                "-inkey",
                "mch.pem",
                "-in",
                "mch_cert.pem",
                "-passout",
                &format!("pass:{MCHID}"),
                "-out",
                "mch.p12",
            ],
        );
        let plat_key = genkey(d, "plat.pem");
        let plat_cert_pem = selfsigned(
            d,
            "plat.pem",
            PLAT_SERIAL,
            "Tenpay.com Root CA",
            "plat_cert.pem",
        );
        let plat2_key = genkey(d, "plat2.pem");
        let plat2_cert_pem = selfsigned(
            d,
            "plat2.pem",
            PLAT2_SERIAL,
            "Tenpay.com Root CA",
            "plat2_cert.pem",
        );
        let pubkey_key = genkey(d, "wxpub.pem");
        openssl(
            d,
            &[
                "pkey",
                "-in",
                "wxpub.pem",
                "-pubout",
                "-out",
                "wxpub_pub.pem",
            ],
        );
        let other_key = genkey(d, "other.pem");
        Keys {
            mch_pem: read(d, "mch.pem"),
            mch_pkcs1_pem: read(d, "mch_pkcs1.pem"),
            mch_pub_pem_path: d.join("mch_pub.pem"),
            mch_cert_pem,
            mch_p12: std::fs::read(d.join("mch.p12")).expect("p12"),
            plat_key,
            plat_cert_pem,
            plat2_key,
            plat2_cert_pem,
            pubkey_pem: read(d, "wxpub_pub.pem"),
            pubkey_key,
            other_key,
            dir,
        }
    })
}

/// Signs like WeChat does, with the `rsa` crate directly (not this crate's code).
pub fn wechat_sign(key: &RsaPrivateKey, ts: &str, nonce: &str, body: &[u8]) -> String {
    let mut msg = format!("{ts}\n{nonce}\n").into_bytes();
    msg.extend_from_slice(body);
    msg.push(b'\n');
    let sk = rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone());
    base64::engine::general_purpose::STANDARD.encode(sk.sign(&msg).to_bytes())
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// `Wechatpay-*` headers for `body`, signed by `key` and labelled `serial`, at `ts`.
pub fn signed_headers(key: &RsaPrivateKey, serial: &str, ts: i64, body: &[u8]) -> HeaderMap {
    let nonce = "fdasflkja484w";
    let mut h = HeaderMap::new();
    let hv = |s: &str| HeaderValue::from_str(s).expect("header value");
    h.insert("Wechatpay-Timestamp", hv(&ts.to_string()));
    h.insert("Wechatpay-Nonce", hv(nonce));
    h.insert(
        "Wechatpay-Signature",
        hv(&wechat_sign(key, &ts.to_string(), nonce, body)),
    );
    h.insert("Wechatpay-Serial", hv(serial));
    h
}

/// Verifies an `Authorization: WECHATPAY2-SHA256-RSA2048 …` header independently: parses it and checks
/// the signature with `rsa`'s verifying key over `METHOD\nPATH\nTS\nNONCE\nBODY\n`.
pub fn check_authorization(
    auth: &str,
    method: &str,
    path_with_query: &str,
    body: &str,
    mch_pub: &rsa::RsaPublicKey,
) -> Result<(), String> {
    let rest = auth
        .strip_prefix("WECHATPAY2-SHA256-RSA2048 ")
        .ok_or("wrong scheme")?;
    let mut fields = std::collections::HashMap::new();
    for part in rest.split(',') {
        let (k, v) = part.split_once('=').ok_or("bad field")?;
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or("unquoted")?;
        fields.insert(k.to_string(), v.to_string());
    }
    for k in ["mchid", "nonce_str", "timestamp", "serial_no", "signature"] {
        if !fields.contains_key(k) {
            return Err(format!("missing {k}"));
        }
    }
    if fields["mchid"] != MCHID || fields["serial_no"] != MCH_SERIAL {
        return Err("wrong mchid/serial".into());
    }
    let ts: i64 = fields["timestamp"].parse().map_err(|_| "ts")?;
    if (ts - now()).abs() > 300 {
        return Err("stale".into());
    }
    let msg = format!(
        "{method}\n{path_with_query}\n{}\n{}\n{body}\n",
        fields["timestamp"], fields["nonce_str"]
    );
    let sig = base64::engine::general_purpose::STANDARD
        .decode(&fields["signature"])
        .map_err(|_| "b64")?;
    let sig = rsa::pkcs1v15::Signature::try_from(sig.as_slice()).map_err(|_| "sig")?;
    rsa::pkcs1v15::VerifyingKey::<Sha256>::new(mch_pub.clone())
        .verify(msg.as_bytes(), &sig)
        .map_err(|_| "signature does not verify".to_string())
}

pub fn mch_public() -> rsa::RsaPublicKey {
    RsaPrivateKey::from_pkcs8_pem(&keys().mch_pem)
        .expect("key")
        .to_public_key()
}

/// Serves `router` on an ephemeral port; returns `http://127.0.0.1:PORT`.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().build().expect("client")
}
