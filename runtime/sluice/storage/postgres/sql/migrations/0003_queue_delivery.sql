-- 0003: delivery semantics per stream (broadcast or queue) and the claims of queue-delivery groups.

ALTER TABLE streams
    ADD COLUMN delivery text NOT NULL DEFAULT 'broadcast' CHECK (delivery IN ('broadcast', 'queue'));

-- QUEUE groups: where the next fresh claim of each partition starts (see consumer_group_claims).
ALTER TABLE consumer_group_partitions ADD COLUMN claimed_offset bigint NOT NULL DEFAULT 0;
UPDATE consumer_group_partitions SET claimed_offset = committed_offset;
ALTER TABLE consumer_group_partitions ALTER COLUMN claimed_offset DROP DEFAULT;

-- QUEUE delivery: the members of a group share every partition. A member claims a range of a
-- partition's offsets (at most its batch size) under a lease that its heartbeats extend; a claim
-- whose lease ran out (its member died, got stuck or left) is taken over by another member with
-- the next attempt number, so a late acknowledgement from the previous holder is refused (fenced).
-- claimed_offset is where the next fresh claim starts; committed_offset advances over the
-- contiguous finished claims, so committed offsets and lag stay exact and O(partitions).
CREATE TABLE consumer_group_claims (
    claim_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_key bigint NOT NULL REFERENCES consumer_groups (group_key) ON DELETE CASCADE,
    partition integer NOT NULL CHECK (partition >= 0),
    from_offset bigint NOT NULL CHECK (from_offset >= 0),
    to_offset bigint NOT NULL,
    owner text NOT NULL,
    instance_id text NOT NULL,
    attempt integer NOT NULL DEFAULT 1,
    expires_at timestamptz NOT NULL,
    done boolean NOT NULL DEFAULT false,
    CHECK (to_offset > from_offset),
    UNIQUE (group_key, partition, from_offset)
);
CREATE INDEX consumer_group_claims_expiring ON consumer_group_claims (group_key, expires_at) WHERE NOT done;
CREATE INDEX consumer_group_claims_by_owner ON consumer_group_claims (group_key, owner) WHERE NOT done;

-- Claims events for one member of a QUEUE group: first a claim whose lease ran out (its remaining
-- range, with the next attempt number), else a fresh range of up to p_count events from the first
-- partition, in turn from p_first_partition, that has unclaimed events. No row when nothing is
-- available (or the group is missing). The partition's epoch comes with the claim: a forced reset
-- bumps it and drops every claim, and the member learns of it from its next heartbeat.
CREATE FUNCTION claim_group_events(
    p_stream_name text,
    p_group_id text,
    p_consumer_id text,
    p_instance_id text,
    p_count integer,
    p_lease interval,
    p_first_partition integer
) RETURNS TABLE (claim_id bigint, partition integer, from_offset bigint, to_offset bigint, attempt integer,
                epoch bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_group_key bigint;
    v_stream_id bigint;
    v_partitions integer;
    v_partition integer;
    v_claimed bigint;
    v_head bigint;
    v_epoch bigint;
BEGIN
    SELECT g.group_key, s.stream_id, s.partitions INTO v_group_key, v_stream_id, v_partitions
      FROM streams s JOIN consumer_groups g ON g.stream_id = s.stream_id AND g.name = p_group_id
     WHERE s.name = p_stream_name;
    IF v_group_key IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    UPDATE consumer_group_claims c
       SET owner = p_consumer_id, instance_id = p_instance_id, attempt = c.attempt + 1,
           expires_at = clock_timestamp() + p_lease
      FROM consumer_group_partitions gp
     WHERE c.claim_id = (SELECT expired.claim_id FROM consumer_group_claims expired
                          WHERE expired.group_key = v_group_key AND NOT expired.done
                            AND expired.expires_at < clock_timestamp()
                          ORDER BY expired.expires_at
                          LIMIT 1
                            FOR UPDATE SKIP LOCKED)
       AND gp.group_key = v_group_key AND gp.partition = c.partition
    RETURNING c.claim_id, c.partition, c.from_offset, c.to_offset, c.attempt, gp.epoch;
    IF FOUND THEN
        RETURN;
    END IF;
    FOR v_partition IN
        SELECT gp.partition
          FROM consumer_group_partitions gp
          JOIN stream_partitions sp ON sp.stream_id = v_stream_id AND sp.partition = gp.partition
         WHERE gp.group_key = v_group_key AND gp.claimed_offset < sp.next_offset
         ORDER BY ((gp.partition - p_first_partition) % v_partitions + v_partitions) % v_partitions
    LOOP
        SELECT gp.claimed_offset, gp.epoch INTO v_claimed, v_epoch
          FROM consumer_group_partitions gp
         WHERE gp.group_key = v_group_key AND gp.partition = v_partition
           FOR UPDATE;
        SELECT sp.next_offset INTO v_head
          FROM stream_partitions sp WHERE sp.stream_id = v_stream_id AND sp.partition = v_partition;
        CONTINUE WHEN v_claimed >= v_head;  -- another member took the rest meanwhile
        UPDATE consumer_group_partitions gp
           SET claimed_offset = least(v_claimed + p_count, v_head)
         WHERE gp.group_key = v_group_key AND gp.partition = v_partition;
        RETURN QUERY
        INSERT INTO consumer_group_claims (group_key, partition, from_offset, to_offset, owner, instance_id, expires_at)
        VALUES (v_group_key, v_partition, v_claimed, least(v_claimed + p_count, v_head), p_consumer_id, p_instance_id,
                clock_timestamp() + p_lease)
        RETURNING consumer_group_claims.claim_id, consumer_group_claims.partition,
                  consumer_group_claims.from_offset, consumer_group_claims.to_offset, consumer_group_claims.attempt,
                  v_epoch;
        RETURN;
    END LOOP;
END
$$;

-- Acknowledges claims of a QUEUE group: each (claim, attempt) up to p_up_to (the next offset not
-- processed). An acknowledgement only applies while the claim still has that attempt number, so a
-- member whose claim was taken over is refused. A partly processed claim is split: the processed
-- part becomes a finished claim of its own. Then each touched partition's committed offset
-- advances over the contiguous finished claims at its front. Returns the claims acknowledged.
CREATE FUNCTION acknowledge_group_claims(
    p_stream_name text,
    p_group_id text,
    p_claim_ids bigint[],
    p_attempts integer[],
    p_up_to bigint[]
) RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_group_key bigint;
    v_claim consumer_group_claims%ROWTYPE;
    v_wanted record;
    v_partition integer;
    v_committed bigint;
    v_next bigint;
    v_touched integer[] := '{}';
BEGIN
    SELECT g.group_key INTO v_group_key
      FROM streams s JOIN consumer_groups g ON g.stream_id = s.stream_id AND g.name = p_group_id
     WHERE s.name = p_stream_name;
    IF v_group_key IS NULL THEN
        RETURN;
    END IF;
    -- Lock the partitions in order first (the same order as every other acknowledger: no deadlock).
    PERFORM 1 FROM consumer_group_partitions gp
     WHERE gp.group_key = v_group_key
       AND gp.partition IN (SELECT c.partition FROM consumer_group_claims c WHERE c.claim_id = ANY (p_claim_ids))
     ORDER BY gp.partition
       FOR UPDATE;
    FOR v_wanted IN
        SELECT * FROM unnest(p_claim_ids, p_attempts, p_up_to) AS wanted(claim_id, attempt, up_to)
         ORDER BY wanted.claim_id  -- claim rows are locked in claim id order everywhere
    LOOP
        SELECT * INTO v_claim FROM consumer_group_claims c
         WHERE c.claim_id = v_wanted.claim_id AND c.group_key = v_group_key AND c.attempt = v_wanted.attempt
           FOR UPDATE;
        CONTINUE WHEN NOT FOUND;
        RETURN NEXT v_claim.claim_id;
        CONTINUE WHEN v_claim.done OR v_wanted.up_to <= v_claim.from_offset;
        IF v_wanted.up_to >= v_claim.to_offset THEN
            UPDATE consumer_group_claims SET done = true WHERE claim_id = v_claim.claim_id;
        ELSE
            UPDATE consumer_group_claims SET from_offset = v_wanted.up_to WHERE claim_id = v_claim.claim_id;
            INSERT INTO consumer_group_claims (group_key, partition, from_offset, to_offset, owner, instance_id,
                                               attempt, expires_at, done)
            VALUES (v_group_key, v_claim.partition, v_claim.from_offset, v_wanted.up_to, v_claim.owner,
                    v_claim.instance_id, v_claim.attempt, v_claim.expires_at, true);
        END IF;
        v_touched := v_touched || v_claim.partition;
    END LOOP;
    FOR v_partition IN SELECT DISTINCT touched FROM unnest(v_touched) AS touched LOOP
        SELECT gp.committed_offset INTO v_committed
          FROM consumer_group_partitions gp WHERE gp.group_key = v_group_key AND gp.partition = v_partition;
        LOOP
            DELETE FROM consumer_group_claims c
             WHERE c.group_key = v_group_key AND c.partition = v_partition AND c.from_offset = v_committed AND c.done
            RETURNING c.to_offset INTO v_next;
            EXIT WHEN NOT FOUND;
            v_committed := v_next;
        END LOOP;
        UPDATE consumer_group_partitions gp
           SET committed_offset = v_committed, committed_at = clock_timestamp()
         WHERE gp.group_key = v_group_key AND gp.partition = v_partition AND gp.committed_offset <> v_committed;
    END LOOP;
END
$$;
