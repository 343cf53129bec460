//! Loading, error and form-error pieces.

use crate::error::{ApiError, ErrorCode};
use leptos::prelude::*;

/// Sets the HTTP status of the server-rendered page (no effect in the browser).
pub fn set_http_status(status: u16) {
    #[cfg(feature = "ssr")]
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        if let Ok(code) = http::StatusCode::from_u16(status) {
            res.set_status(code);
        }
    }
    #[cfg(not(feature = "ssr"))]
    let _ = status;
}

/// A full-page error with a way back; the server-rendered page carries the error's HTTP status.
#[component]
pub fn ErrorView(error: ApiError) -> impl IntoView {
    set_http_status(error.code.http_status());
    let title = match error.code {
        ErrorCode::NotFound => "页面不存在",
        ErrorCode::Internal => "出错了",
        _ => "无法完成操作",
    };
    view! {
        <section class="error-page" data-status=error.code.http_status()>
            <div class="error-code">{error.code.http_status()}</div>
            <h1>{title}</h1>
            <p class="muted">{error.message.clone()}</p>
            <a class="btn btn-primary" href="/">"返回首页"</a>
        </section>
    }
}

/// Grey placeholder blocks while a page's data loads.
#[component]
pub fn PageSkeleton() -> impl IntoView {
    view! {
        <div class="skeleton" role="status" aria-busy="true" aria-label="加载中">
            <div class="sk sk-title"></div>
            <div class="sk sk-line"></div>
            <div class="sk sk-line"></div>
            <div class="sk sk-block"></div>
        </div>
    }
}

/// The message under a form field, if the last submission found it wrong.
#[component]
pub fn FieldMessage(
    #[prop(into)] error: Signal<Option<ApiError>>,
    field: &'static str,
) -> impl IntoView {
    move || {
        error.with(|e| {
            e.as_ref()
                .and_then(|e| e.field(field))
                .map(|m| view! { <p class="field-error" data-field=field>{m.to_string()}</p> })
        })
    }
}

/// The error a plain (JavaScript-free) form post came back with. Leptos would put it in
/// `?__err=` on the redirect back to the form's page, where anyone could write any text into the
/// shop's error box; the server moves it into a signed cookie bound to the session and the page
/// (`server::session::form_errors`) and hands it to the page render as [`crate::port::FormError`].
/// Pages read it on the server and pass it to their island as a prop, so the browser starts from
/// the same error.
pub struct ServerFormError;

impl ServerFormError {
    /// The error the form at `endpoint` came back with, if this page render is that return
    /// (always `None` outside a server render).
    pub fn take(endpoint: &str) -> Option<ApiError> {
        #[cfg(feature = "ssr")]
        {
            use_context::<http::request::Parts>()
                .and_then(|parts| parts.extensions.get::<crate::port::FormError>().cloned())
                .filter(|f| f.endpoint == endpoint)
                .map(|f| {
                    leptos::server_fn::error::ServerFnUrlError::<ApiError>::decode_err(&f.encoded)
                })
        }
        #[cfg(not(feature = "ssr"))]
        {
            let _ = endpoint;
            None
        }
    }
}
