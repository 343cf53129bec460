//! The shopper's session: a random id in a signed, HttpOnly, SameSite=Lax cookie.
//!
//! The middleware attaches an [`app::port::SessionId`] to every request it wraps; the shop maps
//! it to a user on first write (WeChat OAuth will bind an openid to the same session). A cookie
//! whose signature does not verify is ignored and replaced.

use app::port::SessionId;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, Key, SameSite, SignedCookieJar};
use rand::RngCore;
use std::path::Path;

pub const COOKIE_NAME: &str = "wxmall_sid";
/// The cookie's name on https: the `__Host-` prefix makes browsers refuse it unless it is
/// `Secure`, for the whole host (`Path=/`) and set by this very host (no `Domain`), so a
/// sibling subdomain cannot plant a session.
pub const SECURE_COOKIE_NAME: &str = "__Host-wxmall_sid";

#[derive(Clone)]
pub struct SessionConfig {
    pub key: Key,
    /// Mark the cookie `Secure` (the shop is served over https).
    pub secure: bool,
}

impl SessionConfig {
    /// `__Host-wxmall_sid` on https, `wxmall_sid` on a local http address.
    pub fn cookie_name(&self) -> &'static str {
        if self.secure {
            SECURE_COOKIE_NAME
        } else {
            COOKIE_NAME
        }
    }
}

/// The cookie-signing key: `WXMALL_SESSION_SECRET` (≥ 32 bytes) if set, otherwise a random key
/// created once in `data_dir/session.key` so sessions survive restarts.
///
/// The key file is created with mode 0600 in one step (never readable by others, not even for a
/// moment), in a data directory of mode 0700. A key file that exists but cannot be read, or is
/// not a key, stops the start: silently replacing it would sign everybody out.
pub fn load_key(secret: Option<&str>, data_dir: &Path) -> std::io::Result<Key> {
    if let Some(secret) = secret {
        if secret.len() < 32 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "WXMALL_SESSION_SECRET must be at least 32 bytes",
            ));
        }
        use sha2::Digest;
        return Ok(Key::from(&sha2::Sha512::digest(secret.as_bytes())));
    }
    let path = data_dir.join("session.key");
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() == 64 => return Ok(Key::from(&bytes)),
        Ok(bytes) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} holds {} bytes, not a 64-byte key: restore it, or delete it to sign every shopper out",
                    path.display(),
                    bytes.len()
                ),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(std::io::Error::new(
                e.kind(),
                format!("cannot read {}: {e}", path.display()),
            ))
        }
    }
    private_dir(data_dir)?;
    let mut bytes = [0u8; 64];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let tmp = data_dir.join(format!("session.key.{}.tmp", std::process::id()));
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(Key::from(&bytes))
}

/// Creates `dir` (and its parents) with mode 0700 if it does not exist.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

pub fn new_session_id() -> SessionId {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    SessionId(hex::encode(bytes))
}

fn is_well_formed(id: &str) -> bool {
    id.len() == 48 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Reads the session from the signed cookie, or starts a new one and sets its cookie.
pub async fn middleware(
    State(config): State<SessionConfig>,
    mut req: Request,
    next: Next,
) -> Response {
    let jar = SignedCookieJar::from_headers(req.headers(), config.key.clone());
    let existing = jar
        .get(config.cookie_name())
        .map(|c| c.value().to_string())
        .filter(|v| is_well_formed(v));
    let (session, is_new) = match existing {
        Some(id) => (SessionId(id), false),
        None => (new_session_id(), true),
    };
    req.extensions_mut().insert(session.clone());
    let res = next.run(req).await;
    if is_new {
        return (issue(&config, &session), res).into_response();
    }
    res
}

/// The signed Set-Cookie for `session` (the jar signs the value as it becomes a header).
pub fn issue(config: &SessionConfig, session: &SessionId) -> SignedCookieJar {
    let cookie = Cookie::build((config.cookie_name(), session.0.clone()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(config.secure)
        .max_age(time::Duration::days(365))
        .build();
    SignedCookieJar::new(config.key.clone()).add(cookie)
}

/// The form-error cookie of [`form_errors`] (`__Host-` prefixed on https, like the session's).
pub const FORM_ERROR_COOKIE: &str = "wxmall_form_err";
pub const SECURE_FORM_ERROR_COOKIE: &str = "__Host-wxmall_form_err";
/// How long a form's error waits for the page it returns to.
const FORM_ERROR_TTL_SECS: i64 = 60;

/// What the form-error cookie holds (signed with the session key, so only this server wrote it).
#[derive(serde::Serialize, serde::Deserialize)]
struct FormErrorCookie {
    /// The session it was written for.
    s: String,
    /// The page path it returns to.
    p: String,
    /// The form's endpoint.
    e: String,
    /// The error as Leptos encoded it.
    m: String,
    /// Expiry, Unix seconds.
    x: i64,
}

impl SessionConfig {
    fn form_error_cookie_name(&self) -> &'static str {
        if self.secure {
            SECURE_FORM_ERROR_COOKIE
        } else {
            FORM_ERROR_COOKIE
        }
    }
}

/// Takes `__path` and `__err` out of a redirect target: the new target, the page's path and the
/// encoded error. `None` when the target carries no error.
fn take_form_error(location: &str) -> Option<(String, String, String)> {
    let absolute = url::Url::parse(location).is_ok();
    let base = url::Url::parse("http://wxmall.invalid/").ok()?;
    let mut url = base.join(location).ok()?;
    let mut error = None;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter_map(|(k, v)| match k.as_ref() {
            "__err" => {
                error = Some(v.into_owned());
                None
            }
            "__path" => None,
            _ => Some((k.into_owned(), v.into_owned())),
        })
        .collect();
    let error = error?;
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    let target = if absolute {
        url.to_string()
    } else {
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    };
    Some((target, url.path().to_string(), error))
}

/// Form errors never travel in the URL (finding: `?__err=` let anyone write any text into the
/// shop's red error box, on the shop's own domain). Inside the session layer:
/// - the redirect a plain form post (`POST /api/…`) answers with an error loses `__path`
///   and `__err`; the error goes into a signed, HttpOnly cookie for this session and the page it
///   returns to, valid 60 s;
/// - the request for that page (same session, same path, in time) gets the error as
///   [`app::port::FormError`] and the cookie is removed; a cookie that does not verify, has
///   expired or belongs to another session is removed unread.
pub async fn form_errors(
    State(config): State<SessionConfig>,
    mut req: Request,
    next: Next,
) -> Response {
    let name = config.form_error_cookie_name();
    let path = req.uri().path().to_string();
    let session = req.extensions().get::<SessionId>().cloned();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut remove = false;
    if axum_extra::extract::cookie::CookieJar::from_headers(req.headers())
        .get(name)
        .is_some()
    {
        let signed = SignedCookieJar::from_headers(req.headers(), config.key.clone());
        let parsed = signed
            .get(name)
            .and_then(|c| serde_json::from_str::<FormErrorCookie>(c.value()).ok());
        match parsed {
            Some(c) if c.x >= now && session.as_ref().is_some_and(|s| s.0 == c.s) => {
                if c.p == path {
                    req.extensions_mut().insert(app::port::FormError {
                        endpoint: c.e,
                        encoded: c.m,
                    });
                    remove = true;
                }
                // Another page of this session: left for the page it was written for.
            }
            _ => remove = true,
        }
    }
    let is_form = req.method() == axum::http::Method::POST && path.starts_with("/api/");
    let mut res = next.run(req).await;
    let jar = SignedCookieJar::new(config.key.clone());
    if is_form && res.status().is_redirection() {
        let taken = res
            .headers()
            .get(axum::http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(take_form_error);
        if let (Some((target, page, error)), Some(session)) = (taken, session) {
            if let Ok(v) = axum::http::HeaderValue::from_str(&target) {
                res.headers_mut().insert(axum::http::header::LOCATION, v);
                let value = serde_json::to_string(&FormErrorCookie {
                    s: session.0,
                    p: page,
                    e: path,
                    m: error,
                    x: now + FORM_ERROR_TTL_SECS,
                })
                .unwrap_or_default();
                let cookie = Cookie::build((name, value))
                    .path("/")
                    .http_only(true)
                    .same_site(SameSite::Lax)
                    .secure(config.secure)
                    .max_age(time::Duration::seconds(FORM_ERROR_TTL_SECS))
                    .build();
                return (jar.add(cookie), res).into_response();
            }
        }
    }
    if remove {
        // An expired cookie of the same name and path (a jar's `remove` only removes what the
        // jar itself was given).
        let mut gone = Cookie::build((name, ""))
            .path("/")
            .secure(config.secure)
            .build();
        gone.make_removal();
        return (axum_extra::extract::cookie::CookieJar::new().add(gone), res).into_response();
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_error_comes_out_of_the_redirect_target() {
        let (target, page, err) = take_form_error(
            "http://127.0.0.1:3000/checkout?a=1&__path=%2Fapi%2Fcheckout&__err=eyJ9",
        )
        .unwrap();
        assert_eq!(target, "http://127.0.0.1:3000/checkout?a=1");
        assert_eq!(page, "/checkout");
        assert_eq!(err, "eyJ9");
        let (target, page, _) = take_form_error("/product/3?__path=x&__err=e").unwrap();
        assert_eq!(
            (target.as_str(), page.as_str()),
            ("/product/3", "/product/3")
        );
        assert!(take_form_error("/orders/1").is_none());
    }

    #[test]
    fn the_key_file_is_private_kept_and_never_silently_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = load_key(None, &data).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&data.join("session.key")), 0o600);
            assert_eq!(mode(&data), 0o700);
        }
        // Kept across restarts.
        assert_eq!(load_key(None, &data).unwrap().master(), first.master());
        // A damaged key stops the start rather than signing everybody out.
        std::fs::write(data.join("session.key"), b"short").unwrap();
        let err = load_key(None, &data).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        // One that cannot be read at all, likewise.
        std::fs::remove_file(data.join("session.key")).unwrap();
        std::fs::create_dir(data.join("session.key")).unwrap();
        assert!(load_key(None, &data).is_err());
        assert!(data.join("session.key").is_dir(), "left as it was");
    }

    #[test]
    fn on_https_the_cookie_is_secure_with_the_host_prefix() {
        let key = Key::generate();
        let id = SessionId("ab".repeat(24));
        let cookie = |secure: bool| {
            let config = SessionConfig {
                key: key.clone(),
                secure,
            };
            let jar = issue(&config, &id);
            let c = jar.get(config.cookie_name()).expect("issued");
            (
                c.name().to_string(),
                c.secure(),
                c.path().map(str::to_string),
                c.domain().is_none(),
            )
        };
        assert_eq!(
            cookie(true),
            (
                "__Host-wxmall_sid".into(),
                Some(true),
                Some("/".into()),
                true
            )
        );
        assert_eq!(cookie(false).0, "wxmall_sid");
    }
}
