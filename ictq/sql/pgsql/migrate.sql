-- Serialising `ictq migrate`: the schema runs between migrate_lock and migrate_unlock, in one
-- transaction (PostgreSQL's DDL is transactional). The lock is a transaction-level advisory
-- lock of this database, released by the COMMIT, so migrate_unlock only answers 1.

-- name: migrate_lock
SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtext('ictq_migrate'))) AS locked;

-- name: migrate_unlock
SELECT 1;
