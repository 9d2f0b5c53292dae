#!/bin/sh
# Memory errors and leaks under valgrind (issue 4): csmetricsd over the worked example
# (../shared/spec/example) with a daily rule file, so that events are aggregated, orders
# attributed, days closed into snapshots, the configuration reloaded (SIGHUP) and the
# daemon stopped (SIGTERM); then the CLI's check, show, top and snapshots against what it
# wrote. Each run is `valgrind --leak-check=full --errors-for-leak-kinds=definite
# --error-exitcode=99`: any memory error or definite leak fails it. Small input: valgrind
# runs the daemon some 20-50 times slower.
. "$(dirname "$0")/lib.sh"
if ! command -v valgrind >/dev/null 2>&1; then
    echo "  skip valgrind not installed (Debian package valgrind)"; finish; exit 0
fi
# glibc keeps some per-thread and locale state until exit on purpose; librdkafka's
# threads are joined at destroy, so nothing else needs suppressing.
VG="valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 --num-callers=30"
vg_check() { # vg_check WHAT RC LOG
    if [ "$2" = 0 ] && [ ! -s "$3" ]; then
        ok "$1: no memory error, no definite leak"
    else
        fail "$1: exit $2 (99: valgrind found errors):"; head -60 "$3"
    fi
}
start_redis r
RPID=${PIDS##* }
start_kafka
cat >"$WORK/rules/day.yaml" <<'EOF'
version: 1
name: vg-day
period: day
lateness: 1m
shops: ["*"]
score:
  - {kpi: reply_rate, weight: 60, linear: {zero: 0.5, full: 1.0}}
  - {kpi: inquiry_conversion, weight: 40, linear: {zero: 0.0, full: 0.6}}
undefined: skip
grades: [{name: good, min: 50}, {name: poor}]
payouts: [{name: bonus, when: rank == 1, amount: 10}]
alerts: [{name: Low, expr: score < 50, severity: warning, summary: "{{agent}} {{score}}"}]
EOF
write_config "$WORK/c.yaml" vg "unix://$WORK/r.sock" <<EOF
timezone: Asia/Shanghai
periods: [day, month]
idle_timeout: 0
EOF

# shellcheck disable=SC2086
$VG --log-file="$WORK/vg-daemon.log" "$CSMETRICSD" -c "$WORK/c.yaml" >"$WORK/d.log" 2>&1 &
D=$!
PIDS="$PIDS $D"
produce_example
TOTAL=$(cat "$EXAMPLE/chat.jsonl" "$EXAMPLE/orders.jsonl" "$EXAMPLE/reviews.jsonl" | grep -c .)
wait_committed "$WORK/r.sock" 0 "$TOTAL" 60 && ok "under valgrind: all $TOTAL messages committed" ||
    fail "under valgrind: $(committed_total "$WORK/r.sock" 0) of $TOTAL committed; $(tail -3 "$WORK/d.log")"
i=0
while ! redis-cli -s "$WORK/r.sock" --scan --pattern 'csm:*' | grep -q 'vg-day'; do
    i=$((i + 1)); [ $i -gt 300 ] && break; sleep 0.1
done
kill -HUP "$D"
wait_for grep -q "reloaded configuration" "$WORK/d.log" || fail "no reload logged: $(tail -3 "$WORK/d.log")"
# the CLI against what the daemon wrote (before Redis loses it below)
n=0
for cmd in "check" "show --shop demo --agent x1" "show --shop demo --agent x2 --period 2026-08 --json" \
    "show --shop demo --team" "top --once --period 2026-08" "snapshots" "snapshots --json --rule vg-day" \
    "show --shop demo --agent nobody"; do
    n=$((n + 1))
    # shellcheck disable=SC2086
    $VG --log-file="$WORK/vg-cli$n.log" "$CSMETRICS" -c "$WORK/c.yaml" $cmd >"$WORK/cli$n.out" 2>&1
    rc=$?
    [ "$cmd" = "show --shop demo --agent nobody" ] && [ $rc = 1 ] && rc=0 # exits 1: no figures
    vg_check "csmetrics $cmd" $rc "$WORK/vg-cli$n.log"
done
# Redis goes away and comes back empty: the error, reconnect and resync paths
kill -9 "$RPID"; wait "$RPID" 2>/dev/null
sleep 1.5
start_redis r
wait_for grep -q "redis reachable" "$WORK/d.log" && ok "under valgrind: Redis lost and back" ||
    fail "no reconnect logged: $(tail -3 "$WORK/d.log")"
sleep 1
kill -TERM "$D"
i=0
while kill -0 "$D" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
wait "$D"
vg_check "csmetricsd (consume, close days, SIGHUP, SIGTERM)" $? "$WORK/vg-daemon.log"

# start-up failures: a bad configuration, Redis unreachable until SIGTERM
sed 's/^timezone: .*/timezone: Mars\/Olympus/' "$WORK/c.yaml" >"$WORK/bad.yaml"
# shellcheck disable=SC2086
$VG --log-file="$WORK/vg-bad.log" "$CSMETRICSD" -c "$WORK/bad.yaml" -t >"$WORK/bad.out" 2>&1
rc=$?; [ $rc = 1 ] && rc=0
vg_check "csmetricsd -t, unknown time zone (exit 1)" $rc "$WORK/vg-bad.log"
sed "s|$WORK/r.sock|$WORK/nowhere.sock|" "$WORK/c.yaml" >"$WORK/down.yaml"
# shellcheck disable=SC2086
$VG --log-file="$WORK/vg-down.log" "$CSMETRICSD" -c "$WORK/down.yaml" >"$WORK/down.out" 2>&1 &
D=$!; PIDS="$PIDS $D"
wait_for grep -q "cannot connect to redis" "$WORK/down.out"
kill -TERM "$D"; wait "$D"
vg_check "csmetricsd with Redis unreachable, SIGTERM" $? "$WORK/vg-down.log"
grep -q '"vg-day"' "$WORK/cli7.out" && ok "the daemon under valgrind closed days into snapshots" ||
    fail "no vg-day snapshot: $(head -3 "$WORK/cli7.out")"
finish
