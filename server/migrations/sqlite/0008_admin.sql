-- The merchant's console: accounts separate from shoppers, their sessions, failed logins (for
-- the login rate limit) and the audit log of every console write.
CREATE TABLE admins (
    id              INTEGER PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,               -- argon2id PHC string
    role            TEXT NOT NULL CHECK (role IN ('owner', 'staff')),
    created_at      BIGINT NOT NULL,
    disabled_at     BIGINT
);

CREATE TABLE admin_sessions (
    token_hash      TEXT PRIMARY KEY,            -- SHA-256 of the cookie's random token
    admin_id        BIGINT NOT NULL REFERENCES admins(id),
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL
);
CREATE INDEX admin_sessions_admin ON admin_sessions(admin_id);

CREATE TABLE admin_login_failures (
    key             TEXT NOT NULL,               -- "user:<name>" or "ip:<address>"
    at              BIGINT NOT NULL
);
CREATE INDEX admin_login_failures_key ON admin_login_failures(key, at);

CREATE TABLE admin_audit (
    id              INTEGER PRIMARY KEY,
    admin_id        BIGINT NOT NULL REFERENCES admins(id),
    action          TEXT NOT NULL,
    detail          TEXT NOT NULL,               -- JSON: what was done, before and after
    at              BIGINT NOT NULL
);
CREATE INDEX admin_audit_at ON admin_audit(at);
