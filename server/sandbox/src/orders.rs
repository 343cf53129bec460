//! Order life cycle shared by Pay v2 and v3: create (idempotent per out_trade_no), pay,
//! close, refund.

use std::time::Duration;

use crate::crypto::{random_digits, random_hex_upper, V2SignType};
use crate::state::{PayApi, Refund, Sandbox, TradeState, Transaction};
use crate::util::{compact_beijing, rfc3339_beijing};
use crate::SandboxError;

pub(crate) struct NewOrder {
    pub api: PayApi,
    pub out_trade_no: String,
    pub description: String,
    pub total: i64,
    pub openid: String,
    pub notify_url: String,
    pub attach: Option<String>,
    pub time_expire_ms: Option<i64>,
    pub sign_type: Option<V2SignType>,
}

/// A refund request, from either API.
pub(crate) struct RefundReq {
    pub api: PayApi,
    pub out_trade_no: String,
    pub out_refund_no: String,
    pub total: i64,
    pub refund: i64,
    pub reason: Option<String>,
    pub notify_url: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CreateErr {
    Paid,
    Closed,
    Duplicate,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OrderErr {
    NotFound,
    Paid,
    Closed,
    NotPaid,
    AmountMismatch,
    RefundTooLarge,
    RefundConflict,
    Expired,
}

fn fingerprint(o: &NewOrder) -> String {
    format!("{}|{}|{}|{}", o.description, o.total, o.openid, o.api as u8)
}

fn new_prepay_id(now: i64) -> String {
    format!(
        "wx{}{}0000",
        compact_beijing(now),
        random_hex_upper(16).to_lowercase()
    )
}

impl Sandbox {
    /// Creates the order, or answers the existing prepay for an identical repeat.
    pub(crate) fn create_order(&self, o: NewOrder) -> Result<Transaction, CreateErr> {
        let now = self.now_ms();
        let ttl = self.opts().prepay_ttl.as_millis() as i64;
        let fp = fingerprint(&o);
        let mut st = self.lock();
        if let Some(t) = st.transactions.get_mut(&o.out_trade_no) {
            match t.state {
                TradeState::Success | TradeState::Refund => return Err(CreateErr::Paid),
                TradeState::Closed => return Err(CreateErr::Closed),
                TradeState::NotPay => {}
            }
            if t.fingerprint != fp {
                return Err(CreateErr::Duplicate);
            }
            t.notify_url = o.notify_url;
            t.time_expire_ms = o.time_expire_ms.or(t.time_expire_ms);
            t.sign_type = o.sign_type;
            if t.prepay_expires_at_ms > now {
                return Ok(t.clone());
            }
            let old = std::mem::replace(&mut t.prepay_id, new_prepay_id(now));
            t.prepay_expires_at_ms = now + ttl;
            let t = t.clone();
            st.prepay_index.remove(&old);
            st.prepay_index
                .insert(t.prepay_id.clone(), t.out_trade_no.clone());
            return Ok(t);
        }
        let t = Transaction {
            api: o.api,
            appid: self.creds().appid.clone(),
            mchid: self.creds().mchid.clone(),
            out_trade_no: o.out_trade_no.clone(),
            description: o.description,
            total: o.total,
            currency: "CNY".into(),
            openid: o.openid,
            notify_url: o.notify_url,
            attach: o.attach,
            prepay_id: new_prepay_id(now),
            sign_type: o.sign_type,
            state: TradeState::NotPay,
            transaction_id: None,
            paid_at_ms: None,
            created_at_ms: now,
            prepay_expires_at_ms: now + ttl,
            time_expire_ms: o.time_expire_ms,
            refunds: Vec::new(),
            close_requests: 0,
            fingerprint: fp,
        };
        st.prepay_index
            .insert(t.prepay_id.clone(), t.out_trade_no.clone());
        st.transactions.insert(t.out_trade_no.clone(), t.clone());
        Ok(t)
    }

    pub(crate) fn find_order(
        &self,
        out_trade_no: Option<&str>,
        transaction_id: Option<&str>,
    ) -> Option<Transaction> {
        let st = self.lock();
        if let Some(id) = transaction_id.filter(|s| !s.is_empty()) {
            let no = st.txid_index.get(id)?;
            return st.transactions.get(no).cloned();
        }
        st.transactions.get(out_trade_no?).cloned()
    }

    pub(crate) fn close_order(&self, out_trade_no: &str) -> Result<(), OrderErr> {
        let mut st = self.lock();
        let t = st
            .transactions
            .get_mut(out_trade_no)
            .ok_or(OrderErr::NotFound)?;
        t.close_requests += 1;
        match t.state {
            TradeState::Success | TradeState::Refund => Err(OrderErr::Paid),
            TradeState::Closed => Err(OrderErr::Closed),
            TradeState::NotPay => {
                t.state = TradeState::Closed;
                Ok(())
            }
        }
    }

    /// Marks the order paid by its payer (what pressing 支付 does).
    pub(crate) fn mark_paid(&self, out_trade_no: &str) -> Result<Transaction, OrderErr> {
        let now = self.now_ms();
        let mut st = self.lock();
        let t = st
            .transactions
            .get_mut(out_trade_no)
            .ok_or(OrderErr::NotFound)?;
        match t.state {
            TradeState::Success | TradeState::Refund => return Err(OrderErr::Paid),
            TradeState::Closed => return Err(OrderErr::Closed),
            TradeState::NotPay => {}
        }
        if t.time_expire_ms.is_some_and(|e| e <= now) {
            return Err(OrderErr::Expired);
        }
        let id = format!(
            "42000{}{}{}",
            random_digits(5),
            &compact_beijing(now)[..8],
            random_digits(10)
        );
        t.state = TradeState::Success;
        t.transaction_id = Some(id.clone());
        t.paid_at_ms = Some(now);
        let t = t.clone();
        st.txid_index.insert(id, t.out_trade_no.clone());
        Ok(t)
    }

    /// Requests a refund of `refund` fen of an order: recorded as `PROCESSING` (money reserved),
    /// settled later by a spawned task ([`SandboxOptions::refund_settle_delay`]). Idempotent per
    /// out_refund_no: the same request again answers the same refund; other amounts under the same
    /// number are a conflict.
    ///
    /// [`SandboxOptions::refund_settle_delay`]: crate::SandboxOptions::refund_settle_delay
    pub(crate) fn refund_order(&self, req: RefundReq) -> Result<(Transaction, Refund), OrderErr> {
        let now = self.now_ms();
        let mut guard = self.lock();
        let st = &mut *guard;
        let t = st
            .transactions
            .get_mut(&req.out_trade_no)
            .ok_or(OrderErr::NotFound)?;
        if let Some(r) = t
            .refunds
            .iter()
            .find(|r| r.out_refund_no == req.out_refund_no)
        {
            if r.refund == req.refund && r.total == req.total {
                return Ok((t.clone(), r.clone()));
            }
            return Err(OrderErr::RefundConflict);
        }
        // An out_refund_no is unique per merchant, not per order.
        if st.transactions.values().any(|o| {
            o.out_trade_no != req.out_trade_no
                && o.refunds
                    .iter()
                    .any(|r| r.out_refund_no == req.out_refund_no)
        }) {
            return Err(OrderErr::RefundConflict);
        }
        let t = st
            .transactions
            .get_mut(&req.out_trade_no)
            .ok_or(OrderErr::NotFound)?;
        match t.state {
            TradeState::NotPay => return Err(OrderErr::NotPaid),
            TradeState::Closed => return Err(OrderErr::Closed),
            _ => {}
        }
        if req.total != t.total {
            return Err(OrderErr::AmountMismatch);
        }
        if req.refund <= 0 || req.refund > t.total - t.refunded() {
            return Err(OrderErr::RefundTooLarge);
        }
        let r = Refund {
            api: req.api,
            out_refund_no: req.out_refund_no.clone(),
            refund_id: format!("5030{}", random_digits(25)),
            refund: req.refund,
            total: req.total,
            reason: req.reason,
            status: "PROCESSING".into(),
            create_time: rfc3339_beijing(now),
            success_time: None,
            notify_url: req.notify_url,
            created_at_ms: now,
            success_at_ms: None,
        };
        t.refunds.push(r.clone());
        t.state = TradeState::Refund;
        let t = t.clone();
        if st.next_refunds_abnormal > 0 {
            st.next_refunds_abnormal -= 1;
            st.abnormal_refunds.insert(r.out_refund_no.clone());
        }
        drop(guard);
        self.schedule_refund_settlement(&t.out_trade_no, &r.out_refund_no);
        Ok((t, r))
    }

    fn schedule_refund_settlement(&self, out_trade_no: &str, out_refund_no: &str) {
        let sb = self.clone();
        let (no, rno) = (out_trade_no.to_string(), out_refund_no.to_string());
        let delay = self.opts().refund_settle_delay;
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some((t, r)) = sb.settle_refund(&no, &rno) {
                tracing::info!(target: "wechat_sandbox", out_trade_no = %no, out_refund_no = %rno, status = %r.status, "refund settled");
                if r.notify_url.is_some() {
                    sb.start_refund_notification(&t, &r);
                }
            }
        });
    }

    /// `PROCESSING` → `SUCCESS` (or `ABNORMAL` when so marked). None if not processing.
    pub(crate) fn settle_refund(
        &self,
        out_trade_no: &str,
        out_refund_no: &str,
    ) -> Option<(Transaction, Refund)> {
        let now = self.now_ms();
        let mut guard = self.lock();
        let st = &mut *guard;
        let abnormal = st.abnormal_refunds.remove(out_refund_no);
        let t = st.transactions.get_mut(out_trade_no)?;
        let r = t
            .refunds
            .iter_mut()
            .find(|r| r.out_refund_no == out_refund_no)?;
        if r.status != "PROCESSING" {
            return None;
        }
        if abnormal {
            r.status = "ABNORMAL".into();
        } else {
            r.status = "SUCCESS".into();
            r.success_time = Some(rfc3339_beijing(now));
            r.success_at_ms = Some(now);
        }
        let r = r.clone();
        Some((t.clone(), r))
    }

    /// The refund with this merchant refund number, with its transaction.
    pub(crate) fn find_refund(&self, out_refund_no: &str) -> Option<(Transaction, Refund)> {
        self.find_refund_by(|r| r.out_refund_no == out_refund_no)
    }

    /// The first refund matching `pred`, with its transaction.
    pub(crate) fn find_refund_by(
        &self,
        pred: impl Fn(&Refund) -> bool,
    ) -> Option<(Transaction, Refund)> {
        let st = self.lock();
        st.transactions.values().find_map(|t| {
            let r = t.refunds.iter().find(|r| pred(r))?.clone();
            Some((t.clone(), r))
        })
    }

    /// Plays the payer pressing 支付: marks the order paid, starts the notification (with its
    /// retries and duplicate) and waits for the first delivery attempt to finish.
    pub async fn pay(&self, out_trade_no: &str) -> Result<Transaction, SandboxError> {
        let t = self.mark_paid(out_trade_no).map_err(|e| match e {
            OrderErr::NotFound => SandboxError::UnknownOrder(out_trade_no.to_string()),
            other => SandboxError::InvalidState(format!("{other:?}")),
        })?;
        let first = self.start_notification(&t);
        let wait = self.opts().notify_timeout + Duration::from_secs(1);
        let _ = tokio::time::timeout(wait, first).await;
        Ok(t)
    }
}
