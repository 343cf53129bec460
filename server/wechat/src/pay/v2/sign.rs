//! The v2 signature: MD5 / HMAC-SHA256 over sorted parameters, and the page's `chooseWXPay`
//! parameters signed with it.
//!
//! Every non-empty parameter except `sign`, keys sorted by ASCII, `k=v` joined with `&`, then
//! `&key=API_KEY`; MD5 or HMAC-SHA256 (keyed with the API key) → UPPERCASE hex. Verification compares
//! in constant time.
use std::fmt;

use hmac::{Hmac, Mac};
use md5::{Digest as _, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use wechat_js::ChooseWxPay;

use crate::pay::PrepayId;

/// The v2 signature algorithm (`sign_type`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum SignType {
    /// `MD5` — WeChat's default.
    #[default]
    #[serde(rename = "MD5")]
    Md5,
    /// `HMAC-SHA256`.
    #[serde(rename = "HMAC-SHA256")]
    HmacSha256,
}

impl SignType {
    /// The wire name: `MD5` or `HMAC-SHA256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::HmacSha256 => "HMAC-SHA256",
        }
    }
}

impl fmt::Display for SignType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown `sign_type` name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sign type {0:?} (expected MD5 or HMAC-SHA256)")]
pub struct UnknownSignType(pub String);

impl std::str::FromStr for SignType {
    type Err = UnknownSignType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("MD5") {
            Ok(Self::Md5)
        } else if s.eq_ignore_ascii_case("HMAC-SHA256") {
            Ok(Self::HmacSha256)
        } else {
            Err(UnknownSignType(s.chars().take(40).collect()))
        }
    }
}

/// The v2 `stringA`: non-empty parameters except `sign`, sorted by key (ASCII / byte order), joined as
/// `k=v&k=v`, raw values (no URL encoding). The API key is **not** included.
pub fn v2_string_a<'a, I>(params: I) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut kv: Vec<(&str, &str)> = params
        .into_iter()
        .filter(|(k, v)| !v.is_empty() && *k != "sign")
        .collect();
    kv.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut s = String::with_capacity(kv.iter().map(|(k, v)| k.len() + v.len() + 2).sum::<usize>());
    for (i, (k, v)) in kv.iter().enumerate() {
        if i > 0 {
            s.push('&');
        }
        s.push_str(k);
        s.push('=');
        s.push_str(v);
    }
    s
}

/// Signs a v2 `stringA` (see [`v2_string_a`]) with the API key: `stringA&key=KEY` → UPPERCASE hex.
pub fn v2_sign_string_a(string_a: &str, key: &str, sign_type: SignType) -> String {
    let mut temp = String::with_capacity(string_a.len() + key.len() + 5);
    temp.push_str(string_a);
    temp.push_str("&key=");
    temp.push_str(key);
    let out = match sign_type {
        SignType::Md5 => hex::encode_upper(Md5::digest(temp.as_bytes())),
        SignType::HmacSha256 => {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
                .expect("HMAC accepts keys of any length");
            mac.update(temp.as_bytes());
            hex::encode_upper(mac.finalize().into_bytes())
        }
    };
    zeroize::Zeroize::zeroize(&mut temp);
    out
}

/// Signs v2 parameters: [`v2_string_a`] then [`v2_sign_string_a`].
pub fn v2_sign<'a, I>(params: I, key: &str, sign_type: SignType) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    v2_sign_string_a(&v2_string_a(params), key, sign_type)
}

/// Verifies the `sign` parameter of a v2 message (answer or notification) in constant time.
/// A missing or empty `sign` fails.
pub fn v2_verify<'a, I>(params: I, key: &str, sign_type: SignType) -> bool
where
    I: IntoIterator<Item = (&'a str, &'a str)> + Clone,
{
    let Some(given) = params
        .clone()
        .into_iter()
        .find(|(k, _)| *k == "sign")
        .map(|(_, v)| v)
    else {
        return false;
    };
    if given.is_empty() {
        return false;
    }
    let expected = v2_sign(params, key, sign_type);
    let given = given.to_ascii_uppercase();
    expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// The v2 `stringA` that [`choose_wx_pay_with`] signs (without `&key=`): `appId, nonceStr, package,
/// signType, timeStamp` (note the capital `I` and `S`: they are the signed parameter names).
pub fn choose_wx_pay_string_a(
    appid: &str,
    package: &str,
    sign_type: SignType,
    timestamp: &str,
    nonce: &str,
) -> String {
    v2_string_a([
        ("appId", appid),
        ("nonceStr", nonce),
        ("package", package),
        ("signType", sign_type.as_str()),
        ("timeStamp", timestamp),
    ])
}

/// The page's `chooseWXPay` parameters, signed with the API key, with a fresh nonce and the current
/// time.
pub fn choose_wx_pay(
    appid: &str,
    prepay_id: &PrepayId,
    key: &str,
    sign_type: SignType,
) -> ChooseWxPay {
    choose_wx_pay_with(
        appid,
        prepay_id,
        key,
        sign_type,
        &crate::unix_now().to_string(),
        &crate::nonce(),
    )
}

/// [`choose_wx_pay`] with the given timestamp and nonce.
pub fn choose_wx_pay_with(
    appid: &str,
    prepay_id: &PrepayId,
    key: &str,
    sign_type: SignType,
    timestamp: &str,
    nonce: &str,
) -> ChooseWxPay {
    let package = prepay_id.package();
    let a = choose_wx_pay_string_a(appid, &package, sign_type, timestamp, nonce);
    ChooseWxPay {
        app_id: appid.to_owned(),
        time_stamp: timestamp.to_owned(),
        nonce_str: nonce.to_owned(),
        package,
        sign_type: sign_type.as_str().to_owned(),
        pay_sign: v2_sign_string_a(&a, key, sign_type),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "192006250b4c09247ec02edce69f6a2d";
    const VECTOR: [(&str, &str); 5] = [
        ("appid", "wxd930ea5d5a258f4f"),
        ("mch_id", "10000100"),
        ("device_info", "1000"),
        ("body", "test"),
        ("nonce_str", "ibuaiVcKdpRxkhJA"),
    ];

    #[test]
    fn official_v2_md5_vector() {
        assert_eq!(
            v2_string_a(VECTOR),
            "appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA"
        );
        assert_eq!(
            v2_sign(VECTOR, KEY, SignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
    }

    #[test]
    fn official_v2_hmac_vector() {
        assert_eq!(
            v2_sign(VECTOR, KEY, SignType::HmacSha256),
            "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
        );
    }

    #[test]
    fn empty_values_and_sign_are_skipped() {
        let mut with_extra: Vec<(&str, &str)> = VECTOR.to_vec();
        with_extra.push(("attach", ""));
        with_extra.push(("sign", "WHATEVER"));
        assert_eq!(v2_string_a(with_extra.iter().copied()), v2_string_a(VECTOR));
        assert_eq!(
            v2_sign(with_extra.iter().copied(), KEY, SignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
    }

    #[test]
    fn ascii_order_not_alphabetical() {
        // Uppercase sorts before lowercase, '_' (0x5F) before lowercase letters.
        let s = v2_string_a([
            ("b", "1"),
            ("B", "2"),
            ("a_b", "3"),
            ("ab", "4"),
            ("a", "5"),
        ]);
        assert_eq!(s, "B=2&a=5&a_b=3&ab=4&b=1");
    }

    #[test]
    fn non_ascii_values_are_signed_raw_utf8() {
        let p = [("body", "腾讯充值中心-QQ会员充值"), ("appid", "wx1")];
        assert_eq!(v2_string_a(p), "appid=wx1&body=腾讯充值中心-QQ会员充值");
        // Independent computation: MD5 over the UTF-8 bytes.
        let expected = hex::encode_upper(Md5::digest(
            "appid=wx1&body=腾讯充值中心-QQ会员充值&key=k".as_bytes(),
        ));
        assert_eq!(v2_sign(p, "k", SignType::Md5), expected);
    }

    #[test]
    fn verify_accepts_good_refuses_bad() {
        let mut p: Vec<(&str, &str)> = VECTOR.to_vec();
        p.push(("sign", "9A0A8659F005D6984697E2CA0A9CF3B7"));
        assert!(v2_verify(p.iter().copied(), KEY, SignType::Md5));
        // lowercase hex from a lenient peer is still the same signature
        let mut lower = VECTOR.to_vec();
        lower.push(("sign", "9a0a8659f005d6984697e2ca0a9cf3b7"));
        assert!(v2_verify(lower.iter().copied(), KEY, SignType::Md5));
        assert!(!v2_verify(p.iter().copied(), "wrongkey", SignType::Md5));
        assert!(!v2_verify(p.iter().copied(), KEY, SignType::HmacSha256));
        let mut tampered = p.clone();
        tampered[3] = ("body", "test2");
        assert!(!v2_verify(tampered.iter().copied(), KEY, SignType::Md5));
        assert!(
            !v2_verify(VECTOR.iter().copied(), KEY, SignType::Md5),
            "missing sign"
        );
        let mut empty = VECTOR.to_vec();
        empty.push(("sign", ""));
        assert!(
            !v2_verify(empty.iter().copied(), KEY, SignType::Md5),
            "empty sign"
        );
    }

    #[test]
    fn sign_type_parses() {
        assert_eq!("md5".parse::<SignType>(), Ok(SignType::Md5));
        assert_eq!("HMAC-SHA256".parse::<SignType>(), Ok(SignType::HmacSha256));
        assert!("SHA1".parse::<SignType>().is_err());
    }

    #[test]
    fn v2_pay_sign_covers_the_five_fields() {
        let p = choose_wx_pay_with(
            "wx2421b1c4370ec43b",
            &PrepayId("wx20141027200939e6f4b8d5d40cba4e0c8".into()),
            "192006250b4c09247ec02edce69f6a2d",
            SignType::Md5,
            "1395712654",
            "e61463f8efa94090b1f366cccfbbb444",
        );
        let a = "appId=wx2421b1c4370ec43b&nonceStr=e61463f8efa94090b1f366cccfbbb444&package=prepay_id=wx20141027200939e6f4b8d5d40cba4e0c8&signType=MD5&timeStamp=1395712654";
        assert_eq!(
            choose_wx_pay_string_a(
                "wx2421b1c4370ec43b",
                &p.package,
                SignType::Md5,
                "1395712654",
                "e61463f8efa94090b1f366cccfbbb444"
            ),
            a
        );
        let expected = hex::encode_upper(Md5::digest(format!(
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
    }
}
