//! Mutual TLS for `POST /secapi/pay/refund`, as WeChat requires it.
//!
//! WeChat only answers a v2 refund over a TLS connection on which the merchant presented its API
//! certificate (`apiclient_cert.pem`, issued by Tenpay's CA for the merchant id, signed with the
//! merchant's `apiclient_key.pem`). The sandbox does the same on its own listener
//! ([`serve_secapi`]): a certificate authority of its own signs the listener's server certificate
//! (for `127.0.0.1` and `localhost`) and the merchant's client certificate
//! ([`Sandbox::merchant_certificate_pem`], for the sandbox's mchid, on the sandbox merchant key);
//! the handshake fails without a certificate from that CA, and a certificate issued for another
//! merchant id is refused with `return_code=FAIL`. The plain-HTTP route under the shop's
//! `/sandbox/pay` answers `FAIL` (证书不存在), like a connection without a certificate.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::RsaPrivateKey;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::Sha256;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::asn1::{Ia5String, OctetString};
use x509_cert::der::{Encode, EncodePem};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectAltName};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{ObjectIdentifier, SubjectPublicKeyInfoOwned};
use x509_cert::time::Validity;

use crate::creds::parse_private;
use crate::state::Sandbox;
use crate::SandboxError;

const SERVER_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");
const CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
const TEN_YEARS: Duration = Duration::from_secs(10 * 365 * 86_400);

/// The merchant a TLS connection's client certificate was issued to (`None`: no certificate,
/// i.e. the plain-HTTP routes). Put on every request by [`serve_secapi`].
#[derive(Clone, Debug)]
pub(crate) struct PeerMerchant(pub Option<String>);

/// The sandbox's certificate authority and what it issued.
pub(crate) struct Authority {
    ca_key: RsaPrivateKey,
    ca_name: Name,
    pub ca_pem: String,
    ca_der: Vec<u8>,
    server_der: Vec<u8>,
    server_key_pkcs8: Vec<u8>,
    pub merchant_pem: String,
    /// DER of every client certificate issued → its merchant id.
    issued: Mutex<HashMap<Vec<u8>, String>>,
    next_serial: Mutex<u64>,
}

fn err(e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Certificate(e.to_string())
}

impl Authority {
    /// The CA signs with the platform key (it stands for Tenpay's CA); the secapi listener's
    /// certificate uses the "WeChat Pay public key" key pair; the merchant certificate is on the
    /// merchant key (the `apiclient_key.pem` v3 signs with, as at WeChat).
    pub(crate) fn new(
        platform: &RsaPrivateKey,
        server: &RsaPrivateKey,
        merchant_key_pem: &str,
        mchid: &str,
        merchant_name: &str,
    ) -> Result<Self, SandboxError> {
        let ca_name = Name::from_str(
            "CN=Tenpay.com Sandbox Root CA,OU=Tenpay.com CA Center,O=Tenpay.com,C=CN",
        )
        .map_err(err)?;
        let ca = build(
            Profile::Root,
            1,
            ca_name.clone(),
            platform,
            platform,
            |_| Ok(()),
        )?;
        let server_cert = build(
            Profile::Leaf {
                issuer: ca_name.clone(),
                enable_key_agreement: false,
                enable_key_encipherment: true,
            },
            2,
            Name::from_str("CN=api.mch.weixin.qq.com sandbox,O=Tenpay.com,C=CN").map_err(err)?,
            server,
            platform,
            |b| {
                b.add_extension(&SubjectAltName(vec![
                    GeneralName::IpAddress(OctetString::new(vec![127, 0, 0, 1]).map_err(err)?),
                    GeneralName::DnsName(Ia5String::new("localhost").map_err(err)?),
                ]))
                .map_err(err)?;
                b.add_extension(&ExtendedKeyUsage(vec![SERVER_AUTH]))
                    .map_err(err)
            },
        )?;
        let server_key_pkcs8 = server.to_pkcs8_der().map_err(err)?.as_bytes().to_vec();
        let me = Self {
            ca_key: platform.clone(),
            ca_name,
            ca_pem: ca.to_pem(LineEnding::LF).map_err(err)?,
            ca_der: ca.to_der().map_err(err)?,
            server_der: server_cert.to_der().map_err(err)?,
            server_key_pkcs8,
            merchant_pem: String::new(),
            issued: Mutex::new(HashMap::new()),
            next_serial: Mutex::new(3),
        };
        let merchant_pem = me.issue(mchid, merchant_name, merchant_key_pem)?;
        Ok(Self { merchant_pem, ..me })
    }

    /// Issues a client certificate (`CN=<mchid>`, as Tenpay's merchant certificates) on the key
    /// in `key_pem`; returns it as PEM.
    pub(crate) fn issue(
        &self,
        mchid: &str,
        merchant_name: &str,
        key_pem: &str,
    ) -> Result<String, SandboxError> {
        let key = parse_private(key_pem)?;
        let serial = {
            let mut n = self.next_serial.lock().expect("serial lock");
            *n += 1;
            *n
        };
        let subject = Name::from_str(&format!(
            "CN={mchid},OU={},O=Tenpay.com merchant certificate,L=Shenzhen,ST=Guangdong,C=CN",
            escape_rdn(merchant_name)
        ))
        .map_err(err)?;
        let cert = build(
            Profile::Leaf {
                issuer: self.ca_name.clone(),
                enable_key_agreement: false,
                enable_key_encipherment: true,
            },
            serial,
            subject,
            &key,
            &self.ca_key,
            |b| {
                b.add_extension(&ExtendedKeyUsage(vec![CLIENT_AUTH]))
                    .map_err(err)
            },
        )?;
        self.issued
            .lock()
            .expect("issued lock")
            .insert(cert.to_der().map_err(err)?, mchid.to_owned());
        cert.to_pem(LineEnding::LF).map_err(err)
    }

    /// A server certificate for `127.0.0.1` and `localhost`, valid from now for `valid_for`:
    /// (its DER, its key as PKCS#8 DER). It is on the secapi listener's key.
    fn issue_server(&self, valid_for: Duration) -> Result<(Vec<u8>, Vec<u8>), SandboxError> {
        let serial = {
            let mut n = self.next_serial.lock().expect("serial lock");
            *n += 1;
            *n
        };
        let key =
            rsa::pkcs8::DecodePrivateKey::from_pkcs8_der(&self.server_key_pkcs8).map_err(err)?;
        let cert = build_valid(
            Profile::Leaf {
                issuer: self.ca_name.clone(),
                enable_key_agreement: false,
                enable_key_encipherment: true,
            },
            serial,
            Name::from_str("CN=shop.example.com sandbox,O=wxmall sandbox,C=CN").map_err(err)?,
            &key,
            &self.ca_key,
            valid_for,
            |b| {
                b.add_extension(&SubjectAltName(vec![
                    GeneralName::IpAddress(OctetString::new(vec![127, 0, 0, 1]).map_err(err)?),
                    GeneralName::DnsName(Ia5String::new("localhost").map_err(err)?),
                ]))
                .map_err(err)?;
                b.add_extension(&ExtendedKeyUsage(vec![SERVER_AUTH]))
                    .map_err(err)
            },
        )?;
        Ok((cert.to_der().map_err(err)?, self.server_key_pkcs8.clone()))
    }

    fn merchant_of(&self, der: &[u8]) -> Option<String> {
        self.issued.lock().expect("issued lock").get(der).cloned()
    }

    fn server_config(&self) -> Result<rustls::ServerConfig, SandboxError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.ca_der.clone()))
            .map_err(err)?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(err)?;
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(err)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![
                    CertificateDer::from(self.server_der.clone()),
                    CertificateDer::from(self.ca_der.clone()),
                ],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_pkcs8.clone())),
            )
            .map_err(err)?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(cfg)
    }
}

/// Commas and the like in a merchant name would split the RDN.
fn escape_rdn(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ',' | '+' | '=' | '"' | '\\' | '<' | '>' | ';' | '#'))
        .collect()
}

fn build(
    profile: Profile,
    serial: u64,
    subject: Name,
    subject_key: &RsaPrivateKey,
    issuer_key: &RsaPrivateKey,
    extend: impl FnOnce(
        &mut CertificateBuilder<'_, rsa::pkcs1v15::SigningKey<Sha256>>,
    ) -> Result<(), SandboxError>,
) -> Result<x509_cert::Certificate, SandboxError> {
    build_valid(
        profile,
        serial,
        subject,
        subject_key,
        issuer_key,
        TEN_YEARS,
        extend,
    )
}

fn build_valid(
    profile: Profile,
    serial: u64,
    subject: Name,
    subject_key: &RsaPrivateKey,
    issuer_key: &RsaPrivateKey,
    valid_for: Duration,
    extend: impl FnOnce(
        &mut CertificateBuilder<'_, rsa::pkcs1v15::SigningKey<Sha256>>,
    ) -> Result<(), SandboxError>,
) -> Result<x509_cert::Certificate, SandboxError> {
    let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(issuer_key.clone());
    let spki = SubjectPublicKeyInfoOwned::from_key(subject_key.to_public_key()).map_err(err)?;
    let mut b = CertificateBuilder::new(
        profile,
        SerialNumber::from(serial),
        Validity::from_now(valid_for).map_err(err)?,
        subject,
        spki,
        &signer,
    )
    .map_err(err)?;
    extend(&mut b)?;
    b.build::<rsa::pkcs1v15::Signature>().map_err(err)
}

/// The sandbox's secapi listener (mutual TLS), from [`serve_secapi`].
#[derive(Debug)]
pub struct SecapiServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The Pay v2 base for `/secapi/…` paths: `https://127.0.0.1:<port>`.
    pub base: String,
    /// The accept loop (abort it to stop the listener).
    pub task: tokio::task::JoinHandle<()>,
}

/// Serves `POST /secapi/pay/refund` over mutual TLS on `listener` (bind `127.0.0.1:0`). Clients
/// must trust [`Sandbox::ca_certificate_pem`] and present the certificate from
/// [`Sandbox::merchant_certificate_pem`] with the merchant key.
pub async fn serve_secapi(
    sandbox: Sandbox,
    listener: tokio::net::TcpListener,
) -> Result<SecapiServer, SandboxError> {
    use tower::ServiceExt as _;
    let authority = sandbox.authority()?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(authority.server_config()?));
    let addr = listener
        .local_addr()
        .map_err(|e| SandboxError::Http(e.to_string()))?;
    let app = axum::Router::new()
        .route(
            "/secapi/pay/refund",
            axum::routing::post(crate::pay_v2::refund),
        )
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(sandbox.clone());
    let task = tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(target: "wechat_sandbox", error = %e, "secapi accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            let authority = authority.clone();
            tokio::spawn(async move {
                let stream = match tokio::time::timeout(
                    Duration::from_secs(10),
                    acceptor.accept(tcp),
                )
                .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        // No certificate, or one the sandbox CA did not issue: WeChat ends the
                        // handshake the same way.
                        tracing::warn!(target: "wechat_sandbox", %peer, error = %e, "secapi: TLS handshake refused");
                        return;
                    }
                    Err(_) => return,
                };
                let merchant = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| authority.merchant_of(c.as_ref()));
                let peer_merchant = PeerMerchant(merchant);
                let svc = hyper::service::service_fn(
                    move |mut req: axum::http::Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(peer_merchant.clone());
                        app.clone().oneshot(req.map(axum::body::Body::new))
                    },
                );
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await
                {
                    tracing::debug!(target: "wechat_sandbox", error = %e, "secapi connection ended");
                }
            });
        }
    });
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    Ok(SecapiServer {
        addr,
        base: format!("https://{}", SocketAddr::new(ip, addr.port())),
        task,
    })
}

/// An https front for a plain-HTTP server, as the proxy on a merchant's domain terminates TLS.
#[derive(Debug)]
pub struct HttpsFront {
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// The accept loop (abort it to stop the listener).
    pub task: tokio::task::JoinHandle<()>,
}

/// Serves `backend` (a plain-HTTP address, e.g. the shop) over https on `listener`, with a
/// server certificate from the sandbox CA valid for `valid_for` from now — so a test can give
/// the shop a certificate about to expire (`wxmall doctor` warns 14 days ahead). Clients trust
/// [`Sandbox::ca_certificate_pem`]. Bytes are relayed as they are (TCP after the handshake).
pub async fn serve_https_front(
    sandbox: &Sandbox,
    listener: tokio::net::TcpListener,
    backend: SocketAddr,
    valid_for: Duration,
) -> Result<HttpsFront, SandboxError> {
    let authority = sandbox.authority()?;
    let (cert, key) = authority.issue_server(valid_for)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(err)?
        .with_no_client_auth()
        .with_single_cert(
            vec![
                CertificateDer::from(cert),
                CertificateDer::from(authority.ca_der.clone()),
            ],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )
        .map_err(err)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let addr = listener
        .local_addr()
        .map_err(|e| SandboxError::Http(e.to_string()))?;
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(Ok(mut tls)) =
                    tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                else {
                    return;
                };
                if let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    Ok(HttpsFront {
        url: format!("https://127.0.0.1:{}", addr.port()),
        task,
    })
}

impl Sandbox {
    pub(crate) fn authority(&self) -> Result<Arc<Authority>, SandboxError> {
        let mut slot = self.inner.authority.lock().expect("authority lock");
        if let Some(a) = slot.as_ref() {
            return Ok(a.clone());
        }
        let c = &self.inner.creds;
        let a = Arc::new(Authority::new(
            &self.inner.keys.platform_private,
            &self.inner.keys.wechatpay_private,
            &c.merchant_private_key_pem,
            &c.mchid,
            &c.merchant_name,
        )?);
        *slot = Some(a.clone());
        Ok(a)
    }

    /// The sandbox CA's certificate (PEM): the root a client of [`serve_secapi`] trusts.
    pub fn ca_certificate_pem(&self) -> Result<String, SandboxError> {
        Ok(self.authority()?.ca_pem.clone())
    }

    /// The merchant's API certificate (`apiclient_cert.pem`, PEM) for the sandbox's mchid, on the
    /// merchant key of [`crate::SandboxCredentials::merchant_private_key_pem`].
    pub fn merchant_certificate_pem(&self) -> Result<String, SandboxError> {
        Ok(self.authority()?.merchant_pem.clone())
    }

    /// Issues a client certificate from the sandbox CA for another merchant id (tests: a real
    /// certificate of the wrong merchant is refused).
    pub fn issue_client_certificate(
        &self,
        mchid: &str,
        key_pem: &str,
    ) -> Result<String, SandboxError> {
        self.authority()?.issue(mchid, "another merchant", key_pem)
    }
}
