-- The change feed: every change to console_feature_flags, by vexil or by direct SQL,
-- appends (flag_key, env) here, from a trigger, in the changing transaction. A
-- process that holds a snapshot polls `PRAGMA data_version` (free: no query) and,
-- when another connection has committed, reads the changes after the last one it
-- applied and re-reads only those rows. On SQLite, writers are serialised, so `seq`
-- is also the commit order. The PostgreSQL tree has the same table, and notifies.
CREATE TABLE console_flag_changes (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    flag_key        TEXT NOT NULL,
    env             TEXT NOT NULL,
    changed_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

CREATE TRIGGER console_feature_flags_changed_insert AFTER INSERT ON console_feature_flags
BEGIN
    INSERT INTO console_flag_changes (flag_key, env) VALUES (NEW.flag_key, NEW.env);
END;

CREATE TRIGGER console_feature_flags_changed_update AFTER UPDATE ON console_feature_flags
BEGIN
    INSERT INTO console_flag_changes (flag_key, env) VALUES (NEW.flag_key, NEW.env);
END;

CREATE TRIGGER console_feature_flags_changed_delete AFTER DELETE ON console_feature_flags
BEGIN
    INSERT INTO console_flag_changes (flag_key, env) VALUES (OLD.flag_key, OLD.env);
END;
