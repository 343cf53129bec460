//! A test shop on port 0 with its own fresh SQLite database.

#![allow(dead_code)]

use serde_json::{json, Value};
use server::config::Settings;
use std::net::SocketAddr;

pub struct TestShop {
    pub base: String,
    pub pool: sqlx::SqlitePool,
    _dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestShop {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestShop {
    pub async fn spawn() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
        let settings = Settings::for_tests(db, dir.path().to_path_buf());
        let built = server::build(&settings).await.expect("shop builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            axum::serve(listener, built.router).await.expect("serve");
        });
        Self {
            base: format!("http://{addr}"),
            pool: built.pool,
            _dir: dir,
            server,
        }
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
        sqlx::query_scalar("SELECT stock FROM skus WHERE id = $1")
            .bind(sku_id)
            .fetch_one(&self.pool)
            .await
            .expect("stock")
    }

    pub async fn set_stock(&self, sku_id: i64, stock: i64) {
        sqlx::query("UPDATE skus SET stock = $1 WHERE id = $2")
            .bind(stock)
            .bind(sku_id)
            .execute(&self.pool)
            .await
            .expect("set stock");
    }

    pub async fn price(&self, sku_id: i64) -> i64 {
        sqlx::query_scalar("SELECT price_fen FROM skus WHERE id = $1")
            .bind(sku_id)
            .fetch_one(&self.pool)
            .await
            .expect("price")
    }
}

pub struct Shopper {
    pub base: String,
    pub http: reqwest::Client,
}

impl Shopper {
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
            .post(format!("{}/api/form/{endpoint}", self.base))
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
