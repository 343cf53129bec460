//! The console's WeChat launch tools: `product_qrcode` (a product's QR codes to print) and
//! `doctor` (the setup doctor of `wxmall doctor`, for the owner, on a page).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::accounts::Role;
use super::{error, internal, parse, signed_in, AdminState};
use app::error::ErrorCode;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct QrBody {
    product_id: i64,
    /// Also the parametric code: follow the official account, then the product.
    follow: bool,
}

/// `product_qrcode {"product_id","follow"?}` → `{"plain":{"url","svg"},"follow"?:{"scene","url","svg"}}`.
/// The plain code opens the product page; the parametric one (`qrcode/create`, permanent, scene
/// `product:{id}` — WeChat answers the same code for the same scene) asks to follow the official
/// account first, then the welcome links the product and the scene counts as the channel.
pub(super) async fn product_qrcode(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = signed_in(&st, &headers).await {
        return r;
    }
    let b: QrBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let exists: Option<i64> = match crate::sql!(&st.pool, e => sqlx::query_scalar("SELECT id FROM products WHERE id = $1")
        .bind(b.product_id)
        .fetch_optional(e).await)
    {
        Ok(v) => v,
        Err(e) => return internal(e),
    };
    if exists.is_none() {
        return error(ErrorCode::NotFound, "商品不存在");
    }
    let url = format!(
        "{}/product/{}",
        st.public_url.trim_end_matches('/'),
        b.product_id
    );
    let plain = match crate::qr::svg(&url, 240) {
        Ok(svg) => json!({"url": url, "svg": svg}),
        Err(e) => return internal(e),
    };
    let mut out = json!({"plain": plain});
    if b.follow {
        let scene = format!("product:{}", b.product_id);
        match st.wechat.mp_api.create_qrcode(&scene, None).await {
            Ok(ticket) => match crate::qr::svg(&ticket.url, 240) {
                Ok(svg) => out["follow"] = json!({"scene": scene, "url": ticket.url, "svg": svg}),
                Err(e) => return internal(e),
            },
            Err(e) => {
                tracing::warn!(error = %e, "qrcode/create failed");
                return error(
                    ErrorCode::PaymentUnavailable,
                    &format!(
                        "微信未能生成二维码：{}",
                        crate::doctor::explain_token_error(&e)
                    ),
                );
            }
        }
    }
    Json(out).into_response()
}

/// `doctor` (owner): the checks of `wxmall doctor`, run by this instance.
pub(super) async fn doctor(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    let admin = match signed_in(&st, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if admin.role != Role::Owner {
        return error(ErrorCode::Forbidden, "只有店主可以查看配置检查");
    }
    let http = match crate::doctor::probe_client() {
        Ok(h) => h,
        Err(e) => return internal(e),
    };
    let report = crate::doctor::examine(&crate::doctor::Inputs {
        public_url: &st.public_url,
        site_root: &st.site_root,
        wechat: &st.wechat,
        pool: &st.pool,
        redis_url: st.redis_url.as_deref(),
        http,
    })
    .await;
    Json(json!({"failed": report.failed(), "checks": report.checks, "paste": report.paste}))
        .into_response()
}
