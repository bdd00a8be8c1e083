-- 0004: projections (issue 7): projection rows and one checkpoint per read-model version.

-- One row per projection: its sources, the read-model version readers see, the reset generation
-- last acted on, and the current or last rebuild (replay from the start of the sources).
CREATE TABLE projections (
    name text PRIMARY KEY,
    sources text[] NOT NULL,
    active_version integer NOT NULL DEFAULT 1 CHECK (active_version >= 1),
    reset_generation bigint NOT NULL DEFAULT 0 CHECK (reset_generation >= 0),
    rebuild_version integer CHECK (rebuild_version >= 1),
    rebuild_blue_green boolean NOT NULL DEFAULT false,
    rebuild_done bigint NOT NULL DEFAULT 0 CHECK (rebuild_done >= 0),
    rebuild_total bigint NOT NULL DEFAULT 0 CHECK (rebuild_total >= 0),
    rebuild_started_at timestamptz,
    rebuild_finished_at timestamptz,
    -- Set by request_rebuild (for example by `sluice replay --to-projection`); the running projection
    -- starts a rebuild when it sees it, and the rebuild clears it.
    rebuild_requested_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- One checkpoint per read-model version (two while a blue/green rebuild builds the next version
-- beside the active one): the global log position of the last event applied, NULL before the first.
-- In same-database mode a batch's read-model writes and this row's update commit in one transaction,
-- and the update is conditional on the position the batch was read after (a compare-and-set), so a
-- second runner of the same projection can never apply a batch twice.
CREATE TABLE projection_checkpoints (
    name text NOT NULL REFERENCES projections (name) ON DELETE CASCADE,
    version integer NOT NULL CHECK (version >= 1),
    position_transaction bigint,
    position_sequence bigint,
    events_applied bigint NOT NULL DEFAULT 0 CHECK (events_applied >= 0),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (name, version),
    CHECK ((position_transaction IS NULL) = (position_sequence IS NULL))
);
