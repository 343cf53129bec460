//! Signed v3 requests: the `Authorization` header
//! (`WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",timestamp="…",serial_no="…",signature="…"`)
//! and one signed exchange, returning the raw answer for the caller to verify.
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};

use crate::config::BaseUrl;
use crate::http::{read_capped, HttpError, MAX_ANSWER_BYTES, USER_AGENT};

use super::sign::{v3_request_message, MerchantKey};

/// Builds `Authorization` values for one merchant.
#[derive(Clone)]
pub struct RequestSigner {
    mchid: String,
    serial: String,
    key: Arc<MerchantKey>,
}

impl fmt::Debug for RequestSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RequestSigner(mchid={}, serial={}, key=***)",
            self.mchid, self.serial
        )
    }
}

/// Formats the `Authorization` header value.
pub fn authorization_header(
    mchid: &str,
    nonce: &str,
    timestamp: &str,
    serial: &str,
    signature: &str,
) -> String {
    format!(
        "WECHATPAY2-SHA256-RSA2048 mchid=\"{mchid}\",nonce_str=\"{nonce}\",timestamp=\"{timestamp}\",serial_no=\"{serial}\",signature=\"{signature}\""
    )
}

impl RequestSigner {
    /// A signer for `mchid` whose API certificate has `serial`.
    pub fn new(mchid: impl Into<String>, serial: impl Into<String>, key: Arc<MerchantKey>) -> Self {
        Self {
            mchid: mchid.into(),
            serial: serial.into(),
            key,
        }
    }

    /// `Authorization` with the given timestamp and nonce (blinded RSA: CPU-bound).
    pub fn authorization_with(
        &self,
        method: &str,
        path_with_query: &str,
        body: &str,
        timestamp: &str,
        nonce: &str,
    ) -> String {
        let msg = v3_request_message(method, path_with_query, timestamp, nonce, body);
        let sig = self.key.sign_base64(msg.as_bytes());
        authorization_header(&self.mchid, nonce, timestamp, &self.serial, &sig)
    }

    /// `Authorization` with a fresh nonce and the current time.
    pub fn authorization(&self, method: &str, path_with_query: &str, body: &str) -> String {
        self.authorization_with(
            method,
            path_with_query,
            body,
            &crate::unix_now().to_string(),
            &crate::nonce(),
        )
    }

    async fn authorization_blocking(
        &self,
        method: &Method,
        path_with_query: &str,
        body: &str,
    ) -> Result<String, HttpError> {
        let this = self.clone();
        let (m, p, b) = (
            method.as_str().to_owned(),
            path_with_query.to_owned(),
            body.to_owned(),
        );
        tokio::task::spawn_blocking(move || this.authorization(&m, &p, &b))
            .await
            .map_err(|_| HttpError::Other("request signing task failed".into()))
    }
}

/// One signed v3 exchange: returns status, headers and the raw body (capped).
pub(crate) async fn send_signed(
    http: &reqwest::Client,
    base: &BaseUrl,
    signer: &RequestSigner,
    timeout: Duration,
    method: Method,
    path_with_query: &str,
    body: Option<&str>,
) -> Result<(StatusCode, HeaderMap, Vec<u8>), HttpError> {
    send_signed_capped(
        http,
        base,
        signer,
        timeout,
        method,
        path_with_query,
        body,
        MAX_ANSWER_BYTES,
    )
    .await
}

/// [`send_signed`] with another size cap (bill downloads).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn send_signed_capped(
    http: &reqwest::Client,
    base: &BaseUrl,
    signer: &RequestSigner,
    timeout: Duration,
    method: Method,
    path_with_query: &str,
    body: Option<&str>,
    limit: usize,
) -> Result<(StatusCode, HeaderMap, Vec<u8>), HttpError> {
    let auth = signer
        .authorization_blocking(&method, path_with_query, body.unwrap_or(""))
        .await?;
    let mut rb = http
        .request(method, base.join(path_with_query))
        .timeout(timeout)
        .header(http::header::AUTHORIZATION, auth)
        .header(http::header::ACCEPT, "application/json")
        .header(http::header::USER_AGENT, USER_AGENT);
    if let Some(b) = body {
        rb = rb
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(b.to_owned());
    }
    let resp = rb.send().await?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = read_capped(resp, limit).await?;
    Ok((status, headers, bytes))
}

/// WeChat's error answer (`{"code", "message"}`).
#[derive(serde::Deserialize, Default)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}
