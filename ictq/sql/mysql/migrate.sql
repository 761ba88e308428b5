-- Serialising `ictq migrate`: the schema runs between migrate_lock and migrate_unlock. DDL
-- commits on its own in MySQL, so the lock is a named lock of the session (per database, waited
-- for up to 60 seconds): 1 when taken, 0 on a timeout.

-- name: migrate_lock
SELECT GET_LOCK(CONCAT('ictq_migrate_', MD5(DATABASE())), 60);

-- name: migrate_unlock
SELECT RELEASE_LOCK(CONCAT('ictq_migrate_', MD5(DATABASE())));
