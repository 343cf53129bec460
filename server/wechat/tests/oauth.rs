//! OAuth code exchange, refresh and userinfo against a fake `api.weixin.qq.com`.
mod common;

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use common::*;
use wechat::mp::oauth::{OAuthClient, Scope};
use wechat::{ApiError, Hosts, MpError, Secret};

const SECRET: &str = "oauth-secret-zz9";

async fn access_token(Query(q): Query<HashMap<String, String>>) -> Response {
    if q.get("appid").map(String::as_str) != Some(APPID)
        || q.get("secret").map(String::as_str) != Some(SECRET)
        || q.get("grant_type").map(String::as_str) != Some("authorization_code")
    {
        return Json(serde_json::json!({"errcode": 40125, "errmsg": "invalid appsecret"}))
            .into_response();
    }
    match q.get("code").map(String::as_str) {
        Some("good code+/") => Json(serde_json::json!({
            "access_token": "WEB-AT-1", "expires_in": 7200, "refresh_token": "WEB-RT-1",
            "openid": "oLVPpjqs9BhvzwPj5A-vTYAX3GLc", "scope": "snsapi_userinfo", "unionid": "o6_bmasdasdsad6_2sgVt7hMZOPfL"
        }))
        .into_response(),
        Some("used") => Json(serde_json::json!({"errcode": 40163, "errmsg": "code been used, rid: 1"})).into_response(),
        Some("slow") => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Json(serde_json::json!({})).into_response()
        }
        Some("noopenid") => Json(serde_json::json!({"access_token": "x", "expires_in": 7200, "refresh_token": "r", "openid": ""})).into_response(),
        _ => Json(serde_json::json!({"errcode": 40029, "errmsg": "invalid code"})).into_response(),
    }
}

async fn refresh(Query(q): Query<HashMap<String, String>>) -> Response {
    if q.get("grant_type").map(String::as_str) != Some("refresh_token")
        || q.get("refresh_token").map(String::as_str) != Some("WEB-RT-1")
    {
        return Json(serde_json::json!({"errcode": 42002, "errmsg": "refresh_token expired"}))
            .into_response();
    }
    Json(serde_json::json!({"access_token": "WEB-AT-2", "expires_in": 7200, "refresh_token": "WEB-RT-1", "openid": "oLVPpjqs9BhvzwPj5A-vTYAX3GLc", "scope": "snsapi_userinfo"})).into_response()
}

async fn userinfo(Query(q): Query<HashMap<String, String>>) -> Response {
    if q.get("lang").map(String::as_str) != Some("zh_CN") {
        return Json(serde_json::json!({"errcode": 40003, "errmsg": "lang"})).into_response();
    }
    if q.get("access_token").map(String::as_str) != Some("WEB-AT-1") {
        return Json(serde_json::json!({"errcode": 40001, "errmsg": "invalid credential"}))
            .into_response();
    }
    Json(serde_json::json!({"openid": q["openid"], "nickname": "张三", "sex": 0, "province": "", "city": "", "country": "",
        "headimgurl": "https://thirdwx.qlogo.cn/mmopen/x/132", "privilege": [], "unionid": "o6_bmasdasdsad6_2sgVt7hMZOPfL"}))
    .into_response()
}

async fn client() -> OAuthClient {
    let r = axum::Router::new()
        .route("/api/sns/oauth2/access_token", get(access_token))
        .route("/api/sns/oauth2/refresh_token", get(refresh))
        .route("/api/sns/userinfo", get(userinfo));
    let base = serve(r).await;
    let hosts = Hosts::all(&format!("{base}/api")).unwrap();
    OAuthClient::new(APPID, Secret::from(SECRET), &hosts, http())
        .with_timeout(Duration::from_millis(500))
}

#[tokio::test]
async fn exchange_userinfo_refresh() {
    let c = client().await;
    let t = c
        .exchange_code("good code+/")
        .await
        .expect("exchange (code is URL-encoded)");
    assert_eq!(t.openid, "oLVPpjqs9BhvzwPj5A-vTYAX3GLc");
    assert_eq!(t.unionid.as_deref(), Some("o6_bmasdasdsad6_2sgVt7hMZOPfL"));
    assert!(t.has_userinfo_scope());
    let u = c
        .userinfo(&t.access_token, &t.openid)
        .await
        .expect("userinfo");
    assert_eq!(u.nickname, "张三");
    let t2 = c.refresh(&t.refresh_token).await.expect("refresh");
    assert_eq!(t2.access_token.expose_str(), "WEB-AT-2");
    let e = c.refresh(&Secret::from("old")).await.unwrap_err();
    assert!(
        matches!(e, MpError::Api(ApiError::RefreshTokenExpired)),
        "{e:?}"
    );
    assert!(matches!(
        c.userinfo(&Secret::from("nope"), "o").await,
        Err(MpError::Api(ApiError::InvalidCredential))
    ));
}

#[tokio::test]
async fn code_errors_are_typed() {
    let c = client().await;
    assert!(matches!(
        c.exchange_code("used").await,
        Err(MpError::Api(ApiError::CodeUsed))
    ));
    let e = c.exchange_code("bad").await.unwrap_err();
    assert!(matches!(e, MpError::Api(ApiError::InvalidCode)));
    assert!(e.api().is_some_and(|a| a.is_code_unusable()));
    assert!(matches!(
        c.exchange_code("").await,
        Err(MpError::InvalidInput(_))
    ));
    assert!(matches!(
        c.exchange_code("noopenid").await,
        Err(MpError::Malformed(_))
    ));
    assert!(matches!(
        c.exchange_code("slow").await,
        Err(MpError::Http(wechat::http::HttpError::Timeout))
    ));
    let shown = format!("{:?} {:?}", c, c.exchange_code("bad").await);
    assert!(!shown.contains(SECRET));
}

#[test]
fn authorize_url_uses_open_host() {
    let hosts = Hosts::default();
    let c = OAuthClient::new(APPID, Secret::from(SECRET), &hosts, http());
    let u = c
        .authorize_url(
            "https://shop.example.com/auth/callback?next=/cart",
            Scope::UserInfo,
            "Xy12",
        )
        .unwrap();
    assert_eq!(
        u,
        "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wxd930ea5d5a258f4f&redirect_uri=https%3A%2F%2Fshop.example.com%2Fauth%2Fcallback%3Fnext%3D%2Fcart&response_type=code&scope=snsapi_userinfo&state=Xy12#wechat_redirect"
    );
    assert!(!u.contains(SECRET));
}
