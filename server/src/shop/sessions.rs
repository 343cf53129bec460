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
