//! Parameters for `wx.chooseWXPay` / `WeixinJSBridge.invoke('getBrandWCPayRequest', …)`.
//!
//! They are signed **afresh** for the page: handing the unifiedorder answer's `sign` to the page as
//! `paySign` is the classic "支付验证签名失败".
//!
//! * v2: MD5 / HMAC-SHA256 with the API key over `appId, nonceStr, package, signType, timeStamp`
//!   (note the capital `I` and `S`: they are the signed parameter names).
//! * v3: RSA-SHA256 with the merchant key over `APPID\nTIMESTAMP\nNONCE\nprepay_id=…\n`,
//!   `signType: "RSA"`.
use crate::pay::PrepayId;
use crate::sign::{self, MerchantKey, SignType};

/// The six fields of `getBrandWCPayRequest`, serialized with WeChat's names
/// (`appId, timeStamp, nonceStr, package, signType, paySign`). All strings, as WeChat wants them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PayParams {
    /// The official account's appid.
    #[serde(rename = "appId")]
    pub app_id: String,
    /// Unix seconds, as a string.
    #[serde(rename = "timeStamp")]
    pub time_stamp: String,
    /// Nonce.
    #[serde(rename = "nonceStr")]
    pub nonce_str: String,
    /// `prepay_id=…`.
    pub package: String,
    /// `MD5`, `HMAC-SHA256` or `RSA`.
    #[serde(rename = "signType")]
    pub sign_type: String,
    /// The signature.
    #[serde(rename = "paySign")]
    pub pay_sign: String,
}

/// The same values in `wx.chooseWXPay`'s spelling (`timestamp`, no `appId`: it comes from `wx.config`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChooseWxPay {
    /// Unix seconds (the signed `timeStamp`).
    pub timestamp: String,
    /// Nonce.
    pub nonce_str: String,
    /// `prepay_id=…`.
    pub package: String,
    /// Signature type.
    pub sign_type: String,
    /// Signature.
    pub pay_sign: String,
}

impl PayParams {
    /// v2 parameters with a fresh nonce and the current time.
    pub fn v2(appid: &str, prepay_id: &PrepayId, key: &str, sign_type: SignType) -> Self {
        Self::v2_with(
            appid,
            prepay_id,
            key,
            sign_type,
            &crate::unix_now().to_string(),
            &crate::nonce(),
        )
    }

    /// The v2 `stringA` that [`PayParams::v2_with`] signs (without `&key=`).
    pub fn v2_string_a(
        appid: &str,
        package: &str,
        sign_type: SignType,
        timestamp: &str,
        nonce: &str,
    ) -> String {
        sign::v2_string_a([
            ("appId", appid),
            ("nonceStr", nonce),
            ("package", package),
            ("signType", sign_type.as_str()),
            ("timeStamp", timestamp),
        ])
    }

    /// v2 parameters with the given timestamp and nonce.
    pub fn v2_with(
        appid: &str,
        prepay_id: &PrepayId,
        key: &str,
        sign_type: SignType,
        timestamp: &str,
        nonce: &str,
    ) -> Self {
        let package = prepay_id.package();
        let a = Self::v2_string_a(appid, &package, sign_type, timestamp, nonce);
        Self {
            app_id: appid.to_owned(),
            time_stamp: timestamp.to_owned(),
            nonce_str: nonce.to_owned(),
            package,
            sign_type: sign_type.as_str().to_owned(),
            pay_sign: sign::v2_sign_string_a(&a, key, sign_type),
        }
    }

    /// v3 parameters with a fresh nonce and the current time. One blinded RSA signature (≈1 ms).
    pub fn v3(appid: &str, prepay_id: &PrepayId, key: &MerchantKey) -> Self {
        Self::v3_with(
            appid,
            prepay_id,
            key,
            &crate::unix_now().to_string(),
            &crate::nonce(),
        )
    }

    /// v3 parameters with the given timestamp and nonce.
    pub fn v3_with(
        appid: &str,
        prepay_id: &PrepayId,
        key: &MerchantKey,
        timestamp: &str,
        nonce: &str,
    ) -> Self {
        let package = prepay_id.package();
        let msg = sign::v3_pay_message(appid, timestamp, nonce, &package);
        Self {
            app_id: appid.to_owned(),
            time_stamp: timestamp.to_owned(),
            nonce_str: nonce.to_owned(),
            package,
            sign_type: "RSA".to_owned(),
            pay_sign: key.sign_base64(msg.as_bytes()),
        }
    }

    /// The `wx.chooseWXPay` spelling of these parameters.
    pub fn choose_wx_pay(&self) -> ChooseWxPay {
        ChooseWxPay {
            timestamp: self.time_stamp.clone(),
            nonce_str: self.nonce_str.clone(),
            package: self.package.clone(),
            sign_type: self.sign_type.clone(),
            pay_sign: self.pay_sign.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_pay_sign_covers_the_five_fields() {
        let p = PayParams::v2_with(
            "wx2421b1c4370ec43b",
            &PrepayId("wx20141027200939e6f4b8d5d40cba4e0c8".into()),
            "192006250b4c09247ec02edce69f6a2d",
            SignType::Md5,
            "1395712654",
            "e61463f8efa94090b1f366cccfbbb444",
        );
        let a = "appId=wx2421b1c4370ec43b&nonceStr=e61463f8efa94090b1f366cccfbbb444&package=prepay_id=wx20141027200939e6f4b8d5d40cba4e0c8&signType=MD5&timeStamp=1395712654";
        assert_eq!(
            PayParams::v2_string_a(
                "wx2421b1c4370ec43b",
                &p.package,
                SignType::Md5,
                "1395712654",
                "e61463f8efa94090b1f366cccfbbb444"
            ),
            a
        );
        use md5::Digest as _;
        let expected = hex::encode_upper(md5::Md5::digest(format!(
            "{a}&key=192006250b4c09247ec02edce69f6a2d"
        )));
        assert_eq!(p.pay_sign, expected);
        let v = serde_json::to_value(&p).expect("json");
        for k in [
            "appId",
            "timeStamp",
            "nonceStr",
            "package",
            "signType",
            "paySign",
        ] {
            assert!(v[k].is_string(), "{k}");
        }
        assert_eq!(
            v["package"],
            "prepay_id=wx20141027200939e6f4b8d5d40cba4e0c8"
        );
        let c = serde_json::to_value(p.choose_wx_pay()).expect("json");
        assert_eq!(c["timestamp"], "1395712654");
        assert!(c.get("timeStamp").is_none());
    }
}
