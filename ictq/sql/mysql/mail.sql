-- ictq.mail on MySQL and MariaDB: the sent-ledger (one row per message handed to the mail
-- server, keyed by its Message-ID, written before the job row is deleted) and the look-ups of
-- test-email.

-- name: schema
CREATE TABLE IF NOT EXISTS `ictq_mail_sent` (
    `message_id` varchar(255) CHARACTER SET ascii NOT NULL PRIMARY KEY,
    `job_uuid` varchar(64) CHARACTER SET ascii NOT NULL,
    `notification` varchar(255) NOT NULL,
    `recipient` varchar(255) NOT NULL,
    `sent_at` int unsigned NOT NULL,
    KEY `ictq_mail_sent_job_uuid_index` (`job_uuid`),
    KEY `ictq_mail_sent_sent_at_index` (`sent_at`)
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- name: mail_sent_at
SELECT sent_at FROM `ictq_mail_sent` WHERE message_id = %(message_id)s;

-- name: mail_mark_sent
INSERT IGNORE INTO `ictq_mail_sent` (message_id, job_uuid, notification, recipient, sent_at)
VALUES (%(message_id)s, %(job_uuid)s, %(notification)s, %(recipient)s, %(sent_at)s);

-- name: mail_sent_by_uuid
SELECT sent_at FROM `ictq_mail_sent` WHERE job_uuid = %(job_uuid)s;

-- name: mail_prune
DELETE FROM `ictq_mail_sent` WHERE sent_at < %(before)s;

-- name: mail_check_ledger
SELECT message_id, job_uuid, notification, recipient, sent_at FROM `ictq_mail_sent` WHERE 1 = 0;

-- name: mail_failed_reason
SELECT exception FROM `{failed_jobs}` WHERE uuid = %(uuid)s;

-- name: mail_job_attempts
SELECT attempts, reserved_at FROM `{jobs}` WHERE id = %(id)s;
