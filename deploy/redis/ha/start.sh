#!/bin/sh
# Starts one node of the ledger's Sentinel-managed Redis set (docker-compose.yml, profile ha;
# docs/high-availability.md):
#   start.sh redis      a data node: deploy/redis/entrypoint.sh (torn-tail check) then redis-server
#   start.sh sentinel   a Sentinel
# Env: HA_ANNOUNCE_HOST (required: the name other nodes reach this one by, e.g. redis-2),
#   HA_PORT (6379 / 26379), HA_INITIAL_PRIMARY ("host port"; default: the template's
#   `sentinel monitor` line), HA_SECRETS_DIR (/ha-secrets), REDIS_DATA_DIR (/data),
#   LEDGER_ACL_FILE (/deploy/redis/users.acl, rendered by npm run docker:setup).
#
# The set's own users' passwords (replica, sentinel, operator, sentinel-peer, admin:
# deploy/redis/README.md) are made here, once, by whichever node needs one first, and kept in
# the shared secrets volume; nothing outside the set needs them (an operator reads them there:
# docs/high-availability.md). Only their hashes go into the ACL files. Run as root, it writes
# them there, then runs Redis as the image's redis user, as the image's own entrypoint does.
set -eu
# Files Redis writes (its rewritten config holds masterauth, a Sentinel's its passwords): 0600.
umask 077

ROLE=${1:?usage: start.sh redis|sentinel}
HA_DIR=$(cd "$(dirname "$0")" && pwd)
HOST=${HA_ANNOUNCE_HOST:?HA_ANNOUNCE_HOST: the name other nodes reach this one by}
SECRETS=${HA_SECRETS_DIR:-/ha-secrets}
DATA=${REDIS_DATA_DIR:-/data}
LEDGER_ACL=${LEDGER_ACL_FILE:-/deploy/redis/users.acl}
ENTRYPOINT=${REDIS_ENTRYPOINT:-$HA_DIR/../entrypoint.sh}
MONITOR='^sentinel monitor ledger \([^ ]*\) \([0-9]*\) \([0-9]*\)$'
INITIAL=${HA_INITIAL_PRIMARY:-$(sed -n "s/$MONITOR/\\1 \\2/p" "$HA_DIR/sentinel.conf")}

fail() {
  echo "start.sh: $*" >&2
  exit 1
}

# The password of internal user $1: 32 random bytes as hex, made once. `ln` does not replace an
# existing file, so two nodes starting together keep the same one.
secret() {
  file="$SECRETS/$1.password"
  if [ ! -s "$file" ]; then
    mkdir -p "$SECRETS"
    chmod 700 "$SECRETS"
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$file.$$")
    ln "$file.$$" "$file" 2>/dev/null || true
    rm -f "$file.$$"
  fi
  cat "$file"
}

sha256() {
  printf %s "$1" | sha256sum | cut -d ' ' -f 1
}

# The ledger user's hash from the rendered ACL (its password never reaches this set in clear).
LEDGER_HASH=$(sed -n 's/^user ledger on #\([0-9a-f]\{64\}\) .*/\1/p' "$LEDGER_ACL")
[ -n "$LEDGER_HASH" ] || fail "$LEDGER_ACL has no ledger password hash: run npm run docker:setup"

# Redis reads and rewrites its files as the redis user; root only prepares them.
own() {
  chmod 600 "$@"
  if [ "$(id -u)" = 0 ] && command -v gosu > /dev/null; then chown redis:redis "$@"; fi
}

run() {
  if [ "$(id -u)" = 0 ] && command -v gosu > /dev/null; then exec gosu redis "$@"; fi
  exec "$@"
}

start_redis() {
  port=${HA_PORT:-6379}
  replica=$(secret replica)
  sentinel=$(sha256 "$(secret sentinel)")
  operator=$(sha256 "$(secret operator)")
  { cat "$LEDGER_ACL"
    sed -e "s/#REPLACE_WITH_SHA256_HEX_OF_THE_REPLICA_PASSWORD/#$(sha256 "$replica")/" \
      -e "s/#REPLACE_WITH_SHA256_HEX_OF_THE_SENTINEL_PASSWORD/#$sentinel/" \
      -e "s/#REPLACE_WITH_SHA256_HEX_OF_THE_OPERATOR_PASSWORD/#$operator/" \
      "$HA_DIR/users.acl"
  } > "$DATA/users.acl"
  # The role survives restarts: Sentinel rewrites this file (CONFIG REWRITE) when it promotes or
  # demotes the node, so its replicaof line, or its absence, is the role Sentinel gave it last.
  # Everything else is written anew, so that ha.conf's current values apply at every start.
  conf="$DATA/redis.conf"
  if [ -f "$conf" ]; then
    primary=$(sed -n 's/^\(replicaof\|slaveof\) "\{0,1\}\([^" ]*\)"\{0,1\} \([0-9]*\)$/\2 \3/p' \
      "$conf" | tail -n 1)
  elif [ "$INITIAL" = "$HOST $port" ]; then
    primary=''
  else
    primary=$INITIAL
  fi
  { echo "# Written by deploy/redis/ha/start.sh at every start; Sentinel rewrites it."
    echo "include $HA_DIR/ha.conf"
    if [ -n "$primary" ]; then echo "replicaof $primary"; fi
  } > "$conf.new"
  mv "$conf.new" "$conf"
  own "$DATA/users.acl" "$conf"
  echo "start.sh: $HOST:$port starts as ${primary:+a replica of }${primary:-the primary}" >&2
  run /bin/sh "$ENTRYPOINT" "$conf" --port "$port" \
    --replica-announce-ip "$HOST" --replica-announce-port "$port" \
    --masteruser replica --masterauth "$replica" --aclfile "$DATA/users.acl"
}

start_sentinel() {
  port=${HA_PORT:-26379}
  conf="$DATA/sentinel.conf"
  # Sentinel's own file from its first start on: it holds what this Sentinel has learnt.
  if [ ! -f "$conf" ]; then
    { sed -e "s/$MONITOR/sentinel monitor ledger $INITIAL \\3/" "$HA_DIR/sentinel.conf"
      echo "sentinel announce-ip $HOST"
      echo "sentinel auth-pass ledger $(secret sentinel)"
      echo "sentinel sentinel-user sentinel-peer"
      echo "sentinel sentinel-pass $(secret sentinel-peer)"
    } > "$conf.new"
    mv "$conf.new" "$conf"
  fi
  peer=$(sha256 "$(secret sentinel-peer)")
  admin=$(sha256 "$(secret admin)")
  sed -e "s/#REPLACE_WITH_SHA256_HEX_OF_THE_LEDGER_REDIS_PASSWORD/#$LEDGER_HASH/" \
    -e "s/#REPLACE_WITH_SHA256_HEX_OF_THE_SENTINEL_PEER_PASSWORD/#$peer/" \
    -e "s/#REPLACE_WITH_SHA256_HEX_OF_THE_SENTINEL_ADMIN_PASSWORD/#$admin/" \
    "$HA_DIR/sentinel-users.acl" > "$DATA/sentinel-users.acl"
  own "$DATA/sentinel-users.acl" "$conf"
  run redis-server "$conf" --sentinel --port "$port" --aclfile "$DATA/sentinel-users.acl"
}

case "$ROLE" in
  redis) start_redis ;;
  sentinel) start_sentinel ;;
  *) fail "unknown role $ROLE (redis or sentinel)" ;;
esac
