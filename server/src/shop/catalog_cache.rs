//! The catalogue as shoppers see it (categories, products with their SKUs and stock, product
//! pages, coupons on offer), kept in memory and dropped the moment the database says it changed.
//!
//! Every home and product page reads the catalogue; it changes when the merchant edits it, when
//! an order takes or puts back stock, or when a coupon starts or stops. The database itself
//! says when (migration 0015), whoever wrote — this instance, another one, `wxmall refund`, a
//! hand-written `UPDATE`:
//!
//! - **SQLite**: triggers on `categories`, `products`, `skus` and `coupons` bump the one row
//!   of `catalogue_version`. A read asks for that integer (one indexed lookup instead of the
//!   catalogue's joins) and uses the copy made at that version, or loads a new one. Reads that
//!   arrive together share one lookup ([`VersionReader`]): each waits for a lookup that
//!   *starts after it arrived*, so it still sees every write committed before it — a page is
//!   never staler than the moment it was asked for — while 64 shoppers at once cost a few
//!   lookups instead of 64 (issue 13: the lookup, a hop to sqlx's SQLite thread and back, was
//!   the largest cost of a kept page).
//! - **PostgreSQL**: the same tables' triggers `NOTIFY wxmall_catalogue`, which PostgreSQL
//!   delivers to every listening instance when the writing transaction commits. Each instance
//!   LISTENs on a connection of its own (started by the first read) and counts notifications;
//!   a copy is used only while the count it was made at is current. Until the listener listens,
//!   and whenever its connection drops, reads go to the database (nothing could say what
//!   changed meanwhile); when it listens again the count moves on, so every older copy is gone.
//!   What a shopper can see stale is the time a notification takes to arrive (milliseconds).
//!
//! A copy is tagged with the version read *before* it was loaded, so a change that lands while
//! it loads makes the next read load again: a copy is never newer-tagged than its contents.
//! The list parts of a copy (categories, products, coupons) are loaded once however many readers
//! ask at the same time; a product page is loaded by whoever misses it first (two simultaneous
//! first readers of one page may both load it, and store the same thing).
//! Orders never price from here: `create_order` and `quote_order` read prices and stock in their
//! own transaction.

use super::{catalog, coupons, db_error};
use crate::db::Db;
use app::model::{Category, CouponOffer, ProductDetail, ProductSummary};
use app::port::Result;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::OnceCell;

/// PostgreSQL's notification channel (migration 0015's triggers).
pub const CHANNEL: &str = "wxmall_catalogue";

/// One version of the catalogue, each part loaded on first use.
struct Copy {
    version: u64,
    categories: OnceCell<Arc<Vec<Category>>>,
    products: OnceCell<Arc<Vec<ProductSummary>>>,
    /// Only products that exist and are on sale (bounded by the catalogue).
    details: Mutex<HashMap<i64, Arc<ProductDetail>>>,
    /// Active coupons; whether one is on offer depends on the clock, so that is decided per read.
    coupons: OnceCell<Arc<Vec<coupons::CouponRow>>>,
    /// Pages rendered from this version (`crate::page_cache`), by path.
    pages: Mutex<HashMap<String, Arc<CachedPage>>>,
}

/// A page as the app rendered it from one version of the catalogue (`crate::page_cache`).
#[derive(Debug)]
pub struct CachedPage {
    pub made: std::time::Instant,
    /// The response's headers (no `Set-Cookie`).
    pub headers: axum::http::HeaderMap,
    pub html: String,
    /// The render's CSP nonce, replaced by a fresh one each time the page is served.
    pub nonce: String,
}

/// Where a page rendered now is kept: with the copy that was current *before* it rendered, so
/// a change landing meanwhile leaves it with an outdated copy, never served again.
pub struct PageSlot(Option<Arc<Copy>>);

impl Copy {
    fn new(version: u64) -> Self {
        Self {
            version,
            categories: OnceCell::new(),
            products: OnceCell::new(),
            details: Mutex::new(HashMap::new()),
            coupons: OnceCell::new(),
            pages: Mutex::new(HashMap::new()),
        }
    }
}

/// PostgreSQL's side: the notification count and whether it can be trusted.
#[derive(Default)]
struct Listener {
    started: AtomicBool,
    listening: AtomicBool,
    generation: AtomicU64,
}

/// SQLite's side: one task reads `catalogue_version` for everyone waiting.
#[derive(Default)]
struct VersionReader {
    queue: Mutex<Option<tokio::sync::mpsc::UnboundedSender<VersionWaiter>>>,
    /// How many lookups ran (tests and benchmarks look).
    lookups: Arc<AtomicU64>,
}

type VersionWaiter = tokio::sync::oneshot::Sender<Result<u64>>;

impl VersionReader {
    /// The version, read by a lookup that started after this call did.
    async fn version(&self, pool: &crate::db::SqliteDb) -> Result<u64> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = {
            let mut queue = lock(&self.queue);
            let queue = queue.get_or_insert_with(|| {
                let (send, recv) = tokio::sync::mpsc::unbounded_channel();
                tokio::spawn(read_versions((**pool).clone(), recv, self.lookups.clone()));
                send
            });
            queue.send(tx)
        };
        match sent {
            Ok(()) => match rx.await {
                Ok(v) => v,
                // The task is gone (its runtime stopped): ask directly.
                Err(_) => read_version(pool, &self.lookups).await,
            },
            Err(_) => {
                // The task's runtime stopped (tests run many); the next call starts a new one.
                *lock(&self.queue) = None;
                read_version(pool, &self.lookups).await
            }
        }
    }
}

async fn read_version(pool: &sqlx::SqlitePool, lookups: &AtomicU64) -> Result<u64> {
    lookups.fetch_add(1, Ordering::Relaxed);
    let v: i64 = sqlx::query_scalar("SELECT version FROM catalogue_version WHERE id = 1")
        .fetch_one(pool)
        .await
        .map_err(db_error)?;
    Ok(v as u64)
}

/// Takes everyone waiting, reads the version once for all of them, and again for whoever
/// arrived meanwhile; ends when the cache is dropped.
async fn read_versions(
    pool: sqlx::SqlitePool,
    mut queue: tokio::sync::mpsc::UnboundedReceiver<VersionWaiter>,
    lookups: Arc<AtomicU64>,
) {
    let mut waiting = Vec::new();
    while queue.recv_many(&mut waiting, usize::MAX).await > 0 {
        // Everyone in `waiting` arrived before this lookup starts.
        let v = read_version(&pool, &lookups).await;
        for w in waiting.drain(..) {
            let _ = w.send(v.clone());
        }
    }
}

/// Cheap to clone; clones share the copy.
#[derive(Clone, Default)]
pub struct CatalogueCache {
    copy: Arc<RwLock<Option<Arc<Copy>>>>,
    listener: Arc<Listener>,
    versions: Arc<VersionReader>,
    /// How many times a part was loaded from the database (tests and benchmarks look).
    loads: Arc<AtomicU64>,
    /// How many rendered pages were kept.
    pages_kept: Arc<AtomicU64>,
}

impl CatalogueCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many times a part of the catalogue was read from the database.
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    /// How many times SQLite's `catalogue_version` was looked up.
    pub fn version_lookups(&self) -> u64 {
        self.versions.lookups.load(Ordering::Relaxed)
    }

    /// How many rendered pages were kept (each one a render the next readers are spared).
    pub fn pages_kept(&self) -> u64 {
        self.pages_kept.load(Ordering::Relaxed)
    }

    /// The page kept for `path` from the current version, if not older than `max_age`, and
    /// where to keep one rendered now.
    pub async fn page(
        &self,
        pool: &Db,
        path: &str,
        max_age: std::time::Duration,
    ) -> Result<(Option<Arc<CachedPage>>, PageSlot)> {
        let copy = self.copy(pool).await?;
        let hit = copy.as_ref().and_then(|c| {
            lock(&c.pages)
                .get(path)
                .filter(|p| p.made.elapsed() < max_age)
                .cloned()
        });
        Ok((hit, PageSlot(copy)))
    }

    /// Keeps a page rendered after [`Self::page`] gave `slot`.
    pub fn keep_page(&self, slot: PageSlot, path: &str, page: CachedPage) {
        if let Some(copy) = slot.0 {
            self.pages_kept.fetch_add(1, Ordering::Relaxed);
            lock(&copy.pages).insert(path.to_string(), Arc::new(page));
        }
    }

    pub async fn categories(&self, pool: &Db) -> Result<Vec<Category>> {
        let Some(copy) = self.copy(pool).await? else {
            return catalog::categories(pool).await;
        };
        let v = copy
            .categories
            .get_or_try_init(|| async {
                self.loads.fetch_add(1, Ordering::Relaxed);
                catalog::categories(pool).await.map(Arc::new)
            })
            .await?;
        Ok(v.as_ref().clone())
    }

    pub async fn list_products(&self, pool: &Db) -> Result<Vec<ProductSummary>> {
        let Some(copy) = self.copy(pool).await? else {
            return catalog::list_products(pool).await;
        };
        let v = copy
            .products
            .get_or_try_init(|| async {
                self.loads.fetch_add(1, Ordering::Relaxed);
                catalog::list_products(pool).await.map(Arc::new)
            })
            .await?;
        Ok(v.as_ref().clone())
    }

    pub async fn product(&self, pool: &Db, product_id: i64) -> Result<ProductDetail> {
        let Some(copy) = self.copy(pool).await? else {
            return catalog::product(pool, product_id).await;
        };
        let cached = lock(&copy.details).get(&product_id).cloned();
        if let Some(p) = cached {
            return Ok(p.as_ref().clone());
        }
        self.loads.fetch_add(1, Ordering::Relaxed);
        let p = catalog::product(pool, product_id).await?;
        lock(&copy.details).insert(product_id, Arc::new(p.clone()));
        Ok(p)
    }

    /// The coupons on offer now.
    pub async fn coupon_offers(&self, pool: &Db) -> Result<Vec<CouponOffer>> {
        let now = super::now();
        let Some(copy) = self.copy(pool).await? else {
            return Ok(coupons::offers_of(&coupons::active_rows(pool).await?, now));
        };
        let rows = copy
            .coupons
            .get_or_try_init(|| async {
                self.loads.fetch_add(1, Ordering::Relaxed);
                coupons::active_rows(pool).await.map(Arc::new)
            })
            .await?;
        Ok(coupons::offers_of(rows, now))
    }

    /// The copy for the database's current version, or `None` when nothing can say whether a
    /// copy is current (PostgreSQL's listener is not listening): read the database then.
    async fn copy(&self, pool: &Db) -> Result<Option<Arc<Copy>>> {
        let Some(version) = self.version(pool).await? else {
            return Ok(None);
        };
        if let Some(copy) = read(&self.copy).as_ref() {
            if copy.version == version {
                return Ok(Some(copy.clone()));
            }
        }
        let mut slot = self.copy.write().unwrap_or_else(|e| e.into_inner());
        match slot.as_ref() {
            Some(copy) if copy.version == version => Ok(Some(copy.clone())),
            // A newer copy is already there: this reader saw an older version; it reads the
            // database rather than bringing the old version back.
            Some(copy) if copy.version > version => Ok(None),
            _ => {
                let copy = Arc::new(Copy::new(version));
                *slot = Some(copy.clone());
                Ok(Some(copy))
            }
        }
    }

    async fn version(&self, pool: &Db) -> Result<Option<u64>> {
        match pool {
            Db::Sqlite(p) => self.versions.version(p).await.map(Some),
            Db::Postgres(p) => {
                if !self.listener.started.swap(true, Ordering::SeqCst) {
                    tokio::spawn(listen(p.clone(), self.listener.clone(), self.copy.clone()));
                }
                if self.listener.listening.load(Ordering::SeqCst) {
                    Ok(Some(self.listener.generation.load(Ordering::SeqCst)))
                } else {
                    Ok(None)
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

/// PostgreSQL: LISTENs on [`CHANNEL`] for as long as the pool is open, moving the generation
/// on every notification and every (re)connection; reads bypass the cache while it is not
/// listening.
async fn listen(pool: sqlx::PgPool, state: Arc<Listener>, copy: Arc<RwLock<Option<Arc<Copy>>>>) {
    let bump = || {
        state.generation.fetch_add(1, Ordering::SeqCst);
    };
    let mut delay = std::time::Duration::from_millis(100);
    while !pool.is_closed() {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                if pool.is_closed() {
                    break;
                }
                tracing::warn!(error = %e, "catalogue cache: cannot connect to listen; reading the database");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(10));
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "catalogue cache: LISTEN failed; reading the database");
            tokio::time::sleep(delay).await;
            continue;
        }
        // Anything may have changed while nobody listened: start from a new generation.
        bump();
        state.listening.store(true, Ordering::SeqCst);
        delay = std::time::Duration::from_millis(100);
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => bump(),
                Ok(None) | Err(_) => {
                    // The connection dropped: notifications may be lost until a new one
                    // listens, so nothing cached can be trusted.
                    state.listening.store(false, Ordering::SeqCst);
                    bump();
                    *copy.write().unwrap_or_else(|e| e.into_inner()) = None;
                    if !pool.is_closed() {
                        tracing::warn!(
                            "catalogue cache: the LISTEN connection dropped; reconnecting"
                        );
                    }
                    break;
                }
            }
        }
    }
    state.listening.store(false, Ordering::SeqCst);
}

impl std::fmt::Debug for CatalogueCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogueCache")
            .field("loads", &self.loads())
            .finish_non_exhaustive()
    }
}
