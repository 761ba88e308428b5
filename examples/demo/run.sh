#!/usr/bin/env bash
# The demo: a throw-away ICT app in ./demo on the embedded default (SQLite), a local SMTP sink
# on loopback, a worker started by the seed's queue_manager.sh, and the seed's test e-mails
# (password reset, account activation) sent through the queue. Then what ops would look at.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
bin="$repo/.venv/bin"
app="$repo/demo"
port=${DEMO_SMTP_PORT:-2525}

rm -rf "$app" && mkdir -p "$app"
cp examples/demo/jobs.py "$app/jobs.py"
cp queue_manager.sh "$app/queue_manager.sh"
cat > "$app/.env" <<ENV
APP_NAME=ICT
APP_URL=http://localhost:8000
APP_LOCALE=ru
QUEUE_CONNECTION=database
DB_CONNECTION=sqlite
DB_DATABASE=database/database.sqlite
DB_QUEUE=default
DB_QUEUE_RETRY_AFTER=90
ICTQ_JOBS=jobs,ictq.mail
MAIL_MAILER=smtp
MAIL_HOST=127.0.0.1
MAIL_PORT=$port
MAIL_ENCRYPTION=null
MAIL_FROM_ADDRESS=noreply@ict.localhost
MAIL_FROM_NAME="ICT"
ENV
chmod 0640 "$app/.env"

echo "--- a local SMTP sink on 127.0.0.1:$port (messages land in demo/maildir)"
"$bin/python" -m aiosmtpd -n -l "127.0.0.1:$port" -c aiosmtpd.handlers.Mailbox "$app/maildir" &
sink=$!
cleanup() { (cd "$app" && ICTQ="$bin/ictq" ./queue_manager.sh stop >/dev/null 2>&1) || true; kill "$sink" 2>/dev/null || true; }
trap cleanup EXIT
sleep 1

cd "$app"
export ICTQ="$bin/ictq" QUEUE_WORK_ARGS="--sleep 0.5 --max-time=3600"
"$ICTQ" migrate
echo "--- ./queue_manager.sh start"
./queue_manager.sh start
"$ICTQ" dispatch demo.greet --data '{"name": "Анна"}'
"$ICTQ" dispatch demo.unreliable --data '{"code": 503}'
echo "--- ./queue_manager.sh test ops@ict.localhost"
./queue_manager.sh test ops@ict.localhost
sleep 2
echo "--- ./queue_manager.sh status"
./queue_manager.sh status || true
echo "--- ictq failed"
"$ICTQ" failed
echo "--- ./queue_manager.sh logs -n 12"
./queue_manager.sh logs -n 12
echo "--- ./queue_manager.sh stop"
./queue_manager.sh stop
echo "--- mail received by the sink"
"$bin/python" - "$app/maildir" <<'PY'
import mailbox, sys
from email.header import decode_header, make_header
for key, message in mailbox.Maildir(sys.argv[1], create=False).items():
    subject = str(make_header(decode_header(message["Subject"])))
    parts = [part.get_content_type() for part in message.walk() if not part.is_multipart()]
    print(f"to={message['To']}  subject={subject!r}  parts={parts}")
PY
