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
CREATE INDEX events_by_time ON events (stream_id, partition, created_at);

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
