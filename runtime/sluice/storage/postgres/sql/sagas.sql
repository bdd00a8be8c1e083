-- Named queries of the saga repository (storage/postgres/sagas.py).
-- Every write is conditional on the instance's version (optimistic concurrency): a writer that read
-- an older version changes nothing and gets SagaConflictError.

-- name: create_saga
-- Insert a new instance and its first history entry; nothing when the id already exists.
WITH created AS (
    INSERT INTO saga_instances (saga_id, saga_name, correlation_id, status, current_step, progress, context, version)
    VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, 1)
    ON CONFLICT DO NOTHING
    RETURNING saga_id, version
), history AS (
    INSERT INTO saga_history (saga_id, version, kind, step, attempt, detail)
    SELECT created.saga_id, created.version, entry.kind, entry.step, entry.attempt, entry.detail
      FROM created,
           unnest($8::text[], $9::text[], $10::integer[], $11::text[]) WITH ORDINALITY
               AS entry(kind, step, attempt, detail, ordinal)
     ORDER BY entry.ordinal
)
SELECT version FROM created;

-- name: save_saga
-- Move an instance from version $2 to $2 + 1 and record what happened; no row when $2 is stale.
WITH updated AS (
    UPDATE saga_instances
       SET status = $3, current_step = $4, progress = $5::jsonb, context = $6::jsonb,
           version = version + 1, updated_at = clock_timestamp()
     WHERE saga_id = $1 AND version = $2
    RETURNING saga_id, version, updated_at
), history AS (
    INSERT INTO saga_history (saga_id, version, kind, step, attempt, detail)
    SELECT updated.saga_id, updated.version, entry.kind, entry.step, entry.attempt, entry.detail
      FROM updated,
           unnest($7::text[], $8::text[], $9::integer[], $10::text[]) WITH ORDINALITY
               AS entry(kind, step, attempt, detail, ordinal)
     ORDER BY entry.ordinal
)
SELECT version, updated_at FROM updated;

-- name: get_saga
SELECT saga_id, saga_name, correlation_id, status, current_step, progress::text AS progress,
       context::text AS context, version, created_at, updated_at
  FROM saga_instances
 WHERE saga_id = $1;

-- name: saga_history
SELECT version, kind, step, attempt, detail, recorded_at
  FROM saga_history
 WHERE saga_id = $1
 ORDER BY entry_id;

-- name: list_sagas
-- Newest first, optionally only some statuses ($1 holds every status to list them all).
SELECT saga_id, saga_name, correlation_id, status, current_step, progress::text AS progress,
       context::text AS context, version, created_at, updated_at
  FROM saga_instances
 WHERE status = ANY ($1::text[])
 ORDER BY created_at DESC, saga_id
 LIMIT $2;

-- name: list_sagas_named
SELECT saga_id, saga_name, correlation_id, status, current_step, progress::text AS progress,
       context::text AS context, version, created_at, updated_at
  FROM saga_instances
 WHERE saga_name = $1 AND status = ANY ($2::text[])
 ORDER BY created_at DESC, saga_id
 LIMIT $3;
