//! Crashes lose nothing: the real `wxmall` binary, killed with SIGKILL in the middle of a burst of
//! payment notifications and order creations, restarted on the same database, with WeChat (a
//! sandbox in this test process, which the shop reaches as an external WeChat through
//! `WECHAT_*_BASE`) sending the unacknowledged notifications again.
//!
//! Afterwards: every payment WeChat took is applied exactly once (one `accepted` event per order,
//! WeChat's transaction id on it), every order the shop answered 200 for exists, stock plus what
//! live orders hold equals the stock before the burst for every SKU, and (on SQLite)
//! `PRAGMA integrity_check` says `ok`. Runs on PostgreSQL too when the suite does.

mod common;

use common::{order_body, Shopper, WECHAT_UA};
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wechat_sandbox::{Sandbox, SandboxCredentials, SandboxOptions};

/// Orders paid at WeChat during the burst, and orders created during it.
const PAID: usize = 100;
const CREATED: usize = 100;

struct Shop {
    addr: String,
    data_dir: std::path::PathBuf,
    database_url: String,
    sandbox_origin: String,
    creds: SandboxCredentials,
}

impl Shop {
    fn spawn(&self) -> Child {
        let c = &self.creds;
        let child = Command::new(env!("CARGO_BIN_EXE_wxmall"))
            .env("WXMALL_ADDR", &self.addr)
            .env("WXMALL_PUBLIC_URL", format!("http://{}", self.addr))
            .env("WXMALL_DATA_DIR", &self.data_dir)
            .env("DATABASE_URL", &self.database_url)
            // Required on PostgreSQL; harmless on SQLite.
            .env(
                "WXMALL_SESSION_SECRET",
                "crash-test-session-secret-0123456789abcdef-0123",
            )
            .env("WXMALL_DEMO_CATALOGUE", "1")
            .env("WXMALL_RATE_LIMIT", "off")
            .env("WXMALL_MAX_UNPAID_ORDERS", "1000")
            .env("WECHAT_APPID", &c.appid)
            .env("WECHAT_APPSECRET", &c.appsecret)
            .env("WECHAT_MCHID", &c.mchid)
            .env("WECHAT_PAY_VERSION", "v2")
            .env("WECHAT_PAY_KEY", &c.pay_key_v2)
            .env(
                "WECHAT_OPEN_BASE",
                format!("{}/sandbox/open", self.sandbox_origin),
            )
            .env(
                "WECHAT_API_BASE",
                format!("{}/sandbox/api", self.sandbox_origin),
            )
            .env(
                "WECHAT_PAY_BASE",
                format!("{}/sandbox/pay", self.sandbox_origin),
            )
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wxmall");
        let started = Instant::now();
        while !self.healthy() {
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "the shop did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    fn healthy(&self) -> bool {
        let Ok(mut s) = std::net::TcpStream::connect(&self.addr) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut out = String::new();
        s.read_to_string(&mut out).is_ok() && out.ends_with("ok")
    }

    fn shopper(&self) -> Shopper {
        Shopper {
            base: format!("http://{}", self.addr),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .user_agent(WECHAT_UA)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        }
    }
}

async fn stock_and_held(pool: &server::db::Db) -> Vec<(i64, i64, i64)> {
    server::sql!(pool, e => sqlx::query_as(
        "SELECT s.id, s.stock, CAST(COALESCE((SELECT SUM(l.quantity) FROM order_lines l \
         JOIN orders o ON o.id = l.order_id WHERE l.sku_id = s.id AND o.status <> 'closed'), 0) AS BIGINT) \
         FROM skus s ORDER BY s.id",
    )
    .fetch_all(e).await)
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_a_burst_of_notifications_and_orders_loses_nothing() {
    let creds = common::sandbox_credentials();
    let sandbox = Sandbox::with_options(
        creds.clone(),
        SandboxOptions {
            notify_retry_delays: vec![Duration::from_millis(250); 60],
            notify_duplicate_after: Some(Duration::from_millis(200)),
            ..SandboxOptions::default()
        },
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sandbox_origin = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().nest_service("/sandbox", wechat_sandbox::router(sandbox.clone()));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let test_db = common::TestDb::create(dir.path()).await;
    let shop = Shop {
        addr: format!("127.0.0.1:{port}"),
        data_dir: dir.path().to_path_buf(),
        database_url: test_db.url.clone(),
        sandbox_origin,
        creds,
    };
    let mut child = shop.spawn();

    // Three WeChat shoppers and PAID prepaid orders.
    let mut shoppers = Vec::new();
    for i in 0..3 {
        let s = shop.shopper();
        s.login(&sandbox, i).await;
        shoppers.push(s);
    }
    let pool = server::db::open_existing(&test_db.url).await.unwrap();
    // Enough of everything for both halves of the test (the demo stock is a handful per SKU).
    server::sql!(&pool, e => sqlx::query("UPDATE skus SET stock = 1000")
        .execute(e).await.map(server::db::Done::from))
    .unwrap();
    let mut paid_nos = Vec::new();
    for i in 0..PAID {
        let s = &shoppers[i % 3];
        let sku = 1 + (i as i64 % 16);
        let (st, created) = s.api("create_order", order_body(&[(sku, 1)])).await;
        assert_eq!(st, 200, "{created}");
        let id = created["order_id"].as_i64().unwrap();
        let (st, params) = s
            .api("pay_order", serde_json::json!({"order_id": id}))
            .await;
        assert_eq!(st, 200, "{params}");
        let no: String = server::sql!(&pool, e => sqlx::query_scalar("SELECT order_no FROM orders WHERE id = $1")
            .bind(id)
            .fetch_one(e).await)
            .unwrap();
        paid_nos.push(no);
    }
    let before = stock_and_held(&pool).await;

    // The burst: WeChat takes every payment (and notifies the shop), shoppers create orders.
    let pays = paid_nos.clone().into_iter().map(|no| {
        let sb = sandbox.clone();
        tokio::spawn(async move { sb.pay(&no).await.expect("paid at WeChat") })
    });
    let pays: Vec<_> = pays.collect();
    let creates: Vec<_> = (0..CREATED)
        .map(|i| {
            let s = Shopper {
                base: shoppers[i % 3].base.clone(),
                http: shoppers[i % 3].http.clone(),
            };
            let sku = 1 + (i as i64 % 16);
            tokio::spawn(async move {
                let res = s
                    .http
                    .post(format!("{}/api/create_order", s.base))
                    .json(&order_body(&[(sku, 1)]))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == 200 => r
                        .json::<serde_json::Value>()
                        .await
                        .ok()
                        .and_then(|v| v["order_id"].as_i64()),
                    _ => None,
                }
            })
        })
        .collect();
    // In the middle of it: some notifications acknowledged, most not.
    let started = Instant::now();
    loop {
        let acked = paid_nos
            .iter()
            .filter(|no| sandbox.deliveries(no).iter().any(|d| d.acknowledged))
            .count();
        if acked >= 10 || started.elapsed() > Duration::from_secs(10) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let acked_before_kill: Vec<String> = paid_nos
        .iter()
        .filter(|no| sandbox.deliveries(no).iter().any(|d| d.acknowledged))
        .cloned()
        .collect();
    assert!(
        acked_before_kill.len() < PAID,
        "the kill came after the burst: nothing to prove"
    );
    for p in pays {
        p.await.unwrap();
    }
    let mut answered = Vec::new();
    for c in creates {
        if let Some(id) = c.await.unwrap() {
            answered.push(id);
        }
    }

    let in_db_before_restart: i64 =
        server::sql!(&pool, e => sqlx::query_scalar("SELECT COUNT(*) FROM orders")
        .fetch_one(e).await)
        .unwrap();
    eprintln!(
        "killed with {} of {PAID} notifications acknowledged, {} of {CREATED} creations answered 200, \
         {in_db_before_restart} orders in the database",
        acked_before_kill.len(),
        answered.len()
    );

    // Restarted on the same database; WeChat keeps notifying until acknowledged.
    let mut child = shop.spawn();
    for no in &paid_nos {
        assert!(
            sandbox.wait_for_ack(no, Duration::from_secs(30)).await,
            "{no} never acknowledged after the restart"
        );
    }

    for no in &paid_nos {
        let (status, transaction_id): (String, Option<String>) =
            server::sql!(&pool, e => sqlx::query_as("SELECT status, transaction_id FROM orders WHERE order_no = $1")
                .bind(no)
                .fetch_one(e).await)
                .unwrap();
        assert_eq!(status, "paid", "{no}");
        assert_eq!(
            transaction_id,
            sandbox.transaction(no).and_then(|t| t.transaction_id),
            "{no}"
        );
        let accepted: i64 = server::sql!(&pool, e => sqlx::query_scalar(
            "SELECT COUNT(*) FROM payment_events e JOIN orders o ON o.id = e.order_id \
             WHERE o.order_no = $1 AND e.outcome = 'accepted'",
        )
        .bind(no)
        .fetch_one(e).await)
        .unwrap();
        assert_eq!(accepted, 1, "{no} applied exactly once");
    }
    for id in &answered {
        let lines: i64 = server::sql!(&pool, e => sqlx::query_scalar("SELECT COUNT(*) FROM order_lines WHERE order_id = $1")
            .bind(id)
            .fetch_one(e).await)
            .unwrap();
        assert_eq!(lines, 1, "order {id} was answered 200: it is there, whole");
    }
    // Stock: what the burst's orders hold moved from `stock` to held, nothing else.
    let after = stock_and_held(&pool).await;
    assert_eq!(before.len(), after.len());
    for ((sku, s0, h0), (_, s1, h1)) in before.iter().zip(&after) {
        assert_eq!(s0 + h0, s1 + h1, "sku {sku}: stock + held");
    }
    if let Some(sqlite) = pool.as_sqlite() {
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(sqlite)
            .await
            .unwrap();
        assert_eq!(check, "ok");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
