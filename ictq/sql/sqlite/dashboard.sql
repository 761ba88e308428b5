-- The dashboard's users (ictq dashboard user add/list/remove) and its searches; see
-- ictq/db/users.py and ictq/db/search.py.

-- name: schema
CREATE TABLE IF NOT EXISTS "ictq_dashboard_users" (
    "name" varchar(191) PRIMARY KEY NOT NULL,
    "role" varchar(16) NOT NULL,
    "hash" varchar(255) NOT NULL,
    "created_at" integer NOT NULL,
    "updated_at" integer NOT NULL
);

-- name: user_get
SELECT name, role, hash, created_at, updated_at FROM "ictq_dashboard_users" WHERE name = :name;

-- name: user_all
SELECT name, role, hash, created_at, updated_at FROM "ictq_dashboard_users" ORDER BY name;

-- name: user_put
INSERT INTO "ictq_dashboard_users" (name, role, hash, created_at, updated_at)
VALUES (:name, :role, :hash, :now, :now)
ON CONFLICT (name) DO UPDATE SET role = excluded.role, hash = excluded.hash, updated_at = excluded.updated_at;

-- name: user_delete
DELETE FROM "ictq_dashboard_users" WHERE name = :name;

-- Sessions ended by a logout before their cookie expires (the cookie itself cannot be taken back).
-- name: schema
CREATE TABLE IF NOT EXISTS "ictq_dashboard_ended" (
    "sid" varchar(64) PRIMARY KEY NOT NULL,
    "expires_at" integer NOT NULL
);

-- name: session_end
INSERT OR IGNORE INTO "ictq_dashboard_ended" (sid, expires_at) VALUES (:sid, :expires_at);

-- name: session_ended
SELECT 1 FROM "ictq_dashboard_ended" WHERE sid = :sid;

-- name: session_prune
DELETE FROM "ictq_dashboard_ended" WHERE expires_at < :now;

-- Searches read a bounded window of the newest rows (by the primary key), whatever the size of
-- the table: a payload has no column of its own to index.
-- name: search_job_by_id
SELECT id, queue, payload, attempts, reserved_at, available_at, created_at FROM "{jobs}" WHERE id = :id;

-- name: search_jobs
SELECT id, queue, payload, attempts, reserved_at, available_at, created_at FROM "{jobs}"
WHERE id > (SELECT COALESCE(MAX(id), 0) FROM "{jobs}") - :window
  AND (queue = :queue OR instr(payload, :needle) > 0)
ORDER BY id DESC LIMIT :limit;

-- name: search_failed
SELECT id, uuid, connection, queue, payload, exception, failed_at FROM "{failed_jobs}"
WHERE id > (SELECT COALESCE(MAX(id), 0) FROM "{failed_jobs}") - :window
  AND (queue = :queue OR instr(payload, :needle) > 0)
ORDER BY id DESC LIMIT :limit;
