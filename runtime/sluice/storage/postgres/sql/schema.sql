-- The whole current schema, for fresh databases. `sluice migrate` applies it to an empty
-- schema; existing ones get the numbered migrations. A test proves both build the same database.
-- schema-version: 14

CREATE TABLE streams (
    stream_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE,
    type text NOT NULL CHECK (type IN ('persistent', 'ephemeral')),
    partitions integer NOT NULL DEFAULT 1 CHECK (partitions BETWEEN 1 AND 1024),
    max_attempts integer NOT NULL DEFAULT 5 CHECK (max_attempts BETWEEN 1 AND 1000),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- How consumer groups share the stream's events: each to every group (broadcast) or, within a
    -- group, each to one member (queue).
    delivery text NOT NULL DEFAULT 'broadcast' CHECK (delivery IN ('broadcast', 'queue'))
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
-- partition is missing, the stream is archived or deleted, or the expectation fails (the caller
-- then asks why). Each event has its own correlation id (p_correlation_ids, one per event), so that
-- the appends of callers with different correlation ids can share one transaction (group commit).
-- Writers of one partition first queue on a transaction advisory lock, which needs no transaction
-- id; the transaction gets its id at the UPDATE below, once it holds the lock. So within a
-- partition transaction ids increase with offsets, and the global log, which is ordered by
-- transaction id, keeps every partition's order. The counter row keeps offsets dense.
-- Two statements (migration 0013; before, five): the lookup takes the lock, then one statement
-- checks the lifecycle, moves the counter and inserts the events. It starts after the lock, so its
-- snapshot sees an archive or soft delete that committed while this append waited (they mark the
-- stream, then take every partition's lock).
CREATE FUNCTION append_correlated_events(
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
    p_correlation_ids text[]
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_stream_id bigint;
    v_first_offset bigint;
BEGIN
    SELECT locked.stream_id INTO v_stream_id
      FROM (SELECT s.stream_id, pg_advisory_xact_lock(s.stream_id * 1024 + p_partition)
              FROM streams s
             WHERE s.name = p_stream_name AND s.type = 'persistent') AS locked;
    IF v_stream_id IS NULL THEN
        RETURN NULL;
    END IF;
    WITH reserved AS (
        UPDATE stream_partitions p
           SET next_offset = p.next_offset + cardinality(p_event_ids),
               last_appended_at = greatest(clock_timestamp(), p.last_appended_at)
          FROM streams s
         WHERE s.stream_id = v_stream_id AND s.archived_at IS NULL AND s.deleted_at IS NULL
           AND p.stream_id = v_stream_id AND p.partition = p_partition
           AND (p_expected_next_offset IS NULL OR p.next_offset = p_expected_next_offset)
           AND (NOT p_require_existing OR p.next_offset > 0)
        RETURNING p.next_offset - cardinality(p_event_ids) AS first_offset, p.last_appended_at
    ), inserted AS (
        INSERT INTO events (stream_id, partition, event_offset, event_id, event_type, schema_version,
                            content_type, data, metadata, correlation_id, created_at)
        SELECT v_stream_id, p_partition, reserved.first_offset + batch.ordinal - 1, batch.event_id,
               batch.event_type, batch.schema_version, batch.content_type, batch.data, batch.metadata,
               batch.correlation_id, reserved.last_appended_at
          FROM reserved,
               unnest(p_event_ids, p_event_types, p_schema_versions, p_content_types, p_payloads, p_metadata,
                      p_correlation_ids)
                   WITH ORDINALITY AS batch(event_id, event_type, schema_version, content_type, data, metadata,
                                            correlation_id, ordinal)
    )
    SELECT reserved.first_offset INTO v_first_offset FROM reserved;
    RETURN v_first_offset;
END
$$;

-- The append of Sluice versions before 0012 (one correlation id for the whole batch), kept for their
-- processes during a rolling upgrade: the same append, every event with that one correlation id.
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
LANGUAGE sql AS $$
    SELECT append_correlated_events(
        p_stream_name, p_partition, p_expected_next_offset, p_require_existing, p_event_ids, p_event_types,
        p_schema_versions, p_content_types, p_payloads, p_metadata,
        array_fill(p_correlation_id, ARRAY[cardinality(p_event_ids)])
    )
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
    PRIMARY KEY (group_key, consumer_id),
    -- Heartbeats refused because a newer process joined with this consumer id (two live processes
    -- sharing one id; migration 0010): shown by describe().
    duplicates_fenced integer NOT NULL DEFAULT 0,
    last_duplicate_at timestamptz
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
    -- QUEUE groups: where the next fresh claim of this partition starts (see consumer_group_claims).
    claimed_offset bigint NOT NULL,
    PRIMARY KEY (group_key, partition)
);

-- QUEUE delivery: the members of a group share every partition. A member claims a range of a
-- partition's offsets (at most its batch size) under a lease that its heartbeats extend; a claim
-- whose lease ran out (its member died, got stuck or left) is taken over by another member with
-- the next attempt number, so a late acknowledgement from the previous holder is refused (fenced).
-- claimed_offset is where the next fresh claim starts; committed_offset advances over the
-- contiguous finished claims, so committed offsets and lag stay exact and O(partitions).
CREATE TABLE consumer_group_claims (
    claim_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_key bigint NOT NULL REFERENCES consumer_groups (group_key) ON DELETE CASCADE,
    partition integer NOT NULL CHECK (partition >= 0),
    from_offset bigint NOT NULL CHECK (from_offset >= 0),
    to_offset bigint NOT NULL,
    owner text NOT NULL,
    instance_id text NOT NULL,
    attempt integer NOT NULL DEFAULT 1,
    expires_at timestamptz NOT NULL,
    done boolean NOT NULL DEFAULT false,
    CHECK (to_offset > from_offset),
    UNIQUE (group_key, partition, from_offset)
);
CREATE INDEX consumer_group_claims_expiring ON consumer_group_claims (group_key, expires_at) WHERE NOT done;
CREATE INDEX consumer_group_claims_by_owner ON consumer_group_claims (group_key, owner) WHERE NOT done;

-- Claims events for one member of a QUEUE group: first a claim whose lease ran out (its remaining
-- range, with the next attempt number), else a fresh range of up to p_count events from the first
-- partition, in turn from p_first_partition, that has unclaimed events. No row when nothing is
-- available (or the group is missing). The partition's epoch comes with the claim: a forced reset
-- bumps it and drops every claim, and the member learns of it from its next heartbeat.
CREATE FUNCTION claim_group_events(
    p_stream_name text,
    p_group_id text,
    p_consumer_id text,
    p_instance_id text,
    p_count integer,
    p_lease interval,
    p_first_partition integer
) RETURNS TABLE (claim_id bigint, partition integer, from_offset bigint, to_offset bigint, attempt integer,
                epoch bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_group_key bigint;
    v_stream_id bigint;
    v_partitions integer;
    v_partition integer;
    v_claimed bigint;
    v_head bigint;
    v_epoch bigint;
BEGIN
    SELECT g.group_key, s.stream_id, s.partitions INTO v_group_key, v_stream_id, v_partitions
      FROM streams s JOIN consumer_groups g ON g.stream_id = s.stream_id AND g.name = p_group_id
     WHERE s.name = p_stream_name;
    IF v_group_key IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    UPDATE consumer_group_claims c
       SET owner = p_consumer_id, instance_id = p_instance_id, attempt = c.attempt + 1,
           expires_at = clock_timestamp() + p_lease
      FROM consumer_group_partitions gp
     WHERE c.claim_id = (SELECT expired.claim_id FROM consumer_group_claims expired
                          WHERE expired.group_key = v_group_key AND NOT expired.done
                            AND expired.expires_at < clock_timestamp()
                          ORDER BY expired.expires_at
                          LIMIT 1
                            FOR UPDATE SKIP LOCKED)
       AND gp.group_key = v_group_key AND gp.partition = c.partition
    RETURNING c.claim_id, c.partition, c.from_offset, c.to_offset, c.attempt, gp.epoch;
    IF FOUND THEN
        RETURN;
    END IF;
    FOR v_partition IN
        SELECT gp.partition
          FROM consumer_group_partitions gp
          JOIN stream_partitions sp ON sp.stream_id = v_stream_id AND sp.partition = gp.partition
         WHERE gp.group_key = v_group_key AND gp.claimed_offset < sp.next_offset
         ORDER BY ((gp.partition - p_first_partition) % v_partitions + v_partitions) % v_partitions
    LOOP
        SELECT gp.claimed_offset, gp.epoch INTO v_claimed, v_epoch
          FROM consumer_group_partitions gp
         WHERE gp.group_key = v_group_key AND gp.partition = v_partition
           FOR UPDATE;
        SELECT sp.next_offset INTO v_head
          FROM stream_partitions sp WHERE sp.stream_id = v_stream_id AND sp.partition = v_partition;
        CONTINUE WHEN v_claimed >= v_head;  -- another member took the rest meanwhile
        UPDATE consumer_group_partitions gp
           SET claimed_offset = least(v_claimed + p_count, v_head)
         WHERE gp.group_key = v_group_key AND gp.partition = v_partition;
        RETURN QUERY
        INSERT INTO consumer_group_claims (group_key, partition, from_offset, to_offset, owner, instance_id, expires_at)
        VALUES (v_group_key, v_partition, v_claimed, least(v_claimed + p_count, v_head), p_consumer_id, p_instance_id,
                clock_timestamp() + p_lease)
        RETURNING consumer_group_claims.claim_id, consumer_group_claims.partition,
                  consumer_group_claims.from_offset, consumer_group_claims.to_offset, consumer_group_claims.attempt,
                  v_epoch;
        RETURN;
    END LOOP;
END
$$;

-- Acknowledges claims of a QUEUE group: each (claim, attempt) up to p_up_to (the next offset not
-- processed). An acknowledgement only applies while the claim still has that attempt number, so a
-- member whose claim was taken over is refused. A partly processed claim is split: the processed
-- part becomes a finished claim of its own. Then each touched partition's committed offset
-- advances over the contiguous finished claims at its front. Returns the claims acknowledged.
CREATE FUNCTION acknowledge_group_claims(
    p_stream_name text,
    p_group_id text,
    p_claim_ids bigint[],
    p_attempts integer[],
    p_up_to bigint[]
) RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_group_key bigint;
    v_claim consumer_group_claims%ROWTYPE;
    v_wanted record;
    v_partition integer;
    v_committed bigint;
    v_next bigint;
    v_touched integer[] := '{}';
BEGIN
    SELECT g.group_key INTO v_group_key
      FROM streams s JOIN consumer_groups g ON g.stream_id = s.stream_id AND g.name = p_group_id
     WHERE s.name = p_stream_name;
    IF v_group_key IS NULL THEN
        RETURN;
    END IF;
    -- Lock the partitions in order first (the same order as every other acknowledger: no deadlock).
    PERFORM 1 FROM consumer_group_partitions gp
     WHERE gp.group_key = v_group_key
       AND gp.partition IN (SELECT c.partition FROM consumer_group_claims c WHERE c.claim_id = ANY (p_claim_ids))
     ORDER BY gp.partition
       FOR UPDATE;
    FOR v_wanted IN
        SELECT * FROM unnest(p_claim_ids, p_attempts, p_up_to) AS wanted(claim_id, attempt, up_to)
         ORDER BY wanted.claim_id  -- claim rows are locked in claim id order everywhere
    LOOP
        SELECT * INTO v_claim FROM consumer_group_claims c
         WHERE c.claim_id = v_wanted.claim_id AND c.group_key = v_group_key AND c.attempt = v_wanted.attempt
           FOR UPDATE;
        CONTINUE WHEN NOT FOUND;
        RETURN NEXT v_claim.claim_id;
        CONTINUE WHEN v_claim.done OR v_wanted.up_to <= v_claim.from_offset;
        IF v_wanted.up_to >= v_claim.to_offset THEN
            UPDATE consumer_group_claims SET done = true WHERE claim_id = v_claim.claim_id;
        ELSE
            UPDATE consumer_group_claims SET from_offset = v_wanted.up_to WHERE claim_id = v_claim.claim_id;
            INSERT INTO consumer_group_claims (group_key, partition, from_offset, to_offset, owner, instance_id,
                                               attempt, expires_at, done)
            VALUES (v_group_key, v_claim.partition, v_claim.from_offset, v_wanted.up_to, v_claim.owner,
                    v_claim.instance_id, v_claim.attempt, v_claim.expires_at, true);
        END IF;
        v_touched := v_touched || v_claim.partition;
    END LOOP;
    FOR v_partition IN SELECT DISTINCT touched FROM unnest(v_touched) AS touched LOOP
        SELECT gp.committed_offset INTO v_committed
          FROM consumer_group_partitions gp WHERE gp.group_key = v_group_key AND gp.partition = v_partition;
        LOOP
            DELETE FROM consumer_group_claims c
             WHERE c.group_key = v_group_key AND c.partition = v_partition AND c.from_offset = v_committed AND c.done
            RETURNING c.to_offset INTO v_next;
            EXIT WHEN NOT FOUND;
            v_committed := v_next;
        END LOOP;
        UPDATE consumer_group_partitions gp
           SET committed_offset = v_committed, committed_at = clock_timestamp()
         WHERE gp.group_key = v_group_key AND gp.partition = v_partition AND gp.committed_offset <> v_committed;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------- sagas (issue 7, engineer S)

CREATE TABLE saga_instances (
    saga_id uuid PRIMARY KEY,
    saga_name text NOT NULL,
    correlation_id text NOT NULL,
    status text NOT NULL
        CHECK (status IN ('running', 'completed', 'compensating', 'compensated', 'failed')),
    current_step text,
    progress jsonb NOT NULL,
    context jsonb NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT saga_instances_correlation_unique UNIQUE (saga_name, correlation_id)
);

CREATE INDEX saga_instances_by_status ON saga_instances (status, created_at);

CREATE TABLE saga_history (
    entry_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    saga_id uuid NOT NULL REFERENCES saga_instances (saga_id) ON DELETE CASCADE,
    version bigint NOT NULL,
    kind text NOT NULL,
    step text,
    attempt integer,
    detail text,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX saga_history_by_saga ON saga_history (saga_id, entry_id);

-- ---------------------------------------------------------------- retention (issue 6, engineer R)

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

-- Group dead letters (engineer D, migration 0009): see runtime/sluice/services/retries and docs/dead-letters.md.
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

-- ---------------------------------------------------------------- projections (issue 7, engineer P)

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

-- Dead letters of projections (issue 20, migration 0011): an event that a projection cannot apply
-- (a value that does not convert to its column's type, a key without a value, a payload that is not JSON)
-- is recorded here with the reason, in the transaction that moves the version's checkpoint past it: never
-- dropped silently, and the projection goes on. Rows are per read-model version (a blue/green rebuild
-- records its own); a rebuild clears its version's rows, and retired versions' rows go with their
-- checkpoints.
CREATE TABLE projection_dead_letters (
    name text NOT NULL REFERENCES projections (name) ON DELETE CASCADE,
    version integer NOT NULL CHECK (version >= 1),
    position_transaction bigint NOT NULL,
    position_sequence bigint NOT NULL,
    stream_name text NOT NULL,
    partition integer NOT NULL,
    event_offset bigint NOT NULL,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    reason text NOT NULL,
    dead_lettered_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (name, version, position_transaction, position_sequence)
);

-- Why text `value` does not convert to `type_name` (one of the column types of sluice.services.projections.
-- sql_target; any other name is refused), or NULL when it does. PostgreSQL 15 has no pg_input_is_valid:
-- the cast is tried in a subtransaction and its error message returned.
CREATE FUNCTION projection_cast_error(value text, type_name text) RETURNS text
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    CASE type_name
        WHEN 'text' THEN RETURN NULL;
        WHEN 'jsonb' THEN PERFORM value::jsonb;
        WHEN 'bigint' THEN PERFORM value::bigint;
        WHEN 'integer' THEN PERFORM value::integer;
        WHEN 'numeric' THEN PERFORM value::numeric;
        WHEN 'boolean' THEN PERFORM value::boolean;
        WHEN 'timestamptz' THEN PERFORM value::timestamptz;
        WHEN 'uuid' THEN PERFORM value::uuid;
    END CASE;
    RETURN NULL;
EXCEPTION WHEN data_exception THEN
    RETURN SQLERRM;
END
$$;

-- Replay (issue 6): named replays of a stream into a handler, a consumer group, a projection or another
-- stream, with their progress, so that a replay that crashed resumes from its last recorded position.
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

-- ---------------------------------------------------------------- stream lifecycle (issue 6, engineer L)

-- Stream lifecycle and compression (issue 6, engineer L, migration 0006): who created, archived and
-- soft-deleted each stream and when (an archived stream refuses appends and enqueues, a deleted one is
-- also hidden), and how its payloads are compressed above a size threshold (see sluice.core.compression:
-- a compressed payload's content_type carries "; compression=zstd" or "gzip"). append_events checks
-- the lifecycle after taking its partition lock (above); enqueue_messages in its locking read.
ALTER TABLE streams
    ADD COLUMN compression text NOT NULL DEFAULT 'none' CHECK (compression IN ('none', 'gzip', 'zstd')),
    ADD COLUMN compression_threshold integer NOT NULL DEFAULT 1024 CHECK (compression_threshold >= 0),
    ADD COLUMN created_by text,
    ADD COLUMN archived_at timestamptz,
    ADD COLUMN archived_by text,
    ADD COLUMN deleted_at timestamptz,
    ADD COLUMN deleted_by text;
-- purge_deleted_streams looks for the soft-deleted streams only.
CREATE INDEX streams_deleted ON streams (deleted_at) WHERE deleted_at IS NOT NULL;

-- ---------------------------------------------------------------- appends in one statement (0014, issue 18)

-- Whether the partition takes appends: false while the stream is archived or soft-deleted. Archive and
-- soft delete set it after taking every partition's append lock, so an append that waited for that lock
-- re-reads its counter row (changed while it waited) and is refused; see append_events in queries.sql.
ALTER TABLE stream_partitions ADD COLUMN accepts_appends boolean NOT NULL DEFAULT true;

-- Reopens a stream's counter rows once it is neither archived nor deleted, whichever version of Sluice
-- made the change (a process of an earlier version unarchives or restores without knowing of them).
-- Closing is change_lifecycle's own work, after it has taken every partition's append lock. An AFTER
-- trigger runs once its statement is done, so it never touches a row that statement changes.
CREATE FUNCTION reopen_stream_partitions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE stream_partitions SET accepts_appends = true WHERE stream_id = NEW.stream_id AND NOT accepts_appends;
    RETURN NULL;
END
$$;

CREATE TRIGGER streams_reopened AFTER UPDATE OF archived_at, deleted_at ON streams
    FOR EACH ROW
    WHEN (NEW.archived_at IS NULL AND NEW.deleted_at IS NULL
          AND (OLD.archived_at IS NOT NULL OR OLD.deleted_at IS NOT NULL))
    EXECUTE FUNCTION reopen_stream_partitions();
