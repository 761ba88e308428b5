-- Serialising `ictq migrate`: the schema runs between migrate_lock and migrate_unlock, in one
-- transaction. On SQLite that transaction's BEGIN IMMEDIATE is the lock (one writer at a time),
-- so both statements only answer 1 (lock held).

-- name: migrate_lock
SELECT 1;

-- name: migrate_unlock
SELECT 1;
