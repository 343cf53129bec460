//! Randomized robustness tests (the stable-toolchain stand-in for `cargo fuzz`, see `fuzz/`): random
//! and mutated inputs to every parser that sees network data. Each must return `Ok`/`Err`, never
//! panic — and a mutated *signed* message must never be accepted with different content.
//!
//! Run with `--nocapture` to see how many inputs ran and how long it took.
mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use common::*;
use md5::Digest as _;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use wechat::pay::v2::PayV2Config;
use wechat::pay::v3::aead::{encrypt_resource, ApiV3Key};
use wechat::pay::v3::certs::Verifier;
use wechat::pay::v3::notify::V3NotifyConfig;
use wechat::{BaseUrl, SignType};

const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

const TOKENS: &[&str] = &[
    "<!DOCTYPE x [<!ENTITY e \"a\">]>",
    "<!ENTITY e SYSTEM \"file:///etc/passwd\">",
    "&e;",
    "&amp;",
    "&#0;",
    "&#x110000;",
    "&#xD800;",
    "&",
    "<![CDATA[",
    "]]>",
    "<a>",
    "</a>",
    "<xml>",
    "</xml>",
    "<sign>",
    "</sign>",
    "\u{0}",
    "\u{feff}",
    "<?xml version=\"1.0\"?>",
    "<!-- -->",
    "<?pi x?>",
    "<",
    ">",
    "\"",
    "'",
    "\u{4e2d}",
    "\r\n",
    "<total_fee>-1</total_fee>",
    "{",
    "}",
    "[",
    "]",
    "\"resource\":",
    "null",
    "1e999",
    "\\u0000",
    "\\ud800",
];

/// Applies random edits: flip/insert/delete bytes, splice a token.
fn mutate(base: &[u8], edits: &[(u8, usize, u8, usize)]) -> Vec<u8> {
    let mut v = base.to_vec();
    for &(kind, pos, byte, tok) in edits {
        let p = if v.is_empty() { 0 } else { pos % (v.len() + 1) };
        match kind % 4 {
            0 if p < v.len() => v[p] ^= byte | 1,
            1 => v.insert(p, byte),
            2 if p < v.len() => {
                v.remove(p);
            }
            _ => {
                let t = TOKENS[tok % TOKENS.len()].as_bytes();
                v.splice(p..p, t.iter().copied());
            }
        }
    }
    v
}

fn edits() -> impl Strategy<Value = Vec<(u8, usize, u8, usize)>> {
    prop::collection::vec(
        (any::<u8>(), any::<usize>(), any::<u8>(), any::<usize>()),
        1..6,
    )
}

fn v2_cfg() -> PayV2Config {
    PayV2Config::new(
        APPID,
        MCHID,
        KEY.into(),
        SignType::Md5,
        BaseUrl::parse("https://api.mch.weixin.qq.com").unwrap(),
    )
}

fn v2_notice() -> Vec<u8> {
    let mut m: BTreeMap<String, String> = [
        ("appid", APPID),
        ("mch_id", MCHID),
        ("nonce_str", "5d2b6c2a8db53831f7eda20af46e531c"),
        ("openid", "oUpF8uMEb4qRXf22hE3X68TekukE"),
        ("out_trade_no", "1409811653"),
        ("result_code", "SUCCESS"),
        ("return_code", "SUCCESS"),
        ("time_end", "20140903131540"),
        ("total_fee", "1990"),
        ("transaction_id", "1004400740201409030005092168"),
        ("attach", "a&b<c>"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let s = m
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
        + "&key="
        + KEY;
    m.insert(
        "sign".into(),
        hex::encode_upper(md5::Md5::digest(s.as_bytes())),
    );
    let mut x = String::from("<xml>");
    for (k, v) in &m {
        x.push_str(&format!("<{k}><![CDATA[{v}]]></{k}>"));
    }
    x.push_str("</xml>");
    x.into_bytes()
}

#[test]
fn random_bytes_to_xml_parser() {
    let n = 10000;
    let t = Instant::now();
    runner(n)
        .run(&prop::collection::vec(any::<u8>(), 0..4096), |b| {
            let _ = wechat::xml::parse_flat(&b, 64 * 1024);
            let _ = wechat::pay::v2::notify::parse(&b, &v2_cfg());
            Ok(())
        })
        .unwrap();
    println!(
        "random_bytes_to_xml_parser: {n} inputs in {:?}",
        t.elapsed()
    );
}

#[test]
fn mutated_v2_notifications() {
    let base = v2_notice();
    let original = wechat::pay::v2::notify::parse(&base, &v2_cfg()).expect("seed is valid");
    let n = 20000;
    let t = Instant::now();
    runner(n)
        .run(&edits(), |e| {
            let m = mutate(&base, &e);
            let _ = wechat::xml::parse_flat(&m, 64 * 1024);
            if let Ok(notice) = wechat::pay::v2::notify::parse(&m, &v2_cfg()) {
                prop_assert_eq!(
                    &notice,
                    &original,
                    "a mutated notification was accepted with other content"
                );
            }
            Ok(())
        })
        .unwrap();
    println!("mutated_v2_notifications: {n} inputs in {:?}", t.elapsed());
}

fn v3_setup() -> (Verifier, V3NotifyConfig, Vec<u8>) {
    let verifier = Verifier::builder()
        .platform_certificate_pem(&keys().plat_cert_pem)
        .unwrap()
        .build();
    let cfg = V3NotifyConfig {
        appid: APPID.into(),
        mchid: MCHID.into(),
        apiv3_key: ApiV3Key::new(APIV3_KEY).unwrap(),
    };
    let t = serde_json::json!({"mchid": MCHID, "appid": APPID, "out_trade_no": "1217752501201407033233368018",
        "transaction_id": "4200000000000000000000000001", "trade_type": "JSAPI", "trade_state": "SUCCESS",
        "success_time": "2018-06-08T10:34:56+08:00", "payer": {"openid": "o1"}, "amount": {"total": 1990}});
    let ct = encrypt_resource(
        &cfg.apiv3_key,
        "fdasflkja484",
        "transaction",
        t.to_string().as_bytes(),
    )
    .unwrap();
    let body = serde_json::json!({"id": "EV-1", "event_type": "TRANSACTION.SUCCESS", "resource_type": "encrypt-resource",
        "resource": {"algorithm": "AEAD_AES_256_GCM", "ciphertext": ct, "associated_data": "transaction", "nonce": "fdasflkja484"}})
    .to_string()
    .into_bytes();
    (verifier, cfg, body)
}

#[test]
fn mutated_v3_notifications_with_original_headers() {
    let (verifier, cfg, body) = v3_setup();
    let headers = signed_headers(&keys().plat_key, PLAT_SERIAL, now(), &body);
    assert!(wechat::pay::v3::notify::parse_cached(&headers, &body, &verifier, &cfg).is_ok());
    let n = 5000;
    let t = Instant::now();
    runner(n)
        .run(&edits(), |e| {
            let m = mutate(&body, &e);
            let r = wechat::pay::v3::notify::parse_cached(&headers, &m, &verifier, &cfg);
            if r.is_ok() {
                prop_assert_eq!(&m, &body, "a modified body passed verification");
            }
            Ok(())
        })
        .unwrap();
    println!(
        "mutated_v3_notifications_with_original_headers: {n} inputs in {:?}",
        t.elapsed()
    );
}

#[test]
fn signed_random_v3_bodies_exercise_the_json_and_decrypt_paths() {
    // Bodies signed by the platform key pass verification, so the envelope parser and the decryption
    // see arbitrary input.
    let (verifier, cfg, body) = v3_setup();
    let n = 2000;
    let t = Instant::now();
    runner(n)
        .run(&(edits(), any::<bool>()), |(e, from_seed)| {
            let m = if from_seed {
                mutate(&body, &e)
            } else {
                mutate(b"", &e)
            };
            let h = signed_headers(&keys().plat_key, PLAT_SERIAL, now(), &m);
            let _ = wechat::pay::v3::notify::parse_cached(&h, &m, &verifier, &cfg);
            let _ = wechat::pay::v3::certs::parse_certificate_list(&m, &cfg.apiv3_key);
            Ok(())
        })
        .unwrap();
    println!("signed_random_v3_bodies: {n} inputs in {:?}", t.elapsed());
}

#[test]
fn random_headers() {
    let (verifier, cfg, body) = v3_setup();
    let n = 5000;
    let t = Instant::now();
    let s = "[ -~]{0,80}|PUB_KEY_ID_[0-9]{0,40}|[0-9]{0,20}";
    runner(n)
        .run(&(s, s, s, s), |(ts, nonce, sig, serial)| {
            let mut h = http::HeaderMap::new();
            for (k, v) in [
                ("Wechatpay-Timestamp", &ts),
                ("Wechatpay-Nonce", &nonce),
                ("Wechatpay-Signature", &sig),
                ("Wechatpay-Serial", &serial),
            ] {
                if let Ok(v) = http::HeaderValue::from_str(v) {
                    h.insert(k, v);
                }
            }
            prop_assert!(
                wechat::pay::v3::notify::parse_cached(&h, &body, &verifier, &cfg).is_err()
            );
            Ok(())
        })
        .unwrap();
    println!("random_headers: {n} inputs in {:?}", t.elapsed());
}
