//! JS-SDK `wx.config` signing.
//!
//! `string1 = jsapi_ticket=T&noncestr=N&timestamp=TS&url=U` (keys in this fixed ASCII order, raw
//! values, no URL escaping), `signature = lowercase hex SHA-1(string1)`. `url` is the page's full URL
//! without `#` and what follows — [`strip_fragment`] is applied for you.
//!
//! SPA pitfall (WeChat's most common "invalid signature"): iOS WeChat signs against the URL the page
//! was *landed on*, Android against the current URL after `pushState`. The page must send the URL that
//! counts, and ask for a fresh config when it changes.
use sha1::{Digest as _, Sha1};
pub use wechat_js::WxConfig;

/// The page URL without `#fragment` (WeChat never sees the fragment).
pub fn strip_fragment(url: &str) -> &str {
    match url.find('#') {
        Some(i) => &url[..i],
        None => url,
    }
}

/// `string1`, exactly as WeChat builds it. The fragment of `url` is stripped.
pub fn string_to_sign(ticket: &str, noncestr: &str, timestamp: &str, url: &str) -> String {
    format!(
        "jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={}",
        strip_fragment(url)
    )
}

/// The `wx.config` signature: lowercase hex SHA-1 of [`string_to_sign`].
pub fn signature(ticket: &str, noncestr: &str, timestamp: &str, url: &str) -> String {
    hex::encode(Sha1::digest(
        string_to_sign(ticket, noncestr, timestamp, url).as_bytes(),
    ))
}

/// Signs `url` for `wx.config` with a fresh nonce and the current time. The fragment is stripped.
pub fn config(appid: &str, ticket: &str, url: &str) -> WxConfig {
    config_with(appid, ticket, url, &crate::nonce(), crate::unix_now())
}

/// Signs `url` with the given nonce and timestamp (tests, reproducible debugging). `timestamp` and
/// `nonceStr` in the answer are the very values that were signed.
pub fn config_with(appid: &str, ticket: &str, url: &str, nonce: &str, timestamp: i64) -> WxConfig {
    WxConfig {
        app_id: appid.to_owned(),
        timestamp,
        nonce_str: nonce.to_owned(),
        signature: signature(ticket, nonce, &timestamp.to_string(), url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICKET: &str =
        "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg";

    #[test]
    fn official_vector() {
        let s = string_to_sign(
            TICKET,
            "Wm3WZYTPz0wzccnW",
            "1414587457",
            "http://mp.weixin.qq.com?params=value",
        );
        assert_eq!(s, format!("jsapi_ticket={TICKET}&noncestr=Wm3WZYTPz0wzccnW&timestamp=1414587457&url=http://mp.weixin.qq.com?params=value"));
        assert_eq!(
            signature(
                TICKET,
                "Wm3WZYTPz0wzccnW",
                "1414587457",
                "http://mp.weixin.qq.com?params=value"
            ),
            "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
        );
    }

    #[test]
    fn fragment_is_stripped_query_kept() {
        let with = signature(
            TICKET,
            "Wm3WZYTPz0wzccnW",
            "1414587457",
            "http://mp.weixin.qq.com?params=value#/cart?x=1",
        );
        assert_eq!(with, "0f9de62fce790f9a083d5c99e95740ceb90c27ed");
        assert_eq!(
            strip_fragment("https://a.com/p?q=1#x#y"),
            "https://a.com/p?q=1"
        );
        assert_eq!(strip_fragment("https://a.com/"), "https://a.com/");
        // The query string is part of what is signed.
        assert_ne!(
            signature(TICKET, "n", "1", "https://a.com/p?q=1"),
            signature(TICKET, "n", "1", "https://a.com/p")
        );
        // Raw values: an escaped URL is a different URL.
        assert_ne!(
            signature(TICKET, "n", "1", "https://a.com/p?q=a b"),
            signature(TICKET, "n", "1", "https://a.com/p?q=a%20b")
        );
    }

    #[test]
    fn config_signs_what_it_returns() {
        let c = config(
            "wx123",
            TICKET,
            "https://shop.example.com/goods/1?from=share#top",
        );
        assert_eq!(
            c.signature,
            signature(
                TICKET,
                &c.nonce_str,
                &c.timestamp.to_string(),
                "https://shop.example.com/goods/1?from=share"
            )
        );
        assert_eq!(c.signature.len(), 40);
        assert!(c
            .signature
            .chars()
            .all(|ch| ch.is_ascii_digit() || ('a'..='f').contains(&ch)));
        let json = serde_json::to_string(&config_with("wx123", TICKET, "https://a.com/#x", "n", 7))
            .expect("json");
        assert_eq!(
            json,
            format!(
                r#"{{"appId":"wx123","timestamp":7,"nonceStr":"n","signature":"{}"}}"#,
                signature(TICKET, "n", "7", "https://a.com/")
            )
        );
    }
}
