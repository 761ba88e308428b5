-- Every SQL statement ictq runs on MySQL and MariaDB, by name. {jobs} and {failed_jobs} are
-- the configured table names; {skip_locked} is "SKIP LOCKED" on servers that have it
-- (MariaDB >= 10.6, MySQL >= 8.0) and empty on older ones. Parameters use %(name)s.

-- name: schema
CREATE TABLE IF NOT EXISTS `{jobs}` (
    `id` bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
    `queue` varchar(255) NOT NULL,
    `payload` longtext NOT NULL,
    `attempts` smallint unsigned NOT NULL,
    `reserved_at` int unsigned NULL,
    `available_at` int unsigned NOT NULL,
    `created_at` int unsigned NOT NULL,
    KEY `{jobs}_queue_index` (`queue`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE TABLE IF NOT EXISTS `{failed_jobs}` (
    `id` bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
    `uuid` varchar(255) NOT NULL,
    `connection` text NOT NULL,
    `queue` text NOT NULL,
    `payload` longtext NOT NULL,
    `exception` longtext NOT NULL,
    `failed_at` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE KEY `{failed_jobs}_uuid_unique` (`uuid`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- name: check_jobs
SELECT id, queue, payload, attempts, reserved_at, available_at, created_at FROM `{jobs}` WHERE 1 = 0;

-- name: check_failed_jobs
SELECT id, uuid, connection, queue, payload, exception, failed_at FROM `{failed_jobs}` WHERE 1 = 0;

-- name: push
INSERT INTO `{jobs}` (queue, payload, attempts, reserved_at, available_at, created_at)
VALUES (%(queue)s, %(payload)s, 0, NULL, %(available_at)s, %(created_at)s);

-- Only placeholders in VALUES: PyMySQL's executemany then sends multi-row INSERTs.
-- name: push_many
INSERT INTO `{jobs}` (queue, payload, attempts, reserved_at, available_at, created_at)
VALUES (%(queue)s, %(payload)s, %(attempts)s, %(reserved_at)s, %(available_at)s, %(created_at)s);

-- Claiming takes two statements in one transaction (MySQL has no UPDATE ... RETURNING):
-- lock up to %(limit)s claimable rows, skipping rows other workers hold, then reserve them
-- (the storage runs the second with the ids the first returned).
-- An attempt is never counted past %(max_attempts)s (the column's limit): the worker fails a job
-- claimed at it.
-- name: claim
SELECT id, queue, payload, attempts, available_at FROM `{jobs}`
WHERE queue = %(queue)s
  AND ((reserved_at IS NULL AND available_at <= %(now)s) OR reserved_at <= %(expired)s)
ORDER BY id
LIMIT %(limit)s
FOR UPDATE {skip_locked};
UPDATE `{jobs}` SET reserved_at = %(now)s,
    attempts = CASE WHEN attempts < %(max_attempts)s THEN attempts + 1 ELSE attempts END
WHERE id IN %(ids)s;

-- The (id, attempts) pair fences every write: a worker whose reservation was taken over
-- by another worker (attempts went up) changes nothing.
-- name: delete
DELETE FROM `{jobs}` WHERE id = %(id)s AND attempts = %(attempts)s;

-- name: release
UPDATE `{jobs}` SET reserved_at = NULL, available_at = %(available_at)s, payload = %(payload)s
WHERE id = %(id)s AND attempts = %(attempts)s;

-- name: touch
UPDATE `{jobs}` SET reserved_at = %(now)s
WHERE id = %(id)s AND attempts = %(attempts)s AND reserved_at IS NOT NULL;

-- A failure record is never replaced: the storage picks a fresh uuid for one already taken.
-- name: insert_failed
INSERT INTO `{failed_jobs}` (uuid, connection, queue, payload, exception, failed_at)
VALUES (%(uuid)s, %(connection)s, %(queue)s, %(payload)s, %(exception)s, %(failed_at)s);

-- name: failed_uuid_taken
SELECT 1 FROM `{failed_jobs}` WHERE uuid = %(uuid)s;

-- Batched forms: every job of one call has the same attempts value (the caller groups them).
-- name: delete_many
DELETE FROM `{jobs}` WHERE attempts = %(attempts)s AND id IN %(ids)s;

-- name: touch_many
UPDATE `{jobs}` SET reserved_at = %(now)s
WHERE attempts = %(attempts)s AND id IN %(ids)s AND reserved_at IS NOT NULL;

-- Hand back claimed jobs that never started: the claim's attempt is taken back.
-- name: unclaim_many
UPDATE `{jobs}` SET reserved_at = NULL, attempts = attempts - 1
WHERE attempts = %(attempts)s AND id IN %(ids)s AND reserved_at IS NOT NULL;

-- Batched failures: delete the reserved rows (fenced by attempts, as delete_many) and say which
-- went; only those get a failed_jobs row, so a retried flush writes none twice. Two statements
-- (MySQL has no DELETE ... RETURNING): lock the rows still held, then delete them.
-- name: fail_delete_many
SELECT id FROM `{jobs}` WHERE attempts = %(attempts)s AND id IN %(ids)s FOR UPDATE;
DELETE FROM `{jobs}` WHERE attempts = %(attempts)s AND id IN %(ids)s;

-- Many failure records: run with executemany (PyMySQL sends multi-row INSERTs).
-- name: insert_failed_many
INSERT INTO `{failed_jobs}` (uuid, connection, queue, payload, exception, failed_at)
VALUES (%(uuid)s, %(connection)s, %(queue)s, %(payload)s, %(exception)s, %(failed_at)s);

-- name: failed_uuids_taken
SELECT uuid FROM `{failed_jobs}` WHERE uuid IN %(uuids)s;

-- Is any job of these queues claimable now? (the idle worker's cheap probe)
-- name: peek
SELECT 1 FROM `{jobs}`
WHERE queue IN %(queues)s
  AND ((reserved_at IS NULL AND available_at <= %(now)s) OR reserved_at <= %(expired)s)
LIMIT 1;
