-- Reads that stay cheap at a million rows: ictq's own indexes beside Laravel's tables (the
-- tables stay as Laravel made them), and the failure signatures of `ictq failed --group` and
-- `ictq metrics`, kept in two side tables and reconciled with failed_jobs before each read
-- (PHP workers insert and delete failed rows behind ictq's back).

-- name: schema
-- size, status, health, metrics: per-queue counts by state from the index alone.
CREATE INDEX IF NOT EXISTS `ictq_{jobs}_state` ON `{jobs}` (`queue`, `reserved_at`, `available_at`);
-- (Laravel makes failed_jobs.queue a TEXT column on MySQL: no index can cover it, so failed
-- counts per queue scan the table there.) A narrow index for the jobs of the last hour, and for
-- the fingerprint of reconciliation (InnoDB counts over its smallest index).
CREATE INDEX IF NOT EXISTS `ictq_{failed_jobs}_failed_at` ON `{failed_jobs}` (`failed_at`);
CREATE TABLE IF NOT EXISTS `ictq_{failed_jobs}_groups` (
    `group_id` varchar(16) NOT NULL PRIMARY KEY,
    `job` varchar(255) NOT NULL,
    `signature` varchar(1000) NOT NULL
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
CREATE TABLE IF NOT EXISTS `ictq_{failed_jobs}_members` (
    `failed_id` bigint unsigned NOT NULL PRIMARY KEY,
    `group_id` varchar(16) NOT NULL,
    `queue` varchar(255) NOT NULL,
    `failed_at` varchar(19) NOT NULL
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
CREATE INDEX IF NOT EXISTS `ictq_{failed_jobs}_members_group` ON `ictq_{failed_jobs}_members` (`group_id`, `queue`, `failed_at`, `failed_id`);

-- name: triage_fingerprint_failed
SELECT COUNT(*), COALESCE(MAX(id), 0), COALESCE(SUM(id), 0) FROM `{failed_jobs}`;

-- name: triage_fingerprint_members
SELECT COUNT(*), COALESCE(MAX(failed_id), 0), COALESCE(SUM(failed_id), 0) FROM `ictq_{failed_jobs}_members`;

-- A walk over a window of ids (after, upto]: both sides bounded, so that no page costs more
-- than its window whatever the size of the tables.
-- name: triage_unsigned
SELECT f.id, f.uuid, f.connection, f.queue, f.payload, f.exception, f.failed_at FROM `{failed_jobs}` AS f
WHERE f.id > %(after)s AND f.id <= %(upto)s
  AND NOT EXISTS (SELECT 1 FROM `ictq_{failed_jobs}_members` AS m
                  WHERE m.failed_id = f.id AND m.failed_id > %(after)s AND m.failed_id <= %(upto)s)
ORDER BY f.id LIMIT %(limit)s;

-- name: triage_orphans
SELECT m.failed_id FROM `ictq_{failed_jobs}_members` AS m
WHERE m.failed_id > %(after)s AND m.failed_id <= %(upto)s
  AND NOT EXISTS (SELECT 1 FROM `{failed_jobs}` AS f WHERE f.id = m.failed_id AND f.id > %(after)s AND f.id <= %(upto)s)
ORDER BY m.failed_id LIMIT %(limit)s;

-- name: triage_forget
DELETE FROM `ictq_{failed_jobs}_members` WHERE failed_id IN %(ids)s;

-- name: triage_forget_empty_groups
DELETE FROM `ictq_{failed_jobs}_groups` WHERE group_id NOT IN (SELECT group_id FROM `ictq_{failed_jobs}_members`);

-- name: triage_put_group
INSERT IGNORE INTO `ictq_{failed_jobs}_groups` (group_id, job, signature) VALUES (%(group_id)s, %(job)s, %(signature)s);

-- name: triage_put_member
INSERT IGNORE INTO `ictq_{failed_jobs}_members` (failed_id, group_id, queue, failed_at)
VALUES (%(failed_id)s, %(group_id)s, %(queue)s, %(failed_at)s);

-- name: triage_all_groups
SELECT group_id, job, signature FROM `ictq_{failed_jobs}_groups`;

-- name: triage_counts
SELECT group_id, queue, COUNT(*), MIN(failed_at), MAX(failed_at), MIN(failed_id) FROM `ictq_{failed_jobs}_members`
WHERE (%(queue)s = '' OR queue = %(queue)s) GROUP BY group_id, queue;

-- name: triage_group_rows
SELECT f.id, f.uuid, f.connection, f.queue, f.payload, f.exception, f.failed_at
FROM `ictq_{failed_jobs}_members` AS m JOIN `{failed_jobs}` AS f ON f.id = m.failed_id
WHERE m.group_id = %(group_id)s AND m.failed_id > %(after)s AND (%(queue)s = '' OR m.queue = %(queue)s)
ORDER BY m.failed_id LIMIT %(limit)s;

-- The queues that have jobs, one index probe per queue (a loose scan of the queue index).
-- name: queue_names
WITH RECURSIVE names (queue) AS (
    SELECT MIN(queue) FROM `{jobs}`
    UNION ALL
    SELECT (SELECT MIN(j.queue) FROM `{jobs}` AS j WHERE j.queue > names.queue) FROM names WHERE names.queue IS NOT NULL
)
SELECT queue FROM names WHERE queue IS NOT NULL;
