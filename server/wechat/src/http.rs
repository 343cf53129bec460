//! Shared HTTP plumbing: a default client, a transport error that never carries a URL, and a body
//! reader with a size cap.
//!
//! Why the URL is stripped: WeChat's token and OAuth endpoints take `secret=` and `access_token=` in the
//! query string, and `reqwest::Error`'s `Display` prints the full URL.
use std::time::Duration;

/// Default per-request timeout used by every client in this crate.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default connect timeout of [`default_client`].
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer body read from WeChat (answers are a few KiB; a certificate list is the largest).
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// `User-Agent` sent to WeChat (WeChat Pay v3 requires one).
pub const USER_AGENT: &str = concat!("wxmall-wechat/", env!("CARGO_PKG_VERSION"));

/// A transport-level failure talking to WeChat. Holds no URL and no body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The call did not finish within its timeout.
    #[error("request to WeChat timed out")]
    Timeout,
    /// The connection could not be made (DNS, refused, TLS).
    #[error("could not connect to WeChat: {0}")]
    Connect(String),
    /// The answer exceeded the size cap.
    #[error("WeChat's answer exceeded {limit} bytes")]
    TooLarge {
        /// The cap.
        limit: usize,
    },
    /// WeChat answered with an unexpected HTTP status.
    #[error("WeChat answered HTTP {status}")]
    Status {
        /// The status code.
        status: u16,
    },
    /// Any other transport error (message without URL).
    #[error("HTTP error talking to WeChat: {0}")]
    Other(String),
}

impl HttpError {
    /// Whether the failure was a timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout)
    }
}

impl From<reqwest::Error> for HttpError {
    fn from(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            return Self::Timeout;
        }
        let connect = e.is_connect();
        // Drop the URL (it may hold `secret=` or `access_token=`), then describe the cause chain.
        let e = e.without_url();
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        if connect {
            Self::Connect(msg)
        } else {
            Self::Other(msg)
        }
    }
}

/// A `reqwest` client suited to WeChat: rustls, connect timeout, overall timeout, a `User-Agent`.
/// Every call in this crate also sets its own per-request timeout, so any client works.
pub fn default_client() -> Result<reqwest::Client, HttpError> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(DEFAULT_TIMEOUT * 2)
        .user_agent(USER_AGENT)
        .build()
        .map_err(HttpError::from)
}

/// Reads a response body, refusing more than `limit` bytes (checked against `Content-Length` first,
/// then while streaming).
pub(crate) async fn read_capped(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, HttpError> {
    if let Some(len) = resp.content_length() {
        if len > limit as u64 {
            return Err(HttpError::TooLarge { limit });
        }
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if out.len() + chunk.len() > limit {
            return Err(HttpError::TooLarge { limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Percent-encodes a query or path value (everything but `A-Za-z0-9-_.~`), like `encodeURIComponent`
/// and PHP's `rawurlencode`.
pub(crate) fn encode(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

/// Describes a `serde_json` error without quoting the input (which may hold a token).
pub(crate) fn json_error(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "unexpected JSON shape",
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_like_encode_uri_component() {
        assert_eq!(
            super::encode("https://shop.example.com/cb?x=1&y=a b/中"),
            "https%3A%2F%2Fshop.example.com%2Fcb%3Fx%3D1%26y%3Da%20b%2F%E4%B8%AD"
        );
        assert_eq!(super::encode("A-z_0.9~"), "A-z_0.9~");
    }

    #[test]
    fn json_error_does_not_quote_input() {
        let e = serde_json::from_str::<u64>("\"TOKEN-SECRET\"").expect_err("must fail");
        let m = super::json_error(&e);
        assert!(!m.contains("TOKEN-SECRET"), "{m}");
    }
}
