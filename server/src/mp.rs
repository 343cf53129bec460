//! The official account's server: `GET /wechat/mp` (WeChat's URL verification) and
//! `POST /wechat/mp` (messages and events, plaintext or safe mode; see `wechat::mp`).
//!
//! - A push whose `signature` (or `msg_signature`) does not verify is refused with 403 and changes
//!   nothing; one that verifies but cannot be read, 400 (both logged).
//! - A repeated push (same `MsgId`, or same sender, `CreateTime` and event) is answered
//!   `success` and not acted on again (`mp_messages`, shared by every instance).
//! - `subscribe` → the welcome reply with the shop's link; `subscribe` through a parametric QR
//!   code and `SCAN` → a link to the scene's product or page, and the scene is kept as the
//!   follower's first channel (`mp_followers.first_channel`); `unsubscribe` is recorded; menu
//!   `CLICK` keys and text keywords → the replies of [`Replies`] (defaults, or
//!   `WXMALL_MP_REPLIES`).
//! - Scenes: `product:ID`, `page:/path`, `channel:NAME` (what `wxmall qrcode` will make).
//! - Everything is answered at once (a few reads and writes): WeChat waits 5 seconds at most.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::db::Db;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use wechat::mp::server::{Message, MpError, MpServer};

/// How long a push is remembered for deduplication (WeChat retries within seconds).
pub const DEDUPE_SECS: i64 = 24 * 3600;

#[derive(Clone)]
pub struct MpState {
    pub server: Arc<MpServer>,
    pub pool: Db,
    /// The shop's public origin, for links in replies.
    pub public_url: String,
    pub replies: Arc<Replies>,
}

/// What the account answers. `{shop}` in a text is the shop's public URL.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Replies {
    /// To a new follower without a scene.
    pub welcome: String,
    /// Text messages containing the key → the reply (first match in file order).
    pub keywords: Vec<(String, String)>,
    /// Menu `click` button keys → the reply.
    pub clicks: BTreeMap<String, String>,
}

const HELP: &str = "需要帮助？请直接在这里留言，客服会尽快回复；订单问题请附上订单编号。";

impl Default for Replies {
    fn default() -> Self {
        let orders = "查看<a href=\"{shop}/orders\">我的订单</a>".to_string();
        Self {
            welcome: "欢迎关注！<a href=\"{shop}/\">点此进入商城</a>".into(),
            keywords: vec![
                ("订单".into(), orders.clone()),
                ("客服".into(), HELP.into()),
                ("帮助".into(), HELP.into()),
            ],
            clicks: [
                ("ORDERS".to_string(), orders),
                ("HELP".to_string(), HELP.to_string()),
            ]
            .into_iter()
            .collect(),
        }
    }
}

impl Replies {
    /// A JSON file `{"welcome": …, "keywords": [["订单", "…"], …], "clicks": {"KEY": "…"}}`; what
    /// it leaves out keeps the default.
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn keyword(&self, text: &str) -> Option<&str> {
        self.keywords
            .iter()
            .find(|(k, _)| !k.is_empty() && text.contains(k.as_str()))
            .map(|(_, v)| v.as_str())
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// `GET /wechat/mp?signature&timestamp&nonce&echostr`.
pub async fn verify(
    State(st): State<MpState>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    if !st
        .server
        .verify_signature(get("signature"), get("timestamp"), get("nonce"))
    {
        tracing::warn!("official-account URL verification refused: bad signature");
        return plain(StatusCode::FORBIDDEN, "forbidden");
    }
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        get("echostr").to_string(),
    )
        .into_response()
}

/// `POST /wechat/mp`: a message or event.
pub async fn receive(
    State(st): State<MpState>,
    Query(q): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    let push = match st.server.open(&q, &body) {
        Ok(p) => p,
        Err(MpError::Signature) => {
            tracing::warn!("official-account push refused: signature does not verify");
            return plain(StatusCode::FORBIDDEN, "forbidden");
        }
        Err(e) => {
            tracing::warn!(error = %e, "official-account push refused");
            return plain(StatusCode::BAD_REQUEST, "bad request");
        }
    };
    let now = crate::shop::now();
    let m = &push.message;
    let fresh = match crate::sql!(&st.pool, e => sqlx::query(
        "INSERT INTO mp_messages (dedupe_key, received_at) VALUES ($1, $2) \
         ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(m.dedupe_key())
    .bind(now)
    .execute(e).await.map(crate::db::Done::from))
    {
        Ok(r) => r.rows_affected() == 1,
        Err(e) => {
            // WeChat asks again within seconds: better than acting without the dedupe record.
            tracing::error!(error = %e, "cannot record an official-account push");
            return plain(StatusCode::SERVICE_UNAVAILABLE, "retry");
        }
    };
    if !fresh {
        return plain(StatusCode::OK, "success");
    }
    let reply = match act(&st, m, now).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "official-account push not handled");
            None
        }
    };
    match reply {
        None => plain(StatusCode::OK, "success"),
        Some(text) => {
            let text = text.replace("{shop}", &st.public_url);
            let xml = m.text_reply(&text, now);
            let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
            let sealed = st
                .server
                .seal(&xml, push.encrypted, get("timestamp"), get("nonce"));
            (
                [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
                sealed,
            )
                .into_response()
        }
    }
}

/// What a scene links to.
fn scene_reply(scene: &str) -> Option<String> {
    if let Some(id) = scene.strip_prefix("product:") {
        if !id.is_empty() && id.len() <= 18 && id.bytes().all(|b| b.is_ascii_digit()) {
            return Some(format!(
                "<a href=\"{{shop}}/product/{id}\">点此查看您扫码的商品</a>"
            ));
        }
    }
    if let Some(path) = scene.strip_prefix("page:") {
        let safe = path.starts_with('/')
            && !path.starts_with("//")
            && path.len() <= 200
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-_.?=&%".contains(&b));
        if safe {
            return Some(format!("<a href=\"{{shop}}{path}\">点此打开</a>"));
        }
    }
    None
}

async fn act(st: &MpState, m: &Message, now: i64) -> Result<Option<String>, sqlx::Error> {
    let r = &st.replies;
    match (m.msg_type.as_str(), m.event.as_deref()) {
        ("event", Some("subscribe")) => {
            let scene = m.scene();
            crate::sql!(&st.pool, e => sqlx::query(
                "INSERT INTO mp_followers (openid, first_channel, subscribed_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (openid) DO UPDATE SET subscribed_at = excluded.subscribed_at, \
                 unsubscribed_at = NULL, \
                 first_channel = COALESCE(mp_followers.first_channel, excluded.first_channel)",
            )
            .bind(&m.from_user)
            .bind(scene)
            .bind(now)
            .execute(e).await.map(crate::db::Done::from))?;
            Ok(Some(
                scene
                    .and_then(scene_reply)
                    .map(|link| format!("欢迎关注！{link}"))
                    .unwrap_or_else(|| r.welcome.clone()),
            ))
        }
        ("event", Some("SCAN")) => {
            let scene = m.scene();
            crate::sql!(&st.pool, e => sqlx::query(
                "INSERT INTO mp_followers (openid, first_channel, subscribed_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (openid) DO UPDATE SET \
                 first_channel = COALESCE(mp_followers.first_channel, excluded.first_channel)",
            )
            .bind(&m.from_user)
            .bind(scene)
            .bind(now)
            .execute(e).await.map(crate::db::Done::from))?;
            Ok(scene.and_then(scene_reply))
        }
        ("event", Some("unsubscribe")) => {
            crate::sql!(&st.pool, e => sqlx::query("UPDATE mp_followers SET unsubscribed_at = $1 WHERE openid = $2")
                .bind(now)
                .bind(&m.from_user)
                .execute(e).await.map(crate::db::Done::from))?;
            Ok(None)
        }
        ("event", Some(ev @ ("user_get_card" | "user_del_card" | "user_consume_card"))) => {
            record_card_event(st, m, ev, now).await?;
            Ok(None)
        }
        ("event", Some("CLICK")) => Ok(m.event_key.as_ref().and_then(|k| r.clicks.get(k)).cloned()),
        ("text", _) => Ok(m
            .content
            .as_deref()
            .and_then(|t| r.keyword(t))
            .map(str::to_string)),
        _ => Ok(None),
    }
}

/// Card events keep the console's counts of coupons taken and redeemed (`coupon_codes`): a
/// code taken, deleted from the wallet, or consumed (by the shop's own redemption, or anywhere
/// else). Events for cards that are not the shop's coupons are ignored.
async fn record_card_event(
    st: &MpState,
    m: &Message,
    event: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let (Some(card_id), Some(code)) = (&m.card_id, &m.user_card_code) else {
        tracing::warn!(event, "card event without CardId or UserCardCode ignored");
        return Ok(());
    };
    let ours: Option<i64> = crate::sql!(&st.pool, e => sqlx::query_scalar("SELECT id FROM coupons WHERE card_id = $1")
        .bind(card_id)
        .fetch_optional(e).await)?;
    if ours.is_none() {
        return Ok(());
    }
    let sql = match event {
        "user_get_card" => {
            "INSERT INTO coupon_codes (card_id, code, openid, status, taken_at)              VALUES ($1, $2, $3, 'taken', $4)              ON CONFLICT (card_id, code) DO UPDATE SET openid = excluded.openid,              taken_at = excluded.taken_at"
        }
        "user_consume_card" => {
            "INSERT INTO coupon_codes (card_id, code, openid, status, redeemed_at)              VALUES ($1, $2, $3, 'redeemed', $4)              ON CONFLICT (card_id, code) DO UPDATE SET status = 'redeemed',              openid = COALESCE(coupon_codes.openid, excluded.openid),              redeemed_at = COALESCE(coupon_codes.redeemed_at, excluded.redeemed_at)"
        }
        _ => {
            "INSERT INTO coupon_codes (card_id, code, openid, status, deleted_at)              VALUES ($1, $2, $3, 'deleted', $4)              ON CONFLICT (card_id, code) DO UPDATE SET deleted_at = excluded.deleted_at,              status = CASE WHEN coupon_codes.status = 'redeemed' THEN 'redeemed' ELSE 'deleted' END"
        }
    };
    crate::sql!(&st.pool, e => sqlx::query(sql)
        .bind(card_id)
        .bind(code)
        .bind(&m.from_user)
        .bind(now)
        .execute(e).await.map(crate::db::Done::from))?;
    Ok(())
}

/// The template message (模板消息) "order paid", sent to the shopper when a payment is applied
/// (`WECHAT_TEMPLATE_PAID`). Fields, for a template like 订单支付成功通知: `first` (您的订单已支付成功),
/// `keyword1` order number, `keyword2` amount (¥39.90), `keyword3` goods (the first line's
/// name, and how many items in all), `keyword4` payment time (China time), `remark`; tapping it
/// opens the order. Sent in the background with up to three tries (1 s, then 2 s apart); a
/// failure is logged with WeChat's errcode and never touches the payment.
#[derive(Clone)]
pub struct OrderTemplate {
    pub api: wechat::mp::api::MpApi,
    pub template_id: String,
    pub pool: Db,
    pub public_url: String,
    pub kind: OrderNotice,
}

/// Which order message a template carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderNotice {
    /// `WECHAT_TEMPLATE_PAID`: `first` 您的订单已支付成功, `keyword1` order number, `keyword2`
    /// amount, `keyword3` goods, `keyword4` payment time, `remark`.
    Paid,
    /// `WECHAT_TEMPLATE_SHIPPED`: `first` 您的订单已发货, `keyword1` order number, `keyword2`
    /// carrier, `keyword3` tracking number, `keyword4` shipping time, `remark`.
    Shipped,
}

impl OrderTemplate {
    /// Sends the message for order `order_id` in the background.
    pub fn spawn_send(&self, order_id: i64) {
        let this = self.clone();
        tokio::spawn(async move {
            let message = match this.message(order_id).await {
                Ok(Some(m)) => m,
                Ok(None) => return, // no WeChat identity: nobody to tell
                Err(e) => {
                    tracing::error!(error = %e, order_id, "cannot prepare an order template message");
                    return;
                }
            };
            for attempt in 0..3u32 {
                if attempt > 0 {
                    tokio::time::sleep(std::time::Duration::from_secs(u64::from(attempt))).await;
                }
                match this.api.send_template(&message).await {
                    Ok(msgid) => {
                        tracing::info!(order_id, msgid, kind = ?this.kind, "order template message sent");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, order_id, attempt, kind = ?this.kind, "order template message failed")
                    }
                }
            }
        });
    }

    async fn message(
        &self,
        order_id: i64,
    ) -> Result<Option<wechat::mp::api::TemplateMessage>, sqlx::Error> {
        #[allow(clippy::type_complexity)]
        let row: Option<(
            String,
            i64,
            Option<i64>,
            Option<String>,
            Option<String>,
            i64,
        )> = crate::sql!(&self.pool, e => sqlx::query_as(
                "SELECT o.order_no, o.total_fee, o.paid_at, u.openid, \
                 (SELECT product_name FROM order_lines WHERE order_id = o.id ORDER BY line_no LIMIT 1), \
                 (SELECT CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM order_lines WHERE order_id = o.id) \
                 FROM orders o JOIN users u ON u.id = o.user_id WHERE o.id = $1",
            )
            .bind(order_id)
            .fetch_optional(e).await)?;
        let Some((order_no, total_fee, paid_at, Some(openid), first, items)) = row else {
            return Ok(None);
        };
        let goods = match (first, items) {
            (Some(name), n) if n > 1 => format!("{name} 等 {n} 件"),
            (Some(name), _) => name,
            (None, _) => String::new(),
        };
        let data = match self.kind {
            OrderNotice::Paid => vec![
                ("first".into(), "您的订单已支付成功".into()),
                ("keyword1".into(), order_no),
                (
                    "keyword2".into(),
                    format!("¥{}", app::model::format_fen(total_fee)),
                ),
                ("keyword3".into(), goods),
                (
                    "keyword4".into(),
                    paid_at
                        .map(app::components::format_time)
                        .unwrap_or_default(),
                ),
                ("remark".into(), "点击查看订单详情".into()),
            ],
            OrderNotice::Shipped => {
                let (carrier, tracking, shipped_at): (Option<String>, Option<String>, Option<i64>) =
                    crate::sql!(&self.pool, e => sqlx::query_as(
                        "SELECT carrier, tracking_no, shipped_at FROM orders WHERE id = $1",
                    )
                    .bind(order_id)
                    .fetch_one(e).await)?;
                vec![
                    ("first".into(), "您的订单已发货".into()),
                    ("keyword1".into(), order_no),
                    ("keyword2".into(), carrier.unwrap_or_default()),
                    ("keyword3".into(), tracking.unwrap_or_default()),
                    (
                        "keyword4".into(),
                        shipped_at
                            .map(app::components::format_time)
                            .unwrap_or_default(),
                    ),
                    ("remark".into(), format!("{goods}，点击查看订单详情")),
                ]
            }
        };
        Ok(Some(wechat::mp::api::TemplateMessage {
            touser: openid,
            template_id: self.template_id.clone(),
            url: Some(format!("{}/orders/{order_id}", self.public_url)),
            data,
        }))
    }
}
