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

#[derive(Clone)]
pub struct SessionConfig {
    pub key: Key,
    /// Mark the cookie `Secure` (the shop is served over https).
    pub secure: bool,
}

/// The cookie-signing key: `WXMALL_SESSION_SECRET` (≥ 32 bytes) if set, otherwise a random key
/// created once in `data_dir/session.key` so sessions survive restarts.
pub fn load_key(secret: Option<&str>, data_dir: &Path) -> std::io::Result<Key> {
    if let Some(secret) = secret {
        if secret.len() < 32 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "WXMALL_SESSION_SECRET must be at least 32 bytes",
            ));
        }
        // `Key` wants 64 bytes of key material: stretch the secret with SHA-512.
        use sha2::Digest;
        return Ok(Key::from(&sha2::Sha512::digest(secret.as_bytes())));
    }
    let path = data_dir.join("session.key");
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() == 64 => Ok(Key::from(&bytes)),
        _ => {
            std::fs::create_dir_all(data_dir)?;
            let mut bytes = [0u8; 64];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            // Write-then-rename: a crash never leaves a half-written key behind.
            let tmp = data_dir.join("session.key.tmp");
            std::fs::write(&tmp, bytes)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
            }
            std::fs::rename(&tmp, &path)?;
            Ok(Key::from(&bytes))
        }
    }
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
        .get(COOKIE_NAME)
        .map(|c| c.value().to_string())
        .filter(|v| is_well_formed(v));
    let (session, is_new) = match existing {
        Some(id) => (SessionId(id), false),
        None => (new_session_id(), true),
    };
    req.extensions_mut().insert(session.clone());
    let res = next.run(req).await;
    if is_new {
        let cookie = Cookie::build((COOKIE_NAME, session.0))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(config.secure)
            .max_age(time::Duration::days(365))
            .build();
        // The jar signs the value as it becomes a Set-Cookie header.
        let jar = SignedCookieJar::new(config.key.clone()).add(cookie);
        return (jar, res).into_response();
    }
    res
}
