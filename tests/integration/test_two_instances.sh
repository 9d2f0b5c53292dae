#!/bin/sh
# Two daemon instances in one consumer group close the same periods: Redis holds exactly one
# final snapshot per (rule, shop, agent, period), and every record on the snapshots topic
# with a given snapshot_id is byte-identical (re-production is allowed, a different record
# never is).
. "$(dirname "$0")/lib.sh"
start_redis r
start_kafka
write_config "$WORK/c.yaml" two "unix://$WORK/r.sock" <<EOF2
periods: [month]
idle_timeout: 0
EOF2
sed 's/^eligible: .*/eligible: inquiries >= 1/' "$ROOT/rules/examples/plan2.yaml" >"$WORK/rules/plan2.yaml"
start_daemon "$WORK/c.yaml" "$WORK/d1.log"
P1=$DAEMON_PID
start_daemon "$WORK/c.yaml" "$WORK/d2.log"
P2=$DAEMON_PID
produce_example
# an event in September moves the watermark past August's close
printf 'c9\t{"event_id": "e99", "type": "message", "ts": "2026-09-03T10:00:00+08:00", "shop_id": "demo", "conversation_id": "c9", "agent_id": "x1", "customer_id": "u9", "direction": "in"}\n' |
    kcat -P -b "$BROKERS" -t cs.chat -K "$(printf '\t')"
TOTAL=$(($(cat "$EXAMPLE/chat.jsonl" "$EXAMPLE/orders.jsonl" "$EXAMPLE/reviews.jsonl" | grep -c .) + 1))
wait_settled "$WORK/r.sock" 0 "$TOTAL" && ok "both instances together committed $TOTAL messages" ||
    fail "stuck at $(committed_total "$WORK/r.sock" 0)"
state() { redis-cli -s "$WORK/r.sock" get 'csm:{x:plan2-weighted-kpi-levels:demo}:2026-08:state'; }
i=0; while [ "$(state)" != emitted ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
[ "$(state)" = emitted ] && ok "August closed and emitted" || fail "August not emitted: '$(state)'"
n=$(redis-cli -s "$WORK/r.sock" hlen 'csm:{x:plan2-weighted-kpi-levels:demo}:2026-08:final')
[ "$n" = 2 ] && ok "Redis holds one final snapshot per agent (2)" || fail "final snapshots in Redis: $n"
kcat -C -b "$BROKERS" -t cs.snapshots -e -q 2>/dev/null >"$WORK/snaps.jsonl"
python3 - "$WORK/snaps.jsonl" <<'PY' && ok "Kafka: every final snapshot_id maps to one identical record, one per agent" || fail "Kafka snapshots differ: $(head -c 300 "$WORK/snaps.jsonl")"
import json, sys
byid, agents = {}, set()
for line in open(sys.argv[1]):
    if not line.strip():
        continue
    d = json.loads(line)
    if not d["final"]:
        continue
    prev = byid.setdefault(d["snapshot_id"], line)
    assert prev == line, ("two different records for", d["snapshot_id"])
    agents.add((d["rule"], d["shop_id"], d["agent_id"], d["period"]))
assert len(byid) == len(agents) == 2, (len(byid), agents)
PY
kill -0 "$P1" 2>/dev/null && kill -0 "$P2" 2>/dev/null && ok "both instances still running" || fail "an instance died"
finish
