//! Answer builders: signed v2 XML, signed v3 JSON, and fault rendering.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::crypto::{random_alnum, random_hex_upper, rsa_sign, v2_sign, V2SignType};
use crate::state::{AnswerSigner, Endpoint, Fault, Sandbox};
use crate::util::{status, wall_ms};

/// Pops the endpoint's next fault: `Ok(corrupt_signature)` to go on, `Err(answer)` to stop.
pub(crate) async fn pre(sb: &Sandbox, ep: Endpoint) -> Result<bool, Response> {
    match sb.take_fault(ep).await {
        None => Ok(false),
        Some(Fault::CorruptSignature) => Ok(true),
        Some(f) => {
            tracing::info!(target: "wechat_sandbox", endpoint = ?ep, fault = ?f, "injected fault");
            Err(render_fault(sb, f))
        }
    }
}

pub(crate) fn render_fault(sb: &Sandbox, f: Fault) -> Response {
    match f {
        Fault::Errcode { errcode, errmsg } => {
            Json(json!({"errcode": errcode, "errmsg": errmsg})).into_response()
        }
        Fault::Http { status: s, body } => (status(s), body).into_response(),
        Fault::V2ReturnFail { return_msg } => v2_return_fail(&return_msg),
        Fault::V2ResultFail {
            err_code,
            err_code_des,
        } => {
            let c = sb.creds();
            let mut m = BTreeMap::new();
            m.insert("return_code".into(), "SUCCESS".into());
            m.insert("return_msg".into(), "OK".into());
            m.insert("appid".into(), c.appid.clone());
            m.insert("mch_id".into(), c.mchid.clone());
            m.insert("result_code".into(), "FAIL".into());
            m.insert("err_code".into(), err_code);
            m.insert("err_code_des".into(), err_code_des);
            v2_signed(sb, m, V2SignType::Md5, false)
        }
        Fault::V3Error {
            status: s,
            code,
            message,
        } => v3_error(sb, s, &code, &message),
        Fault::CorruptSignature | Fault::Delay(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "unexpected fault").into_response()
        }
    }
}

pub(crate) fn xml_response(s: String) -> Response {
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], s).into_response()
}

/// `return_code=FAIL` (unsigned, as WeChat does).
pub(crate) fn v2_return_fail(msg: &str) -> Response {
    xml_response(crate::xml::build([
        ("return_code", "FAIL"),
        ("return_msg", msg),
    ]))
}

/// Adds `nonce_str` and `sign` and renders the XML.
pub(crate) fn v2_signed(
    sb: &Sandbox,
    mut fields: BTreeMap<String, String>,
    ty: V2SignType,
    corrupt: bool,
) -> Response {
    fields.insert("nonce_str".into(), random_alnum(16));
    let key = &sb.creds().pay_key_v2;
    let sign = if corrupt {
        v2_sign(&fields, &format!("{key}x"), ty)
    } else {
        v2_sign(&fields, key, ty)
    };
    fields.insert("sign".into(), sign);
    xml_response(crate::xml::build_map(&fields))
}

/// Signature headers for a v3 answer or notification: (timestamp, nonce, signature, serial).
pub(crate) fn v3_sign_parts(
    sb: &Sandbox,
    body: &[u8],
    ts: i64,
    corrupt: bool,
) -> (String, String, String, String) {
    let nonce = random_hex_upper(32);
    let mut msg = format!("{ts}\n{nonce}\n").into_bytes();
    msg.extend_from_slice(body);
    msg.push(b'\n');
    if corrupt {
        msg.push(b'!');
    }
    let keys = &sb.inner.keys;
    let c = sb.creds();
    let (key, serial) = match sb.opts().answer_signer {
        AnswerSigner::PublicKey => (&keys.wechatpay_private, c.wechatpay_public_key_id.clone()),
        AnswerSigner::PlatformCertificate => (&keys.platform_private, c.platform_serial.clone()),
    };
    (ts.to_string(), nonce, rsa_sign(key, &msg), serial)
}

/// A v3 answer carrying `Wechatpay-*` signature headers over the exact body bytes.
pub(crate) fn v3_signed(
    sb: &Sandbox,
    status: StatusCode,
    body: Vec<u8>,
    corrupt: bool,
) -> Response {
    let (ts, nonce, sig, serial) = v3_sign_parts(sb, &body, wall_ms() / 1000, corrupt);
    let empty = body.is_empty();
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    if !empty {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
    }
    let mut put = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    put("Wechatpay-Timestamp", ts);
    put("Wechatpay-Nonce", nonce);
    put("Wechatpay-Signature", sig);
    put("Wechatpay-Serial", serial);
    put(
        "Wechatpay-Signature-Type",
        "WECHATPAY2-SHA256-RSA2048".into(),
    );
    put("Request-ID", format!("08{}", random_hex_upper(30)));
    r
}

pub(crate) fn v3_json(
    sb: &Sandbox,
    status: StatusCode,
    v: &serde_json::Value,
    corrupt: bool,
) -> Response {
    v3_signed(
        sb,
        status,
        serde_json::to_vec(v).unwrap_or_default(),
        corrupt,
    )
}

/// `{"code","message"}` with this status, signed.
pub(crate) fn v3_error(sb: &Sandbox, s: u16, code: &str, message: &str) -> Response {
    v3_json(
        sb,
        status(s),
        &json!({"code": code, "message": message}),
        false,
    )
}
