-- Every live process holding a `vexil::Flags` handle reports here (a heartbeat every
-- 10 s): who it is, what it runs, its env layer as it parsed it, and which change of
-- each flag it holds. This is telemetry, not state: it is not audited, and rows of
-- processes gone for a day are pruned by the others.
CREATE TABLE vexil_instances (
    id              TEXT PRIMARY KEY,
    env             TEXT NOT NULL,
    host            TEXT NOT NULL,
    pid             BIGINT NOT NULL,
    application     TEXT NOT NULL,
    version         TEXT NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    last_seen       TIMESTAMPTZ NOT NULL,
    -- The master switch and each declared flag's FLAG_* variable, parsed: a JSON
    -- object of "unset"/"on"/"off"/"invalid" (never the raw values of other variables).
    env_layer       TEXT NOT NULL,
    -- For each flag whose row it holds: {"flag": [audit_id, "applied at"]}.
    applied         TEXT NOT NULL
);

CREATE INDEX vexil_instances_by_env ON vexil_instances (env, last_seen);
