-- 0009: reserved for group_dead_letters (filled in by the change that needs it).
SELECT 1;
