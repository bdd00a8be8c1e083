-- Named queries for consumer groups (see queries.sql for the conventions). The heartbeat runs in
-- one transaction: lock_group, then the reads, then the writes the rebalance plan asks for.

-- name: create_group
INSERT INTO consumer_groups (stream_id, name)
SELECT stream_id, $2 FROM streams WHERE name = $1 AND type = 'persistent'
ON CONFLICT (stream_id, name) DO NOTHING;

-- name: lock_group
-- Serializes heartbeats, resets and deletes of one group (heartbeats are seconds apart). NO KEY
-- UPDATE, not UPDATE: inserting a claim (which references the group) must not wait for a heartbeat
-- that itself waits for that claimer's locks.
SELECT g.group_key, g.generation, g.created_at, s.stream_id, s.partitions, s.delivery, clock_timestamp() AS now
  FROM consumer_groups g
  JOIN streams s ON s.stream_id = g.stream_id
 WHERE s.name = $1 AND g.name = $2
   FOR NO KEY UPDATE OF g;

-- name: group_members
SELECT consumer_id, instance_id, joined_at, last_heartbeat_at, last_poll_at, session_timeout, max_poll_interval,
       duplicates_fenced, last_duplicate_at
  FROM consumer_group_members
 WHERE group_key = $1
 ORDER BY consumer_id;

-- name: group_partitions
SELECT partition, committed_offset, owner, epoch, pending_owner
  FROM consumer_group_partitions
 WHERE group_key = $1
 ORDER BY partition;

-- name: partition_bounds
-- Per partition of a stream: the first stored offset and the head.
SELECT p.partition,
       coalesce((SELECT min(e.event_offset) FROM events e
                  WHERE e.stream_id = p.stream_id AND e.partition = p.partition), p.next_offset) AS first_offset,
       p.next_offset AS head
  FROM stream_partitions p
 WHERE p.stream_id = $1
 ORDER BY p.partition;

-- name: offset_at_time_by_id
SELECT offset_at_time(s.name, $2, $3) FROM streams s WHERE s.stream_id = $1;

-- name: add_group_partitions
INSERT INTO consumer_group_partitions (group_key, partition, committed_offset, claimed_offset)
SELECT $1, partition, committed_offset, committed_offset FROM unnest($2::integer[], $3::bigint[]) AS new(partition, committed_offset)
ON CONFLICT (group_key, partition) DO NOTHING;

-- name: remove_group_members
DELETE FROM consumer_group_members WHERE group_key = $1 AND consumer_id = ANY($2::text[]);

-- name: upsert_group_member
INSERT INTO consumer_group_members (group_key, consumer_id, instance_id, joined_at, last_heartbeat_at, last_poll_at,
                                    session_timeout, max_poll_interval)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (group_key, consumer_id) DO UPDATE
   SET instance_id = EXCLUDED.instance_id,
       last_heartbeat_at = EXCLUDED.last_heartbeat_at,
       last_poll_at = EXCLUDED.last_poll_at,
       session_timeout = EXCLUDED.session_timeout,
       max_poll_interval = EXCLUDED.max_poll_interval;

-- name: record_duplicate_group_member
-- A heartbeat from a process whose consumer id a newer process took over: counted, then refused.
UPDATE consumer_group_members
   SET duplicates_fenced = duplicates_fenced + 1, last_duplicate_at = clock_timestamp()
 WHERE group_key = $1 AND consumer_id = $2;

-- name: update_group_partitions
-- Returns each partition's committed offset as of the change: a commit under the old epoch that
-- landed after the heartbeat read the partitions is included (the UPDATE waited for it), and none can
-- land after it, so a new owner starts exactly where the old one stopped.
UPDATE consumer_group_partitions gp
   SET owner = changed.owner, epoch = changed.epoch, pending_owner = changed.pending_owner
  FROM unnest($2::integer[], $3::text[], $4::bigint[], $5::text[]) AS changed(partition, owner, epoch, pending_owner)
 WHERE gp.group_key = $1 AND gp.partition = changed.partition
RETURNING gp.partition, gp.committed_offset;

-- name: set_group_generation
UPDATE consumer_groups SET generation = $2 WHERE group_key = $1;

-- name: commit_group_offsets
-- Applies each commit only while (owner, epoch) still match and the offset is within the head.
-- Returns the partitions committed; the caller diagnoses the rest.
UPDATE consumer_group_partitions gp
   SET committed_offset = wanted.offset_value, committed_at = clock_timestamp()
  FROM unnest($4::integer[], $5::bigint[], $6::bigint[]) AS wanted(partition, epoch, offset_value),
       stream_partitions sp
 WHERE gp.group_key = (SELECT g.group_key FROM consumer_groups g
                        WHERE g.stream_id = (SELECT stream_id FROM streams WHERE name = $1) AND g.name = $2)
   AND gp.partition = wanted.partition AND gp.owner = $3 AND gp.epoch = wanted.epoch
   AND sp.stream_id = (SELECT stream_id FROM streams WHERE name = $1) AND sp.partition = wanted.partition
   AND wanted.offset_value <= sp.next_offset
RETURNING gp.partition;

-- name: group_partition_owners
SELECT gp.partition, gp.owner, gp.epoch, sp.next_offset AS head
  FROM consumer_group_partitions gp
  JOIN consumer_groups g ON g.group_key = gp.group_key
  JOIN stream_partitions sp ON sp.stream_id = g.stream_id AND sp.partition = gp.partition
 WHERE g.stream_id = (SELECT stream_id FROM streams WHERE name = $1) AND g.name = $2;

-- name: describe_group_partitions
-- Lag in O(partitions): head minus committed, and the timestamp of the first uncommitted event
-- (one primary-key lookup per partition), never a count of rows.
SELECT gp.partition, gp.committed_offset, sp.next_offset AS head, gp.owner, gp.epoch,
       (SELECT e.created_at FROM events e
         WHERE e.stream_id = g.stream_id AND e.partition = gp.partition
           AND e.event_offset = gp.committed_offset) AS oldest_unconsumed_at,
       clock_timestamp() AS observed_at
  FROM consumer_groups g
  JOIN consumer_group_partitions gp ON gp.group_key = g.group_key
  JOIN stream_partitions sp ON sp.stream_id = g.stream_id AND sp.partition = gp.partition
 WHERE g.stream_id = (SELECT stream_id FROM streams WHERE name = $1) AND g.name = $2
 ORDER BY gp.partition;

-- name: describe_group
SELECT g.group_key, g.generation, g.created_at, clock_timestamp() AS now
  FROM consumer_groups g
 WHERE g.stream_id = (SELECT stream_id FROM streams WHERE name = $1) AND g.name = $2;

-- name: list_groups
SELECT s.name AS stream_name, g.name AS group_id,
       (SELECT count(*) FROM consumer_group_members m WHERE m.group_key = g.group_key) AS members,
       (SELECT coalesce(sum(greatest(sp.next_offset - gp.committed_offset, 0)), 0)
          FROM consumer_group_partitions gp
          JOIN stream_partitions sp ON sp.stream_id = g.stream_id AND sp.partition = gp.partition
         WHERE gp.group_key = g.group_key) AS lag_events
  FROM consumer_groups g
  JOIN streams s ON s.stream_id = g.stream_id
 ORDER BY s.name, g.name;

-- name: reset_group_offsets
-- Moves every partition's committed offset and bumps every epoch, fencing current members.
UPDATE consumer_group_partitions gp
   SET committed_offset = target.committed_offset, claimed_offset = target.committed_offset,
       epoch = gp.epoch + 1, committed_at = clock_timestamp()
  FROM unnest($2::integer[], $3::bigint[]) AS target(partition, committed_offset)
 WHERE gp.group_key = $1 AND gp.partition = target.partition;

-- name: delete_group_claims
-- With a reset: the claims of a QUEUE group are dropped, so their holders' acknowledgements are refused.
DELETE FROM consumer_group_claims WHERE group_key = $1;

-- name: extend_claim_leases
-- A QUEUE member's heartbeat: the claims this instance holds stay leased for another session timeout.
-- Claim rows are locked in claim id order, as acknowledge_group_claims does (no deadlock).
UPDATE consumer_group_claims c
   SET expires_at = clock_timestamp() + $4::interval
  FROM (SELECT claim_id FROM consumer_group_claims
         WHERE group_key = $1 AND owner = $2 AND instance_id = $3 AND NOT done
         ORDER BY claim_id
           FOR UPDATE) AS held
 WHERE c.claim_id = held.claim_id;

-- name: expire_claims
-- Claims of members that left, expired or got stuck ($2), and of an earlier process of the caller
-- ($3 with another instance id than $4), can be taken over at once.
UPDATE consumer_group_claims c
   SET expires_at = '-infinity'
  FROM (SELECT claim_id FROM consumer_group_claims
         WHERE group_key = $1 AND NOT done
           AND (owner = ANY($2::text[]) OR (owner = $3 AND instance_id <> $4))
         ORDER BY claim_id
           FOR UPDATE) AS freed
 WHERE c.claim_id = freed.claim_id;

-- name: claim_group_events
SELECT claim_id, partition, from_offset, to_offset, attempt, epoch FROM claim_group_events($1, $2, $3, $4, $5, $6, $7);

-- name: acknowledge_group_claims
SELECT acknowledge_group_claims($1, $2, $3, $4, $5) AS claim_id;

-- name: delete_group
DELETE FROM consumer_groups WHERE group_key = $1;

-- name: increase_partitions
-- New partitions of an archived or soft-deleted stream take no appends either (accepts_appends).
WITH updated AS (
    UPDATE streams SET partitions = $2 WHERE name = $1 AND partitions <= $2
    RETURNING stream_id, partitions, archived_at IS NULL AND deleted_at IS NULL AS open
)
INSERT INTO stream_partitions (stream_id, partition, accepts_appends)
SELECT updated.stream_id, generate_series(0, updated.partitions - 1), updated.open FROM updated
ON CONFLICT (stream_id, partition) DO NOTHING;
