-- Reads that stay cheap at a million rows: ictq's own indexes beside Laravel's tables (the
-- tables stay as Laravel made them), and the failure signatures of `ictq failed --group` and
-- `ictq metrics`, kept in two side tables and reconciled with failed_jobs before each read
-- (PHP workers insert and delete failed rows behind ictq's back).

-- name: schema
-- size, status, health, metrics: per-queue counts by state from the index alone.
CREATE INDEX IF NOT EXISTS "ictq_{jobs}_state" ON "{jobs}" ("queue", "reserved_at", "available_at");
-- failed counts per queue, and those of the last hour, from the index alone.
CREATE INDEX IF NOT EXISTS "ictq_{failed_jobs}_queue_failed_at" ON "{failed_jobs}" ("queue", "failed_at");
CREATE TABLE IF NOT EXISTS "ictq_{failed_jobs}_groups" (
    "group_id" varchar(16) PRIMARY KEY NOT NULL,
    "job" varchar(255) NOT NULL,
    "signature" varchar(1000) NOT NULL
);
CREATE TABLE IF NOT EXISTS "ictq_{failed_jobs}_members" (
    "failed_id" bigint PRIMARY KEY NOT NULL,
    "group_id" varchar(16) NOT NULL,
    "queue" varchar(255) NOT NULL,
    "failed_at" varchar(19) NOT NULL
);
CREATE INDEX IF NOT EXISTS "ictq_{failed_jobs}_members_group" ON "ictq_{failed_jobs}_members" ("group_id", "queue", "failed_at", "failed_id");
-- the failures of the last hour per queue: a range of this index alone.
CREATE INDEX IF NOT EXISTS "ictq_{failed_jobs}_members_recent" ON "ictq_{failed_jobs}_members" ("failed_at", "queue");
-- The members counted per group and queue (with the lowest id), kept by every change of the
-- members, so that per-queue and per-group counts cost one row per group, not one per failure.
CREATE TABLE IF NOT EXISTS "ictq_{failed_jobs}_tally" (
    "group_id" varchar(16) NOT NULL,
    "queue" varchar(255) NOT NULL,
    "failures" bigint NOT NULL,
    "first_id" bigint NOT NULL,
    PRIMARY KEY ("group_id", "queue")
);
-- The members' fingerprint (rows, highest id, sum of ids), kept with them; members = -1 until
-- the first change after an upgrade counts it from the members. Its row is also the lock that
-- puts changes of the side tables one after the other.
CREATE TABLE IF NOT EXISTS "ictq_{failed_jobs}_signed" (
    "id" integer PRIMARY KEY NOT NULL,
    "members" bigint NOT NULL,
    "highest" bigint NOT NULL,
    "total" numeric(38, 0) NOT NULL
);
INSERT INTO "ictq_{failed_jobs}_signed" (id, members, highest, total) VALUES (1, -1, 0, 0) ON CONFLICT (id) DO NOTHING;

-- name: triage_fingerprint_failed
SELECT COUNT(*), COALESCE(MAX(id), 0), COALESCE(SUM(id), 0) FROM "{failed_jobs}";

-- The newest failed job's id: one probe of the primary key (new failures, without counting).
-- name: triage_highest_failed
SELECT COALESCE(MAX(id), 0) FROM "{failed_jobs}";

-- name: triage_fingerprint_members
SELECT members, highest, total FROM "ictq_{failed_jobs}_signed" WHERE id = 1;

-- Taken first by every change of the side tables.
-- name: triage_lock
SELECT members, highest, total FROM "ictq_{failed_jobs}_signed" WHERE id = 1 FOR UPDATE;

-- name: triage_scan_members
SELECT COUNT(*), COALESCE(MAX(failed_id), 0), COALESCE(SUM(failed_id), 0) FROM "ictq_{failed_jobs}_members";

-- name: triage_highest_member
SELECT COALESCE(MAX(failed_id), 0) FROM "ictq_{failed_jobs}_members";

-- name: triage_set_fingerprint
UPDATE "ictq_{failed_jobs}_signed" SET members = %(members)s, highest = %(highest)s, total = %(total)s WHERE id = 1;

-- name: triage_tally_clear
DELETE FROM "ictq_{failed_jobs}_tally";

-- name: triage_tally_rebuild
INSERT INTO "ictq_{failed_jobs}_tally" (group_id, queue, failures, first_id)
SELECT group_id, queue, COUNT(*), MIN(failed_id) FROM "ictq_{failed_jobs}_members" GROUP BY group_id, queue;

-- name: triage_members_of
SELECT failed_id, group_id, queue FROM "ictq_{failed_jobs}_members" WHERE failed_id = ANY(%(ids)s);

-- A walk over a window of ids (after, upto]: both sides bounded, so that no page costs more
-- than its window whatever the size of the tables.
-- name: triage_unsigned
SELECT f.id, f.uuid, f.connection, f.queue, f.payload, f.exception, f.failed_at FROM "{failed_jobs}" AS f
WHERE f.id > %(after)s AND f.id <= %(upto)s
  AND NOT EXISTS (SELECT 1 FROM "ictq_{failed_jobs}_members" AS m
                  WHERE m.failed_id = f.id AND m.failed_id > %(after)s AND m.failed_id <= %(upto)s)
ORDER BY f.id LIMIT %(limit)s;

-- name: triage_orphans
SELECT m.failed_id FROM "ictq_{failed_jobs}_members" AS m
WHERE m.failed_id > %(after)s AND m.failed_id <= %(upto)s
  AND NOT EXISTS (SELECT 1 FROM "{failed_jobs}" AS f WHERE f.id = m.failed_id AND f.id > %(after)s AND f.id <= %(upto)s)
ORDER BY m.failed_id LIMIT %(limit)s;

-- name: triage_forget
DELETE FROM "ictq_{failed_jobs}_members" WHERE failed_id = ANY(%(ids)s);

-- name: triage_forget_empty_groups
DELETE FROM "ictq_{failed_jobs}_groups" WHERE group_id NOT IN (SELECT group_id FROM "ictq_{failed_jobs}_tally");

-- name: triage_tally_add
INSERT INTO "ictq_{failed_jobs}_tally" (group_id, queue, failures, first_id)
VALUES (%(group_id)s, %(queue)s, %(failures)s, %(first_id)s)
ON CONFLICT (group_id, queue) DO UPDATE SET failures = "ictq_{failed_jobs}_tally".failures + EXCLUDED.failures,
    first_id = LEAST("ictq_{failed_jobs}_tally".first_id, EXCLUDED.first_id);

-- A group's lowest id again, when its lowest member went (one range of the members' index).
-- name: triage_tally_sub
UPDATE "ictq_{failed_jobs}_tally" SET failures = failures - %(failures)s,
    first_id = CASE WHEN first_id = %(lowest)s
                    THEN COALESCE((SELECT MIN(m.failed_id) FROM "ictq_{failed_jobs}_members" AS m
                                   WHERE m.group_id = %(group_id)s AND m.queue = %(queue)s), 0)
                    ELSE first_id END
WHERE group_id = %(group_id)s AND queue = %(queue)s;

-- name: triage_tally_drop_empty
DELETE FROM "ictq_{failed_jobs}_tally" WHERE failures <= 0;

-- name: triage_recent_totals
SELECT queue, COUNT(*) FROM "ictq_{failed_jobs}_members" WHERE failed_at >= %(since)s GROUP BY queue;

-- name: triage_queue_totals
SELECT queue, SUM(failures) FROM "ictq_{failed_jobs}_tally" GROUP BY queue;

-- name: triage_put_group
INSERT INTO "ictq_{failed_jobs}_groups" (group_id, job, signature) VALUES (%(group_id)s, %(job)s, %(signature)s)
ON CONFLICT (group_id) DO NOTHING;

-- name: triage_put_member
INSERT INTO "ictq_{failed_jobs}_members" (failed_id, group_id, queue, failed_at)
VALUES (%(failed_id)s, %(group_id)s, %(queue)s, %(failed_at)s)
ON CONFLICT (failed_id) DO NOTHING;

-- name: triage_all_groups
SELECT group_id, job, signature FROM "ictq_{failed_jobs}_groups";

-- Per group and queue: the tally, and the first and last failure (two probes of the members' index:
-- ORDER BY ... LIMIT 1, which MariaDB, unlike a correlated MIN, stops at the first entry).
-- name: triage_counts
SELECT t.group_id, t.queue, t.failures,
       (SELECT m.failed_at FROM "ictq_{failed_jobs}_members" AS m WHERE m.group_id = t.group_id AND m.queue = t.queue
        ORDER BY m.failed_at ASC LIMIT 1),
       (SELECT m.failed_at FROM "ictq_{failed_jobs}_members" AS m WHERE m.group_id = t.group_id AND m.queue = t.queue
        ORDER BY m.failed_at DESC LIMIT 1),
       t.first_id
FROM "ictq_{failed_jobs}_tally" AS t
WHERE (%(queue)s = '' OR t.queue = %(queue)s);

-- name: triage_group_rows
SELECT f.id, f.uuid, f.connection, f.queue, f.payload, f.exception, f.failed_at
FROM "ictq_{failed_jobs}_members" AS m JOIN "{failed_jobs}" AS f ON f.id = m.failed_id
WHERE m.group_id = %(group_id)s AND m.failed_id > %(after)s AND (%(queue)s = '' OR m.queue = %(queue)s)
ORDER BY m.failed_id LIMIT %(limit)s;

-- The queues that have jobs, one index probe per queue (a loose scan of the queue index).
-- name: queue_names
WITH RECURSIVE names (queue) AS (
    SELECT MIN(queue) FROM "{jobs}"
    UNION ALL
    SELECT (SELECT MIN(j.queue) FROM "{jobs}" AS j WHERE j.queue > names.queue) FROM names WHERE names.queue IS NOT NULL
)
SELECT queue FROM names WHERE queue IS NOT NULL;
