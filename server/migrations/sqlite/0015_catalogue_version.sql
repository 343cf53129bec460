-- The catalogue's version: one row, bumped by a trigger whenever what shoppers see of the
-- catalogue changes (categories, products, SKUs and their stock, coupons on offer), by any
-- process on this file (the shop, `wxmall refund`, the console, a hand-written UPDATE).
-- Every instance keeps the catalogue in memory and reads this one integer per page to know
-- whether its copy is still current (shop/catalog_cache.rs).
-- PostgreSQL has no such row (its triggers NOTIFY the instances instead: no row that every
-- order's transaction would have to lock).
CREATE TABLE catalogue_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO catalogue_version (id, version) VALUES (1, 1);

CREATE TRIGGER categories_inserted AFTER INSERT ON categories
BEGIN UPDATE catalogue_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER categories_updated AFTER UPDATE ON categories
BEGIN UPDATE catalogue_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER categories_deleted AFTER DELETE ON categories
BEGIN UPDATE catalogue_version SET version = version + 1 WHERE id = 1; END;

CREATE TRIGGER products_inserted AFTER INSERT ON products
BEGIN UPDATE catalogue_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER products_updated AFTER UPDATE ON products
BEGIN UPDATE catalogue_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER products_deleted AFTER DELETE ON products
BEGIN UPDATE catalogue_version SET version = version + 1 WHERE id = 1; END;

CREATE TRIGGER skus_inserted AFTER INSERT ON skus
BEGIN UPDATE catalogue_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER skus_updated AFTER UPDATE ON skus
BEGIN UPDATE catalogue_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER skus_deleted AFTER DELETE ON skus
BEGIN UPDATE catalogue_version SET version = version + 1 WHERE id = 1; END;

CREATE TRIGGER coupons_inserted AFTER INSERT ON coupons
BEGIN UPDATE catalogue_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER coupons_updated AFTER UPDATE ON coupons
BEGIN UPDATE catalogue_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER coupons_deleted AFTER DELETE ON coupons
BEGIN UPDATE catalogue_version SET version = version + 1 WHERE id = 1; END;
