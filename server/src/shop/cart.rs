//! The shopper's cart. Quantities are capped by stock and by [`MAX_LINE_QUANTITY`].

use super::catalog::{sku_info, SKU_INFO_SELECT};
use super::{db_error, now, out_of_stock};
use crate::db::Db;
use app::error::ApiError;
use app::model::*;
use app::port::Result;

pub async fn load(pool: &Db, user: i64) -> Result<Cart> {
    #[derive(sqlx::FromRow)]
    struct Row {
        sku_id: i64,
        product_id: i64,
        product_name: String,
        sku_name: String,
        image: String,
        price_fen: i64,
        stock: i64,
        quantity: i64,
        selected: bool,
    }
    let rows: Vec<Row> = crate::sql!(pool, e => sqlx::query_as(&format!(
        "SELECT i.*, c.quantity, c.selected FROM cart_lines c \
         JOIN ({SKU_INFO_SELECT}) i ON i.sku_id = c.sku_id \
         WHERE c.user_id = $1 ORDER BY c.updated_at DESC, c.sku_id"
    ))
    .bind(user)
    .fetch_all(e).await)
    .map_err(db_error)?;
    let lines: Vec<CartLine> = rows
        .into_iter()
        .map(|r| CartLine {
            sku_id: r.sku_id,
            product_id: r.product_id,
            product_name: r.product_name,
            sku_name: r.sku_name,
            image: r.image,
            price_fen: r.price_fen,
            quantity: r.quantity,
            stock: r.stock,
            selected: r.selected,
        })
        .collect();
    let selected = lines.iter().filter(|l| l.selected);
    Ok(Cart {
        selected_total_fen: selected.clone().map(CartLine::subtotal_fen).sum(),
        selected_count: selected.map(|l| l.quantity).sum(),
        lines,
    })
}

async fn current_quantity(pool: &Db, user: i64, sku_id: i64) -> Result<i64> {
    Ok(crate::sql!(pool, e => sqlx::query_scalar::<_, i64>(
        "SELECT quantity FROM cart_lines WHERE user_id = $1 AND sku_id = $2",
    )
    .bind(user)
    .bind(sku_id)
    .fetch_optional(e).await)
    .map_err(db_error)?
    .unwrap_or(0))
}

async fn upsert(pool: &Db, user: i64, sku_id: i64, quantity: i64) -> Result<()> {
    crate::sql!(pool, e => sqlx::query(
        "INSERT INTO cart_lines (user_id, sku_id, quantity, selected, updated_at) \
         VALUES ($1, $2, $3, TRUE, $4) \
         ON CONFLICT (user_id, sku_id) DO UPDATE SET quantity = excluded.quantity, \
         selected = TRUE, updated_at = excluded.updated_at",
    )
    .bind(user)
    .bind(sku_id)
    .bind(quantity)
    .bind(now())
    .execute(e).await.map(crate::db::Done::from))
    .map_err(db_error)?;
    Ok(())
}

pub async fn add(pool: &Db, user: i64, sku_id: i64, quantity: i64) -> Result<()> {
    let sku = sku_info(pool, sku_id).await?;
    let have = current_quantity(pool, user, sku_id).await?;
    let want = have + quantity;
    let cap = sku.stock.min(MAX_LINE_QUANTITY);
    if want > cap {
        return Err(if want > sku.stock {
            out_of_stock(&sku.product_name, sku.stock - have)
        } else {
            ApiError::new(
                app::error::ErrorCode::Validation,
                format!("每件商品最多购买 {MAX_LINE_QUANTITY} 件"),
            )
        });
    }
    upsert(pool, user, sku_id, want).await
}

pub async fn set_quantity(pool: &Db, user: i64, sku_id: i64, quantity: i64) -> Result<()> {
    if quantity == 0 {
        crate::sql!(pool, e => sqlx::query("DELETE FROM cart_lines WHERE user_id = $1 AND sku_id = $2")
            .bind(user)
            .bind(sku_id)
            .execute(e).await.map(crate::db::Done::from))
            .map_err(db_error)?;
        return Ok(());
    }
    let sku = sku_info(pool, sku_id).await?;
    if quantity > sku.stock {
        return Err(out_of_stock(&sku.product_name, sku.stock));
    }
    upsert(pool, user, sku_id, quantity).await
}

pub async fn set_selected(pool: &Db, user: i64, sku_id: i64, selected: bool) -> Result<()> {
    let done =
        crate::sql!(pool, e => sqlx::query("UPDATE cart_lines SET selected = $1 WHERE user_id = $2 AND sku_id = $3")
            .bind(selected)
            .bind(user)
            .bind(sku_id)
            .execute(e).await.map(crate::db::Done::from))
            .map_err(db_error)?;
    if done.rows_affected() == 0 {
        return Err(ApiError::not_found("购物车商品"));
    }
    Ok(())
}
