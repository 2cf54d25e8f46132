#!/usr/bin/env bash
# Restore drill (docs/DEPLOY.md, "Backup and restore"): for each service, a scratch database
# brought to the newest migration and given a marker row, dumped with pg_dump -Fc exactly as the
# backup procedure does, restored with pg_restore into a second scratch database, and compared:
# the same tables, the same row count in each, the same migration, the marker row intact.
# It creates and drops only its own databases (wi_drill_<random>_...), never another.
#
#   scripts/restore-drill.sh                       # every service, on 127.0.0.1:5432 as postgres
#   PGHOST=db PGPORT=5433 scripts/restore-drill.sh identity
#
# Exit status 0 when every restore matched its original; it prints one line per service.
set -euo pipefail
cd "$(dirname "$0")/.."

export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
WEINTERVENE="${WEINTERVENE:-.venv/bin/weintervene}"
services=("$@")
[ ${#services[@]} -gt 0 ] || services=(identity directory referrals analytics retention)
run_id="wi_drill_$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
work="$(mktemp -d)"
created=()

cleanup() {
  for db in "${created[@]}"; do
    dropdb --if-exists "$db" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# Tables and their row counts, and the migration the database is at.
fingerprint() {
  psql -d "$1" -XAt -v ON_ERROR_STOP=1 <<'SQL'
SELECT 'version ' || version_num FROM alembic_version;
SELECT format('%s %s', c.relname,
              (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND n.nspname = 'public' ORDER BY c.relname;
SELECT 'marker ' || md5(payload::text || event_type) FROM outbox_message WHERE id = '00000000-0000-4000-8000-00000000d211';
SQL
}

status=0
for service in "${services[@]}"; do
  source_db="${run_id}_${service}"
  restored_db="${run_id}_${service}_restored"
  createdb "$source_db" && created+=("$source_db")
  # The service's own migrations make the schema (development mode: no real secret needed here).
    env "WEINTERVENE_${service^^}_DATABASE_URL=postgresql+psycopg2://${PGUSER}@${PGHOST}:${PGPORT}/${source_db}" \
    WEINTERVENE_DEV_MODE=1 WEINTERVENE_DATA_DIR="$work" "$WEINTERVENE" migrate --service "$service" \
    >"$work/$service.migrate.log" 2>&1 || { cat "$work/$service.migrate.log" >&2; exit 1; }
  psql -d "$source_db" -XAq -v ON_ERROR_STOP=1 -c \
    "INSERT INTO outbox_message (id, event_type, payload, created_at, attempts)
     VALUES ('00000000-0000-4000-8000-00000000d211', 'restore_drill', '{\"drill\": \"$run_id\"}', now(), 0)"
  # The backup, as docs/DEPLOY.md takes it, and the restore into an empty database.
  pg_dump -Fc --no-owner -d "$source_db" -f "$work/$service.dump"
  createdb "$restored_db" && created+=("$restored_db")
  pg_restore --no-owner --exit-on-error -d "$restored_db" "$work/$service.dump"
  fingerprint "$source_db" > "$work/$service.before"
  fingerprint "$restored_db" > "$work/$service.after"
  if ! grep -q '^marker ' "$work/$service.after"; then
    echo "$service: FAILED (the marker row is missing after the restore)"; status=1
  elif diff -u "$work/$service.before" "$work/$service.after"; then
    echo "$service: restored $(grep -c . "$work/$service.after") facts identical ($(head -1 "$work/$service.after"))"
  else
    echo "$service: FAILED (the restore differs, above)"; status=1
  fi
done
exit $status
