-- Work that one instance of several must do once (the daily bill reconciliation): whoever
-- takes the row's lease does it (db::take_lease); a lease that expired can be taken again.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
