-- Audit integrity (docs/audit-integrity.md): triggers that cannot be redirected, a
-- hash chain over the audit log, and proofs of what vexil itself wrote.

-- 1. Triggers name what they mean. Every trigger function runs with a pinned
-- search_path: pg_catalog, then vexil's own schema, then pg_temp last, so that a
-- temporary table named `console_audit_log` cannot take the audit row (unqualified
-- names otherwise resolve in pg_temp first). They are SECURITY DEFINER, owned by the
-- schema's owner: a role that may only UPDATE console_feature_flags (the runbook's
-- Option A) still gets its change audited, without any right on the audit log.
-- The functions are named by schema here because the migration runs in whatever
-- schema the database URL selects.

-- The audit log's new rows take a shared advisory lock for their transaction, before
-- their id is drawn; the sealer takes it exclusively, so that when it reads, no
-- transaction that holds a lower id is still in flight (crates/vexil-store/src/seal.rs).
CREATE FUNCTION console_audit_log_sealing_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(7308604892375413601);
    RETURN NULL;
END;
$$;

CREATE TRIGGER console_audit_log_sealing_order BEFORE INSERT ON console_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION console_audit_log_sealing_order();

-- 2. The hash chain. One link per audit row, in id order: hash = SHA-256 over the
-- previous link's hash, the row's id and row_hash (SHA-256 of the row's canonical
-- encoding). prev_id is unique, so two sealers can never fork the chain; 0 marks
-- the first link.
CREATE TABLE console_audit_seals (
    audit_id        BIGINT PRIMARY KEY,
    prev_id         BIGINT NOT NULL UNIQUE,
    row_hash        BYTEA NOT NULL,
    hash            BYTEA NOT NULL,
    sealed_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE FUNCTION console_audit_seals_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'console_audit_seals is append-only: seals cannot be %', lower(TG_OP) || 'd'
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER console_audit_seals_no_update_or_delete BEFORE UPDATE OR DELETE ON console_audit_seals
    FOR EACH ROW EXECUTE FUNCTION console_audit_seals_append_only();
CREATE TRIGGER console_audit_seals_no_truncate BEFORE TRUNCATE ON console_audit_seals
    FOR EACH STATEMENT EXECUTE FUNCTION console_audit_seals_append_only();

-- 3. Proof of authorship: vexil writes `mac` (a nonce and an HMAC under the
-- instance's secret key over the row's canonical encoding) on every row it writes.
-- A row without a valid one was written by direct SQL, whatever it claims. The
-- nonce is random and the column unique, so a copy of a genuine row cannot be
-- inserted again (SQLite binds the nonce to the row's id instead).
ALTER TABLE console_audit_log ADD COLUMN mac BYTEA;
CREATE UNIQUE INDEX console_audit_log_mac ON console_audit_log (mac);

-- Rows up to this id were written before proofs existed: shown as such, never as forged.
CREATE TABLE console_audit_proofs_since (
    audit_id        BIGINT NOT NULL
);
INSERT INTO console_audit_proofs_since (audit_id)
    SELECT COALESCE(MAX(id), 0) FROM console_audit_log;

-- Sessions carry a MAC under the secret key (crates/vexil-server/src/session_store.rs):
-- a row inserted by SQL signs nobody in.
ALTER TABLE console_sessions ADD COLUMN mac BYTEA;

DO $$
DECLARE
    schema_name TEXT := quote_ident(current_schema());
    fn TEXT;
BEGIN
    FOREACH fn IN ARRAY ARRAY[
        'console_audit_log_append_only()',
        'console_audit_log_sealing_order()',
        'console_audit_seals_append_only()',
        'console_feature_flags_names_its_flip(bigint, text, text, integer)',
        'console_feature_flags_audit_update()',
        'console_feature_flags_audit_insert()',
        'console_feature_flags_audit_delete()',
        'console_feature_flags_no_truncate()',
        'console_feature_flags_changed()'
    ] LOOP
        EXECUTE format('ALTER FUNCTION %s.%s SECURITY DEFINER SET search_path = pg_catalog, %s, pg_temp',
            schema_name, fn, schema_name);
        EXECUTE format('REVOKE ALL ON FUNCTION %s.%s FROM PUBLIC', schema_name, fn);
    END LOOP;
END;
$$;

-- Nobody but the owner needs temporary tables in vexil's database. Revoked where this
-- role may (the database's owner or a superuser); elsewhere the pinned search_path
-- above is what protects the triggers, and the notice says so.
DO $$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'could not revoke TEMPORARY on database % from PUBLIC (not its owner): the trigger functions pin their search_path, so temporary tables cannot shadow the audit log; revoke it as the owner to be thorough', current_database();
END;
$$;
