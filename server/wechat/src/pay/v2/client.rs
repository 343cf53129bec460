//! The v2 client: unifiedorder (JSAPI), orderquery, closeorder, refund (mutual TLS), refundquery,
//! downloadbill, and the page's pay parameters.
//!
//! Each answer is checked in this order: HTTP 200 → size cap → XML (no DOCTYPE/entities) →
//! `return_code` → `sign` present and valid → appid/mch_id ours → `result_code` (typed
//! [`PayErrCode`]). Nothing from an answer is used before its signature verified.
use std::collections::BTreeMap;

use tracing::instrument;

use crate::config::ConfigError;
use crate::http::{read_capped, HttpError, CONNECT_TIMEOUT, USER_AGENT};
use crate::pay::bill::{decode_bill, is_gzip, TradeBill, MAX_BILL_BYTES};
use crate::pay::notify::{NotifyError, PaymentNotice};
use crate::pay::{
    beijing_compact, parse_fen, v2_time_to_rfc3339, OrderStatus, PayErrCode, PrepayId,
    PrepayRequest, RefundNotice, RefundRequest, RefundResult, RefundStatus, TradeState,
};
use crate::xml::{parse_flat, to_xml, MAX_XML_BYTES};
use wechat_js::ChooseWxPay;

use super::sign;
use super::{PayV2Config, PayV2Error};

/// The v2 client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PayV2Client {
    cfg: PayV2Config,
    http: reqwest::Client,
    refund_http: Option<reqwest::Client>,
}

impl PayV2Client {
    /// A client without refund capability (add it with [`PayV2Client::with_refund_identity`]).
    pub fn new(cfg: PayV2Config, http: reqwest::Client) -> Self {
        Self {
            cfg,
            http,
            refund_http: None,
        }
    }

    /// Enables refunds: builds a mutual-TLS client with the merchant certificate.
    pub fn with_refund_identity(
        mut self,
        identity: reqwest::Identity,
    ) -> Result<Self, ConfigError> {
        let c = reqwest::Client::builder()
            .use_rustls_tls()
            .identity(identity)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| ConfigError::InvalidKey {
                what: "merchant client certificate",
                reason: e.without_url().to_string(),
            })?;
        self.refund_http = Some(c);
        Ok(self)
    }

    /// Enables refunds with a ready client (must present the merchant certificate).
    pub fn with_refund_client(mut self, client: reqwest::Client) -> Self {
        self.refund_http = Some(client);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &PayV2Config {
        &self.cfg
    }

    /// Signs `params` (adding appid, mch_id, nonce_str, sign_type, sign), posts them, verifies the answer.
    async fn call(
        &self,
        path: &str,
        params: BTreeMap<String, String>,
        client: &reqwest::Client,
    ) -> Result<BTreeMap<String, String>, PayV2Error> {
        let body = self
            .post_signed(path, params, client, MAX_XML_BYTES)
            .await?;
        self.check_answer(&body)
    }

    /// Signs `params` (adding appid, mch_id, nonce_str, sign_type, sign), posts them, and returns the
    /// raw answer body (HTTP 200 only, at most `limit` bytes). Nothing is verified.
    async fn post_signed(
        &self,
        path: &str,
        mut params: BTreeMap<String, String>,
        client: &reqwest::Client,
        limit: usize,
    ) -> Result<Vec<u8>, PayV2Error> {
        params.insert("appid".into(), self.cfg.appid.clone());
        params.insert("mch_id".into(), self.cfg.mchid.clone());
        params.insert("nonce_str".into(), crate::nonce());
        params.insert("sign_type".into(), self.cfg.sign_type.as_str().into());
        let sign = sign::v2_sign(
            params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            self.cfg.key.expose_str(),
            self.cfg.sign_type,
        );
        params.insert("sign".into(), sign);
        let xml = to_xml(&params)?;
        let resp = client
            .post(self.cfg.url(path))
            .timeout(self.cfg.timeout)
            .header(http::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .body(xml)
            .send()
            .await
            .map_err(HttpError::from)?;
        if resp.status() != http::StatusCode::OK {
            return Err(HttpError::Status {
                status: resp.status().as_u16(),
            }
            .into());
        }
        Ok(read_capped(resp, limit).await?)
    }

    /// Verifies a v2 answer body (public for tests and the sandbox).
    pub fn check_answer(&self, body: &[u8]) -> Result<BTreeMap<String, String>, PayV2Error> {
        let m = parse_flat(body, MAX_XML_BYTES)?;
        if m.get("return_code").map(String::as_str) != Some("SUCCESS") {
            let msg = m.get("return_msg").cloned().unwrap_or_default();
            return Err(PayV2Error::ReturnFail(msg.chars().take(200).collect()));
        }
        if m.get("sign").is_none_or(|s| s.is_empty()) {
            return Err(PayV2Error::MissingSignature);
        }
        if !sign::v2_verify(
            m.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            self.cfg.key.expose_str(),
            self.cfg.sign_type,
        ) {
            return Err(PayV2Error::BadSignature);
        }
        if m.get("appid").is_some_and(|a| *a != self.cfg.appid) {
            return Err(PayV2Error::AppIdMismatch);
        }
        if m.get("mch_id").is_some_and(|a| *a != self.cfg.mchid) {
            return Err(PayV2Error::MchIdMismatch);
        }
        if m.get("result_code").map(String::as_str) != Some("SUCCESS") {
            let err_code = m.get("err_code").cloned().unwrap_or_default();
            return Err(PayV2Error::Business {
                code: PayErrCode::from_wire(&err_code),
                err_code,
                err_code_des: m.get("err_code_des").cloned().unwrap_or_default(),
            });
        }
        Ok(m)
    }

    /// `POST /pay/unifiedorder` with `trade_type=JSAPI` → `prepay_id`.
    #[instrument(skip(self, req), fields(out_trade_no = %req.out_trade_no, total_fee = req.total_fee))]
    pub async fn unified_order(&self, req: &PrepayRequest) -> Result<PrepayId, PayV2Error> {
        req.validate().map_err(PayV2Error::InvalidRequest)?;
        if req.client_ip.is_empty() {
            return Err(PayV2Error::InvalidRequest(
                "client_ip (spbill_create_ip) is required by v2",
            ));
        }
        let mut p = BTreeMap::new();
        p.insert("body".into(), req.description.clone());
        p.insert("out_trade_no".into(), req.out_trade_no.clone());
        p.insert("total_fee".into(), req.total_fee.to_string());
        p.insert("spbill_create_ip".into(), req.client_ip.clone());
        p.insert("notify_url".into(), req.notify_url.clone());
        p.insert("trade_type".into(), "JSAPI".into());
        p.insert("openid".into(), req.openid.clone());
        if let Some(t) = req.time_expire {
            p.insert("time_expire".into(), beijing_compact(t));
        }
        if let Some(a) = req.attach.as_ref().filter(|a| !a.is_empty()) {
            p.insert("attach".into(), a.clone());
        }
        let m = self.call("/pay/unifiedorder", p, &self.http).await?;
        match m.get("prepay_id") {
            Some(id) if !id.is_empty() => Ok(PrepayId(id.clone())),
            _ => Err(PayV2Error::Malformed("missing prepay_id".into())),
        }
    }

    /// `POST /pay/orderquery` by out_trade_no.
    #[instrument(skip(self))]
    pub async fn order_query(&self, out_trade_no: &str) -> Result<OrderStatus, PayV2Error> {
        crate::pay::validate_out_no(out_trade_no, "out_trade_no")
            .map_err(PayV2Error::InvalidRequest)?;
        let mut p = BTreeMap::new();
        p.insert("out_trade_no".into(), out_trade_no.to_owned());
        let m = self.call("/pay/orderquery", p, &self.http).await?;
        let get = |k: &str| m.get(k).filter(|v| !v.is_empty()).cloned();
        let state = get("trade_state")
            .ok_or_else(|| PayV2Error::Malformed("missing trade_state".into()))?;
        if get("out_trade_no").as_deref() != Some(out_trade_no) {
            return Err(PayV2Error::Malformed(
                "answer is for another out_trade_no".into(),
            ));
        }
        let total_fee = match get("total_fee") {
            Some(s) => Some(
                parse_fen(&s)
                    .ok_or_else(|| PayV2Error::Malformed("total_fee is not an amount".into()))?,
            ),
            None => None,
        };
        Ok(OrderStatus {
            appid: self.cfg.appid.clone(),
            mchid: self.cfg.mchid.clone(),
            out_trade_no: out_trade_no.to_owned(),
            transaction_id: get("transaction_id"),
            trade_state: TradeState::from_wire(&state),
            trade_state_desc: get("trade_state_desc"),
            total_fee,
            openid: get("openid"),
            paid_at: get("time_end").and_then(|t| v2_time_to_rfc3339(&t)),
        })
    }

    /// `POST /pay/closeorder`.
    #[instrument(skip(self))]
    pub async fn close_order(&self, out_trade_no: &str) -> Result<(), PayV2Error> {
        crate::pay::validate_out_no(out_trade_no, "out_trade_no")
            .map_err(PayV2Error::InvalidRequest)?;
        let mut p = BTreeMap::new();
        p.insert("out_trade_no".into(), out_trade_no.to_owned());
        self.call("/pay/closeorder", p, &self.http).await?;
        Ok(())
    }

    /// `POST /secapi/pay/refund` over mutual TLS. WeChat processes refunds asynchronously: the result
    /// is [`RefundStatus::Processing`].
    #[instrument(skip(self, req), fields(out_trade_no = %req.out_trade_no, out_refund_no = %req.out_refund_no, refund_fee = req.refund_fee))]
    pub async fn refund(&self, req: &RefundRequest) -> Result<RefundResult, PayV2Error> {
        req.validate().map_err(PayV2Error::InvalidRequest)?;
        let client = self
            .refund_http
            .as_ref()
            .ok_or(PayV2Error::RefundNotConfigured)?;
        let mut p = BTreeMap::new();
        p.insert("out_trade_no".into(), req.out_trade_no.clone());
        p.insert("out_refund_no".into(), req.out_refund_no.clone());
        p.insert("total_fee".into(), req.total_fee.to_string());
        p.insert("refund_fee".into(), req.refund_fee.to_string());
        if let Some(r) = req.reason.as_ref().filter(|r| !r.is_empty()) {
            p.insert("refund_desc".into(), r.clone());
        }
        if let Some(u) = req.notify_url.as_ref().filter(|u| !u.is_empty()) {
            p.insert("notify_url".into(), u.clone());
        }
        let m = self.call("/secapi/pay/refund", p, client).await?;
        let refund_id = m
            .get("refund_id")
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| PayV2Error::Malformed("missing refund_id".into()))?;
        let refund_fee = m
            .get("refund_fee")
            .and_then(|s| parse_fen(s))
            .ok_or_else(|| PayV2Error::Malformed("missing refund_fee".into()))?;
        if m.get("out_refund_no").map(String::as_str) != Some(req.out_refund_no.as_str()) {
            return Err(PayV2Error::Malformed(
                "answer is for another out_refund_no".into(),
            ));
        }
        Ok(RefundResult {
            out_refund_no: req.out_refund_no.clone(),
            refund_id,
            status: RefundStatus::Processing,
            refund_fee,
        })
    }

    /// `POST /pay/refundquery` by out_refund_no (signed like every v2 call; no client certificate).
    /// The answer lists refunds as indexed fields (`out_refund_no_$n`, `refund_id_$n`,
    /// `refund_fee_$n`, `refund_status_$n` with `SUCCESS|REFUNDCLOSE|PROCESSING|CHANGE`); the entry
    /// whose `out_refund_no_$n` is ours is returned. An unknown refund is the business error
    /// `REFUNDNOTEXIST` ([`PayErrCode::OrderNotExist`]).
    #[instrument(skip(self))]
    pub async fn refund_query(&self, out_refund_no: &str) -> Result<RefundResult, PayV2Error> {
        crate::pay::validate_out_no(out_refund_no, "out_refund_no")
            .map_err(PayV2Error::InvalidRequest)?;
        let mut p = BTreeMap::new();
        p.insert("out_refund_no".into(), out_refund_no.to_owned());
        let m = self.call("/pay/refundquery", p, &self.http).await?;
        refund_entry(&m, out_refund_no)
    }

    /// `POST /pay/downloadbill` (`bill_type=ALL`, `tar_type=GZIP`): the day's trade bill, or `None`
    /// when WeChat has none (`return_code FAIL`, `No Bill Exist`: a day without trades). The file
    /// itself is the answer (gzip), not XML; like every v2 error answer, the XML one is unsigned.
    #[instrument(skip(self))]
    pub async fn download_bill(&self, date: time::Date) -> Result<Option<TradeBill>, PayV2Error> {
        let mut p = BTreeMap::new();
        p.insert(
            "bill_date".into(),
            format!(
                "{:04}{:02}{:02}",
                date.year(),
                u8::from(date.month()),
                date.day()
            ),
        );
        p.insert("bill_type".into(), "ALL".into());
        p.insert("tar_type".into(), "GZIP".into());
        let body = self
            .post_signed("/pay/downloadbill", p, &self.http, MAX_BILL_BYTES)
            .await?;
        if !is_gzip(&body) && body.trim_ascii_start().starts_with(b"<") {
            let m = parse_flat(&body, MAX_XML_BYTES)?;
            let msg = m.get("return_msg").cloned().unwrap_or_default();
            if m.get("return_code").map(String::as_str) == Some("FAIL") {
                if msg == "No Bill Exist" {
                    return Ok(None);
                }
                return Err(PayV2Error::ReturnFail(msg.chars().take(200).collect()));
            }
            return Err(PayV2Error::Malformed(
                "an XML answer where the bill was expected".into(),
            ));
        }
        Ok(Some(decode_bill(&body)?))
    }

    /// Parses a refund notification (see [`super::notify::parse_refund`]).
    pub fn parse_refund_notification(&self, body: &[u8]) -> Result<RefundNotice, NotifyError> {
        super::notify::parse_refund(body, &self.cfg)
    }

    /// `getBrandWCPayRequest` parameters, freshly signed with the API key.
    pub fn jsapi_pay_params(&self, prepay_id: &PrepayId) -> ChooseWxPay {
        sign::choose_wx_pay(
            &self.cfg.appid,
            prepay_id,
            self.cfg.key.expose_str(),
            self.cfg.sign_type,
        )
    }

    /// Verifies and parses a payment notification (see [`super::notify::parse`]).
    pub fn parse_notification(&self, body: &[u8]) -> Result<PaymentNotice, NotifyError> {
        super::notify::parse(body, &self.cfg)
    }
}

/// Most refund entries looked at in a refundquery answer (WeChat lists at most 50 per order).
const MAX_REFUND_ENTRIES: usize = 100;

/// Picks the entry for `out_refund_no` out of a verified refundquery answer.
fn refund_entry(
    m: &BTreeMap<String, String>,
    out_refund_no: &str,
) -> Result<RefundResult, PayV2Error> {
    for n in 0..MAX_REFUND_ENTRIES {
        let Some(no) = m.get(&format!("out_refund_no_{n}")) else {
            break;
        };
        if no != out_refund_no {
            continue;
        }
        let get = |k: &str| {
            m.get(&format!("{k}_{n}"))
                .filter(|v| !v.is_empty())
                .ok_or_else(|| PayV2Error::Malformed(format!("missing {k}_{n}")))
        };
        let refund_fee = parse_fen(get("refund_fee")?)
            .ok_or_else(|| PayV2Error::Malformed(format!("refund_fee_{n} is not an amount")))?;
        return Ok(RefundResult {
            out_refund_no: no.clone(),
            refund_id: get("refund_id")?.clone(),
            status: RefundStatus::from_wire(get("refund_status")?),
            refund_fee,
        });
    }
    Err(PayV2Error::Malformed(
        "answer has no entry for this out_refund_no".into(),
    ))
}
