-- Evidence is what happened (docs/schema.md, "Direct SQL"):
-- 1. A direct UPDATE that leaves the value as it was is a `console.flag.touched` row,
--    not a flip: it never counts as flip evidence (deprecation table, GA checklist).
--    The row keeps pointing at its last real change (audit_id, updated_by).
-- 2. A direct INSERT records as `from` the value that was in force before it, as far
--    as the database can know it: the `FLAG_*` variable the env's live processes
--    report, else the flags file's default as vexil processes declared it here
--    (`vexil_flag_defaults`). Where it cannot know, `from` is null and `from_unknown`
--    says why; otherwise `from_source` says where the value came from.

-- Each declared flag's YAML default, written by every process that links vexil in
-- database mode when it starts (crates/vexil/src/database.rs). Rolling deploys may
-- briefly disagree; the last process to start wins, and `declared_at` says when.
CREATE TABLE vexil_flag_defaults (
    flag_key        TEXT PRIMARY KEY,
    value           INTEGER NOT NULL CHECK (value IN (0, 1)),
    declared_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The value in force for (flag, env) where no row decides, by the reports of the
-- env's live processes (seen within 30 s, `GONE_AFTER` in
-- crates/vexil-app/src/instances.rs) and the declared default. Returns the
-- payload's keys: {"from": bool, "from_source": …} or {"from": null, "from_unknown": …}.
CREATE FUNCTION console_feature_flags_value_without_row(flag TEXT, env_name TEXT)
RETURNS JSONB LANGUAGE plpgsql AS $$
DECLARE
    live BIGINT;
    ons BIGINT;
    offs BIGINT;
    fallback BOOLEAN;
BEGIN
    SELECT count(*),
           count(*) FILTER (WHERE s = 'on'),
           count(*) FILTER (WHERE s = 'off')
    INTO live, ons, offs
    FROM (SELECT (i.env_layer::jsonb) ->> flag AS s FROM vexil_instances i
          WHERE i.env = env_name AND i.last_seen >= now() - interval '30 seconds') p;
    SELECT d.value = 1 INTO fallback FROM vexil_flag_defaults d WHERE d.flag_key = flag;
    IF live = 0 THEN
        RETURN jsonb_build_object('from', NULL, 'from_unknown',
            format('no live process of %s reports its variables', env_name));
    END IF;
    IF ons = live THEN
        RETURN jsonb_build_object('from', true, 'from_source', 'variable');
    END IF;
    IF offs = live THEN
        RETURN jsonb_build_object('from', false, 'from_source', 'variable');
    END IF;
    -- Some processes have no valid variable for the flag: the default decides there.
    IF fallback IS NULL THEN
        RETURN jsonb_build_object('from', NULL, 'from_unknown',
            'the flag''s default is not in the database (undeclared, or declared by no vexil process yet)');
    END IF;
    IF (ons = 0 OR fallback) AND (offs = 0 OR NOT fallback) THEN
        RETURN jsonb_build_object('from', fallback,
            'from_source', CASE WHEN ons + offs = 0 THEN 'default' ELSE 'variable and default' END);
    END IF;
    RETURN jsonb_build_object('from', NULL, 'from_unknown',
        format('the live processes of %s disagree (%s on, %s off by variable, %s by the default, %s)',
            env_name, ons, offs, live - ons - offs, CASE WHEN fallback THEN 'on' ELSE 'off' END));
END;
$$;

CREATE OR REPLACE FUNCTION console_feature_flags_audit_update() RETURNS trigger LANGUAGE plpgsql AS $$
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
    IF NEW.value IS NOT DISTINCT FROM OLD.value THEN
        -- A write without a change: recorded, never a flip. The row still points at
        -- its last change, whatever the statement set audit_id or updated_by to.
        INSERT INTO console_audit_log (admin_id, action, target_type, target_id, payload)
        VALUES (NULL, 'console.flag.touched', 'feature_flag', NEW.flag_key, jsonb_build_object(
            'flag', NEW.flag_key, 'env', NEW.env, 'value', NEW.value = 1, 'via', 'sql'));
        NEW.audit_id := OLD.audit_id;
        NEW.updated_by := OLD.updated_by;
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

CREATE OR REPLACE FUNCTION console_feature_flags_audit_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    audit_row BIGINT;
BEGIN
    IF console_feature_flags_names_its_flip(NEW.audit_id, NEW.flag_key, NEW.env, NEW.value) THEN
        RETURN NULL;
    END IF;
    INSERT INTO console_audit_log (admin_id, action, target_type, target_id, payload)
    VALUES (NULL, 'console.flag.flip', 'feature_flag', NEW.flag_key,
        jsonb_build_object('flag', NEW.flag_key, 'env', NEW.env, 'to', NEW.value = 1, 'via', 'sql')
        || console_feature_flags_value_without_row(NEW.flag_key, NEW.env))
    RETURNING id INTO audit_row;
    -- The UPDATE trigger sees a newer audit_id naming this flag, env and value, and
    -- writes nothing more.
    UPDATE console_feature_flags SET audit_id = audit_row, updated_by = NULL
    WHERE flag_key = NEW.flag_key AND env = NEW.env;
    RETURN NULL;
END;
$$;

-- CREATE OR REPLACE resets a function's attributes: pin them again, as 0007 does.
DO $$
DECLARE
    schema_name TEXT := quote_ident(current_schema());
    fn TEXT;
BEGIN
    FOREACH fn IN ARRAY ARRAY[
        'console_feature_flags_value_without_row(text, text)',
        'console_feature_flags_audit_update()',
        'console_feature_flags_audit_insert()'
    ] LOOP
        EXECUTE format('ALTER FUNCTION %s.%s SECURITY DEFINER SET search_path = pg_catalog, %s, pg_temp',
            schema_name, fn, schema_name);
        EXECUTE format('REVOKE ALL ON FUNCTION %s.%s FROM PUBLIC', schema_name, fn);
    END LOOP;
END;
$$;
