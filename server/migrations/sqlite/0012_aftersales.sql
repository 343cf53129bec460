-- After-sales requests (售后): the shopper asks for 仅退款 (refund_only) or 退货退款 (return_refund)
-- on a paid or shipped order; the merchant approves (the refund follows at once, or for a return
-- once the goods are marked received) or refuses with a reason (admin/aftersales.rs).
CREATE TABLE aftersales (
    id              INTEGER PRIMARY KEY,
    order_id        BIGINT NOT NULL REFERENCES orders(id),
    user_id         BIGINT NOT NULL REFERENCES users(id),
    kind            TEXT NOT NULL CHECK (kind IN ('refund_only', 'return_refund')),
    reason          TEXT NOT NULL,
    note            TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL CHECK (status IN ('pending', 'awaiting_return', 'refunding',
                        'approved', 'refused')),
    refund_fen      BIGINT,                      -- fixed when approved: what goes back
    restock         BOOLEAN NOT NULL DEFAULT FALSE,
    out_refund_no   TEXT,                        -- the refund, once the payments service made it
    refund_claimed_at BIGINT,                    -- refunding: when an attempt took it (a lease)
    decision_reason TEXT NOT NULL DEFAULT '',    -- the merchant's word to the shopper
    decided_by      BIGINT REFERENCES admins(id),
    created_at      BIGINT NOT NULL,
    decided_at      BIGINT,
    received_at     BIGINT,                      -- return_refund: the goods came back
    closed_at       BIGINT
);
CREATE INDEX aftersales_order ON aftersales(order_id);
CREATE INDEX aftersales_status ON aftersales(status, created_at);
-- One open request per order.
CREATE UNIQUE INDEX aftersales_open ON aftersales(order_id)
    WHERE status IN ('pending', 'awaiting_return', 'refunding');
