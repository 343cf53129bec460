//! Cards (卡券): the value-sorted SHA-1 signatures against a second implementation written here,
//! the JSON shapes, and `CardApi` end to end against the embedded sandbox (which checks everything
//! with its own code).
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{json, Value};
use sha1::{Digest, Sha1};
use wechat::mp::card::{
    choose_card_sign, sign_values, CardApi, CardDefinition, CardExt, CardKind, Validity,
};
use wechat::mp::token::{MemoryTokenCache, TokenManager};
use wechat::{BaseUrl, Hosts, Secret};
use wechat_sandbox::{CardStatus, CodeStatus, Sandbox, SandboxCredentials};

/// The reference: owned byte vectors, sorted with an explicit byte comparison, hashed in one
/// buffer.
fn reference(values: &[&str]) -> String {
    let mut owned: Vec<Vec<u8>> = values.iter().map(|v| v.as_bytes().to_vec()).collect();
    owned.sort_by(|a, b| {
        for (x, y) in a.iter().zip(b.iter()) {
            if x != y {
                return x.cmp(y);
            }
        }
        a.len().cmp(&b.len())
    });
    let joined: Vec<u8> = owned.concat();
    let digest = Sha1::digest(&joined);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

const INPUTS: &[&[&str]] = &[
    &[],
    &[""],
    &["a"],
    &["b", "a"],
    // Upper case sorts before lower case by bytes (a case-insensitive sort would differ).
    &["apple", "Banana", "cherry"],
    // U+FF61 < U+1F600 by code points and UTF-8 bytes, but not by UTF-16 code units (JS sort).
    &["\u{1F600}", "\u{FF61}", "z"],
    // A prefix sorts first; empties contribute nothing.
    &["abc", "", "ab", "", "abcd"],
    // Digits (timestamps) and tickets.
    &[
        "1414587457",
        "E0o2-at6NcC2OsJiQTlwlHHzvebqY9yNCXhqGbyK4fmDqPVNXn5QtfXhXBgsqXHAVEY29EE5K7kCsZWkn7Q7lg",
        "p1Pj9jr90_SQRaVqYI239Ka1erk",
        "",
        "",
        "Wm3WZYTPz0wzccnW",
    ],
    &["中文", "ascii", "Ünïcödé", "123"],
];

#[test]
fn sign_values_matches_the_reference() {
    for input in INPUTS {
        assert_eq!(sign_values(input), reference(input), "input {input:?}");
    }
    // Order of the arguments does not matter.
    assert_eq!(sign_values(&["x", "y", "z"]), sign_values(&["z", "x", "y"]));
    // A known value: sha1("ab").
    assert_eq!(
        sign_values(&["b", "", "a"]),
        "da23614e02469a0d7c7bd1bdab5c9c474b1904dc"
    );
}

#[test]
fn card_ext_signature_and_json() {
    let cases: &[(Option<&str>, Option<&str>, Option<&str>)] = &[
        (None, None, None),
        (None, Some("oUser1"), Some("channel_a")),
        (Some("123456789012"), Some("oUser2"), None),
        (Some("12"), None, None),
    ];
    for (i, (code, openid, outer)) in cases.iter().enumerate() {
        let ticket = "TICKET-Zz_9";
        let card_id = "pFS7Fjg8kV1IdDz01r4SQwMkuCKc";
        let nonce = format!("nonce{i}");
        let ts = 1_700_000_000 + i as i64;
        let ext = CardExt::sign(ticket, card_id, *code, *openid, ts, &nonce, *outer);
        let expect = reference(&[
            ticket,
            &ts.to_string(),
            card_id,
            code.unwrap_or(""),
            openid.unwrap_or(""),
            &nonce,
        ]);
        assert_eq!(ext.signature, expect);
        let j: Value = serde_json::from_str(&ext.to_json_string()).unwrap();
        let obj = j.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort();
        let mut want = vec!["nonce_str", "signature", "timestamp"];
        if code.is_some() {
            want.push("code");
        }
        if openid.is_some() {
            want.push("openid");
        }
        if outer.is_some() {
            want.push("outer_str");
        }
        want.sort();
        assert_eq!(keys, want);
        assert_eq!(j["timestamp"], json!(ts.to_string()));
        assert_eq!(j["nonce_str"], json!(nonce));
        assert_eq!(j["signature"], json!(expect));
        if let Some(c) = code {
            assert_eq!(j["code"], json!(c));
        }
        // Round trip.
        let back: CardExt = serde_json::from_str(&ext.to_json_string()).unwrap();
        assert_eq!(back, ext);
    }
}

#[test]
fn choose_card_sign_matches_the_reference() {
    for (shop, card_id, card_type) in [
        ("", "", ""),
        ("1234", "", "CASH"),
        ("", "pFS7Fjg8kV1IdDz01r4SQwMkuCKc", "DISCOUNT"),
    ] {
        let got = choose_card_sign(
            "T1",
            "wx123",
            shop,
            1_414_587_457,
            "n0nce",
            card_id,
            card_type,
        );
        let want = reference(&[
            "T1",
            "wx123",
            shop,
            "1414587457",
            "n0nce",
            card_id,
            card_type,
        ]);
        assert_eq!(got, want);
    }
}

fn definition(kind: CardKind, validity: Validity) -> CardDefinition {
    CardDefinition {
        kind,
        title: "满100减10".into(),
        color: "Color010".into(),
        validity,
        quantity: 100,
        get_limit: 2,
        brand_name: "微信小店".into(),
        logo_url: "https://mmbiz.qpic.cn/logo.png".into(),
        notice: "结账时使用".into(),
        description: "不可与其他优惠同享".into(),
    }
}

#[test]
fn create_json_shapes() {
    let cash = definition(
        CardKind::Cash {
            least_cost_fen: 10_000,
            reduce_cost_fen: 1_000,
        },
        Validity::Fixed {
            begin_unix: 1_700_000_000,
            end_unix: 1_800_000_000,
        },
    )
    .to_create_json();
    assert_eq!(cash["card"]["card_type"], "CASH");
    let c = &cash["card"]["cash"];
    assert_eq!(c["least_cost"], 10_000);
    assert_eq!(c["reduce_cost"], 1_000);
    let b = &c["base_info"];
    assert_eq!(
        b,
        &json!({
            "logo_url": "https://mmbiz.qpic.cn/logo.png",
            "brand_name": "微信小店",
            "code_type": "CODE_TYPE_QRCODE",
            "title": "满100减10",
            "color": "Color010",
            "notice": "结账时使用",
            "description": "不可与其他优惠同享",
            "date_info": {"type": "DATE_TYPE_FIX_TIME_RANGE", "begin_timestamp": 1_700_000_000i64, "end_timestamp": 1_800_000_000i64},
            "sku": {"quantity": 100},
            "get_limit": 2,
            "use_custom_code": false,
            "can_share": false,
            "can_give_friend": false,
        })
    );
    let disc = definition(
        CardKind::Discount {
            least_cost_fen: 0,
            percent_off: 30,
        },
        Validity::AfterTaking { days: 7 },
    )
    .to_create_json();
    assert_eq!(disc["card"]["card_type"], "DISCOUNT");
    let d = &disc["card"]["discount"];
    assert_eq!(d["discount"], 30);
    assert!(d.get("cash").is_none() && disc["card"].get("cash").is_none());
    assert_eq!(
        d["base_info"]["date_info"],
        json!({"type": "DATE_TYPE_FIX_TERM", "fixed_term": 7, "fixed_begin_term": 0})
    );
}

/* ------------------------------ against the sandbox ------------------------------ */

fn creds() -> SandboxCredentials {
    static C: OnceLock<SandboxCredentials> = OnceLock::new();
    C.get_or_init(|| SandboxCredentials::from_seed(20250314))
        .clone()
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

struct Env {
    sandbox: Sandbox,
    api: CardApi,
    pushes: Arc<Mutex<Vec<String>>>,
}

async fn env() -> Env {
    let sandbox = Sandbox::new(creds());
    let origin = serve(axum::Router::new().nest("/sandbox", sandbox.router())).await;
    // The shop's official-account server: records what WeChat pushes, answers `success`.
    let pushes: Arc<Mutex<Vec<String>>> = Arc::default();
    let p = pushes.clone();
    let mp = serve(axum::Router::new().route(
        "/wechat/mp",
        axum::routing::post(move |body: String| {
            let p = p.clone();
            async move {
                p.lock().unwrap().push(body);
                "success"
            }
        }),
    ))
    .await;
    sandbox.set_mp_server_url(&format!("{mp}/wechat/mp"));
    let api_base = format!("{origin}/sandbox/api");
    let hosts = Hosts {
        api: BaseUrl::parse(&api_base).unwrap(),
        ..Hosts::all(&format!("{origin}/sandbox/open")).unwrap()
    };
    let http = reqwest::Client::new();
    let c = creds();
    let tokens = TokenManager::new(
        c.appid.clone(),
        Secret::new(c.appsecret.clone()),
        &hosts,
        http.clone(),
        Arc::new(MemoryTokenCache::new()),
    );
    let api = CardApi::new(tokens, http, BaseUrl::parse(&api_base).unwrap());
    Env {
        sandbox,
        api,
        pushes,
    }
}

fn now_s() -> i64 {
    wechat::unix_now()
}

async fn wait_for_pushes(sb: &Sandbox, n: usize) {
    for _ in 0..200 {
        if sb.card_pushes().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("expected {n} card pushes, got {:?}", sb.card_pushes());
}

#[tokio::test]
async fn card_api_end_to_end() {
    let e = env().await;
    let users = e.sandbox.users();
    let (u1, u2) = (users[0].openid.clone(), users[1].openid.clone());

    // The api_ticket is fetched once for several callers.
    let (a, b, c) = tokio::join!(e.api.api_ticket(), e.api.api_ticket(), e.api.api_ticket());
    let t = a.unwrap();
    assert_eq!(t.expose_str(), b.unwrap().expose_str());
    assert_eq!(t.expose_str(), c.unwrap().expose_str());
    for _ in 0..3 {
        e.api.api_ticket().await.unwrap();
    }
    assert_eq!(e.sandbox.card_ticket_fetches(), 1);
    assert_eq!(
        e.sandbox.current_card_ticket().as_deref(),
        Some(t.expose_str())
    );
    // …and it is not a jsapi_ticket.
    assert_eq!(e.sandbox.ticket_fetches(), 0);

    // Create a cash card (满100减10) and a discount card.
    let cash = definition(
        CardKind::Cash {
            least_cost_fen: 10_000,
            reduce_cost_fen: 1_000,
        },
        Validity::Fixed {
            begin_unix: now_s() - 60,
            end_unix: now_s() + 86_400,
        },
    );
    let card_id = e.api.create(&cash).await.unwrap();
    assert!(card_id.starts_with('p') && card_id.len() == 28, "{card_id}");
    let disc_id = e
        .api
        .create(&definition(
            CardKind::Discount {
                least_cost_fen: 0,
                percent_off: 30,
            },
            Validity::AfterTaking { days: 3 },
        ))
        .await
        .unwrap();
    let cards = e.sandbox.cards();
    assert_eq!(cards.len(), 2);
    assert!(cards.iter().all(|c| c.status == CardStatus::NotVerify));

    // WeChat-like refusals.
    let mut bad = cash.clone();
    bad.color = "Color999".into();
    let err = e.api.create(&bad).await.unwrap_err();
    assert!(err.api().is_some(), "{err}");
    let mut bad = cash.clone();
    bad.kind = CardKind::Cash {
        least_cost_fen: 0,
        reduce_cost_fen: 0,
    };
    assert!(e.api.create(&bad).await.unwrap_err().api().is_some());
    let mut bad = cash.clone();
    bad.title = "这是一个非常非常长的卡券标题".into();
    assert!(e.api.create(&bad).await.unwrap_err().api().is_some());

    // QR code.
    let qr = e.api.qrcode(&card_id, Some("poster")).await.unwrap();
    assert!(!qr.ticket.is_empty() && qr.show_qrcode_url.contains("showqrcode"));
    assert_eq!(
        e.sandbox.card_qr(&qr.ticket),
        Some((card_id.clone(), Some("poster".into())))
    );

    // Unverified: only whitelisted users may take it.
    assert!(e.sandbox.give_card(&u1, &card_id).is_err());
    e.api
        .set_test_whitelist(std::slice::from_ref(&u1), &[users[1].nickname.clone()])
        .await
        .unwrap();
    let code = e.sandbox.give_card(&u1, &card_id).unwrap();
    assert_eq!(code.len(), 12);
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
    assert!(e.sandbox.give_card(&users[2].openid, &card_id).is_err());
    e.sandbox.give_card(&u2, &disc_id).unwrap();

    // Decrypt / get / consume.
    let enc = e.sandbox.encrypt_code(&code);
    assert_ne!(enc, code);
    assert_eq!(e.api.decrypt_code(&enc).await.unwrap(), code);
    let info = e.api.get_code(&card_id, &code, true).await.unwrap();
    assert_eq!(info.openid, u1);
    assert_eq!(info.card_id, card_id);
    assert!(info.can_consume);
    assert_eq!(info.user_card_status, "NORMAL");
    assert_eq!(e.api.consume(&card_id, &code).await.unwrap(), u1);
    let second = e.api.consume(&card_id, &code).await.unwrap_err();
    assert_eq!(second.api().map(|a| a.code()), Some(40099), "{second}");
    // check_consume: WeChat refuses a consumed code (40099); without, it says CONSUMED.
    let got = e.api.get_code(&card_id, &code, true).await.unwrap_err();
    assert_eq!(got.api().map(|a| a.code()), Some(40099));
    let info = e.api.get_code(&card_id, &code, false).await.unwrap();
    assert!(!info.can_consume);
    assert_eq!(info.user_card_status, "CONSUMED");
    assert_eq!(e.sandbox.wallet(&u1)[0].status, CodeStatus::Consumed);

    // Stock and delete.
    e.api.reduce_stock(&card_id, 90).await.unwrap();
    let left = e.sandbox.card(&card_id).unwrap().quantity;
    assert_eq!(left, 100 - 1 - 90);
    assert!(e.api.reduce_stock(&card_id, 1_000).await.is_err());
    e.api.delete(&disc_id).await.unwrap();
    assert_eq!(
        e.sandbox.card(&disc_id).unwrap().status,
        CardStatus::Deleted
    );
    // A code taken before the card was deleted stays usable, as at WeChat.
    assert_eq!(e.sandbox.wallet(&u2)[0].status, CodeStatus::Normal);
    assert!(e.api.delete(&disc_id).await.is_err());

    // Events reached the shop: two user_get_card, one user_consume_card.
    wait_for_pushes(&e.sandbox, 3).await;
    let pushes = e.sandbox.card_pushes();
    let events: Vec<&str> = pushes.iter().map(|p| p.event.as_str()).collect();
    assert_eq!(
        events.iter().filter(|e| **e == "user_get_card").count(),
        2,
        "{events:?}"
    );
    assert!(events.contains(&"user_consume_card"));
    assert!(pushes.iter().all(|p| p.result == Ok(200)), "{pushes:?}");
    assert_eq!(e.pushes.lock().unwrap().len(), pushes.len());
    let consume = pushes
        .iter()
        .find(|p| p.event == "user_consume_card")
        .unwrap();
    assert!(consume.xml.contains(&code) && consume.xml.contains("FROM_API"));

    // Still one ticket fetch after all that.
    assert_eq!(e.sandbox.card_ticket_fetches(), 1);
}

#[tokio::test]
async fn empty_inputs_are_refused_locally() {
    let e = env().await;
    assert!(e.api.consume("p1", "").await.is_err());
    assert!(e.api.decrypt_code(" ").await.is_err());
    assert!(e.api.reduce_stock("p1", 0).await.is_err());
    // None of those reached WeChat (not even for a token).
    assert_eq!(e.sandbox.stable_token_fetches(), 0);
}
