//! The official account's server (服务器配置, 消息加解密): what WeChat pushes to the shop's
//! `服务器地址` and how the shop answers.
//!
//! - URL verification and every push carry `signature` = SHA-1 hex of token, timestamp and nonce
//!   sorted as strings and concatenated.
//! - Safe mode (安全模式) and compatible mode (兼容模式) add `msg_signature` = SHA-1 hex of token,
//!   timestamp, nonce and the `Encrypt` text, sorted and concatenated. `Encrypt` is base64 of
//!   AES-256-CBC (key = base64-decode(EncodingAESKey + "="), IV = the key's first 16 bytes, PKCS#7
//!   padding to a multiple of **32** bytes) over 16 random bytes, the message's length as 4
//!   big-endian bytes, the message XML and the appid — which must be the shop's own.
//! - Replies in safe mode are encrypted the same way inside
//!   `<xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>`.
//!
//! Messages are flat XML documents, read with [`crate::xml::parse_flat`] (no DOCTYPE, no
//! entities, size-capped) like Pay v2's.

use std::collections::BTreeMap;

use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::Engine as _;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use crate::xml::{cdata, parse_flat, XmlError};

type Enc = cbc::Encryptor<aes::Aes256>;
type Dec = cbc::Decryptor<aes::Aes256>;

/// Largest push accepted (messages are a few hundred bytes; an encrypted one twice that).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// WeChat pads to multiples of this, not of the AES block.
const PAD_TO: usize = 32;

/// Why a push was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MpError {
    /// `signature` or `msg_signature` does not match.
    #[error("signature mismatch")]
    Signature,
    /// `WECHAT_MP_AES_KEY` is not 43 base64 characters.
    #[error("EncodingAESKey must be 43 characters of base64 (it decodes to 32 bytes)")]
    AesKey,
    /// Base64, block length, padding or length field wrong: not WeChat's ciphertext for this key.
    #[error("cannot decrypt the message")]
    Decrypt,
    /// Decrypted, but for another official account.
    #[error("message for another appid")]
    AppId,
    /// Encrypted push without the keys to read it, or the reverse.
    #[error("{0}")]
    Mode(&'static str),
    /// The XML.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// A field every message has is missing.
    #[error("message without <{0}>")]
    Missing(&'static str),
}

fn sha1_sorted(parts: &mut [&str]) -> String {
    parts.sort_unstable();
    let mut h = Sha1::new();
    for p in parts.iter() {
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// `signature` of the URL verification and of every push.
pub fn signature(token: &str, timestamp: &str, nonce: &str) -> String {
    sha1_sorted(&mut [token, timestamp, nonce])
}

/// `msg_signature` of an encrypted push or reply.
pub fn msg_signature(token: &str, timestamp: &str, nonce: &str, encrypt: &str) -> String {
    sha1_sorted(&mut [token, timestamp, nonce, encrypt])
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The 32-byte AES key of an EncodingAESKey.
#[derive(Clone)]
pub struct AesKey([u8; 32]);

impl AesKey {
    /// From the 43-character EncodingAESKey of the console.
    pub fn from_encoding_aes_key(s: &str) -> Result<Self, MpError> {
        if s.len() != 43 {
            return Err(MpError::AesKey);
        }
        // The console's keys are not canonical base64 (the 43rd character carries bits beyond
        // the 32 bytes; Tencent's own sample key does): those bits are ignored, as WeChat does.
        let lenient = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
        );
        let raw = lenient
            .decode(format!("{s}="))
            .map_err(|_| MpError::AesKey)?;
        let key: [u8; 32] = raw.try_into().map_err(|_| MpError::AesKey)?;
        Ok(Self(key))
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.0[..16]);
        iv
    }
}

impl std::fmt::Debug for AesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AesKey(<redacted>)")
    }
}

/// The shop's side of the server configuration: token, optional EncodingAESKey, appid.
#[derive(Clone, Debug)]
pub struct MpServer {
    token: crate::Secret<String>,
    key: Option<AesKey>,
    appid: String,
}

/// A push, verified (and decrypted): the message, and whether the reply must be encrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Push {
    /// The message, verified (and decrypted).
    pub message: Message,
    /// It came encrypted: the reply must be too.
    pub encrypted: bool,
}

impl MpServer {
    /// `encoding_aes_key`: `None` in plaintext mode.
    pub fn new(token: &str, encoding_aes_key: Option<&str>, appid: &str) -> Result<Self, MpError> {
        Ok(Self {
            token: crate::Secret::new(token.to_string()),
            key: encoding_aes_key
                .map(AesKey::from_encoding_aes_key)
                .transpose()?,
            appid: appid.to_string(),
        })
    }

    /// The `signature` WeChat would send with `timestamp` and `nonce` (a self-check: `wxmall
    /// doctor` verifies the server URL with it).
    pub fn signature_for(&self, timestamp: &str, nonce: &str) -> String {
        self::signature(self.token.expose_str(), timestamp, nonce)
    }

    /// Whether `signature` is WeChat's for this token (URL verification and every push).
    pub fn verify_signature(&self, signature: &str, timestamp: &str, nonce: &str) -> bool {
        same(
            signature,
            &self::signature(self.token.expose_str(), timestamp, nonce),
        )
    }

    /// Decrypts `encrypt` after checking `msg_signature`; the message XML.
    pub fn decrypt(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypt: &str,
    ) -> Result<String, MpError> {
        let key = self
            .key
            .as_ref()
            .ok_or(MpError::Mode("encrypted push, but no WECHAT_MP_AES_KEY"))?;
        let expected = self::msg_signature(self.token.expose_str(), timestamp, nonce, encrypt);
        if !same(msg_signature, &expected) {
            return Err(MpError::Signature);
        }
        decrypt_with(key, encrypt, &self.appid)
    }

    /// Reads a push: `query` holds `signature`, `timestamp`, `nonce` and, when encrypted,
    /// `encrypt_type=aes` and `msg_signature`.
    pub fn open(&self, query: &BTreeMap<String, String>, body: &[u8]) -> Result<Push, MpError> {
        let q = |k: &str| query.get(k).map(String::as_str).unwrap_or_default();
        let (timestamp, nonce) = (q("timestamp"), q("nonce"));
        if !self.verify_signature(q("signature"), timestamp, nonce) {
            return Err(MpError::Signature);
        }
        if q("encrypt_type") == "aes" {
            let envelope = parse_flat(body, MAX_MESSAGE_BYTES)?;
            let encrypt = envelope.get("Encrypt").ok_or(MpError::Missing("Encrypt"))?;
            let xml = self.decrypt(q("msg_signature"), timestamp, nonce, encrypt)?;
            Ok(Push {
                message: Message::parse(xml.as_bytes())?,
                encrypted: true,
            })
        } else {
            Ok(Push {
                message: Message::parse(body)?,
                encrypted: false,
            })
        }
    }

    /// The answer to a push: `xml` as it is, or encrypted when the push was.
    pub fn seal(&self, xml: &str, encrypted: bool, timestamp: &str, nonce: &str) -> String {
        match (&self.key, encrypted) {
            (Some(key), true) => {
                let mut random = [0u8; 16];
                rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut random);
                let encrypt = encrypt_with(key, xml, &self.appid, random);
                let sig = self::msg_signature(self.token.expose_str(), timestamp, nonce, &encrypt);
                format!(
                    "<xml><Encrypt>{}</Encrypt><MsgSignature>{}</MsgSignature>\
                     <TimeStamp>{timestamp}</TimeStamp><Nonce>{}</Nonce></xml>",
                    cdata(&encrypt),
                    cdata(&sig),
                    cdata(nonce)
                )
            }
            _ => xml.to_string(),
        }
    }
}

/// `Encrypt` of `xml` for `appid` with these 16 random bytes (deterministic: tests pin it).
pub fn encrypt_with(key: &AesKey, xml: &str, appid: &str, random: [u8; 16]) -> String {
    let mut plain = Vec::with_capacity(20 + xml.len() + appid.len() + PAD_TO);
    plain.extend_from_slice(&random);
    plain.extend_from_slice(&(xml.len() as u32).to_be_bytes());
    plain.extend_from_slice(xml.as_bytes());
    plain.extend_from_slice(appid.as_bytes());
    let pad = PAD_TO - plain.len() % PAD_TO;
    plain.extend(std::iter::repeat_n(pad as u8, pad));
    let len = plain.len();
    let out = Enc::new(&key.0.into(), &key.iv().into())
        .encrypt_padded_mut::<NoPadding>(&mut plain, len)
        .expect("whole blocks");
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// The message XML inside `encrypt`, checking it was made for `appid`.
pub fn decrypt_with(key: &AesKey, encrypt: &str, appid: &str) -> Result<String, MpError> {
    let mut buf = base64::engine::general_purpose::STANDARD
        .decode(encrypt.trim())
        .map_err(|_| MpError::Decrypt)?;
    if buf.is_empty() || buf.len() % 16 != 0 {
        return Err(MpError::Decrypt);
    }
    let plain = Dec::new(&key.0.into(), &key.iv().into())
        .decrypt_padded_mut::<NoPadding>(&mut buf)
        .map_err(|_| MpError::Decrypt)?;
    let pad = *plain.last().ok_or(MpError::Decrypt)? as usize;
    if pad == 0 || pad > PAD_TO || pad > plain.len() {
        return Err(MpError::Decrypt);
    }
    let body = &plain[..plain.len() - pad];
    if body.len() < 20 {
        return Err(MpError::Decrypt);
    }
    let len = u32::from_be_bytes([body[16], body[17], body[18], body[19]]) as usize;
    let rest = &body[20..];
    if len > rest.len() {
        return Err(MpError::Decrypt);
    }
    let (xml, from_appid) = rest.split_at(len);
    if from_appid != appid.as_bytes() {
        return Err(MpError::AppId);
    }
    String::from_utf8(xml.to_vec()).map_err(|_| MpError::Decrypt)
}

/// A message or event pushed to the server (the fields the shop reads).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The official account (`gh_…`).
    pub to_user: String,
    /// The follower's openid.
    pub from_user: String,
    /// `CreateTime`, Unix seconds.
    pub create_time: i64,
    /// `text`, `event`, `image`, …
    pub msg_type: String,
    /// `text` messages.
    pub content: Option<String>,
    /// Messages (not events).
    pub msg_id: Option<String>,
    /// `subscribe`, `unsubscribe`, `SCAN`, `CLICK`, `VIEW`, … (WeChat's case).
    pub event: Option<String>,
    /// `qrscene_<scene>` (subscribe from a QR code), `<scene>` (SCAN), the menu key (CLICK).
    pub event_key: Option<String>,
    /// Card events (`user_get_card`, `user_del_card`, `user_consume_card`): the card.
    pub card_id: Option<String>,
    /// Card events: the code in the shopper's wallet.
    pub user_card_code: Option<String>,
}

impl Message {
    /// Parses a plaintext message.
    pub fn parse(xml: &[u8]) -> Result<Self, MpError> {
        let mut m = parse_flat(xml, MAX_MESSAGE_BYTES)?;
        let mut take = |k: &str| m.remove(k).filter(|v| !v.is_empty());
        Ok(Self {
            to_user: take("ToUserName").ok_or(MpError::Missing("ToUserName"))?,
            from_user: take("FromUserName").ok_or(MpError::Missing("FromUserName"))?,
            create_time: take("CreateTime")
                .and_then(|t| t.trim().parse().ok())
                .ok_or(MpError::Missing("CreateTime"))?,
            msg_type: take("MsgType")
                .map(|t| t.trim().to_string())
                .ok_or(MpError::Missing("MsgType"))?,
            content: take("Content"),
            msg_id: take("MsgId").map(|t| t.trim().to_string()),
            event: take("Event").map(|t| t.trim().to_string()),
            event_key: take("EventKey"),
            card_id: take("CardId").map(|t| t.trim().to_string()),
            user_card_code: take("UserCardCode").map(|t| t.trim().to_string()),
        })
    }

    /// What makes a repeated push the same push: the `MsgId` of a message, the sender and
    /// `CreateTime` of an event (WeChat's own rule).
    pub fn dedupe_key(&self) -> String {
        match &self.msg_id {
            Some(id) => format!("msg:{id}"),
            None => format!(
                "event:{}:{}:{}",
                self.from_user,
                self.create_time,
                self.event.as_deref().unwrap_or_default()
            ),
        }
    }

    /// The scene of a parametric QR code: `qrscene_X` on subscribe, `X` on SCAN.
    pub fn scene(&self) -> Option<&str> {
        let key = self.event_key.as_deref()?;
        match self.event.as_deref() {
            Some("subscribe") => key.strip_prefix("qrscene_").filter(|s| !s.is_empty()),
            Some("SCAN") => Some(key).filter(|s| !s.is_empty()),
            _ => None,
        }
    }

    /// A text reply to this message (passive reply, 被动回复).
    pub fn text_reply(&self, content: &str, now: i64) -> String {
        format!(
            "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName>\
             <CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType>\
             <Content>{}</Content></xml>",
            cdata(&self.from_user),
            cdata(&self.to_user),
            cdata(content)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Tencent's own samples for 消息加解密, as published with WXBizMsgCrypt (the Java sample's
    // `WXBizMsgCryptTest.testAesEncrypt`, and the Python/Node sample's decrypt case), copied
    // from public mirrors of the official sample code (e.g. github.com/Wyl015/wuyiling
    // work-test/…/aes/WXBizMsgCryptTest.java and github.com/fotock/WXbizMsgCrypt-Node README).
    const SAMPLE_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

    #[test]
    fn tencents_java_sample_encrypts_to_its_published_ciphertext() {
        let key = AesKey::from_encoding_aes_key(SAMPLE_KEY).unwrap();
        let got = encrypt_with(
            &key,
            "我是中文abcd123",
            "wxb11529c136998cb6",
            *b"aaaabbbbccccdddd",
        );
        assert_eq!(
            got,
            "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
        );
        assert_eq!(
            decrypt_with(&key, &got, "wxb11529c136998cb6").unwrap(),
            "我是中文abcd123"
        );
        assert_eq!(
            decrypt_with(&key, &got, "wx0000000000000000"),
            Err(MpError::AppId)
        );
    }

    #[test]
    fn tencents_decrypt_sample_verifies_and_opens() {
        let encrypt = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=";
        let server = MpServer::new("spamtest", Some(SAMPLE_KEY), "wx2c2769f8efd9abc2").unwrap();
        let xml = server
            .decrypt(
                "5d197aaffba7e9b25a30732f161a50dee96bd5fa",
                "1409735669",
                "1320562132",
                encrypt,
            )
            .unwrap();
        let m = Message::parse(xml.as_bytes()).unwrap();
        assert_eq!(m.to_user, "gh_10f6c3c3ac5a");
        assert_eq!(m.msg_type, "text");
        // A signature one character off, or the wrong appid, and nothing is read.
        assert_eq!(
            server.decrypt(
                "5d197aaffba7e9b25a30732f161a50dee96bd5fb",
                "1409735669",
                "1320562132",
                encrypt
            ),
            Err(MpError::Signature)
        );
        let other = MpServer::new("spamtest", Some(SAMPLE_KEY), "wx2c2769f8efd9abc3").unwrap();
        assert_eq!(
            other.decrypt(
                "5d197aaffba7e9b25a30732f161a50dee96bd5fa",
                "1409735669",
                "1320562132",
                encrypt
            ),
            Err(MpError::AppId)
        );
    }

    #[test]
    fn signature_is_sha1_of_the_sorted_strings() {
        // Sorted by hand: "1320562132" < "1409735669" < "spamtest".
        let mut h = Sha1::new();
        h.update(b"13205621321409735669spamtest");
        assert_eq!(
            signature("spamtest", "1409735669", "1320562132"),
            hex::encode(h.finalize())
        );
        let s = MpServer::new("spamtest", None, "wx").unwrap();
        assert!(s.verify_signature(&signature("spamtest", "1", "2"), "1", "2"));
        assert!(!s.verify_signature(&signature("spamtest", "1", "2"), "1", "3"));
    }

    #[test]
    fn a_sealed_reply_opens_with_the_same_keys_and_tampering_is_refused() {
        let s = MpServer::new("tok", Some(SAMPLE_KEY), "wxabc").unwrap();
        let sealed = s.seal("<xml><a>1</a></xml>", true, "100", "n1");
        let f = parse_flat(sealed.as_bytes(), MAX_MESSAGE_BYTES).unwrap();
        assert_eq!(f["TimeStamp"], "100");
        assert_eq!(
            s.decrypt(&f["MsgSignature"], "100", "n1", &f["Encrypt"])
                .unwrap(),
            "<xml><a>1</a></xml>"
        );
        // Not encrypted when the push was not.
        assert_eq!(s.seal("<xml/>", false, "1", "2"), "<xml/>");
        // Bytes flipped in the ciphertext: refused, whatever the signature says.
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(&f["Encrypt"])
            .unwrap();
        raw[20] ^= 1;
        let bad = base64::engine::general_purpose::STANDARD.encode(raw);
        let sig = msg_signature("tok", "100", "n1", &bad);
        assert!(s.decrypt(&sig, "100", "n1", &bad).is_err());
        assert_eq!(
            AesKey::from_encoding_aes_key("short").unwrap_err(),
            MpError::AesKey
        );
    }

    #[test]
    fn events_dedupe_by_sender_and_time_and_carry_their_scene() {
        let m = Message::parse(
            b"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>\
              <CreateTime>123</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event>\
              <EventKey><![CDATA[qrscene_product:3]]></EventKey></xml>",
        )
        .unwrap();
        assert_eq!(m.scene(), Some("product:3"));
        assert_eq!(m.dedupe_key(), "event:o1:123:subscribe");
        let reply = m.text_reply("hi", 5);
        let r = parse_flat(reply.as_bytes(), MAX_MESSAGE_BYTES).unwrap();
        assert_eq!(
            (r["ToUserName"].as_str(), r["FromUserName"].as_str()),
            ("o1", "gh_1")
        );
        assert_eq!(r["Content"], "hi");
        assert!(Message::parse(b"<!DOCTYPE x><xml/>").is_err());
    }
}
