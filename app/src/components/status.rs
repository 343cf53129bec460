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
        <div class="skeleton" aria-busy="true" aria-label="加载中">
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

/// The error a plain (JavaScript-free) form post came back with: Leptos puts it in
/// `?__err=` on the redirect back to the form's page.
pub struct ServerFormError;

impl ServerFormError {
    /// The error in the current URL, if it came from the server function at `endpoint`.
    pub fn from_query(endpoint: &str) -> Option<ApiError> {
        use leptos::server_fn::error::ServerFnUrlError;
        let query = leptos_router::hooks::use_query_map().get_untracked();
        if query.get("__path")? != endpoint {
            return None;
        }
        Some(ServerFnUrlError::<ApiError>::decode_err(
            &query.get("__err")?,
        ))
    }
}
