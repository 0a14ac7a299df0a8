-- The evaluation plane (vexil serve as the applications' hub). Client keys let an
-- application read one env's flags and report its processes, and nothing else; they
-- are stored as SHA-256 hashes, like API tokens, and every creation and revocation is
-- audited (console.client_key.*).
CREATE TABLE client_keys (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The one env the key reads.
    env             TEXT NOT NULL,
    -- The application it was made for: the name its processes report under.
    app             TEXT NOT NULL,
    -- The first characters of the key, to recognise it in a list.
    prefix          TEXT NOT NULL,
    -- SHA-256 of the whole key; the key itself is never stored.
    key_hash        BYTEA NOT NULL UNIQUE,
    created_at      TIMESTAMPTZ NOT NULL,
    -- The account that created it; NULL when an operator did at the CLI.
    created_by      TEXT,
    -- Set when a server looks the key up, at most once a minute per server: not
    -- audited, it changes no permission.
    last_used_at    TIMESTAMPTZ,
    revoked_at      TIMESTAMPTZ
);

-- A process that follows a server reports through it: what it is written in, how it
-- reaches vexil ('database': it links the library to the database; 'server': it
-- follows a `vexil serve`), and the last change of the stream it applied.
ALTER TABLE vexil_instances ADD COLUMN language TEXT NOT NULL DEFAULT 'rust';
ALTER TABLE vexil_instances ADD COLUMN transport TEXT NOT NULL DEFAULT 'database';
ALTER TABLE vexil_instances ADD COLUMN change_id BIGINT;
