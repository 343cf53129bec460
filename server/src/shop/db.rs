//! Opening the database: file created on first run, WAL, foreign keys, embedded migrations.

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::str::FromStr;
use std::time::Duration;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL names a database this build cannot serve (PostgreSQL, MySQL …). Without this,
    /// sqlx would read `postgres://user@db/wxmall` as a relative SQLite file path and quietly
    /// create a file of that name.
    #[error(
        "DATABASE_URL {url:?} is not a SQLite database: this wxmall serves SQLite only \
         (sqlite://path/to/file.db?mode=rwc); unset DATABASE_URL for the default file under WXMALL_DATA_DIR"
    )]
    Unsupported { url: String },
    #[error("invalid DATABASE_URL {url:?}: {source}")]
    Url { url: String, source: sqlx::Error },
    #[error("cannot create the database directory {dir}: {source}")]
    Dir { dir: String, source: std::io::Error },
    #[error("cannot open the database: {0}")]
    Open(sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// `url` with any password replaced by `***`, for messages.
pub fn masked(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// Refuses a URL that is not SQLite's (a `scheme://` other than `sqlite:`).
fn check_sqlite(url: &str) -> Result<(), DbError> {
    let lower = url.trim().to_ascii_lowercase();
    let has_scheme = lower.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+')
    });
    if has_scheme && !lower.starts_with("sqlite:") {
        return Err(DbError::Unsupported { url: masked(url) });
    }
    Ok(())
}

/// Opens (creating if needed) the SQLite database at `url` and applies the migrations.
pub async fn connect(url: &str) -> Result<SqlitePool, DbError> {
    check_sqlite(url)?;
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|source| DbError::Url {
            url: masked(url),
            source,
        })?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // WAL + NORMAL is durable against process crashes; a committed order survives.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let file = options.get_filename();
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        if file.to_str() != Some(":memory:") {
            std::fs::create_dir_all(dir).map_err(|source| DbError::Dir {
                dir: dir.display().to_string(),
                source,
            })?;
        }
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .map_err(DbError::Open)?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Opens an existing database for writing without creating it or running migrations (`wxmall
/// doctor` checks that the migrations are current, and that it can write).
pub async fn open_existing(url: &str) -> Result<SqlitePool, DbError> {
    check_sqlite(url)?;
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|source| DbError::Url {
            url: masked(url),
            source,
        })?
        .create_if_missing(false)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(DbError::Open)
}

/// Opens an existing database read-only, for tools that look without touching (`wxmall
/// payments`): no file is created, no migration runs, nothing can be written.
pub async fn open_read_only(url: &str) -> Result<SqlitePool, DbError> {
    check_sqlite(url)?;
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|source| DbError::Url {
            url: masked(url),
            source,
        })?
        .create_if_missing(false)
        .read_only(true)
        .busy_timeout(Duration::from_secs(10));
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(DbError::Open)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_server_database_url_stops_the_start_and_creates_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = std::env::current_dir().unwrap();
        for url in [
            "postgres://shop:s3cret@db:5432/wxmall",
            "postgresql://db/wxmall",
            "mysql://root@localhost/wxmall",
        ] {
            let err = connect(url).await.unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, DbError::Unsupported { .. }), "{msg}");
            assert!(msg.contains("not a SQLite database"), "{msg}");
            assert!(
                !msg.contains("s3cret"),
                "the password is never shown: {msg}"
            );
            assert!(open_read_only(url).await.is_err());
        }
        assert!(
            !cwd.join("postgres:").exists() && !cwd.join("postgres:/shop:s3cret@db:5432").exists()
        );
        // SQLite URLs and plain paths still work.
        let file = dir.path().join("ok.db");
        connect(&format!("sqlite://{}?mode=rwc", file.display()))
            .await
            .unwrap();
        assert!(file.exists());
        assert_eq!(masked("postgres://u:p@h/db"), "postgres://u:***@h/db");
    }
}
