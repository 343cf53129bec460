//! The v2 XML reader, the v2 payment and refund notification parsers and the bill parser on arbitrary
//! bytes: must never panic, and the payment parser must never accept anything (the fuzzer cannot
//! forge the MD5/HMAC signature).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wechat::pay::v2::PayV2Config;
use wechat::{BaseUrl, SignType};

fuzz_target!(|data: &[u8]| {
    let _ = wechat::xml::parse_flat(data, wechat::xml::MAX_XML_BYTES);
    let cfg = PayV2Config::new(
        "wxd930ea5d5a258f4f",
        "1900000109",
        "192006250b4c09247ec02edce69f6a2d".into(),
        SignType::Md5,
        BaseUrl::parse("https://api.mch.weixin.qq.com").expect("base"),
    );
    let _ = wechat::pay::v2::notify::parse(data, &cfg);
    // The refund notification (AES-256-ECB req_info, no sign): must never panic.
    let _ = wechat::pay::v2::notify::parse_refund(data, &cfg);
    // Trade bills: must never panic.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = wechat::pay::bill::parse_trade_bill(text);
    }
});
