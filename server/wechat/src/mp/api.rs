//! The official account's APIs the shop calls with its access_token: the menu
//! (`menu/create`, `get_current_selfmenu_info`, `menu/delete`), parametric QR codes
//! (`qrcode/create`) and template messages (`message/template/send`). A rejected token is
//! refreshed once ([`TokenManager::with_access_token`]).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::BaseUrl;
use crate::error::{parse_mp, MpError};
use crate::http::{encode, read_capped, HttpError, DEFAULT_TIMEOUT, MAX_ANSWER_BYTES};
use crate::mp::token::{TokenError, TokenManager};

/// A parametric QR code: show `url` as a QR code (or WeChat's picture of `ticket`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QrTicket {
    /// `showqrcode?ticket=` picture key.
    pub ticket: String,
    /// What the QR code encodes.
    pub url: String,
    /// Lifetime of a temporary code; `None` for a permanent one.
    #[serde(default)]
    pub expire_seconds: Option<u64>,
}

/// WeChat's picture of a QR ticket.
pub fn qr_picture_url(ticket: &str) -> String {
    format!(
        "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket={}",
        encode(ticket)
    )
}

/// A template message (模板消息).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateMessage {
    /// The follower's openid.
    pub touser: String,
    /// The template id from the account's 模板消息 page.
    pub template_id: String,
    /// Where tapping the message leads.
    pub url: Option<String>,
    /// The template's fields in order: (key, value).
    pub data: Vec<(String, String)>,
}

impl TemplateMessage {
    fn to_json(&self) -> Value {
        let data: serde_json::Map<String, Value> = self
            .data
            .iter()
            .map(|(k, v)| (k.clone(), json!({ "value": v })))
            .collect();
        let mut v = json!({"touser": self.touser, "template_id": self.template_id, "data": data});
        if let Some(url) = &self.url {
            v["url"] = json!(url);
        }
        v
    }
}

/// The official account's APIs.
#[derive(Clone)]
pub struct MpApi {
    tokens: TokenManager,
    http: reqwest::Client,
    api: BaseUrl,
}

#[derive(Deserialize)]
struct Ack {}

impl MpApi {
    /// `api`: `https://api.weixin.qq.com` (or a sandbox's).
    pub fn new(tokens: TokenManager, http: reqwest::Client, api: BaseUrl) -> Self {
        Self { tokens, http, api }
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, TokenError> {
        self.tokens
            .with_access_token(|token| {
                let url = self.api.join(&format!(
                    "{path}?access_token={}",
                    encode(token.expose_str())
                ));
                let rb = match body {
                    Some(b) => self.http.post(url).json(b),
                    None => self.http.get(url),
                };
                async move {
                    let resp = rb.timeout(DEFAULT_TIMEOUT).send().await?;
                    if !resp.status().is_success() {
                        return Err(MpError::from(HttpError::Status {
                            status: resp.status().as_u16(),
                        }));
                    }
                    let body = read_capped(resp, MAX_ANSWER_BYTES).await?;
                    parse_mp::<T>(&body)
                }
            })
            .await
    }

    /// Sets the account's menu: `menu` is WeChat's own format, `{"button": […]}`, sent as it is.
    pub async fn create_menu(&self, menu: &Value) -> Result<(), TokenError> {
        self.call::<Ack>("/cgi-bin/menu/create", Some(menu))
            .await
            .map(|_| ())
    }

    /// The menu as WeChat has it (`get_current_selfmenu_info`).
    pub async fn current_menu(&self) -> Result<Value, TokenError> {
        self.call("/cgi-bin/get_current_selfmenu_info", None).await
    }

    /// Removes the menu.
    pub async fn delete_menu(&self) -> Result<(), TokenError> {
        self.call::<Ack>("/cgi-bin/menu/delete", None)
            .await
            .map(|_| ())
    }

    /// A parametric QR code for `scene` (1–64 characters): temporary for `expire_seconds`
    /// (`QR_STR_SCENE`, at most 30 days), else permanent (`QR_LIMIT_STR_SCENE`).
    pub async fn create_qrcode(
        &self,
        scene: &str,
        expire_seconds: Option<u64>,
    ) -> Result<QrTicket, TokenError> {
        let body = match expire_seconds {
            Some(s) => json!({
                "expire_seconds": s,
                "action_name": "QR_STR_SCENE",
                "action_info": {"scene": {"scene_str": scene}},
            }),
            None => json!({
                "action_name": "QR_LIMIT_STR_SCENE",
                "action_info": {"scene": {"scene_str": scene}},
            }),
        };
        self.call("/cgi-bin/qrcode/create", Some(&body)).await
    }

    /// Sends a template message; WeChat's `msgid`.
    pub async fn send_template(&self, message: &TemplateMessage) -> Result<i64, TokenError> {
        #[derive(Deserialize)]
        struct Sent {
            msgid: i64,
        }
        let body = message.to_json();
        let sent: Sent = self
            .call("/cgi-bin/message/template/send", Some(&body))
            .await?;
        Ok(sent.msgid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_message_is_wechats_json() {
        let m = TemplateMessage {
            touser: "o1".into(),
            template_id: "T1".into(),
            url: Some("https://shop.example/orders/1".into()),
            data: vec![("amount1".into(), "¥39.90".into())],
        };
        assert_eq!(
            m.to_json(),
            json!({"touser": "o1", "template_id": "T1", "url": "https://shop.example/orders/1",
                   "data": {"amount1": {"value": "¥39.90"}}})
        );
        assert!(qr_picture_url("a+b").ends_with("ticket=a%2Bb"));
    }
}
