//! wxmall's server: configuration, storage, the shop's domain logic, routes and start-up.
//! `main.rs` is only the command line; tests build the same router through [`build`].

pub mod assets;
pub mod config;
pub mod routes;
pub mod session;
pub mod shop;

use app::port::SharedShop;
use config::Settings;
use leptos::prelude::LeptosOptions;
use std::sync::Arc;

/// A ready-to-serve shop: the router plus handles tests and background tasks need.
pub struct Built {
    pub router: axum::Router,
    pub pool: sqlx::SqlitePool,
    pub shop: Arc<shop::SqlShop>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Db(#[from] shop::db::DbError),
    #[error("cannot load the demo catalogue: {0}")]
    Seed(sqlx::Error),
    #[error("cannot prepare the session key in {dir}: {source}")]
    SessionKey { dir: String, source: std::io::Error },
}

/// Leptos's options from our settings. The bundle's file names are content-hashed when
/// cargo-leptos left a `hash.txt` beside the binary.
pub fn leptos_options(settings: &Settings) -> LeptosOptions {
    let hash_file = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("hash.txt")));
    let hash_files = hash_file.is_some_and(|f| f.exists());
    LeptosOptions::builder()
        .output_name("wxmall")
        .site_root(settings.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(settings.addr)
        .hash_files(hash_files)
        .env(match std::env::var("LEPTOS_ENV").as_deref() {
            Ok("DEV") => leptos::config::Env::DEV,
            _ => leptos::config::Env::PROD,
        })
        .build()
}

pub async fn build(settings: &Settings) -> Result<Built, StartError> {
    let pool = shop::db::connect(&settings.database_url).await?;
    if settings.demo_catalogue {
        let added = shop::demo::seed_if_empty(&pool)
            .await
            .map_err(StartError::Seed)?;
        if added > 0 {
            tracing::info!(products = added, "loaded the demo catalogue");
        }
    }
    let shop = Arc::new(shop::SqlShop::new(
        pool.clone(),
        shop::ShopSettings {
            order_ttl: settings.order_ttl,
        },
    ));
    let key = session::load_key(
        std::env::var("WXMALL_SESSION_SECRET").ok().as_deref(),
        &settings.data_dir,
    )
    .map_err(|source| StartError::SessionKey {
        dir: settings.data_dir.display().to_string(),
        source,
    })?;
    let sessions = session::SessionConfig {
        key,
        secure: settings.public_url.starts_with("https://"),
    };
    let state = routes::AppState {
        leptos: leptos_options(settings),
        shop: shop.clone() as SharedShop,
    };
    let router = routes::router(state, sessions, &settings.site_root);
    Ok(Built { router, pool, shop })
}
