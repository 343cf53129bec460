-- Tells every instance that what shoppers see of the catalogue changed (categories, products,
-- SKUs and their stock, coupons on offer), whoever changed it (an instance, `wxmall refund`,
-- the console, a hand-written UPDATE): a NOTIFY on the channel `wxmall_catalogue`, which
-- PostgreSQL delivers when the transaction commits (and not at all when it rolls back). Each
-- instance LISTENs and drops its in-memory copy (shop/catalog_cache.rs).
-- SQLite's migration keeps a version row instead; a row here would be locked by every order's
-- transaction (stock changes) and make concurrent orders on different products queue.
CREATE FUNCTION wxmall_catalogue_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wxmall_catalogue', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER categories_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON categories
    FOR EACH STATEMENT EXECUTE FUNCTION wxmall_catalogue_changed();
CREATE TRIGGER products_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON products
    FOR EACH STATEMENT EXECUTE FUNCTION wxmall_catalogue_changed();
CREATE TRIGGER skus_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON skus
    FOR EACH STATEMENT EXECUTE FUNCTION wxmall_catalogue_changed();
CREATE TRIGGER coupons_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON coupons
    FOR EACH STATEMENT EXECUTE FUNCTION wxmall_catalogue_changed();
