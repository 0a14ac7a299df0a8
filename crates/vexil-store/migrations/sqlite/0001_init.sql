-- vexil's schema on SQLite. The PostgreSQL tree has a migration of the same number
-- creating the same tables and columns (a test compares them).
--
-- Timestamps are TEXT in one fixed format, UTC with milliseconds:
-- '2026-11-24 07:35:42.123'. It sorts correctly as text, and a value written by the
-- runbook's `updated_at=CURRENT_TIMESTAMP` ('2026-11-24 07:35:42') sorts with it.

CREATE TABLE users (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL UNIQUE,
    role            TEXT NOT NULL CHECK (role IN ('readonly', 'support', 'ops', 'superadmin')),
    -- An argon2id PHC string.
    password_hash   TEXT NOT NULL,
    disabled        INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    -- Encrypted with the instance's secret key (never stored in clear).
    totp_secret     BLOB,
    -- The last TOTP time step accepted: a code is accepted once only.
    totp_last_step  INTEGER,
    created_at      TEXT NOT NULL
);

CREATE TABLE api_tokens (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         INTEGER NOT NULL REFERENCES users (id),
    -- The first characters of the token, to recognise it in a list.
    prefix          TEXT NOT NULL,
    -- SHA-256 of the whole token; the token itself is never stored.
    token_hash      BLOB NOT NULL UNIQUE,
    created_at      TEXT NOT NULL,
    last_used_at    TEXT,
    revoked_at      TEXT
);

CREATE TABLE console_audit_log (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    -- NULL for a change made outside vexil (direct SQL).
    admin_id        INTEGER REFERENCES users (id),
    action          TEXT NOT NULL,
    target_type     TEXT NOT NULL,
    target_id       TEXT NOT NULL,
    payload         TEXT NOT NULL CHECK (json_valid(payload))
);

-- Pages are newest first by id; each filter has an index that walks that order.
-- The runbook's SELECT (by action, newest created_at first) has its own.
CREATE INDEX console_audit_log_by_action ON console_audit_log (action, id);
CREATE INDEX console_audit_log_by_target ON console_audit_log (target_id, id);
CREATE INDEX console_audit_log_by_admin ON console_audit_log (admin_id, id);
CREATE INDEX console_audit_log_by_time ON console_audit_log (created_at);
CREATE INDEX console_audit_log_runbook ON console_audit_log (action, created_at);

-- The audit log is append-only, enforced by the database itself.
CREATE TRIGGER console_audit_log_no_update BEFORE UPDATE ON console_audit_log
BEGIN
    SELECT RAISE(ABORT, 'console_audit_log is append-only: audit rows cannot be updated');
END;

CREATE TRIGGER console_audit_log_no_delete BEFORE DELETE ON console_audit_log
BEGIN
    SELECT RAISE(ABORT, 'console_audit_log is append-only: audit rows cannot be deleted');
END;

-- `INSERT OR REPLACE` with an existing id would delete the old row without firing
-- the DELETE trigger (recursive triggers are off): refuse it before it starts.
CREATE TRIGGER console_audit_log_no_replace BEFORE INSERT ON console_audit_log
WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM console_audit_log WHERE id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'console_audit_log is append-only: audit rows cannot be replaced');
END;

CREATE TABLE console_feature_flags (
    flag_key        TEXT NOT NULL,
    env             TEXT NOT NULL,
    value           INTEGER NOT NULL CHECK (value IN (0, 1)),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    updated_by      TEXT,
    -- The audit row of vexil's last write of this row. vexil writes the audit row
    -- first and sets this column to its id; a write that leaves it unchanged came
    -- from outside vexil, and the triggers below audit it (ARCHITECTURE.md).
    audit_id        INTEGER REFERENCES console_audit_log (id),
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

-- A row's key never changes: the old pair would vanish unaudited.
CREATE TRIGGER console_feature_flags_key_fixed BEFORE UPDATE OF flag_key, env ON console_feature_flags
WHEN NEW.flag_key IS NOT OLD.flag_key OR NEW.env IS NOT OLD.env
BEGIN
    SELECT RAISE(ABORT, 'console_feature_flags: flag_key and env cannot be changed; DELETE the row and INSERT a new one (each is audited)');
END;

CREATE TRIGGER console_feature_flags_sql_insert AFTER INSERT ON console_feature_flags
WHEN NOT EXISTS (
    SELECT 1 FROM console_audit_log a
    WHERE a.id = NEW.audit_id AND a.action = 'console.flag.flip'
      AND a.target_type = 'feature_flag' AND a.target_id = NEW.flag_key
      AND json_extract(a.payload, '$.env') = NEW.env
      AND json_extract(a.payload, '$.to') = NEW.value
      -- Written just now, in this transaction (writers are serialised): a row
      -- restored with an old audit_id is not vexil's write.
      AND a.id = (SELECT MAX(id) FROM console_audit_log)
)
BEGIN
    INSERT INTO console_audit_log (admin_id, action, target_type, target_id, payload)
    VALUES (NULL, 'console.flag.flip', 'feature_flag', NEW.flag_key, json_object(
        'flag', NEW.flag_key, 'env', NEW.env,
        'from', NULL,
        'to', json(CASE NEW.value WHEN 1 THEN 'true' ELSE 'false' END),
        'via', 'sql'));
    -- Points the row at the audit row just written: the UPDATE trigger sees a newer
    -- audit_id naming this flag, env and value, and writes nothing more.
    UPDATE console_feature_flags SET updated_by = NULL, audit_id = last_insert_rowid()
    WHERE flag_key = NEW.flag_key AND env = NEW.env;
END;

CREATE TRIGGER console_feature_flags_sql_update AFTER UPDATE ON console_feature_flags
WHEN NOT (
    NEW.audit_id IS NOT NULL
    AND (OLD.audit_id IS NULL OR NEW.audit_id > OLD.audit_id)
    AND EXISTS (
        SELECT 1 FROM console_audit_log a
        WHERE a.id = NEW.audit_id AND a.action = 'console.flag.flip'
          AND a.target_type = 'feature_flag' AND a.target_id = NEW.flag_key
          AND json_extract(a.payload, '$.env') = NEW.env
          AND json_extract(a.payload, '$.to') = NEW.value
          AND a.id = (SELECT MAX(id) FROM console_audit_log)
    )
)
BEGIN
    INSERT INTO console_audit_log (admin_id, action, target_type, target_id, payload)
    VALUES (NULL, 'console.flag.flip', 'feature_flag', NEW.flag_key, json_object(
        'flag', NEW.flag_key, 'env', NEW.env,
        'from', json(CASE OLD.value WHEN 1 THEN 'true' ELSE 'false' END),
        'to', json(CASE NEW.value WHEN 1 THEN 'true' ELSE 'false' END),
        'via', 'sql'));
    UPDATE console_feature_flags SET updated_by = NULL, audit_id = last_insert_rowid()
    WHERE flag_key = NEW.flag_key AND env = NEW.env;
END;

-- vexil never deletes a row, so every DELETE is out-of-band. After it the value
-- falls back to the variable or the YAML default, which the database cannot know:
-- "to" is null and "deleted" says why.
CREATE TRIGGER console_feature_flags_sql_delete AFTER DELETE ON console_feature_flags
BEGIN
    INSERT INTO console_audit_log (admin_id, action, target_type, target_id, payload)
    VALUES (NULL, 'console.flag.flip', 'feature_flag', OLD.flag_key, json_object(
        'flag', OLD.flag_key, 'env', OLD.env,
        'from', json(CASE OLD.value WHEN 1 THEN 'true' ELSE 'false' END),
        'to', NULL,
        'deleted', json('true'),
        'via', 'sql'));
END;
