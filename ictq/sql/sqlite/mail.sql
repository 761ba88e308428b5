-- ictq.mail on SQLite: the sent-ledger (one row per message handed to the mail server, keyed
-- by its Message-ID, written before the job row is deleted) and the look-ups of test-email.

-- name: schema
CREATE TABLE IF NOT EXISTS "ictq_mail_sent" (
    "message_id" varchar NOT NULL PRIMARY KEY,
    "job_uuid" varchar NOT NULL,
    "notification" varchar NOT NULL,
    "recipient" varchar NOT NULL,
    "sent_at" integer NOT NULL
);
CREATE INDEX IF NOT EXISTS "ictq_mail_sent_job_uuid_index" ON "ictq_mail_sent" ("job_uuid");
CREATE INDEX IF NOT EXISTS "ictq_mail_sent_sent_at_index" ON "ictq_mail_sent" ("sent_at");

-- name: mail_sent_at
SELECT sent_at FROM "ictq_mail_sent" WHERE message_id = :message_id;

-- name: mail_mark_sent
INSERT INTO "ictq_mail_sent" (message_id, job_uuid, notification, recipient, sent_at)
VALUES (:message_id, :job_uuid, :notification, :recipient, :sent_at)
ON CONFLICT (message_id) DO NOTHING;

-- name: mail_sent_by_uuid
SELECT sent_at FROM "ictq_mail_sent" WHERE job_uuid = :job_uuid;

-- name: mail_prune
DELETE FROM "ictq_mail_sent" WHERE sent_at < :before;

-- name: mail_check_ledger
SELECT message_id, job_uuid, notification, recipient, sent_at FROM "ictq_mail_sent" WHERE 1 = 0;

-- name: mail_failed_reason
SELECT exception FROM "{failed_jobs}" WHERE uuid = :uuid;

-- name: mail_job_attempts
SELECT attempts, reserved_at FROM "{jobs}" WHERE id = :id;
