#!/bin/sh
# Live evaluation: a `live: true` alert fires while it holds in the open period and sends a
# `resolved` event when it stops. Late input: once August is closed, an August event goes
# to the dead-letter topic as `late` and the final snapshots stay byte for byte the same.
. "$(dirname "$0")/lib.sh"
start_redis r
start_kafka
write_config "$WORK/c.yaml" live "unix://$WORK/r.sock" <<EOF2
periods: [month]
idle_timeout: 0
EOF2
cat >"$WORK/rules/live.yaml" <<'EOF2'
version: 1
name: live
period: month
interval: 1s
eligible: inquiries >= 1
score:
  - {kpi: reply_rate, weight: 100}
alerts:
  - name: Unanswered
    expr: unanswered_waits > 0
    live: true
    severity: warning
    summary: "{{agent}} leaves {{value}} customers waiting"
EOF2
start_daemon "$WORK/c.yaml" "$WORK/d.log"
produce_example
stream() { redis-cli -s "$WORK/r.sock" xrange 'csm:{x:live:demo}:alerts' - + | grep '^{'; }
i=0; while ! stream | grep -q '"agent_id":"x2".*"state":"firing"' && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
stream | grep -q '"alert":"Unanswered".*"agent_id":"x2".*"state":"firing"' &&
    ok "live alert fires for x2 (c3 waits)" || fail "no firing live alert: $(stream | head -3)"
# x2 answers c3: the wait closes, the alert resolves
printf 'c3\t{"event_id": "e40", "type": "message", "ts": "2026-08-20T10:00:00+08:00", "shop_id": "demo", "conversation_id": "c3", "agent_id": "x2", "customer_id": "u3", "direction": "out"}\n' |
    kcat -P -b "$BROKERS" -t cs.chat -K "$(printf '\t')"
i=0; while ! stream | grep -q '"agent_id":"x2".*"state":"resolved"' && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
stream | grep -q '"alert":"Unanswered".*"agent_id":"x2".*"state":"resolved"' &&
    ok "live alert resolved once x2 answered" || fail "no resolved event: $(stream | tail -3)"
# close August with a September event
printf 'c9\t{"event_id": "e99", "type": "message", "ts": "2026-09-03T10:00:00+08:00", "shop_id": "demo", "conversation_id": "c9", "agent_id": "x1", "customer_id": "u9", "direction": "in"}\n' |
    kcat -P -b "$BROKERS" -t cs.chat -K "$(printf '\t')"
state() { redis-cli -s "$WORK/r.sock" get 'csm:{x:live:demo}:2026-08:state'; }
i=0; while [ "$(state)" != emitted ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
[ "$(state)" = emitted ] && ok "August closed" || fail "August not closed: '$(state)'"
redis-cli -s "$WORK/r.sock" hgetall 'csm:{x:live:demo}:2026-08:final' >"$WORK/final1.txt"
# a late August event: x1 gets another inquiry on 2026-08-25
printf 'c10\t{"event_id": "e98", "type": "message", "ts": "2026-08-25T10:00:00+08:00", "shop_id": "demo", "conversation_id": "c10", "agent_id": "x1", "customer_id": "u10", "direction": "in"}\n' |
    kcat -P -b "$BROKERS" -t cs.chat -K "$(printf '\t')"
i=0; while ! kcat -C -b "$BROKERS" -t cs.deadletter -e -q 2>/dev/null | grep -q '"reason":"late"' && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
kcat -C -b "$BROKERS" -t cs.deadletter -e -q 2>/dev/null | grep '"reason":"late"' | grep -q '2026-08' &&
    ok "the late August event is a dead letter 'late' naming 2026-08" || fail "no late dead letter"
sleep 2
redis-cli -s "$WORK/r.sock" hgetall 'csm:{x:live:demo}:2026-08:final' >"$WORK/final2.txt"
cmp -s "$WORK/final1.txt" "$WORK/final2.txt" && ok "final snapshots unchanged by late input" || fail "final snapshots changed"
finish
