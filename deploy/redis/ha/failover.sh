#!/bin/sh
# A planned failover that loses no acknowledged write (docs/high-availability.md, "A planned
# failover"). In the compose set: docker compose exec sentinel-1 sh /deploy/redis/ha/failover.sh
#
# SENTINEL FAILOVER alone promotes a replica while the old primary still takes writes: until
# Sentinel moves the other replica away, that replica can acknowledge a write (WAIT) that the new
# primary never gets, and it is discarded when the replica resyncs. And Sentinel turns the old
# primary into a replica only some 10 s later; clients still connected to it get NOREPLICAS
# (min-replicas-to-write) until then. So:
#   1. CLIENT PAUSE WRITE on the primary: writes wait (a client whose wait outlasts its timeout
#      gets an unknown outcome and retries; nothing is acknowledged meanwhile);
#   2. wait until every replica has everything the primary wrote;
#   3. SENTINEL FAILOVER, which promotes one of them; wait until the Sentinels name it;
#   4. make the old primary a replica of it at once, as Sentinel would later (REPLICAOF, CONFIG
#      REWRITE so that a restart keeps the role, CLIENT KILL so that its clients reconnect and
#      ask the Sentinels again), then lift the pause.
# Env: HA_SECRETS_DIR (/ha-secrets), HA_SENTINEL (127.0.0.1 26379), HA_PAUSE_MS (10000).
set -eu

SECRETS=${HA_SECRETS_DIR:-/ha-secrets}
PAUSE_MS=${HA_PAUSE_MS:-10000}
set -- ${HA_SENTINEL:-127.0.0.1 26379}
SENTINEL_HOST=$1
SENTINEL_PORT=$2

fail() {
  echo "failover.sh: $*" >&2
  exit 1
}

sentinel() {
  REDISCLI_AUTH=$(cat "$SECRETS/admin.password") redis-cli --no-auth-warning \
    -h "$SENTINEL_HOST" -p "$SENTINEL_PORT" --user admin "$@"
}

# On the old primary, as the data nodes' `operator` user (deploy/redis/README.md).
old_primary() {
  REDISCLI_AUTH=$(cat "$SECRETS/operator.password") redis-cli --no-auth-warning \
    -h "$OLD_HOST" -p "$OLD_PORT" --user operator "$@"
}

field() {
  old_primary INFO replication | tr -d '\r' | sed -n "s/^$1:\(.*\)$/\1/p"
}

# Replicas online that have not acknowledged offset $1 yet (0: all have).
behind() {
  old_primary INFO replication | tr -d '\r' | grep '^slave[0-9]*:' | grep 'state=online' |
    sed -n 's/.*offset=\([0-9]*\).*/\1/p' | awk -v t="$1" '$1 < t' | wc -l
}

address() {
  sentinel SENTINEL get-master-addr-by-name ledger | tr '\n' ' ' | sed 's/ $//'
}

# Retries "$@" every 0.1 s, at most $1 times.
retry() {
  tries=$1
  shift
  until "$@"; do
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || return 1
    sleep 0.1
  done
}

OLD=$(address)
[ -n "$OLD" ] || fail "the Sentinel at $SENTINEL_HOST:$SENTINEL_PORT names no primary"
OLD_HOST=${OLD% *}
OLD_PORT=${OLD#* }
[ "$(field connected_slaves)" -ge 1 ] || fail "$OLD has no replica to fail over to"

old_primary CLIENT PAUSE "$PAUSE_MS" WRITE > /dev/null
# Every write is in the stream up to here; what follows is Sentinel's hellos and pings.
written=$(field master_repl_offset)
echo "failover.sh: writes on $OLD paused for at most $PAUSE_MS ms"
caught_up() { [ "$(behind "$written")" -eq 0 ]; }
if ! retry 50 caught_up; then
  old_primary CLIENT UNPAUSE > /dev/null
  fail "the replicas of $OLD did not catch up within 5 s; nothing changed"
fi
echo "failover.sh: every replica has everything $OLD wrote; SENTINEL FAILOVER"
sentinel SENTINEL FAILOVER ledger > /dev/null
moved() { [ "$(address)" != "$OLD" ]; }
retry 50 moved || fail "the Sentinels still name $OLD after 5 s (writes stay paused until" \
  "$PAUSE_MS ms have passed; see the Sentinels' logs)"
NEW=$(address)
printf 'MULTI\nREPLICAOF %s\nCONFIG REWRITE\nCLIENT KILL TYPE normal\nEXEC\n' "$NEW" |
  old_primary > /dev/null
old_primary CLIENT UNPAUSE > /dev/null
echo "failover.sh: the primary is now $NEW; $OLD is its replica"
