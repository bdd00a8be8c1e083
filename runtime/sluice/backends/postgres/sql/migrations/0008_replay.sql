-- 0008: reserved for replay (filled in by the change that needs it).
SELECT 1;
