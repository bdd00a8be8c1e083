-- 0005: reserved for sagas (filled in by the change that needs it).
SELECT 1;
