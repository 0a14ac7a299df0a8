-- Console sessions (tower-sessions records, issue [D]). A row is keyed by the SHA-256
-- of the session id, never the id itself: a copy of this table signs nobody in.
CREATE TABLE console_sessions (
    id_hash         BYTEA PRIMARY KEY,
    -- The session record, JSON.
    data            TEXT NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL
);

CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
