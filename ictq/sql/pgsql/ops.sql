-- Operations: sizes, listings, failed-job handling and the control flags (restart, pause).

-- name: schema
CREATE TABLE IF NOT EXISTS "ictq_control" (
    "name" varchar(191) PRIMARY KEY NOT NULL,
    "value" varchar(255) NOT NULL,
    "updated_at" bigint NOT NULL
);

-- name: control_all
SELECT name, value FROM "ictq_control";

-- name: control_set
INSERT INTO "ictq_control" (name, value, updated_at) VALUES (%(name)s, %(value)s, %(now)s)
ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at;

-- name: control_delete
DELETE FROM "ictq_control" WHERE name = %(name)s;

-- One queue (the queues come from queue_names, a loose scan of the queue index): all its jobs,
-- the delayed, the reserved, and the earliest available_at of the unreserved; pending is the
-- rest. Each is one index range (only the total counts every entry of the queue), never a sum
-- over every row of the table.
-- name: size
SELECT (SELECT COUNT(*) FROM "{jobs}" WHERE queue = %(queue)s),
       (SELECT COUNT(*) FROM "{jobs}" WHERE queue = %(queue)s AND reserved_at IS NULL AND available_at > %(now)s),
       (SELECT COUNT(*) FROM "{jobs}" WHERE queue = %(queue)s AND reserved_at IS NOT NULL),
       (SELECT MIN(available_at) FROM "{jobs}" WHERE queue = %(queue)s AND reserved_at IS NULL);

-- name: failed_counts
SELECT queue, COUNT(*), SUM(CASE WHEN failed_at >= %(since)s THEN 1 ELSE 0 END) FROM "{failed_jobs}" GROUP BY queue;

-- name: clear_available
DELETE FROM "{jobs}" WHERE queue = %(queue)s AND reserved_at IS NULL;

-- name: clear_all
DELETE FROM "{jobs}" WHERE queue = %(queue)s;

-- name: failed_by_id
SELECT id, uuid, connection, queue, payload, exception, failed_at FROM "{failed_jobs}" WHERE id = %(id)s;

-- name: failed_by_uuid
SELECT id, uuid, connection, queue, payload, exception, failed_at FROM "{failed_jobs}" WHERE uuid = %(uuid)s;

-- name: failed_delete
DELETE FROM "{failed_jobs}" WHERE id = %(id)s;

-- name: failed_ids_before
SELECT id FROM "{failed_jobs}" WHERE id > %(after)s AND failed_at < %(before)s ORDER BY id LIMIT %(limit)s;

-- name: failed_delete_ids
DELETE FROM "{failed_jobs}" WHERE id = ANY(%(ids)s);

-- name: requeue
INSERT INTO "{jobs}" (queue, payload, attempts, reserved_at, available_at, created_at)
VALUES (%(queue)s, %(payload)s, 0, NULL, %(now)s, %(now)s);

-- name: list_queue
SELECT id, queue, payload, attempts, reserved_at, available_at, created_at FROM "{jobs}"
WHERE queue = %(queue)s
  AND (%(state)s = 'any'
       OR (%(state)s = 'pending' AND reserved_at IS NULL AND available_at <= %(now)s)
       OR (%(state)s = 'delayed' AND reserved_at IS NULL AND available_at > %(now)s)
       OR (%(state)s = 'reserved' AND reserved_at IS NOT NULL))
ORDER BY id LIMIT %(limit)s;

-- name: failed_recent
SELECT id, uuid, connection, queue, payload, exception, failed_at FROM "{failed_jobs}"
WHERE (%(queue)s = '' OR queue = %(queue)s) ORDER BY id DESC LIMIT %(limit)s;

-- name: failed_range
SELECT id, uuid, connection, queue, payload, exception, failed_at FROM "{failed_jobs}"
WHERE id > %(after)s AND id >= %(low)s AND id <= %(high)s AND (%(queue)s = '' OR queue = %(queue)s) ORDER BY id LIMIT %(limit)s;
