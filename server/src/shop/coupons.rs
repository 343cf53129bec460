//! Coupons (优惠券) from the shopper's WeChat card wallet (卡包), at checkout and after payment.
//!
//! - The merchant makes a coupon in the console (`admin/coupons.rs`); WeChat keeps the card, the
//!   shop keeps its rule in `coupons` (migration 0014).
//! - The shopper takes it with `wx.addCard` ([`card_ext`] signs the `cardExt`) and chooses it at
//!   checkout with `wx.chooseCard` ([`choose_card_config`] signs it), which gives the page the
//!   card and an *encrypted* code.
//! - [`check`] turns that into a discount: the code is decrypted at WeChat (`card/code/decrypt`),
//!   WeChat confirms it is this shopper's and can be used (`card/code/get`, `check_consume`), the
//!   shop's own rule (minimum spend) is applied, and no other order may be holding the code.
//! - The order keeps the code; a unique index (`orders_coupon_code`) lets one code sit on one
//!   order that is not closed, so closing an unpaid order frees it.
//! - Once the order is paid, [`Redeemer`] redeems the code at WeChat (`card/code/consume`)
//!   exactly once: a lease on the order row (`coupon_claimed_at`) and `coupon_redeemed_at`; the
//!   sweeper retries what a crash or an outage left.
//!
//! **Amounts.** Cash (满 X 减 Y): the discount is Y, but the shopper always pays at least 1 fen
//! (WeChat Pay's minimum). Discount (Z 折, WeChat's `discount` = the percentage taken off): the
//! discount is `goods × percent_off / 100` rounded **down** to the fen, so the shopper pays the
//! rest (at most 1 fen more than the exact figure), and again at least 1 fen.
//! A refund of a couponed order refunds at most what was paid (`total_fee`); the redeemed coupon
//! does not come back.

use super::{db_error, now};
use crate::db::Db;
use app::error::{ApiError, ErrorCode};
use app::model::{AppliedCoupon, CouponInput, CouponOffer};
use app::port::Result;
use wechat::mp::card::CardApi;

/// How long one redemption attempt holds the order (another instance waits this long).
const REDEEM_LEASE_SECS: i64 = 60;

/// A coupon's rule, in fen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// 满 `least_cost_fen` 减 `reduce_cost_fen`.
    Cash {
        least_cost_fen: i64,
        reduce_cost_fen: i64,
    },
    /// 满 `least_cost_fen` 打折: `percent_off` taken off (30 → 7 折).
    Discount {
        least_cost_fen: i64,
        percent_off: i64,
    },
}

/// Yuan for people: `100`, `99.5`, `0.01`.
pub fn yuan(fen: i64) -> String {
    let s = format!("{}.{:02}", fen / 100, fen % 100);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl Rule {
    pub fn least_cost_fen(&self) -> i64 {
        match *self {
            Rule::Cash { least_cost_fen, .. } | Rule::Discount { least_cost_fen, .. } => {
                least_cost_fen
            }
        }
    }

    /// 满100减20, 无门槛减5, 满50享7折, 8.5折.
    pub fn describe(&self) -> String {
        let least = self.least_cost_fen();
        match *self {
            Rule::Cash {
                reduce_cost_fen, ..
            } if least == 0 => format!("无门槛减{}", yuan(reduce_cost_fen)),
            Rule::Cash {
                reduce_cost_fen, ..
            } => format!("满{}减{}", yuan(least), yuan(reduce_cost_fen)),
            Rule::Discount { percent_off, .. } => {
                // 100 - percent_off tenths of 十: 70 → 7折, 85 → 8.5折.
                let pay = 100 - percent_off;
                let zhe = if pay % 10 == 0 {
                    format!("{}折", pay / 10)
                } else {
                    format!("{}.{}折", pay / 10, pay % 10)
                };
                if least == 0 {
                    zhe
                } else {
                    format!("满{}享{}", yuan(least), zhe)
                }
            }
        }
    }

    /// What the coupon takes off `goods_fen`, or why it does not apply.
    pub fn discount(&self, goods_fen: i64) -> std::result::Result<i64, String> {
        let least = self.least_cost_fen();
        if goods_fen < least {
            return Err(format!(
                "未满 ¥{}（还差 ¥{}），不能使用此优惠券",
                yuan(least),
                yuan(least - goods_fen)
            ));
        }
        let off = match *self {
            Rule::Cash {
                reduce_cost_fen, ..
            } => reduce_cost_fen,
            // i128: no overflow for any i64 total.
            Rule::Discount { percent_off, .. } => {
                (goods_fen as i128 * percent_off as i128 / 100) as i64
            }
        };
        // The shopper pays at least 1 fen.
        Ok(off.clamp(0, (goods_fen - 1).max(0)))
    }
}

/// A coupon row (the columns [`check`] and the console need).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CouponRow {
    pub id: i64,
    pub card_id: String,
    pub title: String,
    pub kind: String,
    pub least_cost_fen: i64,
    pub reduce_cost_fen: Option<i64>,
    pub percent_off: Option<i64>,
    pub quantity: i64,
    pub per_user: i64,
    pub days: Option<i64>,
    pub begin_at: Option<i64>,
    pub end_at: Option<i64>,
    pub color: String,
    pub status: String,
    pub created_at: i64,
}

pub const COUPON_COLUMNS: &str = "id, card_id, title, kind, least_cost_fen, reduce_cost_fen, \
    percent_off, quantity, per_user, days, begin_at, end_at, color, status, created_at";

impl CouponRow {
    pub fn rule(&self) -> Rule {
        match (self.kind.as_str(), self.reduce_cost_fen, self.percent_off) {
            ("discount", _, Some(p)) => Rule::Discount {
                least_cost_fen: self.least_cost_fen,
                percent_off: p,
            },
            (_, reduce, _) => Rule::Cash {
                least_cost_fen: self.least_cost_fen,
                reduce_cost_fen: reduce.unwrap_or(0),
            },
        }
    }

    /// 领取后 7 天内有效 / 2026-12-01 至 2026-12-31 (China dates).
    pub fn validity(&self) -> String {
        match (self.days, self.begin_at, self.end_at) {
            (Some(d), _, _) => format!("领取后 {d} 天内有效"),
            (None, Some(b), Some(e)) => format!("{} 至 {}", china_date(b), china_date(e)),
            _ => String::new(),
        }
    }

    /// Can be taken now (active, inside its dates).
    pub fn on_offer(&self, now: i64) -> bool {
        self.status == "active" && self.end_at.is_none_or(|e| e > now)
    }
}

/// `yyyy-mm-dd` in China time.
pub fn china_date(unix: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(time::macros::offset!(+8));
    format!("{:04}-{:02}-{:02}", t.year(), t.month() as u8, t.day())
}

pub async fn by_card(pool: &Db, card_id: &str) -> Result<Option<CouponRow>> {
    let sql = format!("SELECT {COUPON_COLUMNS} FROM coupons WHERE card_id = $1");
    crate::sql!(pool, e => sqlx::query_as::<_, CouponRow>(&sql).bind(card_id).fetch_optional(e).await)
        .map_err(db_error)
}

/// The coupons a shopper can take now, newest first.
/// The active coupons (the catalogue cache keeps them; [`offers_of`] picks those on offer).
pub async fn active_rows(pool: &Db) -> Result<Vec<CouponRow>> {
    let sql = format!(
        "SELECT {COUPON_COLUMNS} FROM coupons WHERE status = 'active' ORDER BY id DESC LIMIT 20"
    );
    crate::sql!(pool, e => sqlx::query_as::<_, CouponRow>(&sql).fetch_all(e).await)
        .map_err(db_error)
}

/// Which of `rows` are on offer at `now` (their dates), as the pages show them.
pub fn offers_of(rows: &[CouponRow], now: i64) -> Vec<CouponOffer> {
    rows.iter()
        .filter(|c| c.on_offer(now))
        .map(|c| CouponOffer {
            rule: c.rule().describe(),
            validity: c.validity(),
            card_id: c.card_id.clone(),
            title: c.title.clone(),
        })
        .collect()
}

fn not_applicable(why: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::CouponNotApplicable, why)
}

/// WeChat could not be asked (network, quota): nothing is decided.
fn wechat_unavailable(what: &str, e: &wechat::mp::token::TokenError) -> ApiError {
    tracing::warn!(error = %e, "{what}");
    ApiError::new(
        ErrorCode::PaymentUnavailable,
        "微信接口暂时不可用，请稍后再试",
    )
}

/// WeChat refused the code itself (errcode): the coupon does not apply. Anything else: unavailable.
fn code_refused(what: &str, e: wechat::mp::token::TokenError) -> ApiError {
    match e.api() {
        Some(api) => {
            tracing::info!(error = %api, "{what}: WeChat refused the coupon code");
            not_applicable("此优惠券无效或已使用")
        }
        None => wechat_unavailable(what, &e),
    }
}

/// A coupon checked for an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    pub card_id: String,
    pub code: String,
    pub title: String,
    pub rule: String,
    /// The rule itself: the order applies it again to the prices it reserves.
    pub terms: Rule,
    pub discount_fen: i64,
}

impl Checked {
    pub fn applied(&self) -> AppliedCoupon {
        AppliedCoupon {
            card_id: self.card_id.clone(),
            title: self.title.clone(),
            rule: self.rule.clone(),
            discount_fen: self.discount_fen,
        }
    }
}

/// The shopper's openid (bound by WeChat OAuth), if any.
pub async fn openid_of(pool: &Db, user: i64) -> Result<Option<String>> {
    crate::sql!(pool, e => sqlx::query_scalar::<_, Option<String>>("SELECT openid FROM users WHERE id = $1")
        .bind(user)
        .fetch_optional(e).await)
        .map(Option::flatten)
        .map_err(db_error)
}

/// The order (other than a closed one) already holding this code, if any.
pub async fn holder(pool: &Db, card_id: &str, code: &str) -> Result<Option<i64>> {
    crate::sql!(pool, e => sqlx::query_scalar::<_, i64>(
        "SELECT id FROM orders WHERE coupon_card_id = $1 AND coupon_code = $2 AND status <> 'closed'",
    )
    .bind(card_id)
    .bind(code)
    .fetch_optional(e).await)
    .map_err(db_error)
}

/// Checks the coupon `input` for an order of `goods_fen` by the shopper `openid` (see the module
/// docs): 409 `coupon_not_applicable` with the reason when it does not apply.
pub async fn check(
    pool: &Db,
    cards: &CardApi,
    openid: Option<&str>,
    input: &CouponInput,
    goods_fen: i64,
) -> Result<Checked> {
    let card_id = input.card_id.trim();
    let encrypt_code = input.encrypt_code.trim();
    if card_id.is_empty()
        || encrypt_code.is_empty()
        || card_id.len() > 64
        || encrypt_code.len() > 512
    {
        return Err(not_applicable("优惠券信息不完整，请重新选择"));
    }
    let Some(openid) = openid else {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "请在微信中打开后使用优惠券",
        ));
    };
    let Some(coupon) = by_card(pool, card_id).await? else {
        return Err(not_applicable("此优惠券不能在本店使用"));
    };
    // The shop's own rule first: no WeChat call for an order that is too small.
    let discount_fen = coupon.rule().discount(goods_fen).map_err(not_applicable)?;
    let code = cards
        .decrypt_code(encrypt_code)
        .await
        .map_err(|e| code_refused("card/code/decrypt", e))?;
    let info = cards
        .get_code(card_id, &code, true)
        .await
        .map_err(|e| code_refused("card/code/get", e))?;
    if info.card_id != card_id {
        return Err(not_applicable("优惠券信息不符，请重新选择"));
    }
    if info.openid != openid {
        tracing::warn!(card_id, "a coupon code of another shopper was offered");
        return Err(not_applicable("此优惠券不属于您"));
    }
    if !info.can_consume {
        return Err(not_applicable(format!(
            "此优惠券不可用（{}）",
            match info.user_card_status.as_str() {
                "CONSUMED" => "已使用",
                "EXPIRE" => "已过期",
                "DELETE" => "已删除",
                "UNAVAILABLE" => "已失效",
                _ => "状态异常",
            }
        )));
    }
    if holder(pool, card_id, &code).await?.is_some() {
        return Err(not_applicable(
            "此优惠券已用于另一个订单（支付或取消那个订单后再试）",
        ));
    }
    Ok(Checked {
        card_id: card_id.to_string(),
        code,
        title: coupon.title.clone(),
        rule: coupon.rule().describe(),
        terms: coupon.rule(),
        discount_fen,
    })
}

/// The signed `cardExt` for `wx.addCard` of one of the shop's coupons on offer.
pub async fn card_ext(
    pool: &Db,
    cards: &CardApi,
    openid: Option<&str>,
    card_id: &str,
) -> Result<app::model::CardExtView> {
    let Some(coupon) = by_card(pool, card_id.trim()).await? else {
        return Err(ApiError::not_found("优惠券"));
    };
    if !coupon.on_offer(now()) {
        return Err(ApiError::new(ErrorCode::InvalidState, "此优惠券已停止发放"));
    }
    let ticket = cards
        .api_ticket()
        .await
        .map_err(|e| wechat_unavailable("wx_card api_ticket", &e))?;
    let ext = wechat::mp::card::CardExt::sign(
        ticket.expose_str(),
        &coupon.card_id,
        None,
        openid,
        now(),
        &nonce(),
        None,
    );
    Ok(app::model::CardExtView {
        card_id: coupon.card_id,
        card_ext: ext.to_json_string(),
    })
}

/// The signed fields of `wx.chooseCard` (any of the shop's cards, no store).
pub async fn choose_card_config(
    cards: &CardApi,
    appid: &str,
) -> Result<app::model::ChooseCardConfig> {
    let ticket = cards
        .api_ticket()
        .await
        .map_err(|e| wechat_unavailable("wx_card api_ticket", &e))?;
    let timestamp = now();
    let nonce_str = nonce();
    let card_sign = wechat::mp::card::choose_card_sign(
        ticket.expose_str(),
        appid,
        "",
        timestamp,
        &nonce_str,
        "",
        "",
    );
    Ok(app::model::ChooseCardConfig {
        timestamp,
        nonce_str,
        sign_type: "SHA1".into(),
        card_sign,
    })
}

fn nonce() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::thread_rng(), 16)
}

/// Redeems the coupons of paid orders at WeChat, once each.
#[derive(Clone)]
pub struct Redeemer {
    pub pool: Db,
    pub cards: CardApi,
}

/// What one redemption did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redeemed {
    /// WeChat consumed the code now.
    Now,
    /// WeChat had consumed it already (an earlier attempt that was cut off, or elsewhere).
    Already,
    /// Nothing to do: no coupon, not paid, redeemed, or another attempt holds it.
    Nothing,
    /// WeChat could not be asked or refused; the sweeper tries again.
    Later,
}

impl Redeemer {
    /// Redeems in the background (never delays WeChat's payment notification).
    pub fn spawn_redeem(&self, order_id: i64) {
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.redeem(order_id).await {
                tracing::warn!(order_id, error = %e.message, "coupon redemption failed");
            }
        });
    }

    /// Takes the order's redemption (a lease), asks WeChat to consume the code, records it.
    pub async fn redeem(&self, order_id: i64) -> Result<Redeemed> {
        let now = now();
        let claimed: Option<(String, String)> = crate::sql!(&self.pool, e => sqlx::query_as(
            "UPDATE orders SET coupon_claimed_at = $1 \
             WHERE id = $2 AND coupon_code IS NOT NULL AND coupon_redeemed_at IS NULL \
               AND paid_at IS NOT NULL AND status <> 'closed' \
               AND (coupon_claimed_at IS NULL OR coupon_claimed_at <= $3) \
             RETURNING coupon_card_id, coupon_code",
        )
        .bind(now)
        .bind(order_id)
        .bind(now - REDEEM_LEASE_SECS)
        .fetch_optional(e).await)
        .map_err(db_error)?;
        let Some((card_id, code)) = claimed else {
            return Ok(Redeemed::Nothing);
        };
        let outcome = match self.cards.consume(&card_id, &code).await {
            Ok(_) => Redeemed::Now,
            // 40099: "invalid code, this code has consumed."
            Err(e) if e.api().is_some_and(|a| a.code() == 40099) => {
                tracing::warn!(
                    order_id,
                    card_id,
                    "coupon code was already consumed at WeChat"
                );
                Redeemed::Already
            }
            Err(e) => {
                tracing::warn!(order_id, card_id, error = %e, "card/code/consume failed; will retry");
                Redeemed::Later
            }
        };
        if outcome == Redeemed::Later {
            // The lease stays: the next attempt comes after REDEEM_LEASE_SECS.
            return Ok(outcome);
        }
        let done = super::now();
        crate::sql!(&self.pool, e => sqlx::query(
            "UPDATE orders SET coupon_redeemed_at = $1, coupon_claimed_at = NULL WHERE id = $2",
        )
        .bind(done)
        .bind(order_id)
        .execute(e).await.map(crate::db::Done::from))
        .map_err(db_error)?;
        crate::sql!(&self.pool, e => sqlx::query(
            "INSERT INTO coupon_codes (card_id, code, status, redeemed_at) VALUES ($1, $2, 'redeemed', $3) \
             ON CONFLICT (card_id, code) DO UPDATE SET status = 'redeemed', redeemed_at = excluded.redeemed_at",
        )
        .bind(&card_id)
        .bind(&code)
        .bind(done)
        .execute(e).await.map(crate::db::Done::from))
        .map_err(db_error)?;
        tracing::info!(order_id, card_id, "coupon redeemed");
        Ok(outcome)
    }

    /// The sweeper's part: every paid order whose coupon is not redeemed and not leased.
    pub async fn redeem_due(&self) -> Result<usize> {
        let ids: Vec<i64> = crate::sql!(&self.pool, e => sqlx::query_scalar(
            "SELECT id FROM orders WHERE coupon_code IS NOT NULL AND coupon_redeemed_at IS NULL \
             AND paid_at IS NOT NULL AND status <> 'closed' \
             AND (coupon_claimed_at IS NULL OR coupon_claimed_at <= $1) ORDER BY paid_at LIMIT 100",
        )
        .bind(now() - REDEEM_LEASE_SECS)
        .fetch_all(e).await)
        .map_err(db_error)?;
        let mut redeemed = 0;
        for id in ids {
            if matches!(self.redeem(id).await?, Redeemed::Now | Redeemed::Already) {
                redeemed += 1;
            }
        }
        Ok(redeemed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cash_coupons_need_the_minimum_spend_and_leave_a_fen() {
        let r = Rule::Cash {
            least_cost_fen: 10_000,
            reduce_cost_fen: 2_000,
        };
        assert_eq!(r.describe(), "满100减20");
        assert_eq!(r.discount(10_000), Ok(2_000));
        assert_eq!(r.discount(25_990), Ok(2_000));
        let err = r.discount(9_999).unwrap_err();
        assert!(
            err.contains("未满 ¥100") && err.contains("还差 ¥0.01"),
            "{err}"
        );
        let free = Rule::Cash {
            least_cost_fen: 0,
            reduce_cost_fen: 500,
        };
        assert_eq!(free.describe(), "无门槛减5");
        // A 5-yuan coupon on a 3-yuan order: the shopper still pays 1 fen.
        assert_eq!(free.discount(300), Ok(299));
    }

    #[test]
    fn discounts_round_down_to_the_fen() {
        let r = Rule::Discount {
            least_cost_fen: 5_000,
            percent_off: 15,
        };
        assert_eq!(r.describe(), "满50享8.5折");
        // 39.90 × 2 = 79.80; 15% = 11.97 exactly.
        assert_eq!(r.discount(7_980), Ok(1_197));
        // 59.99: 15% = 8.9985 → 8.99 off, 51.00 to pay.
        assert_eq!(r.discount(5_999), Ok(899));
        assert!(r.discount(4_999).is_err());
        let seven = Rule::Discount {
            least_cost_fen: 0,
            percent_off: 30,
        };
        assert_eq!(seven.describe(), "7折");
        assert_eq!(seven.discount(1), Ok(0));
        assert_eq!(
            seven.discount(i64::MAX),
            Ok((i64::MAX as i128 * 30 / 100) as i64)
        );
    }

    #[test]
    fn yuan_reads_naturally() {
        assert_eq!(yuan(10_000), "100");
        assert_eq!(yuan(9_950), "99.5");
        assert_eq!(yuan(1), "0.01");
        assert_eq!(yuan(0), "0");
    }
}
