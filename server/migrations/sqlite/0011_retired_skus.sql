-- A SKU the merchant removed while orders name it is retired, never deleted: gone from the
-- shop (catalogue, cart, new orders), kept for the orders (admin/catalogue.rs).
ALTER TABLE skus ADD COLUMN retired_at BIGINT;
