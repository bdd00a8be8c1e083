-- 0009: dead letters of consumer groups on persistent streams (sluice.services.retries).
-- One row per event a group gave up on: the original event, the failure history, and the redrive
-- state. A redriven row waits (redrive_requested_at set) until a member of that group claims it
-- (claim_token, claimed_until: a lease), delivers it and deletes the row; only that group sees it.
CREATE TABLE group_dead_letters (
    dead_letter_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_key bigint NOT NULL REFERENCES consumer_groups (group_key) ON DELETE CASCADE,
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    schema_version integer NOT NULL,
    content_type text NOT NULL,
    payload bytea NOT NULL,
    metadata jsonb NOT NULL,
    correlation_id text,
    appended_at timestamptz NOT NULL,
    error text NOT NULL,
    attempts integer NOT NULL CHECK (attempts >= 1),
    first_failure_at timestamptz NOT NULL,
    last_failure_at timestamptz NOT NULL,
    dead_lettered_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    dead_letter_stream text NOT NULL,
    consumer_id text NOT NULL,
    redrives integer NOT NULL DEFAULT 0,
    redrive_requested_at timestamptz,
    claimed_by text,
    claim_token uuid,
    claimed_until timestamptz,
    -- Burying the same event again (a crash before the commit, a failed redrive) updates the row.
    UNIQUE (group_key, source_partition, source_offset)
);

CREATE INDEX group_dead_letters_redrives ON group_dead_letters (group_key, dead_letter_id)
    WHERE redrive_requested_at IS NOT NULL;
