-- The change feed: every change to console_feature_flags, by vexil or by direct SQL
-- (the runbook's UPDATE included), appends (flag_key, env) here from a trigger and
-- sends a notification on the channel `vexil_flag_changes`, delivered when the
-- change commits. Each process holding a snapshot LISTENs and re-reads only the row
-- named; the table lets a process that lost its LISTEN connection catch up, and
-- matches the SQLite tree, which polls it.
CREATE TABLE console_flag_changes (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flag_key        TEXT NOT NULL,
    env             TEXT NOT NULL,
    changed_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE FUNCTION console_feature_flags_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed RECORD;
    change_seq BIGINT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := OLD;
    ELSE
        changed := NEW;
    END IF;
    INSERT INTO console_flag_changes (flag_key, env) VALUES (changed.flag_key, changed.env)
    RETURNING seq INTO change_seq;
    PERFORM pg_notify('vexil_flag_changes', json_build_object(
        'seq', change_seq, 'flag', changed.flag_key, 'env', changed.env)::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER console_feature_flags_changed AFTER INSERT OR UPDATE OR DELETE ON console_feature_flags
    FOR EACH ROW EXECUTE FUNCTION console_feature_flags_changed();
