-- Every SQL statement ictq runs on PostgreSQL, by name. {jobs} and {failed_jobs} are the
-- configured table names. Parameters use psycopg's %(name)s style.

-- name: schema
CREATE TABLE IF NOT EXISTS "{jobs}" (
    "id" bigserial PRIMARY KEY NOT NULL,
    "queue" varchar(255) NOT NULL,
    "payload" text NOT NULL,
    "attempts" smallint NOT NULL,
    "reserved_at" integer NULL,
    "available_at" integer NOT NULL,
    "created_at" integer NOT NULL
);
CREATE INDEX IF NOT EXISTS "{jobs}_queue_index" ON "{jobs}" ("queue");
-- ictq's own index (the table layout stays Laravel's): claims walk a queue in id order and stop
-- after K rows instead of sorting the whole queue.
CREATE INDEX IF NOT EXISTS "{jobs}_ictq_queue_id_index" ON "{jobs}" ("queue", "id");
-- Every insert into the jobs table (by ictq or by a Laravel app) wakes the listening workers.
CREATE OR REPLACE FUNCTION "{jobs}_ictq_notify"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('ictq_{jobs}', ''); RETURN NULL; END $$;
DROP TRIGGER IF EXISTS "{jobs}_ictq_notify" ON "{jobs}";
CREATE TRIGGER "{jobs}_ictq_notify" AFTER INSERT ON "{jobs}" FOR EACH STATEMENT EXECUTE FUNCTION "{jobs}_ictq_notify"();
CREATE TABLE IF NOT EXISTS "{failed_jobs}" (
    "id" bigserial PRIMARY KEY NOT NULL,
    "uuid" varchar(255) NOT NULL,
    "connection" text NOT NULL,
    "queue" text NOT NULL,
    "payload" text NOT NULL,
    "exception" text NOT NULL,
    "failed_at" timestamp(0) without time zone NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "{failed_jobs}_uuid_unique" UNIQUE ("uuid")
);

-- name: check_jobs
SELECT id, queue, payload, attempts, reserved_at, available_at, created_at FROM "{jobs}" WHERE 1 = 0;

-- name: check_failed_jobs
SELECT id, uuid, connection, queue, payload, exception, failed_at FROM "{failed_jobs}" WHERE 1 = 0;

-- name: push
INSERT INTO "{jobs}" (queue, payload, attempts, reserved_at, available_at, created_at)
VALUES (%(queue)s, %(payload)s, 0, NULL, %(available_at)s, %(created_at)s)
RETURNING id;

-- Bulk dispatch streams rows with COPY (the insert trigger still fires, once).
-- name: push_many
COPY "{jobs}" (queue, payload, attempts, available_at, created_at) FROM STDIN;

-- Claim up to %(limit)s jobs of one queue in one statement: available ones and reservations
-- older than retry_after (their worker died). SKIP LOCKED lets many workers claim at once.
-- An attempt is never counted past %(max_attempts)s (the column's limit): the worker fails a job
-- claimed at it.
-- name: claim
WITH picked AS (
    SELECT id FROM "{jobs}"
    WHERE queue = %(queue)s
      AND ((reserved_at IS NULL AND available_at <= %(now)s) OR reserved_at <= %(expired)s)
    ORDER BY id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE "{jobs}" AS j SET reserved_at = %(now)s,
    attempts = CASE WHEN j.attempts < %(max_attempts)s THEN j.attempts + 1 ELSE j.attempts END
FROM picked WHERE j.id = picked.id
RETURNING j.id, j.queue, j.payload, j.attempts, j.available_at;

-- The (id, attempts) pair fences every write: a worker whose reservation was taken over
-- by another worker (attempts went up) changes nothing.
-- name: delete
DELETE FROM "{jobs}" WHERE id = %(id)s AND attempts = %(attempts)s;

-- name: release
UPDATE "{jobs}" SET reserved_at = NULL, available_at = %(available_at)s, payload = %(payload)s
WHERE id = %(id)s AND attempts = %(attempts)s;

-- name: touch
UPDATE "{jobs}" SET reserved_at = %(now)s
WHERE id = %(id)s AND attempts = %(attempts)s AND reserved_at IS NOT NULL;

-- A failure record is never replaced: the storage picks a fresh uuid for one already taken.
-- name: insert_failed
INSERT INTO "{failed_jobs}" (uuid, connection, queue, payload, exception, failed_at)
VALUES (%(uuid)s, %(connection)s, %(queue)s, %(payload)s, %(exception)s, %(failed_at)s);

-- name: failed_uuid_taken
SELECT 1 FROM "{failed_jobs}" WHERE uuid = %(uuid)s;

-- Batched forms: every job of one call has the same attempts value (the caller groups them).
-- name: delete_many
DELETE FROM "{jobs}" WHERE attempts = %(attempts)s AND id = ANY(%(ids)s);

-- name: touch_many
UPDATE "{jobs}" SET reserved_at = %(now)s
WHERE attempts = %(attempts)s AND id = ANY(%(ids)s) AND reserved_at IS NOT NULL;

-- Hand back claimed jobs that never started: the claim's attempt is taken back.
-- name: unclaim_many
UPDATE "{jobs}" SET reserved_at = NULL, attempts = attempts - 1
WHERE attempts = %(attempts)s AND id = ANY(%(ids)s) AND reserved_at IS NOT NULL;

-- Batched failures: delete the reserved rows (fenced by attempts, as delete_many) and say which
-- went; only those get a failed_jobs row, so a retried flush writes none twice.
-- name: fail_delete_many
DELETE FROM "{jobs}" WHERE attempts = %(attempts)s AND id = ANY(%(ids)s) RETURNING id;

-- Many failure records in one statement, a column array each, sent in binary (text arrays in
-- text form are escaped element by element: payloads are full of quotes). A record whose uuid
-- failed_jobs holds (its unique key) is skipped: the uuids returned are those written.
-- name: insert_failed_many
INSERT INTO "{failed_jobs}" (uuid, connection, queue, payload, exception, failed_at)
SELECT * FROM unnest(%(uuid)b::varchar[], %(connection)b::text[], %(queue)b::text[], %(payload)b::text[],
                     %(exception)b::text[], %(failed_at)b::timestamp[])
ON CONFLICT DO NOTHING
RETURNING uuid;

-- name: failed_uuids_taken
SELECT uuid FROM "{failed_jobs}" WHERE uuid = ANY(%(uuids)s);

-- Is any job of these queues claimable now? (the idle worker's check after a wake-up)
-- name: peek
SELECT 1 FROM "{jobs}"
WHERE queue = ANY(%(queues)s)
  AND ((reserved_at IS NULL AND available_at <= %(now)s) OR reserved_at <= %(expired)s)
LIMIT 1;

-- name: listen
LISTEN "ictq_{jobs}";
