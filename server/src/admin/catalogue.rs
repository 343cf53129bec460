//! The console's catalogue: categories, products with their SKUs, stock.
//!
//! - `list_categories`, `save_category` `{"id"?,"name","sort"?}`, `delete_category`
//!   `{"category_id"}` (only when no product is in it: 409 otherwise).
//! - `list_products` `{"category_id"?,"q"?}`: every product, on sale or not, with its live SKUs.
//! - `save_product` `{"id"?,"name","category_id","description","images":[…],"on_sale","sort"?,
//!   "skus":[{"id"?,"name","price_fen","stock"?}]}`: no `id` creates. A SKU left out of `skus`
//!   is removed: deleted when nothing refers to it, else *retired* (`retired_at`: gone from the
//!   shop, kept for the orders that name it). `stock` applies to new SKUs only: an existing
//!   SKU's stock changes through `adjust_stock`, so a form opened before a sale cannot put the
//!   sold units back.
//! - `adjust_stock` `{"sku_id","delta"?|"set"?,"reason"}`: one conditional UPDATE (never below 0).
//! - `low_stock` `{"threshold"?}` (default 5): live SKUs of products on sale at or below it.
//!
//! Roles: `staff` may do all of it except set a price (a new SKU or a changed `price_fen`:
//! 403). Every write is in the audit log with before and after for prices and stock. Edits
//! reach shoppers at once: the shop reads the catalogue from the database on every request
//! (there is no catalogue cache to invalidate, on this or another instance).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::accounts::Role;
use super::{
    audit, contains_pattern, error, field, internal, invalid, parse, signed_in, Admin, AdminState,
};
use app::error::ErrorCode;
use app::model::FieldError;

/// Longest names and descriptions (characters).
const NAME_MAX: usize = 60;
const DESCRIPTION_MAX: usize = 5000;
/// Images per product, SKUs per product.
const IMAGES_MAX: usize = 9;
const SKUS_MAX: usize = 50;
/// The highest price a SKU may have: ¥1,000,000.00 (WeChat Pay's limits are per merchant; this
/// catches a price typed in fen where yuan was meant).
const PRICE_MAX_FEN: i64 = 100_000_000;
const STOCK_MAX: i64 = 1_000_000_000;

// ------------------------------------------------------------------ categories

pub(super) async fn list_categories(State(st): State<AdminState>, headers: HeaderMap) -> Response {
    if let Err(r) = signed_in(&st, &headers).await {
        return r;
    }
    let rows: Vec<(i64, String, i64, i64)> = match crate::sql!(&st.pool, e => sqlx::query_as(
        "SELECT c.id, c.name, CAST(c.sort AS BIGINT), \
           (SELECT COUNT(*) FROM products p WHERE p.category_id = c.id) \
         FROM categories c ORDER BY c.sort, c.id",
    )
    .fetch_all(e).await)
    {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    Json(
        rows.into_iter()
            .map(|(id, name, sort, products)| {
                json!({"id": id, "name": name, "sort": sort, "products": products})
            })
            .collect::<Vec<_>>(),
    )
    .into_response()
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct CategoryBody {
    id: Option<i64>,
    name: String,
    sort: Option<i64>,
}

pub(super) async fn save_category(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let admin = match signed_in(&st, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let b: CategoryBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let name = b.name.trim().to_string();
    if name.is_empty() || name.chars().count() > NAME_MAX {
        return invalid(vec![field("name", "请填写分类名称（最多 60 个字）")]);
    }
    let result = async {
        let mut tx = st.pool.begin().await?;
        let taken: Option<i64> = crate::sql!(&mut tx, e => sqlx::query_scalar(
            "SELECT id FROM categories WHERE name = $1 AND ($2 IS NULL OR id <> $2)")
            .bind(&name).bind(b.id).fetch_optional(e).await)?;
        if taken.is_some() {
            return Ok(Err(invalid(vec![field("name", "已有同名分类")])));
        }
        let saved: Option<(i64, String, i64)> = match b.id {
            None => crate::sql!(&mut tx, e => sqlx::query_as(
                "INSERT INTO categories (name, sort) VALUES ($1, $2) \
                 RETURNING id, name, CAST(sort AS BIGINT)")
                .bind(&name)
                .bind(b.sort.unwrap_or(0))
                .fetch_optional(e).await)?,
            Some(id) => crate::sql!(&mut tx, e => sqlx::query_as(
                "UPDATE categories SET name = $1, sort = COALESCE($2, sort) WHERE id = $3 \
                 RETURNING id, name, CAST(sort AS BIGINT)")
                .bind(&name)
                .bind(b.sort)
                .bind(id)
                .fetch_optional(e).await)?,
        };
        let Some((id, name, sort)) = saved else {
            return Ok(Err(error(ErrorCode::NotFound, "分类不存在")));
        };
        tx.commit().await?;
        audit(
            &st.pool,
            &admin,
            "save_category",
            json!({"id": id, "name": name, "sort": sort, "new": b.id.is_none()}),
        )
        .await?;
        Ok::<_, sqlx::Error>(Ok(json!({"id": id, "name": name, "sort": sort})))
    }
    .await;
    match result {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(r)) => r,
        Err(e) => internal(e),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct CategoryId {
    category_id: i64,
}

pub(super) async fn delete_category(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let admin = match signed_in(&st, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Ok(b) = serde_json::from_slice::<CategoryId>(&body) else {
        return error(ErrorCode::BadRequest, "需要 category_id");
    };
    // One statement: a product added meanwhile keeps its category.
    let deleted: Result<Option<String>, sqlx::Error> = crate::sql!(&st.pool, e => sqlx::query_scalar(
        "DELETE FROM categories WHERE id = $1 \
         AND NOT EXISTS (SELECT 1 FROM products WHERE category_id = $1) RETURNING name")
        .bind(b.category_id)
        .fetch_optional(e).await);
    match deleted {
        Ok(Some(name)) => {
            if let Err(e) = audit(
                &st.pool,
                &admin,
                "delete_category",
                json!({"id": b.category_id, "name": name}),
            )
            .await
            {
                return internal(e);
            }
            Json(json!({"ok": true})).into_response()
        }
        Ok(None) => {
            let exists: Result<Option<i64>, sqlx::Error> = crate::sql!(&st.pool, e => sqlx::query_scalar(
                "SELECT id FROM categories WHERE id = $1")
                .bind(b.category_id).fetch_optional(e).await);
            match exists {
                Ok(Some(_)) => error(ErrorCode::InvalidState, "分类下还有商品，不能删除"),
                Ok(None) => error(ErrorCode::NotFound, "分类不存在"),
                Err(e) => internal(e),
            }
        }
        Err(e) => internal(e),
    }
}

// ------------------------------------------------------------------ products

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct ListProductsBody {
    category_id: Option<i64>,
    q: Option<String>,
}

/// A `products` row as the console reads it: id, category_id, name, description, image,
/// images (JSON), sort, on_sale.
type ProductRow = (i64, i64, String, String, String, String, i64, bool);

async fn product_json(pool: &crate::db::Db, id: i64) -> Result<Option<Value>, sqlx::Error> {
    let row: Option<ProductRow> = crate::sql!(pool, e => sqlx::query_as(
        "SELECT id, category_id, name, description, image, images, CAST(sort AS BIGINT), on_sale \
         FROM products WHERE id = $1")
        .bind(id).fetch_optional(e).await)?;
    let Some((id, category_id, name, description, image, images, sort, on_sale)) = row else {
        return Ok(None);
    };
    let skus: Vec<(i64, String, i64, i64)> = crate::sql!(pool, e => sqlx::query_as(
        "SELECT id, name, price_fen, stock FROM skus WHERE product_id = $1 AND retired_at IS NULL \
         ORDER BY sort, id")
        .bind(id).fetch_all(e).await)?;
    let mut all_images = vec![image];
    all_images.extend(
        images
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned),
    );
    Ok(Some(json!({
        "id": id,
        "category_id": category_id,
        "name": name,
        "description": description,
        "images": all_images,
        "sort": sort,
        "on_sale": on_sale,
        "skus": skus.into_iter().map(|(id, name, price_fen, stock)| json!({
            "id": id, "name": name, "price_fen": price_fen, "stock": stock,
        })).collect::<Vec<_>>(),
    })))
}

pub(super) async fn list_products(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = signed_in(&st, &headers).await {
        return r;
    }
    let b: ListProductsBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let q =
        b.q.as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(contains_pattern);
    let ids: Vec<i64> = match crate::sql!(&st.pool, e => sqlx::query_scalar(
        "SELECT p.id FROM products p JOIN categories c ON c.id = p.category_id \
         WHERE ($1 IS NULL OR p.category_id = $1) AND ($2 IS NULL OR p.name LIKE $2 ESCAPE '\\') \
         ORDER BY c.sort, c.id, p.sort, p.id")
        .bind(b.category_id)
        .bind(q)
        .fetch_all(e).await)
    {
        Ok(ids) => ids,
        Err(e) => return internal(e),
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match product_json(&st.pool, id).await {
            Ok(Some(p)) => out.push(p),
            Ok(None) => {}
            Err(e) => return internal(e),
        }
    }
    Json(out).into_response()
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct ProductBody {
    id: Option<i64>,
    name: String,
    category_id: i64,
    description: String,
    images: Vec<String>,
    on_sale: Option<bool>,
    sort: Option<i64>,
    skus: Vec<SkuBody>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(default, deny_unknown_fields)]
pub(super) struct SkuBody {
    id: Option<i64>,
    name: String,
    price_fen: i64,
    stock: Option<i64>,
}

/// A picture the shop can show: a site path (`/images/…`, an upload) without tricks.
fn image_path_ok(p: &str) -> bool {
    p.starts_with('/')
        && !p.starts_with("//")
        && !p.contains("..")
        && p.len() <= 300
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
}

fn validate(b: &ProductBody) -> Vec<FieldError> {
    let mut f = Vec::new();
    let name = b.name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX {
        f.push(field("name", "请填写商品名称（最多 60 个字）"));
    }
    if b.description.chars().count() > DESCRIPTION_MAX {
        f.push(field("description", "商品描述最多 5000 个字"));
    }
    if b.images.is_empty() || b.images.len() > IMAGES_MAX {
        f.push(field("images", "请上传 1 到 9 张商品图片"));
    } else if let Some(bad) = b.images.iter().find(|p| !image_path_ok(p)) {
        f.push(field("images", &format!("图片地址无效：{bad}")));
    }
    if b.skus.is_empty() || b.skus.len() > SKUS_MAX {
        f.push(field("skus", "请填写 1 到 50 个规格"));
    }
    let mut names = std::collections::HashSet::new();
    for (i, s) in b.skus.iter().enumerate() {
        let n = s.name.trim();
        if n.is_empty() || n.chars().count() > NAME_MAX {
            f.push(field(
                &format!("skus[{i}].name"),
                "请填写规格名称（最多 60 个字）",
            ));
        } else if !names.insert(n.to_string()) {
            f.push(field(&format!("skus[{i}].name"), "规格名称重复"));
        }
        if s.price_fen <= 0 || s.price_fen > PRICE_MAX_FEN {
            f.push(field(
                &format!("skus[{i}].price_fen"),
                "价格须大于 0 元，最多 1,000,000 元",
            ));
        }
        match (s.id, s.stock) {
            (_, Some(stock)) if !(0..=STOCK_MAX).contains(&stock) => {
                f.push(field(&format!("skus[{i}].stock"), "库存不能小于 0"))
            }
            _ => {}
        }
    }
    f
}

pub(super) async fn save_product(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let admin = match signed_in(&st, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let b: ProductBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(ErrorCode::BadRequest, &format!("无法读取请求：{e}")),
    };
    let problems = validate(&b);
    if !problems.is_empty() {
        return invalid(problems);
    }
    match save_product_tx(&st, &admin, &b).await {
        Ok(Ok(id)) => match product_json(&st.pool, id).await {
            Ok(Some(p)) => Json(p).into_response(),
            Ok(None) => error(ErrorCode::NotFound, "商品不存在"),
            Err(e) => internal(e),
        },
        Ok(Err(r)) => r,
        Err(e) => internal(e),
    }
}

/// The whole save in one transaction: the product, its SKUs (priced, added, retired), the audit
/// row. `Ok(Err(answer))` for a refusal.
async fn save_product_tx(
    st: &AdminState,
    admin: &Admin,
    b: &ProductBody,
) -> Result<Result<i64, Response>, sqlx::Error> {
    let now = crate::shop::now();
    let mut tx = st.pool.begin().await?;
    let category: Option<i64> = crate::sql!(&mut tx, e => sqlx::query_scalar(
        "SELECT id FROM categories WHERE id = $1")
        .bind(b.category_id).fetch_optional(e).await)?;
    if category.is_none() {
        return Ok(Err(invalid(vec![field("category_id", "请选择分类")])));
    }
    let image = b.images[0].clone();
    let extra = b.images[1..].join("\n");
    let on_sale = b.on_sale.unwrap_or(true);
    let product_id = match b.id {
        None => crate::sql!(&mut tx, e => sqlx::query_scalar::<_, i64>(
            "INSERT INTO products (category_id, name, description, image, images, sort, on_sale) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id")
            .bind(b.category_id)
            .bind(b.name.trim())
            .bind(&b.description)
            .bind(&image)
            .bind(&extra)
            .bind(b.sort.unwrap_or(0))
            .bind(on_sale)
            .fetch_one(e).await)?,
        Some(id) => {
            let updated: Option<i64> = crate::sql!(&mut tx, e => sqlx::query_scalar(
                "UPDATE products SET category_id = $1, name = $2, description = $3, image = $4, \
                 images = $5, sort = COALESCE($6, sort), on_sale = $7 WHERE id = $8 RETURNING id")
                .bind(b.category_id)
                .bind(b.name.trim())
                .bind(&b.description)
                .bind(&image)
                .bind(&extra)
                .bind(b.sort)
                .bind(on_sale)
                .bind(id)
                .fetch_optional(e).await)?;
            match updated {
                Some(id) => id,
                None => return Ok(Err(error(ErrorCode::NotFound, "商品不存在"))),
            }
        }
    };
    // The live SKUs as they were.
    let before: Vec<(i64, String, i64, i64)> = crate::sql!(&mut tx, e => sqlx::query_as(
        "SELECT id, name, price_fen, stock FROM skus WHERE product_id = $1 AND retired_at IS NULL")
        .bind(product_id).fetch_all(e).await)?;
    let mut changes = Vec::new();
    for (sort, s) in b.skus.iter().enumerate() {
        match s.id {
            Some(id) => {
                let Some((_, old_name, old_price, stock)) =
                    before.iter().find(|(bid, ..)| *bid == id).cloned()
                else {
                    return Ok(Err(invalid(vec![field(
                        &format!("skus[{sort}].id"),
                        "规格不属于这个商品",
                    )])));
                };
                if old_price != s.price_fen && admin.role != Role::Owner {
                    return Ok(Err(error(ErrorCode::Forbidden, "只有店主可以改价格")));
                }
                crate::sql!(&mut tx, e => sqlx::query(
                    "UPDATE skus SET name = $1, price_fen = $2, sort = $3 WHERE id = $4")
                    .bind(s.name.trim())
                    .bind(s.price_fen)
                    .bind(sort as i64)
                    .bind(id)
                    .execute(e).await.map(crate::db::Done::from))?;
                if old_price != s.price_fen || old_name != s.name.trim() {
                    changes.push(json!({
                        "sku_id": id,
                        "name": [old_name, s.name.trim()],
                        "price_fen": [old_price, s.price_fen],
                        "stock": stock,
                    }));
                }
            }
            None => {
                if admin.role != Role::Owner {
                    return Ok(Err(error(
                        ErrorCode::Forbidden,
                        "只有店主可以定价（新增规格）",
                    )));
                }
                let stock = s.stock.unwrap_or(0);
                let id: i64 = crate::sql!(&mut tx, e => sqlx::query_scalar(
                    "INSERT INTO skus (product_id, name, price_fen, stock, sort) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id")
                    .bind(product_id)
                    .bind(s.name.trim())
                    .bind(s.price_fen)
                    .bind(stock)
                    .bind(sort as i64)
                    .fetch_one(e).await)?;
                changes.push(json!({
                    "sku_id": id, "added": s.name.trim(), "price_fen": [null, s.price_fen],
                    "stock": [null, stock],
                }));
            }
        }
    }
    // Left out: deleted if nothing names them, retired otherwise.
    for (id, name, price, stock) in &before {
        if b.skus.iter().any(|s| s.id == Some(*id)) {
            continue;
        }
        crate::sql!(&mut tx, e => sqlx::query("DELETE FROM cart_lines WHERE sku_id = $1")
            .bind(id).execute(e).await.map(crate::db::Done::from))?;
        let referenced: bool = crate::sql!(&mut tx, e => sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM order_lines WHERE sku_id = $1)")
            .bind(id).fetch_one(e).await)?;
        if referenced {
            crate::sql!(&mut tx, e => sqlx::query("UPDATE skus SET retired_at = $1 WHERE id = $2")
                .bind(now).bind(id).execute(e).await.map(crate::db::Done::from))?;
        } else {
            crate::sql!(&mut tx, e => sqlx::query("DELETE FROM skus WHERE id = $1")
                .bind(id).execute(e).await.map(crate::db::Done::from))?;
        }
        changes.push(json!({
            "sku_id": id, "removed": name, "retired": referenced, "price_fen": [price, null],
            "stock": [stock, null],
        }));
    }
    tx.commit().await?;
    audit(
        &st.pool,
        admin,
        "save_product",
        json!({
            "product_id": product_id,
            "new": b.id.is_none(),
            "name": b.name.trim(),
            "on_sale": on_sale,
            "skus": changes,
        }),
    )
    .await?;
    Ok(Ok(product_id))
}

// ------------------------------------------------------------------ stock

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct StockBody {
    sku_id: i64,
    delta: Option<i64>,
    set: Option<i64>,
    reason: String,
}

pub(super) async fn adjust_stock(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let admin = match signed_in(&st, &headers).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let b: StockBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(ErrorCode::BadRequest, &format!("无法读取请求：{e}")),
    };
    let reason = b.reason.trim();
    let mut problems = Vec::new();
    if reason.is_empty() || reason.chars().count() > 200 {
        problems.push(field("reason", "请填写调整原因（最多 200 个字）"));
    }
    match (b.delta, b.set) {
        (Some(d), None) if d != 0 && d.abs() <= STOCK_MAX => {}
        (None, Some(s)) if (0..=STOCK_MAX).contains(&s) => {}
        (Some(_), Some(_)) | (None, None) => {
            problems.push(field("delta", "请填写 delta（增减）或 set（设为）其中之一"))
        }
        (Some(_), None) => problems.push(field("delta", "增减数量须为非零整数")),
        (None, Some(_)) => problems.push(field("set", "库存不能小于 0")),
    }
    if !problems.is_empty() {
        return invalid(problems);
    }
    // One conditional UPDATE: concurrent adjustments (and orders) add up, never below zero.
    let row: Result<Option<(i64, i64)>, sqlx::Error> = match (b.delta, b.set) {
        (Some(d), _) => crate::sql!(&st.pool, e => sqlx::query_as(
            "UPDATE skus SET stock = stock + $1 WHERE id = $2 AND retired_at IS NULL \
             AND stock + $1 >= 0 RETURNING stock - $1, stock")
            .bind(d).bind(b.sku_id).fetch_optional(e).await),
        (_, Some(s)) => {
            let mut tx = match st.pool.begin().await {
                Ok(t) => t,
                Err(e) => return internal(e),
            };
            // The row first (PostgreSQL: its lock; SQLite: the write lock), then the new value.
            let old: Result<Option<i64>, sqlx::Error> = crate::sql!(&mut tx, e => sqlx::query_scalar(
                "UPDATE skus SET stock = stock WHERE id = $1 AND retired_at IS NULL RETURNING stock")
                .bind(b.sku_id).fetch_optional(e).await);
            let old = match old {
                Ok(Some(old)) => old,
                Ok(None) => {
                    let _ = tx.rollback().await;
                    return error(ErrorCode::NotFound, "规格不存在");
                }
                Err(e) => return internal(e),
            };
            let set: Result<crate::db::Done, sqlx::Error> = crate::sql!(&mut tx, e => sqlx::query(
                "UPDATE skus SET stock = $1 WHERE id = $2")
                .bind(s).bind(b.sku_id).execute(e).await.map(crate::db::Done::from));
            match set {
                Ok(_) => match tx.commit().await {
                    Ok(()) => Ok(Some((old, s))),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            }
        }
        _ => unreachable!("validated above"),
    };
    match row {
        Ok(Some((before, after))) => {
            if let Err(e) = audit(
                &st.pool,
                &admin,
                "adjust_stock",
                json!({"sku_id": b.sku_id, "stock": [before, after], "reason": reason}),
            )
            .await
            {
                return internal(e);
            }
            Json(json!({"sku_id": b.sku_id, "stock": after})).into_response()
        }
        Ok(None) => {
            let exists: Result<Option<i64>, sqlx::Error> = crate::sql!(&st.pool, e => sqlx::query_scalar(
                "SELECT stock FROM skus WHERE id = $1 AND retired_at IS NULL")
                .bind(b.sku_id).fetch_optional(e).await);
            match exists {
                Ok(Some(stock)) => invalid(vec![field(
                    "delta",
                    &format!("库存不足：现有 {stock}，不能减到 0 以下"),
                )]),
                Ok(None) => error(ErrorCode::NotFound, "规格不存在"),
                Err(e) => internal(e),
            }
        }
        Err(e) => internal(e),
    }
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct LowStockBody {
    threshold: Option<i64>,
}

pub(super) async fn low_stock(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = signed_in(&st, &headers).await {
        return r;
    }
    let b: LowStockBody = match parse(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let rows: Vec<(i64, i64, String, String, i64)> = match crate::sql!(&st.pool, e => sqlx::query_as(
        "SELECT s.id, p.id, p.name, s.name, s.stock FROM skus s JOIN products p ON p.id = s.product_id \
         WHERE s.retired_at IS NULL AND p.on_sale AND s.stock <= $1 ORDER BY s.stock, p.id, s.id")
        .bind(b.threshold.unwrap_or(5).max(0))
        .fetch_all(e).await)
    {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    Json(
        rows.into_iter()
            .map(|(sku_id, product_id, product, sku, stock)| {
                json!({"sku_id": sku_id, "product_id": product_id, "product": product,
                       "sku": sku, "stock": stock})
            })
            .collect::<Vec<_>>(),
    )
    .into_response()
}
