-- Operations: sizes, listings, failed-job handling and the control flags (restart, pause).

-- name: schema
CREATE TABLE IF NOT EXISTS "ictq_control" (
    "name" varchar(191) PRIMARY KEY NOT NULL,
    "value" varchar(255) NOT NULL,
    "updated_at" integer NOT NULL
);

-- name: control_all
SELECT name, value FROM "ictq_control";

-- name: control_set
INSERT INTO "ictq_control" (name, value, updated_at) VALUES (:name, :value, :now)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at;

-- name: control_delete
DELETE FROM "ictq_control" WHERE name = :name;

-- One queue (the queues come from queue_names, a loose scan of the queue index): all its jobs,
-- the delayed, the reserved, and the earliest available_at of the unreserved; pending is the
-- rest. Each is one index range (only the total counts every entry of the queue), never a sum
-- over every row of the table. (On SQLite the queue is the value the loose scan returned: text,
-- the bytes of a BLOB, or the bytes of text that is not UTF-8, which :text says to match as text.)
-- name: size
SELECT (SELECT COUNT(*) FROM "{jobs}" WHERE queue = (CASE WHEN :text THEN CAST(:queue AS TEXT) ELSE :queue END)),
       (SELECT COUNT(*) FROM "{jobs}" WHERE queue = (CASE WHEN :text THEN CAST(:queue AS TEXT) ELSE :queue END) AND reserved_at IS NULL
                                         AND available_at > :now),
       (SELECT COUNT(*) FROM "{jobs}" WHERE queue = (CASE WHEN :text THEN CAST(:queue AS TEXT) ELSE :queue END) AND reserved_at IS NOT NULL),
       (SELECT MIN(available_at) FROM "{jobs}" WHERE queue = (CASE WHEN :text THEN CAST(:queue AS TEXT) ELSE :queue END) AND reserved_at IS NULL);

-- name: failed_counts
SELECT queue, COUNT(*), SUM(CASE WHEN failed_at >= :since THEN 1 ELSE 0 END) FROM "{failed_jobs}" GROUP BY queue;

-- name: clear_available
DELETE FROM "{jobs}" WHERE queue = :queue AND reserved_at IS NULL;

-- name: clear_all
DELETE FROM "{jobs}" WHERE queue = :queue;

-- name: failed_by_id
SELECT id, uuid, connection, queue, payload, exception, failed_at FROM "{failed_jobs}" WHERE id = :id;

-- name: failed_by_uuid
SELECT id, uuid, connection, queue, payload, exception, failed_at FROM "{failed_jobs}" WHERE uuid = :uuid;

-- name: failed_delete
DELETE FROM "{failed_jobs}" WHERE id = :id;

-- name: failed_ids_before
SELECT id FROM "{failed_jobs}" WHERE id > :after AND failed_at < :before ORDER BY id LIMIT :limit;

-- name: failed_delete_ids
DELETE FROM "{failed_jobs}" WHERE id IN (SELECT value FROM json_each(:ids));

-- name: requeue
INSERT INTO "{jobs}" (queue, payload, attempts, reserved_at, available_at, created_at)
VALUES (:queue, :payload, 0, NULL, :now, :now);

-- name: list_queue
SELECT id, queue, payload, attempts, reserved_at, available_at, created_at FROM "{jobs}"
WHERE queue = :queue
  AND (:state = 'any'
       OR (:state = 'pending' AND reserved_at IS NULL AND available_at <= :now)
       OR (:state = 'delayed' AND reserved_at IS NULL AND available_at > :now)
       OR (:state = 'reserved' AND reserved_at IS NOT NULL))
ORDER BY id LIMIT :limit;

-- name: failed_recent
SELECT id, uuid, connection, queue, payload, exception, failed_at FROM "{failed_jobs}"
WHERE (:queue = '' OR queue = :queue) ORDER BY id DESC LIMIT :limit;

-- name: failed_range
SELECT id, uuid, connection, queue, payload, exception, failed_at FROM "{failed_jobs}"
WHERE id > :after AND id >= :low AND id <= :high AND (:queue = '' OR queue = :queue) ORDER BY id LIMIT :limit;
