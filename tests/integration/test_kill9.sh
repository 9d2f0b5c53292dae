#!/bin/sh
# Exactly-once under kill -9: the same simulated stream (with duplicates and bad
# messages) is consumed once without interruption into one Redis database and once
# with the daemon killed with SIGKILL at random instants and restarted into another;
# every KPI of every agent and team must be equal. KILLS (default 6) sets the count.
. "$(dirname "$0")/lib.sh"
KILLS=${KILLS:-6}
EVENTS=${EVENTS:-12000}
start_redis r
start_kafka --partitions 4
"$CSMETRICS" simulate --seed 11 --agents 12 --shops 2 --customers 800 \
    --start 2026-08-30T00:00:00+08:00 --duration 4d --events "$EVENTS" \
    --dup-rate 0.02 --bad-rate 0.005 --bootstrap-file "$WORK/bootstrap" 2>"$WORK/sim.log" ||
    { fail "simulate: $(cat "$WORK/sim.log")"; finish; exit 1; }
TOTAL=0
for t in cs.chat shop.orders cs.reviews; do
    n=$(kcat -C -b "$BROKERS" -t $t -e -q 2>/dev/null | wc -l); TOTAL=$((TOTAL + n))
done
echo "  stream: $TOTAL messages ($(tail -1 "$WORK/sim.log"))"
for db in 0 1; do
    write_config "$WORK/c$db.yaml" "group$db" "unix://$WORK/r.sock?db=$db" <<EOF2
timezone: Asia/Shanghai
periods: [day, month]
idle_timeout: 0
batch_max_events: 300
EOF2
done
start_daemon "$WORK/c0.yaml" "$WORK/d0.log"
wait_settled "$WORK/r.sock" 0 "$TOTAL" && ok "uninterrupted run committed $TOTAL messages" || fail "uninterrupted run stuck at $(committed_total "$WORK/r.sock" 0) (pending $(pending_total "$WORK/r.sock" 0))"
sleep 2
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null

kills=0
start_daemon "$WORK/c1.yaml" "$WORK/d1.log"
while [ $kills -lt "$KILLS" ] && [ "$(committed_total "$WORK/r.sock" 1)" -lt "$TOTAL" ]; do
    # wait until this instance has made progress, then kill it at a random instant
    before=$(committed_total "$WORK/r.sock" 1); i=0
    while [ "$(committed_total "$WORK/r.sock" 1)" -eq "$before" ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i + 1)); done
    [ -n "${KILL_EARLY:-}" ] || sleep "0.$(awk 'BEGIN { srand(); printf "%d", rand() * 9 }')"
    kill -9 "$DAEMON_PID" 2>/dev/null; wait "$DAEMON_PID" 2>/dev/null
    kills=$((kills + 1))
    echo "  kill -9 #$kills at $(committed_total "$WORK/r.sock" 1) of $TOTAL committed"
    start_daemon "$WORK/c1.yaml" "$WORK/d1.log"
done
wait_settled "$WORK/r.sock" 1 "$TOTAL" && ok "interrupted run committed $TOTAL messages after $kills kills" || fail "interrupted run stuck at $(committed_total "$WORK/r.sock" 1) (pending $(pending_total "$WORK/r.sock" 1))"
sleep 2
dump_kpis "$WORK/c0.yaml" >"$WORK/kpi0.jsonl"
dump_kpis "$WORK/c1.yaml" >"$WORK/kpi1.jsonl"
lines=$(wc -l <"$WORK/kpi0.jsonl")
[ "$lines" -gt 20 ] && ok "uninterrupted run holds $lines agent/team periods" || fail "too few figures: $lines"
if python3 "$ROOT/tests/integration/compare_json.py" "$WORK/kpi0.jsonl" "$WORK/kpi1.jsonl" >"$WORK/diff.txt"; then
    ok "every KPI equal after $kills kill -9 (no loss, no double count)"
else
    fail "KPIs differ after kill -9:"; head -20 "$WORK/diff.txt"
fi
finish
