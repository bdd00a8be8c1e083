-- Named queries of retention (sluice.services.retention, storage/postgres/retention.py). Same rules as
-- queries.sql: bound parameters only, written for good generic plans.

-- name: retention_delete_batch
-- One bounded batch of partition $2 of stream $1, in one statement (its own transaction): the events
-- from the partition's low watermark up to (excluding) the least of $3, the watermark plus $4 and the
-- head, then the watermark moved there. The watermark's UPDATE waits for the whole DELETE (its WHERE
-- counts the deleted rows), so the partition's counter row, which appends update too, is held only from
-- there to the commit. The commit does not wait for its WAL to reach the disk (set_config in `start`,
-- local to this transaction): a crash can only lose the deletion of events that were due to go, and the next
-- run deletes them again. No row when the stream or the partition is missing; else the number and bytes
-- of the deleted events and the new watermark (unchanged when nothing was due). The watermark never
-- moves backwards nor past the head.
WITH start AS (
    SELECT p.stream_id, p.first_offset, least($3::bigint, p.first_offset + $4::bigint, p.next_offset) AS bound,
           set_config('synchronous_commit', 'off', true) AS commit_mode
      FROM stream_partitions p
     WHERE p.stream_id = (SELECT stream_id FROM streams WHERE name = $1 AND type = 'persistent')
       AND p.partition = $2
), deleted AS (
    DELETE FROM events e
     USING start
     WHERE e.stream_id = start.stream_id AND e.partition = $2
       AND e.event_offset >= start.first_offset AND e.event_offset < start.bound
    RETURNING octet_length(e.data) AS bytes
), totals AS (
    SELECT count(*) AS events, coalesce(sum(deleted.bytes), 0) AS bytes FROM deleted
), moved AS (
    UPDATE stream_partitions p
       SET first_offset = greatest(p.first_offset, least(start.bound, p.next_offset))
      FROM start
     WHERE p.stream_id = start.stream_id AND p.partition = $2 AND start.bound > start.first_offset
       AND (SELECT totals.events FROM totals) >= 0
    RETURNING p.first_offset
)
SELECT totals.events, totals.bytes, coalesce((SELECT moved.first_offset FROM moved), start.first_offset) AS first_offset
  FROM start, totals;

-- name: retention_byte_cutoffs
-- Per partition, the offset below which events exceed the stream's byte budget $2: events are
-- counted newest first across the partitions (in storage order), and every event that does not
-- fit goes. Timestamps and (transaction, sequence) never decrease within a partition, so what goes
-- is a prefix of each partition.
SELECT ranked.partition, max(ranked.event_offset) + 1 AS cutoff
  FROM (SELECT e.partition, e.event_offset,
               sum(octet_length(e.data)) OVER (
                   ORDER BY e.created_at DESC, e.transaction_id DESC, e.sequence DESC
                   ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS newer_bytes
          FROM events e
         WHERE e.stream_id = (SELECT stream_id FROM streams WHERE name = $1)) AS ranked
 WHERE ranked.newer_bytes > $2
 GROUP BY ranked.partition;

-- name: retention_group_positions
-- Every consumer group of stream $1 with its committed offset per partition and when it was last
-- active: the latest of its creation, its last commit and its members' last heartbeat.
SELECT g.name AS group_id, gp.partition, gp.committed_offset,
       greatest(g.created_at,
                (SELECT max(c.committed_at) FROM consumer_group_partitions c WHERE c.group_key = g.group_key),
                (SELECT max(m.last_heartbeat_at) FROM consumer_group_members m WHERE m.group_key = g.group_key)
       ) AS last_active_at
  FROM consumer_groups g
  JOIN consumer_group_partitions gp ON gp.group_key = g.group_key
 WHERE g.stream_id = (SELECT stream_id FROM streams WHERE name = $1)
 ORDER BY g.name, gp.partition;

-- name: retention_list_policies
SELECT pattern, max_age, max_event_count, max_bytes, window_start, window_end, cleanup_interval, enforce,
       last_applied_at
  FROM retention_policies
 ORDER BY pattern;

-- name: retention_save_policy
INSERT INTO retention_policies (pattern, max_age, max_event_count, max_bytes, window_start, window_end,
                                cleanup_interval, enforce)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (pattern) DO UPDATE
   SET max_age = excluded.max_age, max_event_count = excluded.max_event_count, max_bytes = excluded.max_bytes,
       window_start = excluded.window_start, window_end = excluded.window_end,
       cleanup_interval = excluded.cleanup_interval, enforce = excluded.enforce, updated_at = clock_timestamp();

-- name: retention_delete_policy
DELETE FROM retention_policies WHERE pattern = $1 RETURNING pattern;

-- name: retention_claim_policy_run
-- Claims this cleanup interval's run of policy $1 at time $2: one worker (pod) wins it.
UPDATE retention_policies
   SET last_applied_at = $2
 WHERE pattern = $1 AND (last_applied_at IS NULL OR last_applied_at + cleanup_interval <= $2)
RETURNING pattern;
