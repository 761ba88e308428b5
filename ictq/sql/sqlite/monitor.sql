-- Monitoring (ictq metrics): the failed jobs' ids and the head of their payload (for the job name).

-- name: monitor_failed_ids
SELECT id, queue FROM "{failed_jobs}";

-- name: monitor_failed_heads
SELECT id, substr(CAST(payload AS BLOB), 1, :chars) FROM "{failed_jobs}" WHERE id > :after ORDER BY id LIMIT :limit;
