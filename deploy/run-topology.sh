#!/usr/bin/env bash
# Start the production topology on this machine, in the foreground, until Ctrl-C:
#   a PostgreSQL store, gunicorn serving app:server with N workers, and ONE scheduler.
#
#   deploy/run-topology.sh                      # demo borough source, store DB csc_dashboard
#   WORKERS=4 PORT=8050 deploy/run-topology.sh
#   DASHBOARD_SOURCE_URL=postgresql+psycopg://reader@replica/frameworki deploy/run-topology.sh
#
# Settings (environment): PGURL (server for the store, default postgresql+psycopg://postgres@
# 127.0.0.1:5432), STORE_DB (default csc_dashboard; created if missing), WORKERS (default 4),
# PORT (default 8050), and any DASHBOARD_* variable. Without DASHBOARD_SOURCE_URL the demo
# borough is built into data/demo.sqlite (first run only) and demo mode is on (users: demo).
set -euo pipefail
cd "$(dirname "$0")/.."

PGURL=${PGURL:-postgresql+psycopg://postgres@127.0.0.1:5432}
STORE_DB=${STORE_DB:-csc_dashboard}
WORKERS=${WORKERS:-4}
PORT=${PORT:-8050}
export DASHBOARD_STORE_URL=${DASHBOARD_STORE_URL:-$PGURL/$STORE_DB}
export PYTHONUNBUFFERED=1

if [[ -z "${DASHBOARD_SOURCE_URL:-}" ]]; then
  export DASHBOARD_SOURCE_URL=sqlite:///data/demo.sqlite
  export DASHBOARD_DEMO=${DASHBOARD_DEMO:-true}
  if [[ ! -f data/demo.sqlite ]]; then
    echo "building the demo borough into data/demo.sqlite (first run only)" >&2
    csc-dashboard demo-data --url "$DASHBOARD_SOURCE_URL" --store-url "$DASHBOARD_STORE_URL"
  fi
fi

# The store database, if the server does not have it yet (tables are made by the processes).
python - "$DASHBOARD_STORE_URL" <<'PY'
import sys
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
url = make_url(sys.argv[1])
if url.get_backend_name() == "postgresql":
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}):
            conn.exec_driver_sql(f'CREATE DATABASE "{url.database}"')  # name from our own setting
            print(f"created store database {url.database}", file=sys.stderr)
    admin.dispose()
PY

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait
}
trap stop INT TERM EXIT

csc-dashboard scheduler &
pids+=($!)
gunicorn -c deploy/gunicorn.conf.py -w "$WORKERS" -b "127.0.0.1:$PORT" app:server &
pids+=($!)
echo "csc-dashboard: http://127.0.0.1:$PORT (health: /health); store $DASHBOARD_STORE_URL;" \
     "scheduler pid ${pids[0]}, gunicorn pid ${pids[1]}. Ctrl-C stops both." >&2
wait -n
