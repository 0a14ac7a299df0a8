-- Audit integrity (docs/audit-integrity.md): the hash chain over the audit log and
-- proofs of what vexil itself wrote. SQLite has no temporary-table shadowing to
-- guard against: a trigger of the main schema resolves its tables in the main
-- schema, whatever a connection has created in `temp`.

-- The hash chain. One link per audit row, in id order: hash = SHA-256 over the
-- previous link's hash, the row's id and row_hash (SHA-256 of the row's canonical
-- encoding). prev_id is unique, so two sealers can never fork the chain; 0 marks
-- the first link.
CREATE TABLE console_audit_seals (
    audit_id        INTEGER PRIMARY KEY,
    prev_id         INTEGER NOT NULL UNIQUE,
    row_hash        BLOB NOT NULL,
    hash            BLOB NOT NULL,
    sealed_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

CREATE TRIGGER console_audit_seals_no_update BEFORE UPDATE ON console_audit_seals
BEGIN
    SELECT RAISE(ABORT, 'console_audit_seals is append-only: seals cannot be updated');
END;

CREATE TRIGGER console_audit_seals_no_delete BEFORE DELETE ON console_audit_seals
BEGIN
    SELECT RAISE(ABORT, 'console_audit_seals is append-only: seals cannot be deleted');
END;

CREATE TRIGGER console_audit_seals_no_replace BEFORE INSERT ON console_audit_seals
WHEN EXISTS (SELECT 1 FROM console_audit_seals WHERE audit_id = NEW.audit_id OR prev_id = NEW.prev_id)
BEGIN
    SELECT RAISE(ABORT, 'console_audit_seals is append-only: seals cannot be replaced');
END;

-- Proof of authorship: vexil writes `mac` (a nonce and an HMAC under the instance's
-- secret key over the row's canonical encoding) on every row it writes. A row
-- without a valid one was written by direct SQL, whatever it claims. Here the nonce
-- is the row's own id (SQLite's one writer knows it before the insert), so a copy of
-- a genuine row under another id carries no valid proof; no index is needed (one
-- more B-tree page per flip measured at several per cent of a flip).
ALTER TABLE console_audit_log ADD COLUMN mac BLOB;

-- Rows up to this id were written before proofs existed: shown as such, never as forged.
CREATE TABLE console_audit_proofs_since (
    audit_id        INTEGER NOT NULL
);
INSERT INTO console_audit_proofs_since (audit_id)
    SELECT COALESCE(MAX(id), 0) FROM console_audit_log;

-- Sessions carry a MAC under the secret key: a row inserted by SQL signs nobody in.
ALTER TABLE console_sessions ADD COLUMN mac BLOB;
