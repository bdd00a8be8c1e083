-- 0006: reserved for stream_lifecycle (filled in by the change that needs it).
SELECT 1;
