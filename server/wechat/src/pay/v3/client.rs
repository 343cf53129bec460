//! The v3 client: JSAPI prepay, query, close, refund, refund query, trade bill, and the page's pay
//! parameters.
//!
//! Every request carries
//! `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",timestamp="…",serial_no="…",signature="…"`
//! with the signature over `METHOD\nPATH_WITH_QUERY\nTIMESTAMP\nNONCE\nBODY\n`, where the path is the
//! one WeChat sees — the part after the configured base, starting with `/v3/`. The body is serialized
//! once and the very bytes signed are the bytes sent. Every answer's signature is verified over the raw
//! body bytes before anything is parsed; an answer without signature headers is refused.
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};
use tracing::instrument;

use crate::config::{BaseUrl, ConfigError};
use crate::http::{encode, json_error, HttpError};
use crate::pay::bill::{decode_bill, BillError, TradeBill, MAX_BILL_BYTES};
use crate::pay::notify::{NotifyError, PaymentNotice};
use crate::pay::{
    beijing_rfc3339, OrderStatus, PayErrCode, PrepayId, PrepayRequest, RefundNotice, RefundRequest,
    RefundResult, RefundStatus, TradeState,
};
use wechat_js::ChooseWxPay;

use super::aead::ApiV3Key;
use super::certs::{CertDownloader, Verifier, VerifyError};
use super::notify::{V3NotifyConfig, V3Transaction};
use super::request::{send_signed, send_signed_capped, ErrorBody, RequestSigner};
use super::sign::MerchantKey;
use super::PayV3Config;

/// A failed v3 call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayV3Error {
    /// The request was refused locally (e.g. `total_fee` ≤ 0) — nothing was sent.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// Transport failure.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// WeChat's answer failed signature verification: it must not be trusted.
    #[error("answer verification failed: {0}")]
    Verify(#[from] VerifyError),
    /// WeChat answered with an error (`{"code", "message"}`). `verified` says whether the error answer
    /// itself carried a valid signature — act on unverified errors only by retrying or querying.
    #[error("WeChat Pay error (HTTP {status}) {code:?}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Typed `code`.
        code: PayErrCode,
        /// WeChat's message.
        message: String,
        /// Whether the error answer's signature verified.
        verified: bool,
    },
    /// The answer could not be understood.
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// The answer is for another appid.
    #[error("answer is for another appid")]
    AppIdMismatch,
    /// The answer is for another merchant.
    #[error("answer is for another mchid")]
    MchIdMismatch,
    /// The trade bill is unusable (e.g. its hash is not the signed one).
    #[error(transparent)]
    Bill(#[from] BillError),
}

impl PayV3Error {
    /// The typed business code, if WeChat answered with one.
    pub fn code(&self) -> Option<&PayErrCode> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// The v3 client. Cheap to clone; share it.
#[derive(Clone)]
pub struct PayV3Client {
    appid: String,
    mchid: String,
    signer: RequestSigner,
    key: Arc<MerchantKey>,
    apiv3_key: ApiV3Key,
    base: BaseUrl,
    http: reqwest::Client,
    timeout: Duration,
    verifier: Arc<Verifier>,
}

impl fmt::Debug for PayV3Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PayV3Client")
            .field("appid", &self.appid)
            .field("mchid", &self.mchid)
            .field("base", &self.base)
            .field("verifier", &self.verifier)
            .finish_non_exhaustive()
    }
}

impl PayV3Client {
    /// A client verifying answers with `verifier` (see [`Verifier::builder`]).
    pub fn new(cfg: PayV3Config, http: reqwest::Client, verifier: Arc<Verifier>) -> Self {
        Self {
            signer: RequestSigner::new(
                cfg.mchid.clone(),
                cfg.merchant_serial.clone(),
                cfg.private_key.clone(),
            ),
            appid: cfg.appid,
            mchid: cfg.mchid,
            key: cfg.private_key,
            apiv3_key: cfg.apiv3_key,
            base: cfg.base,
            http,
            timeout: cfg.timeout,
            verifier,
        }
    }

    /// A client that downloads platform certificates itself (refreshed every 12 h and on unknown
    /// serials) and, if given, also trusts a WeChat Pay public key `(PUB_KEY_ID_…, PEM)`.
    pub fn with_downloaded_certificates(
        cfg: PayV3Config,
        http: reqwest::Client,
        wechatpay_public_key: Option<(&str, &str)>,
    ) -> Result<Self, ConfigError> {
        let mut b = Verifier::builder().downloader(CertDownloader::new(&cfg, http.clone()));
        if let Some((id, pem)) = wechatpay_public_key {
            b = b.wechatpay_public_key(id, pem)?;
        }
        Ok(Self::new(cfg, http, Arc::new(b.build())))
    }

    /// The verifier (for [`super::notify::parse`]).
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }

    /// The configured appid.
    pub fn appid(&self) -> &str {
        &self.appid
    }

    /// What [`super::notify::parse`] needs besides the verifier.
    pub fn notify_config(&self) -> V3NotifyConfig {
        V3NotifyConfig {
            appid: self.appid.clone(),
            mchid: self.mchid.clone(),
            apiv3_key: self.apiv3_key.clone(),
        }
    }

    /// Sends a signed request and verifies the answer. 2xx → verified body; otherwise a typed error.
    async fn call(
        &self,
        method: Method,
        path_with_query: &str,
        body: Option<&str>,
    ) -> Result<(StatusCode, Vec<u8>), PayV3Error> {
        let (status, headers, bytes) = send_signed(
            &self.http,
            &self.base,
            &self.signer,
            self.timeout,
            method,
            path_with_query,
            body,
        )
        .await?;
        if status.is_success() {
            self.verifier.verify(&headers, &bytes).await?;
            return Ok((status, bytes));
        }
        let verified = self.verifier.verify_cached(&headers, &bytes).is_ok();
        let err: ErrorBody = serde_json::from_slice(&bytes).unwrap_or_default();
        if err.code.is_empty() {
            return Err(HttpError::Status {
                status: status.as_u16(),
            }
            .into());
        }
        Err(PayV3Error::Api {
            status: status.as_u16(),
            code: PayErrCode::from_wire(&err.code),
            message: err.message.chars().take(200).collect(),
            verified,
        })
    }

    /// `POST /v3/pay/transactions/jsapi` → `prepay_id`.
    #[instrument(skip(self, req), fields(out_trade_no = %req.out_trade_no, total_fee = req.total_fee))]
    pub async fn prepay_jsapi(&self, req: &PrepayRequest) -> Result<PrepayId, PayV3Error> {
        req.validate().map_err(PayV3Error::InvalidRequest)?;
        #[derive(serde::Serialize)]
        struct Amount<'a> {
            total: i64,
            currency: &'a str,
        }
        #[derive(serde::Serialize)]
        struct Payer<'a> {
            openid: &'a str,
        }
        #[derive(serde::Serialize)]
        struct Scene<'a> {
            payer_client_ip: &'a str,
        }
        #[derive(serde::Serialize)]
        struct Body<'a> {
            appid: &'a str,
            mchid: &'a str,
            description: &'a str,
            out_trade_no: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            time_expire: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            attach: Option<&'a str>,
            notify_url: &'a str,
            amount: Amount<'a>,
            payer: Payer<'a>,
            #[serde(skip_serializing_if = "Option::is_none")]
            scene_info: Option<Scene<'a>>,
        }
        let body = Body {
            appid: &self.appid,
            mchid: &self.mchid,
            description: &req.description,
            out_trade_no: &req.out_trade_no,
            time_expire: req.time_expire.map(beijing_rfc3339),
            attach: req.attach.as_deref().filter(|a| !a.is_empty()),
            notify_url: &req.notify_url,
            amount: Amount {
                total: req.total_fee,
                currency: "CNY",
            },
            payer: Payer {
                openid: &req.openid,
            },
            scene_info: (!req.client_ip.is_empty()).then_some(Scene {
                payer_client_ip: &req.client_ip,
            }),
        };
        let json =
            serde_json::to_string(&body).map_err(|e| PayV3Error::Malformed(json_error(&e)))?;
        let (_, bytes) = self
            .call(Method::POST, "/v3/pay/transactions/jsapi", Some(&json))
            .await?;
        #[derive(serde::Deserialize)]
        struct Answer {
            prepay_id: String,
        }
        let a: Answer =
            serde_json::from_slice(&bytes).map_err(|e| PayV3Error::Malformed(json_error(&e)))?;
        if a.prepay_id.is_empty() {
            return Err(PayV3Error::Malformed("empty prepay_id".into()));
        }
        Ok(PrepayId(a.prepay_id))
    }

    /// `GET /v3/pay/transactions/out-trade-no/{no}?mchid=…`.
    #[instrument(skip(self))]
    pub async fn query_by_out_trade_no(
        &self,
        out_trade_no: &str,
    ) -> Result<OrderStatus, PayV3Error> {
        crate::pay::validate_out_no(out_trade_no, "out_trade_no")
            .map_err(PayV3Error::InvalidRequest)?;
        let path = format!(
            "/v3/pay/transactions/out-trade-no/{}?mchid={}",
            encode(out_trade_no),
            encode(&self.mchid)
        );
        let (_, bytes) = self.call(Method::GET, &path, None).await?;
        let t: V3Transaction =
            serde_json::from_slice(&bytes).map_err(|e| PayV3Error::Malformed(json_error(&e)))?;
        if t.appid != self.appid {
            return Err(PayV3Error::AppIdMismatch);
        }
        if t.mchid != self.mchid {
            return Err(PayV3Error::MchIdMismatch);
        }
        if t.out_trade_no != out_trade_no {
            return Err(PayV3Error::Malformed(
                "answer is for another out_trade_no".into(),
            ));
        }
        Ok(OrderStatus {
            appid: t.appid,
            mchid: t.mchid,
            out_trade_no: t.out_trade_no,
            transaction_id: t.transaction_id.filter(|s| !s.is_empty()),
            trade_state: TradeState::from_wire(&t.trade_state),
            trade_state_desc: t.trade_state_desc,
            total_fee: t.amount.as_ref().and_then(|a| a.total),
            openid: t.payer.and_then(|p| p.openid).filter(|s| !s.is_empty()),
            paid_at: t.success_time.filter(|s| !s.is_empty()),
        })
    }

    /// `POST /v3/pay/transactions/out-trade-no/{no}/close` (204 on success).
    #[instrument(skip(self))]
    pub async fn close(&self, out_trade_no: &str) -> Result<(), PayV3Error> {
        crate::pay::validate_out_no(out_trade_no, "out_trade_no")
            .map_err(PayV3Error::InvalidRequest)?;
        let path = format!(
            "/v3/pay/transactions/out-trade-no/{}/close",
            encode(out_trade_no)
        );
        let body = serde_json::json!({ "mchid": self.mchid }).to_string();
        self.call(Method::POST, &path, Some(&body)).await?;
        Ok(())
    }

    /// `POST /v3/refund/domestic/refunds`.
    #[instrument(skip(self, req), fields(out_trade_no = %req.out_trade_no, out_refund_no = %req.out_refund_no, refund_fee = req.refund_fee))]
    pub async fn refund(&self, req: &RefundRequest) -> Result<RefundResult, PayV3Error> {
        req.validate().map_err(PayV3Error::InvalidRequest)?;
        let mut body = serde_json::json!({
            "out_trade_no": req.out_trade_no,
            "out_refund_no": req.out_refund_no,
            "amount": { "refund": req.refund_fee, "total": req.total_fee, "currency": "CNY" },
        });
        if let Some(r) = req.reason.as_deref().filter(|r| !r.is_empty()) {
            body["reason"] = r.into();
        }
        if let Some(u) = req.notify_url.as_deref().filter(|u| !u.is_empty()) {
            body["notify_url"] = u.into();
        }
        let (_, bytes) = self
            .call(
                Method::POST,
                "/v3/refund/domestic/refunds",
                Some(&body.to_string()),
            )
            .await?;
        refund_answer(&bytes, &req.out_refund_no)
    }

    /// `GET /v3/refund/domestic/refunds/{out_refund_no}` (signed; the answer is verified):
    /// `PROCESSING`, `SUCCESS`, `CLOSED` or `ABNORMAL`. An unknown refund is `RESOURCE_NOT_EXISTS`
    /// ([`PayErrCode::OrderNotExist`]).
    #[instrument(skip(self))]
    pub async fn query_refund(&self, out_refund_no: &str) -> Result<RefundResult, PayV3Error> {
        crate::pay::validate_out_no(out_refund_no, "out_refund_no")
            .map_err(PayV3Error::InvalidRequest)?;
        let path = format!("/v3/refund/domestic/refunds/{}", encode(out_refund_no));
        let (_, bytes) = self.call(Method::GET, &path, None).await?;
        refund_answer(&bytes, out_refund_no)
    }

    /// `wx.chooseWXPay` / `getBrandWCPayRequest` parameters (`signType: "RSA"`), freshly signed.
    /// Synchronous blinded RSA (≈1 ms); from async code prefer [`PayV3Client::jsapi_pay_params_async`].
    pub fn jsapi_pay_params(&self, prepay_id: &PrepayId) -> ChooseWxPay {
        super::sign::choose_wx_pay(&self.appid, prepay_id, &self.key)
    }

    /// [`PayV3Client::jsapi_pay_params`] on the blocking pool.
    pub async fn jsapi_pay_params_async(
        &self,
        prepay_id: &PrepayId,
    ) -> Result<ChooseWxPay, PayV3Error> {
        let (appid, key, id) = (self.appid.clone(), self.key.clone(), prepay_id.clone());
        tokio::task::spawn_blocking(move || super::sign::choose_wx_pay(&appid, &id, &key))
            .await
            .map_err(|_| PayV3Error::Http(HttpError::Other("signing task failed".into())))
    }

    /// The day's trade bill: `GET /v3/bill/tradebill?bill_date=YYYY-MM-DD&bill_type=ALL` (verified
    /// answer `{hash_type, hash_value, download_url}`), then a signed `GET` of `download_url`, whose
    /// answer WeChat does not sign: its SHA-1 must equal the signed `hash_value`. `None` when WeChat
    /// says, in a verified answer, `NO_STATEMENT_EXIST` (a day without trades). `download_url` must
    /// lie under the configured base: the merchant's signature goes nowhere else.
    #[instrument(skip(self))]
    pub async fn trade_bill(&self, date: time::Date) -> Result<Option<TradeBill>, PayV3Error> {
        let path = format!(
            "/v3/bill/tradebill?bill_date={:04}-{:02}-{:02}&bill_type=ALL",
            date.year(),
            u8::from(date.month()),
            date.day()
        );
        let bytes = match self.call(Method::GET, &path, None).await {
            Err(PayV3Error::Api {
                code: PayErrCode::Other(c),
                verified: true,
                ..
            }) if c == "NO_STATEMENT_EXIST" => return Ok(None),
            r => r?.1,
        };
        #[derive(serde::Deserialize)]
        struct Answer {
            hash_type: String,
            hash_value: String,
            download_url: String,
        }
        let a: Answer =
            serde_json::from_slice(&bytes).map_err(|e| PayV3Error::Malformed(json_error(&e)))?;
        if !a.hash_type.eq_ignore_ascii_case("SHA1") {
            return Err(PayV3Error::Malformed(format!(
                "unsupported hash_type {}",
                a.hash_type.chars().take(16).collect::<String>()
            )));
        }
        let rel = a
            .download_url
            .strip_prefix(self.base.as_str())
            .filter(|r| r.starts_with("/v3/"))
            .ok_or_else(|| {
                PayV3Error::Malformed("download_url is not under the WeChat Pay base".into())
            })?;
        let (status, _, file) = send_signed_capped(
            &self.http,
            &self.base,
            &self.signer,
            self.timeout,
            Method::GET,
            rel,
            None,
            MAX_BILL_BYTES,
        )
        .await?;
        if status != StatusCode::OK {
            return Err(HttpError::Status {
                status: status.as_u16(),
            }
            .into());
        }
        use sha1::Digest as _;
        let digest = hex::encode(sha1::Sha1::digest(&file));
        if !digest.eq_ignore_ascii_case(a.hash_value.trim()) {
            return Err(BillError::HashMismatch.into());
        }
        Ok(Some(decode_bill(&file)?))
    }

    /// Verifies, decrypts and checks a refund notification (see
    /// [`super::notify::parse_refund`]).
    pub async fn parse_refund_notification(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<RefundNotice, NotifyError> {
        super::notify::parse_refund(headers, body, &self.verifier, &self.notify_config()).await
    }

    /// Verifies, decrypts and checks a payment notification (see [`super::notify::parse`]).
    pub async fn parse_notification(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<PaymentNotice, NotifyError> {
        super::notify::parse(headers, body, &self.verifier, &self.notify_config()).await
    }
}

/// Decodes a (verified) refund answer — of the refund call or the refund query — for `out_refund_no`.
fn refund_answer(bytes: &[u8], out_refund_no: &str) -> Result<RefundResult, PayV3Error> {
    #[derive(serde::Deserialize)]
    struct Amount {
        refund: i64,
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        refund_id: String,
        out_refund_no: String,
        status: String,
        amount: Amount,
    }
    let a: Answer =
        serde_json::from_slice(bytes).map_err(|e| PayV3Error::Malformed(json_error(&e)))?;
    if a.out_refund_no != out_refund_no {
        return Err(PayV3Error::Malformed(
            "answer is for another out_refund_no".into(),
        ));
    }
    if a.refund_id.is_empty() || a.amount.refund < 0 {
        return Err(PayV3Error::Malformed(
            "missing refund_id or negative amount".into(),
        ));
    }
    Ok(RefundResult {
        out_refund_no: a.out_refund_no,
        refund_id: a.refund_id,
        status: RefundStatus::from_wire(&a.status),
        refund_fee: a.amount.refund,
    })
}
