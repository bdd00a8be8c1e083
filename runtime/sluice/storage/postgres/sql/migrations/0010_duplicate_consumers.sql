-- 0010: duplicate consumer ids made visible. A process whose consumer id was taken over by a newer
-- process (static membership: the newest join wins) is refused at its next heartbeat and stops with
-- DuplicateConsumerError; each refusal is counted on the member row, which describe() shows.
ALTER TABLE consumer_group_members
    ADD COLUMN duplicates_fenced integer NOT NULL DEFAULT 0,
    ADD COLUMN last_duplicate_at timestamptz;
