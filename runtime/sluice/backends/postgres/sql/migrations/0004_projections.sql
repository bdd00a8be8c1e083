-- 0004: reserved for projections (filled in by the change that needs it).
SELECT 1;
