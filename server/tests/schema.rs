//! SQLite's and PostgreSQL's migrations build the same schema: the same tables, columns
//! (type, NOT NULL, default), primary keys, unique constraints, foreign keys, CHECK constraints
//! and named indexes, and the two migration lists carry the same versions. A table or column
//! added to one database and not the other fails here.
//!
//! Needs a PostgreSQL server: `WXMALL_TEST_POSTGRES` (an admin URL), by default
//! `postgres://postgres@127.0.0.1:5432/postgres` (trust authentication, as on CI's machines).

mod common;

use common::TestDb;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    /// column → (type, not null, default)
    columns: BTreeMap<String, (String, bool, Option<String>)>,
    primary_key: Vec<String>,
    /// column lists of UNIQUE constraints (not the primary key)
    unique: BTreeSet<Vec<String>>,
    /// (column, referenced table, referenced column)
    foreign_keys: BTreeSet<(String, String, String)>,
    checks: usize,
    /// named indexes: name → (columns, unique, partial)
    indexes: BTreeMap<String, (Vec<String>, bool, bool)>,
}

type Schema = BTreeMap<String, Table>;

/// Columns SQLite keeps as INTEGER 0/1 with a CHECK (it has no boolean type) where PostgreSQL
/// has BOOLEAN; Rust reads and writes both as `bool`.
const SQLITE_INTEGER_BOOLEANS: &[(&str, &str)] = &[("orders", "paid_in_sandbox")];

/// Tables only SQLite has, each with why. `catalogue_version`: SQLite's triggers bump one row
/// the instances read; PostgreSQL's triggers NOTIFY them instead (migration 0015).
const SQLITE_ONLY_TABLES: &[&str] = &["catalogue_version"];

fn sqlite_type(declared: &str) -> String {
    match declared.to_ascii_uppercase().as_str() {
        "INTEGER" | "BIGINT" => "integer".into(),
        "TEXT" => "text".into(),
        "BOOLEAN" => "boolean".into(),
        other => format!("sqlite:{other}"),
    }
}

fn pg_type(data_type: &str) -> String {
    match data_type {
        // Everything the shop reads as i64 must be BIGINT on PostgreSQL: sqlx will not read an
        // INTEGER (int4) column as i64.
        "bigint" => "integer".into(),
        "text" => "text".into(),
        "boolean" => "boolean".into(),
        other => format!("postgres:{other}"),
    }
}

fn default_value(raw: Option<String>) -> Option<String> {
    raw.map(|d| {
        let d = d
            .split("::")
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        d.trim_matches(|c| c == '(' || c == ')').to_string()
    })
}

async fn sqlite_schema(pool: &sqlx::SqlitePool) -> Schema {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for (name, sql) in tables {
        let mut t = Table::default();
        let cols: Vec<(i64, String, String, bool, Option<String>, i64)> =
            sqlx::query_as(&format!("PRAGMA table_info({name})"))
                .fetch_all(pool)
                .await
                .unwrap();
        let mut pk: Vec<(i64, String)> = Vec::new();
        for (_, col, ty, notnull, dflt, pk_pos) in cols {
            let mut ty = sqlite_type(&ty);
            let mut dflt = default_value(dflt);
            if SQLITE_INTEGER_BOOLEANS.contains(&(name.as_str(), col.as_str())) {
                ty = "boolean".into();
                dflt = dflt.map(|d| {
                    if d == "0" {
                        "false".into()
                    } else {
                        "true".into()
                    }
                });
                t.checks = t.checks.wrapping_sub(1);
            }
            if pk_pos > 0 {
                pk.push((pk_pos, col.clone()));
            }
            t.columns.insert(col, (ty, notnull || pk_pos > 0, dflt));
        }
        pk.sort();
        t.primary_key = pk.into_iter().map(|(_, c)| c).collect();
        t.checks = t.checks.wrapping_add(sql.matches("CHECK").count());
        let indexes: Vec<(i64, String, bool, String, bool)> =
            sqlx::query_as(&format!("PRAGMA index_list({name})"))
                .fetch_all(pool)
                .await
                .unwrap();
        for (_, index, unique, origin, partial) in indexes {
            let cols: Vec<(i64, i64, String)> =
                sqlx::query_as(&format!("PRAGMA index_info({index})"))
                    .fetch_all(pool)
                    .await
                    .unwrap();
            let cols: Vec<String> = cols.into_iter().map(|c| c.2).collect();
            match origin.as_str() {
                "u" => {
                    t.unique.insert(cols);
                }
                "c" => {
                    t.indexes.insert(index, (cols, unique, partial));
                }
                _ => {} // the primary key
            }
        }
        let fks: Vec<(i64, i64, String, String, String)> = sqlx::query_as(&format!(
            "SELECT id, seq, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list('{name}')"
        ))
        .fetch_all(pool)
        .await
        .unwrap();
        for (_, _, table, from, to) in fks {
            t.foreign_keys.insert((from, table, to));
        }
        schema.insert(name, t);
    }
    schema
}

async fn postgres_schema(pool: &sqlx::PgPool) -> Schema {
    let mut schema = Schema::new();
    let cols: Vec<(String, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text, column_default::text \
         FROM information_schema.columns WHERE table_schema = 'public' \
         AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (table, col, ty, nullable, dflt) in cols {
        schema
            .entry(table)
            .or_default()
            .columns
            .insert(col, (pg_type(&ty), nullable == "NO", default_value(dflt)));
    }
    // Constraints: p(rimary), u(nique), f(oreign), c(heck), with their columns in key order.
    let cons: Vec<PgConstraint> = sqlx::query_as(
        "SELECT c.conrelid::regclass::text, c.contype::text, \
           ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i) \
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i), \
           c.confrelid::regclass::text, \
           ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, i) \
                 JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i) \
         FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace \
         WHERE n.nspname = 'public' AND c.conrelid <> 0 \
           AND c.conrelid::regclass::text <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (table, kind, cols, ref_table, ref_cols) in cons {
        let t = schema.entry(table).or_default();
        match kind.as_str() {
            "p" => t.primary_key = cols,
            "u" => {
                t.unique.insert(cols);
            }
            "f" => {
                t.foreign_keys.insert((
                    cols[0].clone(),
                    ref_table.unwrap_or_default(),
                    ref_cols[0].clone(),
                ));
            }
            "c" => t.checks += 1,
            _ => {}
        }
    }
    // Named indexes (not the ones PostgreSQL makes for constraints).
    let indexes: Vec<(String, String, Vec<String>, bool, bool)> = sqlx::query_as(
        "SELECT t.relname::text, i.relname::text, \
           ARRAY(SELECT a.attname::text FROM unnest(x.indkey) WITH ORDINALITY k(n, o) \
                 JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n ORDER BY k.o), \
           x.indisunique, x.indpred IS NOT NULL \
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = 'public' AND t.relname <> '_sqlx_migrations' \
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (table, index, cols, unique, partial) in indexes {
        schema
            .entry(table)
            .or_default()
            .indexes
            .insert(index, (cols, unique, partial));
    }
    schema
}

#[tokio::test]
async fn sqlite_and_postgres_migrations_build_the_same_schema() {
    let admin = TestDb::postgres_admin_url()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let pg = TestDb::create_postgres(&admin).await;
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());

    let sqlite = server::db::connect(&sqlite_url).await.unwrap();
    let postgres = server::db::connect(&pg.url).await.unwrap();
    assert_eq!(postgres.backend(), server::db::Backend::Postgres);
    let (server::db::Db::Sqlite(s), server::db::Db::Postgres(p)) = (&sqlite, &postgres) else {
        panic!("backends");
    };
    let (mut a, b) = (sqlite_schema(s).await, postgres_schema(p).await);
    for t in SQLITE_ONLY_TABLES {
        assert!(a.remove(*t).is_some(), "{t} is in SQLite's schema");
        assert!(!b.contains_key(*t), "{t} is not in PostgreSQL's");
    }
    assert!(a.len() >= 20, "{:?}", a.keys());
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the same tables"
    );
    for (name, t) in &a {
        assert_eq!(
            t, &b[name],
            "table {name}: SQLite (left) and PostgreSQL (right) differ"
        );
    }

    // The same migrations, version for version.
    let versions = |m: &sqlx::migrate::Migrator| {
        m.iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        versions(&server::db::MIGRATOR),
        versions(&server::db::PG_MIGRATOR)
    );
    sqlite.close().await;
    postgres.close().await;
}

#[tokio::test]
async fn the_payment_log_is_append_only_on_postgres_too() {
    let admin = TestDb::postgres_admin_url()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let pg = TestDb::create_postgres(&admin).await;
    let db = server::db::connect(&pg.url).await.unwrap();
    server::sql!(&db, e => sqlx::query(
        "INSERT INTO payment_events (order_id, kind, outcome, detail, created_at) VALUES (NULL, 'info', 'info', 'x', 1)"
    ).execute(e).await.map(server::db::Done::from))
    .unwrap();
    for stmt in [
        "UPDATE payment_events SET detail = 'y'",
        "DELETE FROM payment_events",
    ] {
        let err =
            server::sql!(&db, e => sqlx::query(stmt).execute(e).await.map(server::db::Done::from))
                .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
    }
    db.close().await;
}

#[tokio::test]
async fn postgres_without_a_session_secret_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = server::config::Settings::for_tests(
        "postgres://postgres@127.0.0.1:9/never".into(),
        dir.path().to_path_buf(),
    );
    settings.session_secret = None;
    let err = match server::build(&settings).await {
        Ok(_) => panic!("a PostgreSQL shop without WXMALL_SESSION_SECRET started"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("WXMALL_SESSION_SECRET"), "{err}");
    assert!(err.contains("every instance"), "{err}");
}

/// A PostgreSQL constraint as read from `pg_constraint`: table, kind, columns, referenced table,
/// referenced columns.
type PgConstraint = (String, String, Vec<String>, Option<String>, Vec<String>);
