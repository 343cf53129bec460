//! wxmall's server: configuration, storage, the shop's domain logic, routes and start-up.
//! `main.rs` is only the command line; tests build the same router through [`build`].

pub mod admin;
pub mod assets;
pub mod config;
pub mod db;
pub mod doctor;
pub mod guard;
pub mod mp;
pub mod mp_cli;
pub mod oauth;
pub mod page_cache;
pub mod payments;
pub mod qr;
pub mod routes;
pub mod serve;
pub mod session;
pub mod shop;
pub mod wechat_config;
pub mod wx;

use app::port::SharedShop;
use config::Settings;
use leptos::prelude::LeptosOptions;
use std::sync::Arc;

/// A ready-to-serve shop: the router plus handles tests and background tasks need.
pub struct Built {
    pub router: axum::Router,
    pub pool: crate::db::Db,
    pub shop: Arc<shop::SqlShop>,
    pub wechat: Arc<wx::Wechat>,
    /// The payments service (pay, cancel, refunds): the command line and tests call it.
    pub payments: payments::Payments,
    /// Expiry and reconciliation of orders and refunds; `main` spawns it, tests call `run_once`.
    pub sweeper: payments::sweeper::Sweeper,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error("cannot load the demo catalogue: {0}")]
    Seed(sqlx::Error),
    #[error(transparent)]
    Wechat(#[from] wx::WechatStartError),
    #[error("cannot prepare the session key in {dir}: {source}")]
    SessionKey { dir: String, source: std::io::Error },
    #[error("cannot keep the rate limits in Redis at WXMALL_REDIS_URL: {0}")]
    SharedLimits(String),
}

/// Where cargo-leptos's `hash.txt` (the content hashes of the bundle's file names) is read
/// from: beside the binary, or `LEPTOS_HASH_FILE_NAME` (a name beside the binary or an absolute
/// path, as Leptos itself reads it).
pub fn hash_file_path() -> Option<std::path::PathBuf> {
    let name = std::env::var("LEPTOS_HASH_FILE_NAME").unwrap_or_else(|_| "hash.txt".into());
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.join(name))
}

/// Leptos's options from our settings. The bundle's file names are content-hashed when
/// cargo-leptos's `hash.txt` is found ([`hash_file_path`]).
pub fn leptos_options(settings: &Settings) -> LeptosOptions {
    let hash_file = hash_file_path().filter(|f| f.exists());
    let builder = LeptosOptions::builder()
        .output_name("wxmall")
        .site_root(settings.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(settings.addr)
        .hash_files(hash_file.is_some())
        .env(if settings.leptos_dev {
            leptos::config::Env::DEV
        } else {
            leptos::config::Env::PROD
        });
    match hash_file {
        // Leptos joins this to the binary's directory: an absolute path stays itself.
        Some(path) => builder.hash_file(path.display().to_string().into()).build(),
        None => builder.build(),
    }
}

pub async fn build(settings: &Settings) -> Result<Built, StartError> {
    // Generated state (session key, sandbox seed, the default database) is the shop's alone.
    session::private_dir(&settings.data_dir).map_err(|source| StartError::SessionKey {
        dir: settings.data_dir.display().to_string(),
        source,
    })?;
    // Several instances share one PostgreSQL database: each must sign and check the same
    // cookies, so a key generated per machine will not do.
    if db::Backend::of_url(&settings.database_url)? == db::Backend::Postgres
        && settings.session_secret.is_none()
    {
        return Err(config::ConfigError::Invalid {
            name: "WXMALL_SESSION_SECRET",
            message: "is required with PostgreSQL (DATABASE_URL=postgres://…): every instance \
                      must sign the same cookies; set it to 32 or more random bytes, the same on \
                      every instance (e.g. `openssl rand -hex 32`)"
                .into(),
        }
        .into());
    }
    let pool = db::connect(&settings.database_url).await?;
    if settings.demo_catalogue {
        let added = shop::demo::seed_if_empty(&pool)
            .await
            .map_err(StartError::Seed)?;
        if added > 0 {
            tracing::info!(products = added, "loaded the demo catalogue");
        }
    }
    let wechat = Arc::new(
        wx::Wechat::start(&settings.wechat, &settings.public_url, &settings.data_dir).await?,
    );
    if wechat.embedded.is_some() {
        tracing::warn!(
            appid = %wechat.appid,
            "WeChat sandbox mode: no WECHAT_APPID, so WeChat (OAuth, JS-SDK, Pay {:?}) is emulated at {}/sandbox; no real payments",
            wechat.pay_version,
            settings.public_url
        );
    } else {
        tracing::info!(appid = %wechat.appid, pay = ?wechat.pay_version, sandbox = wechat.sandbox, "WeChat configured");
    }
    let payments = payments_service(pool.clone(), &wechat);
    let shop = Arc::new(
        shop::SqlShop::new(
            pool.clone(),
            shop::ShopSettings {
                order_ttl: settings.order_ttl,
                max_unpaid_orders: settings.max_unpaid_orders,
                require_wechat_identity: wechat.embedded.is_none(),
                status_query_interval: settings.status_query_interval,
            },
        )
        .with_wechat(wechat.clone(), payments.clone()),
    );
    let sweeper = payments::sweeper::Sweeper {
        payments: payments.clone(),
        session_idle: settings.session_idle,
        auto_complete: settings.auto_complete,
    };
    let key = session::load_key(
        settings.session_secret.as_ref().map(|s| s.expose_str()),
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
    let state = routes::AppState::new(
        leptos_options(settings),
        shop.clone() as SharedShop,
        wechat.env(),
    );
    let mp = match &wechat.mp {
        Some(server) => Some(mp::MpState {
            server: server.clone(),
            pool: pool.clone(),
            public_url: settings.public_url.trim_end_matches('/').to_string(),
            replies: Arc::new(match &settings.mp_replies {
                Some(path) => {
                    mp::Replies::load(path).map_err(|message| config::ConfigError::Invalid {
                        name: "WXMALL_MP_REPLIES",
                        message,
                    })?
                }
                None => mp::Replies::default(),
            }),
        }),
        None => None,
    };
    let wechat_routes = routes::WechatRoutes {
        wx: wechat.clone(),
        pool: pool.clone(),
        payments: payments.clone(),
        mp,
    };
    // With several instances (WXMALL_REDIS_URL), one budget for all of them.
    let limits = match (&settings.rate_limits, &settings.wechat.redis_url) {
        (None, _) => None,
        (Some(l), None) => Some(Arc::new(guard::Limits::new(l))),
        (Some(l), Some(url)) => Some(Arc::new(
            guard::Limits::new(l)
                .shared_through(
                    url,
                    &settings
                        .wechat
                        .redis_prefix
                        .as_ref()
                        .map(|p| format!("{p}:rl"))
                        .unwrap_or_else(|| guard::SHARED_LIMITS_PREFIX.to_string()),
                )
                .await
                .map_err(StartError::SharedLimits)?,
        )),
    };
    let gate = guard::Gate {
        origin: guard::Gate::origin_of(&settings.public_url),
        https: settings.public_url.starts_with("https://"),
        trusted_proxies: settings.trusted_proxies.clone(),
        limits,
    };
    let admin = admin::AdminState {
        shipped_notice: wechat.template_shipped.as_ref().map(|template_id| {
            Arc::new(mp::OrderTemplate {
                api: wechat.mp_api.clone(),
                template_id: template_id.clone(),
                pool: pool.clone(),
                public_url: wechat.public_url.clone(),
                kind: mp::OrderNotice::Shipped,
            })
        }),
        pool: pool.clone(),
        payments: payments.clone(),
        secure: settings.public_url.starts_with("https://"),
        origin: guard::Gate::origin_of(&settings.public_url),
        uploads: admin::images::uploads_dir(&settings.data_dir),
        wechat: wechat.clone(),
        public_url: settings.public_url.clone(),
        site_root: settings.site_root.clone(),
        redis_url: settings.wechat.redis_url.clone(),
    };
    let router = routes::router(
        state,
        sessions,
        gate,
        &settings.site_root,
        Some(wechat_routes),
        Some(admin),
        settings.page_cache.then(|| page_cache::PageCache {
            catalogue: shop.catalogue().clone(),
            pool: pool.clone(),
        }),
    );
    Ok(Built {
        router,
        pool,
        shop,
        wechat,
        payments,
        sweeper,
    })
}

/// The payments service for the command line: the shop's database and WeChat Pay as the
/// settings say (in sandbox mode, the running shop's sandbox at its public URL).
pub async fn payments_from_settings(settings: &Settings) -> Result<payments::Payments, StartError> {
    let pool = db::connect(&settings.database_url).await?;
    let wechat =
        wx::Wechat::start(&settings.wechat, &settings.public_url, &settings.data_dir).await?;
    Ok(payments_service(pool, &wechat))
}

/// The payments service on `pool`, speaking to WeChat Pay as `wechat` is configured.
pub fn payments_service(pool: crate::db::Db, wechat: &wx::Wechat) -> payments::Payments {
    let service = payments::Payments::new(
        pool.clone(),
        wechat.pay.clone(),
        payments::PaymentsConfig {
            appid: wechat.appid.clone(),
            mchid: wechat.mchid.clone(),
            notify_url: wechat.notify_url(),
            refund_notify_url: wechat.refund_notify_url(),
            reconcile_after: std::time::Duration::from_secs(120),
            sandbox: wechat.embedded.is_some(),
        },
    );
    let service = service.with_coupons(shop::coupons::Redeemer {
        pool: pool.clone(),
        cards: wechat.cards.clone(),
    });
    match &wechat.template_paid {
        Some(template_id) => service.with_paid_notice(mp::OrderTemplate {
            api: wechat.mp_api.clone(),
            template_id: template_id.clone(),
            pool,
            public_url: wechat.public_url.clone(),
            kind: mp::OrderNotice::Paid,
        }),
        None => service,
    }
}
