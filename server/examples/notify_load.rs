//! # notify_load — WeChat Pay payment (and refund) notifications per second
//!
//! Measures how many payment notifications per second the shop's notify routes
//! (`POST /wechat/notify/v2` or `/wechat/notify/v3`) verify and apply, and how long each
//! one takes, with the real storage: a fresh SQLite file, or an empty PostgreSQL database
//! served by one or several shops (`--instances`, round-robin, duplicates on other shops).
//!
//! ```sh
//! cargo run --release -p server --example notify_load -- \
//!     [--orders N] [--concurrency C] [--version v2|v3] [--duplicates D] [--refunds] [--reconcile] \
//!     [--database-url postgres://…/an_empty_db [--instances K]]
//! # defaults: --orders 2000 --concurrency 16 --version v3 --duplicates 1
//! ```
//!
//! With `--refunds`, once every order is paid: **refunds (timed)** — every order refunded in
//! full through the payments service (`Payments::refund`: the checks, the `processing` row,
//! WeChat's refund API at the sandbox) by C concurrent callers; then, once the sandbox has
//! settled them (its own deliveries off), **refund notifications (timed)** — each refund's
//! signed notification (`Sandbox::signed_refund_notification`) posted to
//! `/wechat/notify/refund/{v2,v3}`, plus D duplicate rounds. Checks: N orders `refunded`, N
//! `accepted` and N×D `duplicate` refund-notification events.
//!
//! With `--reconcile`, last: **reconciliation (timed)** — `Payments::reconcile_bill` for today
//! (China time): the sandbox's trade bill of every payment and refund of the run, downloaded,
//! parsed and compared with the shop's books; it must match all N payments, no difference.
//!
//! Use `--release` for numbers (a debug build is fine to check it works, with a small N: v3
//! signing and verification are slow at opt-level 1). `RUST_LOG=…` turns the shop's logs on
//! (off by default, so logging is not part of the measurement).
//!
//! What happens:
//!
//! 1. **A shop in this process**, built as the integration tests build it
//!    (`server/tests/common/mod.rs`): `Settings::for_tests` on a fresh SQLite file in a temp
//!    dir (WAL, the shop's own pool), `server::build`, `axum::serve` on 127.0.0.1:0, the
//!    embedded WeChat sandbox speaking Pay v2 or v3 with `SandboxCredentials::from_seed`.
//!    Server and load generator share one tokio runtime (one worker per core), so the numbers
//!    include the client's own CPU — as a pessimistic same-machine measurement should.
//! 2. **Preparation (not timed)**: stock raised to 1,000,000 per SKU in SQL; one shopper signs
//!    in through the real OAuth redirect + callback (sandbox user 0); N one-item orders via
//!    `/api/create_order`; `/api/pay_order` for each (the shop gets a prepay from the
//!    sandbox); the sandbox marks each transaction paid with its notifications switched off
//!    (`set_drop_notifications` + `pay`), and `Sandbox::signed_notification` builds each
//!    signed notification — the sandbox's own signing code (v2 MD5 `sign`; v3 AES-256-GCM
//!    resource and RSA `Wechatpay-Signature` headers), never the shop's.
//! 3. **Unique phase (timed)**: the N notifications, each posted once over loopback HTTP
//!    (reqwest, keep-alive) by C concurrent workers pulling from a shared queue. Every one must
//!    move its order `unpaid → paid` and be answered with WeChat's success answer (v2
//!    `<return_code><![CDATA[SUCCESS]]></return_code>`, v3 any 2xx).
//! 4. **Duplicate phase (timed)**: D more rounds of the very same requests (WeChat does repeat
//!    itself); each must be acknowledged without a second change (`duplicate` event).
//! 5. **Checks**: exactly N orders `paid`, exactly N `accepted` and N×D `duplicate` rows in
//!    `payment_events` and no other `notify_v*` rows (`pay_order`'s `prepay` rows aside), and
//!    every answer a success; otherwise the exit status is 1.
//!
//! Printed: notifications/s and p50/p90/p99/max latency (ms) per phase, the event counts, and
//! the machine note (cores, same process). A v3 notification is valid for 5 minutes after
//! it was signed (the shop's timestamp window), so keep the timed phases shorter than that.

use axum::body::Bytes;
use axum::http::HeaderMap;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use server::config::Settings;
use server::wechat_config::{PayVersion, WechatSettings, WechatSource};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A phone inside WeChat (the tests' user agent).
const WECHAT_UA: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 7; wv) AppleWebKit/537.36 \
(KHTML, like Gecko) Version/4.0 Chrome/130.0 Mobile Safari/537.36 MicroMessenger/8.0.55.2780 NetType/WIFI";

/// The tests' sandbox seed.
const SEED: u64 = 20261122;

/// How many preparation requests run at once (not measured).
const PREP_CONCURRENCY: usize = 8;

/// A v2 notification is acknowledged with exactly this element.
const V2_SUCCESS: &str = "<return_code><![CDATA[SUCCESS]]></return_code>";

#[derive(clap::Parser, Debug)]
#[command(
    about = "WeChat Pay notifications per second against in-process shops (SQLite or PostgreSQL)"
)]
struct Args {
    /// Unpaid orders prepared, i.e. distinct notifications in the unique phase.
    #[arg(long, default_value_t = 2000)]
    orders: usize,
    /// Concurrent HTTP workers posting notifications.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// WeChat Pay API version the shop speaks.
    #[arg(long, value_enum, default_value_t = Version::V3)]
    version: Version,
    /// Extra rounds re-posting every notification unchanged (duplicates).
    #[arg(long, default_value_t = 1)]
    duplicates: usize,
    /// Then refund every order and post the refund notifications (timed too).
    #[arg(long)]
    refunds: bool,
    /// Then reconcile today's WeChat bill (every payment and refund of the run) and time it.
    #[arg(long)]
    reconcile: bool,
    /// The shop's database: an empty PostgreSQL database (`postgres://…`) instead of the
    /// default fresh SQLite file.
    #[arg(long)]
    database_url: Option<String>,
    /// Shops serving the same database (PostgreSQL only), each on its own port: notification
    /// `i` goes to shop `i % instances`, so duplicates of one notification land on different
    /// shops, as WeChat's retries do behind a load balancer.
    #[arg(long, default_value_t = 1)]
    instances: usize,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    V2,
    V3,
}

impl Version {
    fn pay(self) -> PayVersion {
        match self {
            Version::V2 => PayVersion::V2,
            Version::V3 => PayVersion::V3,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Version::V2 => "v2",
            Version::V3 => "v3",
        }
    }
}

/// One ready-to-post notification (cheap to clone: `Bytes` and a small header map).
struct Notification {
    url: String,
    headers: HeaderMap,
    body: Bytes,
}

/// What a timed phase saw.
struct Phase {
    requests: usize,
    elapsed: Duration,
    /// Milliseconds, sorted.
    latencies_ms: Vec<f64>,
    failures: usize,
    /// The first few failures, for the report.
    samples: Vec<String>,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// Nearest-rank percentile, `p` in (0, 1].
    fn pct(&self, p: f64) -> f64 {
        if self.latencies_ms.is_empty() {
            return f64::NAN;
        }
        let rank = (p * self.latencies_ms.len() as f64).ceil() as usize;
        self.latencies_ms[rank.clamp(1, self.latencies_ms.len()) - 1]
    }

    fn print(&self, name: &str) {
        println!(
            "{name:<10} {:>7} req  {:>8.2} s  {:>9.1} per second   \
             p50 {:>7.2}  p90 {:>7.2}  p99 {:>7.2}  max {:>7.2} ms   failures {}",
            self.requests,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.pct(0.50),
            self.pct(0.90),
            self.pct(0.99),
            self.latencies_ms.last().copied().unwrap_or(f64::NAN),
            self.failures,
        );
        for s in &self.samples {
            println!("           failure: {s}");
        }
    }
}

/// `url` with its origin replaced by `bases[i % bases.len()]` (one base: `url` itself).
fn spread(url: &str, bases: &[String], i: usize) -> String {
    if bases.len() < 2 {
        return url.to_string();
    }
    let path = match reqwest::Url::parse(url) {
        Ok(u) => match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        },
        Err(_) => return url.to_string(),
    };
    format!("{}{path}", bases[i % bases.len()])
}

/// Posts `rounds` × all `notes` with `concurrency` workers; job `i` sends `notes[i % N]` to
/// shop `i % bases.len()`.
async fn run_phase(
    http: &reqwest::Client,
    bases: &Arc<Vec<String>>,
    notes: &Arc<Vec<Notification>>,
    rounds: usize,
    concurrency: usize,
    version: Version,
) -> Phase {
    let total = notes.len() * rounds;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (http, notes, next) = (http.clone(), notes.clone(), next.clone());
            let bases = bases.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failures = 0usize;
                let mut samples = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let n = &notes[i % notes.len()];
                    let t0 = Instant::now();
                    let answer = async {
                        let res = http
                            .post(spread(&n.url, &bases, i % notes.len() + i / notes.len()))
                            .headers(n.headers.clone())
                            .body(n.body.clone())
                            .send()
                            .await?;
                        let status = res.status();
                        let text = res.text().await?;
                        Ok::<_, reqwest::Error>((status, text))
                    }
                    .await;
                    latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
                    let problem = match answer {
                        Err(e) => Some(format!("#{i}: transport error: {e}")),
                        Ok((status, text)) => {
                            let ok = match version {
                                Version::V2 => status == 200 && text.contains(V2_SUCCESS),
                                Version::V3 => status.is_success(),
                            };
                            (!ok).then(|| format!("#{i}: HTTP {status}: {text:.200}"))
                        }
                    };
                    if let Some(p) = problem {
                        failures += 1;
                        if samples.len() < 3 {
                            samples.push(p);
                        }
                    }
                }
                (latencies, failures, samples)
            })
        })
        .collect();
    let mut phase = Phase {
        requests: total,
        elapsed: Duration::ZERO,
        latencies_ms: Vec::with_capacity(total),
        failures: 0,
        samples: Vec::new(),
    };
    for w in workers {
        let (lat, failures, samples) = w.await.expect("worker panicked");
        phase.latencies_ms.extend(lat);
        phase.failures += failures;
        let room = 3usize.saturating_sub(phase.samples.len());
        phase.samples.extend(samples.into_iter().take(room));
    }
    phase.elapsed = started.elapsed();
    phase.latencies_ms.sort_by(f64::total_cmp);
    phase
}

/// POSTs JSON to `/api/{endpoint}` as the shopper; the answer when it is 200.
async fn api(
    http: &reqwest::Client,
    base: &str,
    endpoint: &str,
    body: Value,
) -> Result<Value, String> {
    let res = http
        .post(format!("{base}/api/{endpoint}"))
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("{endpoint}: {e}"))?;
    let status = res.status();
    let text = res.text().await.map_err(|e| format!("{endpoint}: {e}"))?;
    if status != 200 {
        return Err(format!("{endpoint}: HTTP {status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("{endpoint}: {e}: {text}"))
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Signs the shopper in as sandbox user `index` the way a phone does: page → 302 to WeChat's
/// authorize URL → (the sandbox issues a code) → the shop's OAuth callback → 302 back.
async fn login(
    http: &reqwest::Client,
    base: &str,
    sandbox: &wechat_sandbox::Sandbox,
    index: usize,
) -> Result<(), String> {
    let res = http
        .get(format!("{base}/"))
        .header("accept", "text/html")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if res.status() != 302 {
        return Err(format!(
            "first visit: HTTP {} instead of the OAuth redirect",
            res.status()
        ));
    }
    let authorize = location(&res);
    let url = url::Url::parse(authorize.split('#').next().unwrap_or_default())
        .map_err(|e| format!("authorize URL {authorize:?}: {e}"))?;
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| format!("no state in {authorize}"))?;
    let code = sandbox.issue_oauth_code(index, "snsapi_base");
    let res = http
        .get(format!("{base}/wechat/oauth/callback"))
        .query(&[("code", code.as_str()), ("state", state.as_str())])
        .header("accept", "text/html")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if res.status() != 302 {
        return Err(format!("OAuth callback: HTTP {}", res.status()));
    }
    Ok(())
}

async fn count(pool: &server::db::Db, sql: &str) -> i64 {
    server::sql!(pool, e => sqlx::query_scalar(sql).fetch_one(e).await).unwrap_or(-1)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Args = clap::Parser::parse();
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            println!("FAILED: see above");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("notify_load: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One shop serving on 127.0.0.1 (an instance).
struct Shop {
    built: server::Built,
    base: String,
    server: tokio::task::JoinHandle<()>,
}

/// Builds a shop as the integration tests do (sandbox keys from [`SEED`]) on `db` and serves it.
async fn start_shop(args: &Args, db: &str, dir: &std::path::Path) -> Result<Shop, String> {
    let mut settings = Settings::for_tests(db.to_string(), dir.to_path_buf());
    // Required on PostgreSQL.
    settings.session_secret = Some(wechat::Secret::from(
        "notify-load-session-secret-0123456789abcdef-0123".to_string(),
    ));
    // One shopper holds every order: no cap (rate limits are off in test settings).
    settings.max_unpaid_orders = i64::MAX;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    settings.public_url = format!("http://{addr}");
    settings.wechat = WechatSettings {
        sandbox: true,
        source: WechatSource::Embedded {
            pay_version: args.version.pay(),
            credentials: Some(Box::new(wechat_sandbox::SandboxCredentials::from_seed(
                SEED,
            ))),
        },
        redis_url: None,
        redis_prefix: None,
        mp: None,
        template_paid: None,
        template_shipped: None,
    };
    let built = server::build(&settings)
        .await
        .map_err(|e| format!("the shop does not build: {e}"))?;
    let router = built.router.clone();
    let server = tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        if let Err(e) = axum::serve(listener, service).await {
            eprintln!("server: {e}");
        }
    });
    Ok(Shop {
        built,
        base: format!("http://{addr}"),
        server,
    })
}

/// Everything; `Ok(false)` when a check failed.
async fn run(args: Args) -> Result<bool, String> {
    let n = args.orders;
    if n == 0 {
        return Err("--orders must be at least 1".into());
    }
    let progress = |what: &str| eprintln!("[notify_load] {what}");

    // ---------------------------------------------------------------- the shop, as tests build it
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let db = match &args.database_url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}?mode=rwc", dir.path().join("load.db").display()),
    };
    progress(&format!(
        "building the shop (sandbox keys from the seed, {})",
        if args.database_url.is_some() {
            "PostgreSQL"
        } else {
            "fresh SQLite file"
        }
    ));
    if args.instances == 0 {
        return Err("--instances must be at least 1".into());
    }
    if args.instances > 1 && args.database_url.is_none() {
        return Err(
            "--instances above 1 needs --database-url: several shops share a PostgreSQL \
                    database"
                .into(),
        );
    }
    let first = start_shop(&args, &db, dir.path()).await?;
    let sandbox = first
        .built
        .wechat
        .embedded
        .clone()
        .ok_or("the shop has no embedded sandbox")?;
    let pool = first.built.pool.clone();
    let payments = first.built.payments.clone();
    let base = first.base.clone();
    let mut shops = vec![first];
    // The other shops: their own processes' worth of state (pools, caches, the sandbox's keys
    // from the same seed, so each verifies what the first one's sandbox signs) on one database.
    for k in 1..args.instances {
        let dir_k = dir.path().join(format!("instance-{k}"));
        std::fs::create_dir_all(&dir_k).map_err(|e| format!("{}: {e}", dir_k.display()))?;
        shops.push(start_shop(&args, &db, &dir_k).await?);
    }
    let bases: Arc<Vec<String>> = Arc::new(shops.iter().map(|s| s.base.clone()).collect());

    // ---------------------------------------------------------------- preparation (not timed)
    server::sql!(&pool, e => sqlx::query("UPDATE skus SET stock = 1000000")
        .execute(e).await.map(server::db::Done::from))
    .map_err(|e| format!("raise stock: {e}"))?;
    let shopper = reqwest::Client::builder()
        .cookie_store(true)
        .user_agent(WECHAT_UA)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    login(&shopper, &base, &sandbox, 0).await?;
    let products = api(&shopper, &base, "list_products", json!({})).await?;
    let sku = products[0]["skus"][0]["id"]
        .as_i64()
        .ok_or_else(|| format!("no SKU in {products}"))?;

    // The shop's order number is the second plus 6 random digits, so creating orders this
    // fast (hundreds a second) now and then draws a number taken in the same second: the
    // INSERT fails on UNIQUE(order_no) and the API answers 500. Such orders are retried (and
    // counted); the transaction rolled back, so nothing is left behind.
    let t = Instant::now();
    let retried = AtomicUsize::new(0);
    let order_ids: Vec<i64> = stream::iter(0..n)
        .map(|_| {
            let body = json!({
                "items": [{"sku_id": sku, "quantity": 1}],
                "address": {"name": "张三", "phone": "13800138000",
                            "region": "广东省 深圳市 南山区", "detail": "科技园南区 1 栋 101"},
                "remark": "",
            });
            let (shopper, base, retried) = (&shopper, &base, &retried);
            async move {
                let mut attempt = 1;
                let created = loop {
                    match api(shopper, base, "create_order", body.clone()).await {
                        Err(e) if attempt < 5 && e.contains("HTTP 500") => {
                            retried.fetch_add(1, Ordering::Relaxed);
                            attempt += 1;
                        }
                        other => break other?,
                    }
                };
                created["order_id"]
                    .as_i64()
                    .ok_or_else(|| format!("create_order answered {created}"))
            }
        })
        .buffer_unordered(PREP_CONCURRENCY)
        .try_collect()
        .await?;
    let retried = retried.into_inner();
    progress(&format!(
        "{n} orders created in {:.1} s ({retried} create_order calls answered 500 and were \
         retried: order_no collisions)",
        t.elapsed().as_secs_f64()
    ));

    let t = Instant::now();
    stream::iter(order_ids.iter().copied())
        .map(|id| {
            let (shopper, base) = (&shopper, &base);
            async move {
                api(shopper, base, "pay_order", json!({"order_id": id}))
                    .await
                    .map(drop)
            }
        })
        .buffer_unordered(PREP_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    progress(&format!(
        "{n} prepays at the sandbox ({} API) in {:.1} s",
        args.version.name(),
        t.elapsed().as_secs_f64()
    ));

    // The payer presses 支付 for every order; WeChat's own deliveries stay switched off so
    // that the only notifications the shop sees are ours.
    let order_nos: Vec<String> =
        server::sql!(&pool, e => sqlx::query_scalar("SELECT order_no FROM orders ORDER BY id")
        .fetch_all(e).await)
        .map_err(|e| format!("order numbers: {e}"))?;
    if order_nos.len() != n {
        return Err(format!(
            "{} orders in the database, expected {n}",
            order_nos.len()
        ));
    }
    sandbox.set_drop_notifications(true);
    for no in &order_nos {
        sandbox
            .pay(no)
            .await
            .map_err(|e| format!("sandbox pay {no}: {e}"))?;
    }
    let t = Instant::now();
    let mut notes = Vec::with_capacity(n);
    for no in &order_nos {
        let req = sandbox
            .signed_notification(no)
            .map_err(|e| format!("signed notification for {no}: {e}"))?;
        let (parts, body) = req.into_parts();
        notes.push(Notification {
            url: parts.uri.to_string(),
            headers: parts.headers,
            body: Bytes::from(body),
        });
    }
    let signed_at = Instant::now();
    progress(&format!(
        "{n} {} notifications signed by the sandbox in {:.1} s",
        args.version.name(),
        t.elapsed().as_secs_f64()
    ));
    let expected_path = format!("/wechat/notify/{}", args.version.name());
    if !notes[0].url.ends_with(&expected_path) {
        return Err(format!(
            "notify_url {} is not {expected_path}",
            notes[0].url
        ));
    }
    let unpaid = count(&pool, "SELECT COUNT(*) FROM orders WHERE status = 'unpaid'").await;
    if unpaid != n as i64 {
        return Err(format!(
            "{unpaid} unpaid orders before the run, expected {n}"
        ));
    }
    let notes = Arc::new(notes);

    // ---------------------------------------------------------------- timed phases
    let http = reqwest::Client::builder()
        .no_proxy()
        .user_agent("Mozilla/4.0 (notify_load)")
        .build()
        .map_err(|e| e.to_string())?;
    progress(&format!(
        "posting {n} notifications to {expected_path} with {} workers, then {} duplicate round(s)",
        args.concurrency, args.duplicates
    ));
    let unique = run_phase(&http, &bases, &notes, 1, args.concurrency, args.version).await;
    let duplicate = if args.duplicates > 0 {
        Some(
            run_phase(
                &http,
                &bases,
                &notes,
                args.duplicates,
                args.concurrency,
                args.version,
            )
            .await,
        )
    } else {
        None
    };
    let signed_age = signed_at.elapsed();

    // ---------------------------------------------------------------- checks and report
    let paid = count(&pool, "SELECT COUNT(*) FROM orders WHERE status = 'paid'").await;
    let events: Vec<(String, String, i64)> = server::sql!(&pool, e => sqlx::query_as(
        "SELECT kind, outcome, COUNT(*) FROM payment_events GROUP BY kind, outcome ORDER BY 1, 2",
    )
    .fetch_all(e).await)
    .map_err(|e| format!("payment_events: {e}"))?;
    let outcome = |o: &str| -> i64 { events.iter().filter(|e| e.1 == o).map(|e| e.2).sum() };
    let (accepted, dups) = (outcome("accepted"), outcome("duplicate"));
    // (`pay_order` logs a `prepay`/`info` row per order; only the notify route's rows count.)
    let notify_kind = format!("notify_{}", args.version.name());
    let others: i64 = events
        .iter()
        .filter(|e| e.0 == notify_kind && e.1 != "accepted" && e.1 != "duplicate")
        .map(|e| e.2)
        .sum();

    let cores = std::thread::available_parallelism().map_or(0, |c| c.get());
    println!();
    println!(
        "notify_load: Pay {}, {n} orders, concurrency {}, {} duplicate round(s), {} instance(s)",
        args.version.name(),
        args.concurrency,
        args.duplicates,
        args.instances
    );
    println!(
        "machine: {cores} cores; {} (axum + {}, pool of {} connections each) and load \
         generator (reqwest, keep-alive, loopback) in the same process on one tokio runtime",
        if args.instances > 1 {
            format!("{} shops round-robin", args.instances)
        } else {
            "shop".to_string()
        },
        if args.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite WAL"
        },
        pool.max_connections()
    );
    unique.print("unique");
    if let Some(d) = &duplicate {
        d.print("duplicate");
    }
    println!(
        "database: {paid} orders paid; payment_events: {}",
        events
            .iter()
            .map(|(k, o, c)| format!("{k}/{o} {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let mut ok = true;
    let mut check = |good: bool, what: String| {
        if !good {
            println!("CHECK FAILED: {what}");
            ok = false;
        }
    };
    let failures = unique.failures + duplicate.as_ref().map_or(0, |d| d.failures);
    check(
        failures == 0,
        format!("{failures} answers were not WeChat's success answer"),
    );
    check(
        paid == n as i64,
        format!("{paid} orders paid, expected {n}"),
    );
    check(
        accepted == n as i64,
        format!("{accepted} accepted events, expected {n}"),
    );
    let want_dups = (n * args.duplicates) as i64;
    check(
        dups == want_dups,
        format!("{dups} duplicate events, expected {want_dups}"),
    );
    check(others == 0, format!("{others} other {notify_kind} events"));
    if args.version == Version::V3 && signed_age > Duration::from_secs(280) {
        println!(
            "note: the run took {} s after signing; v3 notifications older than 300 s are refused \
             as stale, so failures near the end may be that",
            signed_age.as_secs()
        );
    }
    if ok && args.refunds {
        ok = refunds(&args, &payments, &sandbox, &http, &bases, &pool, &order_nos).await?;
    }
    if ok && args.reconcile {
        // Today's bill (China time) holds every payment (and refund) of this run.
        let today = time::OffsetDateTime::now_utc()
            .to_offset(time::macros::offset!(+8))
            .date();
        let t = Instant::now();
        let report = payments
            .reconcile_bill(today)
            .await
            .map_err(|e| format!("reconcile: {e}"))?;
        let elapsed = t.elapsed();
        println!();
        println!(
            "reconcile {today}: {:.2} s for a bill of {} payments and {} refunds \
             (download + parse + compare + store): {} differences",
            elapsed.as_secs_f64(),
            report.payments_matched,
            report.refunds_matched,
            report.differences.len()
        );
        if !report.is_clean() || report.payments_matched != n as i64 {
            println!(
                "CHECK FAILED: {} payments matched of {n}, differences: {:?}",
                report.payments_matched,
                report.differences.iter().take(3).collect::<Vec<_>>()
            );
            ok = false;
        }
    }
    for shop in shops {
        shop.server.abort();
    }
    Ok(ok)
}

/// The `--refunds` phases; `Ok(false)` when a check failed.
async fn refunds(
    args: &Args,
    payments: &server::payments::Payments,
    sandbox: &wechat_sandbox::Sandbox,
    http: &reqwest::Client,
    bases: &Arc<Vec<String>>,
    pool: &server::db::Db,
    order_nos: &[String],
) -> Result<bool, String> {
    let n = order_nos.len();
    eprintln!(
        "[notify_load] refunding {n} orders with {} callers",
        args.concurrency
    );
    let started = Instant::now();
    let results: Vec<(f64, Result<String, String>)> = stream::iter(order_nos.iter().cloned())
        .map(|no| async move {
            let t0 = Instant::now();
            let req = server::payments::RefundRequest {
                order: no.clone(),
                reason: "notify_load".into(),
                ..Default::default()
            };
            let r = match payments.refund(&req).await {
                Ok(o) if o.accepted() => Ok(o.refund.out_refund_no),
                Ok(o) => Err(format!("{no}: refund {}", o.refund.status)),
                Err(e) => Err(format!("{no}: {e}")),
            };
            (t0.elapsed().as_secs_f64() * 1000.0, r)
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    let mut refund_phase = Phase {
        requests: n,
        elapsed: started.elapsed(),
        latencies_ms: results.iter().map(|r| r.0).collect(),
        failures: 0,
        samples: Vec::new(),
    };
    refund_phase.latencies_ms.sort_by(f64::total_cmp);
    let mut refund_nos = Vec::with_capacity(n);
    for (_, r) in results {
        match r {
            Ok(no) => refund_nos.push(no),
            Err(e) => {
                refund_phase.failures += 1;
                if refund_phase.samples.len() < 3 {
                    refund_phase.samples.push(e);
                }
            }
        }
    }
    // The sandbox settles each refund a moment later (its notifications are off).
    let deadline = Instant::now() + Duration::from_secs(60);
    while refund_nos
        .iter()
        .any(|no| sandbox.refund(no).is_none_or(|r| r.status != "SUCCESS"))
    {
        if Instant::now() > deadline {
            return Err("the sandbox did not settle every refund within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut notes = Vec::with_capacity(n);
    for no in &refund_nos {
        let (headers, body) = sandbox
            .signed_refund_notification(no)
            .map_err(|e| format!("signed refund notification {no}: {e}"))?;
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            let name =
                axum::http::HeaderName::from_bytes(k.as_bytes()).map_err(|e| e.to_string())?;
            map.insert(name, v.parse().map_err(|_| format!("header {k}"))?);
        }
        notes.push(Notification {
            url: sandbox
                .refund(no)
                .and_then(|r| r.notify_url)
                .ok_or_else(|| format!("refund {no} has no notify_url"))?,
            headers: map,
            body: Bytes::from(body),
        });
    }
    let notes = Arc::new(notes);
    let unique = run_phase(http, bases, &notes, 1, args.concurrency, args.version).await;
    let duplicate = run_phase(
        http,
        bases,
        &notes,
        args.duplicates,
        args.concurrency,
        args.version,
    )
    .await;

    let refunded = count(
        pool,
        "SELECT COUNT(*) FROM orders WHERE status = 'refunded'",
    )
    .await;
    let kind = format!("refund_notify_{}", args.version.name());
    let accepted = count(
        pool,
        &format!(
            "SELECT COUNT(*) FROM payment_events WHERE kind = '{kind}' AND outcome = 'accepted'"
        ),
    )
    .await;
    let dups = count(
        pool,
        &format!(
            "SELECT COUNT(*) FROM payment_events WHERE kind = '{kind}' AND outcome = 'duplicate'"
        ),
    )
    .await;
    println!();
    println!(
        "refunds (Payments::refund → the sandbox's refund API), concurrency {}:",
        args.concurrency
    );
    refund_phase.print("refunds");
    println!(
        "refund notifications to /wechat/notify/refund/{}:",
        args.version.name()
    );
    unique.print("unique");
    if args.duplicates > 0 {
        duplicate.print("duplicate");
    }
    println!("database: {refunded} orders refunded; {kind}: {accepted} accepted, {dups} duplicate");
    let mut ok = true;
    let mut check = |good: bool, what: String| {
        if !good {
            println!("CHECK FAILED: {what}");
            ok = false;
        }
    };
    check(
        refund_phase.failures == 0,
        format!("{} refunds failed", refund_phase.failures),
    );
    check(
        unique.failures + duplicate.failures == 0,
        "refund notifications refused".into(),
    );
    check(
        refunded == n as i64,
        format!("{refunded} orders refunded, expected {n}"),
    );
    check(
        accepted == n as i64,
        format!("{accepted} accepted refund notifications, expected {n}"),
    );
    let want = (n * args.duplicates) as i64;
    check(
        dups == want,
        format!("{dups} duplicate refund notifications, expected {want}"),
    );
    Ok(ok)
}
