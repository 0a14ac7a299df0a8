-- vexil's schema on PostgreSQL. The SQLite tree has a migration of the same number
-- creating the same tables and columns (a test compares them).

CREATE TABLE users (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    role            TEXT NOT NULL CHECK (role IN ('readonly', 'support', 'ops', 'superadmin')),
    -- An argon2id PHC string.
    password_hash   TEXT NOT NULL,
    -- 0/1 as on SQLite, so one query text and one Rust type serve both.
    disabled        INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    -- Encrypted with the instance's secret key (never stored in clear).
    totp_secret     BYTEA,
    -- The last TOTP time step accepted: a code is accepted once only.
    totp_last_step  BIGINT,
    created_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_tokens (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         BIGINT NOT NULL REFERENCES users (id),
    -- The first characters of the token, to recognise it in a list.
    prefix          TEXT NOT NULL,
    -- SHA-256 of the whole token; the token itself is never stored.
    token_hash      BYTEA NOT NULL UNIQUE,
    created_at      TIMESTAMPTZ NOT NULL,
    last_used_at    TIMESTAMPTZ,
    revoked_at      TIMESTAMPTZ
);

CREATE TABLE console_audit_log (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- NULL for a change made outside vexil (direct SQL).
    admin_id        BIGINT REFERENCES users (id),
    action          TEXT NOT NULL,
    target_type     TEXT NOT NULL,
    target_id       TEXT NOT NULL,
    payload         JSONB NOT NULL
);

-- Pages are newest first by id; each filter has an index that walks that order.
-- The runbook's SELECT (by action, newest created_at first) has its own.
CREATE INDEX console_audit_log_by_action ON console_audit_log (action, id);
CREATE INDEX console_audit_log_by_target ON console_audit_log (target_id, id);
CREATE INDEX console_audit_log_by_admin ON console_audit_log (admin_id, id);
CREATE INDEX console_audit_log_by_time ON console_audit_log (created_at);
CREATE INDEX console_audit_log_runbook ON console_audit_log (action, created_at);

-- The audit log is append-only, enforced by the database itself.
CREATE FUNCTION console_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'console_audit_log is append-only: audit rows cannot be %', lower(TG_OP) || 'd'
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER console_audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON console_audit_log
    FOR EACH ROW EXECUTE FUNCTION console_audit_log_append_only();
CREATE TRIGGER console_audit_log_no_truncate BEFORE TRUNCATE ON console_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION console_audit_log_append_only();

CREATE TABLE console_feature_flags (
    flag_key        TEXT NOT NULL,
    env             TEXT NOT NULL,
    value           INTEGER NOT NULL CHECK (value IN (0, 1)),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by      TEXT,
    -- The audit row of vexil's last write of this row. vexil writes the audit row
    -- first and sets this column to its id; a write that leaves it unchanged came
    -- from outside vexil, and the trigger below audits it (ARCHITECTURE.md).
    audit_id        BIGINT REFERENCES console_audit_log (id),
    PRIMARY KEY (flag_key, env)
);

-- Out-of-band changes (the runbook's Option A, or any direct SQL) are audited too:
-- admin_id NULL and "via": "sql", so the log reflects the true state. The row then
-- points at that audit row and says no account changed it (updated_by NULL).
CREATE FUNCTION console_feature_flags_audit_sql() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    audit_row BIGINT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.audit_id IS NULL OR NOT EXISTS (
            SELECT 1 FROM console_audit_log a
            WHERE a.id = NEW.audit_id AND a.target_id = NEW.flag_key
        ) THEN
            INSERT INTO console_audit_log (admin_id, action, target_type, target_id, payload)
            VALUES (NULL, 'console.flag.flip', 'feature_flag', NEW.flag_key, jsonb_build_object(
                'flag', NEW.flag_key, 'env', NEW.env,
                'from', NULL, 'to', NEW.value = 1, 'via', 'sql'))
            RETURNING id INTO audit_row;
            NEW.audit_id := audit_row;
            NEW.updated_by := NULL;
        END IF;
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        IF NEW.audit_id IS NOT DISTINCT FROM OLD.audit_id THEN
            INSERT INTO console_audit_log (admin_id, action, target_type, target_id, payload)
            VALUES (NULL, 'console.flag.flip', 'feature_flag', NEW.flag_key, jsonb_build_object(
                'flag', NEW.flag_key, 'env', NEW.env,
                'from', OLD.value = 1, 'to', NEW.value = 1, 'via', 'sql'))
            RETURNING id INTO audit_row;
            NEW.audit_id := audit_row;
            NEW.updated_by := NULL;
        END IF;
        RETURN NEW;
    ELSE
        -- vexil never deletes a row, so every DELETE is out-of-band. After it the
        -- value falls back to the variable or the YAML default, which the database
        -- cannot know: "to" is null and "deleted" says why.
        INSERT INTO console_audit_log (admin_id, action, target_type, target_id, payload)
        VALUES (NULL, 'console.flag.flip', 'feature_flag', OLD.flag_key, jsonb_build_object(
            'flag', OLD.flag_key, 'env', OLD.env,
            'from', OLD.value = 1, 'to', NULL, 'deleted', true, 'via', 'sql'));
        RETURN OLD;
    END IF;
END;
$$;

-- BEFORE, so that the row it writes already points at its audit row.
CREATE TRIGGER console_feature_flags_sql BEFORE INSERT OR UPDATE OR DELETE ON console_feature_flags
    FOR EACH ROW EXECUTE FUNCTION console_feature_flags_audit_sql();
