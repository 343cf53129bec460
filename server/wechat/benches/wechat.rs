//! `cargo bench -p wechat -- --measurement-time 3`
//!
//! JS-SDK signature, v2 signatures (MD5, HMAC-SHA256), v3 request signature (blinded RSA-2048), v3
//! notification verify + decrypt. Compare the RSA number with `openssl speed -seconds 3 rsa2048`.
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue};
use rsa::RsaPrivateKey;
use wechat::pay::v3::aead::{encrypt_resource, ApiV3Key};
use wechat::pay::v3::certs::Verifier;
use wechat::pay::v3::notify::V3NotifyConfig;
use wechat::pay::v3::sign::MerchantKey;
use wechat::SignType;

const TICKET: &str =
    "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg";
const V2: [(&str, &str); 5] = [
    ("appid", "wxd930ea5d5a258f4f"),
    ("mch_id", "10000100"),
    ("device_info", "1000"),
    ("body", "test"),
    ("nonce_str", "ibuaiVcKdpRxkhJA"),
];

fn bench(c: &mut Criterion) {
    c.bench_function("jssdk_signature", |b| {
        b.iter(|| {
            wechat::mp::jssdk::signature(
                black_box(TICKET),
                black_box("Wm3WZYTPz0wzccnW"),
                black_box("1414587457"),
                black_box("http://mp.weixin.qq.com?params=value"),
            )
        })
    });
    c.bench_function("v2_sign_md5", |b| {
        b.iter(|| {
            wechat::pay::v2::sign::v2_sign(
                black_box(V2),
                "192006250b4c09247ec02edce69f6a2d",
                SignType::Md5,
            )
        })
    });
    c.bench_function("v2_sign_hmac_sha256", |b| {
        b.iter(|| {
            wechat::pay::v2::sign::v2_sign(
                black_box(V2),
                "192006250b4c09247ec02edce69f6a2d",
                SignType::HmacSha256,
            )
        })
    });

    let mut rng = rand::rngs::OsRng;
    let merchant =
        MerchantKey::from_key(RsaPrivateKey::new(&mut rng, 2048).expect("keygen")).expect("key");
    let body = r#"{"appid":"wxd678efh567hg6787","mchid":"1230000109","description":"Image形象店-深圳腾大-QQ公仔","out_trade_no":"1217752501201407033233368018","notify_url":"https://www.weixin.qq.com/wxpay/pay.php","amount":{"total":100,"currency":"CNY"},"payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}}"#;
    let msg = wechat::pay::v3::sign::v3_request_message(
        "POST",
        "/v3/pay/transactions/jsapi",
        "1554208460",
        "593BEC0C930BF1AFEB40B4A08C8FB242",
        body,
    );
    c.bench_function("v3_request_sign_rsa2048_blinded", |b| {
        b.iter(|| merchant.sign_base64(black_box(msg.as_bytes())))
    });

    // A notification signed by a "platform" key, verified and decrypted.
    let platform =
        MerchantKey::from_key(RsaPrivateKey::new(&mut rng, 2048).expect("keygen")).expect("key");
    let cfg = V3NotifyConfig {
        appid: "wxd678efh567hg6787".into(),
        mchid: "1230000109".into(),
        apiv3_key: ApiV3Key::new("0123456789abcdef0123456789ABCDEF").expect("key"),
    };
    let verifier = Verifier::builder()
        .public_key(
            "PUB_KEY_ID_0114232134912410000000000000",
            platform.public_key().clone(),
        )
        .build();
    let t = serde_json::json!({"mchid": "1230000109", "appid": "wxd678efh567hg6787", "out_trade_no": "1217752501201407033233368018",
        "transaction_id": "4200000000000000000000000001", "trade_type": "JSAPI", "trade_state": "SUCCESS", "bank_type": "CMC",
        "success_time": "2018-06-08T10:34:56+08:00", "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": 100, "payer_total": 100, "currency": "CNY", "payer_currency": "CNY"}});
    let ct = encrypt_resource(
        &cfg.apiv3_key,
        "fdasflkja484",
        "transaction",
        t.to_string().as_bytes(),
    )
    .expect("enc");
    let nbody = serde_json::json!({"id": "EV-2018022511223320873", "create_time": "2015-05-20T13:29:35+08:00",
        "resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
        "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM", "ciphertext": ct,
                     "associated_data": "transaction", "nonce": "fdasflkja484"}})
    .to_string();
    let ts = wechat::unix_now().to_string();
    let sig = platform.sign_base64(&wechat::pay::v3::sign::v3_response_message(
        &ts,
        "nonce123",
        nbody.as_bytes(),
    ));
    let mut h = HeaderMap::new();
    h.insert(
        "Wechatpay-Timestamp",
        HeaderValue::from_str(&ts).expect("hv"),
    );
    h.insert("Wechatpay-Nonce", HeaderValue::from_static("nonce123"));
    h.insert(
        "Wechatpay-Signature",
        HeaderValue::from_str(&sig).expect("hv"),
    );
    h.insert(
        "Wechatpay-Serial",
        HeaderValue::from_static("PUB_KEY_ID_0114232134912410000000000000"),
    );
    assert!(wechat::pay::v3::notify::parse_cached(&h, nbody.as_bytes(), &verifier, &cfg).is_ok());
    c.bench_function("v3_notify_verify_decrypt", |b| {
        b.iter(|| {
            wechat::pay::v3::notify::parse_cached(&h, black_box(nbody.as_bytes()), &verifier, &cfg)
                .expect("valid")
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
