-- 0011: typed columns of declarative SQL projections (issue 20). An event that a projection cannot apply
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
