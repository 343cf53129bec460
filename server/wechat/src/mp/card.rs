//! Cards (卡券): the `api_ticket` (`getticket?type=wx_card`), the `cardExt` of `wx.addCard` and
//! the `cardSign` of `wx.chooseCard`, and the card APIs a shop uses for coupons: create, QR code,
//! test whitelist, code decrypt / get / consume, delete, stock.
//!
//! Field names follow WeChat's 卡券 documentation
//! (<https://developers.weixin.qq.com/doc/offiaccount/Cards_and_Offer/Create_a_Coupon_Voucher_or_Card.html>
//! for `card/create` `base_info` and `date_info`;
//! `…/Redeeming_a_coupon_voucher_or_card.html` for `card/code/get` (`card.card_id`, `openid`,
//! `can_consume`, `user_card_status`), `card/code/consume` and `card/code/decrypt`;
//! `…/Distributing_Coupons_Vouchers_and_Cards.html` for `QR_CARD`, `testwhitelist/set` and the
//! JS-SDK `cardExt`; the JS-SDK doc 附录4 for `cardSign`) and `WECHAT.md` §12. The docs site was
//! not reachable from the search tool when this was written; the names are the ones those pages
//! and every maintained SDK use.
//!
//! Signatures: WeChat sorts the **values** (not `key=value` pairs) as byte strings and hashes their
//! concatenation with SHA-1; empty values contribute nothing. Secrets (the api_ticket, the
//! access_token) never appear in errors or logs.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha1::{Digest, Sha1};

use crate::config::BaseUrl;
use crate::error::{parse_mp, MpError};
use crate::http::{encode, read_capped, HttpError, DEFAULT_TIMEOUT, MAX_ANSWER_BYTES};
use crate::mp::token::{TokenError, TokenManager};
use crate::secret::Secret;

/// SHA-1 (lowercase hex) of the values sorted as byte strings and concatenated; empty values
/// contribute nothing.
pub fn sign_values(values: &[&str]) -> String {
    let mut sorted: Vec<&str> = values.to_vec();
    // `str`'s `Ord` is byte-wise (UTF-8 byte order), which is what WeChat's sample code does.
    sorted.sort_unstable();
    let mut h = Sha1::new();
    for v in sorted {
        h.update(v.as_bytes());
    }
    hex::encode(h.finalize())
}

/// `cardExt` for `wx.addCard`. [`CardExt::to_json_string`] gives the JSON string the page passes
/// as `cardExt` (`code` and `openid` only when set, `timestamp`, `nonce_str`, `signature`,
/// `outer_str` only when set).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardExt {
    /// The code to give (only for cards created with `use_custom_code: true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Only this user may take the card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
    /// Unix seconds, as a string.
    pub timestamp: String,
    /// Random string.
    pub nonce_str: String,
    /// See [`CardExt::sign`].
    pub signature: String,
    /// The channel (领券渠道), echoed in the `user_get_card` event as `OuterStr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outer_str: Option<String>,
}

impl CardExt {
    /// `signature = sign_values([api_ticket, timestamp, card_id, code, openid, nonce_str])`.
    pub fn sign(
        api_ticket: &str,
        card_id: &str,
        code: Option<&str>,
        openid: Option<&str>,
        timestamp: i64,
        nonce_str: &str,
        outer_str: Option<&str>,
    ) -> CardExt {
        let ts = timestamp.to_string();
        let signature = sign_values(&[
            api_ticket,
            &ts,
            card_id,
            code.unwrap_or(""),
            openid.unwrap_or(""),
            nonce_str,
        ]);
        CardExt {
            code: code.map(str::to_owned),
            openid: openid.map(str::to_owned),
            timestamp: ts,
            nonce_str: nonce_str.to_owned(),
            signature,
            outer_str: outer_str.map(str::to_owned),
        }
    }

    /// The JSON string for `cardList[].cardExt`.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self).expect("CardExt serializes")
    }
}

/// `cardSign` for `wx.chooseCard` =
/// `sign_values([api_ticket, appid, location_id, timestamp, nonce_str, card_id, card_type])`
/// (`location_id` is the `shopId`, `card_id` / `card_type` the filters; empty when not given).
pub fn choose_card_sign(
    api_ticket: &str,
    appid: &str,
    location_id: &str,
    timestamp: i64,
    nonce_str: &str,
    card_id: &str,
    card_type: &str,
) -> String {
    let ts = timestamp.to_string();
    sign_values(&[
        api_ticket,
        appid,
        location_id,
        &ts,
        nonce_str,
        card_id,
        card_type,
    ])
}

/// What a coupon does. Amounts in fen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CardKind {
    /// 代金券 (`CASH`): 满 `least_cost` 减 `reduce_cost`.
    Cash {
        /// Minimum spend (0: none).
        least_cost_fen: i64,
        /// Amount taken off.
        reduce_cost_fen: i64,
    },
    /// 折扣券 (`DISCOUNT`): WeChat's `discount` is the percentage taken off (30 → 七折).
    Discount {
        /// Minimum spend (0: none), sent as `advanced_info.use_condition.least_cost`.
        least_cost_fen: i64,
        /// Percentage taken off, 1..=99.
        percent_off: i64,
    },
}

/// A card's validity (`date_info`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Validity {
    /// `DATE_TYPE_FIX_TIME_RANGE` with `begin_timestamp` / `end_timestamp` (Unix seconds).
    Fixed {
        /// Start, Unix seconds.
        begin_unix: i64,
        /// End, Unix seconds.
        end_unix: i64,
    },
    /// `DATE_TYPE_FIX_TERM`: valid for `fixed_term` days from taking (`fixed_begin_term: 0`).
    AfterTaking {
        /// Days.
        days: u32,
    },
}

/// A coupon to create with [`CardApi::create`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardDefinition {
    /// Cash or discount.
    pub kind: CardKind,
    /// `title` (WeChat: at most 9 Chinese characters).
    pub title: String,
    /// `Color010` … `Color100`.
    pub color: String,
    /// `date_info`.
    pub validity: Validity,
    /// `sku.quantity`.
    pub quantity: i64,
    /// Per-user limit (`get_limit`).
    pub get_limit: i64,
    /// `brand_name`.
    pub brand_name: String,
    /// `logo_url` (WeChat wants one uploaded with `media/uploadimg`).
    pub logo_url: String,
    /// `notice` (使用提醒).
    pub notice: String,
    /// `description` (使用说明).
    pub description: String,
}

impl CardDefinition {
    /// The body of `POST /card/create`:
    /// `{"card":{"card_type":"CASH","cash":{"base_info":{…},"least_cost":…,"reduce_cost":…}}}`.
    pub fn to_create_json(&self) -> Value {
        let date_info = match self.validity {
            Validity::Fixed {
                begin_unix,
                end_unix,
            } => json!({
                "type": "DATE_TYPE_FIX_TIME_RANGE",
                "begin_timestamp": begin_unix,
                "end_timestamp": end_unix,
            }),
            Validity::AfterTaking { days } => json!({
                "type": "DATE_TYPE_FIX_TERM",
                "fixed_term": days,
                "fixed_begin_term": 0,
            }),
        };
        let base_info = json!({
            "logo_url": self.logo_url,
            "brand_name": self.brand_name,
            "code_type": "CODE_TYPE_QRCODE",
            "title": self.title,
            "color": self.color,
            "notice": self.notice,
            "description": self.description,
            "date_info": date_info,
            "sku": {"quantity": self.quantity},
            "get_limit": self.get_limit,
            "use_custom_code": false,
            "can_share": false,
            "can_give_friend": false,
        });
        match self.kind {
            CardKind::Cash {
                least_cost_fen,
                reduce_cost_fen,
            } => json!({"card": {"card_type": "CASH", "cash": {
                "base_info": base_info,
                "least_cost": least_cost_fen,
                "reduce_cost": reduce_cost_fen,
            }}}),
            CardKind::Discount {
                least_cost_fen,
                percent_off,
            } => json!({"card": {"card_type": "DISCOUNT", "discount": {
                "base_info": base_info,
                "advanced_info": {"use_condition": {"least_cost": least_cost_fen}},
                "discount": percent_off,
            }}}),
        }
    }
}

/// `card/code/get`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct CodeInfo {
    /// Who holds the code.
    pub openid: String,
    /// Its card (WeChat's `card.card_id`).
    pub card_id: String,
    /// Whether it can be consumed now.
    pub can_consume: bool,
    /// `NORMAL`, `CONSUMED`, `EXPIRE`, `GIFTING`, `GIFT_TIMEOUT`, `DELETE`, `UNAVAILABLE`…
    pub user_card_status: String,
}

/// A card's QR code (`QR_CARD`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardQr {
    /// The QR ticket.
    pub ticket: String,
    /// What the QR code encodes.
    pub url: String,
    /// WeChat's picture of it.
    pub show_qrcode_url: String,
}

/// The card APIs. Clone freely.
#[derive(Clone)]
pub struct CardApi {
    tokens: TokenManager,
    http: reqwest::Client,
    api: BaseUrl,
}

impl std::fmt::Debug for CardApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardApi")
            .field("appid", &self.tokens.appid())
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Ack {}

fn require(v: &str, what: &'static str) -> Result<(), TokenError> {
    if v.trim().is_empty() {
        return Err(MpError::InvalidInput(what).into());
    }
    Ok(())
}

impl CardApi {
    /// `api`: `https://api.weixin.qq.com` (or a sandbox's).
    pub fn new(tokens: TokenManager, http: reqwest::Client, api: BaseUrl) -> Self {
        Self { tokens, http, api }
    }

    /// The appid (for `choose_card_sign`).
    pub fn appid(&self) -> &str {
        self.tokens.appid()
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<T, TokenError> {
        self.tokens
            .with_access_token(|token| {
                let url = self.api.join(&format!(
                    "{path}?access_token={}",
                    encode(token.expose_str())
                ));
                let rb = self.http.post(url).json(body);
                async move {
                    let resp = rb.timeout(DEFAULT_TIMEOUT).send().await?;
                    if !resp.status().is_success() {
                        return Err(MpError::from(HttpError::Status {
                            status: resp.status().as_u16(),
                        }));
                    }
                    let body = read_capped(resp, MAX_ANSWER_BYTES).await?;
                    parse_mp::<T>(&body)
                }
            })
            .await
    }

    /// The cards api_ticket (`getticket?type=wx_card`): cached and single-flighted like the
    /// jsapi_ticket ([`TokenManager::card_api_ticket`]).
    pub async fn api_ticket(&self) -> Result<Secret<String>, TokenError> {
        self.tokens.card_api_ticket().await
    }

    /// A signed `cardExt` for `wx.addCard` with a fresh nonce and the current time.
    pub async fn card_ext(
        &self,
        card_id: &str,
        openid: Option<&str>,
        outer_str: Option<&str>,
    ) -> Result<CardExt, TokenError> {
        let ticket = self.api_ticket().await?;
        Ok(CardExt::sign(
            ticket.expose_str(),
            card_id,
            None,
            openid,
            crate::unix_now(),
            &crate::nonce(),
            outer_str,
        ))
    }

    /// `POST /card/create`; the new `card_id`.
    pub async fn create(&self, def: &CardDefinition) -> Result<String, TokenError> {
        #[derive(Deserialize)]
        struct Created {
            card_id: String,
        }
        let c: Created = self.call("/card/create", &def.to_create_json()).await?;
        Ok(c.card_id)
    }

    /// `POST /card/qrcode/create` with `action_name: QR_CARD` (`outer_str` comes back in the
    /// `user_get_card` event).
    pub async fn qrcode(
        &self,
        card_id: &str,
        outer_str: Option<&str>,
    ) -> Result<CardQr, TokenError> {
        require(card_id, "empty card_id")?;
        #[derive(Deserialize)]
        struct Qr {
            ticket: String,
            #[serde(default)]
            url: String,
            #[serde(default)]
            show_qrcode_url: String,
        }
        let mut card = json!({"card_id": card_id});
        if let Some(o) = outer_str {
            card["outer_str"] = json!(o);
        }
        let body = json!({"action_name": "QR_CARD", "action_info": {"card": card}});
        let q: Qr = self.call("/card/qrcode/create", &body).await?;
        Ok(CardQr {
            ticket: q.ticket,
            url: q.url,
            show_qrcode_url: q.show_qrcode_url,
        })
    }

    /// `POST /card/testwhitelist/set`: who may take cards not yet approved.
    pub async fn set_test_whitelist(
        &self,
        openids: &[String],
        usernames: &[String],
    ) -> Result<(), TokenError> {
        let body = json!({"openid": openids, "username": usernames});
        self.call::<Ack>("/card/testwhitelist/set", &body)
            .await
            .map(|_| ())
    }

    /// `POST /card/code/decrypt`: the real code behind an `encrypt_code` (from `wx.chooseCard` or
    /// a card page link).
    pub async fn decrypt_code(&self, encrypt_code: &str) -> Result<String, TokenError> {
        require(encrypt_code, "empty encrypt_code")?;
        #[derive(Deserialize)]
        struct Code {
            code: String,
        }
        let c: Code = self
            .call("/card/code/decrypt", &json!({"encrypt_code": encrypt_code}))
            .await?;
        Ok(c.code)
    }

    /// `POST /card/code/get`. With `check_consume` a consumed code is refused by WeChat
    /// (errcode 40099); without, it comes back with `can_consume: false`.
    pub async fn get_code(
        &self,
        card_id: &str,
        code: &str,
        check_consume: bool,
    ) -> Result<CodeInfo, TokenError> {
        require(code, "empty code")?;
        #[derive(Deserialize)]
        struct Card {
            card_id: String,
        }
        #[derive(Deserialize)]
        struct Wire {
            card: Card,
            openid: String,
            can_consume: bool,
            user_card_status: String,
        }
        let mut body = json!({"code": code, "check_consume": check_consume});
        if !card_id.is_empty() {
            body["card_id"] = json!(card_id);
        }
        let w: Wire = self.call("/card/code/get", &body).await?;
        Ok(CodeInfo {
            openid: w.openid,
            card_id: w.card.card_id,
            can_consume: w.can_consume,
            user_card_status: w.user_card_status,
        })
    }

    /// `POST /card/code/consume` (核销); the holder's openid. A second consume fails with
    /// WeChat's errcode 40099 (`TokenError::api()` → `code() == 40099`).
    pub async fn consume(&self, card_id: &str, code: &str) -> Result<String, TokenError> {
        require(code, "empty code")?;
        #[derive(Deserialize)]
        struct Consumed {
            openid: String,
        }
        let mut body = json!({"code": code});
        if !card_id.is_empty() {
            body["card_id"] = json!(card_id);
        }
        let c: Consumed = self.call("/card/code/consume", &body).await?;
        Ok(c.openid)
    }

    /// `POST /card/delete`: the card can no longer be taken or used.
    pub async fn delete(&self, card_id: &str) -> Result<(), TokenError> {
        require(card_id, "empty card_id")?;
        self.call::<Ack>("/card/delete", &json!({"card_id": card_id}))
            .await
            .map(|_| ())
    }

    /// `POST /card/modifystock` with `reduce_stock_value`.
    pub async fn reduce_stock(&self, card_id: &str, by: i64) -> Result<(), TokenError> {
        require(card_id, "empty card_id")?;
        if by <= 0 {
            return Err(MpError::InvalidInput("reduce_stock_value must be positive").into());
        }
        self.call::<Ack>(
            "/card/modifystock",
            &json!({"card_id": card_id, "reduce_stock_value": by}),
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_values_sorts_bytes_and_skips_nothing_else() {
        // sha1("") for no values at all.
        assert_eq!(sign_values(&[]), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(sign_values(&["b", "a"]), sign_values(&["a", "", "b"]));
        let ext = CardExt::sign("T", "p1", None, None, 12, "n", Some("web"));
        assert_eq!(ext.signature, sign_values(&["T", "12", "p1", "n"]));
        let j: Value = serde_json::from_str(&ext.to_json_string()).unwrap();
        assert_eq!(
            j,
            json!({"timestamp":"12","nonce_str":"n","signature":ext.signature,"outer_str":"web"})
        );
    }
}
