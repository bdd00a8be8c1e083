-- Named queries of the PostgreSQL backend. Each starts with "-- name: <name>"; the loader in
-- queries.py reads them once. Every value is a bound parameter; search_path selects the schema.
-- Sluice's connections run with plan_cache_mode = force_generic_plan (no planning per call), so
-- every query here is written to have a good generic plan: keyed lookups, no "$1 IS NULL OR"
-- filters, scalar subqueries rather than joins where an index order must be used.

-- name: describe_stream
SELECT s.stream_id, s.name, s.type, s.partitions, s.max_attempts, s.created_at, s.delivery,
       s.compression, s.compression_threshold, s.created_by, s.archived_at, s.archived_by,
       s.deleted_at, s.deleted_by,
       p.partition, p.next_offset, p.last_appended_at, p.first_offset
  FROM streams s
  JOIN stream_partitions p ON p.stream_id = s.stream_id
 WHERE s.name = $1
 ORDER BY p.partition;

-- name: list_streams
SELECT s.stream_id, s.name, s.type, s.partitions, s.max_attempts, s.created_at, s.delivery,
       s.compression, s.compression_threshold, s.created_by, s.archived_at, s.archived_by,
       s.deleted_at, s.deleted_by,
       p.partition, p.next_offset, p.last_appended_at, p.first_offset
  FROM streams s
  JOIN stream_partitions p ON p.stream_id = s.stream_id
 ORDER BY s.name, p.partition;

-- name: create_stream
WITH created AS (
    INSERT INTO streams (name, type, partitions, max_attempts, delivery, compression, compression_threshold,
                         created_by)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
    ON CONFLICT (name) DO NOTHING
    RETURNING stream_id, partitions
), partition_rows AS (
    INSERT INTO stream_partitions (stream_id, partition)
    SELECT created.stream_id, generate_series(0, created.partitions - 1) FROM created
)
SELECT stream_id FROM created;

-- name: lock_stream_for_delete
-- Waits for appends in flight (they hold partition rows), so the deletes that follow see their rows.
SELECT s.stream_id
  FROM streams s
  JOIN stream_partitions p ON p.stream_id = s.stream_id
 WHERE s.name = $1
   FOR UPDATE;

-- name: delete_stream_data
WITH deleted_events AS (
    DELETE FROM events WHERE stream_id = $1
)
DELETE FROM streams WHERE stream_id = $1;

-- name: change_lifecycle
-- Archive, unarchive, soft delete or restore stream $1 ($2 the action, $3 the actor, $4 how long a
-- deleted stream stays restorable); the row of a stream that does not exist is missing. Archive and
-- soft delete lock the stream's row (enqueues read it with KEY SHARE) and then every partition's
-- append lock, after marking it: appends and enqueues in flight commit first. Then they close the
-- partitions' counter rows (accepts_appends), which an append that waited for the lock re-reads:
-- it is refused (see append_events). Unarchive and restore reopen them through the streams_reopened
-- trigger (schema.sql) once the stream is neither archived nor deleted.
WITH target AS (
    SELECT s.stream_id FROM streams s WHERE s.name = $1 FOR UPDATE
), changed AS (
    UPDATE streams s
       SET archived_at = CASE $2::text WHEN 'archive' THEN clock_timestamp() ELSE NULL END,
           archived_by = CASE $2::text WHEN 'archive' THEN $3::text ELSE NULL END
      FROM target
     WHERE s.stream_id = target.stream_id AND s.deleted_at IS NULL
       AND (($2::text = 'archive' AND s.archived_at IS NULL) OR ($2::text = 'unarchive' AND s.archived_at IS NOT NULL))
    RETURNING s.stream_id, s.partitions, s.archived_at IS NULL AND s.deleted_at IS NULL AS open
), deleted AS (
    UPDATE streams s
       SET deleted_at = CASE $2::text WHEN 'soft_delete' THEN clock_timestamp() ELSE NULL END,
           deleted_by = CASE $2::text WHEN 'soft_delete' THEN $3::text ELSE NULL END
      FROM target
     WHERE s.stream_id = target.stream_id
       AND (($2::text = 'soft_delete' AND s.deleted_at IS NULL)
            OR ($2::text = 'restore' AND s.deleted_at >= clock_timestamp() - $4::interval))
    RETURNING s.stream_id, s.partitions, s.archived_at IS NULL AND s.deleted_at IS NULL AS open
), marked AS (
    SELECT * FROM changed UNION ALL SELECT * FROM deleted
), fenced AS (
    SELECT marked.stream_id, pg_advisory_xact_lock(marked.stream_id * 1024 + partition_number) AS waited
      FROM marked, generate_series(0, marked.partitions - 1) AS partition_number
     WHERE $2::text IN ('archive', 'soft_delete')
     ORDER BY partition_number
), closed AS (
    -- After the fence: the count is computed (every lock taken) before any row is changed.
    UPDATE stream_partitions p
       SET accepts_appends = false
      FROM marked
     WHERE p.stream_id = marked.stream_id AND p.accepts_appends AND NOT marked.open
       AND (SELECT count(*) FROM fenced) >= 0
    RETURNING p.partition
)
SELECT target.stream_id, (SELECT count(*) FROM fenced) AS partitions_fenced,
       (SELECT count(*) FROM closed) AS partitions_closed
  FROM target;

-- name: purge_deleted_streams
-- Hard-deletes the streams soft-deleted more than $1 ago; returns their names.
WITH doomed AS (
    SELECT stream_id FROM streams WHERE deleted_at < clock_timestamp() - $1::interval FOR UPDATE
), deleted_events AS (
    DELETE FROM events WHERE stream_id IN (SELECT stream_id FROM doomed)
)
DELETE FROM streams WHERE stream_id IN (SELECT stream_id FROM doomed)
RETURNING name;

-- name: append_events
-- Appends a batch to one partition in one statement and returns its first offset, or no row when the
-- stream or partition is missing, the stream is archived or deleted, or the expectation fails (the caller
-- then asks why). Writers of one partition first queue on a transaction advisory lock, which needs no
-- transaction id: `locked` takes it, and the UPDATE, which gives the transaction its id, runs only on the
-- row `locked` hands it, after the lock. So within a partition transaction ids increase with offsets, and
-- the global log, ordered by transaction id, keeps every partition's order; the counter row keeps offsets
-- dense. The statement's snapshot predates the wait, so the UPDATE finds its counter row changed by the
-- append (or archive) that held the lock, and READ COMMITTED re-checks the newest version: the offset
-- expectation against the real head, and accepts_appends, which archive and soft delete clear after
-- taking every partition's lock (migration 0014; the streams row's marks are checked too, for a change
-- made before this statement began). Each event has its own correlation id, so that group commit can join
-- the appends of callers with different correlation ids.
-- A column whose values are all equal comes as a one-element array and is spread to the batch's length
-- (that of the payloads, $9); storage/postgres/batch_columns.py says why.
WITH locked AS (
    SELECT stream.stream_id, pg_advisory_xact_lock(stream.stream_id * 1024 + $2) AS waited
      FROM (SELECT s.stream_id FROM streams s
             WHERE s.name = $1 AND s.type = 'persistent' AND s.archived_at IS NULL AND s.deleted_at IS NULL
            OFFSET 0) AS stream
), reserved AS (
    UPDATE stream_partitions p
       SET next_offset = p.next_offset + cardinality($9::bytea[]),
           last_appended_at = greatest(clock_timestamp(), p.last_appended_at)
      FROM locked
     WHERE p.stream_id = locked.stream_id AND p.partition = $2 AND p.accepts_appends
       AND ($3::bigint IS NULL OR p.next_offset = $3::bigint)
       AND (NOT $4::boolean OR p.next_offset > 0)
    RETURNING p.stream_id, p.next_offset - cardinality($9::bytea[]) AS first_offset, p.last_appended_at
), inserted AS (
    INSERT INTO events (stream_id, partition, event_offset, event_id, event_type, schema_version,
                        content_type, data, metadata, correlation_id, created_at)
    SELECT reserved.stream_id, $2, reserved.first_offset + batch.ordinal - 1, batch.event_id,
           batch.event_type, batch.schema_version, batch.content_type, batch.data, batch.metadata,
           batch.correlation_id, reserved.last_appended_at
      FROM reserved,
           unnest(
               $5::uuid[],
               CASE WHEN cardinality($6::text[]) = 1
                    THEN array_fill(($6::text[])[1], ARRAY[cardinality($9::bytea[])]) ELSE $6::text[] END,
               CASE WHEN cardinality($7::integer[]) = 1
                    THEN array_fill(($7::integer[])[1], ARRAY[cardinality($9::bytea[])]) ELSE $7::integer[] END,
               CASE WHEN cardinality($8::text[]) = 1
                    THEN array_fill(($8::text[])[1], ARRAY[cardinality($9::bytea[])]) ELSE $8::text[] END,
               $9::bytea[],
               CASE WHEN cardinality($10::jsonb[]) = 1
                    THEN array_fill(($10::jsonb[])[1], ARRAY[cardinality($9::bytea[])]) ELSE $10::jsonb[] END,
               CASE WHEN cardinality($11::text[]) = 1
                    THEN array_fill(($11::text[])[1], ARRAY[cardinality($9::bytea[])]) ELSE $11::text[] END
           ) WITH ORDINALITY AS batch(event_id, event_type, schema_version, content_type, data, metadata,
                                      correlation_id, ordinal)
)
SELECT reserved.first_offset FROM reserved;

-- name: partition_head
SELECT s.type, p.next_offset, s.archived_at, s.deleted_at
  FROM streams s
  LEFT JOIN stream_partitions p ON p.stream_id = s.stream_id AND p.partition = $2
 WHERE s.name = $1;

-- name: existing_event_offsets
SELECT e.event_id, e.partition, e.event_offset
  FROM events e
 WHERE e.stream_id = (SELECT stream_id FROM streams WHERE name = $1)
   AND e.event_id = ANY($2::uuid[]);

-- name: read_forwards
SELECT e.event_offset, e.event_id, e.event_type, e.schema_version, e.content_type, e.data, e.metadata,
       e.correlation_id, e.created_at, e.transaction_id::text::bigint AS transaction_id, e.sequence
  FROM events e
 WHERE e.stream_id = (SELECT stream_id FROM streams WHERE name = $1)
   AND e.partition = $2 AND e.event_offset >= $3
 ORDER BY e.event_offset
 LIMIT $4;

-- name: read_backwards
SELECT e.event_offset, e.event_id, e.event_type, e.schema_version, e.content_type, e.data, e.metadata,
       e.correlation_id, e.created_at, e.transaction_id::text::bigint AS transaction_id, e.sequence
  FROM events e
 WHERE e.stream_id = (SELECT stream_id FROM streams WHERE name = $1)
   AND e.partition = $2 AND e.event_offset <= $3
 ORDER BY e.event_offset DESC
 LIMIT $4;

-- name: offset_at_time
SELECT offset_at_time($1, $2, $3) AS event_offset;

-- name: read_all_forwards
-- The global log: only transactions older than every running one are read, so none is skipped.
-- Columns: read_forwards' then the stream name and partition.
SELECT e.event_offset, e.event_id, e.event_type, e.schema_version, e.content_type, e.data, e.metadata,
       e.correlation_id, e.created_at, e.transaction_id::text::bigint AS transaction_id, e.sequence,
       s.name AS stream_name, e.partition
  FROM events e
  JOIN streams s ON s.stream_id = e.stream_id
 WHERE (e.transaction_id, e.sequence) > ($1::text::xid8, $2::bigint)
   AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
 ORDER BY e.transaction_id, e.sequence
 LIMIT $3;

-- name: enqueue_messages
-- $1 queue name, $2..$7 the batch as arrays (the last one its dedupe keys), $8 correlation id, $9 delay.
-- Returns no row when the queue is missing, archived or deleted; one row with a NULL message_id when
-- every message was deduplicated. The queue's row is read with a lock (KEY SHARE, which the foreign key
-- check takes anyway): archive and soft delete lock it FOR UPDATE, so they wait for enqueues in flight,
-- and an enqueue that waited on them re-reads the row and sees the mark.
-- A batch without dedupe keys is inserted plainly: ON CONFLICT inserts each row speculatively and
-- confirms it with a WAL record of its own, a third more WAL records for nothing when no key can
-- conflict (issue 18). Either way the rows are inserted in the batch's order (message ids ascend).
-- A column whose values are all equal comes as a one-element array and is spread to the batch's length
-- (that of the payloads, $5); storage/postgres/batch_columns.py says why.
WITH queue AS (
    SELECT stream_id FROM streams
     WHERE name = $1 AND type = 'ephemeral' AND archived_at IS NULL AND deleted_at IS NULL
       FOR KEY SHARE
), batch AS (
    SELECT batch.*
      FROM unnest(
               CASE WHEN cardinality($2::text[]) = 1
                    THEN array_fill(($2::text[])[1], ARRAY[cardinality($5::bytea[])]) ELSE $2::text[] END,
               CASE WHEN cardinality($3::integer[]) = 1
                    THEN array_fill(($3::integer[])[1], ARRAY[cardinality($5::bytea[])]) ELSE $3::integer[] END,
               CASE WHEN cardinality($4::text[]) = 1
                    THEN array_fill(($4::text[])[1], ARRAY[cardinality($5::bytea[])]) ELSE $4::text[] END,
               $5::bytea[],
               CASE WHEN cardinality($6::jsonb[]) = 1
                    THEN array_fill(($6::jsonb[])[1], ARRAY[cardinality($5::bytea[])]) ELSE $6::jsonb[] END,
               CASE WHEN cardinality($7::text[]) = 1
                    THEN array_fill(($7::text[])[1], ARRAY[cardinality($5::bytea[])]) ELSE $7::text[] END
           ) WITH ORDINALITY AS batch(event_type, schema_version, content_type, data, metadata, dedupe_key, ordinal)
), keyed AS (
    SELECT EXISTS (SELECT 1 FROM unnest($7::text[]) AS key WHERE key IS NOT NULL) AS any_key
), inserted_unkeyed AS (
    INSERT INTO queue_messages (stream_id, event_type, schema_version, content_type, data, metadata,
                                dedupe_key, correlation_id, enqueued_at, visible_at)
    SELECT queue.stream_id, batch.event_type, batch.schema_version, batch.content_type, batch.data,
           batch.metadata, NULL, $8, clock_timestamp(), clock_timestamp() + $9::interval
      FROM queue, batch
     WHERE NOT (SELECT any_key FROM keyed)
     ORDER BY batch.ordinal
    RETURNING message_id, dedupe_key
), inserted_keyed AS (
    INSERT INTO queue_messages (stream_id, event_type, schema_version, content_type, data, metadata,
                                dedupe_key, correlation_id, enqueued_at, visible_at)
    SELECT queue.stream_id, batch.event_type, batch.schema_version, batch.content_type, batch.data,
           batch.metadata, batch.dedupe_key, $8, clock_timestamp(), clock_timestamp() + $9::interval
      FROM queue, batch
     WHERE (SELECT any_key FROM keyed)
     ORDER BY batch.ordinal
    ON CONFLICT (stream_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
    RETURNING message_id, dedupe_key
), inserted AS (
    SELECT * FROM inserted_unkeyed UNION ALL SELECT * FROM inserted_keyed
)
SELECT queue.stream_id, inserted.message_id, inserted.dedupe_key
  FROM queue LEFT JOIN inserted ON true
 ORDER BY inserted.message_id;

-- name: pending_dedupe_keys
SELECT message_id, dedupe_key
  FROM queue_messages
 WHERE stream_id = $1 AND dedupe_key = ANY($2::text[]);

-- name: dequeue_messages
-- Leases up to $2 visible messages for $3. Messages that used up their attempts are moved to
-- dead_letters instead (their last lease ran out, which is recorded as a failure).
WITH queue AS MATERIALIZED (
    SELECT stream_id, max_attempts FROM streams WHERE name = $1 AND type = 'ephemeral' AND deleted_at IS NULL
), candidates AS (
    -- Walk queue_messages_ready in order and stop after $2 rows, never sorting the queue: the
    -- stream id is a scalar subquery (not a join), and the inner LIMIT is a constant so that a
    -- cached generic plan still sees a small limit (rows are locked lazily, only $2 of them).
    -- The statements below find the candidates by "= ANY (ARRAY(...))", which always probes the
    -- primary key, whatever the planner guesses about how many there are.
    SELECT ready.message_id
      FROM (SELECT m.message_id
              FROM queue_messages m
             WHERE m.stream_id = (SELECT stream_id FROM queue) AND m.visible_at <= clock_timestamp()
             ORDER BY m.visible_at, m.message_id
             LIMIT 1000
               FOR UPDATE SKIP LOCKED) AS ready
     LIMIT $2
), delivered AS (
    UPDATE queue_messages m
       SET attempts = m.attempts + 1,
           visible_at = clock_timestamp() + $3::interval,
           first_delivered_at = coalesce(m.first_delivered_at, clock_timestamp()),
           last_delivered_at = clock_timestamp(),
           failures = CASE WHEN m.attempts > m.last_failed_attempt
                           THEN m.failures || jsonb_build_array(jsonb_build_object(
                                'attempt', m.attempts, 'at', m.visible_at, 'reason', 'visibility timeout expired'))
                           ELSE m.failures END,
           last_failed_attempt = m.attempts
      FROM queue
     WHERE m.message_id = ANY (ARRAY(SELECT message_id FROM candidates)) AND m.attempts < queue.max_attempts
 RETURNING m.message_id, m.event_type, m.schema_version, m.content_type, m.data, m.metadata,
           m.correlation_id, m.enqueued_at, m.attempts, m.visible_at, m.dedupe_key
), exhausted AS (
    DELETE FROM queue_messages m
     USING queue
     WHERE m.message_id = ANY (ARRAY(SELECT message_id FROM candidates)) AND m.attempts >= queue.max_attempts
 RETURNING m.*
), buried AS (
    INSERT INTO dead_letters (stream_id, message_id, event_type, schema_version, content_type, data,
                              metadata, correlation_id, enqueued_at, attempts, first_delivered_at,
                              last_delivered_at, failures)
    SELECT stream_id, message_id, event_type, schema_version, content_type, data, metadata,
           correlation_id, enqueued_at, attempts, first_delivered_at, last_delivered_at,
           CASE WHEN attempts > last_failed_attempt
                THEN failures || jsonb_build_array(jsonb_build_object(
                     'attempt', attempts, 'at', visible_at, 'reason', 'visibility timeout expired'))
                ELSE failures END
      FROM exhausted
    RETURNING 1
)
SELECT (SELECT count(*) FROM buried) AS dead_lettered, delivered.*
  FROM queue LEFT JOIN delivered ON true
 ORDER BY delivered.visible_at, delivered.message_id;

-- name: acknowledge_messages
DELETE FROM queue_messages m
 USING unnest($2::bigint[], $3::integer[]) AS receipt(message_id, attempt)
 WHERE m.stream_id = (SELECT stream_id FROM streams WHERE name = $1)
   AND m.message_id = receipt.message_id AND m.attempts = receipt.attempt
RETURNING m.message_id;

-- name: nack_message
-- Gives the message back after $4, recording $5; on its last attempt it is dead-lettered instead.
WITH queue AS (
    SELECT stream_id, max_attempts FROM streams WHERE name = $1
), target AS (
    SELECT m.message_id
      FROM queue_messages m, queue
     WHERE m.stream_id = queue.stream_id AND m.message_id = $2 AND m.attempts = $3
       FOR UPDATE OF m
), retried AS (
    UPDATE queue_messages m
       SET visible_at = clock_timestamp() + $4::interval,
           failures = m.failures || jsonb_build_array(jsonb_build_object(
                      'attempt', m.attempts, 'at', clock_timestamp(), 'reason', $5::text)),
           last_failed_attempt = m.attempts
      FROM target, queue
     WHERE m.message_id = target.message_id AND m.attempts < queue.max_attempts
 RETURNING m.message_id
), exhausted AS (
    DELETE FROM queue_messages m
     USING target, queue
     WHERE m.message_id = target.message_id AND m.attempts >= queue.max_attempts
 RETURNING m.*
), buried AS (
    INSERT INTO dead_letters (stream_id, message_id, event_type, schema_version, content_type, data,
                              metadata, correlation_id, enqueued_at, attempts, first_delivered_at,
                              last_delivered_at, failures)
    SELECT stream_id, message_id, event_type, schema_version, content_type, data, metadata,
           correlation_id, enqueued_at, attempts, first_delivered_at, last_delivered_at,
           failures || jsonb_build_array(jsonb_build_object(
               'attempt', attempts, 'at', clock_timestamp(), 'reason', $5::text))
      FROM exhausted
    RETURNING 1
)
SELECT (SELECT count(*) FROM retried) + (SELECT count(*) FROM buried) AS changed,
       (SELECT count(*) FROM buried) AS buried;

-- name: extend_lease
-- The lease moves only while its new end stays within $5 of now (repeated extensions could otherwise
-- push it past year 9999, losing the message): no row means a stale receipt, extended = false the limit.
WITH leased AS (
    SELECT m.message_id, greatest(m.visible_at, clock_timestamp()) + $4::interval AS new_end
      FROM queue_messages m
     WHERE m.stream_id = (SELECT stream_id FROM streams WHERE name = $1)
       AND m.message_id = $2 AND m.attempts = $3
       FOR UPDATE
), extended AS (
    UPDATE queue_messages m
       SET visible_at = l.new_end
      FROM leased l
     WHERE m.message_id = l.message_id AND l.new_end <= clock_timestamp() + $5::interval
    RETURNING m.message_id
)
SELECT l.message_id, EXISTS (SELECT 1 FROM extended) AS extended FROM leased l;

-- name: list_dead_letters
SELECT d.dead_letter_id, d.message_id, d.event_type, d.schema_version, d.content_type, d.data,
       d.metadata, d.correlation_id, d.enqueued_at, d.attempts, d.first_delivered_at,
       d.last_delivered_at, d.failures, d.dead_lettered_at
  FROM dead_letters d
 WHERE d.stream_id = (SELECT stream_id FROM streams WHERE name = $1)
 ORDER BY d.dead_letter_id
 LIMIT $2;

-- name: notify_appended
SELECT pg_notify($1, $2);

-- name: queue_depth
-- Messages of queue $1: all of them, and those leased (delivered, not given back, lease running).
SELECT count(*) AS total,
       count(*) FILTER (WHERE m.attempts > m.last_failed_attempt AND m.visible_at > clock_timestamp()) AS in_flight
  FROM queue_messages m
 WHERE m.stream_id = (SELECT stream_id FROM streams WHERE name = $1);

-- name: redrive_dead_letters
-- Moves dead letters of queue $1 (those in $2, or all when $2 is NULL) back onto the queue as new
-- messages, visible at once, with their delivery history; returns the new message ids.
WITH queue AS (
    SELECT stream_id FROM streams WHERE name = $1
), moved AS (
    DELETE FROM dead_letters d
     USING queue
     WHERE d.stream_id = queue.stream_id AND ($2::bigint[] IS NULL OR d.dead_letter_id = ANY ($2::bigint[]))
 RETURNING d.*
)
INSERT INTO queue_messages (stream_id, event_type, schema_version, content_type, data, metadata, correlation_id,
                            enqueued_at, visible_at, failures)
SELECT moved.stream_id, moved.event_type, moved.schema_version, moved.content_type, moved.data,
       moved.metadata || jsonb_build_object('redriven_from', jsonb_build_object(
           'dead_letter_id', moved.dead_letter_id, 'message_id', moved.message_id, 'attempts', moved.attempts)),
       moved.correlation_id, moved.enqueued_at, clock_timestamp(), moved.failures
  FROM moved
 ORDER BY moved.dead_letter_id
RETURNING message_id;

-- name: purge_dead_letters
-- Deletes dead letters of queue $1 (those in $2, or all when $2 is NULL); returns how many.
WITH purged AS (
    DELETE FROM dead_letters d
     WHERE d.stream_id = (SELECT stream_id FROM streams WHERE name = $1)
       AND ($2::bigint[] IS NULL OR d.dead_letter_id = ANY ($2::bigint[]))
 RETURNING 1
)
SELECT count(*) FROM purged;
