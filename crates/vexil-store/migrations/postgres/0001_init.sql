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
--
-- A write is vexil's own (and already audited) only when the row's new audit_id is
-- newer than its old one and names a console.flag.flip row for this very flag, env
-- and value, written in the same transaction. Anything else (a copied or stale
-- audit_id, a cleared one, a value changed while audit_id stays) is someone else's
-- and is audited here.
--
-- PL/pgSQL rather than an SQL function: called from a trigger, an SQL function is
-- planned again on every call (a quarter of a flip's time), a PL/pgSQL one once per
-- connection. Volatile (the default), so that it sees the audit row that vexil's
-- write inserted earlier in the same statement (flags.rs, `write_flag`).
CREATE FUNCTION console_feature_flags_names_its_flip(audit_id BIGINT, flag_key TEXT, env TEXT, value INTEGER)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    RETURN EXISTS (
        SELECT 1 FROM console_audit_log a
        WHERE a.id = $1 AND a.action = 'console.flag.flip'
          AND a.target_type = 'feature_flag' AND a.target_id = $2
          AND a.payload ->> 'env' = $3
          AND (a.payload ->> 'to')::boolean IS NOT DISTINCT FROM ($4 = 1)
          -- Written by this very transaction: a row restored with an old audit_id
          -- is not vexil's write.
          AND a.xmin = pg_current_xact_id()::xid);
END;
$$;

-- BEFORE UPDATE, so that the row it writes already points at its audit row.
CREATE FUNCTION console_feature_flags_audit_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    audit_row BIGINT;
BEGIN
    -- A row's key never changes: the old pair would vanish unaudited.
    IF NEW.flag_key IS DISTINCT FROM OLD.flag_key OR NEW.env IS DISTINCT FROM OLD.env THEN
        RAISE EXCEPTION 'console_feature_flags: flag_key and env cannot be changed; DELETE the row and INSERT a new one (each is audited)'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.audit_id IS NOT NULL
        AND (OLD.audit_id IS NULL OR NEW.audit_id > OLD.audit_id)
        AND console_feature_flags_names_its_flip(NEW.audit_id, NEW.flag_key, NEW.env, NEW.value) THEN
        RETURN NEW;
    END IF;
    INSERT INTO console_audit_log (admin_id, action, target_type, target_id, payload)
    VALUES (NULL, 'console.flag.flip', 'feature_flag', NEW.flag_key, jsonb_build_object(
        'flag', NEW.flag_key, 'env', NEW.env,
        'from', OLD.value = 1, 'to', NEW.value = 1, 'via', 'sql'))
    RETURNING id INTO audit_row;
    NEW.audit_id := audit_row;
    NEW.updated_by := NULL;
    RETURN NEW;
END;
$$;

-- AFTER INSERT, which fires only for rows really inserted (a BEFORE INSERT trigger
-- also fires for an `INSERT … ON CONFLICT` that ends up updating or doing nothing).
CREATE FUNCTION console_feature_flags_audit_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    audit_row BIGINT;
BEGIN
    IF console_feature_flags_names_its_flip(NEW.audit_id, NEW.flag_key, NEW.env, NEW.value) THEN
        RETURN NULL;
    END IF;
    INSERT INTO console_audit_log (admin_id, action, target_type, target_id, payload)
    VALUES (NULL, 'console.flag.flip', 'feature_flag', NEW.flag_key, jsonb_build_object(
        'flag', NEW.flag_key, 'env', NEW.env,
        'from', NULL, 'to', NEW.value = 1, 'via', 'sql'))
    RETURNING id INTO audit_row;
    -- The UPDATE trigger sees a newer audit_id naming this flag, env and value, and
    -- writes nothing more.
    UPDATE console_feature_flags SET audit_id = audit_row, updated_by = NULL
    WHERE flag_key = NEW.flag_key AND env = NEW.env;
    RETURN NULL;
END;
$$;

-- vexil never deletes a row, so every DELETE is out-of-band. After it the value falls
-- back to the variable or the YAML default, which the database cannot know: "to" is
-- null and "deleted" says why.
CREATE FUNCTION console_feature_flags_audit_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO console_audit_log (admin_id, action, target_type, target_id, payload)
    VALUES (NULL, 'console.flag.flip', 'feature_flag', OLD.flag_key, jsonb_build_object(
        'flag', OLD.flag_key, 'env', OLD.env,
        'from', OLD.value = 1, 'to', NULL, 'deleted', true, 'via', 'sql'));
    RETURN NULL;
END;
$$;

-- TRUNCATE fires no row triggers, so it would change rows unaudited: refused.
CREATE FUNCTION console_feature_flags_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'console_feature_flags cannot be truncated: DELETE the rows instead (each delete is audited)'
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER console_feature_flags_sql_update BEFORE UPDATE ON console_feature_flags
    FOR EACH ROW EXECUTE FUNCTION console_feature_flags_audit_update();
CREATE TRIGGER console_feature_flags_sql_insert AFTER INSERT ON console_feature_flags
    FOR EACH ROW EXECUTE FUNCTION console_feature_flags_audit_insert();
CREATE TRIGGER console_feature_flags_sql_delete AFTER DELETE ON console_feature_flags
    FOR EACH ROW EXECUTE FUNCTION console_feature_flags_audit_delete();
CREATE TRIGGER console_feature_flags_no_truncate BEFORE TRUNCATE ON console_feature_flags
    FOR EACH STATEMENT EXECUTE FUNCTION console_feature_flags_no_truncate();
