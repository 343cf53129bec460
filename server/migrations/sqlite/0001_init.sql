-- wxmall schema. Portable by design: integer money (fen), BIGINT unix-second times,
-- no SQLite-only types; queries use $N placeholders, which SQLite and PostgreSQL both accept.

CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    openid      TEXT UNIQUE,            -- NULL until WeChat OAuth binds this shopper
    unionid     TEXT,
    nickname    TEXT,
    avatar_url  TEXT,
    created_at  BIGINT NOT NULL
);

-- A browser session (signed cookie carries `id`); bound to a user on first write or on login.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id),
    created_at  BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE categories (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    sort        INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE products (
    id          INTEGER PRIMARY KEY,
    category_id BIGINT NOT NULL REFERENCES categories(id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    image       TEXT NOT NULL,
    images      TEXT NOT NULL DEFAULT '',   -- extra images, newline-separated
    sort        INTEGER NOT NULL DEFAULT 0,
    on_sale     BOOLEAN NOT NULL DEFAULT TRUE
);
CREATE INDEX products_category ON products(category_id);

CREATE TABLE skus (
    id          INTEGER PRIMARY KEY,
    product_id  BIGINT NOT NULL REFERENCES products(id),
    name        TEXT NOT NULL,
    price_fen   BIGINT NOT NULL CHECK (price_fen > 0),
    stock       BIGINT NOT NULL CHECK (stock >= 0),
    sort        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX skus_product ON skus(product_id);

CREATE TABLE cart_lines (
    user_id     BIGINT NOT NULL REFERENCES users(id),
    sku_id      BIGINT NOT NULL REFERENCES skus(id),
    quantity    BIGINT NOT NULL CHECK (quantity > 0),
    selected    BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, sku_id)
);

CREATE TABLE addresses (
    id          INTEGER PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id),
    name        TEXT NOT NULL,
    phone       TEXT NOT NULL,
    region      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    last_used_at BIGINT NOT NULL,
    UNIQUE (user_id, name, phone, region, detail)
);

CREATE TABLE orders (
    id              INTEGER PRIMARY KEY,
    order_no        TEXT NOT NULL UNIQUE,        -- out_trade_no at WeChat Pay
    user_id         BIGINT NOT NULL REFERENCES users(id),
    status          TEXT NOT NULL CHECK (status IN ('unpaid', 'paid', 'closed', 'refunded')),
    total_fee       BIGINT NOT NULL CHECK (total_fee > 0),
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
    prepay_expires_at BIGINT
);
CREATE INDEX orders_user ON orders(user_id, created_at);
CREATE INDEX orders_status_expiry ON orders(status, expires_at);

-- Name and price are copied at order time: later catalogue edits never change an order.
CREATE TABLE order_lines (
    order_id        BIGINT NOT NULL REFERENCES orders(id),
    line_no         INTEGER NOT NULL,
    sku_id          BIGINT NOT NULL REFERENCES skus(id),
    product_id      BIGINT NOT NULL,
    product_name    TEXT NOT NULL,
    sku_name        TEXT NOT NULL,
    image           TEXT NOT NULL,
    unit_price_fen  BIGINT NOT NULL CHECK (unit_price_fen > 0),
    quantity        BIGINT NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, line_no)
);

-- Append-only: every payment-related event (notification accepted or refused, query, close…).
CREATE TABLE payment_events (
    id          INTEGER PRIMARY KEY,
    order_id    BIGINT,                      -- NULL when the event names no known order
    kind        TEXT NOT NULL,               -- e.g. notify_v2, notify_v3, query, close, refund
    outcome     TEXT NOT NULL,               -- accepted | duplicate | refused | info
    detail      TEXT NOT NULL DEFAULT '',    -- never a secret
    created_at  BIGINT NOT NULL
);
CREATE INDEX payment_events_order ON payment_events(order_id);

CREATE TRIGGER payment_events_no_update BEFORE UPDATE ON payment_events
BEGIN SELECT RAISE(ABORT, 'payment_events is append-only'); END;
CREATE TRIGGER payment_events_no_delete BEFORE DELETE ON payment_events
BEGIN SELECT RAISE(ABORT, 'payment_events is append-only'); END;
