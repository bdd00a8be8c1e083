-- 0002: consumer groups with members, fenced partition ownership and committed offsets.

CREATE TABLE consumer_groups (
    group_key bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id bigint NOT NULL REFERENCES streams (stream_id) ON DELETE CASCADE,
    name text NOT NULL,
    -- Bumped by every change of membership or ownership; members compare it to notice rebalances.
    generation bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (stream_id, name)
);

CREATE TABLE consumer_group_members (
    group_key bigint NOT NULL REFERENCES consumer_groups (group_key) ON DELETE CASCADE,
    consumer_id text NOT NULL,
    -- A new process with the same consumer id (static membership) keeps the partitions but gets
    -- new epochs, so the old process, if it still runs, is fenced.
    instance_id text NOT NULL,
    joined_at timestamptz NOT NULL,
    last_heartbeat_at timestamptz NOT NULL,
    last_poll_at timestamptz NOT NULL,
    session_timeout interval NOT NULL,
    max_poll_interval interval NOT NULL,
    PRIMARY KEY (group_key, consumer_id)
);

-- One row per partition of the stream. Every commit is conditional on (owner, epoch): a member
-- that lost a partition cannot commit for it, whatever it believes.
CREATE TABLE consumer_group_partitions (
    group_key bigint NOT NULL REFERENCES consumer_groups (group_key) ON DELETE CASCADE,
    partition integer NOT NULL CHECK (partition >= 0),
    committed_offset bigint NOT NULL CHECK (committed_offset >= 0),
    owner text,
    epoch bigint NOT NULL DEFAULT 0,
    -- The member a live owner is asked to hand this partition to (cooperative rebalancing).
    pending_owner text,
    committed_at timestamptz,
    PRIMARY KEY (group_key, partition)
);
