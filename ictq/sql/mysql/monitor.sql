-- Monitoring (ictq metrics): the failed jobs' ids and the head of their payload (for the job name).

-- name: monitor_failed_ids
SELECT id, queue FROM `{failed_jobs}`;

-- name: monitor_failed_heads
SELECT id, SUBSTRING(payload, 1, %(chars)s) FROM `{failed_jobs}` WHERE id > %(after)s ORDER BY id LIMIT %(limit)s;
