-- 0014: an append in one statement (issue 18: the PL/pgSQL function's fixed cost was most of a single-event
-- append's server time; the same work as one statement takes 0.67x of a raw INSERT's time against the
-- function's 0.52x through Sluice's whole path, measured). One statement has one snapshot, taken before it
-- waits for the partition's advisory lock, so it cannot see an archive or soft delete that committed while
-- it waited in the streams row. The mark is therefore kept on the counter rows too: archive and soft delete
-- close them after taking every partition's lock, and the append's UPDATE of its counter row re-reads a row
-- changed while it waited (READ COMMITTED's re-check) and finds it closed. append_correlated_events stays
-- for the processes of earlier versions during a rolling upgrade (it still checks the streams row after its
-- lock). An archive made by such a process closes no counter row, so a new process's append racing it may
-- still commit just after it (docs/stream-lifecycle.md); its unarchive or restore reopens them through the
-- trigger below.
ALTER TABLE stream_partitions ADD COLUMN accepts_appends boolean NOT NULL DEFAULT true;

UPDATE stream_partitions p
   SET accepts_appends = false
  FROM streams s
 WHERE s.stream_id = p.stream_id AND (s.archived_at IS NOT NULL OR s.deleted_at IS NOT NULL);

-- Reopens a stream's counter rows once it is neither archived nor deleted, whichever version of Sluice
-- made the change (a process of an earlier version unarchives or restores without knowing of them).
-- Closing is change_lifecycle's own work, after it has taken every partition's append lock. An AFTER
-- trigger runs once its statement is done, so it never touches a row that statement changes.
CREATE FUNCTION reopen_stream_partitions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE stream_partitions SET accepts_appends = true WHERE stream_id = NEW.stream_id AND NOT accepts_appends;
    RETURN NULL;
END
$$;

CREATE TRIGGER streams_reopened AFTER UPDATE OF archived_at, deleted_at ON streams
    FOR EACH ROW
    WHEN (NEW.archived_at IS NULL AND NEW.deleted_at IS NULL
          AND (OLD.archived_at IS NOT NULL OR OLD.deleted_at IS NOT NULL))
    EXECUTE FUNCTION reopen_stream_partitions();
