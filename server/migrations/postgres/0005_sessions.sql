-- Sessions expire on the server after WXMALL_SESSION_IDLE (30 days) without a visit: each
-- session remembers when it was last seen (updated at most once an hour), and the sweeper
-- deletes the idle ones. The cookie may live on; its id then leads nowhere.
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET last_seen_at = created_at;
CREATE INDEX sessions_last_seen ON sessions(last_seen_at);
