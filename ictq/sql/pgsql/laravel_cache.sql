-- The Laravel application's cache table (its database cache store), where Laravel keeps the
-- queue signals (queue:restart, queue:pause). Laravel creates it (php artisan cache:table).

-- name: cache_get
SELECT "value", "expiration" FROM "{cache}" WHERE "key" = %(key)s;

-- name: cache_put
INSERT INTO "{cache}" ("key", "value", "expiration") VALUES (%(key)s, %(value)s, %(expiration)s)
ON CONFLICT ("key") DO UPDATE SET "value" = EXCLUDED."value", "expiration" = EXCLUDED."expiration";

-- name: cache_forget
DELETE FROM "{cache}" WHERE "key" = %(key)s;
