//! Cards (卡券): WeChat's card APIs (`/api/card/…`), the card `api_ticket` (issued by
//! `getticket?type=wx_card` in [`crate::token`]), a wallet (卡包) per test user, the card events
//! pushed to the shop's official-account server, and the JS-SDK side of `wx.addCard` /
//! `wx.chooseCard` (`/jsapi/card/…`, called by `jweixin.js`).
//!
//! Checks follow WeChat's 卡券 documentation (developers.weixin.qq.com/doc/offiaccount/
//! Cards_and_Offer/…: Create_a_Coupon_Voucher_or_Card, Distributing_Coupons_Vouchers_and_Cards,
//! Redeeming_a_coupon_voucher_or_card) and the seed guide (`002-wechat-cards-guide.txt`): cards
//! start `CARD_STATUS_NOT_VERIFY` and only test-whitelisted users may take them until approved
//! ([`Sandbox::verify_card`], or the dashboard's 审核通过 button).
//!
//! Errcodes (WeChat's global return codes as SDKs list them; the docs site was not reachable
//! from here): 40001/42001/41001 token, 47001 data format, 40071 invalid card type, 40073 invalid
//! card_id, 40079 invalid time (date_info), 40122 invalid quantity, 40056 invalid code, 40099 code
//! already consumed ("invalid code, this code has consumed."), 40127 code deleted / unavailable,
//! 41011 missing field, 40078 invalid card status (expired / not approved for consume).
//!
//! `card/code/get`: WeChat documents `check_consume` as "是否校验code核销状态，填入true和false时的
//! code异常状态返回数据不同". Here, as there: with `check_consume: true` (the default) a consumed
//! code is errcode 40099; with `false` it is answered with `can_consume: false`,
//! `user_card_status: "CONSUMED"`.
//!
//! `testwhitelist/set` usernames (微信号) map to the test users by nickname (`张小明`) or by the
//! alias `wxsandbox_<key>` (`wxsandbox_1`).

use std::collections::{HashMap, HashSet};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::Serialize;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};

use crate::crypto::{ct_eq, random_alnum, random_digits};
use crate::mp::MpPush;
use crate::mp_page::{CardChat, ChatEntry};
use crate::oauth::cookie_user;
use crate::state::{Endpoint, Sandbox};
use crate::token::validate_base_token;
use crate::util::{errcode, yuan};

/// WeChat's card colours.
const COLORS: [&str; 10] = [
    "Color010", "Color020", "Color030", "Color040", "Color050", "Color060", "Color070", "Color080",
    "Color090", "Color100",
];

/// What a card does (amounts in fen).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum SandboxCardKind {
    /// `CASH`: 满 `least_cost` 减 `reduce_cost`.
    Cash {
        /// Minimum spend.
        least_cost: i64,
        /// Amount off.
        reduce_cost: i64,
    },
    /// `DISCOUNT`: `discount` percent off.
    Discount {
        /// Minimum spend (`advanced_info.use_condition.least_cost`, or `discount.least_cost`).
        least_cost: i64,
        /// Percent taken off (30 → 七折).
        discount: i64,
    },
}

impl SandboxCardKind {
    /// `CASH` / `DISCOUNT`.
    pub fn card_type(&self) -> &'static str {
        match self {
            Self::Cash { .. } => "CASH",
            Self::Discount { .. } => "DISCOUNT",
        }
    }
    /// The rule as WeChat shows it: `满100.00元减10.00元`, `7折` (`满… 7折`).
    pub fn rule(&self) -> String {
        let fold = |d: i64| {
            let z = 100 - d;
            if z % 10 == 0 {
                format!("{}折", z / 10)
            } else {
                format!("{}.{}折", z / 10, z % 10)
            }
        };
        let plain = |f: i64| yuan(f).trim_start_matches('¥').to_string();
        match *self {
            Self::Cash {
                least_cost,
                reduce_cost,
            } if least_cost > 0 => format!("满{}元减{}元", plain(least_cost), plain(reduce_cost)),
            Self::Cash { reduce_cost, .. } => format!("减{}元", plain(reduce_cost)),
            Self::Discount {
                least_cost,
                discount,
            } if least_cost > 0 => format!("满{}元 {}", plain(least_cost), fold(discount)),
            Self::Discount { discount, .. } => fold(discount),
        }
    }
}

/// A card's review status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum CardStatus {
    /// `CARD_STATUS_NOT_VERIFY`: only whitelisted users may take it.
    NotVerify,
    /// `CARD_STATUS_VERIFY_OK`.
    VerifyOk,
    /// `CARD_STATUS_DELETE`.
    Deleted,
}

impl CardStatus {
    /// Wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotVerify => "CARD_STATUS_NOT_VERIFY",
            Self::VerifyOk => "CARD_STATUS_VERIFY_OK",
            Self::Deleted => "CARD_STATUS_DELETE",
        }
    }
}

/// A code's status in a wallet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum CodeStatus {
    /// `NORMAL`
    Normal,
    /// `CONSUMED`
    Consumed,
    /// `DELETE` (the user removed it, or the card was deleted)
    Deleted,
}

impl CodeStatus {
    /// Wire spelling (`user_card_status`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Consumed => "CONSUMED",
            Self::Deleted => "DELETE",
        }
    }
}

/// A card's validity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum CardValidity {
    /// `DATE_TYPE_FIX_TIME_RANGE` (Unix seconds).
    Fixed {
        /// begin_timestamp
        begin: i64,
        /// end_timestamp
        end: i64,
    },
    /// `DATE_TYPE_FIX_TERM`: `fixed_term` days from taking (+ `fixed_begin_term` days' delay).
    Term {
        /// fixed_term
        days: i64,
        /// fixed_begin_term
        begin_after: i64,
    },
}

/// A card as the sandbox holds it ([`Sandbox::cards`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SandboxCard {
    /// `p…` (28 characters).
    pub card_id: String,
    /// Cash / discount.
    pub kind: SandboxCardKind,
    /// Title.
    pub title: String,
    /// Brand.
    pub brand_name: String,
    /// `ColorNNN`.
    pub color: String,
    /// Review status.
    pub status: CardStatus,
    /// Validity.
    pub validity: CardValidity,
    /// Stock left (`sku.quantity` minus takes and reductions).
    pub quantity: i64,
    /// Codes taken.
    pub taken: i64,
    /// Codes consumed.
    pub consumed: i64,
    /// Per-user limit (0: none).
    pub get_limit: i64,
}

/// A code in a user's wallet ([`Sandbox::wallet`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WalletCode {
    /// The card.
    pub card_id: String,
    /// 12 digits.
    pub code: String,
    /// Holder.
    pub openid: String,
    /// NORMAL / CONSUMED / DELETE.
    pub status: CodeStatus,
    /// Valid from (sandbox clock, unix ms).
    pub begin_ms: i64,
    /// Valid until (sandbox clock, unix ms, inclusive).
    pub end_ms: i64,
    /// The `outer_str` it was taken with.
    pub outer_str: Option<String>,
}

/// A card event pushed to the shop ([`Sandbox::card_pushes`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CardPush {
    /// `user_get_card`, `user_consume_card`, `user_del_card`.
    pub event: String,
    /// The XML pushed.
    pub xml: String,
    /// The shop's HTTP status, or the transport error.
    pub result: Result<u16, String>,
}

#[derive(Default)]
pub(crate) struct CardState {
    /// Issued card api_tickets → expiry (ms).
    pub tickets: HashMap<String, i64>,
    pub ticket_fetches: u64,
    /// Calls to `card/code/consume`, refused or not.
    pub consume_calls: u64,
    pub cards: Vec<SandboxCard>,
    pub codes: Vec<WalletCode>,
    pub whitelist_openids: HashSet<String>,
    pub whitelist_usernames: HashSet<String>,
    /// QR tickets → (card_id, outer_str).
    pub qrcodes: HashMap<String, (String, Option<String>)>,
    /// The URL a `QR_CARD` code holds → its ticket.
    pub qr_urls: HashMap<String, String>,
    /// encrypt_code ↔ code.
    pub enc_to_code: HashMap<String, String>,
    pub code_to_enc: HashMap<String, String>,
    /// Open addCard / chooseCard sheets.
    pub add_sessions: HashMap<String, AddSession>,
    pub choose_sessions: HashMap<String, ChooseSession>,
    pub pushes: Vec<CardPush>,
    /// The last id given to a card event's chat line (its answer is filled in by that id).
    pub chat_seq: u64,
}

pub(crate) struct AddSession {
    user: usize,
    items: Vec<AddItem>,
    expires_at: i64,
    url: String,
}

#[derive(Clone)]
struct AddItem {
    card_id: String,
    card_ext: String,
    outer_str: Option<String>,
}

pub(crate) struct ChooseSession {
    /// (card_id, code) offered.
    offered: Vec<(String, String)>,
    expires_at: i64,
}

/// `sha1(sorted values concatenated)`, written here independently of the `wechat` crate.
pub(crate) fn sorted_sha1(values: &[&str]) -> String {
    let mut v: Vec<&[u8]> = values.iter().map(|s| s.as_bytes()).collect();
    v.sort();
    let mut h = Sha1::new();
    for p in v {
        h.update(p);
    }
    hex::encode(h.finalize())
}

fn refuse(what: &str, code: i64, msg: &str) -> Response {
    tracing::warn!(target: "wechat_sandbox", endpoint = what, errcode = code, reason = msg, "refused");
    errcode(code, msg)
}

fn ok_json(mut v: Value) -> Response {
    v["errcode"] = json!(0);
    v["errmsg"] = json!("ok");
    Json(v).into_response()
}

/// Token check + fault + JSON body, shared by every `/api/card/…` route.
async fn start(
    sb: &Sandbox,
    what: &str,
    q: &HashMap<String, String>,
    body: &[u8],
) -> Result<Value, Response> {
    crate::answer::pre(sb, Endpoint::CardApi).await?;
    let Some(token) = q.get("access_token").filter(|t| !t.is_empty()) else {
        return Err(refuse(what, 41001, "access_token missing"));
    };
    let now = sb.now_ms();
    {
        let st = sb.lock();
        if let Err((code, msg)) = validate_base_token(&st, token, now) {
            drop(st);
            return Err(refuse(what, code, msg));
        }
    }
    serde_json::from_slice(body).map_err(|_| refuse(what, 47001, "data format error"))
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn int(v: &Value, k: &str) -> Option<i64> {
    match v.get(k) {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parses and checks a `card/create` body as WeChat does.
fn parse_card(v: &Value, now_s: i64) -> Result<SandboxCard, (i64, String)> {
    let card = v
        .get("card")
        .filter(|c| c.is_object())
        .ok_or((41011, "missing card".to_string()))?;
    let card_type = s(card, "card_type");
    let key = match card_type {
        "CASH" => "cash",
        "DISCOUNT" => "discount",
        "" => return Err((41011, "missing card_type".into())),
        "GROUPON" | "GIFT" | "GENERAL_COUPON" | "MEMBER_CARD" => {
            return Err((
                40071,
                format!(
                    "invalid card type: the sandbox supports CASH and DISCOUNT, not {card_type}"
                ),
            ))
        }
        _ => return Err((40071, "invalid card type".into())),
    };
    let body = card
        .get(key)
        .filter(|c| c.is_object())
        .ok_or((41011, format!("missing {key}")))?;
    let base = body
        .get("base_info")
        .filter(|c| c.is_object())
        .ok_or((41011, "missing base_info".to_string()))?;
    for f in [
        "logo_url",
        "brand_name",
        "code_type",
        "title",
        "color",
        "notice",
        "description",
    ] {
        if s(base, f).is_empty() {
            return Err((41011, format!("missing base_info.{f}")));
        }
    }
    let title = s(base, "title");
    // WeChat: title at most 9 Chinese characters (27 UTF-8 bytes).
    if title.len() > 27 || title.chars().count() > 9 {
        return Err((
            40003,
            "invalid title: at most 9 Chinese characters (27 bytes)".into(),
        ));
    }
    if s(base, "brand_name").chars().count() > 12 {
        return Err((
            40003,
            "invalid brand_name: at most 12 Chinese characters".into(),
        ));
    }
    if s(base, "notice").chars().count() > 16 {
        return Err((
            40003,
            "invalid notice: at most 16 Chinese characters".into(),
        ));
    }
    if s(base, "description").chars().count() > 1024 {
        return Err((40003, "invalid description: at most 1024 characters".into()));
    }
    if !matches!(
        s(base, "code_type"),
        "CODE_TYPE_TEXT"
            | "CODE_TYPE_BARCODE"
            | "CODE_TYPE_QRCODE"
            | "CODE_TYPE_ONLY_QRCODE"
            | "CODE_TYPE_ONLY_BARCODE"
            | "CODE_TYPE_NONE"
    ) {
        return Err((40072, "invalid code type".into()));
    }
    let color = s(base, "color");
    if !COLORS.contains(&color) {
        return Err((40003, "invalid color: use Color010 … Color100".into()));
    }
    let logo = s(base, "logo_url");
    if !(logo.starts_with("http://") || logo.starts_with("https://")) {
        return Err((40003, "invalid logo_url".into()));
    }
    if base.get("use_custom_code").and_then(Value::as_bool) == Some(true) {
        return Err((
            40003,
            "use_custom_code is not supported by the sandbox".into(),
        ));
    }
    let date = base
        .get("date_info")
        .filter(|c| c.is_object())
        .ok_or((41011, "missing base_info.date_info".to_string()))?;
    let validity = match s(date, "type") {
        "DATE_TYPE_FIX_TIME_RANGE" | "1" => {
            let begin = int(date, "begin_timestamp").ok_or((40079, "invalid time".to_string()))?;
            let end = int(date, "end_timestamp").ok_or((40079, "invalid time".to_string()))?;
            if begin <= 0 || end <= begin {
                return Err((
                    40079,
                    "invalid time: end_timestamp must follow begin_timestamp".into(),
                ));
            }
            if end < now_s {
                return Err((40079, "invalid time: end_timestamp is in the past".into()));
            }
            CardValidity::Fixed { begin, end }
        }
        "DATE_TYPE_FIX_TERM" | "2" => {
            let days = int(date, "fixed_term").ok_or((40079, "invalid time".to_string()))?;
            let begin_after = int(date, "fixed_begin_term").unwrap_or(0);
            if days <= 0 || !(0..=90).contains(&begin_after) {
                return Err((40079, "invalid time: fixed_term must be positive".into()));
            }
            CardValidity::Term { days, begin_after }
        }
        _ => return Err((40079, "invalid time: unknown date_info.type".into())),
    };
    let quantity = base
        .get("sku")
        .and_then(|k| int(k, "quantity"))
        .ok_or((41011, "missing base_info.sku.quantity".to_string()))?;
    if !(0..=100_000_000).contains(&quantity) {
        return Err((40122, "invalid quantity".into()));
    }
    let get_limit = int(base, "get_limit").unwrap_or(0);
    if get_limit < 0 {
        return Err((40003, "invalid get_limit".into()));
    }
    let least_from_adv = card
        .get(key)
        .and_then(|b| b.get("advanced_info"))
        .and_then(|a| a.get("use_condition"))
        .and_then(|u| int(u, "least_cost"));
    let kind = if key == "cash" {
        let reduce = int(body, "reduce_cost").ok_or((41011, "missing reduce_cost".to_string()))?;
        let least = int(body, "least_cost").or(least_from_adv).unwrap_or(0);
        if reduce <= 0 {
            return Err((40003, "invalid reduce_cost: must be positive".into()));
        }
        if least < 0 {
            return Err((40003, "invalid least_cost".into()));
        }
        if least > 0 && reduce > least {
            return Err((40003, "invalid reduce_cost: more than least_cost".into()));
        }
        SandboxCardKind::Cash {
            least_cost: least,
            reduce_cost: reduce,
        }
    } else {
        let discount = int(body, "discount").ok_or((41011, "missing discount".to_string()))?;
        if !(1..=99).contains(&discount) {
            return Err((40003, "invalid discount: 1..99 percent off".into()));
        }
        let least = least_from_adv.or(int(body, "least_cost")).unwrap_or(0);
        if least < 0 {
            return Err((40003, "invalid least_cost".into()));
        }
        SandboxCardKind::Discount {
            least_cost: least,
            discount,
        }
    };
    Ok(SandboxCard {
        card_id: format!("p{}", random_alnum(27)),
        kind,
        title: title.to_string(),
        brand_name: s(base, "brand_name").to_string(),
        color: color.to_string(),
        status: CardStatus::NotVerify,
        validity,
        quantity,
        taken: 0,
        consumed: 0,
        get_limit,
    })
}

/// `POST /api/card/create`
pub(crate) async fn create(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let what = "card/create";
    let v = match start(&sb, what, &q, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match parse_card(&v, sb.now_ms() / 1000) {
        Err((code, msg)) => refuse(what, code, &msg),
        Ok(card) => {
            let id = card.card_id.clone();
            sb.lock().card.cards.push(card);
            ok_json(json!({"card_id": id}))
        }
    }
}

fn find_card<'a>(cards: &'a mut [SandboxCard], id: &str) -> Option<&'a mut SandboxCard> {
    cards.iter_mut().find(|c| c.card_id == id)
}

/// `POST /api/card/qrcode/create` `{"action_name":"QR_CARD","action_info":{"card":{card_id,outer_str}}}`
pub(crate) async fn qrcode_create(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let what = "card/qrcode/create";
    let v = match start(&sb, what, &q, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match s(&v, "action_name") {
        "QR_CARD" => {}
        "QR_MULTIPLE_CARD" => {
            return refuse(
                what,
                40003,
                "QR_MULTIPLE_CARD is not supported by the sandbox",
            )
        }
        _ => return refuse(what, 40053, "invalid action_name"),
    }
    let card = v.get("action_info").and_then(|a| a.get("card"));
    let card_id = card.map(|c| s(c, "card_id")).unwrap_or("");
    let outer = card
        .map(|c| s(c, "outer_str"))
        .filter(|o| !o.is_empty())
        .map(str::to_string);
    let mut st = sb.lock();
    match st.card.cards.iter().find(|c| c.card_id == card_id) {
        None => {
            drop(st);
            return refuse(what, 40073, "invalid card id");
        }
        Some(c) if c.status == CardStatus::Deleted => {
            drop(st);
            return refuse(what, 40078, "invalid card status: the card was deleted");
        }
        Some(_) => {}
    }
    let ticket = format!("gQ{}", random_alnum(54));
    let url = format!("http://weixin.qq.com/q/{}", random_alnum(22));
    st.card
        .qrcodes
        .insert(ticket.clone(), (card_id.to_string(), outer));
    st.card.qr_urls.insert(url.clone(), ticket.clone());
    drop(st);
    ok_json(json!({
        "ticket": ticket,
        "expire_seconds": 1_800,
        "url": url,
        "show_qrcode_url": format!(
            "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket={}",
            url::form_urlencoded::byte_serialize(ticket.as_bytes()).collect::<String>()
        ),
    }))
}

/// `POST /api/card/testwhitelist/set` `{"openid":[…],"username":[…]}` (replaces the lists).
pub(crate) async fn testwhitelist_set(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let what = "card/testwhitelist/set";
    let v = match start(&sb, what, &q, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let list = |k: &str| -> Result<Vec<String>, ()> {
        match v.get(k) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| x.as_str().map(str::to_string).ok_or(()))
                .collect(),
            Some(_) => Err(()),
        }
    };
    let (Ok(openids), Ok(usernames)) = (list("openid"), list("username")) else {
        return refuse(
            what,
            47001,
            "data format error: openid and username are string arrays",
        );
    };
    if openids.len() + usernames.len() > 10 {
        return refuse(what, 40003, "at most 10 whitelisted users");
    }
    for o in &openids {
        if sb.user_by_openid(o).is_none() {
            return refuse(what, 40003, "invalid openid");
        }
    }
    let mut st = sb.lock();
    st.card.whitelist_openids = openids.into_iter().collect();
    st.card.whitelist_usernames = usernames.into_iter().collect();
    drop(st);
    ok_json(json!({"success_openid": [], "success_username": []}))
}

/// `POST /api/card/code/decrypt` `{"encrypt_code"}` → `{"code"}`
pub(crate) async fn code_decrypt(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let what = "card/code/decrypt";
    let v = match start(&sb, what, &q, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let enc = s(&v, "encrypt_code");
    if enc.is_empty() {
        return refuse(what, 41011, "missing encrypt_code");
    }
    let code = sb.lock().card.enc_to_code.get(enc).cloned();
    match code {
        Some(code) => ok_json(json!({"code": code})),
        None => refuse(what, 40056, "invalid serial code"),
    }
}

/// The code (by `card_id` if given) or the errcode WeChat gives.
fn lookup(st: &CardState, card_id: &str, code: &str) -> Result<usize, (i64, &'static str)> {
    if code.is_empty() {
        return Err((41011, "missing code"));
    }
    let i = st
        .codes
        .iter()
        .position(|c| c.code == code)
        .ok_or((40056, "invalid serial code"))?;
    if !card_id.is_empty() && st.codes[i].card_id != card_id {
        return Err((40056, "invalid serial code: not a code of this card_id"));
    }
    Ok(i)
}

/// `POST /api/card/code/get` `{"card_id"?, "code", "check_consume"?}`
pub(crate) async fn code_get(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let what = "card/code/get";
    let v = match start(&sb, what, &q, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let check = v
        .get("check_consume")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let now = sb.now_ms();
    let st = sb.lock();
    let i = match lookup(&st.card, s(&v, "card_id"), s(&v, "code")) {
        Ok(i) => i,
        Err((c, m)) => {
            drop(st);
            return refuse(what, c, m);
        }
    };
    let c = st.card.codes[i].clone();
    drop(st);
    if check {
        match c.status {
            CodeStatus::Consumed => {
                return refuse(what, 40099, "invalid code, this code has consumed.")
            }
            CodeStatus::Deleted => {
                return refuse(
                    what,
                    40127,
                    "invalid user-card status! Hint: the card was deleted",
                )
            }
            CodeStatus::Normal => {}
        }
    }
    let in_time = c.begin_ms <= now && now <= c.end_ms;
    let can = c.status == CodeStatus::Normal && in_time;
    let status = if c.status == CodeStatus::Normal && now > c.end_ms {
        "EXPIRE"
    } else {
        c.status.as_str()
    };
    ok_json(json!({
        "card": {"card_id": c.card_id, "begin_time": c.begin_ms / 1000, "end_time": c.end_ms / 1000},
        "openid": c.openid,
        "can_consume": can,
        "user_card_status": status,
    }))
}

/// `POST /api/card/code/consume` `{"code", "card_id"?}`
pub(crate) async fn code_consume(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let what = "card/code/consume";
    sb.lock().card.consume_calls += 1;
    let v = match start(&sb, what, &q, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now = sb.now_ms();
    let mut st = sb.lock();
    let i = match lookup(&st.card, s(&v, "card_id"), s(&v, "code")) {
        Ok(i) => i,
        Err((c, m)) => {
            drop(st);
            return refuse(what, c, m);
        }
    };
    let c = st.card.codes[i].clone();
    let card = st
        .card
        .cards
        .iter()
        .find(|k| k.card_id == c.card_id)
        .cloned();
    let refusal = match c.status {
        CodeStatus::Consumed => Some((40099, "invalid code, this code has consumed.")),
        CodeStatus::Deleted => Some((
            40127,
            "invalid user-card status! Hint: the card was deleted",
        )),
        CodeStatus::Normal => match card.as_ref().map(|k| k.status) {
            None => Some((
                40127,
                "invalid user-card status! Hint: the card was deleted",
            )),
            _ if now < c.begin_ms => Some((40078, "invalid card status: not yet valid")),
            _ if now > c.end_ms => Some((40078, "invalid card status: expired")),
            _ => None,
        },
    };
    if let Some((code, msg)) = refusal {
        drop(st);
        return refuse(what, code, msg);
    }
    st.card.codes[i].status = CodeStatus::Consumed;
    if let Some(k) = find_card(&mut st.card.cards, &c.card_id) {
        k.consumed += 1;
    }
    drop(st);
    sb.push_card_event(
        &c.openid,
        "user_consume_card",
        &[
            ("CardId", c.card_id.as_str()),
            ("UserCardCode", c.code.as_str()),
            ("ConsumeSource", "FROM_API"),
            ("LocationName", ""),
            ("StaffOpenId", ""),
            ("VerifyCode", ""),
            ("RemarkAmount", ""),
            ("OuterStr", c.outer_str.as_deref().unwrap_or("")),
        ],
    );
    ok_json(json!({"card": {"card_id": c.card_id}, "openid": c.openid}))
}

/// `POST /api/card/delete` `{"card_id"}`: the card and every unconsumed code of it go.
pub(crate) async fn delete(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let what = "card/delete";
    let v = match start(&sb, what, &q, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let id = s(&v, "card_id");
    let mut st = sb.lock();
    match find_card(&mut st.card.cards, id) {
        Some(c) if c.status != CardStatus::Deleted => c.status = CardStatus::Deleted,
        _ => {
            drop(st);
            return refuse(what, 40073, "invalid card id");
        }
    }
    // As at WeChat: "删除卡券后，该卡券对应已生成的领取用二维码、添加到卡包JS API均会失效。注意：如用户在
    // 商家删除卡券前已领取一张或多张该卡券依旧有效" — codes already taken stay usable.
    drop(st);
    ok_json(json!({}))
}

/// `POST /api/card/modifystock` `{"card_id","increase_stock_value"?,"reduce_stock_value"?}`
pub(crate) async fn modifystock(
    State(sb): State<Sandbox>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let what = "card/modifystock";
    let v = match start(&sb, what, &q, &body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let inc = int(&v, "increase_stock_value").unwrap_or(0);
    let red = int(&v, "reduce_stock_value").unwrap_or(0);
    if inc < 0 || red < 0 || (inc == 0 && red == 0) {
        return refuse(what, 40122, "invalid quantity");
    }
    let mut st = sb.lock();
    let Some(c) = find_card(&mut st.card.cards, s(&v, "card_id")) else {
        drop(st);
        return refuse(what, 40073, "invalid card id");
    };
    if c.status == CardStatus::Deleted {
        drop(st);
        return refuse(what, 40078, "invalid card status: the card was deleted");
    }
    let left = c.quantity + inc - red;
    if left < 0 {
        drop(st);
        return refuse(
            what,
            40122,
            "invalid quantity: the stock would go below zero",
        );
    }
    if left > 100_000_000 {
        drop(st);
        return refuse(what, 40122, "invalid quantity");
    }
    c.quantity = left;
    drop(st);
    ok_json(json!({}))
}

fn xml_escape_cdata(s: &str) -> String {
    format!("<![CDATA[{}]]>", s.replace("]]>", "]]]]><![CDATA[>"))
}

impl Sandbox {
    /// Every card, oldest first.
    pub fn cards(&self) -> Vec<SandboxCard> {
        self.lock().card.cards.clone()
    }

    /// One card.
    pub fn card(&self, card_id: &str) -> Option<SandboxCard> {
        self.lock()
            .card
            .cards
            .iter()
            .find(|c| c.card_id == card_id)
            .cloned()
    }

    /// The codes in `openid`'s wallet (卡包), oldest first, whatever their status.
    pub fn wallet(&self, openid: &str) -> Vec<WalletCode> {
        self.lock()
            .card
            .codes
            .iter()
            .filter(|c| c.openid == openid)
            .cloned()
            .collect()
    }

    /// Approves a card (`CARD_STATUS_VERIFY_OK`): everyone may take it. `false` if unknown or
    /// deleted.
    pub fn verify_card(&self, card_id: &str) -> bool {
        let mut st = self.lock();
        match find_card(&mut st.card.cards, card_id) {
            Some(c) if c.status != CardStatus::Deleted => {
                c.status = CardStatus::VerifyOk;
                true
            }
            _ => false,
        }
    }

    /// Calls to `card/code/consume` (redemptions asked for), including refused ones.
    pub fn card_consume_calls(&self) -> u64 {
        self.lock().card.consume_calls
    }

    /// Calls to `getticket?type=wx_card`.
    pub fn card_ticket_fetches(&self) -> u64 {
        self.lock().card.ticket_fetches
    }

    /// The newest unexpired card api_ticket, if any was handed out.
    pub fn current_card_ticket(&self) -> Option<String> {
        let now = self.now_ms();
        self.lock()
            .card
            .tickets
            .iter()
            .filter(|(_, &exp)| exp > now)
            .max_by_key(|(_, &exp)| exp)
            .map(|(t, _)| t.clone())
    }

    /// The card and outer_str a `QR_CARD` ticket gives.
    pub fn card_qr(&self, ticket: &str) -> Option<(String, Option<String>)> {
        self.lock().card.qrcodes.get(ticket).cloned()
    }

    /// The card and outer_str the `QR_CARD` code holding `url` gives (what scanning it opens).
    pub fn card_qr_by_url(&self, url: &str) -> Option<(String, Option<String>)> {
        let st = self.lock();
        let ticket = st.card.qr_urls.get(url)?;
        st.card.qrcodes.get(ticket).cloned()
    }

    /// Card events pushed to the shop, oldest first (with what the shop answered).
    pub fn card_pushes(&self) -> Vec<CardPush> {
        self.lock().card.pushes.clone()
    }

    /// The opaque `encrypt_code` of a code (what `wx.chooseCard` and card links carry; stable
    /// per code); `/card/code/decrypt` turns it back.
    pub fn encrypt_code(&self, code: &str) -> String {
        let mut st = self.lock();
        if let Some(e) = st.card.code_to_enc.get(code) {
            return e.clone();
        }
        let e = format!("{}=", random_alnum(43));
        st.card.code_to_enc.insert(code.to_string(), e.clone());
        st.card.enc_to_code.insert(e.clone(), code.to_string());
        e
    }

    /// User `openid` takes `card_id` as through `wx.addCard` or a QR code: the same checks
    /// (whitelist while unverified, validity, stock, get_limit) and the same `user_get_card`
    /// event. The new 12-digit code.
    pub fn give_card(&self, openid: &str, card_id: &str) -> Result<String, String> {
        self.take_card(openid, card_id, None)
    }

    /// User `openid` removes a code from their wallet (`user_del_card` is pushed).
    pub fn user_delete_card(&self, openid: &str, code: &str) -> Result<(), String> {
        let card_id = {
            let mut st = self.lock();
            let Some(c) = st
                .card
                .codes
                .iter_mut()
                .find(|c| c.code == code && c.openid == openid)
            else {
                return Err("no such code in this wallet".into());
            };
            if c.status != CodeStatus::Normal {
                return Err(format!("code is {}", c.status.as_str()));
            }
            c.status = CodeStatus::Deleted;
            c.card_id.clone()
        };
        self.push_card_event(
            openid,
            "user_del_card",
            &[("CardId", card_id.as_str()), ("UserCardCode", code)],
        );
        Ok(())
    }

    fn whitelisted(&self, st: &CardState, user: usize) -> bool {
        let u = &self.inner.users[user];
        st.whitelist_openids.contains(&u.openid)
            || st.whitelist_usernames.contains(&u.nickname)
            || st
                .whitelist_usernames
                .contains(&format!("wxsandbox_{}", u.key))
    }

    /// Whether `user` may take `card_id` now (no change made).
    fn can_take(&self, st: &CardState, user: usize, card_id: &str) -> Result<(), String> {
        let now_s = self.now_ms() / 1000;
        let card = st
            .cards
            .iter()
            .find(|c| c.card_id == card_id)
            .ok_or("卡券不存在 (invalid card id)")?;
        match card.status {
            CardStatus::Deleted => return Err("卡券已失效 (card deleted)".into()),
            CardStatus::NotVerify if !self.whitelisted(st, user) => {
                return Err(
                    "卡券未通过审核，仅测试白名单内的用户可领取 (card not verified; user not in the test whitelist)"
                        .into(),
                )
            }
            _ => {}
        }
        if let CardValidity::Fixed { end, .. } = card.validity {
            if now_s > end {
                return Err("卡券已过期 (card expired)".into());
            }
        }
        if card.quantity <= 0 {
            return Err("卡券已领完 (out of stock)".into());
        }
        let openid = &self.inner.users[user].openid;
        let held = st
            .codes
            .iter()
            .filter(|c| c.card_id == card_id && &c.openid == openid)
            .count() as i64;
        if card.get_limit > 0 && held >= card.get_limit {
            return Err("领取数量已达上限 (get_limit reached)".into());
        }
        Ok(())
    }

    pub(crate) fn take_card(
        &self,
        openid: &str,
        card_id: &str,
        outer_str: Option<&str>,
    ) -> Result<String, String> {
        let user = self
            .user_by_openid(openid)
            .ok_or("not a sandbox user's openid")?;
        let now = self.now_ms();
        let code = {
            let mut st = self.lock();
            self.can_take(&st.card, user, card_id)?;
            let code = loop {
                let c = format!("{}{}", 1 + rand::random::<u8>() % 9, random_digits(11));
                if !st.card.codes.iter().any(|x| x.code == c) {
                    break c;
                }
            };
            let card = find_card(&mut st.card.cards, card_id).expect("checked");
            card.quantity -= 1;
            card.taken += 1;
            let (begin_ms, end_ms) = match card.validity {
                CardValidity::Fixed { begin, end } => (begin * 1000, end * 1000 + 999),
                CardValidity::Term { days, begin_after } => {
                    let b = now + begin_after * 86_400_000;
                    (b, b + days * 86_400_000)
                }
            };
            st.card.codes.push(WalletCode {
                card_id: card_id.to_string(),
                code: code.clone(),
                openid: openid.to_string(),
                status: CodeStatus::Normal,
                begin_ms,
                end_ms,
                outer_str: outer_str.map(str::to_string),
            });
            code
        };
        let unionid = self.inner.users[user].unionid.clone();
        self.push_card_event(
            openid,
            "user_get_card",
            &[
                ("CardId", card_id),
                ("IsGiveByFriend", "0"),
                ("UserCardCode", code.as_str()),
                ("FriendUserName", ""),
                ("OuterId", "0"),
                ("OldUserCardCode", ""),
                ("OuterStr", outer_str.unwrap_or("")),
                ("IsRestoreMemberCard", "0"),
                ("IsRecommendByFriend", "0"),
                ("UnionId", unionid.as_str()),
            ],
        );
        Ok(code)
    }

    /// What the user's `/mp` chat says of a card event: 领取了卡券《title》（code …）.
    fn card_event_text(&self, event: &str, fields: &[(&str, &str)]) -> String {
        let field = |k: &str| {
            fields
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| *v)
                .unwrap_or_default()
        };
        let card_id = field("CardId");
        let title = self
            .card(card_id)
            .map(|c| c.title)
            .unwrap_or_else(|| card_id.to_string());
        let code = field("UserCardCode");
        match event {
            "user_get_card" => format!("领取了卡券《{title}》（code {code}）"),
            "user_consume_card" => format!("卡券《{title}》已核销（code {code}）"),
            "user_del_card" => format!("删除了卡券《{title}》（code {code}）"),
            other => format!("卡券事件 {other}《{title}》（code {code}）"),
        }
    }

    /// Pushes a card event to the shop's official-account server, if one is set, in the
    /// background (never failing the caller). The event goes into the user's `/mp` chat at
    /// once, and the shop's answer (or why there is none) joins it when it comes.
    fn push_card_event(&self, openid: &str, event: &str, fields: &[(&str, &str)]) {
        let url = self.lock().mp_server_url.clone();
        let user = self.user_by_openid(openid).unwrap_or(usize::MAX);
        let chat_id = {
            let text = self.card_event_text(event, fields);
            let mut st = self.lock();
            st.card.chat_seq += 1;
            let id = st.card.chat_seq;
            let answer = url
                .is_none()
                .then(|| Err("the shop set no official-account server URL".to_string()));
            if user != usize::MAX {
                st.mp_chat.push((
                    user,
                    ChatEntry::Card(CardChat {
                        id,
                        event: event.to_string(),
                        text,
                        answer,
                    }),
                ));
            }
            id
        };
        let Some(url) = url else {
            return;
        };
        let create_time = {
            let mut st = self.lock();
            let wall = time::OffsetDateTime::now_utc().unix_timestamp();
            let last = st.mp_clock.get(&user).copied().unwrap_or(0);
            let t = wall.max(last + 1);
            st.mp_clock.insert(user, t);
            t
        };
        let c = self.credentials();
        let mut xml = format!(
            "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{create_time}</CreateTime>\
<MsgType><![CDATA[event]]></MsgType><Event>{}</Event>",
            xml_escape_cdata(&c.mp_original_id),
            xml_escape_cdata(openid),
            xml_escape_cdata(event)
        );
        for (k, v) in fields {
            xml.push_str(&format!("<{k}>{}</{k}>", xml_escape_cdata(v)));
        }
        xml.push_str("</xml>");
        let push = MpPush {
            xml: xml.clone(),
            encrypted: !c.mp_encoding_aes_key.is_empty(),
        };
        let sb = self.clone();
        let event = event.to_string();
        tokio::spawn(async move {
            let answer = sb.push_to_mp(&url, &push).await.map_err(|e| e.to_string());
            if let Err(e) = &answer {
                tracing::warn!(target: "wechat_sandbox", event = %event, error = %e, "card event push failed");
            }
            let result = answer.as_ref().map(|a| a.status).map_err(Clone::clone);
            let mut st = sb.lock();
            for (_, entry) in st.mp_chat.iter_mut().rev() {
                if let ChatEntry::Card(c) = entry {
                    if c.id == chat_id {
                        c.answer = Some(answer);
                        break;
                    }
                }
            }
            if st.card.pushes.len() > 500 {
                st.card.pushes.drain(..250);
            }
            st.card.pushes.push(CardPush { event, xml, result });
        });
    }
}

/* ------------------------------ JS-SDK side ------------------------------ */

fn text(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The jsApiList check every JS call does: `Err(kind, reason)`.
fn js_permission(sb: &Sandbox, v: &Value, api: &str) -> Result<(), (&'static str, String)> {
    let now = sb.now_ms();
    let st = sb.lock();
    match st
        .js_configs
        .get(&text(v, "configId"))
        .filter(|c| c.expires_at > now)
    {
        None => Err(("permission", "wx.config has not succeeded".into())),
        Some(c) if !c.js_api_list.iter().any(|a| a == api) => {
            Err(("permission", format!("{api} is not in wx.config jsApiList")))
        }
        Some(_) => Ok(()),
    }
}

/// The valid card api_tickets now.
fn card_tickets(sb: &Sandbox) -> Vec<String> {
    let now = sb.now_ms();
    sb.lock()
        .card
        .tickets
        .iter()
        .filter(|(_, &exp)| exp > now)
        .map(|(t, _)| t.clone())
        .collect()
}

/// The user the shim acts for: the sandbox user cookie, else `hint` (an openid), else user 1.
fn current_user(sb: &Sandbox, headers: &HeaderMap, hint: Option<&str>) -> usize {
    cookie_user(sb, headers)
        .or_else(|| hint.and_then(|o| sb.user_by_openid(o)))
        .unwrap_or(0)
}

fn js_fail(sb: &Sandbox, what: &str, kind: &str, reason: &str, url: &str) -> Json<Value> {
    tracing::warn!(target: "wechat_sandbox", endpoint = what, url = %url, reason, "refused");
    sb.js_event(what, false, reason, url);
    Json(json!({"ok": false, "kind": kind, "reason": reason}))
}

/// Verifies one `cardList` entry's `cardExt` for `user`. `Ok(outer_str)`.
fn check_card_ext(
    sb: &Sandbox,
    user: usize,
    card_id: &str,
    ext_raw: &Value,
) -> Result<Option<String>, (&'static str, String)> {
    let Value::String(ext_s) = ext_raw else {
        return Err(("fail", "cardExt must be a JSON string".into()));
    };
    let ext: Value = serde_json::from_str(ext_s)
        .map_err(|_| ("fail", "cardExt is not valid JSON".to_string()))?;
    let (ts, nonce, sig) = (
        text(&ext, "timestamp"),
        text(&ext, "nonce_str"),
        text(&ext, "signature"),
    );
    if ts.is_empty() || nonce.is_empty() || sig.is_empty() {
        return Err((
            "fail",
            "cardExt needs timestamp, nonce_str and signature".into(),
        ));
    }
    if nonce.len() > 32 {
        return Err(("fail", "nonce_str longer than 32 characters".into()));
    }
    let code = text(&ext, "code");
    let openid = text(&ext, "openid");
    let tickets = card_tickets(sb);
    let good = tickets.iter().any(|t| {
        ct_eq(
            &sorted_sha1(&[t, &ts, card_id, &code, &openid, &nonce]),
            &sig,
        )
    });
    if !good {
        return Err(("signature", "signature error".into()));
    }
    if !code.is_empty() {
        return Err((
            "fail",
            "code given in cardExt, but the card does not use custom codes".into(),
        ));
    }
    if !openid.is_empty() && openid != sb.inner.users[user].openid {
        return Err(("fail", "openid in cardExt is not the current user's".into()));
    }
    let outer = text(&ext, "outer_str");
    Ok((!outer.is_empty()).then_some(outer))
}

/// `POST /jsapi/card/add/prepare` `{configId, cardList:[{cardId, cardExt}], url}`: checks every
/// entry as WeChat would, answers what the 领取 sheet shows.
pub(crate) async fn add_prepare(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Json(v): Json<Value>,
) -> Json<Value> {
    let what = "addCard";
    let url = text(&v, "url");
    if let Some(f) = sb.take_fault(Endpoint::JsCard).await {
        if let Some(r) = crate::jsapi::fault_reason(f) {
            return js_fail(&sb, what, "fail", &r, &url);
        }
    }
    if let Err((kind, r)) = js_permission(&sb, &v, what) {
        return js_fail(&sb, what, kind, &r, &url);
    }
    let list = match v.get("cardList").and_then(Value::as_array) {
        Some(a) if !a.is_empty() => a.clone(),
        _ => return js_fail(&sb, what, "fail", "cardList is empty", &url),
    };
    let hint = list.iter().find_map(|e| {
        e.get("cardExt")
            .and_then(Value::as_str)
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            .map(|x| text(&x, "openid"))
            .filter(|o| !o.is_empty())
    });
    let user = current_user(&sb, &headers, hint.as_deref());
    let mut items = Vec::new();
    let mut shown = Vec::new();
    for e in &list {
        let card_id = text(e, "cardId");
        if card_id.is_empty() {
            return js_fail(&sb, what, "fail", "cardId is empty", &url);
        }
        let outer = match check_card_ext(
            &sb,
            user,
            &card_id,
            e.get("cardExt").unwrap_or(&Value::Null),
        ) {
            Ok(o) => o,
            Err((kind, r)) => return js_fail(&sb, what, kind, &r, &url),
        };
        let st = sb.lock();
        if let Err(r) = sb.can_take(&st.card, user, &card_id) {
            drop(st);
            return js_fail(&sb, what, "fail", &r, &url);
        }
        let card = st
            .card
            .cards
            .iter()
            .find(|c| c.card_id == card_id)
            .cloned()
            .expect("checked");
        drop(st);
        shown.push(json!({"cardId": card_id, "title": card.title, "brand": card.brand_name, "rule": card.kind.rule()}));
        items.push(AddItem {
            card_id,
            card_ext: text(e, "cardExt"),
            outer_str: outer,
        });
    }
    let token = random_alnum(32);
    let now = sb.now_ms();
    {
        let mut st = sb.lock();
        st.card.add_sessions.retain(|_, s| s.expires_at > now);
        st.card.add_sessions.insert(
            token.clone(),
            AddSession {
                user,
                items,
                expires_at: now + 600_000,
                url: url.clone(),
            },
        );
    }
    sb.js_event(
        "addCard_prepare",
        true,
        &format!("{} card(s)", shown.len()),
        &url,
    );
    Json(json!({
        "ok": true,
        "addToken": token,
        "user": sb.inner.users[user].nickname,
        "cards": shown,
    }))
}

/// `POST /jsapi/card/add/confirm` `{addToken}`: the user pressed 领取.
pub(crate) async fn add_confirm(State(sb): State<Sandbox>, Json(v): Json<Value>) -> Json<Value> {
    let now = sb.now_ms();
    let session = sb
        .lock()
        .card
        .add_sessions
        .remove(&text(&v, "addToken"))
        .filter(|s| s.expires_at > now);
    let Some(s) = session else {
        sb.js_event("addCard_confirm", false, "领取会话无效或已过期", "");
        return Json(json!({"ok": false, "reason": "领取会话无效或已过期"}));
    };
    let openid = sb.inner.users[s.user].openid.clone();
    let mut out = Vec::new();
    for it in &s.items {
        match sb.take_card(&openid, &it.card_id, it.outer_str.as_deref()) {
            Ok(code) => out.push(json!({
                "cardId": it.card_id,
                "cardExt": it.card_ext,
                "code": sb.encrypt_code(&code),
                "isSuccess": true,
            })),
            Err(r) => {
                sb.js_event("addCard_confirm", false, &r, &s.url);
                if out.is_empty() {
                    return Json(json!({"ok": false, "reason": r}));
                }
                out.push(json!({"cardId": it.card_id, "cardExt": it.card_ext, "isSuccess": false}));
            }
        }
    }
    sb.js_event(
        "addCard_confirm",
        true,
        &format!("{} card(s)", out.len()),
        &s.url,
    );
    Json(json!({"ok": true, "cardList": out}))
}

/// `POST /jsapi/card/add/cancel` `{addToken}`
pub(crate) async fn add_cancel(State(sb): State<Sandbox>, Json(v): Json<Value>) -> Json<Value> {
    let s = sb.lock().card.add_sessions.remove(&text(&v, "addToken"));
    sb.js_event(
        "addCard_cancel",
        true,
        "",
        &s.map(|s| s.url).unwrap_or_default(),
    );
    Json(json!({"ok": true}))
}

/// `POST /jsapi/card/choose/prepare` `{configId, shopId, cardType, cardId, timestamp, nonceStr,
/// signType, cardSign, url}`: verifies `cardSign`, answers the user's usable cards.
pub(crate) async fn choose_prepare(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Json(v): Json<Value>,
) -> Json<Value> {
    let what = "chooseCard";
    let url = text(&v, "url");
    if let Some(f) = sb.take_fault(Endpoint::JsCard).await {
        if let Some(r) = crate::jsapi::fault_reason(f) {
            return js_fail(&sb, what, "fail", &r, &url);
        }
    }
    if let Err((kind, r)) = js_permission(&sb, &v, what) {
        return js_fail(&sb, what, kind, &r, &url);
    }
    let (shop, card_type, card_id) = (text(&v, "shopId"), text(&v, "cardType"), text(&v, "cardId"));
    let (ts, nonce, sign_type, sig) = (
        text(&v, "timestamp"),
        text(&v, "nonceStr"),
        text(&v, "signType"),
        text(&v, "cardSign"),
    );
    if ts.is_empty() || nonce.is_empty() || sig.is_empty() {
        return js_fail(
            &sb,
            what,
            "fail",
            "timestamp, nonceStr and cardSign are required",
            &url,
        );
    }
    if !(sign_type.is_empty() || sign_type.eq_ignore_ascii_case("SHA1")) {
        return js_fail(&sb, what, "fail", "signType must be SHA1", &url);
    }
    let appid = sb.creds().appid.clone();
    let good = card_tickets(&sb).iter().any(|t| {
        ct_eq(
            &sorted_sha1(&[t, &appid, &shop, &ts, &nonce, &card_id, &card_type]),
            &sig,
        )
    });
    if !good {
        return js_fail(&sb, what, "signature", "signature error", &url);
    }
    let user = current_user(&sb, &headers, None);
    let openid = sb.inner.users[user].openid.clone();
    let now = sb.now_ms();
    let st = sb.lock();
    let mut offered = Vec::new();
    let mut shown = Vec::new();
    for c in st.card.codes.iter().filter(|c| {
        c.openid == openid
            && c.status == CodeStatus::Normal
            && c.begin_ms <= now
            && now <= c.end_ms
            && (card_id.is_empty() || c.card_id == card_id)
    }) {
        let Some(card) = st.card.cards.iter().find(|k| k.card_id == c.card_id) else {
            continue;
        };
        if !card_type.is_empty() && card.kind.card_type() != card_type {
            continue;
        }
        shown.push(json!({
            "index": offered.len(),
            "cardId": card.card_id,
            "title": card.title,
            "rule": card.kind.rule(),
            "cardType": card.kind.card_type(),
            "until": crate::util::dashed_beijing(c.end_ms),
        }));
        offered.push((c.card_id.clone(), c.code.clone()));
    }
    drop(st);
    let token = random_alnum(32);
    {
        let mut st = sb.lock();
        st.card.choose_sessions.retain(|_, s| s.expires_at > now);
        st.card.choose_sessions.insert(
            token.clone(),
            ChooseSession {
                offered,
                expires_at: now + 600_000,
            },
        );
    }
    sb.js_event(
        "chooseCard_prepare",
        true,
        &format!("{} card(s)", shown.len()),
        &url,
    );
    Json(json!({"ok": true, "chooseToken": token, "cards": shown}))
}

/// `POST /jsapi/card/choose/pick` `{chooseToken, index}` (no index: 不使用): the `cardList`
/// JSON string WeChat hands the page.
pub(crate) async fn choose_pick(State(sb): State<Sandbox>, Json(v): Json<Value>) -> Json<Value> {
    let now = sb.now_ms();
    let s = sb
        .lock()
        .card
        .choose_sessions
        .remove(&text(&v, "chooseToken"))
        .filter(|s| s.expires_at > now);
    let Some(s) = s else {
        return Json(json!({"ok": false, "reason": "选券会话无效或已过期"}));
    };
    let Some((card_id, code)) = v
        .get("index")
        .and_then(Value::as_u64)
        .and_then(|i| s.offered.get(i as usize).cloned())
    else {
        sb.js_event("chooseCard_cancel", true, "", "");
        return Json(json!({"ok": true, "cancel": true}));
    };
    let list = json!([{"card_id": card_id, "encrypt_code": sb.encrypt_code(&code)}]).to_string();
    sb.js_event("chooseCard_pick", true, &card_id, "");
    Json(json!({"ok": true, "cardList": list}))
}

/* ------------------------------ dashboard ------------------------------ */

#[derive(serde::Deserialize)]
pub(crate) struct VerifyForm {
    card_id: String,
}

/// `POST /dashboard/cards/verify` (form `card_id`): 审核通过.
pub(crate) async fn dashboard_verify(
    State(sb): State<Sandbox>,
    Form(f): Form<VerifyForm>,
) -> Response {
    if sb.verify_card(f.card_id.trim()) {
        axum::response::Redirect::to("../../dashboard").into_response()
    } else {
        (axum::http::StatusCode::NOT_FOUND, "no such card").into_response()
    }
}

/// The dashboard's 卡券 section.
pub(crate) fn dashboard_section(sb: &Sandbox) -> String {
    use crate::util::html_escape as e;
    let mut rows = String::new();
    for c in sb.cards() {
        let button = if c.status == CardStatus::NotVerify {
            format!(
                "<form method=\"post\" action=\"dashboard/cards/verify\"><input type=\"hidden\" name=\"card_id\" value=\"{}\">\
<button type=\"submit\" id=\"verify-{}\">审核通过</button></form>",
                e(&c.card_id),
                e(&c.card_id)
            )
        } else {
            String::new()
        };
        rows.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{button}</td></tr>",
            e(&c.card_id),
            e(&c.title),
            e(&c.kind.rule()),
            c.status.as_str(),
            c.quantity,
            c.taken,
            c.consumed
        ));
    }
    format!(
        "<div class=\"card\"><b>卡券</b> (getticket wx_card {})<table><tr><th>card_id</th><th>标题</th><th>规则</th><th>状态</th><th>库存</th><th>已领</th><th>已核销</th><th></th></tr>{rows}</table></div>",
        sb.card_ticket_fetches()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_like_wechat() {
        let c = SandboxCardKind::Cash {
            least_cost: 10000,
            reduce_cost: 1000,
        };
        assert_eq!(c.rule(), "满100.00元减10.00元");
        let d = SandboxCardKind::Discount {
            least_cost: 0,
            discount: 30,
        };
        assert_eq!(d.rule(), "7折");
        let d = SandboxCardKind::Discount {
            least_cost: 0,
            discount: 15,
        };
        assert_eq!(d.rule(), "8.5折");
    }

    #[test]
    fn sorted_sha1_is_byte_order() {
        // "Z" (0x5A) < "a" (0x61) < "é" (0xC3…)
        assert_eq!(sorted_sha1(&["é", "a", "Z"]), sorted_sha1(&["Z", "a", "é"]));
        assert_eq!(
            sorted_sha1(&["a", "", "b"]),
            hex::encode(Sha1::digest(b"ab"))
        );
    }
}
