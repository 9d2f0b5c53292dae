# Shared helpers of the integration tests (sourced). Every test gets a private work
# directory, a throw-away redis-server on a unix socket, and librdkafka's mock cluster
# (csmetrics kafka-mock) over TCP; `cleanup` stops them all (installed as an EXIT trap).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BIN:-$ROOT/build}
CSMETRICS=$BIN/csmetrics
CSMETRICSD=$BIN/csmetricsd
EXAMPLE=${EXAMPLE:-$ROOT/../shared/spec/example}
[ -d "$EXAMPLE" ] || EXAMPLE=/work/shared/spec/example
WORK=$(mktemp -d /tmp/csm-it.XXXXXX)
mkdir -p "$WORK/rules"
PIDS=""
PASSED=0
FAILED=0

cleanup() {
    [ -n "${HOLD:-}" ] && sleep "$HOLD"
    for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    if [ "$FAILED" -ne 0 ] || [ -n "${KEEP:-}" ]; then echo "  (work dir kept: $WORK)"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

ok() { PASSED=$((PASSED + 1)); echo "  ok   $*"; }
fail() { FAILED=$((FAILED + 1)); echo "  FAIL $*"; }
finish() { echo "$(basename "$0" .sh): $PASSED passed, $FAILED failed"; [ "$FAILED" -eq 0 ]; }

# wait_for CMD... : retries for up to 30 s
wait_for() {
    i=0
    while ! "$@" >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -gt 300 ] && return 1; sleep 0.1
    done
}

start_redis() { # start_redis NAME [extra redis-server args]
    name=$1; shift
    redis-server --port 0 --unixsocket "$WORK/$name.sock" --save "" --appendonly no \
        --dir "$WORK" "$@" >"$WORK/$name.log" 2>&1 &
    PIDS="$PIDS $!"
    wait_for redis-cli -s "$WORK/$name.sock" ping || { echo "redis did not start"; cat "$WORK/$name.log"; exit 1; }
}

start_kafka() { # start_kafka [--partitions N]
    "$CSMETRICS" kafka-mock --bootstrap-file "$WORK/bootstrap" "$@" >"$WORK/kafka.log" 2>&1 &
    PIDS="$PIDS $!"
    wait_for test -s "$WORK/bootstrap" || { echo "kafka-mock did not start"; cat "$WORK/kafka.log"; exit 1; }
    BROKERS=$(cat "$WORK/bootstrap")
}

write_config() { # write_config FILE GROUP REDIS_URL [extra yaml lines on stdin]
    {
        echo "kafka:"
        echo "  brokers: \"$BROKERS\""
        echo "  group_id: $2"
        echo "  properties: {session.timeout.ms: \"6000\", heartbeat.interval.ms: \"300\", topic.metadata.refresh.interval.ms: \"1000\"}"
        echo "redis:"
        echo "  url: \"$3\""
        echo "rules_dir: $WORK/rules"
        echo "http: {listen: \"\"}"
        cat
    } >"$1"
}

notify_listen() { # notify_listen NAME: a NOTIFY_SOCKET $WORK/NAME.sock; its lines in $WORK/NAME.log
    : >"$WORK/$1.log"
    python3 "$ROOT/tests/integration/notify_listen.py" "$WORK/$1.sock" "$WORK/$1.log" 2>"$WORK/$1.err" &
    PIDS="$PIDS $!"
    wait_for test -S "$WORK/$1.sock"
}

start_daemon() { # start_daemon CONFIG LOG ; sets DAEMON_PID
    "$CSMETRICSD" -c "$1" >>"$2" 2>&1 &
    DAEMON_PID=$!
    PIDS="$PIDS $DAEMON_PID"
}

produce_example() {
    kcat -P -b "$BROKERS" -t cs.chat -K "$(printf '\t')" -l "$EXAMPLE/chat.jsonl"
    kcat -P -b "$BROKERS" -t shop.orders -K "$(printf '\t')" -l "$EXAMPLE/orders.jsonl"
    kcat -P -b "$BROKERS" -t cs.reviews -K "$(printf '\t')" -l "$EXAMPLE/reviews.jsonl"
}

# committed_total SOCK DB: the sum of every partition's stored next offset
committed_total() {
    redis-cli -s "$1" -n "$2" --scan --pattern 'csm:{p:*}:meta' | while read -r k; do
        redis-cli -s "$1" -n "$2" hget "$k" off
    done | awk '$1 > 0 { s += $1 } END { print s + 0 }'
}

# wait_committed SOCK DB N [TIMEOUT_S]: until N messages are committed
wait_committed() {
    t=${4:-60}; i=0
    while [ "$(committed_total "$1" "$2")" -lt "$3" ]; do
        i=$((i + 1)); [ $i -gt $((t * 10)) ] && return 1; sleep 0.1
    done
}

# dump_kpis CONFIG: show --json of every agent and team of every shop, sorted
dump_kpis() {
    sock=$(sed -n 's|.*url: "unix://\([^?"]*\).*|\1|p' "$1")
    db=$(sed -n 's|.*url: "unix://[^?]*?db=\([0-9]*\)".*|\1|p' "$1"); db=${db:-0}
    for shop in $(redis-cli -s "$sock" -n "$db" smembers 'csm:{r}:shops' | sort); do
        "$CSMETRICS" -c "$1" show --shop "$shop" --team --json
        for a in $(redis-cli -s "$sock" -n "$db" smembers "csm:{t:$shop}:agents" | sort); do
            "$CSMETRICS" -c "$1" show --shop "$shop" --agent "$a" --json
        done
    done
}

# pending_total SOCK DB: orders still waiting for attribution (or holding orphans)
pending_total() {
    redis-cli -s "$1" -n "$2" --scan --pattern 'csm:{p:*}:pend' | while read -r k; do
        redis-cli -s "$1" -n "$2" hlen "$k"
    done | awk '{ s += $1 } END { print s + 0 }'
}

# wait_settled SOCK DB N: N messages committed and no order left to attribute
wait_settled() {
    wait_committed "$1" "$2" "$3" 120 || return 1
    i=0
    while [ "$(pending_total "$1" "$2")" -gt 0 ]; do
        i=$((i + 1)); [ $i -gt 600 ] && return 1; sleep 0.1
    done
}
