-- A payment made in the embedded WeChat sandbox moved no money. It is marked on its order so it
-- never looks real: the order's page and `wxmall payments` say so, and a shop running on the
-- real WeChat refuses to refund it.
ALTER TABLE orders ADD COLUMN paid_in_sandbox INTEGER NOT NULL DEFAULT 0
    CHECK (paid_in_sandbox IN (0, 1));
