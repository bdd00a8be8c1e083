-- 0013: the same append in two statements instead of five (issue 18: profiled, the PL/pgSQL function was
-- most of a single-event append's server time, and each statement in it has a fixed cost). Same signature
-- and results, so processes of earlier versions (and append_events, which calls it) use it unchanged.
-- The lookup takes the partition's advisory lock (before the transaction has an id, as before); one
-- statement then checks the lifecycle, moves the counter and inserts the events. It starts after the lock,
-- so its snapshot sees an archive or soft delete that committed while this append waited.
CREATE OR REPLACE FUNCTION append_correlated_events(
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
