-- 0001: persistent streams with partitions, the global log, and queues with dead letters.
-- Runs with search_path set to Sluice's schema; no statement names a schema.

CREATE TABLE streams (
    stream_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE,
    type text NOT NULL CHECK (type IN ('persistent', 'ephemeral')),
    partitions integer NOT NULL DEFAULT 1 CHECK (partitions BETWEEN 1 AND 1024),
    max_attempts integer NOT NULL DEFAULT 5 CHECK (max_attempts BETWEEN 1 AND 1000),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- One counter row per partition. An append reserves its offsets by updating this row, so writers
-- to one partition serialize on it and offsets are dense and become visible in order.
CREATE TABLE stream_partitions (
    stream_id bigint NOT NULL REFERENCES streams (stream_id) ON DELETE CASCADE,
    partition integer NOT NULL CHECK (partition >= 0),
    next_offset bigint NOT NULL DEFAULT 0 CHECK (next_offset >= 0),
    last_appended_at timestamptz,
    PRIMARY KEY (stream_id, partition)
);

CREATE TABLE events (
    stream_id bigint NOT NULL,
    partition integer NOT NULL,
    event_offset bigint NOT NULL,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    schema_version integer NOT NULL DEFAULT 1,
    content_type text NOT NULL,
    data bytea NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}',
    correlation_id text,
    created_at timestamptz NOT NULL,
    -- The global log orders events by (writing transaction, sequence) and readers stop below the
    -- oldest transaction still running, so an event that commits late is never skipped.
    transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
    sequence bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (stream_id, partition, event_offset)
);
CREATE UNIQUE INDEX events_event_id ON events (stream_id, event_id);
CREATE INDEX events_global_order ON events (transaction_id, sequence);

-- Appends a batch to one partition and returns its first offset, or NULL when the stream or
-- partition is missing or the expectation fails (the caller then asks why).
-- Writers of one partition first queue on a transaction advisory lock, which needs no transaction
-- id; the transaction gets its id at the UPDATE below, once it holds the lock. So within a
-- partition transaction ids increase with offsets, and the global log, which is ordered by
-- transaction id, keeps every partition's order. The counter row keeps offsets dense.
CREATE FUNCTION append_events(
    p_stream_name text,
    p_partition integer,
    p_expected_next_offset bigint,
    p_require_existing boolean,
    p_event_ids uuid[],
    p_event_types text[],
    p_schema_versions integer[],
    p_content_types text[],
    p_payloads bytea[],
    p_metadata jsonb[],
    p_correlation_id text
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_stream_id bigint;
    v_first_offset bigint;
    v_appended_at timestamptz;
    v_count integer := cardinality(p_event_ids);
BEGIN
    SELECT stream_id INTO v_stream_id FROM streams WHERE name = p_stream_name AND type = 'persistent';
    IF v_stream_id IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(v_stream_id * 1024 + p_partition);
    UPDATE stream_partitions
       SET next_offset = next_offset + v_count,
           last_appended_at = greatest(clock_timestamp(), last_appended_at)
     WHERE stream_id = v_stream_id AND partition = p_partition
       AND (p_expected_next_offset IS NULL OR next_offset = p_expected_next_offset)
       AND (NOT p_require_existing OR next_offset > 0)
    RETURNING next_offset - v_count, last_appended_at INTO v_first_offset, v_appended_at;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO events (stream_id, partition, event_offset, event_id, event_type, schema_version,
                        content_type, data, metadata, correlation_id, created_at)
    SELECT v_stream_id, p_partition, v_first_offset + batch.ordinal - 1, batch.event_id, batch.event_type,
           batch.schema_version, batch.content_type, batch.data, batch.metadata, p_correlation_id, v_appended_at
      FROM unnest(p_event_ids, p_event_types, p_schema_versions, p_content_types, p_payloads, p_metadata)
               WITH ORDINALITY AS batch(event_id, event_type, schema_version, content_type, data, metadata, ordinal);
    RETURN v_first_offset;
END
$$;

-- The first offset of a partition stored at or after p_at (the partition's head when none is).
-- Timestamps never decrease within a partition (append_events takes the greatest of the clock and
-- the last append time), so a binary search over the primary key finds it in O(log n) lookups,
-- with no index on time that appends would have to maintain.
CREATE FUNCTION offset_at_time(p_stream_name text, p_partition integer, p_at timestamptz)
RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_stream_id bigint;
    v_low bigint;
    v_high bigint;
    v_middle bigint;
    v_created_at timestamptz;
BEGIN
    SELECT p.stream_id, p.next_offset INTO v_stream_id, v_high
      FROM streams s JOIN stream_partitions p ON p.stream_id = s.stream_id AND p.partition = p_partition
     WHERE s.name = p_stream_name;
    IF v_stream_id IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT min(event_offset) INTO v_low FROM events WHERE stream_id = v_stream_id AND partition = p_partition;
    v_low := coalesce(v_low, v_high);
    WHILE v_low < v_high LOOP
        v_middle := (v_low + v_high) / 2;
        SELECT created_at INTO v_created_at
          FROM events WHERE stream_id = v_stream_id AND partition = p_partition AND event_offset = v_middle;
        IF v_created_at >= p_at THEN
            v_high := v_middle;
        ELSE
            v_low := v_middle + 1;
        END IF;
    END LOOP;
    RETURN v_low;
END
$$;

CREATE TABLE queue_messages (
    message_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id bigint NOT NULL REFERENCES streams (stream_id) ON DELETE CASCADE,
    event_type text NOT NULL,
    schema_version integer NOT NULL DEFAULT 1,
    content_type text NOT NULL,
    data bytea NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}',
    correlation_id text,
    dedupe_key text,
    enqueued_at timestamptz NOT NULL,
    visible_at timestamptz NOT NULL,
    -- attempts counts deliveries; a receipt is (message_id, attempts) and is stale once it changes.
    attempts integer NOT NULL DEFAULT 0,
    first_delivered_at timestamptz,
    last_delivered_at timestamptz,
    failures jsonb NOT NULL DEFAULT '[]',
    last_failed_attempt integer NOT NULL DEFAULT 0
);
CREATE INDEX queue_messages_ready ON queue_messages (stream_id, visible_at, message_id);
CREATE UNIQUE INDEX queue_messages_dedupe ON queue_messages (stream_id, dedupe_key)
    WHERE dedupe_key IS NOT NULL;
-- Queues churn: every delivery rewrites a row. Vacuum and analyze early, so dead rows do not pile
-- up and the planner keeps walking queue_messages_ready in order instead of sorting the queue.
ALTER TABLE queue_messages SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_analyze_scale_factor = 0.01,
    autovacuum_vacuum_cost_delay = 0
);

CREATE TABLE dead_letters (
    dead_letter_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id bigint NOT NULL REFERENCES streams (stream_id) ON DELETE CASCADE,
    message_id bigint NOT NULL,
    event_type text NOT NULL,
    schema_version integer NOT NULL,
    content_type text NOT NULL,
    data bytea NOT NULL,
    metadata jsonb NOT NULL,
    correlation_id text,
    enqueued_at timestamptz NOT NULL,
    attempts integer NOT NULL,
    first_delivered_at timestamptz,
    last_delivered_at timestamptz,
    failures jsonb NOT NULL,
    dead_lettered_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX dead_letters_by_stream ON dead_letters (stream_id, dead_letter_id);
