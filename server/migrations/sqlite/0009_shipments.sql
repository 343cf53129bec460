-- Shipping (the console's ship_order) and receipt (the shopper's confirm_receipt).
ALTER TABLE orders ADD COLUMN carrier TEXT;
ALTER TABLE orders ADD COLUMN tracking_no TEXT;
ALTER TABLE orders ADD COLUMN shipped_at BIGINT;
ALTER TABLE orders ADD COLUMN completed_at BIGINT;
CREATE INDEX orders_created ON orders(created_at);
