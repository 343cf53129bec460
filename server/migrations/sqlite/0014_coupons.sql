-- Coupons (优惠券) that live in the shopper's WeChat card wallet (卡包): the merchant creates one in
-- the console (admin/coupons.rs), which creates the card at WeChat (`card/create`) and keeps its
-- card_id; shoppers take it (`wx.addCard`), choose it at checkout (`wx.chooseCard`), and the shop
-- redeems the code (`card/code/consume`) once the order is paid (shop/coupons.rs).
CREATE TABLE coupons (
    id              INTEGER PRIMARY KEY,
    card_id         TEXT NOT NULL UNIQUE,          -- WeChat's
    title           TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('cash', 'discount')),
    least_cost_fen  BIGINT NOT NULL CHECK (least_cost_fen >= 0),   -- the minimum spend
    reduce_cost_fen BIGINT CHECK (reduce_cost_fen > 0),            -- cash: 减 Y
    percent_off     BIGINT CHECK (percent_off BETWEEN 1 AND 99),   -- discount: 30 = 七折
    quantity        BIGINT NOT NULL CHECK (quantity >= 0),
    per_user        BIGINT NOT NULL CHECK (per_user >= 1),
    days            BIGINT,                        -- valid N days after taking, or
    begin_at        BIGINT,                        -- valid between fixed dates (unix seconds)
    end_at          BIGINT,
    color           TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'stopped')),
    created_by      BIGINT REFERENCES admins(id),
    created_at      BIGINT NOT NULL,
    stopped_at      BIGINT,
    CHECK ((kind = 'cash' AND reduce_cost_fen IS NOT NULL AND percent_off IS NULL)
        OR (kind = 'discount' AND percent_off IS NOT NULL AND reduce_cost_fen IS NULL)),
    CHECK ((days IS NOT NULL AND begin_at IS NULL AND end_at IS NULL)
        OR (days IS NULL AND begin_at IS NOT NULL AND end_at IS NOT NULL AND end_at > begin_at))
);
-- The codes WeChat told the official-account server about (user_get_card, user_del_card,
-- user_consume_card) and the ones the shop redeemed: the console's taken / redeemed counts.
CREATE TABLE coupon_codes (
    card_id         TEXT NOT NULL,
    code            TEXT NOT NULL,
    openid          TEXT,
    status          TEXT NOT NULL CHECK (status IN ('taken', 'redeemed', 'deleted')),
    taken_at        BIGINT,
    redeemed_at     BIGINT,
    deleted_at      BIGINT,
    PRIMARY KEY (card_id, code)
);
CREATE INDEX coupon_codes_status ON coupon_codes(card_id, status);
-- An order's coupon: the code it holds, what it took off, and when WeChat redeemed it.
ALTER TABLE orders ADD COLUMN coupon_card_id TEXT;
ALTER TABLE orders ADD COLUMN coupon_code TEXT;
ALTER TABLE orders ADD COLUMN coupon_title TEXT;
ALTER TABLE orders ADD COLUMN discount_fen BIGINT NOT NULL DEFAULT 0 CHECK (discount_fen >= 0);
ALTER TABLE orders ADD COLUMN coupon_redeemed_at BIGINT;
ALTER TABLE orders ADD COLUMN coupon_claimed_at BIGINT;   -- a redemption attempt's lease
-- One code serves one order: while an order holding it is not closed (unpaid, or paid and
-- redeemed), no other order can hold it. Closing an unpaid order frees the code.
CREATE UNIQUE INDEX orders_coupon_code ON orders(coupon_card_id, coupon_code)
    WHERE coupon_code IS NOT NULL AND status <> 'closed';
-- The sweeper's redemptions still to do.
CREATE INDEX orders_coupon_unredeemed ON orders(paid_at)
    WHERE coupon_code IS NOT NULL AND coupon_redeemed_at IS NULL;
