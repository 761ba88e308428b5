-- Every SQL statement ictq runs on SQLite, by name. {jobs} and {failed_jobs} are the
-- configured table names. Parameters use the :name style of the sqlite3 module.

-- name: schema
CREATE TABLE IF NOT EXISTS "{jobs}" (
    "id" integer PRIMARY KEY AUTOINCREMENT NOT NULL,
    "queue" varchar NOT NULL,
    "payload" text NOT NULL,
    "attempts" integer NOT NULL,
    "reserved_at" integer,
    "available_at" integer NOT NULL,
    "created_at" integer NOT NULL
);
CREATE INDEX IF NOT EXISTS "{jobs}_queue_index" ON "{jobs}" ("queue");
CREATE TABLE IF NOT EXISTS "{failed_jobs}" (
    "id" integer PRIMARY KEY AUTOINCREMENT NOT NULL,
    "uuid" varchar NOT NULL,
    "connection" text NOT NULL,
    "queue" text NOT NULL,
    "payload" text NOT NULL,
    "exception" text NOT NULL,
    "failed_at" datetime NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX IF NOT EXISTS "{failed_jobs}_uuid_unique" ON "{failed_jobs}" ("uuid");

-- name: check_jobs
SELECT id, queue, payload, attempts, reserved_at, available_at, created_at FROM "{jobs}" WHERE 1 = 0;

-- name: check_failed_jobs
SELECT id, uuid, connection, queue, payload, exception, failed_at FROM "{failed_jobs}" WHERE 1 = 0;

-- name: push
INSERT INTO "{jobs}" (queue, payload, attempts, reserved_at, available_at, created_at)
VALUES (:queue, :payload, 0, NULL, :available_at, :created_at)
RETURNING id;

-- name: push_many
INSERT INTO "{jobs}" (queue, payload, attempts, reserved_at, available_at, created_at)
VALUES (:queue, :payload, 0, NULL, :available_at, :created_at);

-- Claim up to :limit jobs of one queue: available ones and reservations older than
-- retry_after (their worker died). Runs inside BEGIN IMMEDIATE, so one writer at a time.
-- An attempt is never counted past :max_attempts (the column's limit): the worker fails a job
-- claimed at it.
-- name: claim
UPDATE "{jobs}" SET reserved_at = :now,
    attempts = CASE WHEN attempts < :max_attempts THEN attempts + 1 ELSE attempts END
WHERE id IN (
    SELECT id FROM "{jobs}"
    WHERE queue = :queue
      AND ((reserved_at IS NULL AND available_at <= :now) OR reserved_at <= :expired)
    ORDER BY id
    LIMIT :limit
)
RETURNING id, queue, payload, attempts, available_at;

-- The (id, attempts) pair fences every write: a worker whose reservation was taken over
-- by another worker (attempts went up) changes nothing.
-- name: delete
DELETE FROM "{jobs}" WHERE id = :id AND attempts = :attempts;

-- name: release
UPDATE "{jobs}" SET reserved_at = NULL, available_at = :available_at, payload = :payload
WHERE id = :id AND attempts = :attempts;

-- name: touch
UPDATE "{jobs}" SET reserved_at = :now
WHERE id = :id AND attempts = :attempts AND reserved_at IS NOT NULL;

-- A failure record is never replaced: the storage picks a fresh uuid for one already taken.
-- name: insert_failed
INSERT INTO "{failed_jobs}" (uuid, connection, queue, payload, exception, failed_at)
VALUES (:uuid, :connection, :queue, :payload, :exception, :failed_at);

-- name: failed_uuid_taken
SELECT 1 FROM "{failed_jobs}" WHERE uuid = :uuid;

-- Batched forms: every job of one call has the same attempts value (the caller groups them).
-- name: delete_many
DELETE FROM "{jobs}" WHERE attempts = :attempts AND id IN (SELECT value FROM json_each(:ids));

-- name: touch_many
UPDATE "{jobs}" SET reserved_at = :now
WHERE attempts = :attempts AND id IN (SELECT value FROM json_each(:ids)) AND reserved_at IS NOT NULL;

-- Hand back claimed jobs that never started: the claim's attempt is taken back.
-- name: unclaim_many
UPDATE "{jobs}" SET reserved_at = NULL, attempts = attempts - 1
WHERE attempts = :attempts AND id IN (SELECT value FROM json_each(:ids)) AND reserved_at IS NOT NULL;

-- Batched failures: delete the reserved rows (fenced by attempts, as delete_many) and say which
-- went; only those get a failed_jobs row, so a retried flush writes none twice.
-- name: fail_delete_many
DELETE FROM "{jobs}" WHERE attempts = :attempts AND id IN (SELECT value FROM json_each(:ids)) RETURNING id;

-- Many failure records: run with executemany.
-- name: insert_failed_many
INSERT INTO "{failed_jobs}" (uuid, connection, queue, payload, exception, failed_at)
VALUES (:uuid, :connection, :queue, :payload, :exception, :failed_at);

-- name: failed_uuids_taken
SELECT uuid FROM "{failed_jobs}" WHERE uuid IN (SELECT value FROM json_each(:uuids));

-- Is any job of these queues claimable now? (the idle worker's cheap probe)
-- name: peek
SELECT 1 FROM "{jobs}"
WHERE queue IN (SELECT value FROM json_each(:queues))
  AND ((reserved_at IS NULL AND available_at <= :now) OR reserved_at <= :expired)
LIMIT 1;
