-- The Laravel application's cache table (its database cache store), where Laravel keeps the
-- queue signals (queue:restart, queue:pause). Laravel creates it (php artisan cache:table).

-- name: cache_get
SELECT "value", "expiration" FROM "{cache}" WHERE "key" = :key;

-- name: cache_put
INSERT INTO "{cache}" ("key", "value", "expiration") VALUES (:key, :value, :expiration)
ON CONFLICT ("key") DO UPDATE SET "value" = excluded."value", "expiration" = excluded."expiration";

-- name: cache_forget
DELETE FROM "{cache}" WHERE "key" = :key;
