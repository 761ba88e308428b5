#!/usr/bin/env bash
# The demo: a throw-away ICT app in ./demo on the embedded default (SQLite), a few jobs
# dispatched through the queue and drained by a real worker, then what ops would look at.
set -euo pipefail
cd "$(dirname "$0")/../.."
ictq=".venv/bin/ictq"
app=demo
rm -rf "$app" && mkdir -p "$app"
cp examples/demo/jobs.py "$app/jobs.py"
cat > "$app/.env" <<'ENV'
APP_NAME=ICT
QUEUE_CONNECTION=database
DB_CONNECTION=sqlite
DB_DATABASE=database/database.sqlite
DB_QUEUE=default
DB_QUEUE_RETRY_AFTER=90
ICTQ_JOBS=jobs
ENV
chmod 0640 "$app/.env"
cd "$app"
../$ictq migrate
for name in Анна Boris Chen; do
  ../$ictq dispatch demo.greet --data "{\"name\": \"$name\"}"
done
../$ictq dispatch demo.unreliable --data '{"code": 503}'
echo "--- ictq work --stop-when-empty (retries wait for their backoff, so run until failures settle)"
../$ictq work --stop-when-empty --sleep 0.2
sleep 1.2
../$ictq work --stop-when-empty --sleep 0.2
echo "--- storage/logs/queue.log"
cat storage/logs/queue.log
echo "--- failed_jobs"
sqlite3 database/database.sqlite "SELECT id, uuid, queue, substr(exception, 1, 80) FROM failed_jobs" 2>/dev/null \
  || python3 -c "import sqlite3; [print(r) for r in sqlite3.connect('database/database.sqlite').execute('SELECT id, uuid, queue, substr(exception, 1, 80) FROM failed_jobs')]"
