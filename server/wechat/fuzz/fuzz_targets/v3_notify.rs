//! v3 notifications on arbitrary input: the first bytes become the four `Wechatpay-*` headers and
//! the rest the body for the full (verifying) parser, and the whole input also goes straight to the
//! post-verification decoder and the certificate-list parser, which the fuzzer could not otherwise
//! reach without forging a signature.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wechat::pay::v3::aead::ApiV3Key;
use wechat::pay::v3::certs::Verifier;
use wechat::pay::v3::notify::V3NotifyConfig;

// A throwaway 2048-bit public key (verification only; its private half was discarded).
const PUB: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA4UXXvrgIhP0Eo1czRvoL
e/aLNLzYRQhiepqsV49KM4JlgXxZ3a6PQLAcztTrbJ8BbELl+BhcNNlLBUPFrVMd
rfXoieGeTPwM+5ygcn2fQbY2QCy8Y5M0JAUXrYfgg6cbqO8ELmpod7RB7yU2pV90
bF0qX9njPj5Vn2CfDpEUSY+nC9IWflPrsqvYtZYWU2u48asTFeExGHVGhCPaSSEu
8ew8ijRE131qHbYemLtrbxtW2LyOUH3KBtj4IrHrudAj5BotpADPc8QW3frTfXN+
Z5BM1W1PbP6N2UIYbKaHEpc01Q2K1fCpmkfnzFwxD6wbjuPXBNn8CUtGcPAXNmmb
IwIDAQAB
-----END PUBLIC KEY-----";

fn setup() -> &'static (Verifier, V3NotifyConfig) {
    static S: OnceLock<(Verifier, V3NotifyConfig)> = OnceLock::new();
    S.get_or_init(|| {
        let v = Verifier::builder()
            .wechatpay_public_key("PUB_KEY_ID_0114232134912410000000000000", PUB)
            .expect("key")
            .build();
        let cfg = V3NotifyConfig {
            appid: "wxd930ea5d5a258f4f".into(),
            mchid: "1900000109".into(),
            apiv3_key: ApiV3Key::new("0123456789abcdef0123456789ABCDEF").expect("key"),
        };
        (v, cfg)
    })
}

fuzz_target!(|data: &[u8]| {
    let (verifier, cfg) = setup();
    // Header section: up to four values separated by '\n', then '\0', then the body.
    let (head, body) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    let mut h = http::HeaderMap::new();
    let names = [
        "Wechatpay-Timestamp",
        "Wechatpay-Nonce",
        "Wechatpay-Signature",
        "Wechatpay-Serial",
    ];
    for (name, value) in names.iter().zip(head.split(|&b| b == b'\n')) {
        if let Ok(v) = http::HeaderValue::from_bytes(value) {
            h.insert(*name, v);
        }
    }
    assert!(
        wechat::pay::v3::notify::parse_cached(&h, body, verifier, cfg).is_err(),
        "forged notification accepted"
    );
    let _ = wechat::pay::v3::notify::decode_verified_for_fuzzing(data, cfg);
    let _ = wechat::pay::v3::certs::parse_certificate_list(data, &cfg.apiv3_key);
});
