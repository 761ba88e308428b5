-- Per-minute history of job outcomes (see ictq/db/history.py): one row per (minute, queue, job),
-- which every worker adds its counts to with its heartbeat; runtime buckets r0..r13 (the upper
-- bounds of ictq.db.stats.DURATION_BUCKETS) and wait buckets w0..w11 (ictq.db.history.WAIT_BUCKETS),
-- one column each so that SQL can sum them. A per-minute snapshot of the queues' sizes, written
-- by the one worker that first marks the minute.

-- name: schema
CREATE TABLE IF NOT EXISTS `ictq_history` (
    `minute` integer NOT NULL,
    `queue` varchar(191) NOT NULL,
    `job` varchar(191) NOT NULL,
    `processed` bigint NOT NULL,
    `failed` bigint NOT NULL,
    `released` bigint NOT NULL,
    `runtime_sum` double NOT NULL,
    `wait_sum` double NOT NULL,
    `r0` integer NOT NULL DEFAULT 0,
    `r1` integer NOT NULL DEFAULT 0,
    `r2` integer NOT NULL DEFAULT 0,
    `r3` integer NOT NULL DEFAULT 0,
    `r4` integer NOT NULL DEFAULT 0,
    `r5` integer NOT NULL DEFAULT 0,
    `r6` integer NOT NULL DEFAULT 0,
    `r7` integer NOT NULL DEFAULT 0,
    `r8` integer NOT NULL DEFAULT 0,
    `r9` integer NOT NULL DEFAULT 0,
    `r10` integer NOT NULL DEFAULT 0,
    `r11` integer NOT NULL DEFAULT 0,
    `r12` integer NOT NULL DEFAULT 0,
    `r13` integer NOT NULL DEFAULT 0,
    `w0` integer NOT NULL DEFAULT 0,
    `w1` integer NOT NULL DEFAULT 0,
    `w2` integer NOT NULL DEFAULT 0,
    `w3` integer NOT NULL DEFAULT 0,
    `w4` integer NOT NULL DEFAULT 0,
    `w5` integer NOT NULL DEFAULT 0,
    `w6` integer NOT NULL DEFAULT 0,
    `w7` integer NOT NULL DEFAULT 0,
    `w8` integer NOT NULL DEFAULT 0,
    `w9` integer NOT NULL DEFAULT 0,
    `w10` integer NOT NULL DEFAULT 0,
    `w11` integer NOT NULL DEFAULT 0,
    PRIMARY KEY (`minute`, `queue`, `job`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
-- The same sums per hour (minute = the hour's start), for the week's chart and the names.
CREATE TABLE IF NOT EXISTS `ictq_history_hourly` (
    `minute` integer NOT NULL,
    `queue` varchar(191) NOT NULL,
    `job` varchar(191) NOT NULL,
    `processed` bigint NOT NULL,
    `failed` bigint NOT NULL,
    `released` bigint NOT NULL,
    `runtime_sum` double NOT NULL,
    `wait_sum` double NOT NULL,
    `r0` integer NOT NULL DEFAULT 0,
    `r1` integer NOT NULL DEFAULT 0,
    `r2` integer NOT NULL DEFAULT 0,
    `r3` integer NOT NULL DEFAULT 0,
    `r4` integer NOT NULL DEFAULT 0,
    `r5` integer NOT NULL DEFAULT 0,
    `r6` integer NOT NULL DEFAULT 0,
    `r7` integer NOT NULL DEFAULT 0,
    `r8` integer NOT NULL DEFAULT 0,
    `r9` integer NOT NULL DEFAULT 0,
    `r10` integer NOT NULL DEFAULT 0,
    `r11` integer NOT NULL DEFAULT 0,
    `r12` integer NOT NULL DEFAULT 0,
    `r13` integer NOT NULL DEFAULT 0,
    `w0` integer NOT NULL DEFAULT 0,
    `w1` integer NOT NULL DEFAULT 0,
    `w2` integer NOT NULL DEFAULT 0,
    `w3` integer NOT NULL DEFAULT 0,
    `w4` integer NOT NULL DEFAULT 0,
    `w5` integer NOT NULL DEFAULT 0,
    `w6` integer NOT NULL DEFAULT 0,
    `w7` integer NOT NULL DEFAULT 0,
    `w8` integer NOT NULL DEFAULT 0,
    `w9` integer NOT NULL DEFAULT 0,
    `w10` integer NOT NULL DEFAULT 0,
    `w11` integer NOT NULL DEFAULT 0,
    PRIMARY KEY (`minute`, `queue`, `job`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE TABLE IF NOT EXISTS `ictq_history_sizes` (
    `minute` integer NOT NULL,
    `queue` varchar(191) NOT NULL,
    `pending` bigint NOT NULL,
    `delayed` bigint NOT NULL,
    `reserved` bigint NOT NULL,
    PRIMARY KEY (`minute`, `queue`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE TABLE IF NOT EXISTS `ictq_history_marks` (
    `minute` integer PRIMARY KEY NOT NULL
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- A worker's counts since its last beat, added to the minute's row (workers everywhere add to it).
-- name: history_add
INSERT INTO `ictq_history` (minute, queue, job, processed, failed, released, runtime_sum, wait_sum,
    r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11)
VALUES (
        %(minute)s, %(queue)s, %(job)s, %(processed)s, %(failed)s, %(released)s, %(runtime_sum)s,
        %(wait_sum)s, %(r0)s, %(r1)s, %(r2)s, %(r3)s, %(r4)s, %(r5)s, %(r6)s, %(r7)s, %(r8)s, %(r9)s, %(r10)s,
        %(r11)s, %(r12)s, %(r13)s, %(w0)s, %(w1)s, %(w2)s, %(w3)s, %(w4)s, %(w5)s, %(w6)s, %(w7)s, %(w8)s,
        %(w9)s, %(w10)s, %(w11)s)
ON DUPLICATE KEY UPDATE
    processed = processed + VALUES(processed), failed = failed + VALUES(failed),
    released = released + VALUES(released), runtime_sum = runtime_sum + VALUES(runtime_sum),
    wait_sum = wait_sum + VALUES(wait_sum), r0 = r0 + VALUES(r0), r1 = r1 + VALUES(r1), r2 = r2 + VALUES(r2),
    r3 = r3 + VALUES(r3), r4 = r4 + VALUES(r4), r5 = r5 + VALUES(r5), r6 = r6 + VALUES(r6),
    r7 = r7 + VALUES(r7), r8 = r8 + VALUES(r8), r9 = r9 + VALUES(r9), r10 = r10 + VALUES(r10),
    r11 = r11 + VALUES(r11), r12 = r12 + VALUES(r12), r13 = r13 + VALUES(r13), w0 = w0 + VALUES(w0),
    w1 = w1 + VALUES(w1), w2 = w2 + VALUES(w2), w3 = w3 + VALUES(w3), w4 = w4 + VALUES(w4),
    w5 = w5 + VALUES(w5), w6 = w6 + VALUES(w6), w7 = w7 + VALUES(w7), w8 = w8 + VALUES(w8),
    w9 = w9 + VALUES(w9), w10 = w10 + VALUES(w10), w11 = w11 + VALUES(w11);

-- The first worker to mark a minute (one row per minute: the others insert nothing) writes its sizes.
-- name: history_mark
INSERT IGNORE INTO `ictq_history_marks` (minute) VALUES (%(minute)s);

-- name: history_sizes_put
INSERT INTO `ictq_history_sizes` (minute, queue, pending, `delayed`, reserved)
VALUES (%(minute)s, %(queue)s, %(pending)s, %(delayed)s, %(reserved)s)
ON DUPLICATE KEY UPDATE pending = VALUES(pending), `delayed` = VALUES(`delayed`), reserved = VALUES(reserved);

-- The history summed per step: a step starts at since + k * step (minute >= since, a range of the key).
-- name: history_series
SELECT minute - ((minute - %(since)s) %% %(step)s) AS start,
       SUM(processed), SUM(failed), SUM(released), SUM(runtime_sum), SUM(wait_sum), SUM(r0), SUM(r1), SUM(r2),
       SUM(r3), SUM(r4), SUM(r5), SUM(r6), SUM(r7), SUM(r8), SUM(r9), SUM(r10), SUM(r11), SUM(r12), SUM(r13),
       SUM(w0), SUM(w1), SUM(w2), SUM(w3), SUM(w4), SUM(w5), SUM(w6), SUM(w7), SUM(w8), SUM(w9), SUM(w10),
       SUM(w11)
FROM `ictq_history`
WHERE minute >= %(since)s AND minute < %(until)s
  AND (%(any_queue)s = 1 OR queue = %(queue)s) AND (%(any_job)s = 1 OR job = %(job)s)
GROUP BY 1
ORDER BY 1;

-- The history summed per queue over [since, until).
-- name: history_totals
SELECT queue,
       SUM(processed), SUM(failed), SUM(released), SUM(runtime_sum), SUM(wait_sum), SUM(r0), SUM(r1), SUM(r2),
       SUM(r3), SUM(r4), SUM(r5), SUM(r6), SUM(r7), SUM(r8), SUM(r9), SUM(r10), SUM(r11), SUM(r12), SUM(r13),
       SUM(w0), SUM(w1), SUM(w2), SUM(w3), SUM(w4), SUM(w5), SUM(w6), SUM(w7), SUM(w8), SUM(w9), SUM(w10),
       SUM(w11)
FROM `ictq_history`
WHERE minute >= %(since)s AND minute < %(until)s
GROUP BY queue
ORDER BY queue;

-- name: history_queues
SELECT DISTINCT queue FROM `ictq_history_hourly` WHERE minute >= %(since)s ORDER BY queue;

-- name: history_jobs
SELECT DISTINCT job FROM `ictq_history_hourly` WHERE minute >= %(since)s ORDER BY job;

-- The first and last minutes with a sizes snapshot in [since, until).
-- name: history_marks_range
SELECT MIN(minute), MAX(minute) FROM `ictq_history_marks` WHERE minute >= %(since)s AND minute < %(until)s;

-- name: history_sizes_at
SELECT queue, pending, `delayed`, reserved FROM `ictq_history_sizes` WHERE minute = %(minute)s ORDER BY queue;

-- name: history_prune
DELETE FROM `ictq_history` WHERE minute < %(before)s;

-- name: history_prune_sizes
DELETE FROM `ictq_history_sizes` WHERE minute < %(before)s;

-- name: history_prune_marks
DELETE FROM `ictq_history_marks` WHERE minute < %(before)s;

-- The hourly roll-up: the same counts added to the hour's row.
-- name: history_add_hourly
INSERT INTO `ictq_history_hourly` (minute, queue, job, processed, failed, released, runtime_sum, wait_sum,
    r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11)
VALUES (
        %(minute)s, %(queue)s, %(job)s, %(processed)s, %(failed)s, %(released)s, %(runtime_sum)s,
        %(wait_sum)s, %(r0)s, %(r1)s, %(r2)s, %(r3)s, %(r4)s, %(r5)s, %(r6)s, %(r7)s, %(r8)s, %(r9)s, %(r10)s,
        %(r11)s, %(r12)s, %(r13)s, %(w0)s, %(w1)s, %(w2)s, %(w3)s, %(w4)s, %(w5)s, %(w6)s, %(w7)s, %(w8)s,
        %(w9)s, %(w10)s, %(w11)s)
ON DUPLICATE KEY UPDATE
    processed = processed + VALUES(processed), failed = failed + VALUES(failed),
    released = released + VALUES(released), runtime_sum = runtime_sum + VALUES(runtime_sum),
    wait_sum = wait_sum + VALUES(wait_sum), r0 = r0 + VALUES(r0), r1 = r1 + VALUES(r1), r2 = r2 + VALUES(r2),
    r3 = r3 + VALUES(r3), r4 = r4 + VALUES(r4), r5 = r5 + VALUES(r5), r6 = r6 + VALUES(r6),
    r7 = r7 + VALUES(r7), r8 = r8 + VALUES(r8), r9 = r9 + VALUES(r9), r10 = r10 + VALUES(r10),
    r11 = r11 + VALUES(r11), r12 = r12 + VALUES(r12), r13 = r13 + VALUES(r13), w0 = w0 + VALUES(w0),
    w1 = w1 + VALUES(w1), w2 = w2 + VALUES(w2), w3 = w3 + VALUES(w3), w4 = w4 + VALUES(w4),
    w5 = w5 + VALUES(w5), w6 = w6 + VALUES(w6), w7 = w7 + VALUES(w7), w8 = w8 + VALUES(w8),
    w9 = w9 + VALUES(w9), w10 = w10 + VALUES(w10), w11 = w11 + VALUES(w11);

-- name: history_series_hourly
SELECT minute - ((minute - %(since)s) %% %(step)s) AS start,
       SUM(processed), SUM(failed), SUM(released), SUM(runtime_sum), SUM(wait_sum), SUM(r0), SUM(r1), SUM(r2),
       SUM(r3), SUM(r4), SUM(r5), SUM(r6), SUM(r7), SUM(r8), SUM(r9), SUM(r10), SUM(r11), SUM(r12), SUM(r13),
       SUM(w0), SUM(w1), SUM(w2), SUM(w3), SUM(w4), SUM(w5), SUM(w6), SUM(w7), SUM(w8), SUM(w9), SUM(w10),
       SUM(w11)
FROM `ictq_history_hourly`
WHERE minute >= %(since)s AND minute < %(until)s
  AND (%(any_queue)s = 1 OR queue = %(queue)s) AND (%(any_job)s = 1 OR job = %(job)s)
GROUP BY 1
ORDER BY 1;

-- name: history_prune_hourly
DELETE FROM `ictq_history_hourly` WHERE minute < %(before)s;
