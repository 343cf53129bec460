//! Console accounts: `wxmall admin add | passwd | list | disable`. Passwords are stored as
//! argon2id PHC strings; they come from standard input, never from the command line.

use crate::db::Db;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use serde::Serialize;

/// What an account may do: `owner` everything; `staff` no refunds, prices or accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Staff,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Staff => "staff",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Role::Owner),
            "staff" => Some(Role::Staff),
            _ => None,
        }
    }
}

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("a username is 2 to 32 letters, digits, '.', '-' or '_'")]
    BadUsername,
    #[error("a password has at least {MIN_PASSWORD_CHARS} characters")]
    WeakPassword,
    #[error("{0:?} exists already")]
    Exists(String),
    #[error("no account {0:?}")]
    Unknown(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

fn check_username(name: &str) -> Result<(), AccountError> {
    let ok = (2..=32).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(AccountError::BadUsername)
    }
}

/// An argon2id hash of `password`.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccountError::WeakPassword);
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// Whether `password` matches the stored hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The password on the first line of `input` (standard input), without its line end.
pub fn read_password(input: &mut impl std::io::BufRead) -> std::io::Result<String> {
    let mut line = String::new();
    input.read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub async fn add(
    pool: &Db,
    username: &str,
    role: Role,
    password: &str,
) -> Result<i64, AccountError> {
    check_username(username)?;
    let hash = hash_password(password)?;
    let id: Option<i64> = crate::sql!(pool, e => sqlx::query_scalar(
        "INSERT INTO admins (username, password_hash, role, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (username) DO NOTHING RETURNING id",
    )
    .bind(username)
    .bind(hash)
    .bind(role.as_str())
    .bind(crate::shop::now())
    .fetch_optional(e).await)?;
    id.ok_or_else(|| AccountError::Exists(username.to_string()))
}

/// A new password; every session of the account ends.
pub async fn set_password(pool: &Db, username: &str, password: &str) -> Result<(), AccountError> {
    let hash = hash_password(password)?;
    let mut tx = pool.begin().await?;
    let id: Option<i64> = crate::sql!(&mut tx, e => sqlx::query_scalar("UPDATE admins SET password_hash = $1 WHERE username = $2 RETURNING id")
            .bind(hash)
            .bind(username)
            .fetch_optional(e).await)?;
    let id = id.ok_or_else(|| AccountError::Unknown(username.to_string()))?;
    crate::sql!(&mut tx, e => sqlx::query("DELETE FROM admin_sessions WHERE admin_id = $1")
        .bind(id)
        .execute(e).await.map(crate::db::Done::from))?;
    tx.commit().await?;
    Ok(())
}

/// No more logins; every session of the account ends.
pub async fn disable(pool: &Db, username: &str) -> Result<(), AccountError> {
    let mut tx = pool.begin().await?;
    let id: Option<i64> = crate::sql!(&mut tx, e => sqlx::query_scalar(
        "UPDATE admins SET disabled_at = COALESCE(disabled_at, $1) WHERE username = $2 RETURNING id",
    )
    .bind(crate::shop::now())
    .bind(username)
    .fetch_optional(e).await)?;
    let id = id.ok_or_else(|| AccountError::Unknown(username.to_string()))?;
    crate::sql!(&mut tx, e => sqlx::query("DELETE FROM admin_sessions WHERE admin_id = $1")
        .bind(id)
        .execute(e).await.map(crate::db::Done::from))?;
    tx.commit().await?;
    Ok(())
}

/// An account as `wxmall admin list` shows it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Account {
    pub username: String,
    pub role: String,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
}

pub async fn list(pool: &Db) -> Result<Vec<Account>, AccountError> {
    Ok(crate::sql!(pool, e => sqlx::query_as(
        "SELECT username, role, created_at, disabled_at FROM admins ORDER BY username",
    )
    .fetch_all(e).await)?)
}
