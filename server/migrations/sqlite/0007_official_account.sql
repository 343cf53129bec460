-- The official account's server (/wechat/mp).
-- Pushes already handled: WeChat sends a push again when an answer is slow; each is acted on once.
-- Rows older than a day are pruned by the sweeper.
CREATE TABLE mp_messages (
    dedupe_key      TEXT PRIMARY KEY,            -- "msg:<MsgId>" or "event:<openid>:<CreateTime>:<Event>"
    received_at     BIGINT NOT NULL
);
CREATE INDEX mp_messages_received ON mp_messages(received_at);

-- Followers of the official account, with the channel (parametric QR scene) they first came by.
CREATE TABLE mp_followers (
    openid          TEXT PRIMARY KEY,
    first_channel   TEXT,                        -- "product:3", "page:/orders", "channel:poster-1"
    subscribed_at   BIGINT NOT NULL,
    unsubscribed_at BIGINT
);
