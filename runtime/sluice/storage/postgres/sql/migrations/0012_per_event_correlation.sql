-- 0012: one correlation id per event in an append, so that group commit can put the appends of callers with
-- different correlation ids (every REST request has one) in one transaction. append_events stays for the
-- processes of earlier versions during a rolling upgrade and now calls the new function.
-- Appends a batch to one partition and returns its first offset, or NULL when the stream or
-- partition is missing, the stream is archived or deleted, or the expectation fails (the caller
-- then asks why). Each event has its own correlation id (p_correlation_ids, one per event), so that
-- the appends of callers with different correlation ids can share one transaction (group commit).
-- Writers of one partition first queue on a transaction advisory lock, which needs no transaction
-- id; the transaction gets its id at the UPDATE below, once it holds the lock. So within a
-- partition transaction ids increase with offsets, and the global log, which is ordered by
-- transaction id, keeps every partition's order. The counter row keeps offsets dense.
CREATE FUNCTION append_correlated_events(
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
    v_appended_at timestamptz;
    v_count integer := cardinality(p_event_ids);
BEGIN
    SELECT stream_id INTO v_stream_id FROM streams WHERE name = p_stream_name AND type = 'persistent';
    IF v_stream_id IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(v_stream_id * 1024 + p_partition);
    -- Archive and soft delete mark the stream, then take every partition's lock: an append holding
    -- the lock commits before they do, and one that gets it later sees the mark here (a new snapshot).
    PERFORM 1 FROM streams WHERE stream_id = v_stream_id AND archived_at IS NULL AND deleted_at IS NULL;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    UPDATE stream_partitions
       SET next_offset = next_offset + v_count,
           last_appended_at = greatest(clock_timestamp(), last_appended_at)
     WHERE stream_id = v_stream_id AND partition = p_partition
       AND (p_expected_next_offset IS NULL OR next_offset = p_expected_next_offset)
       AND (NOT p_require_existing OR next_offset > 0)
    RETURNING next_offset - v_count, last_appended_at INTO v_first_offset, v_appended_at;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    INSERT INTO events (stream_id, partition, event_offset, event_id, event_type, schema_version,
                        content_type, data, metadata, correlation_id, created_at)
    SELECT v_stream_id, p_partition, v_first_offset + batch.ordinal - 1, batch.event_id, batch.event_type,
           batch.schema_version, batch.content_type, batch.data, batch.metadata, batch.correlation_id,
           v_appended_at
      FROM unnest(p_event_ids, p_event_types, p_schema_versions, p_content_types, p_payloads, p_metadata,
                  p_correlation_ids)
               WITH ORDINALITY AS batch(event_id, event_type, schema_version, content_type, data, metadata,
                                        correlation_id, ordinal);
    RETURN v_first_offset;
END
$$;

-- The append of Sluice versions before 0012 (one correlation id for the whole batch), kept for their
-- processes during a rolling upgrade: the same append, every event with that one correlation id.
CREATE OR REPLACE FUNCTION append_events(
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
    p_correlation_id text
) RETURNS bigint
LANGUAGE sql AS $$
    SELECT append_correlated_events(
        p_stream_name, p_partition, p_expected_next_offset, p_require_existing, p_event_ids, p_event_types,
        p_schema_versions, p_content_types, p_payloads, p_metadata,
        array_fill(p_correlation_id, ARRAY[cardinality(p_event_ids)])
    )
$$;
