//! The one error type of the JSON API: a stable machine-readable `code`, a message for people,
//! and (for validation failures) the fields that are wrong. It is what every server function
//! returns and what the browser shows.

use crate::model::FieldError;
use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Stable error codes of the API. Clients match on these strings, so never rename one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request body or arguments could not be read.
    BadRequest,
    /// One or more fields are invalid; see `fields`.
    Validation,
    NotFound,
    /// Not enough stock for the requested quantity.
    OutOfStock,
    /// The order is not in a state that allows this (e.g. paying a closed order).
    InvalidState,
    /// The coupon chosen at checkout does not apply to this order (the message says why).
    CouponNotApplicable,
    /// No session: cookies are off or the session expired.
    Unauthorized,
    /// Payment is not available (not configured, or WeChat refused).
    PaymentUnavailable,
    /// Too many requests from this address or session: wait `Retry-After` seconds.
    RateLimited,
    /// Refused for where it came from (another site's page).
    Forbidden,
    /// The body is not JSON (`Content-Type: application/json` is required).
    UnsupportedMediaType,
    /// The body is larger than the endpoint takes (an upload over its limit).
    PayloadTooLarge,
    /// Something went wrong on our side; details are in the server log only.
    Internal,
}

impl ErrorCode {
    /// The HTTP status an API answer with this code carries.
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadRequest | Self::Validation => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::UnsupportedMediaType => 415,
            Self::PayloadTooLarge => 413,
            Self::RateLimited => 429,
            Self::NotFound => 404,
            Self::OutOfStock | Self::InvalidState | Self::CouponNotApplicable => 409,
            Self::PaymentUnavailable => 503,
            Self::Internal => 500,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    pub fn validation(fields: Vec<FieldError>) -> Self {
        let message = fields
            .first()
            .map(|f| f.message.clone())
            .unwrap_or_else(|| "输入有误".into());
        Self {
            code: ErrorCode::Validation,
            message,
            fields,
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what}不存在"))
    }

    pub fn internal() -> Self {
        Self::new(ErrorCode::Internal, "服务器开小差了，请稍后再试")
    }

    /// The message for a given form field, if that field failed validation.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.field == name)
            .map(|f| f.message.as_str())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(m)
            | ServerFnErrorErr::Deserialization(m)
            | ServerFnErrorErr::MissingArg(m) => {
                Self::new(ErrorCode::BadRequest, format!("请求格式有误: {m}"))
            }
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Response(_) => {
                Self::new(ErrorCode::Internal, "网络不给力，请重试")
            }
            _ => Self::internal(),
        }
    }
}
