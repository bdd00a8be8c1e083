-- Named queries of replays (storage/postgres/replays.py). Each starts with "-- name: <name>".
-- Every update of a run is conditional on (name, run_epoch, state = 'running'): a superseded runner
-- matches no row and stops. Positions only move forwards (greatest), within [start, end].

-- name: get_replay
SELECT name, definition::text AS definition, state, rate_limit, batch_size, run_epoch, target_prepared,
       cancel_requested, error, events_per_second, created_at, started_at, updated_at, finished_at
  FROM replays
 WHERE name = $1;

-- name: get_replay_partitions
SELECT partition, start_offset, next_offset, end_offset
  FROM replay_partitions
 WHERE replay_name = $1
 ORDER BY partition;

-- name: list_replay_names
SELECT name FROM replays ORDER BY name;

-- name: create_replay
WITH created AS (
    INSERT INTO replays (name, definition, rate_limit, batch_size)
    VALUES ($1, $2::jsonb, $3, $4)
    ON CONFLICT (name) DO NOTHING
    RETURNING name
), partition_rows AS (
    INSERT INTO replay_partitions (replay_name, partition, start_offset, next_offset, end_offset)
    SELECT created.name, planned.partition, planned.start_offset, planned.start_offset, planned.end_offset
      FROM created, unnest($5::integer[], $6::bigint[], $7::bigint[]) AS planned(partition, start_offset, end_offset)
)
SELECT name FROM created;

-- name: begin_replay_run
UPDATE replays
   SET run_epoch = run_epoch + 1, state = 'running', rate_limit = $2, batch_size = $3,
       started_at = coalesce(started_at, clock_timestamp()), updated_at = clock_timestamp(),
       finished_at = NULL, error = NULL, events_per_second = NULL
 WHERE name = $1 AND state IN ('pending', 'running', 'failed')
RETURNING run_epoch;

-- name: advance_replay
WITH run AS (
    UPDATE replays
       SET updated_at = clock_timestamp(), events_per_second = $3
     WHERE name = $1 AND run_epoch = $2 AND state = 'running'
    RETURNING name, cancel_requested
), moved AS (
    UPDATE replay_partitions p
       SET next_offset = least(greatest(p.next_offset, wanted.next_offset), p.end_offset)
      FROM run, unnest($4::integer[], $5::bigint[]) AS wanted(partition, next_offset)
     WHERE p.replay_name = run.name AND p.partition = wanted.partition
)
SELECT cancel_requested FROM run;

-- name: mark_replay_target_prepared
UPDATE replays
   SET target_prepared = true, updated_at = clock_timestamp()
 WHERE name = $1 AND run_epoch = $2 AND state = 'running'
RETURNING name;

-- name: finish_replay
UPDATE replays
   SET state = $3::text, error = $4, updated_at = clock_timestamp(),
       finished_at = CASE WHEN $3::text IN ('pending', 'running') THEN NULL ELSE clock_timestamp() END
 WHERE name = $1 AND run_epoch = $2 AND state = 'running'
RETURNING name, updated_at, finished_at;

-- name: request_replay_cancel
UPDATE replays
   SET cancel_requested = cancel_requested OR state IN ('pending', 'running', 'failed'),
       state = CASE WHEN state IN ('pending', 'failed') THEN 'cancelled' ELSE state END,
       finished_at = CASE WHEN state IN ('pending', 'failed') THEN clock_timestamp() ELSE finished_at END,
       updated_at = CASE WHEN state IN ('pending', 'running', 'failed') THEN clock_timestamp() ELSE updated_at END
 WHERE name = $1
RETURNING name;
