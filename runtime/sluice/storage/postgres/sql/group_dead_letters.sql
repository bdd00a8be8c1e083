-- Named queries of consumer-group dead letters on PostgreSQL (storage/postgres/group_dead_letters.py).
-- Tables: group_dead_letters (migration 0009), consumer_groups, streams. Every statement finds the
-- group by (stream name, group id) with a scalar subquery, so the plan probes the unique keys.

-- name: bury_group_dead_letter
-- $1 stream, $2 group, $3 partition, $4 offset, $5 event id, $6 type, $7 schema version,
-- $8 content type, $9 payload, $10 metadata (JSON text), $11 correlation id, $12 appended at,
-- $13 error, $14 attempts, $15 first failure, $16 last failure, $17 dead-letter stream, $18 consumer.
INSERT INTO group_dead_letters AS d (
    group_key, source_partition, source_offset, event_id, event_type, schema_version, content_type, payload,
    metadata, correlation_id, appended_at, error, attempts, first_failure_at, last_failure_at,
    dead_letter_stream, consumer_id)
VALUES (
    (SELECT g.group_key FROM consumer_groups g
      WHERE g.stream_id = (SELECT s.stream_id FROM streams s WHERE s.name = $1) AND g.name = $2),
    $3, $4, $5, $6, $7, $8, $9, $10::text::jsonb, $11, $12, $13, $14, $15, $16, $17, $18)
ON CONFLICT (group_key, source_partition, source_offset) DO UPDATE
   SET error = excluded.error,
       attempts = d.attempts + excluded.attempts,
       last_failure_at = excluded.last_failure_at,
       dead_lettered_at = clock_timestamp(),
       dead_letter_stream = excluded.dead_letter_stream,
       consumer_id = excluded.consumer_id,
       redrive_requested_at = NULL,
       claimed_by = NULL,
       claim_token = NULL,
       claimed_until = NULL
RETURNING d.dead_letter_id, d.source_partition, d.source_offset, d.event_id, d.event_type, d.schema_version,
          d.content_type, d.payload, d.metadata::text AS metadata, d.correlation_id, d.appended_at, d.error,
          d.attempts, d.first_failure_at, d.last_failure_at, d.dead_lettered_at, d.dead_letter_stream,
          d.consumer_id, d.redrives, d.redrive_requested_at;

-- name: list_group_dead_letters
-- $1 stream, $2 group, $3 after this id, $4 limit: oldest first.
SELECT d.dead_letter_id, d.source_partition, d.source_offset, d.event_id, d.event_type, d.schema_version,
       d.content_type, d.payload, d.metadata::text AS metadata, d.correlation_id, d.appended_at, d.error,
       d.attempts, d.first_failure_at, d.last_failure_at, d.dead_lettered_at, d.dead_letter_stream,
       d.consumer_id, d.redrives, d.redrive_requested_at
  FROM group_dead_letters d
 WHERE d.group_key = (SELECT g.group_key FROM consumer_groups g
                       WHERE g.stream_id = (SELECT s.stream_id FROM streams s WHERE s.name = $1) AND g.name = $2)
   AND d.dead_letter_id > $3
 ORDER BY d.dead_letter_id
 LIMIT $4;

-- name: get_group_dead_letter
-- $1 stream, $2 group, $3 dead letter id.
SELECT d.dead_letter_id, d.source_partition, d.source_offset, d.event_id, d.event_type, d.schema_version,
       d.content_type, d.payload, d.metadata::text AS metadata, d.correlation_id, d.appended_at, d.error,
       d.attempts, d.first_failure_at, d.last_failure_at, d.dead_lettered_at, d.dead_letter_stream,
       d.consumer_id, d.redrives, d.redrive_requested_at
  FROM group_dead_letters d
 WHERE d.dead_letter_id = $3
   AND d.group_key = (SELECT g.group_key FROM consumer_groups g
                       WHERE g.stream_id = (SELECT s.stream_id FROM streams s WHERE s.name = $1) AND g.name = $2);

-- name: redrive_all_group_dead_letters
-- $1 stream, $2 group. Dead letters already waiting for a redrive are left as they are.
UPDATE group_dead_letters
   SET redrive_requested_at = clock_timestamp(), redrives = redrives + 1
 WHERE group_key = (SELECT g.group_key FROM consumer_groups g
                     WHERE g.stream_id = (SELECT s.stream_id FROM streams s WHERE s.name = $1) AND g.name = $2)
   AND redrive_requested_at IS NULL
RETURNING dead_letter_id;

-- name: redrive_selected_group_dead_letters
-- $1 stream, $2 group, $3 ids.
UPDATE group_dead_letters
   SET redrive_requested_at = clock_timestamp(), redrives = redrives + 1
 WHERE dead_letter_id = ANY ($3::bigint[])
   AND group_key = (SELECT g.group_key FROM consumer_groups g
                     WHERE g.stream_id = (SELECT s.stream_id FROM streams s WHERE s.name = $1) AND g.name = $2)
   AND redrive_requested_at IS NULL
RETURNING dead_letter_id;

-- name: purge_all_group_dead_letters
-- $1 stream, $2 group.
DELETE FROM group_dead_letters
 WHERE group_key = (SELECT g.group_key FROM consumer_groups g
                     WHERE g.stream_id = (SELECT s.stream_id FROM streams s WHERE s.name = $1) AND g.name = $2)
RETURNING dead_letter_id;

-- name: purge_selected_group_dead_letters
-- $1 stream, $2 group, $3 ids.
DELETE FROM group_dead_letters
 WHERE dead_letter_id = ANY ($3::bigint[])
   AND group_key = (SELECT g.group_key FROM consumer_groups g
                     WHERE g.stream_id = (SELECT s.stream_id FROM streams s WHERE s.name = $1) AND g.name = $2)
RETURNING dead_letter_id;

-- name: claim_group_redrive
-- $1 stream, $2 group, $3 consumer id, $4 claim token, $5 lease. The oldest redrive nobody holds
-- (or whose holder's lease ran out); SKIP LOCKED so members never wait for each other.
UPDATE group_dead_letters d
   SET claimed_by = $3, claim_token = $4, claimed_until = clock_timestamp() + $5::interval
 WHERE d.dead_letter_id = (
       SELECT c.dead_letter_id FROM group_dead_letters c
        WHERE c.group_key = (SELECT g.group_key FROM consumer_groups g
                              WHERE g.stream_id = (SELECT s.stream_id FROM streams s WHERE s.name = $1)
                                AND g.name = $2)
          AND c.redrive_requested_at IS NOT NULL
          AND (c.claimed_until IS NULL OR c.claimed_until < clock_timestamp())
        ORDER BY c.dead_letter_id
        LIMIT 1
          FOR UPDATE SKIP LOCKED)
RETURNING d.dead_letter_id, d.source_partition, d.source_offset, d.event_id, d.event_type, d.schema_version,
          d.content_type, d.payload, d.metadata::text AS metadata, d.correlation_id, d.appended_at, d.error,
          d.attempts, d.first_failure_at, d.last_failure_at, d.dead_lettered_at, d.dead_letter_stream,
          d.consumer_id, d.redrives, d.redrive_requested_at;

-- name: complete_group_redrive
-- $1 dead letter id, $2 claim token: delivered, so the dead letter is done.
DELETE FROM group_dead_letters WHERE dead_letter_id = $1 AND claim_token = $2 RETURNING dead_letter_id;

-- name: fail_group_redrive
-- $1 dead letter id, $2 claim token, $3 error, $4 attempts, $5 last failure, $6 consumer id.
UPDATE group_dead_letters
   SET error = $3, attempts = attempts + $4, last_failure_at = $5, consumer_id = $6,
       dead_lettered_at = clock_timestamp(), redrive_requested_at = NULL,
       claimed_by = NULL, claim_token = NULL, claimed_until = NULL
 WHERE dead_letter_id = $1 AND claim_token = $2
RETURNING dead_letter_id;

-- name: release_group_redrive
-- $1 dead letter id, $2 claim token: not delivered (the worker stops); another member may take it.
UPDATE group_dead_letters
   SET claimed_by = NULL, claim_token = NULL, claimed_until = NULL
 WHERE dead_letter_id = $1 AND claim_token = $2
RETURNING dead_letter_id;
