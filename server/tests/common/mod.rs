//! A test shop on port 0 with its own fresh database: a SQLite file, or — when
//! `WXMALL_TEST_POSTGRES` names a PostgreSQL server (`.ci/test` runs the suite both ways) — a
//! new PostgreSQL database, dropped when the test ends.

#![allow(dead_code)]

use serde_json::{json, Value};
use server::config::Settings;
use server::wechat_config::{PayVersion, WechatSettings, WechatSource};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

/// A phone inside WeChat (Android).
pub const WECHAT_UA: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 7; wv) AppleWebKit/537.36 \
(KHTML, like Gecko) Version/4.0 Chrome/130.0 Mobile Safari/537.36 MicroMessenger/8.0.55.2780 NetType/WIFI";

/// Sandbox credentials, generated once per test binary (RSA key generation is slow in debug).
pub fn sandbox_credentials() -> wechat_sandbox::SandboxCredentials {
    static CREDS: OnceLock<wechat_sandbox::SandboxCredentials> = OnceLock::new();
    CREDS
        .get_or_init(|| wechat_sandbox::SandboxCredentials::from_seed(20261122))
        .clone()
}

/// A fresh database for one test (see the module's doc).
pub struct TestDb {
    pub url: String,
    /// PostgreSQL: (the server's admin URL, this test's database name), dropped on drop.
    postgres: Option<(String, String)>,
}

impl TestDb {
    /// The PostgreSQL server the tests use, if any (`WXMALL_TEST_POSTGRES`, e.g.
    /// `postgres://postgres@127.0.0.1:5432/postgres`).
    pub fn postgres_admin_url() -> Option<String> {
        std::env::var("WXMALL_TEST_POSTGRES")
            .ok()
            .filter(|s| !s.trim().is_empty())
    }

    /// A new, empty database: on PostgreSQL when the tests run there, else a SQLite file in
    /// `dir`.
    pub async fn create(dir: &std::path::Path) -> Self {
        match Self::postgres_admin_url() {
            Some(admin) => Self::create_postgres(&admin).await,
            None => Self {
                url: format!("sqlite://{}?mode=rwc", dir.join("test.db").display()),
                postgres: None,
            },
        }
    }

    /// A new, empty PostgreSQL database on the server at `admin`.
    pub async fn create_postgres(admin: &str) -> Self {
        use sqlx::Connection;
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "wxmall_test_{}_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            rand_suffix()
        );
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .unwrap_or_else(|e| panic!("WXMALL_TEST_POSTGRES={admin}: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        let mut url = url::Url::parse(admin).expect("WXMALL_TEST_POSTGRES is a URL");
        url.set_path(&name);
        Self {
            url: url.to_string(),
            postgres: Some((admin.to_string(), name)),
        }
    }
}

fn rand_suffix() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    h.finish() as u32
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.postgres.take() {
            // Drop runs inside the test's runtime: a thread of its own does the async work.
            let _ = std::thread::spawn(move || {
                use sqlx::Connection;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut conn)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}

pub struct TestShop {
    pub base: String,
    pub pool: server::db::Db,
    /// The shop's `DATABASE_URL`.
    pub database_url: String,
    pub sandbox: wechat_sandbox::Sandbox,
    pub wechat: Arc<server::wx::Wechat>,
    pub sweeper: server::payments::sweeper::Sweeper,
    pub payments: server::payments::Payments,
    /// The shop's catalogue cache (and the pages kept with it).
    #[allow(dead_code)]
    pub catalogue: server::shop::catalog_cache::CatalogueCache,
    server: tokio::task::JoinHandle<()>,
    // Dropped after the server (fields drop in order): the database, then the directory.
    _db: TestDb,
    _dir: tempfile::TempDir,
}

impl Drop for TestShop {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestShop {
    pub async fn spawn() -> Self {
        Self::spawn_with(PayVersion::V3, |_| {}).await
    }

    /// The shop's `WXMALL_DATA_DIR`.
    #[allow(dead_code)]
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// A shop on the embedded sandbox speaking Pay `version`; `tweak` adjusts the settings.
    pub async fn spawn_with(version: PayVersion, tweak: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = TestDb::create(dir.path()).await;
        let mut settings = Settings::for_tests(db.url.clone(), dir.path().to_path_buf());
        // The shop calls its own sandbox and WeChat posts notifications back: the public URL
        // must be the real address, so bind first.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        settings.public_url = format!("http://{addr}");
        settings.wechat = WechatSettings {
            sandbox: true,
            source: WechatSource::Embedded {
                pay_version: version,
                credentials: Some(Box::new(sandbox_credentials())),
            },
            redis_url: None,
            redis_prefix: None,
            mp: None,
            template_paid: Some("sandbox-order-paid".into()),
            template_shipped: Some("sandbox-order-shipped".into()),
        };
        if db.postgres.is_some() {
            // Required with PostgreSQL (several instances sign the same cookies).
            settings.session_secret = Some(wechat::Secret::from(
                "test-session-secret-0123456789abcdef-0123456789".to_string(),
            ));
        }
        tweak(&mut settings);
        let built = server::build(&settings).await.expect("shop builds");
        // (With external credentials, a detached sandbox stands in so the field is always there.)
        let sandbox = built
            .wechat
            .embedded
            .clone()
            .unwrap_or_else(|| wechat_sandbox::Sandbox::new(sandbox_credentials()));
        let payments = built
            .payments
            .with_reconcile_after(std::time::Duration::ZERO);
        let sweeper = server::payments::sweeper::Sweeper {
            payments: payments.clone(),
            session_idle: built.sweeper.session_idle,
            auto_complete: built.sweeper.auto_complete,
        };
        let wechat = built.wechat.clone();
        let catalogue = built.shop.catalogue().clone();
        let server = tokio::spawn(async move {
            server::serve::serve(
                listener,
                built.router,
                server::serve::HEADER_READ_TIMEOUT,
                std::future::pending(),
            )
            .await;
        });
        Self {
            base: format!("http://{addr}"),
            pool: built.pool,
            database_url: settings.database_url.clone(),
            sandbox,
            wechat,
            sweeper,
            payments,
            catalogue,
            server,
            _db: db,
            _dir: dir,
        }
    }

    /// A shop configured for the real WeChat (the sandbox's credentials, reached as an external
    /// WeChat at an unreachable address): no embedded sandbox, pages ask to open in WeChat,
    /// orders need a WeChat identity.
    pub async fn spawn_real() -> Self {
        Self::spawn_with(PayVersion::V3, |settings| {
            let creds = server::wechat_config::sandbox_credentials(
                &sandbox_credentials(),
                "http://127.0.0.1:9",
                PayVersion::V3,
            )
            .unwrap();
            settings.wechat.sandbox = false;
            settings.wechat.source = WechatSource::External(Box::new(creds));
        })
        .await
    }

    /// A shopper inside WeChat, signed in as sandbox user `index` (0-based) through the real
    /// OAuth redirect and callback.
    pub async fn wechat_shopper(&self, index: usize) -> Shopper {
        let s = self.shopper_with_ua(WECHAT_UA);
        s.login(&self.sandbox, index).await;
        s
    }

    pub fn shopper_with_ua(&self, ua: &str) -> Shopper {
        Shopper {
            base: self.base.clone(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .user_agent(ua)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        }
    }

    pub async fn order_row(&self, order_id: i64) -> (String, Option<String>, Option<i64>) {
        server::sql!(&self.pool, e => sqlx::query_as("SELECT status, transaction_id, paid_at FROM orders WHERE id = $1")
            .bind(order_id)
            .fetch_one(e).await)
            .expect("order")
    }

    pub async fn order_no(&self, order_id: i64) -> String {
        server::sql!(&self.pool, e => sqlx::query_scalar("SELECT order_no FROM orders WHERE id = $1")
            .bind(order_id)
            .fetch_one(e).await)
            .expect("order_no")
    }

    /// `(kind, outcome, detail)` of every payment event, oldest first.
    pub async fn events(&self) -> Vec<(String, String, String)> {
        server::sql!(&self.pool, e => sqlx::query_as("SELECT kind, outcome, detail FROM payment_events ORDER BY id")
            .fetch_all(e).await)
            .expect("events")
    }

    /// A browser-like client with its own cookie jar, i.e. its own session.
    pub fn shopper(&self) -> Shopper {
        Shopper {
            base: self.base.clone(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        }
    }

    pub async fn stock(&self, sku_id: i64) -> i64 {
        server::sql!(&self.pool, e => sqlx::query_scalar("SELECT stock FROM skus WHERE id = $1")
            .bind(sku_id)
            .fetch_one(e).await)
        .expect("stock")
    }

    pub async fn set_stock(&self, sku_id: i64, stock: i64) {
        server::sql!(&self.pool, e => sqlx::query("UPDATE skus SET stock = $1 WHERE id = $2")
            .bind(stock)
            .bind(sku_id)
            .execute(e).await.map(server::db::Done::from))
        .expect("set stock");
    }

    pub async fn price(&self, sku_id: i64) -> i64 {
        server::sql!(&self.pool, e => sqlx::query_scalar("SELECT price_fen FROM skus WHERE id = $1")
            .bind(sku_id)
            .fetch_one(e).await)
        .expect("price")
    }
}

#[derive(Clone)]
pub struct Shopper {
    pub base: String,
    pub http: reqwest::Client,
}

/// The `Location` of a redirect.
pub fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The `state` parameter of an authorize URL.
pub fn state_of(authorize_url: &str) -> String {
    let u = url::Url::parse(authorize_url.split('#').next().unwrap()).expect("authorize url");
    u.query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state")
}

impl Shopper {
    pub async fn raw_get(&self, path_or_url: &str) -> reqwest::Response {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.base)
        };
        self.http
            .get(url)
            .header("accept", "text/html")
            .send()
            .await
            .expect("request")
    }

    /// Page GET → 302 to WeChat's authorize URL → sandbox code for user `index` → callback → 302
    /// back. Returns the final Location.
    pub async fn login(&self, sb: &wechat_sandbox::Sandbox, index: usize) -> String {
        let res = self.raw_get("/").await;
        assert_eq!(
            res.status(),
            302,
            "a first visit inside WeChat goes to OAuth"
        );
        let authorize = location(&res);
        let state = state_of(&authorize);
        let code = sb.issue_oauth_code(index, "snsapi_base");
        let res = self
            .raw_get(&format!("/wechat/oauth/callback?code={code}&state={state}"))
            .await;
        assert_eq!(res.status(), 302, "callback redirects back");
        location(&res)
    }

    /// POSTs JSON to `/api/{endpoint}`; returns the status and the JSON answer.
    pub async fn api(&self, endpoint: &str, body: Value) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}/api/{endpoint}", self.base))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header("accept", "text/html")
            .send()
            .await
            .expect("request");
        (res.status().as_u16(), res.text().await.expect("body"))
    }

    /// Posts a plain HTML form (as a browser without JavaScript does); returns status and Location.
    pub async fn form(
        &self,
        endpoint: &str,
        fields: &[(&str, &str)],
        referer: &str,
    ) -> (u16, String) {
        let res = self
            .http
            .post(format!("{}/api/{endpoint}", self.base))
            .header("accept", "text/html,application/xhtml+xml")
            .header("referer", format!("{}{referer}", self.base))
            .form(fields)
            .send()
            .await
            .expect("request");
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (res.status().as_u16(), location)
    }
}

pub fn address() -> Value {
    json!({"name": "张三", "phone": "13800138000", "region": "广东省 深圳市 南山区", "detail": "科技园南区 1 栋 101"})
}

pub fn order_body(items: &[(i64, i64)]) -> Value {
    json!({
        "items": items.iter().map(|(s, q)| json!({"sku_id": s, "quantity": q})).collect::<Vec<_>>(),
        "address": address(),
        "remark": "",
    })
}

/// Checks `check` every 25 ms for up to 5 s; whether it came true.
#[allow(dead_code)]
pub async fn wait_for<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    false
}
