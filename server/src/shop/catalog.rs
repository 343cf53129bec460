//! The catalogue: categories, products and their SKUs.

use super::db_error;
use crate::db::Db;
use app::error::ApiError;
use app::model::*;
use app::port::Result;
use std::collections::HashMap;

pub async fn categories(pool: &Db) -> Result<Vec<Category>> {
    let rows: Vec<(i64, String)> =
        crate::sql!(pool, e => sqlx::query_as("SELECT id, name FROM categories ORDER BY sort, id")
            .fetch_all(e).await)
        .map_err(db_error)?;
    Ok(rows
        .into_iter()
        .map(|(id, name)| Category { id, name })
        .collect())
}

async fn skus_by_product(pool: &Db, product_id: Option<i64>) -> Result<HashMap<i64, Vec<Sku>>> {
    let rows: Vec<(i64, i64, String, i64, i64)> = crate::sql!(pool, e => sqlx::query_as(
        "SELECT s.product_id, s.id, s.name, s.price_fen, s.stock FROM skus s \
         WHERE ($1 IS NULL OR s.product_id = $1) AND s.retired_at IS NULL ORDER BY s.product_id, s.sort, s.id",
    )
    .bind(product_id)
    .fetch_all(e).await)
    .map_err(db_error)?;
    let mut map: HashMap<i64, Vec<Sku>> = HashMap::new();
    for (product_id, id, name, price_fen, stock) in rows {
        map.entry(product_id).or_default().push(Sku {
            id,
            name,
            price_fen,
            stock,
        });
    }
    Ok(map)
}

pub async fn list_products(pool: &Db) -> Result<Vec<ProductSummary>> {
    let rows: Vec<(i64, String, String, String)> = crate::sql!(pool, e => sqlx::query_as(
        "SELECT p.id, p.name, c.name, p.image FROM products p \
         JOIN categories c ON c.id = p.category_id \
         WHERE p.on_sale ORDER BY c.sort, c.id, p.sort, p.id",
    )
    .fetch_all(e).await)
    .map_err(db_error)?;
    let mut skus = skus_by_product(pool, None).await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, category, image)| ProductSummary {
            skus: skus.remove(&id).unwrap_or_default(),
            id,
            name,
            category,
            image,
        })
        .collect())
}

pub async fn product(pool: &Db, product_id: i64) -> Result<ProductDetail> {
    let row: Option<(String, String, String, String, String)> =
        crate::sql!(pool, e => sqlx::query_as(
        "SELECT p.name, c.name, p.description, p.image, p.images FROM products p \
         JOIN categories c ON c.id = p.category_id WHERE p.id = $1 AND p.on_sale",
    )
    .bind(product_id)
    .fetch_optional(e).await)
        .map_err(db_error)?;
    let Some((name, category, description, image, images)) = row else {
        return Err(ApiError::not_found("商品"));
    };
    let mut all_images = vec![image];
    all_images.extend(
        images
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned),
    );
    let skus = skus_by_product(pool, Some(product_id))
        .await?
        .remove(&product_id)
        .unwrap_or_default();
    Ok(ProductDetail {
        id: product_id,
        name,
        category,
        description,
        images: all_images,
        skus,
    })
}

/// What an order or a cart needs to know about one SKU.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SkuInfo {
    pub sku_id: i64,
    pub product_id: i64,
    pub product_name: String,
    pub sku_name: String,
    pub image: String,
    pub price_fen: i64,
    pub stock: i64,
}

pub const SKU_INFO_SELECT: &str =
    "SELECT s.id AS sku_id, p.id AS product_id, p.name AS product_name, \
     s.name AS sku_name, p.image AS image, s.price_fen AS price_fen, s.stock AS stock \
     FROM skus s JOIN products p ON p.id = s.product_id";

pub async fn sku_info<'a>(
    executor: impl Into<crate::db::Exec<'a>>,
    sku_id: i64,
) -> Result<SkuInfo> {
    let executor: crate::db::Exec<'_> = executor.into();
    crate::sql!(executor, e => sqlx::query_as::<_, SkuInfo>(&format!("{SKU_INFO_SELECT} WHERE s.id = $1 AND p.on_sale AND s.retired_at IS NULL"))
        .bind(sku_id)
        .fetch_optional(e).await)
        .map_err(db_error)?
        .ok_or_else(|| ApiError::not_found("商品规格"))
}
