//! Browser session → shopper. A session id (from the signed cookie) maps to a user row, created
//! on the first write so that browsing alone never writes to the database.

use super::{db_error, now};
use crate::db::Db;
use app::model::{OrderCounts, Profile};
use app::port::{Result, SessionId};

/// How often a session's `last_seen_at` is written (a write per visit would queue every page
/// view behind SQLite's single writer).
pub const TOUCH_EVERY_SECS: i64 = 3600;

/// Notes that `session` was seen, if it was last noted more than an hour ago.
async fn touch(pool: &Db, session: &SessionId, last_seen_at: i64) -> Result<()> {
    let now = now();
    if last_seen_at <= now - TOUCH_EVERY_SECS {
        crate::sql!(pool, e => sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&session.0)
            .execute(e).await.map(crate::db::Done::from))
        .map_err(db_error)?;
    }
    Ok(())
}

pub async fn user(pool: &Db, session: &SessionId) -> Result<Option<i64>> {
    let row: Option<(i64, i64)> =
        crate::sql!(pool, e => sqlx::query_as("SELECT user_id, last_seen_at FROM sessions WHERE id = $1")
            .bind(&session.0)
            .fetch_optional(e).await)
            .map_err(db_error)?;
    let Some((user, seen)) = row else {
        return Ok(None);
    };
    touch(pool, session, seen).await?;
    Ok(Some(user))
}

pub async fn user_or_create(pool: &Db, session: &SessionId) -> Result<i64> {
    if let Some(user) = user(pool, session).await? {
        return Ok(user);
    }
    let mut tx = pool.begin().await.map_err(db_error)?;
    let user: i64 = crate::sql!(&mut tx, e => sqlx::query_scalar("INSERT INTO users (created_at) VALUES ($1) RETURNING id")
        .bind(now())
        .fetch_one(e).await)
        .map_err(db_error)?;
    // Two first requests of one browser can race here: the loser keeps the winner's user.
    crate::sql!(&mut tx, e => sqlx::query(
        "INSERT INTO sessions (id, user_id, created_at, last_seen_at) VALUES ($1, $2, $3, $3) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&session.0)
    .bind(user)
    .bind(now())
    .execute(e).await.map(crate::db::Done::from))
    .map_err(db_error)?;
    let bound: i64 =
        crate::sql!(&mut tx, e => sqlx::query_scalar("SELECT user_id FROM sessions WHERE id = $1")
        .bind(&session.0)
        .fetch_one(e).await)
        .map_err(db_error)?;
    if bound != user {
        crate::sql!(&mut tx, e => sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user)
            .execute(e).await.map(crate::db::Done::from))
        .map_err(db_error)?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(bound)
}

/// After a verified OAuth callback: the WeChat user with `openid` (created if new) is bound to
/// `new_session`, which replaces `old_session` (a fresh id, so a session id planted before the
/// login is worth nothing after it). An anonymous shopper's cart, orders and addresses move
/// over to the WeChat user.
pub async fn bind_openid(
    pool: &Db,
    old_session: &SessionId,
    new_session: &SessionId,
    openid: &str,
    unionid: Option<&str>,
) -> Result<i64> {
    let mut tx = pool.begin().await.map_err(db_error)?;
    let user: i64 = crate::sql!(&mut tx, e => sqlx::query_scalar(
        "INSERT INTO users (openid, unionid, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (openid) DO UPDATE SET unionid = COALESCE(excluded.unionid, users.unionid) \
         RETURNING id",
    )
    .bind(openid)
    .bind(unionid)
    .bind(now())
    .fetch_one(e).await)
    .map_err(db_error)?;
    let anon: Option<i64> = crate::sql!(&mut tx, e => sqlx::query_scalar(
        "SELECT s.user_id FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.id = $1 AND u.openid IS NULL",
    )
    .bind(&old_session.0)
    .fetch_optional(e).await)
    .map_err(db_error)?;
    if let Some(anon) = anon.filter(|a| *a != user) {
        crate::sql!(&mut tx, e => sqlx::query(
            "INSERT INTO cart_lines (user_id, sku_id, quantity, selected, updated_at) \
             SELECT $1, sku_id, quantity, selected, updated_at FROM cart_lines WHERE user_id = $2 AND TRUE \
             ON CONFLICT (user_id, sku_id) DO UPDATE SET \
               quantity = CASE WHEN cart_lines.quantity + excluded.quantity > $3 THEN $3 \
                 ELSE cart_lines.quantity + excluded.quantity END, \
               updated_at = excluded.updated_at",
        )
        .bind(user)
        .bind(anon)
        .bind(app::model::MAX_LINE_QUANTITY)
        .execute(e).await.map(crate::db::Done::from))
        .map_err(db_error)?;
        for stmt in [
            "DELETE FROM cart_lines WHERE user_id = $2 AND $1 IS NOT NULL",
            "UPDATE orders SET user_id = $1 WHERE user_id = $2",
            "UPDATE addresses SET user_id = $1 WHERE user_id = $2 AND NOT EXISTS \
               (SELECT 1 FROM addresses mine WHERE mine.user_id = $1 AND mine.name = addresses.name \
                AND mine.phone = addresses.phone AND mine.region = addresses.region \
                AND mine.detail = addresses.detail)",
        ] {
            crate::sql!(&mut tx, e => sqlx::query(stmt)
                .bind(user)
                .bind(anon)
                .execute(e).await.map(crate::db::Done::from))
                .map_err(db_error)?;
        }
    }
    crate::sql!(&mut tx, e => sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(&old_session.0)
        .execute(e).await.map(crate::db::Done::from))
    .map_err(db_error)?;
    crate::sql!(&mut tx, e => sqlx::query(
        "INSERT INTO sessions (id, user_id, created_at, last_seen_at) VALUES ($1, $2, $3, $3) \
         ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, \
           last_seen_at = excluded.last_seen_at",
    )
    .bind(&new_session.0)
    .bind(user)
    .bind(now())
    .execute(e).await.map(crate::db::Done::from))
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(user)
}

/// A session's WeChat identity (an openid is bound), as the OAuth entry needs it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Identity {
    pub user_id: i64,
    /// The profile (nickname, avatar) was shared through `snsapi_userinfo`.
    pub has_profile: bool,
    /// When the profile was last asked for in vain (the shopper declined, or WeChat failed).
    pub profile_declined_at: Option<i64>,
}

/// The WeChat identity bound to the session, if any (a visit: the session is seen).
pub async fn identity(pool: &Db, session: &SessionId) -> Result<Option<Identity>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        identity: Identity,
        last_seen_at: i64,
    }
    let row: Option<Row> = crate::sql!(pool, e => sqlx::query_as(
        "SELECT u.id AS user_id, u.nickname IS NOT NULL AS has_profile, u.profile_declined_at, \
           s.last_seen_at FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.id = $1 AND u.openid IS NOT NULL",
    )
    .bind(&session.0)
    .fetch_optional(e).await)
    .map_err(db_error)?;
    let Some(row) = row else {
        return Ok(None);
    };
    touch(pool, session, row.last_seen_at).await?;
    Ok(Some(row.identity))
}

/// Stores the profile WeChat returned (`sns/userinfo`), cleaned: a nickname WeChat sends empty
/// or an avatar that is no image URL is kept as "none", not as garbage.
pub async fn save_profile(pool: &Db, user_id: i64, nickname: &str, avatar_url: &str) -> Result<()> {
    crate::sql!(pool, e => sqlx::query(
        "UPDATE users SET nickname = $1, avatar_url = $2, profile_updated_at = $3, \
         profile_declined_at = NULL WHERE id = $4",
    )
    .bind(clean_nickname(nickname))
    .bind(clean_avatar_url(avatar_url))
    .bind(now())
    .bind(user_id)
    .execute(e).await.map(crate::db::Done::from))
    .map_err(db_error)?;
    Ok(())
}

/// The profile was asked for in vain: the shopper said no (or WeChat did not give it).
pub async fn decline_profile(pool: &Db, user_id: i64) -> Result<()> {
    crate::sql!(pool, e => sqlx::query("UPDATE users SET profile_declined_at = $1 WHERE id = $2")
        .bind(now())
        .bind(user_id)
        .execute(e).await.map(crate::db::Done::from))
    .map_err(db_error)?;
    Ok(())
}

/// What the 我的 page shows of the shopper, with the user id (order counts are added by the
/// caller).
pub async fn profile(pool: &Db, session: &SessionId) -> Result<Option<(i64, Profile)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: i64,
        wechat: bool,
        nickname: Option<String>,
        avatar_url: Option<String>,
    }
    let row: Option<Row> = crate::sql!(pool, e => sqlx::query_as(
        "SELECT u.id, u.openid IS NOT NULL AS wechat, u.nickname, u.avatar_url \
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
    )
    .bind(&session.0)
    .fetch_optional(e).await)
    .map_err(db_error)?;
    Ok(row.map(|r| {
        (
            r.id,
            Profile {
                wechat: r.wechat,
                nickname: r.nickname,
                avatar_url: r.avatar_url,
                order_counts: OrderCounts::default(),
            },
        )
    }))
}

/// A nickname fit to show: no control characters, trimmed, at most 32 characters (WeChat's own
/// limit is shorter); `None` when nothing is left.
pub fn clean_nickname(raw: &str) -> Option<String> {
    let cleaned: String = raw
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .chars()
        .take(32)
        .collect();
    (!cleaned.is_empty()).then_some(cleaned)
}

/// An avatar URL fit for `<img src>`: WeChat's CDN serves `https://` (older answers say
/// `http://`, which an `https` shop page would block as mixed content, so it is upgraded);
/// the sandbox sends `data:image/…`. Anything else (`javascript:`, relative paths, huge
/// strings) is dropped.
pub fn clean_avatar_url(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.len() > 16 * 1024 || raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return None;
    }
    if let Some(rest) = raw.strip_prefix("http://") {
        return (!rest.is_empty()).then(|| format!("https://{rest}"));
    }
    if raw.len() > "https://".len() && raw.starts_with("https://") {
        return Some(raw.to_string());
    }
    if raw.starts_with("data:image/") && raw.contains(";base64,") {
        return Some(raw.to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicknames_are_cleaned() {
        assert_eq!(clean_nickname(" 张小明 ").as_deref(), Some("张小明"));
        assert_eq!(clean_nickname("a\u{0}b\nc").as_deref(), Some("abc"));
        assert_eq!(clean_nickname("   "), None);
        assert_eq!(
            clean_nickname(&"长".repeat(100)).map(|n| n.chars().count()),
            Some(32)
        );
    }

    #[test]
    fn only_image_urls_are_kept_as_avatars() {
        assert_eq!(
            clean_avatar_url("https://thirdwx.qlogo.cn/mmopen/abc/132").as_deref(),
            Some("https://thirdwx.qlogo.cn/mmopen/abc/132")
        );
        assert_eq!(
            clean_avatar_url("http://thirdwx.qlogo.cn/mmopen/abc/132").as_deref(),
            Some("https://thirdwx.qlogo.cn/mmopen/abc/132")
        );
        assert!(clean_avatar_url("data:image/svg+xml;base64,PHN2Zz4=").is_some());
        for bad in [
            "",
            "javascript:alert(1)",
            "/images/a.svg",
            "https://",
            "https://a b",
            "data:text/html;base64,PHNjcmlwdD4=",
        ] {
            assert_eq!(clean_avatar_url(bad), None, "{bad:?}");
        }
    }
}

/// What [`prune`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub oauth_states: u64,
    pub users: u64,
    pub sessions: u64,
    /// Console sessions idle past `admin::IDLE_SECS` (they no longer open anything).
    pub admin_sessions: u64,
    /// Failed console logins older than the rate limit's window (they no longer count).
    pub admin_login_failures: u64,
}

/// How long an anonymous shopper who keeps nothing is kept.
pub const IDLE_ANONYMOUS_SECS: i64 = 24 * 3600;

/// Removes sessions idle for `session_idle_secs` (their shoppers stay; the cookie's id then
/// leads nowhere), expired OAuth states, and anonymous shoppers (no openid) older than a day
/// who keep nothing — no order, cart line or address — with their sessions.
pub async fn prune(
    pool: &Db,
    now: i64,
    session_idle_secs: i64,
) -> std::result::Result<Pruned, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let expired =
        crate::sql!(&mut tx, e => sqlx::query("DELETE FROM sessions WHERE last_seen_at < $1")
        .bind(now - session_idle_secs)
        .execute(e).await.map(crate::db::Done::from))?
        .rows_affected();
    let oauth_states =
        crate::sql!(&mut tx, e => sqlx::query("DELETE FROM oauth_states WHERE expires_at < $1")
        .bind(now)
        .execute(e).await.map(crate::db::Done::from))?
        .rows_affected();
    // The official account's pushes are remembered a day for deduplication.
    crate::sql!(&mut tx, e => sqlx::query("DELETE FROM mp_messages WHERE received_at < $1")
        .bind(now - crate::mp::DEDUPE_SECS)
        .execute(e).await.map(crate::db::Done::from))?;
    let idle = "SELECT u.id FROM users u WHERE u.openid IS NULL AND u.created_at < $1 \
        AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id) \
        AND NOT EXISTS (SELECT 1 FROM cart_lines c WHERE c.user_id = u.id) \
        AND NOT EXISTS (SELECT 1 FROM addresses a WHERE a.user_id = u.id)";
    let sessions = crate::sql!(&mut tx, e => sqlx::query(&format!("DELETE FROM sessions WHERE user_id IN ({idle})"))
        .bind(now - IDLE_ANONYMOUS_SECS)
        .execute(e).await.map(crate::db::Done::from))?
        .rows_affected();
    let users =
        crate::sql!(&mut tx, e => sqlx::query(&format!("DELETE FROM users WHERE id IN ({idle})"))
        .bind(now - IDLE_ANONYMOUS_SECS)
        .execute(e).await.map(crate::db::Done::from))?
        .rows_affected();
    // The console's leftovers: idle sessions and failures outside the login limit's window.
    let admin_sessions =
        crate::sql!(&mut tx, e => sqlx::query("DELETE FROM admin_sessions WHERE last_seen_at < $1")
        .bind(now - crate::admin::IDLE_SECS)
        .execute(e).await.map(crate::db::Done::from))?
        .rows_affected();
    let admin_login_failures =
        crate::sql!(&mut tx, e => sqlx::query("DELETE FROM admin_login_failures WHERE at < $1")
        .bind(now - crate::admin::FAILURE_WINDOW_SECS)
        .execute(e).await.map(crate::db::Done::from))?
        .rows_affected();
    tx.commit().await?;
    Ok(Pruned {
        oauth_states,
        users,
        sessions: sessions + expired,
        admin_sessions,
        admin_login_failures,
    })
}
