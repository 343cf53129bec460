-- The merchant's own note on an order (the console's update_address; never shown to the shopper).
ALTER TABLE orders ADD COLUMN merchant_note TEXT NOT NULL DEFAULT '';
