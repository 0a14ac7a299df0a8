-- Evidence is what happened (docs/schema.md, "Direct SQL"): the same rules as the
-- PostgreSQL migration of this number.
-- 1. A direct UPDATE that leaves the value as it was is a `console.flag.touched` row,
--    not a flip, and the row keeps pointing at its last real change.
-- 2. A direct INSERT records as `from` the value in force before it, as far as the
--    database can know it (the env's live processes' variables, else the declared
--    default), with `from_source`; or null with `from_unknown` saying why.

CREATE TABLE vexil_flag_defaults (
    flag_key        TEXT PRIMARY KEY,
    value           INTEGER NOT NULL CHECK (value IN (0, 1)),
    declared_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

-- For each (flag, env) the value in force where no row decides, from the reports of
-- the env's live processes (seen within 30 s, `GONE_AFTER` in
-- crates/vexil-app/src/instances.rs) and the declared default: the keys the
-- INSERT trigger's payload takes. A view, since SQLite triggers have no functions;
-- the trigger reads it for one pair.
CREATE VIEW vexil_value_without_row AS
WITH counts AS (
    SELECT f.flag_key AS flag_key, f.env AS env,
           COUNT(i.id) AS live,
           COALESCE(SUM((SELECT j.value FROM json_each(i.env_layer) j WHERE j.key = f.flag_key) = 'on'), 0) AS ons,
           COALESCE(SUM((SELECT j.value FROM json_each(i.env_layer) j WHERE j.key = f.flag_key) = 'off'), 0) AS offs
    FROM (SELECT DISTINCT flag_key, env FROM console_feature_flags) f
    LEFT JOIN vexil_instances i
        ON i.env = f.env AND i.last_seen >= strftime('%Y-%m-%d %H:%M:%f', 'now', '-30 seconds')
    GROUP BY f.flag_key, f.env
)
SELECT c.flag_key, c.env,
    CASE
        WHEN c.live = 0 THEN json_object('from', NULL, 'from_unknown',
            'no live process of ' || c.env || ' reports its variables')
        WHEN c.ons = c.live THEN json_object('from', json('true'), 'from_source', 'variable')
        WHEN c.offs = c.live THEN json_object('from', json('false'), 'from_source', 'variable')
        WHEN d.value IS NULL THEN json_object('from', NULL, 'from_unknown',
            'the flag''s default is not in the database (undeclared, or declared by no vexil process yet)')
        WHEN (c.ons = 0 OR d.value = 1) AND (c.offs = 0 OR d.value = 0) THEN json_object(
            'from', json(CASE d.value WHEN 1 THEN 'true' ELSE 'false' END),
            'from_source', CASE WHEN c.ons + c.offs = 0 THEN 'default' ELSE 'variable and default' END)
        ELSE json_object('from', NULL, 'from_unknown',
            'the live processes of ' || c.env || ' disagree (' || c.ons || ' on, ' || c.offs
            || ' off by variable, ' || (c.live - c.ons - c.offs) || ' by the default, '
            || CASE d.value WHEN 1 THEN 'on' ELSE 'off' END || ')')
    END AS evidence
FROM counts c LEFT JOIN vexil_flag_defaults d ON d.flag_key = c.flag_key;

DROP TRIGGER console_feature_flags_sql_insert;
DROP TRIGGER console_feature_flags_sql_update;

-- The row was just inserted, so the view's pair exists; the value before it is what
-- the view says without the row (the view never reads the row's value).
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
    -- json_patch drops keys whose value is null (a merge patch): `from` is set after.
    SELECT NULL, 'console.flag.flip', 'feature_flag', NEW.flag_key, json_set(json_patch(json_object(
        'flag', NEW.flag_key, 'env', NEW.env,
        'to', json(CASE NEW.value WHEN 1 THEN 'true' ELSE 'false' END),
        'via', 'sql'), v.evidence),
        '$.from', json(CASE json_type(v.evidence, '$.from') WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE 'null' END))
    FROM vexil_value_without_row v WHERE v.flag_key = NEW.flag_key AND v.env = NEW.env;
    -- Points the row at the audit row just written: the UPDATE triggers see a newer
    -- audit_id naming this flag, env and value, and write nothing more.
    UPDATE console_feature_flags SET updated_by = NULL, audit_id = last_insert_rowid()
    WHERE flag_key = NEW.flag_key AND env = NEW.env;
END;

-- A write is vexil's own (and already audited) only when the row's new audit_id is
-- newer than its old one and names a console.flag.flip row for this very flag, env
-- and value, written in the same transaction (0001_init.sql). Anything else is
-- audited: a change of value as a flip that the row then points at; a write without
-- change as `console.flag.touched`, the row still pointing at its last change,
-- whatever the statement set audit_id or updated_by to.
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
    SELECT NULL, 'console.flag.flip', 'feature_flag', NEW.flag_key, json_object(
        'flag', NEW.flag_key, 'env', NEW.env,
        'from', json(CASE OLD.value WHEN 1 THEN 'true' ELSE 'false' END),
        'to', json(CASE NEW.value WHEN 1 THEN 'true' ELSE 'false' END),
        'via', 'sql')
    WHERE NEW.value IS NOT OLD.value;
    INSERT INTO console_audit_log (admin_id, action, target_type, target_id, payload)
    SELECT NULL, 'console.flag.touched', 'feature_flag', NEW.flag_key, json_object(
        'flag', NEW.flag_key, 'env', NEW.env,
        'value', json(CASE NEW.value WHEN 1 THEN 'true' ELSE 'false' END),
        'via', 'sql')
    WHERE NEW.value IS OLD.value;
    -- An INSERT … SELECT of no row leaves last_insert_rowid() as it was: after a
    -- flip it is the flip's id.
    UPDATE console_feature_flags SET
        updated_by = CASE WHEN NEW.value IS OLD.value THEN OLD.updated_by END,
        audit_id = CASE WHEN NEW.value IS OLD.value THEN OLD.audit_id ELSE last_insert_rowid() END
    WHERE flag_key = NEW.flag_key AND env = NEW.env;
END;
