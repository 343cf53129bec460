//! The shop's database: SQLite (the embedded default: one file, created on first run, WAL,
//! foreign keys) or PostgreSQL (`DATABASE_URL=postgres://…`, for several instances), each with
//! its own embedded migrations (`server/migrations/sqlite/`, `server/migrations/postgres/`,
//! kept in step: a test compares the two schemas).
//!
//! Every query is written once, in SQL both databases accept (`$N` placeholders, `RETURNING`,
//! `ON CONFLICT`, `CAST(SUM(…) AS BIGINT)`, no SQLite-only functions) and run through
//! [`sql!`](crate::sql), which compiles it for each backend:
//!
//! ```ignore
//! let stock: i64 = sql!(pool, e => sqlx::query_scalar("SELECT stock FROM skus WHERE id = $1")
//!     .bind(sku_id).fetch_one(e).await)?;
//! let mut tx = pool.begin().await?;
//! let moved = sql!(&mut tx, e => sqlx::query("UPDATE …").execute(e).await.map(|r| r.rows_affected()))?;
//! tx.commit().await?;
//! ```

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// SQLite's migrations (the embedded default).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
/// PostgreSQL's migrations: the same versions, the same schema, PostgreSQL's types.
pub static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend of `url`: `sqlite:` or a plain path → SQLite, `postgres://` or
    /// `postgresql://` → PostgreSQL; anything else (MySQL …) is refused. Without this, sqlx
    /// would read `mysql://root@db/wxmall` as a relative SQLite file path and quietly create a
    /// file of that name.
    pub fn of_url(url: &str) -> Result<Self, DbError> {
        let lower = url.trim().to_ascii_lowercase();
        let scheme = lower.split_once(':').map(|(s, _)| s).filter(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
        });
        match scheme {
            None | Some("sqlite") => Ok(Self::Sqlite),
            Some("postgres") | Some("postgresql") => Ok(Self::Postgres),
            Some(_) => Err(DbError::Unsupported { url: masked(url) }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }

    /// What a claiming `SELECT … LIMIT n` ends with so that concurrent claimers take different
    /// rows: ` FOR UPDATE SKIP LOCKED` on PostgreSQL; nothing on SQLite, whose writers queue
    /// one after the other anyway.
    pub fn skip_locked(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    pub fn migrator(self) -> &'static sqlx::migrate::Migrator {
        match self {
            Self::Sqlite => &MIGRATOR,
            Self::Postgres => &PG_MIGRATOR,
        }
    }
}

/// A pool on one of the two databases. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqliteDb),
    Postgres(PgPool),
}

/// SQLite's pool and its writers' queue.
///
/// SQLite lets one transaction write at a time. Left to itself, a transaction that finds the
/// write lock taken sleeps in SQLite's busy handler (1, 2, 5, 10 … 100 ms steps) and tries
/// again, so under concurrent payment notifications the unlucky ones waited 60–110 ms (p99)
/// although each write takes well under a millisecond. Here every transaction of this process
/// ([`Db::begin`]) first takes the one writer's place in a FIFO queue (a semaphore, no pool
/// connection held while waiting), then begins with `BEGIN IMMEDIATE` (the write lock at once,
/// never a failed read→write upgrade): writers follow each other with no sleeps. Other
/// processes on the same file (`wxmall refund` …) still meet SQLite's busy handler, as before.
#[derive(Clone, Debug)]
pub struct SqliteDb {
    pool: SqlitePool,
    writer: Arc<Semaphore>,
}

impl SqliteDb {
    fn new(pool: SqlitePool) -> Self {
        Self {
            pool,
            writer: Arc::new(Semaphore::new(1)),
        }
    }
}

impl std::ops::Deref for SqliteDb {
    type Target = SqlitePool;
    fn deref(&self) -> &SqlitePool {
        &self.pool
    }
}

/// How long a transaction waits for the writer's place before failing, like SQLite's own
/// busy timeout.
const WRITER_WAIT: Duration = Duration::from_secs(10);

/// A transaction on a [`Db`]; rolled back when dropped without [`Tx::commit`].
#[derive(Debug)]
pub enum Tx<'c> {
    /// The transaction, and the writer's place it holds until it ends (none for a
    /// [`Db::snapshot`], which only reads).
    Sqlite(Transaction<'c, Sqlite>, Option<OwnedSemaphorePermit>),
    Postgres(Transaction<'c, Postgres>),
}

/// Where [`sql!`](crate::sql) runs a query: a pool or a transaction's connection.
pub enum Exec<'a> {
    SqlitePool(&'a SqlitePool),
    SqliteConn(&'a mut SqliteConnection),
    PgPool(&'a PgPool),
    PgConn(&'a mut PgConnection),
}

impl<'a> From<&'a Db> for Exec<'a> {
    fn from(db: &'a Db) -> Self {
        match db {
            Db::Sqlite(p) => Exec::SqlitePool(&p.pool),
            Db::Postgres(p) => Exec::PgPool(p),
        }
    }
}

impl<'a> From<&'a mut Db> for Exec<'a> {
    fn from(db: &'a mut Db) -> Self {
        Exec::from(&*db)
    }
}

impl<'a, 'c> From<&'a mut Tx<'c>> for Exec<'a> {
    fn from(tx: &'a mut Tx<'c>) -> Self {
        match tx {
            Tx::Sqlite(t, _) => Exec::SqliteConn(t),
            Tx::Postgres(t) => Exec::PgConn(t),
        }
    }
}

impl<'a> Exec<'a> {
    /// A shorter-lived `Exec` on the same pool or connection, for running several queries.
    pub fn reborrow(&mut self) -> Exec<'_> {
        match self {
            Exec::SqlitePool(p) => Exec::SqlitePool(p),
            Exec::SqliteConn(c) => Exec::SqliteConn(c),
            Exec::PgPool(p) => Exec::PgPool(p),
            Exec::PgConn(c) => Exec::PgConn(c),
        }
    }
}

impl<'a> From<&'a mut Exec<'_>> for Exec<'a> {
    fn from(e: &'a mut Exec<'_>) -> Self {
        e.reborrow()
    }
}

/// Runs `$body` with `$e` bound to the executor of `$x` (a `&Db`, a `&mut Tx` or a
/// `&mut Exec`), compiled once per backend. Every arm must produce the same type: map an
/// `execute` to its `rows_affected()`.
#[macro_export]
macro_rules! sql {
    ($x:expr, $e:ident => $body:expr) => {
        match $crate::db::Exec::from($x) {
            $crate::db::Exec::SqlitePool($e) => $body,
            $crate::db::Exec::SqliteConn($e) => $body,
            $crate::db::Exec::PgPool($e) => $body,
            $crate::db::Exec::PgConn($e) => $body,
        }
    };
}

/// What an `execute` did, the same on both backends.
#[derive(Clone, Copy, Debug)]
pub struct Done(u64);

impl Done {
    pub fn rows_affected(&self) -> u64 {
        self.0
    }
}

impl From<sqlx::sqlite::SqliteQueryResult> for Done {
    fn from(r: sqlx::sqlite::SqliteQueryResult) -> Self {
        Done(r.rows_affected())
    }
}

impl From<sqlx::postgres::PgQueryResult> for Done {
    fn from(r: sqlx::postgres::PgQueryResult) -> Self {
        Done(r.rows_affected())
    }
}

impl Db {
    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    pub async fn begin(&self) -> Result<Tx<'static>, sqlx::Error> {
        Ok(match self {
            Db::Sqlite(p) => {
                let place = tokio::time::timeout(WRITER_WAIT, p.writer.clone().acquire_owned())
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)?
                    .map_err(|_| sqlx::Error::PoolClosed)?;
                Tx::Sqlite(p.pool.begin_with("BEGIN IMMEDIATE").await?, Some(place))
            }
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// A transaction that only reads: all its queries see the database at one moment, so a page
    /// built from several of them never shows half of a write (an order still 退款中 beside its
    /// refund already 退款成功). SQLite: a deferred transaction, whose snapshot is taken at its
    /// first read, without the writer's place; PostgreSQL: `REPEATABLE READ READ ONLY`. End it
    /// with [`Tx::rollback`] (or drop it).
    pub async fn snapshot(&self) -> Result<Tx<'static>, sqlx::Error> {
        Ok(match self {
            Db::Sqlite(p) => Tx::Sqlite(p.pool.begin_with("BEGIN DEFERRED").await?, None),
            Db::Postgres(p) => Tx::Postgres(
                p.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            ),
        })
    }

    /// The pool's size.
    pub fn max_connections(&self) -> u32 {
        match self {
            Db::Sqlite(p) => p.options().get_max_connections(),
            Db::Postgres(p) => p.options().get_max_connections(),
        }
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(p) => p.close().await,
            Db::Postgres(p) => p.close().await,
        }
    }

    /// The SQLite pool, for code that only ever runs on the embedded default (tests of
    /// SQLite's own behaviour).
    pub fn as_sqlite(&self) -> Option<&SqlitePool> {
        match self {
            Db::Sqlite(p) => Some(&p.pool),
            Db::Postgres(_) => None,
        }
    }
}

impl Tx<'_> {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t, _place) => t.commit().await,
            Tx::Postgres(t) => t.commit().await,
        }
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t, _place) => t.rollback().await,
            Tx::Postgres(t) => t.rollback().await,
        }
    }

    /// Serialises this transaction against every other that takes the same `key`, on every
    /// instance, until it ends (PostgreSQL: a transaction-level advisory lock). SQLite has a
    /// single writer and a single instance: nothing to do.
    pub async fn lock(&mut self, key: i64) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(..) => Ok(()),
            Tx::Postgres(t) => sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(key)
                .execute(&mut **t)
                .await
                .map(|_| ()),
        }
    }
}

/// Advisory lock keys ([`Tx::lock`]).
pub mod locks {
    /// Loading the demo catalogue (several instances starting at once load it once).
    pub const DEMO_CATALOGUE: i64 = 0x7778_6d61_6c6c_0001;
}

/// Takes the named lease (a row of `leases`) for `seconds` if nobody holds it, or its holder's
/// time is up; `true` when this caller now holds it. For work that one instance of several
/// must do once (the daily bill reconciliation): whoever takes the lease does it, the others
/// skip it; an instance that dies holding it loses it when it expires.
pub async fn take_lease(
    db: &Db,
    name: &str,
    holder: &str,
    seconds: i64,
) -> Result<bool, sqlx::Error> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let taken: Option<String> = crate::sql!(db, e => sqlx::query_scalar(
        "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
         WHERE leases.expires_at <= $4 RETURNING holder",
    )
    .bind(name)
    .bind(holder)
    .bind(now.saturating_add(seconds))
    .bind(now)
    .fetch_optional(e).await)?;
    Ok(taken.is_some())
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL names a database this build cannot serve (MySQL …).
    #[error(
        "DATABASE_URL {url:?} is neither SQLite nor PostgreSQL: wxmall serves SQLite \
         (sqlite://path/to/file.db?mode=rwc, the default) and PostgreSQL (postgres://user@host/db); \
         unset DATABASE_URL for the default file under WXMALL_DATA_DIR"
    )]
    Unsupported { url: String },
    #[error("invalid DATABASE_URL {url:?}: {source}")]
    Url { url: String, source: sqlx::Error },
    #[error("cannot create the database directory {dir}: {source}")]
    Dir { dir: String, source: std::io::Error },
    #[error("cannot open the {backend} database {url}: {source}")]
    Open {
        backend: &'static str,
        url: String,
        source: sqlx::Error,
    },
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

fn sqlite_options(url: &str) -> Result<SqliteConnectOptions, DbError> {
    Ok(SqliteConnectOptions::from_str(url)
        .map_err(|source| DbError::Url {
            url: masked(url),
            source,
        })?
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10)))
}

fn pg_options(url: &str) -> Result<PgConnectOptions, DbError> {
    PgConnectOptions::from_str(url).map_err(|source| DbError::Url {
        url: masked(url),
        source,
    })
}

fn open_error(backend: Backend, url: &str) -> impl FnOnce(sqlx::Error) -> DbError + '_ {
    move |source| DbError::Open {
        backend: backend.name(),
        url: masked(url),
        source,
    }
}

async fn sqlite_pool(url: &str, max: u32, options: SqliteConnectOptions) -> Result<Db, DbError> {
    SqlitePoolOptions::new()
        .max_connections(max)
        .connect_with(options)
        .await
        .map(|p| Db::Sqlite(SqliteDb::new(p)))
        .map_err(open_error(Backend::Sqlite, url))
}

async fn pg_pool(url: &str, max: u32, options: PgConnectOptions) -> Result<Db, DbError> {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map(Db::Postgres)
        .map_err(open_error(Backend::Postgres, url))
}

/// Opens the database at `url` (a SQLite file is created if needed) and applies the migrations.
pub async fn connect(url: &str) -> Result<Db, DbError> {
    let backend = Backend::of_url(url)?;
    let db = match backend {
        Backend::Sqlite => {
            let options = sqlite_options(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // WAL + NORMAL is durable against process crashes; a committed order survives.
                .synchronous(SqliteSynchronous::Normal);
            let file = options.get_filename();
            if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                if file.to_str() != Some(":memory:") {
                    std::fs::create_dir_all(dir).map_err(|source| DbError::Dir {
                        dir: dir.display().to_string(),
                        source,
                    })?;
                }
            }
            sqlite_pool(url, 8, options).await?
        }
        Backend::Postgres => pg_pool(url, 16, pg_options(url)?).await?,
    };
    // sqlx holds a database-wide lock while migrating (PostgreSQL: an advisory lock), so
    // instances that start together migrate once.
    match &db {
        Db::Sqlite(p) => MIGRATOR.run(&p.pool).await?,
        Db::Postgres(p) => PG_MIGRATOR.run(p).await?,
    }
    Ok(db)
}

/// Opens an existing database for writing without creating it or running migrations (`wxmall
/// doctor` checks that the migrations are current, and that it can write).
pub async fn open_existing(url: &str) -> Result<Db, DbError> {
    let backend = Backend::of_url(url)?;
    match backend {
        Backend::Sqlite => sqlite_pool(url, 1, sqlite_options(url)?.create_if_missing(false)).await,
        Backend::Postgres => pg_pool(url, 1, pg_options(url)?).await,
    }
}

/// Opens an existing database read-only, for tools that look without touching (`wxmall
/// payments`): no file is created, no migration runs, nothing can be written.
pub async fn open_read_only(url: &str) -> Result<Db, DbError> {
    let backend = Backend::of_url(url)?;
    match backend {
        Backend::Sqlite => {
            let options = sqlite_options(url)?
                .create_if_missing(false)
                .read_only(true);
            sqlite_pool(url, 1, options).await
        }
        Backend::Postgres => {
            let options = pg_options(url)?.options([("default_transaction_read_only", "on")]);
            pg_pool(url, 1, options).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unsupported_database_url_stops_the_start_and_creates_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = std::env::current_dir().unwrap();
        for url in [
            "mysql://root:s3cret@localhost/wxmall",
            "mariadb://db/wxmall",
        ] {
            let err = connect(url).await.unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, DbError::Unsupported { .. }), "{msg}");
            assert!(msg.contains("neither SQLite nor PostgreSQL"), "{msg}");
            assert!(
                !msg.contains("s3cret"),
                "the password is never shown: {msg}"
            );
            assert!(open_read_only(url).await.is_err());
        }
        assert!(!cwd.join("mysql:").exists() && !cwd.join("mariadb:").exists());
        // SQLite URLs and plain paths still work.
        let file = dir.path().join("ok.db");
        let db = connect(&format!("sqlite://{}?mode=rwc", file.display()))
            .await
            .unwrap();
        assert_eq!(db.backend(), Backend::Sqlite);
        assert!(file.exists());
        assert_eq!(masked("postgres://u:p@h/db"), "postgres://u:***@h/db");
    }

    #[tokio::test]
    async fn a_postgres_url_is_served_by_postgres_never_by_a_file_named_like_it() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            Backend::of_url("postgres://shop@db:5432/wxmall").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::of_url("postgresql://db/wxmall").unwrap(),
            Backend::Postgres
        );
        assert_eq!(Backend::of_url("data/wxmall.db").unwrap(), Backend::Sqlite);
        // An unreachable server stops the start with a clear message (no password in it) …
        let err = connect("postgres://shop:s3cret@127.0.0.1:9/wxmall")
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("cannot open the PostgreSQL database"), "{msg}");
        assert!(!msg.contains("s3cret"), "{msg}");
        // … and no SQLite file named like the URL appears (the old behaviour).
        assert!(!cwd.join("postgres:").exists());
    }
}
