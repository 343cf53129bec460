//! Types that cross the wire between the browser, the server and other API clients.
//!
//! Money is always integer fen (`i64`); it is formatted for people only at the very edge
//! ([`format_fen`]). Every field name here is part of the public JSON API: rename with care.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One purchasable variant of a product (colour/size…), with its own price and stock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sku {
    pub id: i64,
    pub name: String,
    pub price_fen: i64,
    pub stock: i64,
}

/// A product as listed on the home page and by `POST /api/list_products`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductSummary {
    pub id: i64,
    pub name: String,
    pub category: String,
    pub image: String,
    pub skus: Vec<Sku>,
}

impl ProductSummary {
    /// The lowest SKU price, shown as "from" price on cards.
    pub fn min_price_fen(&self) -> Option<i64> {
        self.skus.iter().map(|s| s.price_fen).min()
    }

    pub fn sold_out(&self) -> bool {
        self.skus.iter().all(|s| s.stock <= 0)
    }
}

/// The product page: the summary plus what only the detail page shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductDetail {
    pub id: i64,
    pub name: String,
    pub category: String,
    pub description: String,
    pub images: Vec<String>,
    pub skus: Vec<Sku>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub id: i64,
    pub name: String,
}

/// One line of the shopper's cart, joined with the current catalogue data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    pub sku_id: i64,
    pub product_id: i64,
    pub product_name: String,
    pub sku_name: String,
    pub image: String,
    pub price_fen: i64,
    pub quantity: i64,
    pub stock: i64,
    pub selected: bool,
}

impl CartLine {
    pub fn subtotal_fen(&self) -> i64 {
        self.price_fen * self.quantity
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    pub lines: Vec<CartLine>,
    /// Sum over selected lines, computed on the server from database prices.
    pub selected_total_fen: i64,
    pub selected_count: i64,
}

/// A priced would-be order, as checkout shows it before 提交订单.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub lines: Vec<CartLine>,
    /// What the shopper pays: the goods less the coupon's discount.
    pub total_fen: i64,
    /// What the coupon takes off (0 without one).
    #[serde(default)]
    pub discount_fen: i64,
    /// The coupon that applies, when one was chosen.
    #[serde(default)]
    pub coupon: Option<AppliedCoupon>,
}

/// A coupon chosen at checkout with `wx.chooseCard`: the card and its encrypted code, as WeChat
/// gave them to the page (the server decrypts the code and checks it at WeChat).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponInput {
    pub card_id: String,
    pub encrypt_code: String,
}

/// A coupon that applies to an order, and what it takes off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedCoupon {
    pub card_id: String,
    pub title: String,
    /// e.g. 满100减20, 满50享8.5折.
    pub rule: String,
    pub discount_fen: i64,
}

/// A coupon the shop offers (领取 on the home and product pages).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponOffer {
    pub card_id: String,
    pub title: String,
    pub rule: String,
    /// e.g. 领取后 7 天内有效, 2026-12-01 至 2026-12-31.
    pub validity: String,
}

/// `POST /api/card_ext` output: what the page hands to `wx.addCard`'s `cardList` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardExtView {
    #[serde(rename = "cardId")]
    pub card_id: String,
    /// A JSON string, signed with the api_ticket.
    #[serde(rename = "cardExt")]
    pub card_ext: String,
}

/// `POST /api/choose_card_config` output: the signed fields of `wx.chooseCard`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChooseCardConfig {
    pub timestamp: i64,
    #[serde(rename = "nonceStr")]
    pub nonce_str: String,
    #[serde(rename = "signType")]
    pub sign_type: String,
    #[serde(rename = "cardSign")]
    pub card_sign: String,
}

/// A shipping address as typed into the checkout form.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressInput {
    pub name: String,
    pub phone: String,
    /// 省市区, e.g. "广东省 深圳市 南山区".
    pub region: String,
    pub detail: String,
}

/// A saved address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub id: i64,
    pub name: String,
    pub phone: String,
    pub region: String,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItemInput {
    pub sku_id: i64,
    pub quantity: i64,
}

/// `POST /api/create_order` input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    pub items: Vec<OrderItemInput>,
    pub address: AddressInput,
    #[serde(default)]
    pub remark: String,
    /// A coupon chosen with `wx.chooseCard`.
    #[serde(default)]
    pub coupon: Option<CouponInput>,
}

/// `POST /api/create_order` output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedOrder {
    pub order_id: i64,
    pub total_fee: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Unpaid,
    Paid,
    Closed,
    /// A refund was asked for and WeChat has not settled it yet.
    Refunding,
    /// Some of the payment went back; the rest is the merchant's.
    PartiallyRefunded,
    /// All of the payment went back.
    Refunded,
    Shipped,
    Completed,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 8] = [
        Self::Unpaid,
        Self::Paid,
        Self::Closed,
        Self::Refunding,
        Self::PartiallyRefunded,
        Self::Refunded,
        Self::Shipped,
        Self::Completed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unpaid => "unpaid",
            Self::Paid => "paid",
            Self::Closed => "closed",
            Self::Refunding => "refunding",
            Self::PartiallyRefunded => "partially_refunded",
            Self::Refunded => "refunded",
            Self::Shipped => "shipped",
            Self::Completed => "completed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The label shoppers see.
    pub fn label(self) -> &'static str {
        match self {
            Self::Unpaid => "待支付",
            Self::Paid => "已支付",
            Self::Closed => "已关闭",
            Self::Refunding => "退款中",
            Self::PartiallyRefunded => "部分退款",
            Self::Refunded => "已退款",
            Self::Shipped => "已发货",
            Self::Completed => "已完成",
        }
    }

    /// The tab of 我的订单 (and the shortcut of 我的) this status is counted under.
    pub fn filter(self) -> OrderFilter {
        match self {
            Self::Unpaid => OrderFilter::Unpaid,
            Self::Paid => OrderFilter::Paid,
            Self::Shipped | Self::Completed => OrderFilter::Shipped,
            Self::Refunding | Self::PartiallyRefunded | Self::Refunded => OrderFilter::Refund,
            Self::Closed => OrderFilter::Closed,
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The tabs of 我的订单 (`list_orders {"status"}`): one status, or a group of them.
/// `refund` is every order with a refund (退款中, 部分退款, 已退款); `refunded` is read as `refund`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderFilter {
    Unpaid,
    Paid,
    Shipped,
    #[serde(alias = "refunded")]
    Refund,
    Closed,
}

impl OrderFilter {
    pub const ALL: [OrderFilter; 5] = [
        Self::Unpaid,
        Self::Paid,
        Self::Shipped,
        Self::Refund,
        Self::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unpaid => "unpaid",
            Self::Paid => "paid",
            Self::Shipped => "shipped",
            Self::Refund => "refund",
            Self::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "refunded" => Some(Self::Refund),
            _ => Self::ALL.into_iter().find(|f| f.as_str() == s),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Unpaid => "待支付",
            Self::Paid => "已支付",
            Self::Shipped => "已发货",
            Self::Refund => "退款",
            Self::Closed => "已关闭",
        }
    }

    /// The statuses in this tab.
    pub fn statuses(self) -> Vec<OrderStatus> {
        OrderStatus::ALL
            .into_iter()
            .filter(|s| s.filter() == self)
            .collect()
    }
}

/// The state of one refund, as the shopper and the merchant see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundState {
    /// Sent to WeChat, not settled yet.
    Processing,
    /// The money is on its way back to the shopper.
    Succeeded,
    /// WeChat could not return it (e.g. the shopper's card was cancelled): the merchant acts.
    Abnormal,
    /// Closed at WeChat without a refund.
    Closed,
    /// WeChat refused the request.
    Failed,
}

impl RefundState {
    pub const ALL: [RefundState; 5] = [
        Self::Processing,
        Self::Succeeded,
        Self::Abnormal,
        Self::Closed,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Abnormal => "abnormal",
            Self::Closed => "closed",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Processing => "退款处理中",
            Self::Succeeded => "退款成功",
            Self::Abnormal => "退款异常",
            Self::Closed => "退款关闭",
            Self::Failed => "退款失败",
        }
    }
}

/// What a shopper asks for after paying (售后).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AftersaleKind {
    /// 仅退款: the money back, no goods to return (not shipped, lost, …).
    RefundOnly,
    /// 退货退款: the goods go back to the merchant, then the money.
    ReturnRefund,
}

impl AftersaleKind {
    pub const ALL: [AftersaleKind; 2] = [Self::RefundOnly, Self::ReturnRefund];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RefundOnly => "refund_only",
            Self::ReturnRefund => "return_refund",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::RefundOnly => "仅退款",
            Self::ReturnRefund => "退货退款",
        }
    }
}

/// Where an after-sales request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AftersaleStatus {
    /// Waiting for the merchant.
    Pending,
    /// 退货退款 approved: the shopper sends the goods back; the refund follows their arrival.
    AwaitingReturn,
    /// Approved; the refund is being handed to WeChat Pay.
    Refunding,
    /// Approved and the refund made (its own state is in the order's refunds).
    Approved,
    /// Refused by the merchant, with a reason.
    Refused,
}

impl AftersaleStatus {
    pub const ALL: [AftersaleStatus; 5] = [
        Self::Pending,
        Self::AwaitingReturn,
        Self::Refunding,
        Self::Approved,
        Self::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::AwaitingReturn => "awaiting_return",
            Self::Refunding => "refunding",
            Self::Approved => "approved",
            Self::Refused => "refused",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Pending => "等待商家处理",
            Self::AwaitingReturn => "商家已同意，请寄回商品",
            Self::Refunding => "商家已同意，退款发起中",
            Self::Approved => "商家已同意，已退款",
            Self::Refused => "商家已拒绝",
        }
    }

    /// Still being handled: the order cannot get another request.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::AwaitingReturn | Self::Refunding)
    }
}

/// An order's latest after-sales request, as the shopper sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AftersaleView {
    pub aftersale_id: i64,
    pub kind: AftersaleKind,
    pub status: AftersaleStatus,
    pub reason: String,
    pub note: String,
    /// The amount going back, once approved (fen).
    pub refund_fen: Option<i64>,
    /// The merchant's word: why refused, or where to send a return.
    pub decision_reason: String,
    /// Unix seconds.
    pub created_at: i64,
    pub decided_at: Option<i64>,
    pub received_at: Option<i64>,
}

/// The reasons the order page offers for an after-sales request.
pub const AFTERSALE_REASONS: [&str; 6] = [
    "不想要了",
    "商品破损或有瑕疵",
    "与描述不符",
    "发错货或少发",
    "长时间未收到货",
    "其他",
];

/// One refund of an order (the order page lists them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundView {
    /// The shop's refund number at WeChat.
    pub out_refund_no: String,
    pub amount_fen: i64,
    pub state: RefundState,
    pub reason: String,
    /// Unix seconds.
    pub created_at: i64,
    pub succeeded_at: Option<i64>,
}

/// `POST /api/order_status` output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderStatusView {
    pub order_id: i64,
    pub status: OrderStatus,
    pub total_fee: i64,
    /// What went back to the shopper (succeeded refunds), fen.
    pub refunded_fen: i64,
}

/// A line of a placed order: name and price are copied at order time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub sku_id: i64,
    pub product_id: i64,
    pub product_name: String,
    pub sku_name: String,
    pub image: String,
    pub unit_price_fen: i64,
    pub quantity: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: i64,
    /// The merchant order number sent to WeChat Pay as `out_trade_no`.
    pub order_no: String,
    pub status: OrderStatus,
    pub total_fee: i64,
    pub lines: Vec<OrderLine>,
    pub address: AddressInput,
    pub remark: String,
    /// Unix seconds.
    pub created_at: i64,
    pub paid_at: Option<i64>,
    pub closed_at: Option<i64>,
    /// When an unpaid order stops being payable (unix seconds).
    pub expires_at: i64,
    /// What went back to the shopper (succeeded refunds), fen.
    pub refunded_fen: i64,
    /// Every refund of the order, oldest first.
    pub refunds: Vec<RefundView>,
    /// Paid in the embedded WeChat sandbox: no money moved.
    #[serde(default)]
    pub paid_in_sandbox: bool,
    /// The parcel, once the merchant shipped it.
    #[serde(default)]
    pub shipment: Option<Shipment>,
    /// The latest after-sales request (售后), if the shopper made one.
    #[serde(default)]
    pub aftersale: Option<AftersaleView>,
    /// What the coupon took off (`total_fee` is what was paid).
    #[serde(default)]
    pub discount_fen: i64,
    /// The coupon's title, when the order used one.
    #[serde(default)]
    pub coupon_title: Option<String>,
}

/// How an order travels (set by the console's `ship_order`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    pub carrier: String,
    pub tracking_no: String,
    /// Unix seconds.
    pub shipped_at: i64,
}

/// What the order list shows per order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSummary {
    pub order_id: i64,
    pub order_no: String,
    pub status: OrderStatus,
    pub total_fee: i64,
    pub item_count: i64,
    pub first_image: String,
    pub title: String,
    pub created_at: i64,
}

/// `POST /api/get_profile` output: what the 我的 page shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The shopper is a WeChat user (an openid is bound to the session).
    pub wechat: bool,
    /// From WeChat's `snsapi_userinfo`, when the shopper agreed to share it.
    pub nickname: Option<String>,
    /// `https://…` (WeChat's CDN) or, in sandbox mode, a `data:image/…` URL.
    pub avatar_url: Option<String>,
    /// How many of the shopper's orders are in each status.
    pub order_counts: OrderCounts,
}

/// Orders per status (the 我的 page's shortcuts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCounts {
    pub unpaid: i64,
    pub paid: i64,
    pub shipped: i64,
    pub refund: i64,
    pub closed: i64,
}

impl OrderCounts {
    pub fn get(&self, filter: OrderFilter) -> i64 {
        match filter {
            OrderFilter::Unpaid => self.unpaid,
            OrderFilter::Paid => self.paid,
            OrderFilter::Shipped => self.shipped,
            OrderFilter::Refund => self.refund,
            OrderFilter::Closed => self.closed,
        }
    }

    pub fn add(&mut self, status: OrderStatus, n: i64) {
        match status.filter() {
            OrderFilter::Unpaid => self.unpaid += n,
            OrderFilter::Paid => self.paid += n,
            OrderFilter::Shipped => self.shipped += n,
            OrderFilter::Refund => self.refund += n,
            OrderFilter::Closed => self.closed += n,
        }
    }
}

/// What pages need to know about WeChat: where the JS-SDK comes from and whether the shop runs
/// against the embedded sandbox. Rendered into the page's `<head>`; never holds a secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WxEnv {
    pub sandbox: bool,
    /// `https://res.wx.qq.com/open/js/jweixin-1.6.0.js`, or `/sandbox/jweixin.js`.
    pub jssdk_url: String,
}

/// `POST /api/jssdk_config` output ([`WxConfig`]: the signed fields of `wx.config`) and
/// `POST /api/pay_order` output ([`ChooseWxPay`]: the six fields of `getBrandWCPayRequest`, signed
/// afresh; `wx.chooseWXPay` takes the same values with `timestamp` for `timeStamp` and no `appId`).
/// Defined once in the `wechat-js` crate, which the server's signing code returns.
pub use wechat_js::{ChooseWxPay, WxConfig};

/// Formats fen as yuan with two decimals: `1990` → `"19.90"`, `-5` → `"-0.05"`.
pub fn format_fen(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// Largest quantity of one SKU a single cart line or order line may hold.
pub const MAX_LINE_QUANTITY: i64 = 99;
/// Most distinct lines one order may have.
pub const MAX_ORDER_LINES: usize = 50;
pub const MAX_REMARK_CHARS: usize = 200;

/// A form field that failed validation, with a message for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Is this a mainland China mobile number (11 digits, `1[3-9]…`)? A leading `+86`/`86`
/// and spaces or dashes are tolerated; [`normalize_phone`] gives the stored form.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let digits: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '\u{3000}'))
        .collect();
    let digits = digits
        .strip_prefix("+86")
        .or_else(|| digits.strip_prefix("0086"))
        .unwrap_or(&digits);
    let digits = if digits.len() == 13 && digits.starts_with("86") {
        &digits[2..]
    } else {
        digits
    };
    let b = digits.as_bytes();
    let ok = b.len() == 11
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1])
        && b.iter().all(u8::is_ascii_digit);
    ok.then(|| digits.to_string())
}

impl AddressInput {
    /// Trims every field, normalises the phone number, and reports every problem at once.
    pub fn validate(&self) -> Result<AddressInput, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut err = |field: &str, message: &str| {
            errors.push(FieldError {
                field: field.into(),
                message: message.into(),
            })
        };
        let name = self.name.trim();
        if name.is_empty() {
            err("name", "请填写收货人");
        } else if name.chars().count() > 20 {
            err("name", "收货人最多 20 个字");
        }
        let phone = normalize_phone(&self.phone);
        if self.phone.trim().is_empty() {
            err("phone", "请填写手机号");
        } else if phone.is_none() {
            err("phone", "请输入正确的 11 位手机号");
        }
        let region = self.region.trim();
        if region.is_empty() {
            err("region", "请选择省市区");
        } else if region.chars().count() > 60 {
            err("region", "省市区过长");
        }
        let detail = self.detail.trim();
        if detail.chars().count() < 5 {
            err("detail", "详细地址至少 5 个字");
        } else if detail.chars().count() > 120 {
            err("detail", "详细地址最多 120 个字");
        }
        if errors.is_empty() {
            Ok(AddressInput {
                name: name.into(),
                phone: phone.unwrap_or_default(),
                region: region.into(),
                detail: detail.into(),
            })
        } else {
            Err(errors)
        }
    }
}

/// The provinces offered by the checkout form's 省 selector.
pub const PROVINCES: &[&str] = &[
    "北京市",
    "天津市",
    "河北省",
    "山西省",
    "内蒙古自治区",
    "辽宁省",
    "吉林省",
    "黑龙江省",
    "上海市",
    "江苏省",
    "浙江省",
    "安徽省",
    "福建省",
    "江西省",
    "山东省",
    "河南省",
    "湖北省",
    "湖南省",
    "广东省",
    "广西壮族自治区",
    "海南省",
    "重庆市",
    "四川省",
    "贵州省",
    "云南省",
    "西藏自治区",
    "陕西省",
    "甘肃省",
    "青海省",
    "宁夏回族自治区",
    "新疆维吾尔自治区",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fen_formats_with_two_decimals() {
        assert_eq!(format_fen(1990), "19.90");
        assert_eq!(format_fen(5), "0.05");
        assert_eq!(format_fen(0), "0.00");
        assert_eq!(format_fen(100_000), "1000.00");
        assert_eq!(format_fen(-5), "-0.05");
    }

    #[test]
    fn phone_numbers() {
        assert_eq!(
            normalize_phone("13800138000").as_deref(),
            Some("13800138000")
        );
        assert_eq!(
            normalize_phone("+86 138-0013-8000").as_deref(),
            Some("13800138000")
        );
        assert_eq!(
            normalize_phone("8613800138000").as_deref(),
            Some("13800138000")
        );
        assert_eq!(
            normalize_phone("12800138000"),
            None,
            "second digit 2 is not a mobile prefix"
        );
        assert_eq!(normalize_phone("1380013800"), None, "10 digits");
        assert_eq!(normalize_phone("138001380000"), None, "12 digits");
        assert_eq!(normalize_phone("1380013800a"), None);
        assert_eq!(
            normalize_phone("２3800138000"),
            None,
            "full-width digits are not accepted"
        );
    }

    #[test]
    fn address_validation_reports_every_field() {
        let bad = AddressInput {
            name: " ".into(),
            phone: "123".into(),
            region: "".into(),
            detail: "短".into(),
        };
        let errs = bad.validate().unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "phone", "region", "detail"]);

        let good = AddressInput {
            name: " 张三 ".into(),
            phone: "+86 13800138000".into(),
            region: "广东省 深圳市 南山区".into(),
            detail: "科技园南区 1 栋 101".into(),
        };
        let ok = good.validate().unwrap();
        assert_eq!(ok.name, "张三");
        assert_eq!(ok.phone, "13800138000");
    }

    #[test]
    fn order_status_round_trips_as_lowercase_json() {
        for st in OrderStatus::ALL {
            let json = serde_json::to_string(&st).unwrap();
            assert_eq!(json, format!("\"{}\"", st.as_str()));
            assert_eq!(OrderStatus::parse(st.as_str()), Some(st));
            assert!(st.filter().statuses().contains(&st));
        }
        for f in OrderFilter::ALL {
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(json, format!("\"{}\"", f.as_str()));
            assert_eq!(OrderFilter::parse(f.as_str()), Some(f));
        }
        let old: OrderFilter = serde_json::from_str("\"refunded\"").unwrap();
        assert_eq!(old, OrderFilter::Refund);
        assert_eq!(
            OrderFilter::Refund.statuses(),
            vec![
                OrderStatus::Refunding,
                OrderStatus::PartiallyRefunded,
                OrderStatus::Refunded
            ]
        );
        for st in RefundState::ALL {
            assert_eq!(RefundState::parse(st.as_str()), Some(st));
        }
    }
}
