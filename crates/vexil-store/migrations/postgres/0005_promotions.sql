-- Promotions from staging to prod (SPEC §7, issue [F]). The state machine lives in
-- vexil-core (`promotion.rs`); this table holds where each promotion is. Every change
-- of state is written with its audit row in the same transaction, and only if the
-- row is still in the state that was read (a conditional UPDATE), so two servers
-- never both approve or promote one promotion.
CREATE TABLE console_promotions (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flag_key        TEXT NOT NULL,
    state           TEXT NOT NULL
                    CHECK (state IN ('pending', 'approved', 'promoted', 'rejected', 'expired')),
    marked_by       TEXT NOT NULL,
    marked_at       TIMESTAMPTZ NOT NULL,
    soak_ends_at    TIMESTAMPTZ NOT NULL,
    -- The staging and prod rows' audit_id when it was marked (NULL: no row): any
    -- later write of either row, vexil's or direct SQL's, changes it.
    staging_audit_id BIGINT,
    prod_audit_id   BIGINT,
    approved_by     TEXT,
    approved_at     TIMESTAMPTZ,
    ended_at        TIMESTAMPTZ,
    -- Who promoted or rejected it (NULL for an expiry: vexil ends it).
    ended_by        TEXT,
    -- A rejection's reason, or an expiry's.
    reason          TEXT
);

-- One open promotion per flag, held by the database itself.
CREATE UNIQUE INDEX console_promotions_one_open
    ON console_promotions (flag_key) WHERE state IN ('pending', 'approved');
CREATE INDEX console_promotions_by_state ON console_promotions (state, id);
CREATE INDEX console_promotions_by_flag ON console_promotions (flag_key, id);
