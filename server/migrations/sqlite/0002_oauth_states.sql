-- WeChat OAuth `state`s in flight: unguessable, single-use (deleted when used), bound to the
-- browser session that started the flow, short-lived, carrying the page to return to.
CREATE TABLE oauth_states (
    state       TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL,
    return_to   TEXT NOT NULL,
    -- 1 when this flow is the one restart allowed after WeChat said "code been used" (40163).
    restarted   BOOLEAN NOT NULL DEFAULT FALSE,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX oauth_states_expiry ON oauth_states(expires_at);

-- The reconciler and the expiry sweep look for unpaid orders that went to WeChat.
CREATE INDEX orders_unpaid_prepay ON orders(status, created_at) WHERE prepay_id IS NOT NULL;
