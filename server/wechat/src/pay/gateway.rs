//! [`PayGateway`]: one interface over Pay v2 and v3, so the shop holds an `Arc<dyn PayGateway>` chosen
//! by configuration and never branches on the version.
use async_trait::async_trait;
use http::HeaderMap;

use crate::pay::bill::TradeBill;
use crate::pay::notify::{ApiVersion, NotifyAnswer, NotifyError, PaymentNotice};
use crate::pay::v2::{PayV2Client, PayV2Error};
use crate::pay::v3::{PayV3Client, PayV3Error};
use crate::pay::{
    OrderStatus, PayErrCode, PrepayId, PrepayRequest, RefundNotice, RefundRequest, RefundResult,
};
use wechat_js::ChooseWxPay;

/// A failed payment call, from either version.
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    /// From the v2 client.
    #[error(transparent)]
    V2(#[from] PayV2Error),
    /// From the v3 client.
    #[error(transparent)]
    V3(#[from] PayV3Error),
}

impl PayError {
    /// The typed business code, if WeChat answered with one.
    pub fn code(&self) -> Option<&PayErrCode> {
        match self {
            Self::V2(e) => e.code(),
            Self::V3(e) => e.code(),
        }
    }

    /// The typed business code, only if the answer carrying it was itself verified: v2 business
    /// errors always are (`sign` is checked before `result_code`), v3 errors only when their
    /// `Wechatpay-*` signature verified. Act on a code (mark an order closed, treat it as paid…)
    /// only through this; an unverified code may come from anyone on the path — retry or query.
    pub fn verified_code(&self) -> Option<&PayErrCode> {
        match self {
            Self::V2(PayV2Error::Business { code, .. }) => Some(code),
            Self::V3(PayV3Error::Api {
                code,
                verified: true,
                ..
            }) => Some(code),
            _ => None,
        }
    }

    /// WeChat says (in a verified answer) the order — or, for refund queries, the refund — does
    /// not exist.
    pub fn is_order_not_exist(&self) -> bool {
        self.verified_code() == Some(&PayErrCode::OrderNotExist)
    }

    /// WeChat says (in a verified answer) the order is already paid.
    pub fn is_order_paid(&self) -> bool {
        self.verified_code() == Some(&PayErrCode::OrderPaid)
    }

    /// WeChat says (in a verified answer) the order is closed.
    pub fn is_order_closed(&self) -> bool {
        self.verified_code() == Some(&PayErrCode::OrderClosed)
    }

    /// A timeout: the outcome is unknown — query before acting.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            Self::V2(PayV2Error::Http(crate::http::HttpError::Timeout))
                | Self::V3(PayV3Error::Http(crate::http::HttpError::Timeout))
        )
    }
}

/// What the shop needs from WeChat Pay, whatever the API version.
#[async_trait]
pub trait PayGateway: Send + Sync {
    /// Which API this gateway speaks.
    fn version(&self) -> ApiVersion;

    /// Creates the WeChat order and returns the page's freshly signed pay parameters.
    async fn prepay(&self, req: &PrepayRequest) -> Result<(PrepayId, ChooseWxPay), PayError>;

    /// Signs page parameters afresh for an existing `prepay_id` (valid 2 hours): a user who comes
    /// back to pay the same order needs no new prepay.
    async fn pay_params(&self, prepay_id: &PrepayId) -> Result<ChooseWxPay, PayError>;

    /// Queries an order by the shop's number.
    async fn query(&self, out_trade_no: &str) -> Result<OrderStatus, PayError>;

    /// Closes an unpaid order (before cancelling it in the shop).
    async fn close(&self, out_trade_no: &str) -> Result<(), PayError>;

    /// Requests a refund.
    async fn refund(&self, req: &RefundRequest) -> Result<RefundResult, PayError>;

    /// Verifies and parses a payment notification (headers are ignored by v2).
    async fn parse_notification(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<PaymentNotice, NotifyError>;

    /// Queries a refund by the shop's refund number.
    async fn query_refund(&self, out_refund_no: &str) -> Result<RefundResult, PayError>;

    /// Verifies and parses a refund notification (headers are ignored by v2).
    async fn parse_refund_notification(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<RefundNotice, NotifyError>;

    /// The trade bill of a day (Beijing date), `None` when WeChat has none (a day without trades).
    /// WeChat produces a day's bill the next morning (after 9:00 Beijing time).
    async fn trade_bill(&self, date: time::Date) -> Result<Option<TradeBill>, PayError>;

    /// The answer that acknowledges a notification.
    fn notification_success(&self) -> NotifyAnswer;

    /// The answer that refuses a notification (WeChat retries).
    fn notification_failure(&self, message: &str) -> NotifyAnswer;

    /// Pay v3's verifier of WeChat's signatures (its 微信支付公钥 and platform certificates),
    /// for checks such as `wxmall doctor`; `None` for Pay v2, which has none.
    fn v3_verifier(&self) -> Option<std::sync::Arc<crate::pay::v3::certs::Verifier>> {
        None
    }
}

#[async_trait]
impl PayGateway for PayV2Client {
    fn version(&self) -> ApiVersion {
        ApiVersion::V2
    }
    async fn prepay(&self, req: &PrepayRequest) -> Result<(PrepayId, ChooseWxPay), PayError> {
        let id = self.unified_order(req).await?;
        let params = self.jsapi_pay_params(&id);
        Ok((id, params))
    }
    async fn pay_params(&self, prepay_id: &PrepayId) -> Result<ChooseWxPay, PayError> {
        Ok(self.jsapi_pay_params(prepay_id))
    }
    async fn query(&self, out_trade_no: &str) -> Result<OrderStatus, PayError> {
        Ok(self.order_query(out_trade_no).await?)
    }
    async fn close(&self, out_trade_no: &str) -> Result<(), PayError> {
        Ok(self.close_order(out_trade_no).await?)
    }
    async fn refund(&self, req: &RefundRequest) -> Result<RefundResult, PayError> {
        Ok(PayV2Client::refund(self, req).await?)
    }
    async fn parse_notification(
        &self,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<PaymentNotice, NotifyError> {
        PayV2Client::parse_notification(self, body)
    }
    async fn query_refund(&self, out_refund_no: &str) -> Result<RefundResult, PayError> {
        Ok(self.refund_query(out_refund_no).await?)
    }
    async fn parse_refund_notification(
        &self,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<RefundNotice, NotifyError> {
        PayV2Client::parse_refund_notification(self, body)
    }
    async fn trade_bill(&self, date: time::Date) -> Result<Option<TradeBill>, PayError> {
        Ok(self.download_bill(date).await?)
    }
    fn notification_success(&self) -> NotifyAnswer {
        crate::pay::v2::notify::success()
    }
    fn notification_failure(&self, message: &str) -> NotifyAnswer {
        crate::pay::v2::notify::failure(message)
    }
}

#[async_trait]
impl PayGateway for PayV3Client {
    fn version(&self) -> ApiVersion {
        ApiVersion::V3
    }
    async fn prepay(&self, req: &PrepayRequest) -> Result<(PrepayId, ChooseWxPay), PayError> {
        let id = self.prepay_jsapi(req).await?;
        let params = self.jsapi_pay_params_async(&id).await?;
        Ok((id, params))
    }
    async fn pay_params(&self, prepay_id: &PrepayId) -> Result<ChooseWxPay, PayError> {
        Ok(self.jsapi_pay_params_async(prepay_id).await?)
    }
    async fn query(&self, out_trade_no: &str) -> Result<OrderStatus, PayError> {
        Ok(self.query_by_out_trade_no(out_trade_no).await?)
    }
    async fn close(&self, out_trade_no: &str) -> Result<(), PayError> {
        Ok(PayV3Client::close(self, out_trade_no).await?)
    }
    async fn refund(&self, req: &RefundRequest) -> Result<RefundResult, PayError> {
        Ok(PayV3Client::refund(self, req).await?)
    }
    async fn parse_notification(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<PaymentNotice, NotifyError> {
        PayV3Client::parse_notification(self, headers, body).await
    }
    async fn query_refund(&self, out_refund_no: &str) -> Result<RefundResult, PayError> {
        Ok(PayV3Client::query_refund(self, out_refund_no).await?)
    }
    async fn parse_refund_notification(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<RefundNotice, NotifyError> {
        PayV3Client::parse_refund_notification(self, headers, body).await
    }
    async fn trade_bill(&self, date: time::Date) -> Result<Option<TradeBill>, PayError> {
        Ok(PayV3Client::trade_bill(self, date).await?)
    }
    fn notification_success(&self) -> NotifyAnswer {
        crate::pay::v3::notify::success()
    }
    fn notification_failure(&self, message: &str) -> NotifyAnswer {
        crate::pay::v3::notify::failure(message)
    }
    fn v3_verifier(&self) -> Option<std::sync::Arc<crate::pay::v3::certs::Verifier>> {
        Some(self.verifier().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v3(code: &str, verified: bool) -> PayError {
        PayError::V3(PayV3Error::Api {
            status: 404,
            code: PayErrCode::from_wire(code),
            message: "m".into(),
            verified,
        })
    }

    #[test]
    fn unverified_v3_codes_are_not_acted_on() {
        let e = v3("ORDER_NOT_EXIST", false);
        assert_eq!(e.code(), Some(&PayErrCode::OrderNotExist));
        assert_eq!(e.verified_code(), None);
        assert!(!e.is_order_not_exist());
        assert!(v3("ORDER_NOT_EXIST", true).is_order_not_exist());
        assert!(!v3("ORDERPAID", false).is_order_paid());
        assert!(v3("ORDERPAID", true).is_order_paid());
        assert!(!v3("ORDER_CLOSED", false).is_order_closed());
        assert!(v3("ORDER_CLOSED", true).is_order_closed());
    }

    #[test]
    fn v2_business_codes_are_verified() {
        let e = PayError::V2(PayV2Error::Business {
            code: PayErrCode::OrderClosed,
            err_code: "ORDERCLOSED".into(),
            err_code_des: "closed".into(),
        });
        assert_eq!(e.verified_code(), Some(&PayErrCode::OrderClosed));
        assert!(e.is_order_closed() && !e.is_order_paid() && !e.is_order_not_exist());
        let e = PayError::V2(PayV2Error::BadSignature);
        assert_eq!(e.verified_code(), None);
    }
}
