-- Statements of declarative SQL targets (sluice.services.projections.sql_target): they write the user's read
-- model through the connection of a same-database projection's transaction. The templates hold
-- `{placeholders}` that are filled only with identifiers validated against the operator's patterns and
-- quoted (sluice.services.projections.sql_target.statements); every value is a bound parameter.

-- name: sql_target_relation_kind
-- 'r' table, 'v' view, ... or NULL when $1.$2 does not exist.
SELECT c.relkind::text
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = $1 AND c.relname = $2;

-- name: sql_target_create_schema
CREATE SCHEMA IF NOT EXISTS {schema};

-- name: sql_target_create_table
CREATE TABLE IF NOT EXISTS {table} ({columns}, PRIMARY KEY ({keys}));

-- name: sql_target_add_column
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {type};

-- name: sql_target_point_view
-- Replaced in place, which keeps views that users built on this one working; when the columns moved so that
-- it cannot be (invalid_table_definition, SQLSTATE 42P16), dropped and created again. The exception block
-- is a savepoint: the failed attempt leaves the transaction usable, and the driver never sees the error.
DO $point_view$
BEGIN
    CREATE OR REPLACE VIEW {view} AS SELECT {columns} FROM {table};
EXCEPTION WHEN invalid_table_definition THEN
    DROP VIEW IF EXISTS {view};
    CREATE VIEW {view} AS SELECT {columns} FROM {table};
END
$point_view$;

-- name: sql_target_truncate
TRUNCATE {table};

-- name: sql_target_drop_table
DROP TABLE IF EXISTS {table};

-- name: sql_target_column_types
-- $1 a qualified, quoted table name: its columns, their types as format_type spells them, and whether
-- each is part of the primary key.
SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type,
       coalesce(a.attnum = ANY (i.indkey), false) AS key
  FROM pg_attribute a
  LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
 WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped;

-- name: sql_target_create_index
CREATE INDEX IF NOT EXISTS {index} ON {table} ({columns});

-- name: sql_target_upsert_payloads
-- A whole run of events of one type in one statement: $1 the run's payloads (jsonb[], in order), then one
-- SQL/JSON path per column (strict mode, bound, never formatted in). PostgreSQL extracts the values once
-- per column ("extracted": jsonb, a path that leads nowhere gives NULL), finds what cannot be applied
-- ("problem": a key without a value, a value that does not convert to its column's type, as text or NULL),
-- converts the rest to the column types ("values") and keeps each key's last such event: what applying the
-- run event by event would leave (conflict_action: DO UPDATE SET the other columns, or DO NOTHING when every
-- column is a key). It returns the events it could not apply, with the reason.
WITH batch AS MATERIALIZED (
    -- Each value's text ("texts") computed once from its jsonb; OFFSET 0 keeps the paths from being
    -- evaluated again for the texts.
    SELECT extracted.*, {texts}
      FROM (SELECT batch.position, {extracted}
              FROM unnest($1::jsonb[]) WITH ORDINALITY AS batch(payload, position)
            OFFSET 0) AS extracted
), checked AS MATERIALIZED (
    SELECT batch.*, {problem} AS problem FROM batch
), written AS (
    INSERT INTO {table} ({columns})
    SELECT {aliases} FROM (
        SELECT DISTINCT ON ({distinct}) {values}
          FROM checked
         WHERE checked.problem IS NULL
         ORDER BY {distinct}, checked.position DESC
    ) AS latest
    ON CONFLICT ({keys}) {conflict_action}
)
SELECT position, problem FROM checked WHERE problem IS NOT NULL ORDER BY position;
