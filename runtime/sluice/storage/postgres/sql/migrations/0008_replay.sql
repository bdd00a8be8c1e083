-- 0008: replay progress (named replays, their state and per-partition positions).

CREATE TABLE replays (
    name text PRIMARY KEY,
    -- What is replayed, from where, to where (ReplayRequest.definition()); fixed when it is created.
    definition jsonb NOT NULL,
    state text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    rate_limit double precision CHECK (rate_limit > 0),
    batch_size integer NOT NULL CHECK (batch_size BETWEEN 1 AND 100000),
    -- Bumped by every run; a run's updates are conditional on it, so a superseded runner is fenced.
    run_epoch bigint NOT NULL DEFAULT 0,
    -- A consumer-group target's offsets were reset (once: a resumed replay does not reset them again).
    target_prepared boolean NOT NULL DEFAULT false,
    cancel_requested boolean NOT NULL DEFAULT false,
    error text,
    events_per_second double precision,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    started_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz
);

-- One row per replayed partition: [start_offset, end_offset) is what the replay covers (end_offset is
-- the head when it started); everything before next_offset has been delivered.
CREATE TABLE replay_partitions (
    replay_name text NOT NULL REFERENCES replays (name) ON DELETE CASCADE,
    partition integer NOT NULL CHECK (partition >= 0),
    start_offset bigint NOT NULL CHECK (start_offset >= 0),
    next_offset bigint NOT NULL,
    end_offset bigint NOT NULL,
    PRIMARY KEY (replay_name, partition),
    CHECK (start_offset <= next_offset AND next_offset <= end_offset)
);
