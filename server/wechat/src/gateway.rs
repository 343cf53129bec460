//! [`PayGateway`]: one interface over Pay v2 and v3, so the shop holds an `Arc<dyn PayGateway>` chosen
//! by configuration and never branches on the version.
use async_trait::async_trait;
use http::HeaderMap;

use crate::jsapi::PayParams;
use crate::notify::{ApiVersion, NotifyAnswer, NotifyError, PaymentNotice};
use crate::pay::{OrderStatus, PayErrCode, PrepayId, PrepayRequest, RefundRequest, RefundResult};
use crate::pay_v2::{PayV2Client, PayV2Error};
use crate::pay_v3::{PayV3Client, PayV3Error};

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

    /// WeChat says the order does not exist.
    pub fn is_order_not_exist(&self) -> bool {
        self.code() == Some(&PayErrCode::OrderNotExist)
    }

    /// WeChat says the order is already paid.
    pub fn is_order_paid(&self) -> bool {
        self.code() == Some(&PayErrCode::OrderPaid)
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
    async fn prepay(&self, req: &PrepayRequest) -> Result<(PrepayId, PayParams), PayError>;

    /// Signs page parameters afresh for an existing `prepay_id` (valid 2 hours): a user who comes
    /// back to pay the same order needs no new prepay.
    async fn pay_params(&self, prepay_id: &PrepayId) -> Result<PayParams, PayError>;

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

    /// The answer that acknowledges a notification.
    fn notification_success(&self) -> NotifyAnswer;

    /// The answer that refuses a notification (WeChat retries).
    fn notification_failure(&self, message: &str) -> NotifyAnswer;
}

#[async_trait]
impl PayGateway for PayV2Client {
    fn version(&self) -> ApiVersion {
        ApiVersion::V2
    }
    async fn prepay(&self, req: &PrepayRequest) -> Result<(PrepayId, PayParams), PayError> {
        let id = self.unified_order(req).await?;
        let params = self.jsapi_pay_params(&id);
        Ok((id, params))
    }
    async fn pay_params(&self, prepay_id: &PrepayId) -> Result<PayParams, PayError> {
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
    fn notification_success(&self) -> NotifyAnswer {
        crate::notify::v2::success()
    }
    fn notification_failure(&self, message: &str) -> NotifyAnswer {
        crate::notify::v2::failure(message)
    }
}

#[async_trait]
impl PayGateway for PayV3Client {
    fn version(&self) -> ApiVersion {
        ApiVersion::V3
    }
    async fn prepay(&self, req: &PrepayRequest) -> Result<(PrepayId, PayParams), PayError> {
        let id = self.prepay_jsapi(req).await?;
        let params = self.jsapi_pay_params_async(&id).await?;
        Ok((id, params))
    }
    async fn pay_params(&self, prepay_id: &PrepayId) -> Result<PayParams, PayError> {
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
    fn notification_success(&self) -> NotifyAnswer {
        crate::notify::v3::success()
    }
    fn notification_failure(&self, message: &str) -> NotifyAnswer {
        crate::notify::v3::failure(message)
    }
}
