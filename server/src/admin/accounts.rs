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
    #[error("the shop must keep at least one owner who can sign in")]
    LastOwner,
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

/// What the console may change about an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Role(Role),
    Disable,
    Enable,
}

/// The console's change of an account, which never leaves the shop without an owner who can
/// sign in: demoting or disabling the last active owner is [`AccountError::LastOwner`]. The
/// active owners are locked first (`FOR UPDATE` on PostgreSQL; SQLite's writers queue), so two
/// owners demoting each other at once cannot both succeed. Disabling ends the account's sessions.
/// Returns the account as it is now.
pub async fn change(pool: &Db, username: &str, change: Change) -> Result<Account, AccountError> {
    let mut tx = pool.begin().await?;
    let lock = match pool.backend() {
        crate::db::Backend::Postgres => " FOR UPDATE",
        crate::db::Backend::Sqlite => "",
    };
    let owners: Vec<String> = crate::sql!(&mut tx, e => sqlx::query_scalar(&format!(
        "SELECT username FROM admins WHERE role = 'owner' AND disabled_at IS NULL ORDER BY id{lock}"
    ))
    .fetch_all(e).await)?;
    let id: Option<i64> = crate::sql!(&mut tx, e => sqlx::query_scalar(&format!(
        "SELECT id FROM admins WHERE username = $1{lock}"
    ))
    .bind(username)
    .fetch_optional(e).await)?;
    let id = id.ok_or_else(|| AccountError::Unknown(username.to_string()))?;
    let loses_owner = matches!(change, Change::Role(Role::Staff) | Change::Disable);
    if loses_owner && owners.len() == 1 && owners[0] == username {
        return Err(AccountError::LastOwner);
    }
    let now = crate::shop::now();
    match change {
        Change::Role(role) => {
            crate::sql!(&mut tx, e => sqlx::query("UPDATE admins SET role = $1 WHERE id = $2")
                .bind(role.as_str())
                .bind(id)
                .execute(e).await.map(crate::db::Done::from))?;
        }
        Change::Disable => {
            crate::sql!(&mut tx, e => sqlx::query(
                "UPDATE admins SET disabled_at = COALESCE(disabled_at, $1) WHERE id = $2",
            )
            .bind(now)
            .bind(id)
            .execute(e).await.map(crate::db::Done::from))?;
            crate::sql!(&mut tx, e => sqlx::query("DELETE FROM admin_sessions WHERE admin_id = $1")
                .bind(id)
                .execute(e).await.map(crate::db::Done::from))?;
        }
        Change::Enable => {
            crate::sql!(&mut tx, e => sqlx::query("UPDATE admins SET disabled_at = NULL WHERE id = $1")
                .bind(id)
                .execute(e).await.map(crate::db::Done::from))?;
        }
    }
    let account: Account = crate::sql!(&mut tx, e => sqlx::query_as(
        "SELECT username, role, created_at, disabled_at FROM admins WHERE id = $1",
    )
    .bind(id)
    .fetch_one(e).await)?;
    tx.commit().await?;
    Ok(account)
}

// ------------------------------------------------------------------ the console's API (owner only)
//
// - `list_admins` → `{"admins":[{"username","role","created_at","disabled_at"}]}`
// - `save_admin` `{"username","role":"owner|staff","password"?}`: a new username is created (its
//   password required); an existing one gets the role. Demoting the last active owner → 409.
// - `set_admin_password` `{"username","password"}`: its sessions end.
// - `disable_admin` / `enable_admin` `{"username"}`: disabling ends its sessions; not oneself,
//   not the last active owner (409).
// Every write is audited (never with a password). Staff → 403.

use super::{audit, error, field, internal, invalid, parse, signed_in, AdminState};
use app::error::ErrorCode;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct AccountBody {
    username: String,
    role: Option<String>,
    password: Option<String>,
}

/// The signed-in owner, or the answer for anyone else.
async fn owner(st: &AdminState, headers: &HeaderMap) -> Result<super::Admin, Response> {
    let admin = signed_in(st, headers).await?;
    if admin.role != Role::Owner {
        return Err(error(ErrorCode::Forbidden, "只有店主可以管理账号"));
    }
    Ok(admin)
}

/// The signed-in owner and the call's body, or the answer to send instead.
async fn owner_call(
    st: &AdminState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(super::Admin, AccountBody), Response> {
    let admin = owner(st, headers).await?;
    Ok((admin, parse(body)?))
}

/// An [`AccountError`] as the API answers it.
fn refused(e: AccountError) -> Response {
    match e {
        AccountError::BadUsername => invalid(vec![field(
            "username",
            "用户名为 2 到 32 个字母、数字、“.”、“-”或“_”",
        )]),
        AccountError::WeakPassword => invalid(vec![field(
            "password",
            &format!("密码至少 {MIN_PASSWORD_CHARS} 个字符"),
        )]),
        AccountError::Exists(_) => invalid(vec![field("username", "该用户名已存在")]),
        AccountError::Unknown(_) => error(ErrorCode::NotFound, "没有这个账号"),
        AccountError::LastOwner => error(
            ErrorCode::InvalidState,
            "店铺至少要保留一个可登录的店主账号",
        ),
        AccountError::Db(e) => internal(e),
        AccountError::Hash(e) => internal(e),
    }
}

pub(super) async fn list_admins(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    if let Err(r) = owner(&st, &headers).await {
        return r;
    }
    match list(&st.pool).await {
        Ok(admins) => Json(json!({ "admins": admins })).into_response(),
        Err(e) => refused(e),
    }
}

pub(super) async fn save_admin(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (admin, b) = match owner_call(&st, &headers, &body).await {
        Ok(call) => call,
        Err(r) => return r,
    };
    let username = b.username.trim();
    let Some(role) = b.role.as_deref().and_then(Role::parse) else {
        return invalid(vec![field(
            "role",
            "角色须为 owner（店主）或 staff（店员）",
        )]);
    };
    let exists = match list(&st.pool).await {
        Ok(all) => all.into_iter().find(|a| a.username == username),
        Err(e) => return refused(e),
    };
    let (action, before) = match exists {
        None => {
            let Some(password) = b.password.as_deref().filter(|p| !p.is_empty()) else {
                return invalid(vec![field("password", "新账号须设置密码")]);
            };
            if let Err(e) = add(&st.pool, username, role, password).await {
                return refused(e);
            }
            ("add_admin", None)
        }
        Some(old) => {
            if b.password.as_deref().is_some_and(|p| !p.is_empty()) {
                return invalid(vec![field("password", "已有账号的密码请用“重设密码”修改")]);
            }
            if let Err(e) = change(&st.pool, username, Change::Role(role)).await {
                return refused(e);
            }
            ("set_admin_role", Some(old.role))
        }
    };
    let detail = json!({"username": username, "role": role.as_str(), "before": before});
    if let Err(e) = audit(&st.pool, &admin, action, detail).await {
        return internal(e);
    }
    account_answer(&st, username).await
}

pub(super) async fn set_admin_password(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (admin, b) = match owner_call(&st, &headers, &body).await {
        Ok(call) => call,
        Err(r) => return r,
    };
    let username = b.username.trim();
    if let Err(e) = set_password(&st.pool, username, b.password.as_deref().unwrap_or("")).await {
        return refused(e);
    }
    if let Err(e) = audit(
        &st.pool,
        &admin,
        "set_admin_password",
        json!({"username": username}),
    )
    .await
    {
        return internal(e);
    }
    account_answer(&st, username).await
}

pub(super) async fn disable_admin(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    enable_or_disable(st, headers, body, Change::Disable).await
}

pub(super) async fn enable_admin(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    enable_or_disable(st, headers, body, Change::Enable).await
}

async fn enable_or_disable(
    st: AdminState,
    headers: HeaderMap,
    body: axum::body::Bytes,
    what: Change,
) -> Response {
    let (admin, b) = match owner_call(&st, &headers, &body).await {
        Ok(call) => call,
        Err(r) => return r,
    };
    let username = b.username.trim();
    if what == Change::Disable && username == admin.username {
        return error(ErrorCode::InvalidState, "不能停用自己正在使用的账号");
    }
    if let Err(e) = change(&st.pool, username, what).await {
        return refused(e);
    }
    let action = if what == Change::Disable {
        "disable_admin"
    } else {
        "enable_admin"
    };
    if let Err(e) = audit(&st.pool, &admin, action, json!({"username": username})).await {
        return internal(e);
    }
    account_answer(&st, username).await
}

/// The account as `list_admins` shows it.
async fn account_answer(st: &AdminState, username: &str) -> Response {
    match list(&st.pool).await {
        Ok(all) => match all.into_iter().find(|a| a.username == username) {
            Some(a) => Json(json!(a)).into_response(),
            None => error(ErrorCode::NotFound, "没有这个账号"),
        },
        Err(e) => refused(e),
    }
}
