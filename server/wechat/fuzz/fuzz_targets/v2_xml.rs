//! The v2 XML reader and the v2 notification parser on arbitrary bytes: must never panic, and must
//! never accept anything (the fuzzer cannot forge the MD5/HMAC signature).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wechat::pay_v2::PayV2Config;
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
    let _ = wechat::notify::v2::parse(data, &cfg);
});
