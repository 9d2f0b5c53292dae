#!/bin/sh
# csmetricsd's HTTP endpoints (daemon/http.h) against a real redis-server and the mock
# cluster: /readyz 503 with its reason before Redis is reachable, 200 once it is; 404/405;
# /metrics after the worked example (../shared/spec/example): exact event counters by topic
# and type, the duplicate, no dead letters, zero lag, the batch histogram; the August close
# of plan 2 (periods closed, alerts equal to the cs.alerts topic); reload counters;
# /healthz 503 while the main loop is stuck in a round trip to a frozen (SIGSTOP) Redis
# while /metrics still answers; /readyz 503 while the only broker is down, 200 once it is
# back; /readyz 503 after Redis dies; a second daemon on the same port exits 1 with a clear
# error.
. "$(dirname "$0")/lib.sh"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
# get PATH [curl args]: the status code; the body in $WORK/body, headers in $WORK/headers
get() { p=$1; shift; curl -s -m 5 -D "$WORK/headers" -o "$WORK/body" -w '%{http_code}' "$@" "$URL$p"; }
body() { tr -d '\r' <"$WORK/body"; }
# metric 'name{labels}': the sample's value; msum PREFIX: the sum of the samples it starts
metric() { get /metrics >/dev/null; awk -v n="$1 " 'index($0, n) == 1 { print $NF }' "$WORK/body"; }
msum() { get /metrics >/dev/null; awk -v n="$1" 'index($0, n) == 1 { s += $NF } END { print s + 0 }' "$WORK/body"; }

start_kafka --control "$WORK/ctl"
cp "$ROOT/rules/examples/plan2.yaml" "$WORK/rules/"
write_config "$WORK/c.yaml" http "unix://$WORK/r.sock" <<EOF2
timezone: Asia/Shanghai
periods: [month]
attribution_window: 72h
idle_timeout: 8s
EOF2
sed -i "s|^http: .*|http: {listen: \"127.0.0.1:$PORT\"}|" "$WORK/c.yaml"
# WATCHDOG_USEC (no NOTIFY_SOCKET: nothing is sent) sets the /healthz bound to 2 s
WATCHDOG_USEC=2000000 start_daemon "$WORK/c.yaml" "$WORK/d.log"

# ---- before Redis exists
wait_for sh -c "curl -s -o /dev/null $URL/healthz" || { fail "no listener on $URL"; cat "$WORK/d.log"; finish; exit 1; }
# ("not ready: starting" until the main loop's first iteration)
i=0; while c=$(get /readyz) && [ "$(body)" = "not ready: starting" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ "$c" = 503 ] && [ "$(body)" = "not ready: redis unreachable (redis=unix:$WORK/r.sock/0)" ] &&
    ok "/readyz 503 before Redis is reachable: $(body)" || fail "/readyz before Redis: $c '$(body)'"
c=$(get /healthz)
[ "$c" = 200 ] && [ "$(body)" = ok ] && ok "/healthz 200 while the main loop retries Redis" || fail "/healthz: $c '$(body)'"
c=$(get /metrics -X POST)
[ "$c" = 405 ] && grep -qi '^Allow: GET, HEAD' "$WORK/headers" && ok "POST /metrics: 405, Allow: GET, HEAD" || fail "POST /metrics: $c"
c=$(get /nothing)
[ "$c" = 404 ] && ok "GET /nothing: 404" || fail "GET /nothing: $c"
c=$(get /healthz -I)
[ "$c" = 200 ] && ok "HEAD /healthz: 200" || fail "HEAD /healthz: $c"

# ---- Redis up: ready, then the worked example
start_redis r
i=0; while [ "$(get /readyz)" != 200 ] && [ $i -lt 150 ]; do sleep 0.2; i=$((i + 1)); done
[ "$(get /readyz)" = 200 ] && [ "$(body)" = ready ] && ok "/readyz 200 once Redis is up and partitions are assigned" ||
    fail "/readyz after Redis: $(get /readyz) '$(body)'"
produce_example
TOTAL=$(cat "$EXAMPLE/chat.jsonl" "$EXAMPLE/orders.jsonl" "$EXAMPLE/reviews.jsonl" | grep -c .)
wait_committed "$WORK/r.sock" 0 "$TOTAL" 30 || fail "example not committed"
sleep 0.5
c=$(get /metrics)
[ "$c" = 200 ] && grep -qi '^Content-Type: text/plain; version=0.0.4; charset=utf-8' "$WORK/headers" &&
    ok "/metrics 200, text/plain; version=0.0.4" || fail "/metrics: $c $(grep -i content-type "$WORK/headers")"
cat >"$WORK/want.txt" <<'EOF2'
csmetrics_events_total{topic="cs.chat",type="message"} 10
csmetrics_events_total{topic="cs.chat",type="transfer"} 1
csmetrics_events_total{topic="cs.chat",type="complaint"} 1
csmetrics_events_total{topic="shop.orders",type="created"} 3
csmetrics_events_total{topic="shop.orders",type="paid"} 2
csmetrics_events_total{topic="shop.orders",type="refunded"} 1
csmetrics_events_total{topic="shop.orders",type="cancelled"} 1
csmetrics_events_total{topic="shop.orders",type="flagged"} 1
csmetrics_events_total{topic="cs.reviews",type="review"} 1
csmetrics_events_total{topic="cs.reviews",type="target"} 2
csmetrics_duplicate_events_total 1
csmetrics_batch_size_messages_sum 24
csmetrics_assigned_partitions 12
csmetrics_ready 1
csmetrics_redis_up 1
csmetrics_rule_files 1
EOF2
tr -d '\r' <"$WORK/body" >"$WORK/metrics1.txt"
missing=$(grep -vxF -f "$WORK/metrics1.txt" "$WORK/want.txt")
[ -z "$missing" ] && ok "exact counters after the example ($(grep -c . "$WORK/want.txt") lines: events by topic and type, duplicate, batches)" ||
    { fail "metrics lack:"; echo "$missing"; grep '^csmetrics_events_total\|^csmetrics_dup\|_sum\|partitions' "$WORK/metrics1.txt"; }
dl=$(awk '/^csmetrics_dead_letters_total/ { s += $NF; n++ } END { print n, s + 0 }' "$WORK/metrics1.txt")
[ "$dl" = "11 0" ] && ok "dead letters: 11 reasons, all 0" || fail "dead letters (reasons, sum): $dl"
lag=$(awk '/^csmetrics_consumer_lag_messages/ { s += $NF; n++ } END { print n, s + 0 }' "$WORK/metrics1.txt")
[ "$lag" = "12 0" ] && ok "consumer lag: 12 partitions, 0 messages" || fail "consumer lag (partitions, sum): $lag"
grep -q '^csmetrics_partition_watermark_timestamp_seconds{topic="shop.orders",partition="[0-9]*"} 17' "$WORK/metrics1.txt" &&
    grep -q '^csmetrics_redis_roundtrip_seconds_count [1-9]' "$WORK/metrics1.txt" &&
    grep -q '^csmetrics_build_info{version="[^"]*",rdkafka="2\.[^"]*",hiredis="[^"]*",microhttpd="[^"]*"} 1$' "$WORK/metrics1.txt" &&
    ok "partition event-time watermarks, Redis round-trip histogram, build info" ||
    fail "watermark / round trips / build info missing"
# every sample belongs to a family announced by HELP and TYPE, in the text format's syntax
python3 - "$WORK/metrics1.txt" <<'PY' && ok "exposition syntax: HELP/TYPE before every family's samples" || fail "exposition syntax"
import re, sys
typed, seen = {}, set()
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? (\S+)$')
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("# HELP "):
        continue
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split(" ")
        assert name not in typed, name
        typed[name] = kind
        continue
    m = sample.match(line)
    assert m, line
    name = m.group(1)
    base = re.sub(r"_(bucket|sum|count)$", "", name) if name not in typed else name
    assert base in typed, line
    float(m.group(5).replace("Inf", "inf"))
PY

# ---- the August close (every partition idle for 8 s: the watermark jumps to now)
i=0; while [ "$(metric 'csmetrics_periods_closed_total{rule="plan2-weighted-kpi-levels"}')" != 1 ] && [ $i -lt 100 ]; do
    sleep 0.2; i=$((i + 1)); done
[ "$(metric 'csmetrics_periods_closed_total{rule="plan2-weighted-kpi-levels"}')" = 1 ] &&
    ok "periods closed: plan2-weighted-kpi-levels 1 (shop demo, 2026-08)" || fail "no close counted: $(grep closed "$WORK/body")"
sleep 0.5
want=$(kcat -C -b "$BROKERS" -t cs.alerts -e -q 2>/dev/null | grep -c .)
got=$(msum 'csmetrics_alerts_total{rule="plan2-weighted-kpi-levels",')
[ "$got" = "$want" ] && ok "csmetrics_alerts_total sums to the $want alert records in cs.alerts" || fail "alerts counted $got, in Kafka $want"
snaps=$(kcat -C -b "$BROKERS" -t cs.snapshots -e -q 2>/dev/null | grep -c '"final": *true\|"final":true')
[ "$(metric csmetrics_final_snapshots_total)" = "$snaps" ] && [ "$snaps" -gt 0 ] &&
    ok "final snapshots: $snaps, as in cs.snapshots" || fail "final snapshots $(metric csmetrics_final_snapshots_total), Kafka $snaps"
[ "$(metric 'csmetrics_rule_evaluation_seconds_count{mode="close"}')" -ge 1 ] 2>/dev/null &&
    [ "$(metric csmetrics_last_close_timestamp_seconds)" != 0 ] &&
    ok "close evaluation timed, last close time set" || fail "rule evaluation histogram / last close"

# ---- reloads: one taken, one refused
kill -HUP "$DAEMON_PID"
i=0; while [ "$(metric 'csmetrics_reloads_total{result="ok"}')" != 1 ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
printf 'version: 1\nname: broken\nperiod: month\nscore:\n  - {kpi: nope, weight: 5}\n' >"$WORK/rules/broken.yaml"
kill -HUP "$DAEMON_PID"
i=0; while [ "$(metric 'csmetrics_reloads_total{result="failed"}')" != 1 ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
[ "$(metric 'csmetrics_reloads_total{result="ok"}')" = 1 ] && [ "$(metric 'csmetrics_reloads_total{result="failed"}')" = 1 ] &&
    [ "$(metric csmetrics_config_last_reload_successful)" = 0 ] &&
    ok "reloads: ok 1, failed 1, last reload unsuccessful" || fail "reload counters: $(grep reload "$WORK/body" | grep -v '^#')"
rm "$WORK/rules/broken.yaml"

# ---- the only broker down: /readyz 503 with the reason, 200 again once it is back
echo "broker-down 1" >"$WORK/ctl"
i=0; while [ "$(get /readyz)" != 503 ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
c=$(get /readyz); why=$(body)
[ "$c" = 503 ] && echo "$why" | grep -q "^not ready: kafka brokers all down for [0-9]* s (brokers $BROKERS)\$" &&
    [ "$(metric csmetrics_ready)" = 0 ] && ok "/readyz 503 with every broker down: $why" ||
    fail "/readyz with the broker down: $c '$why'"
sleep 3 # the probe sees the broker down a few times first
echo "broker-up 1" >"$WORK/ctl"
i=0; while [ "$(get /readyz)" != 200 ] && [ $i -lt 150 ]; do sleep 0.2; i=$((i + 1)); done
[ "$(get /readyz)" = 200 ] && grep -q 'brokers reachable again after' "$WORK/d.log" &&
    ok "/readyz 200 again once the broker answers: $(grep -o 'brokers reachable again.*' "$WORK/d.log" | tail -1)" ||
    fail "/readyz after the broker came back: $(get /readyz) '$(body)'"

# ---- a frozen Redis: the main loop blocks in a round trip (5 s timeout), /healthz says so
RPID=$(redis-cli -s "$WORK/r.sock" info server | tr -d '\r' | sed -n 's/^process_id://p')
kill -STOP "$RPID"
i=0; while [ "$(get /healthz)" != 503 ] && [ $i -lt 40 ]; do sleep 0.2; i=$((i + 1)); done
if [ "$(get /healthz)" = 503 ] && body | grep -q '^main loop stalled: no iteration for [0-9.]* s (limit 2.0 s)$'; then
    ok "/healthz 503 while the main loop waits on a frozen Redis: $(body)"
else
    fail "/healthz with Redis frozen: $(get /healthz) '$(body)'"
fi
[ "$(get /metrics)" = 200 ] && ok "/metrics still answers meanwhile (its own thread)" || fail "/metrics during the stall"
kill -CONT "$RPID"
i=0; while [ "$(get /healthz)" != 200 ] && [ $i -lt 75 ]; do sleep 0.2; i=$((i + 1)); done
[ "$(get /healthz)" = 200 ] && ok "/healthz 200 again after SIGCONT" || fail "/healthz after SIGCONT: $(body)"

# ---- Redis gone
kill -9 "$RPID"
i=0; while [ "$(get /readyz)" != 503 ] && [ $i -lt 75 ]; do sleep 0.2; i=$((i + 1)); done
c=$(get /readyz); why=$(body)
[ "$c" = 503 ] && echo "$why" | grep -q '^not ready: redis unreachable' && [ "$(metric csmetrics_ready)" = 0 ] &&
    [ "$(metric csmetrics_redis_up)" = 0 ] && ok "/readyz 503 after Redis died: $why; csmetrics_ready 0, csmetrics_redis_up 0" ||
    fail "/readyz after Redis died: $c '$why', ready $(metric csmetrics_ready)"

# ---- the port taken: a second daemon exits 1 at start with a clear error
"$CSMETRICSD" -c "$WORK/c.yaml" >"$WORK/d2.log" 2>&1 &
P2=$!; PIDS="$PIDS $P2"
wait "$P2"; rc=$?
[ $rc = 1 ] && grep -q "cannot listen on '127.0.0.1:$PORT' (http.listen): Address already in use" "$WORK/d2.log" &&
    ok "port in use: exit 1, $(grep -o 'cannot listen.*' "$WORK/d2.log")" || { fail "second daemon: exit $rc"; cat "$WORK/d2.log"; }

kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"; rc=$?
[ $rc = 0 ] && ok "SIGTERM: exit 0" || fail "SIGTERM: exit $rc"
curl -s -m 2 -o /dev/null "$URL/healthz" && fail "listener still up after exit" || ok "listener closed on exit"
finish
