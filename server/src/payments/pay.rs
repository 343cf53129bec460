//! Paying: the page's pay parameters, and payment notifications.

use super::events::{self, EventKind, Outcome};
use super::state::{apply_paid, Applied};
use super::{now, PaymentError, Payments, Result};
use wechat::{ChooseWxPay, PaymentNotice, PrepayId, PrepayRequest};

/// A prepay_id is valid for 2 hours; it is reused only while comfortably inside that.
const PREPAY_REUSE_SECS: i64 = 2 * 3600 - 10 * 60;

#[derive(sqlx::FromRow)]
struct PayRow {
    id: i64,
    order_no: String,
    status: String,
    total_fee: i64,
    expires_at: i64,
    prepay_id: Option<String>,
    prepay_expires_at: Option<i64>,
    openid: Option<String>,
    title: Option<String>,
    lines: i64,
}

impl Payments {
    /// The page's pay parameters for one of `user`'s unpaid orders.
    pub async fn pay_order(
        &self,
        user: Option<i64>,
        order_id: i64,
        client_ip: &str,
    ) -> Result<ChooseWxPay> {
        let Some(user) = user else {
            return Err(PaymentError::OrderNotFound);
        };
        let row: PayRow = crate::sql!(&self.pool, e => sqlx::query_as(
            "SELECT o.id, o.order_no, o.status, o.total_fee, o.expires_at, o.prepay_id, \
               o.prepay_expires_at, u.openid, \
               (SELECT product_name FROM order_lines WHERE order_id = o.id AND line_no = 0) AS title, \
               (SELECT COUNT(*) FROM order_lines WHERE order_id = o.id) AS lines \
             FROM orders o JOIN users u ON u.id = o.user_id WHERE o.id = $1 AND o.user_id = $2",
        )
        .bind(order_id)
        .bind(user)
        .fetch_optional(e).await)?
        .ok_or(PaymentError::OrderNotFound)?;
        if row.status != "unpaid" {
            return Err(PaymentError::InvalidState("订单不是待支付状态"));
        }
        let now = now();
        if row.expires_at <= now {
            return Err(PaymentError::InvalidState("订单已超时，请重新下单"));
        }
        let Some(openid) = row.openid else {
            return Err(PaymentError::NoIdentity);
        };
        // A second tap within the prepay_id's life signs the same prepay afresh: no new WeChat
        // order, and WeChat never sees the same out_trade_no with different parameters.
        if let (Some(id), Some(exp)) = (&row.prepay_id, row.prepay_expires_at) {
            if exp > now {
                let params = self
                    .gateway
                    .pay_params(&PrepayId(id.clone()))
                    .await
                    .map_err(|e| PaymentError::Unavailable(e.to_string()))?;
                return Ok(params);
            }
        }
        let title = row.title.unwrap_or_else(|| "商品".into());
        let description: String = if row.lines > 1 {
            format!("wxmall-{title}等{}件", row.lines)
        } else {
            format!("wxmall-{title}")
        }
        .chars()
        .take(127)
        .collect();
        let req = PrepayRequest {
            description,
            out_trade_no: row.order_no.clone(),
            total_fee: row.total_fee,
            openid,
            notify_url: self.cfg.notify_url.clone(),
            client_ip: client_ip.to_string(),
            time_expire: time::OffsetDateTime::from_unix_timestamp(row.expires_at).ok(),
            attach: None,
        };
        let (prepay_id, params) = match self.gateway.prepay(&req).await {
            Ok(ok) => ok,
            Err(e) if e.is_order_paid() => {
                self.sync(&row.order_no).await?;
                return Err(PaymentError::InvalidState("订单已支付"));
            }
            Err(e) => {
                events::record(
                    &self.pool,
                    Some(row.id),
                    EventKind::Prepay,
                    Outcome::Info,
                    &format!("prepay failed: {e}"),
                )
                .await?;
                return Err(PaymentError::Unavailable(e.to_string()));
            }
        };
        // The order may have been cancelled (or paid) while WeChat answered: then no pay
        // parameters leave the shop.
        let kept = crate::sql!(&self.pool, e => sqlx::query(
            "UPDATE orders SET prepay_id = $1, prepay_expires_at = $2 WHERE id = $3 AND status = 'unpaid'",
        )
        .bind(prepay_id.as_str())
        .bind(now + PREPAY_REUSE_SECS)
        .bind(row.id)
        .execute(e).await.map(crate::db::Done::from))?;
        if kept.rows_affected() != 1 {
            events::record(
                &self.pool,
                Some(row.id),
                EventKind::Prepay,
                Outcome::Info,
                &format!("prepay_id {prepay_id} not used: the order is no longer unpaid"),
            )
            .await?;
            return Err(PaymentError::InvalidState("订单状态已变化，请刷新"));
        }
        events::record(
            &self.pool,
            Some(row.id),
            EventKind::Prepay,
            Outcome::Info,
            &format!("prepay_id {prepay_id}"),
        )
        .await?;
        Ok(params)
    }

    /// Applies a verified payment notification (the route has checked appid and mchid).
    /// A payment the order cannot take is refunded in full.
    pub async fn on_notification(
        &self,
        notice: &PaymentNotice,
        kind: EventKind,
    ) -> Result<Applied> {
        self.apply(
            &notice.out_trade_no,
            &notice.transaction_id,
            notice.total_fee,
            kind,
        )
        .await
    }

    /// `unpaid → paid` from a verified report (notification or query); money for an order
    /// that cannot take it goes back automatically.
    pub(super) async fn apply(
        &self,
        order_no: &str,
        transaction_id: &str,
        total_fee: i64,
        kind: EventKind,
    ) -> Result<Applied> {
        let (applied, order_id) = apply_paid(
            &self.pool,
            order_no,
            transaction_id,
            total_fee,
            kind,
            self.cfg.sandbox,
        )
        .await?;
        // Never delays the answer to WeChat's notification: sent in the background.
        if let (Applied::Accepted, Some(id), Some(notice)) = (&applied, order_id, &self.paid_notice)
        {
            notice.spawn_send(id);
        }
        // Exactly once: only the notification that moved the order to paid gets here (a lease
        // on the order guards the sweeper's retry too).
        if let (Applied::Accepted, Some(id), Some(coupons)) = (&applied, order_id, &self.coupons) {
            coupons.spawn_redeem(id);
        }
        if let Applied::Unexpected { order_id, .. } = &applied {
            self.refund_unexpected(*order_id, order_no, transaction_id, total_fee)
                .await?;
        }
        Ok(applied)
    }
}
