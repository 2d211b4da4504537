#!/bin/sh
# Torn-tail-safe start for the ledger's Redis (docker-compose.yml uses it; operators of their own
# Redis can run the same before redis-server). Mirrors src/redis/aof-repair.ts:
#   - Redis must run with `aof-load-truncated no`, or it loads the complete commands of a torn
#     MULTI block: half a transfer. This script passes that flag.
#   - Before starting, it checks the multi-part AOF. If only the tail of the newest incremental
#     file is damaged by a truncation (or is zero-filled), and by at most MAX_CUT bytes, it backs
#     the AOF directory up and cuts the tail with `redis-check-aof --fix`, saying what was cut.
#   - Any other damage: it refuses to start, touching nothing. A human decides.
# Usage: entrypoint.sh [redis-server arguments...]   Env: REDIS_DATA_DIR (default /data).
set -eu

DATA_DIR=${REDIS_DATA_DIR:-/data}
AOF_DIR="$DATA_DIR/appendonlydir"
MANIFEST="$AOF_DIR/appendonly.aof.manifest"
MAX_CUT=${AOF_TORN_TAIL_BYTES_MAX:-4194304} # same as limits.AOF_TORN_TAIL_BYTES_MAX

start() {
  exec redis-server "$@" --dir "$DATA_DIR" --appendonly yes --appenddirname appendonlydir \
    --appendfilename appendonly.aof --aof-load-truncated no
}

[ -f "$MANIFEST" ] || start "$@"

report=$(redis-check-aof "$MANIFEST" 2>&1) && start "$@"

last=$(printf '%s\n' "$report" | grep 'AOF analyzed:' | tail -n 1)
file=$(printf '%s\n' "$last" | sed -n 's/.*filename=\([^,]*\),.*/\1/p')
ok_up_to=$(printf '%s\n' "$last" | sed -n 's/.*ok_up_to=\([0-9]*\),.*/\1/p')
diff=$(printf '%s\n' "$last" | sed -n 's/.*diff=\([0-9]*\).*/\1/p')
newest=$(grep ' type i$' "$MANIFEST" | tail -n 1 | sed -n 's/^file \([^ ]*\) .*/\1/p')

refuse() {
  echo "entrypoint: the AOF is damaged other than in the tail of its newest file ($1);" \
    "not cutting it automatically. Inspect: redis-check-aof $MANIFEST" >&2
  printf '%s\n' "$report" >&2
  exit 1
}

[ -n "$file" ] && [ -n "$diff" ] && [ -n "$ok_up_to" ] || refuse "checker gave no location"
[ "$file" = "$newest" ] || refuse "damage in $file, newest is $newest"
[ "$diff" -le "$MAX_CUT" ] || refuse "$diff damaged bytes exceed $MAX_CUT"
if ! printf '%s\n' "$report" | grep -Eq 'Reached EOF|Expected to read [0-9]+ bytes, got'; then
  nonzero=$(tail -c "$diff" "$AOF_DIR/$file" | tr -d '\000' | wc -c)
  [ "$nonzero" -eq 0 ] || refuse "bytes that are not a torn tail"
fi

backup="$DATA_DIR/aof-backup-$(date -u +%Y%m%dT%H%M%SZ)"
cp -a "$AOF_DIR" "$backup"
echo "entrypoint: torn AOF tail in $file: cutting $diff bytes after offset $ok_up_to" \
  "(original files kept in $backup)" >&2
echo y | redis-check-aof --fix "$MANIFEST" >&2
redis-check-aof "$MANIFEST" >/dev/null 2>&1 || refuse "still invalid after --fix"
start "$@"
