-- Money that can go back: the order states of the whole life of a payment, refunds, and the
-- bookkeeping that lets expiry and reconciliation retry one order without blocking the others.
--
-- Order states (the state machine is written down in server/src/payments/state.rs):
--   unpaid → paid | closed
--   paid | shipped | completed | partially_refunded | refunding → refunding
--   refunding → refunded | partially_refunded | paid (a refund that failed)
--   paid → shipped → completed (the merchant console)
--
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt. Foreign keys that
-- point at `orders` (order_lines) keep pointing at the table of that name; they are checked
-- at commit (defer_foreign_keys), when the new table carries every old id again.
PRAGMA defer_foreign_keys = ON;

CREATE TABLE orders_new (
    id              INTEGER PRIMARY KEY,
    order_no        TEXT NOT NULL UNIQUE,        -- out_trade_no at WeChat Pay
    user_id         BIGINT NOT NULL REFERENCES users(id),
    status          TEXT NOT NULL CHECK (status IN ('unpaid', 'paid', 'closed', 'refunding',
                        'partially_refunded', 'refunded', 'shipped', 'completed')),
    total_fee       BIGINT NOT NULL CHECK (total_fee > 0),
    -- Sum of the succeeded refunds of this order's payment (never more than total_fee).
    refunded_fen    BIGINT NOT NULL DEFAULT 0 CHECK (refunded_fen >= 0 AND refunded_fen <= total_fee),
    ship_name       TEXT NOT NULL,
    ship_phone      TEXT NOT NULL,
    ship_region     TEXT NOT NULL,
    ship_detail     TEXT NOT NULL,
    remark          TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    paid_at         BIGINT,
    closed_at       BIGINT,
    transaction_id  TEXT UNIQUE,                 -- WeChat's id of the payment
    prepay_id       TEXT,
    prepay_expires_at BIGINT,
    -- Why WeChat last refused the payment (PAYERROR), for people.
    pay_error       TEXT,
    -- Expiry / reconciliation of this order failed: not before this time again (backoff).
    retry_at        BIGINT,
    retries         INTEGER NOT NULL DEFAULT 0
);

INSERT INTO orders_new (id, order_no, user_id, status, total_fee, refunded_fen, ship_name,
    ship_phone, ship_region, ship_detail, remark, created_at, expires_at, paid_at, closed_at,
    transaction_id, prepay_id, prepay_expires_at)
SELECT id, order_no, user_id, status, total_fee,
    CASE WHEN status = 'refunded' THEN total_fee ELSE 0 END,
    ship_name, ship_phone, ship_region, ship_detail, remark, created_at, expires_at, paid_at,
    closed_at, transaction_id, prepay_id, prepay_expires_at
FROM orders;

DROP TABLE orders;
ALTER TABLE orders_new RENAME TO orders;
CREATE INDEX orders_user ON orders(user_id, created_at);
CREATE INDEX orders_status_expiry ON orders(status, expires_at);
CREATE INDEX orders_unpaid_prepay ON orders(status, created_at) WHERE prepay_id IS NOT NULL;

-- Every refund the shop asked WeChat for, or learnt about from WeChat.
--   kind: merchant (wxmall refund / the console), automatic (money that arrived for an order
--   that could not take it: refunded in full at once), external (made outside the shop, e.g.
--   in WeChat's merchant platform, and reported by a refund notification).
--   status: processing → succeeded | abnormal | closed; failed = WeChat refused the request.
CREATE TABLE refunds (
    id              INTEGER PRIMARY KEY,
    order_id        BIGINT NOT NULL REFERENCES orders(id),
    out_refund_no   TEXT NOT NULL UNIQUE,        -- the shop's refund number at WeChat
    refund_id       TEXT,                        -- WeChat's refund id, once it answered
    transaction_id  TEXT,                        -- the payment being refunded
    amount_fen      BIGINT NOT NULL CHECK (amount_fen > 0),
    total_fen       BIGINT NOT NULL CHECK (total_fen >= amount_fen),  -- that payment's total
    kind            TEXT NOT NULL CHECK (kind IN ('merchant', 'automatic', 'external')),
    status          TEXT NOT NULL CHECK (status IN ('processing', 'succeeded', 'abnormal',
                        'closed', 'failed')),
    reason          TEXT NOT NULL DEFAULT '',
    restock         BOOLEAN NOT NULL DEFAULT FALSE,
    detail          TEXT NOT NULL DEFAULT '',    -- WeChat's last word on it (never a secret)
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    succeeded_at    BIGINT,
    retry_at        BIGINT,                      -- processing: ask WeChat again from then on
    retries         INTEGER NOT NULL DEFAULT 0
);
-- An order's refunds by state (the refunded total and status are recomputed from them on every
-- settlement: with `status` alone SQLite would scan every succeeded refund of the shop).
CREATE INDEX refunds_order ON refunds(order_id, status);
-- The reconciler's work: refunds still processing.
CREATE INDEX refunds_processing ON refunds(retry_at) WHERE status = 'processing';

-- The order lines a refund gives back (refunds by line), with the quantity of each.
CREATE TABLE refund_lines (
    refund_id       BIGINT NOT NULL REFERENCES refunds(id),
    line_no         INTEGER NOT NULL,
    quantity        BIGINT NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (refund_id, line_no)
);

-- Each reconciliation of a day's WeChat trade bill with the shop's books (`wxmall reconcile`,
-- and the daily run): what matched, and every difference (JSON list).
CREATE TABLE reconciliations (
    bill_date           TEXT PRIMARY KEY,       -- YYYY-MM-DD, China time
    ran_at              BIGINT NOT NULL,
    payments_matched    BIGINT NOT NULL,
    payments_matched_fen BIGINT NOT NULL,
    refunds_matched     BIGINT NOT NULL,
    refunds_matched_fen BIGINT NOT NULL,
    difference_count    BIGINT NOT NULL,
    differences         TEXT NOT NULL            -- JSON
);
