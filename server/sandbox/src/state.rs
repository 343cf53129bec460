//! The sandbox object: credentials, options, in-memory state and the Rust test hooks.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
use base64::Engine;
use rsa::pkcs8::DecodePublicKey;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::creds::parse_private;
use crate::crypto::V2SignType;
use crate::{SandboxCredentials, SandboxError};

/// Tunables. Defaults follow WeChat, except notification retries which are short.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// Lifetime of base access_tokens, sns access_tokens and jsapi_tickets (7200 s).
    pub access_token_ttl: Duration,
    /// How long a superseded `/cgi-bin/token` token keeps working (300 s).
    pub token_overlap: Duration,
    /// OAuth `code` lifetime (300 s).
    pub oauth_code_ttl: Duration,
    /// sns `refresh_token` lifetime (30 days).
    pub refresh_token_ttl: Duration,
    /// prepay_id lifetime (2 h).
    pub prepay_ttl: Duration,
    /// Delays before each retry of an unacknowledged notification
    /// (default 0.5 s, 1 s, 2 s, 4 s, 8 s: six attempts in all).
    pub notify_retry_delays: Vec<Duration>,
    /// After an acknowledged delivery, send the same notification once more after this
    /// delay (`None`: no duplicate). Default 1 s.
    pub notify_duplicate_after: Option<Duration>,
    /// Per-attempt HTTP timeout for notifications (5 s).
    pub notify_timeout: Duration,
    /// Accepted skew of v3 `Authorization` timestamps against the wall clock (300 s).
    pub v3_timestamp_window: Duration,
    /// Largest request body accepted on pay endpoints (64 KiB).
    pub max_body_bytes: usize,
    /// Which key signs v3 answers and notifications.
    pub answer_signer: AnswerSigner,
    /// "JS接口安全域名": hosts allowed for `wx.config` urls (empty: any).
    pub js_safe_domains: Vec<String>,
    /// "网页授权域名": hosts allowed for OAuth `redirect_uri` (empty: any).
    pub oauth_domains: Vec<String>,
    /// "支付授权目录": URL prefixes (each ending in `/`) allowed to start a payment (empty: any).
    pub pay_directories: Vec<String>,
    /// How long a refund stays `PROCESSING` before it settles (`SUCCESS`, or `ABNORMAL` after
    /// [`Sandbox::make_next_refund_abnormal`]) and its notification is sent (100 ms; WeChat
    /// takes seconds to days).
    pub refund_settle_delay: Duration,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            access_token_ttl: Duration::from_secs(7200),
            token_overlap: Duration::from_secs(300),
            oauth_code_ttl: Duration::from_secs(300),
            refresh_token_ttl: Duration::from_secs(30 * 86_400),
            prepay_ttl: Duration::from_secs(7200),
            notify_retry_delays: [500, 1000, 2000, 4000, 8000]
                .into_iter()
                .map(Duration::from_millis)
                .collect(),
            notify_duplicate_after: Some(Duration::from_secs(1)),
            notify_timeout: Duration::from_secs(5),
            v3_timestamp_window: Duration::from_secs(300),
            max_body_bytes: 64 * 1024,
            answer_signer: AnswerSigner::PublicKey,
            js_safe_domains: Vec::new(),
            oauth_domains: Vec::new(),
            pay_directories: Vec::new(),
            refund_settle_delay: Duration::from_millis(100),
        }
    }
}

/// The key "WeChat Pay" signs v3 answers/notifications with (`Wechatpay-Serial`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AnswerSigner {
    /// The WeChat Pay public key (`PUB_KEY_ID_…`), the current default at WeChat.
    #[default]
    PublicKey,
    /// The platform certificate (40-hex serial), the older mode.
    PlatformCertificate,
}

/// Endpoints a [`Fault`] can be queued for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /api/cgi-bin/token`
    CgiToken,
    /// `POST /api/cgi-bin/stable_token`
    StableToken,
    /// `GET /api/cgi-bin/ticket/getticket`
    GetTicket,
    /// `GET /api/sns/oauth2/access_token`
    SnsAccessToken,
    /// `GET /api/sns/oauth2/refresh_token`
    SnsRefreshToken,
    /// `GET /api/sns/userinfo`
    SnsUserinfo,
    /// `POST /pay/pay/unifiedorder`
    V2UnifiedOrder,
    /// `POST /pay/pay/orderquery`
    V2OrderQuery,
    /// `POST /pay/pay/closeorder`
    V2CloseOrder,
    /// `POST /pay/secapi/pay/refund`
    V2Refund,
    /// `POST /pay/pay/refundquery`
    V2RefundQuery,
    /// `POST /pay/pay/downloadbill`
    V2DownloadBill,
    /// `POST /pay/v3/pay/transactions/jsapi`
    V3Jsapi,
    /// `GET /pay/v3/pay/transactions/{out-trade-no|id}/…`
    V3Query,
    /// `POST /pay/v3/pay/transactions/out-trade-no/{no}/close`
    V3Close,
    /// `POST /pay/v3/refund/domestic/refunds` and its query
    V3Refund,
    /// `GET /pay/v3/certificates`
    V3Certificates,
    /// `GET /pay/v3/bill/tradebill`
    V3Bill,
    /// `GET /pay/v3/billdownload/file` (here [`Fault::CorruptSignature`] serves a file that no
    /// longer matches its announced SHA-1)
    V3BillDownload,
    /// The shim's `wx.config` check
    JsConfig,
    /// The shim's `chooseWXPay` / `getBrandWCPayRequest` check
    JsPay,
    /// Every `POST /api/card/…` call
    CardApi,
    /// The shim's `addCard` / `chooseCard` checks
    JsCard,
}

/// A one-shot fault: the next request to the endpoint answers this instead of the normal
/// processing. Queue several with repeated [`Sandbox::fail_next`] calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `{"errcode":N,"errmsg":"…"}` (api.weixin.qq.com style; for the shim: a failure with
    /// `errmsg` as the reason).
    Errcode {
        /// e.g. 40001, 42001, -1, 45009
        errcode: i64,
        /// e.g. "system error"
        errmsg: String,
    },
    /// A bare HTTP status with this body (gateway errors, outages).
    Http {
        /// e.g. 500, 502
        status: u16,
        /// raw body
        body: String,
    },
    /// Pay v2 `return_code=FAIL` with this `return_msg`.
    V2ReturnFail {
        /// e.g. "系统繁忙"
        return_msg: String,
    },
    /// Pay v2 `result_code=FAIL` (signed) with this `err_code` / `err_code_des`.
    V2ResultFail {
        /// e.g. SYSTEMERROR
        err_code: String,
        /// e.g. "系统错误"
        err_code_des: String,
    },
    /// Pay v3 `{"code","message"}` error with this status (signed).
    V3Error {
        /// e.g. 500
        status: u16,
        /// e.g. SYSTEM_ERROR
        code: String,
        /// message
        message: String,
    },
    /// Process normally, but the answer's signature is wrong (v2 `sign` / v3
    /// `Wechatpay-Signature`): the shop must refuse it.
    CorruptSignature,
    /// Wait, then process normally.
    Delay(Duration),
}

impl Fault {
    /// Shorthand for [`Fault::Errcode`].
    pub fn errcode(errcode: i64, errmsg: &str) -> Self {
        Fault::Errcode {
            errcode,
            errmsg: errmsg.to_string(),
        }
    }
    /// Shorthand for [`Fault::V3Error`].
    pub fn v3(status: u16, code: &str, message: &str) -> Self {
        Fault::V3Error {
            status,
            code: code.to_string(),
            message: message.to_string(),
        }
    }
    /// Shorthand for [`Fault::V2ResultFail`].
    pub fn v2(err_code: &str, err_code_des: &str) -> Self {
        Fault::V2ResultFail {
            err_code: err_code.to_string(),
            err_code_des: err_code_des.to_string(),
        }
    }
}

/// A test WeChat user.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SandboxUser {
    /// Index used by the picker and the `wxsandbox_user` cookie ("1", "2", "3").
    pub key: String,
    /// openid for the sandbox appid.
    pub openid: String,
    /// unionid.
    pub unionid: String,
    /// Nickname.
    pub nickname: String,
    /// Avatar (an inline SVG data URI).
    pub headimgurl: String,
}

/// Which Pay API created a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum PayApi {
    /// XML, `/pay/unifiedorder`.
    V2,
    /// JSON, `/v3/pay/transactions/jsapi`.
    V3,
}

/// WeChat's `trade_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum TradeState {
    /// 未支付
    #[serde(rename = "NOTPAY")]
    NotPay,
    /// 支付成功
    #[serde(rename = "SUCCESS")]
    Success,
    /// 已关闭
    #[serde(rename = "CLOSED")]
    Closed,
    /// 转入退款
    #[serde(rename = "REFUND")]
    Refund,
}

impl TradeState {
    /// Wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TradeState::NotPay => "NOTPAY",
            TradeState::Success => "SUCCESS",
            TradeState::Closed => "CLOSED",
            TradeState::Refund => "REFUND",
        }
    }
    pub(crate) fn desc(self) -> &'static str {
        match self {
            TradeState::NotPay => "订单未支付",
            TradeState::Success => "支付成功",
            TradeState::Closed => "订单已关闭",
            TradeState::Refund => "订单发生过退款，退款详情请查询退款单",
        }
    }
}

/// A refund. Refunds are asynchronous, as at WeChat: `PROCESSING` when requested, then, after
/// [`SandboxOptions::refund_settle_delay`], `SUCCESS` (or `ABNORMAL` after
/// [`Sandbox::make_next_refund_abnormal`]) and a refund notification to `notify_url`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Refund {
    /// Which API requested it (and so the format of its notification).
    pub api: PayApi,
    /// Merchant refund number.
    pub out_refund_no: String,
    /// WeChat refund id.
    pub refund_id: String,
    /// Refunded fen.
    pub refund: i64,
    /// The order total it refers to (as sent).
    pub total: i64,
    /// Reason, if given.
    pub reason: Option<String>,
    /// `PROCESSING`, `SUCCESS`, `ABNORMAL` (v3 spelling; v2 answers say `PROCESSING`, `SUCCESS`,
    /// `CHANGE`, `REFUNDCLOSE` for `CLOSED`).
    pub status: String,
    /// RFC 3339 (+08:00).
    pub create_time: String,
    /// RFC 3339 (+08:00), once `SUCCESS`.
    pub success_time: Option<String>,
    /// Where the refund notification goes (the request's `notify_url`; none: no notification).
    pub notify_url: Option<String>,
    /// Sandbox clock, unix ms, when requested.
    pub created_at_ms: i64,
    /// Sandbox clock, unix ms, when it succeeded.
    pub success_at_ms: Option<i64>,
}

impl Refund {
    /// Whether its amount is spent or reserved (`PROCESSING` or `SUCCESS`).
    pub fn holds_money(&self) -> bool {
        matches!(self.status.as_str(), "PROCESSING" | "SUCCESS")
    }
}

/// A transaction as the sandbox holds it.
#[derive(Clone, Debug, Serialize)]
pub struct Transaction {
    /// API that created it.
    pub api: PayApi,
    /// AppID.
    pub appid: String,
    /// Merchant id.
    pub mchid: String,
    /// Merchant order number.
    pub out_trade_no: String,
    /// v2 `body` / v3 `description`.
    pub description: String,
    /// Amount in fen.
    pub total: i64,
    /// `CNY`.
    pub currency: String,
    /// Payer openid.
    pub openid: String,
    /// Where the notification goes.
    pub notify_url: String,
    /// `attach`, returned in query and notification.
    pub attach: Option<String>,
    /// `wx…` prepay id.
    pub prepay_id: String,
    /// v2 only: the request's `sign_type` (notifications use it too).
    pub sign_type: Option<V2SignType>,
    /// Trade state.
    pub state: TradeState,
    /// Set when paid.
    pub transaction_id: Option<String>,
    /// Sandbox clock, unix ms, when paid.
    pub paid_at_ms: Option<i64>,
    /// Sandbox clock, unix ms.
    pub created_at_ms: i64,
    /// Sandbox clock, unix ms.
    pub prepay_expires_at_ms: i64,
    /// `time_expire`, if sent (unix ms).
    pub time_expire_ms: Option<i64>,
    /// Refunds, in order.
    pub refunds: Vec<Refund>,
    /// How many times the merchant asked to close it (`closeorder` / v3 `close`), whatever
    /// the answer: a shop that closes each expired order once asks once.
    pub close_requests: u32,
    #[serde(skip)]
    pub(crate) fingerprint: String,
}

impl Transaction {
    /// Sum of the refunds that are done or under way (`SUCCESS` and `PROCESSING`: money spent or
    /// reserved); `ABNORMAL` and `CLOSED` ones do not count.
    pub fn refunded(&self) -> i64 {
        self.refunds
            .iter()
            .filter(|r| r.holds_money())
            .map(|r| r.refund)
            .sum()
    }
}

/// What kind of delivery a [`Delivery`] was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum DeliveryKind {
    /// First attempt.
    Initial,
    /// A retry after a failed attempt.
    Retry,
    /// The extra copy sent after an acknowledged delivery.
    Duplicate,
    /// Not sent: notifications were being dropped ([`Sandbox::set_drop_notifications`]).
    Dropped,
    /// Sent by [`Sandbox::forge_notification`].
    Forged(Forgery),
}

/// Deliberately bad notifications ("签名探测" and friends) the shop must refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Forgery {
    /// Wrong v2 `sign` / wrong v3 `Wechatpay-Signature`.
    BadSignature,
    /// v3: `Wechatpay-Serial` that is neither the public key id nor the platform serial.
    UnknownSerial,
    /// v3: `Wechatpay-Timestamp` 10 minutes in the past (correctly signed).
    StaleTimestamp,
    /// Correctly signed, but the amount is one fen more than the order's.
    WrongAmount,
    /// v3: headers missing altogether.
    MissingHeaders,
}

/// One notification attempt (payment or refund).
#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    /// Merchant order number.
    pub out_trade_no: String,
    /// For a refund notification: the merchant refund number (`None` for payments).
    pub out_refund_no: Option<String>,
    /// 1-based attempt number within its kind.
    pub attempt: u32,
    /// What it was.
    pub kind: DeliveryKind,
    /// HTTP status the receiver answered, if any.
    pub status: Option<u16>,
    /// Whether the answer counted as an acknowledgement.
    pub acknowledged: bool,
    /// Transport error, if any.
    pub error: Option<String>,
    /// First 2 KiB of the receiver's answer.
    pub response_body: String,
    /// The body sent.
    pub request_body: String,
    /// Wall clock unix ms.
    pub at_ms: i64,
}

/// A shim event, recorded for tests.
#[derive(Clone, Debug, Serialize)]
pub struct JsEvent {
    /// `config`, `pay_prepare`, `pay_confirm`, `pay_cancel`.
    pub kind: String,
    /// Outcome.
    pub ok: bool,
    /// errMsg or detail.
    pub detail: String,
    /// The URL the shim sent.
    pub url: String,
    /// Wall clock unix ms.
    pub at_ms: i64,
}

pub(crate) struct OauthCode {
    pub user: usize,
    pub scope: String,
    pub expires_at: i64,
    pub used: bool,
    /// Issued on the 朋友圈快照页 (snapshot page): exchanged for a virtual openid with
    /// `is_snapshotuser: 1`.
    pub snapshot: bool,
}

pub(crate) struct SnsToken {
    pub user: usize,
    pub scope: String,
    pub expires_at: i64,
}

pub(crate) struct SnsRefresh {
    pub user: usize,
    pub scope: String,
    pub expires_at: i64,
}

pub(crate) struct BaseToken {
    pub expires_at: i64,
    pub superseded_at: Option<i64>,
}

pub(crate) struct JsConfig {
    pub appid: String,
    pub js_api_list: Vec<String>,
    pub expires_at: i64,
}

pub(crate) struct PaySession {
    pub out_trade_no: String,
    pub expires_at: i64,
    pub url: String,
}

#[derive(Default)]
pub(crate) struct State {
    pub codes: HashMap<String, OauthCode>,
    pub sns_tokens: HashMap<String, SnsToken>,
    pub sns_refresh: HashMap<String, SnsRefresh>,
    pub base_tokens: HashMap<String, BaseToken>,
    pub plain_current: Option<String>,
    pub stable_current: Option<String>,
    pub tickets: HashMap<String, i64>,
    pub token_fetches: u64,
    pub stable_token_fetches: u64,
    pub ticket_fetches: u64,
    /// The official account's menu as last created (`None`: no menu).
    pub menu: Option<serde_json::Value>,
    /// Parametric QR codes by ticket: (scene, expires at ms; `None` permanent).
    pub qrcodes: HashMap<String, (String, Option<i64>)>,
    /// Template messages sent, oldest first.
    pub template_messages: Vec<crate::mp_api::TemplateMessage>,
    /// The shop's official-account server URL (where the sandbox's account pushes).
    pub mp_server_url: Option<String>,
    /// The official account's chat, per user index, oldest first.
    pub mp_chat: Vec<(usize, crate::mp_page::ChatEntry)>,
    /// The last `CreateTime` pushed per user: distinct actions get distinct times (WeChat
    /// treats the same sender and time as the same event).
    pub mp_clock: HashMap<usize, i64>,
    pub transactions: HashMap<String, Transaction>,
    pub prepay_index: HashMap<String, String>,
    pub txid_index: HashMap<String, String>,
    pub js_configs: HashMap<String, JsConfig>,
    pub pay_sessions: HashMap<String, PaySession>,
    pub deliveries: HashMap<String, Vec<Delivery>>,
    pub refund_deliveries: HashMap<String, Vec<Delivery>>,
    /// How many of the next refund requests settle as `ABNORMAL`.
    pub next_refunds_abnormal: u32,
    /// out_refund_nos that will settle as `ABNORMAL`.
    pub abnormal_refunds: HashSet<String>,
    /// [`Sandbox::tamper_bill_amount`]: out_trade_no → fen added in bills.
    pub bill_tamper: HashMap<String, i64>,
    /// v3 bill downloads: token → file.
    pub bill_files: HashMap<String, Vec<u8>>,
    pub faults: HashMap<Endpoint, VecDeque<Fault>>,
    pub js_events: Vec<JsEvent>,
    pub drop_notifications: bool,
    /// Cards (卡券): tickets, cards, wallets ([`crate::card`]).
    pub card: crate::card::CardState,
}

pub(crate) struct Keys {
    pub merchant_public: RsaPublicKey,
    pub wechatpay_private: RsaPrivateKey,
    pub platform_private: RsaPrivateKey,
    pub platform_not_before_ms: i64,
    pub platform_not_after_ms: i64,
}

pub(crate) struct Inner {
    pub creds: SandboxCredentials,
    pub keys: Keys,
    pub users: Vec<SandboxUser>,
    pub opts: RwLock<SandboxOptions>,
    pub offset_ms: AtomicI64,
    pub state: Mutex<State>,
    pub http: reqwest::Client,
    /// The CA for mutual TLS on `/secapi/…`, built on first use ([`crate::tls`]).
    pub authority: Mutex<Option<Arc<crate::tls::Authority>>>,
}

/// The embedded WeChat sandbox. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Sandbox {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("appid", &self.inner.creds.appid)
            .field("mchid", &self.inner.creds.mchid)
            .finish_non_exhaustive()
    }
}

const NICKNAMES: [(&str, &str); 3] = [
    ("张小明", "#07c160"),
    ("李小红", "#fa5151"),
    ("王大锤", "#10aeff"),
];

fn derive_id(tag: &str, a: &str, b: &str) -> String {
    let h = Sha256::digest(format!("{tag}:{a}:{b}").as_bytes());
    let s = URL_SAFE_NO_PAD.encode(h);
    format!("o{}", &s[..27])
}

fn avatar(nick: &str, color: &str) -> String {
    let first: String = nick.chars().take(1).collect();
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"132\" height=\"132\" viewBox=\"0 0 132 132\">\
<rect width=\"132\" height=\"132\" rx=\"12\" fill=\"{color}\"/>\
<text x=\"66\" y=\"86\" font-size=\"60\" text-anchor=\"middle\" fill=\"#fff\" \
font-family=\"PingFang SC,Microsoft YaHei,sans-serif\">{first}</text></svg>"
    );
    format!("data:image/svg+xml;base64,{}", B64.encode(svg))
}

impl Sandbox {
    /// A sandbox with default options. Panics if the credentials' keys do not parse
    /// (they always do when they come from [`SandboxCredentials::generate`]).
    pub fn new(creds: SandboxCredentials) -> Self {
        Self::with_options(creds, SandboxOptions::default()).expect("valid sandbox credentials")
    }

    /// A sandbox with these options; fails if a key or the certificate does not parse.
    pub fn with_options(
        creds: SandboxCredentials,
        opts: SandboxOptions,
    ) -> Result<Self, SandboxError> {
        let merchant_public =
            RsaPublicKey::from_public_key_pem(creds.merchant_public_key_pem.trim())
                .map_err(|e| SandboxError::Key(format!("merchant public key: {e}")))?;
        let wechatpay_private = parse_private(&creds.wechatpay_private_key_pem)?;
        let platform_private = parse_private(&creds.platform_private_key_pem)?;
        let (nb, na) = certificate_validity(&creds.platform_certificate_pem)?;
        let users = NICKNAMES
            .iter()
            .enumerate()
            .map(|(i, (nick, color))| SandboxUser {
                key: (i + 1).to_string(),
                openid: derive_id("openid", &creds.appid, nick),
                unionid: derive_id("unionid", &creds.mchid, nick),
                nickname: nick.to_string(),
                headimgurl: avatar(nick, color),
            })
            .collect();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("Mozilla/4.0 (WeChatPay Sandbox Notifier)")
            .build()
            .map_err(|e| SandboxError::Http(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                creds,
                keys: Keys {
                    merchant_public,
                    wechatpay_private,
                    platform_private,
                    platform_not_before_ms: nb,
                    platform_not_after_ms: na,
                },
                users,
                opts: RwLock::new(opts),
                offset_ms: AtomicI64::new(0),
                state: Mutex::new(State::default()),
                http,
                authority: Mutex::new(None),
            }),
        })
    }

    /// The axum router (mount it with `Router::nest("/sandbox", …)`).
    pub fn router(&self) -> axum::Router {
        crate::router(self.clone())
    }

    /// The credentials.
    pub fn credentials(&self) -> &SandboxCredentials {
        &self.inner.creds
    }

    /// Current options.
    pub fn options(&self) -> SandboxOptions {
        self.inner.opts.read().expect("options lock").clone()
    }

    /// Changes options in place.
    pub fn update_options(&self, f: impl FnOnce(&mut SandboxOptions)) {
        f(&mut self.inner.opts.write().expect("options lock"));
    }

    /// The test users (three of them).
    pub fn users(&self) -> Vec<SandboxUser> {
        self.inner.users.clone()
    }

    /// Moves the sandbox clock forward (token, ticket, code, prepay and refresh expiry use
    /// it; v3 signature timestamps use the real wall clock).
    pub fn advance_clock(&self, by: Duration) {
        self.inner
            .offset_ms
            .fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    /// The sandbox clock, unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        crate::util::wall_ms() + self.inner.offset_ms.load(Ordering::SeqCst)
    }

    /// Issues an OAuth `code` for user `index` (0-based) without the browser dance.
    pub fn issue_oauth_code(&self, index: usize, scope: &str) -> String {
        assert!(index < self.inner.users.len(), "no such sandbox user");
        self.new_code(index, scope)
    }

    /// Issues an OAuth `code` as WeChat does on the 朋友圈快照页 (a page opened from a Moments
    /// share before the user taps 使用完整服务): its exchange answers a virtual openid (not
    /// user `index`'s real one), `scope: snsapi_base` and `is_snapshotuser: 1`.
    pub fn issue_snapshot_code(&self, index: usize) -> String {
        let code = self.issue_oauth_code(index, "snsapi_base");
        if let Some(c) = self.lock().codes.get_mut(&code) {
            c.snapshot = true;
        }
        code
    }

    /// Calls that reached `/cgi-bin/token`.
    pub fn token_fetches(&self) -> u64 {
        self.lock().token_fetches
    }

    /// Calls that reached `/cgi-bin/stable_token`.
    pub fn stable_token_fetches(&self) -> u64 {
        self.lock().stable_token_fetches
    }

    /// The official account's menu (`{"button": […]}`) as the shop last created it.
    pub fn menu(&self) -> Option<serde_json::Value> {
        self.lock().menu.clone()
    }

    /// The scene of a parametric QR code's ticket (what scanning it pushes).
    pub fn qr_scene(&self, ticket: &str) -> Option<String> {
        self.lock().qrcodes.get(ticket).map(|(s, _)| s.clone())
    }

    /// Where the sandbox's official account pushes follows, scans, menu taps and messages (the
    /// shop's `/wechat/mp`); the official-account page (`/mp`) needs it.
    pub fn set_mp_server_url(&self, url: &str) {
        self.lock().mp_server_url = Some(url.to_string());
    }

    /// Template messages the shop sent, oldest first.
    pub fn template_messages(&self) -> Vec<crate::mp_api::TemplateMessage> {
        self.lock().template_messages.clone()
    }

    /// Calls that reached `/cgi-bin/ticket/getticket`.
    pub fn ticket_fetches(&self) -> u64 {
        self.lock().ticket_fetches
    }

    /// The newest unexpired jsapi_ticket, if any was handed out.
    pub fn current_jsapi_ticket(&self) -> Option<String> {
        let now = self.now_ms();
        self.lock()
            .tickets
            .iter()
            .filter(|(_, &exp)| exp > now)
            .max_by_key(|(_, &exp)| exp)
            .map(|(t, _)| t.clone())
    }

    /// Makes every base access_token expire now (next use: 42001).
    pub fn expire_access_tokens(&self) {
        let now = self.now_ms();
        for t in self.lock().base_tokens.values_mut() {
            t.expires_at = t.expires_at.min(now);
        }
    }

    /// Makes every jsapi_ticket expire now (`wx.config` then fails until a new getticket).
    pub fn expire_jsapi_tickets(&self) {
        let now = self.now_ms();
        for exp in self.lock().tickets.values_mut() {
            *exp = (*exp).min(now);
        }
    }

    /// Adopts `ticket` as an issued, valid jsapi_ticket (e.g. the official test vector's).
    pub fn adopt_jsapi_ticket(&self, ticket: &str) {
        let exp = self.now_ms() + self.opts().access_token_ttl.as_millis() as i64;
        self.lock().tickets.insert(ticket.to_string(), exp);
    }

    /// Queues a fault for the next request to `endpoint`.
    pub fn fail_next(&self, endpoint: Endpoint, fault: Fault) {
        self.lock()
            .faults
            .entry(endpoint)
            .or_default()
            .push_back(fault);
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// While true, payment and refund notifications are not sent at all (a lost notification:
    /// the shop has to query). Recorded as [`DeliveryKind::Dropped`].
    pub fn set_drop_notifications(&self, drop: bool) {
        self.lock().drop_notifications = drop;
    }

    /// All transactions, oldest first.
    pub fn transactions(&self) -> Vec<Transaction> {
        let mut v: Vec<_> = self.lock().transactions.values().cloned().collect();
        v.sort_by_key(|t| t.created_at_ms);
        v
    }

    /// One transaction.
    pub fn transaction(&self, out_trade_no: &str) -> Option<Transaction> {
        self.lock().transactions.get(out_trade_no).cloned()
    }

    /// Notification attempts for an order, in order.
    pub fn deliveries(&self, out_trade_no: &str) -> Vec<Delivery> {
        self.lock()
            .deliveries
            .get(out_trade_no)
            .cloned()
            .unwrap_or_default()
    }

    /// Refunds of an order, oldest first (empty for an unknown order).
    pub fn refunds(&self, out_trade_no: &str) -> Vec<Refund> {
        self.lock()
            .transactions
            .get(out_trade_no)
            .map(|t| t.refunds.clone())
            .unwrap_or_default()
    }

    /// One refund by its merchant refund number.
    pub fn refund(&self, out_refund_no: &str) -> Option<Refund> {
        self.find_refund(out_refund_no).map(|(_, r)| r)
    }

    /// The next refund request (a new out_refund_no) settles as `ABNORMAL` instead of
    /// `SUCCESS` (e.g. the payer's card was cancelled): notification `REFUND.ABNORMAL` (v3) /
    /// `refund_status` `CHANGE` (v2). Calls add up: twice → the next two.
    pub fn make_next_refund_abnormal(&self) {
        self.lock().next_refunds_abnormal += 1;
    }

    /// Refund notification attempts for a refund, in order. `Delivery::out_trade_no` is the
    /// order's number, `Delivery::out_refund_no` the refund's.
    pub fn refund_deliveries(&self, out_refund_no: &str) -> Vec<Delivery> {
        self.lock()
            .refund_deliveries
            .get(out_refund_no)
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until a refund notification for `out_refund_no` was acknowledged (true) or
    /// `timeout` passes.
    pub async fn wait_for_refund_ack(&self, out_refund_no: &str, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self
                .refund_deliveries(out_refund_no)
                .iter()
                .any(|d| d.acknowledged)
            {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Shim events (`wx.config` checks, pay prepare/confirm/cancel), oldest first.
    pub fn js_events(&self) -> Vec<JsEvent> {
        self.lock().js_events.clone()
    }

    /// Waits until a delivery for the order was acknowledged (true) or `timeout` passes.
    pub async fn wait_for_ack(&self, out_trade_no: &str, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self
                .deliveries(out_trade_no)
                .iter()
                .any(|d| d.acknowledged && !matches!(d.kind, DeliveryKind::Forged(_)))
            {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Forgets every token, code, ticket, transaction, delivery, fault and event.
    pub fn reset_state(&self) {
        *self.lock() = State::default();
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn opts(&self) -> SandboxOptions {
        self.options()
    }

    pub(crate) fn creds(&self) -> &SandboxCredentials {
        &self.inner.creds
    }

    pub(crate) fn user_by_openid(&self, openid: &str) -> Option<usize> {
        self.inner.users.iter().position(|u| u.openid == openid)
    }

    pub(crate) fn new_code(&self, user: usize, scope: &str) -> String {
        let code = crate::crypto::random_alnum(32);
        let now = self.now_ms();
        let ttl = self.opts().oauth_code_ttl.as_millis() as i64;
        let mut st = self.lock();
        st.codes.retain(|_, c| c.expires_at > now - 3_600_000);
        st.codes.insert(
            code.clone(),
            OauthCode {
                user,
                scope: scope.to_string(),
                expires_at: now + ttl,
                used: false,
                snapshot: false,
            },
        );
        code
    }

    /// Pops the next fault for `ep`; a `Delay` is slept through and consumed.
    pub(crate) async fn take_fault(&self, ep: Endpoint) -> Option<Fault> {
        let f = self.lock().faults.get_mut(&ep).and_then(|q| q.pop_front());
        match f {
            Some(Fault::Delay(d)) => {
                tokio::time::sleep(d).await;
                None
            }
            other => other,
        }
    }

    pub(crate) fn js_event(&self, kind: &str, ok: bool, detail: &str, url: &str) {
        let mut st = self.lock();
        if st.js_events.len() > 1000 {
            st.js_events.drain(..500);
        }
        st.js_events.push(JsEvent {
            kind: kind.to_string(),
            ok,
            detail: detail.to_string(),
            url: url.to_string(),
            at_ms: crate::util::wall_ms(),
        });
    }
}

fn certificate_validity(pem: &str) -> Result<(i64, i64), SandboxError> {
    use x509_cert::der::DecodePem;
    let cert = x509_cert::Certificate::from_pem(pem.trim())
        .map_err(|e| SandboxError::Certificate(e.to_string()))?;
    let v = &cert.tbs_certificate.validity;
    Ok((
        v.not_before.to_unix_duration().as_millis() as i64,
        v.not_after.to_unix_duration().as_millis() as i64,
    ))
}
