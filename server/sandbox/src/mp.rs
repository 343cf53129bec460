//! The official account's pushes to the shop's server (服务器地址), as WeChat sends them: signed
//! with the Token and, in safe mode, encrypted with the EncodingAESKey (AES-256-CBC, IV = the key's
//! first 16 bytes, PKCS#7 to 32 bytes, 16 random bytes + length + XML + appid). Written here with
//! the sandbox's own code, so the shop's implementation is checked against an independent one.

use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::state::Sandbox;
use crate::SandboxError;

/// What a follower does in the official account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MpAction {
    /// 关注 (with the scene of the parametric QR code it came through).
    Subscribe {
        /// The QR code's scene (`product:3`), `None` for a plain follow.
        scene: Option<String>,
    },
    /// 取消关注.
    Unsubscribe,
    /// Scanning a parametric QR code while already following.
    Scan {
        /// The QR code's scene.
        scene: String,
    },
    /// Tapping a menu button of type `click`.
    Click {
        /// The button's `key`.
        key: String,
    },
    /// Sending a text message.
    Text {
        /// What the follower wrote.
        content: String,
    },
}

/// One push: its XML, and the instant it claims.
#[derive(Clone, Debug)]
pub struct MpPush {
    /// The plaintext message XML.
    pub xml: String,
    /// Whether it goes encrypted (safe mode).
    pub encrypted: bool,
}

/// What the shop answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpAnswer {
    /// The HTTP status the shop answered.
    pub status: u16,
    /// The reply's `Content` (decrypted and verified in safe mode); `None` for `success` or an
    /// empty body.
    pub content: Option<String>,
}

fn sha1_sorted(parts: &mut [&str]) -> String {
    parts.sort_unstable();
    let mut h = Sha1::new();
    for p in parts.iter() {
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

fn cdata(s: &str) -> String {
    format!("<![CDATA[{}]]>", s.replace("]]>", "]]]]><![CDATA[>"))
}

fn key_of(encoding_aes_key: &str) -> Result<[u8; 32], SandboxError> {
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let raw = lenient
        .decode(format!("{encoding_aes_key}="))
        .map_err(|e| SandboxError::Http(format!("EncodingAESKey: {e}")))?;
    raw.try_into()
        .map_err(|_| SandboxError::Http("EncodingAESKey is not 32 bytes".into()))
}

fn encrypt(key: &[u8; 32], xml: &str, appid: &str) -> String {
    let mut plain: Vec<u8> = Vec::new();
    let mut random = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut random);
    plain.extend_from_slice(&random);
    plain.extend_from_slice(&(xml.len() as u32).to_be_bytes());
    plain.extend_from_slice(xml.as_bytes());
    plain.extend_from_slice(appid.as_bytes());
    let pad = 32 - plain.len() % 32;
    plain.extend(std::iter::repeat_n(pad as u8, pad));
    let len = plain.len();
    let iv: [u8; 16] = key[..16].try_into().expect("16 bytes");
    let out = cbc::Encryptor::<aes::Aes256>::new(key.into(), &iv.into())
        .encrypt_padded_mut::<NoPadding>(&mut plain, len)
        .expect("whole blocks");
    base64::engine::general_purpose::STANDARD.encode(out)
}

fn decrypt(key: &[u8; 32], b64: &str, appid: &str) -> Option<String> {
    let mut buf = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    if buf.is_empty() || buf.len() % 16 != 0 {
        return None;
    }
    let iv: [u8; 16] = key[..16].try_into().ok()?;
    let plain = cbc::Decryptor::<aes::Aes256>::new(key.into(), &iv.into())
        .decrypt_padded_mut::<NoPadding>(&mut buf)
        .ok()?;
    let pad = *plain.last()? as usize;
    if pad == 0 || pad > 32 || pad > plain.len() {
        return None;
    }
    let body = &plain[..plain.len() - pad];
    let len = u32::from_be_bytes(body.get(16..20)?.try_into().ok()?) as usize;
    let rest = body.get(20..)?;
    let (xml, id) = (rest.get(..len)?, rest.get(len..)?);
    (id == appid.as_bytes()).then(|| String::from_utf8(xml.to_vec()).ok())?
}

/// The text of `<Tag>` in a flat document (CDATA or text), read loosely: the sandbox reads
/// the shop's answers, whose hardening is the shop's business.
fn field(xml: &str, tag: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    let v = &xml[start..end];
    Some(
        v.strip_prefix("<![CDATA[")
            .and_then(|v| v.strip_suffix("]]>"))
            .unwrap_or(v)
            .to_string(),
    )
}

impl Sandbox {
    /// The XML WeChat pushes when sandbox user `user` (0-based) does `action`, at `create_time`
    /// (Unix seconds; WeChat deduplicates events by sender and this time).
    pub fn mp_message(&self, user: usize, action: &MpAction, create_time: i64) -> MpPush {
        let c = self.credentials();
        let openid = self
            .users()
            .get(user)
            .map(|u| u.openid.clone())
            .unwrap_or_default();
        let head = format!(
            "<ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{create_time}</CreateTime>",
            cdata(&c.mp_original_id),
            cdata(&openid)
        );
        let event = |name: &str, key: Option<&str>| {
            format!(
                "<xml>{head}<MsgType><![CDATA[event]]></MsgType><Event>{}</Event>{}</xml>",
                cdata(name),
                key.map(|k| format!("<EventKey>{}</EventKey>", cdata(k)))
                    .unwrap_or_default()
            )
        };
        let xml = match action {
            MpAction::Subscribe { scene } => event(
                "subscribe",
                scene.as_ref().map(|s| format!("qrscene_{s}")).as_deref(),
            ),
            MpAction::Unsubscribe => event("unsubscribe", None),
            MpAction::Scan { scene } => event("SCAN", Some(scene)),
            MpAction::Click { key } => event("CLICK", Some(key)),
            MpAction::Text { content } => format!(
                "<xml>{head}<MsgType><![CDATA[text]]></MsgType><Content>{}</Content><MsgId>{}</MsgId></xml>",
                cdata(content),
                create_time * 1000 + user as i64
            ),
        };
        MpPush {
            xml,
            encrypted: !c.mp_encoding_aes_key.is_empty(),
        }
    }

    /// Posts `push` to the shop's server at `url` as WeChat does (query `signature`,
    /// `timestamp`, `nonce`, `openid`; in safe mode `encrypt_type=aes` and `msg_signature` with
    /// `<xml><ToUserName/><Encrypt/></xml>`), and reads the answer (verifying and decrypting an
    /// encrypted reply: a reply that does not verify is an error).
    pub async fn push_to_mp(&self, url: &str, push: &MpPush) -> Result<MpAnswer, SandboxError> {
        let c = self.credentials().clone();
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
        let nonce = format!("{}", rand::random::<u32>());
        let signature = sha1_sorted(&mut [&c.mp_token, &timestamp, &nonce]);
        let openid = field(&push.xml, "FromUserName").unwrap_or_default();
        let mut query = vec![
            ("signature", signature),
            ("timestamp", timestamp.clone()),
            ("nonce", nonce.clone()),
            ("openid", openid),
        ];
        let key = if push.encrypted {
            Some(key_of(&c.mp_encoding_aes_key)?)
        } else {
            None
        };
        let body = match &key {
            Some(key) => {
                let enc = encrypt(key, &push.xml, &c.appid);
                let msg_signature = sha1_sorted(&mut [&c.mp_token, &timestamp, &nonce, &enc]);
                query.push(("encrypt_type", "aes".into()));
                query.push(("msg_signature", msg_signature));
                format!(
                    "<xml><ToUserName>{}</ToUserName><Encrypt>{}</Encrypt></xml>",
                    cdata(&c.mp_original_id),
                    cdata(&enc)
                )
            }
            None => push.xml.clone(),
        };
        let res = self
            .inner
            .http
            .post(url)
            .query(&query)
            .header("content-type", "text/xml")
            .body(body)
            .send()
            .await
            .map_err(|e| SandboxError::Http(format!("push to {url}: {e}")))?;
        let status = res.status().as_u16();
        let text = res
            .text()
            .await
            .map_err(|e| SandboxError::Http(e.to_string()))?;
        let text = text.trim();
        if status != 200 || text.is_empty() || text == "success" {
            return Ok(MpAnswer {
                status,
                content: None,
            });
        }
        let reply = match &key {
            Some(key) => {
                let enc = field(text, "Encrypt")
                    .ok_or_else(|| SandboxError::Http("reply without Encrypt".into()))?;
                let ts = field(text, "TimeStamp").unwrap_or_default();
                let n = field(text, "Nonce").unwrap_or_default();
                let sig = field(text, "MsgSignature").unwrap_or_default();
                if sig != sha1_sorted(&mut [&c.mp_token, &ts, &n, &enc]) {
                    return Err(SandboxError::Http(
                        "reply MsgSignature does not verify".into(),
                    ));
                }
                decrypt(key, &enc, &c.appid).ok_or_else(|| {
                    SandboxError::Http("reply does not decrypt for this appid".into())
                })?
            }
            None => text.to_string(),
        };
        if field(&reply, "ToUserName").as_deref() != field(&push.xml, "FromUserName").as_deref() {
            return Err(SandboxError::Http(
                "reply not addressed to the sender".into(),
            ));
        }
        Ok(MpAnswer {
            status,
            content: field(&reply, "Content"),
        })
    }
}
