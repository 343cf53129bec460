-- A payment made in the embedded WeChat sandbox moved no money. It is marked on its order so it
-- never looks real: the order's page and `wxmall payments` say so, and a shop running on the
-- real WeChat refuses to refund it. (SQLite's column is INTEGER 0/1: SQLite has no boolean.)
ALTER TABLE orders ADD COLUMN paid_in_sandbox BOOLEAN NOT NULL DEFAULT FALSE;
