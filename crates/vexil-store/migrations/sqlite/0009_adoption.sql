-- Adoption (docs/adopt.md): `vexil migrate --adopt` keeps an existing console's
-- `console_feature_flags` and `console_audit_log` with their history, and records
-- here what it found. Both tables stay empty on a database vexil created. The
-- PostgreSQL tree has a migration of the same number.

-- One row on an adopted database.
CREATE TABLE console_adoption (
    adopted_at          TEXT NOT NULL,
    -- The audit rows up to this id were written before vexil, by the old console
    -- (0 when it had none).
    last_old_audit_id   INTEGER NOT NULL,
    -- vexil numbers its own accounts from here: an admin_id below it is always one
    -- of the old console's admins, never a vexil account, even for rows the old
    -- console writes while it runs beside vexil.
    accounts_from       INTEGER NOT NULL
);

-- The old console's admins. Each is a disabled account of `users` under its old id,
-- so that console_audit_log.admin_id keeps its value and its foreign key; it cannot
-- sign in. `account_id` is the vexil account it was mapped to (`vexil user
-- map-admin`), if any.
CREATE TABLE console_old_admins (
    admin_id            INTEGER PRIMARY KEY REFERENCES users (id),
    account_id          INTEGER REFERENCES users (id)
);
