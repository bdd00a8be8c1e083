-- Named queries of same-database projections in the store's schema: their checkpoints
-- (sluice.storage.postgres.projection_checkpoints) and the reads of their sources
-- (sluice.storage.postgres.projection_sources). The statements of declarative SQL targets, which write the
-- user's read model, are the service's own: sluice/services/projections/sql/sql_target.sql.

-- name: projection_register
-- $1 name, $2 sources, $3 reset generation of a new projection, $4/$5 its start position (or NULL).
-- Creates the projection and its first checkpoint, or updates the sources of an existing one.
WITH registered AS (
    INSERT INTO projections (name, sources, reset_generation)
    VALUES ($1, $2::text[], $3)
    ON CONFLICT (name) DO UPDATE SET sources = EXCLUDED.sources
    RETURNING name, active_version, (xmax = 0) AS created
)
INSERT INTO projection_checkpoints (name, version, position_transaction, position_sequence)
SELECT name, active_version, $4::bigint, $5::bigint FROM registered WHERE created
ON CONFLICT (name, version) DO NOTHING;

-- name: projection_state
SELECT name, sources, active_version, reset_generation, rebuild_version, rebuild_blue_green, rebuild_done,
       rebuild_total, rebuild_started_at, rebuild_finished_at, rebuild_requested_at IS NOT NULL AS rebuild_requested
  FROM projections
 WHERE name = $1;

-- name: projection_checkpoints
SELECT c.version, c.position_transaction, c.position_sequence, c.events_applied,
       (SELECT count(*) FROM projection_dead_letters d WHERE d.name = c.name AND d.version = c.version)
           AS events_dead_lettered
  FROM projection_checkpoints c
 WHERE c.name = $1
 ORDER BY c.version;

-- name: projection_advance
-- $1 name, $2 version, $3/$4 the position the batch was read after (NULL/NULL: the start), $5/$6 the
-- last event of the batch, $7 its event count. Compare-and-set: no row when the checkpoint moved.
-- A running rebuild of this version counts the batch in its progress, in the same statement.
WITH advanced AS (
    UPDATE projection_checkpoints
       SET position_transaction = $5, position_sequence = $6, events_applied = events_applied + $7,
           updated_at = clock_timestamp()
     WHERE name = $1 AND version = $2
       AND position_transaction IS NOT DISTINCT FROM $3::bigint
       AND position_sequence IS NOT DISTINCT FROM $4::bigint
    RETURNING name, version
), progressed AS (
    UPDATE projections p
       SET rebuild_done = p.rebuild_done + $7
      FROM advanced
     WHERE p.name = advanced.name AND p.rebuild_version = advanced.version AND p.rebuild_finished_at IS NULL
    RETURNING 1
)
SELECT count(*) FROM advanced;

-- name: projection_lock
-- Serializes changes of a projection's versions (rebuild start and finish) with each other.
SELECT active_version, rebuild_version, rebuild_finished_at FROM projections WHERE name = $1 FOR UPDATE;

-- name: projection_start_rebuild
-- $1 name, $2 reset generation, $3 version to build, $4 blue/green, $5 events to replay.
UPDATE projections
   SET reset_generation = greatest(reset_generation, $2), rebuild_version = $3, rebuild_blue_green = $4,
       rebuild_done = 0, rebuild_total = $5, rebuild_started_at = clock_timestamp(), rebuild_finished_at = NULL,
       rebuild_requested_at = NULL
 WHERE name = $1;

-- name: projection_reset_checkpoint
-- $1 name, $2 version: back to the start (created if missing).
INSERT INTO projection_checkpoints (name, version, position_transaction, position_sequence)
VALUES ($1, $2, NULL, NULL)
ON CONFLICT (name, version) DO UPDATE
   SET position_transaction = NULL, position_sequence = NULL, events_applied = 0, updated_at = clock_timestamp();

-- name: projection_finish_rebuild
-- $1 name, $2 the rebuilt version, which becomes the active one.
UPDATE projections
   SET active_version = $2, rebuild_finished_at = clock_timestamp()
 WHERE name = $1 AND rebuild_version = $2 AND rebuild_finished_at IS NULL;

-- name: projection_drop_other_checkpoints
DELETE FROM projection_checkpoints WHERE name = $1 AND version <> $2;

-- name: projection_drop_other_dead_letters
DELETE FROM projection_dead_letters WHERE name = $1 AND version <> $2;

-- name: projection_clear_dead_letters
-- $1 name, $2 version: a rebuild of that version starts again and records its own.
DELETE FROM projection_dead_letters WHERE name = $1 AND version = $2;

-- name: projection_record_dead_letters
-- $1 name, then one array per field. One event that several upserts cannot apply: one row, every reason.
INSERT INTO projection_dead_letters AS d (name, version, position_transaction, position_sequence, stream_name,
                                          partition, event_offset, event_id, event_type, reason)
SELECT $1, * FROM unnest($2::integer[], $3::bigint[], $4::bigint[], $5::text[], $6::integer[], $7::bigint[],
                         $8::uuid[], $9::text[], $10::text[])
ON CONFLICT (name, version, position_transaction, position_sequence)
    DO UPDATE SET reason = d.reason || '; ' || EXCLUDED.reason;

-- name: projection_dead_letters
-- $1 name, $2 limit: the active version's, oldest event first.
SELECT d.version, d.position_transaction, d.position_sequence, d.stream_name, d.partition, d.event_offset,
       d.event_id, d.event_type, d.reason, d.dead_lettered_at
  FROM projection_dead_letters d
  JOIN projections p ON p.name = d.name AND p.active_version = d.version
 WHERE d.name = $1
 ORDER BY d.position_transaction, d.position_sequence
 LIMIT $2;

-- name: projection_request_rebuild
UPDATE projections SET rebuild_requested_at = clock_timestamp() WHERE name = $1 RETURNING name;

-- name: projection_rebuild_requested
SELECT rebuild_requested_at IS NOT NULL FROM projections WHERE name = $1;

-- name: projection_record_generation
UPDATE projections SET reset_generation = greatest(reset_generation, $2) WHERE name = $1;

-- name: projection_read_sources
-- The global log restricted to the sources ($4), after ($1, $2), below the oldest running
-- transaction (see read_all_forwards): no event that commits late is skipped.
SELECT e.event_offset, e.event_id, e.event_type, e.schema_version, e.content_type, e.data, e.metadata,
       e.correlation_id, e.created_at, e.transaction_id::text::bigint AS transaction_id, e.sequence,
       s.name AS stream_name, e.partition
  FROM events e
  JOIN streams s ON s.stream_id = e.stream_id
 WHERE e.stream_id = ANY (ARRAY(SELECT stream_id FROM streams WHERE name = ANY ($4::text[])))
   AND (e.transaction_id, e.sequence) > ($1::text::xid8, $2::bigint)
   AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
 ORDER BY e.transaction_id, e.sequence
 LIMIT $3;

-- name: projection_sources_behind
-- Events of the sources ($3) after ($1, $2), and the time of the first of them (NULL: none):
-- the lag. Counts up to the newest committed event, including those above the reading horizon.
SELECT count(*) AS events, min(e.created_at) AS oldest
  FROM events e
 WHERE e.stream_id = ANY (ARRAY(SELECT stream_id FROM streams WHERE name = ANY ($3::text[])))
   AND (e.transaction_id, e.sequence) > ($1::text::xid8, $2::bigint);

-- name: projection_sources_head
-- The last readable event of the sources: where a projection that starts at the end starts.
SELECT e.transaction_id::text::bigint AS transaction_id, e.sequence
  FROM events e
 WHERE e.stream_id = ANY (ARRAY(SELECT stream_id FROM streams WHERE name = ANY ($1::text[])))
   AND e.transaction_id < pg_snapshot_xmin(pg_current_snapshot())
 ORDER BY e.transaction_id DESC, e.sequence DESC
 LIMIT 1;
