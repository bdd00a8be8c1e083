-- 0007: reserved for retention (filled in by the change that needs it).
SELECT 1;
