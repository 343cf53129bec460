//! Browser session → shopper. A session id (from the signed cookie) maps to a user row, created
//! on the first write so that browsing alone never writes to the database.

use super::{db_error, now};
use app::port::{Result, SessionId};
use sqlx::SqlitePool;

pub async fn user(pool: &SqlitePool, session: &SessionId) -> Result<Option<i64>> {
    sqlx::query_scalar::<_, i64>("SELECT user_id FROM sessions WHERE id = $1")
        .bind(&session.0)
        .fetch_optional(pool)
        .await
        .map_err(db_error)
}

pub async fn user_or_create(pool: &SqlitePool, session: &SessionId) -> Result<i64> {
    if let Some(user) = user(pool, session).await? {
        return Ok(user);
    }
    let mut tx = pool.begin().await.map_err(db_error)?;
    let user: i64 = sqlx::query_scalar("INSERT INTO users (created_at) VALUES ($1) RETURNING id")
        .bind(now())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
    // Two first requests of one browser can race here: the loser keeps the winner's user.
    sqlx::query(
        "INSERT INTO sessions (id, user_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&session.0)
    .bind(user)
    .bind(now())
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    let bound: i64 = sqlx::query_scalar("SELECT user_id FROM sessions WHERE id = $1")
        .bind(&session.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
    if bound != user {
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(bound)
}

/// The openid bound to the session's user, if any.
pub async fn openid(pool: &SqlitePool, session: &SessionId) -> Result<Option<String>> {
    Ok(sqlx::query_scalar::<_, Option<String>>(
        "SELECT u.openid FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
    )
    .bind(&session.0)
    .fetch_optional(pool)
    .await
    .map_err(db_error)?
    .flatten())
}

/// After a verified OAuth callback: the WeChat user with `openid` (created if new) is bound to
/// `new_session`, which replaces `old_session` (a fresh id, so a session id planted before the
/// login is worth nothing after it). An anonymous shopper's cart, orders and addresses move
/// over to the WeChat user.
pub async fn bind_openid(
    pool: &SqlitePool,
    old_session: &SessionId,
    new_session: &SessionId,
    openid: &str,
    unionid: Option<&str>,
) -> Result<i64> {
    let mut tx = pool.begin().await.map_err(db_error)?;
    let user: i64 = sqlx::query_scalar(
        "INSERT INTO users (openid, unionid, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (openid) DO UPDATE SET unionid = COALESCE(excluded.unionid, users.unionid) \
         RETURNING id",
    )
    .bind(openid)
    .bind(unionid)
    .bind(now())
    .fetch_one(&mut *tx)
    .await
    .map_err(db_error)?;
    let anon: Option<i64> = sqlx::query_scalar(
        "SELECT s.user_id FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.id = $1 AND u.openid IS NULL",
    )
    .bind(&old_session.0)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db_error)?;
    if let Some(anon) = anon.filter(|a| *a != user) {
        sqlx::query(
            "INSERT INTO cart_lines (user_id, sku_id, quantity, selected, updated_at) \
             SELECT $1, sku_id, quantity, selected, updated_at FROM cart_lines WHERE user_id = $2 AND TRUE \
             ON CONFLICT (user_id, sku_id) DO UPDATE SET \
               quantity = MIN(cart_lines.quantity + excluded.quantity, $3), \
               updated_at = excluded.updated_at",
        )
        .bind(user)
        .bind(anon)
        .bind(app::model::MAX_LINE_QUANTITY)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        for stmt in [
            "DELETE FROM cart_lines WHERE user_id = $2 AND $1 IS NOT NULL",
            "UPDATE orders SET user_id = $1 WHERE user_id = $2",
            "UPDATE OR IGNORE addresses SET user_id = $1 WHERE user_id = $2",
        ] {
            sqlx::query(stmt)
                .bind(user)
                .bind(anon)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
    }
    sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(&old_session.0)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
    sqlx::query(
        "INSERT INTO sessions (id, user_id, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id",
    )
    .bind(&new_session.0)
    .bind(user)
    .bind(now())
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(user)
}
