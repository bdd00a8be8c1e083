-- 0007: retention. The oldest retained offset of each partition (its low watermark), and the
-- retention policies matched by stream-name pattern.

-- Retention deletes a partition's oldest events in bounded batches and moves first_offset up in
-- the same short transaction; readers and consumer groups compare it with their position to tell
-- a pruned range from an empty one.
ALTER TABLE stream_partitions ADD COLUMN first_offset bigint NOT NULL DEFAULT 0 CHECK (first_offset >= 0);

-- A pattern is a stream name (that stream only), a literal prefix followed by '*' (orders-*), or '*'
-- (every stream). The most specific pattern matching a stream wins: see sluice.store.values.retention_patterns.
CREATE TABLE retention_policies (
    pattern text PRIMARY KEY,
    max_age interval CHECK (max_age > interval '0'),
    max_event_count bigint CHECK (max_event_count >= 1),
    max_bytes bigint CHECK (max_bytes >= 0),
    window_start time,
    window_end time,
    cleanup_interval interval NOT NULL DEFAULT interval '5 minutes' CHECK (cleanup_interval > interval '0'),
    enforce boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- When the policy last ran; apply_policies claims a run by moving it, so that several workers
    -- (pods) run each policy once per cleanup interval.
    last_applied_at timestamptz,
    CHECK (max_age IS NOT NULL OR max_event_count IS NOT NULL OR max_bytes IS NOT NULL),
    CHECK ((window_start IS NULL) = (window_end IS NULL))
);
