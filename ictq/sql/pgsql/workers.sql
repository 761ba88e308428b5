-- Worker heartbeats: one row per running worker process, refreshed every few seconds.

-- name: schema
CREATE TABLE IF NOT EXISTS "ictq_workers" (
    "id" varchar(191) PRIMARY KEY NOT NULL,
    "name" varchar(191) NOT NULL,
    "host" varchar(191) NOT NULL,
    "pid" integer NOT NULL,
    "queues" varchar(1000) NOT NULL,
    "state" varchar(16) NOT NULL,
    "started_at" integer NOT NULL,
    "beat_at" integer NOT NULL,
    "job_id" bigint NULL,
    "job_attempts" integer NULL,
    "job_name" varchar(191) NULL,
    "held" text NULL,
    "processed" bigint NOT NULL,
    "failed" bigint NOT NULL
);

-- name: worker_beat
INSERT INTO "ictq_workers" (id, name, host, pid, queues, state, started_at, beat_at, job_id, job_attempts, job_name,
                            held, processed, failed)
VALUES (%(id)s, %(name)s, %(host)s, %(pid)s, %(queues)s, %(state)s, %(started_at)s, %(now)s, %(job_id)s, %(job_attempts)s, %(job_name)s,
        %(held)s, %(processed)s, %(failed)s)
ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, beat_at = EXCLUDED.beat_at, job_id = EXCLUDED.job_id,
    job_attempts = EXCLUDED.job_attempts, job_name = EXCLUDED.job_name, held = EXCLUDED.held, processed = EXCLUDED.processed,
    failed = EXCLUDED.failed;

-- name: worker_all
SELECT id, name, host, pid, queues, state, started_at, beat_at, job_id, job_attempts, job_name, processed, failed,
       held
FROM "ictq_workers" ORDER BY host, started_at, pid;

-- name: worker_mark
UPDATE "ictq_workers" SET state = %(state)s WHERE id = %(id)s AND state = 'alive';

-- name: worker_forget_old
DELETE FROM "ictq_workers" WHERE state <> 'alive' AND beat_at < %(before)s;

-- name: worker_leave
DELETE FROM "ictq_workers" WHERE id = %(id)s;

-- Per-worker job statistics (cumulative), written with the heartbeat; see ictq/db/stats.py.
-- name: schema
CREATE TABLE IF NOT EXISTS "ictq_worker_stats" (
    "worker_id" varchar(191) NOT NULL,
    "job" varchar(191) NOT NULL,
    "outcome" varchar(16) NOT NULL,
    "count" bigint NOT NULL,
    "duration_sum" double precision NOT NULL,
    "buckets" varchar(1000) NOT NULL,
    PRIMARY KEY ("worker_id", "job", "outcome")
);

-- name: stats_put
INSERT INTO "ictq_worker_stats" (worker_id, job, outcome, count, duration_sum, buckets)
VALUES (%(worker_id)s, %(job)s, %(outcome)s, %(count)s, %(duration_sum)s, %(buckets)s)
ON CONFLICT (worker_id, job, outcome) DO UPDATE SET count = EXCLUDED.count, duration_sum = EXCLUDED.duration_sum,
    buckets = EXCLUDED.buckets;

-- name: stats_all
SELECT worker_id, job, outcome, count, duration_sum, buckets FROM "ictq_worker_stats";

-- name: stats_forget_old
DELETE FROM "ictq_worker_stats" WHERE worker_id IN (SELECT id FROM "ictq_workers" WHERE state <> 'alive' AND beat_at < %(before)s);

-- A worker records the jobs it just claimed, in the claim's own transaction.
-- name: worker_hold
UPDATE "ictq_workers" SET held = %(held)s WHERE id = %(id)s;

-- A dead worker's jobs go back as the lease would take them back (the attempt counts).
-- name: release_many
UPDATE "{jobs}" SET reserved_at = NULL
WHERE attempts = %(attempts)s AND id = ANY(%(ids)s) AND reserved_at IS NOT NULL;
