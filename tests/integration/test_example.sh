#!/bin/sh
# The worked example of ../shared/spec/example: real redis-server, librdkafka mock cluster,
# the daemon, events produced with kcat; `csmetrics show --json` must print the
# hand-checked figures. Then dead letters: the duplicate e5 counted once, bad messages
# in the dead-letter topic with their reasons, the daemon carrying on.
. "$(dirname "$0")/lib.sh"
start_redis r
start_kafka
write_config "$WORK/c.yaml" example "unix://$WORK/r.sock" <<EOF2
timezone: Asia/Shanghai
periods: [month]
attribution_window: 72h
idle_timeout: 0
EOF2
start_daemon "$WORK/c.yaml" "$WORK/d.log"
produce_example
TOTAL=$(cat "$EXAMPLE/chat.jsonl" "$EXAMPLE/orders.jsonl" "$EXAMPLE/reviews.jsonl" | grep -c .)
wait_committed "$WORK/r.sock" 0 "$TOTAL" 60 && ok "all $TOTAL messages committed" || fail "messages not committed ($(committed_total "$WORK/r.sock" 0) of $TOTAL)"
# attribution runs on the next tick once the watermark passed the orders
sleep 2
{
    "$CSMETRICS" -c "$WORK/c.yaml" show --shop demo --agent x1 --period 2026-08 --json
    "$CSMETRICS" -c "$WORK/c.yaml" show --shop demo --agent x2 --period 2026-08 --json
} >"$WORK/show.jsonl"
if python3 "$ROOT/tests/integration/compare_json.py" "$EXAMPLE/expected-show.jsonl" "$WORK/show.jsonl"; then
    ok "show --json equals expected-show.jsonl"
else
    fail "show --json differs from expected-show.jsonl"
fi
# the live KPI hash dashboards read
sleep 1.2
v=$(redis-cli -s "$WORK/r.sock" hget 'csm:{a:demo:x2}:2026-08:kpi' reply_rate)
s=$(redis-cli -s "$WORK/r.sock" hget 'csm:{a:demo:x2}:2026-08:kpi' sales)
[ "$v" = "0.6666666666666666" ] && [ "$s" = "300" ] && ok "live KPI hash: reply_rate $v, sales $s" || fail "live KPI hash: reply_rate '$v' sales '$s'"
"$CSMETRICS" -c "$WORK/c.yaml" show --shop demo --agent x1 --json >"$WORK/all.jsonl"
[ "$(wc -l <"$WORK/all.jsonl")" -eq 1 ] && ok "show without --period lists the one month held" || fail "show without --period: $(wc -l <"$WORK/all.jsonl") lines"
if "$CSMETRICS" -c "$WORK/c.yaml" show --shop demo --agent nobody --json 2>"$WORK/err"; then
    fail "show of an unknown agent exits 0"
else
    grep -q "no figures for 'nobody' of shop 'demo'" "$WORK/err" && ok "unknown agent: exit 1 with a message" || fail "unknown agent message: $(cat "$WORK/err")"
fi

# Bad input: each goes to the dead-letter topic with its reason; the daemon carries on.
printf '%s\n' \
  'k1	{"event_id": "b1", "type": "message", "ts": "2026-08-03T10:00:00+08:00"' \
  'k2	{"event_id": "b2", "type": "created", "ts": "2026-08-03T10:00:00+08:00", "order_id": "o9", "customer_id": "u9", "amount": "1.001"}' \
  'k3	{"event_id": "b3", "type": "teleport", "ts": "2026-08-03T10:00:00+08:00"}' \
  'k4	[1, 2]' >"$WORK/bad.txt"
head -1 "$WORK/bad.txt" | kcat -P -b "$BROKERS" -t cs.chat -K "$(printf '\t')"
sed -n 2p "$WORK/bad.txt" | kcat -P -b "$BROKERS" -t shop.orders -K "$(printf '\t')"
sed -n 3p "$WORK/bad.txt" | kcat -P -b "$BROKERS" -t cs.chat -K "$(printf '\t')"
sed -n 4p "$WORK/bad.txt" | kcat -P -b "$BROKERS" -t cs.reviews -K "$(printf '\t')"
wait_committed "$WORK/r.sock" 0 $((TOTAL + 4)) 30 && ok "bad messages consumed, offsets moved on" || fail "bad messages not consumed"
kcat -C -b "$BROKERS" -t cs.deadletter -e -q >"$WORK/dl.jsonl" 2>/dev/null
python3 - "$WORK/dl.jsonl" <<'PY' && ok "dead letters: invalid_json, bad_amount, unknown_type, invalid_json (array)" || fail "dead letters wrong: $(cat "$WORK/dl.jsonl")"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
reasons = sorted(r["reason"] for r in recs)
assert reasons == ["bad_amount", "invalid_json", "invalid_json", "unknown_type"], reasons
for r in recs:
    for k in ("detail", "topic", "partition", "offset", "ts_seen", "payload"):
        assert k in r, (k, r)
amt = [r for r in recs if r["reason"] == "bad_amount"][0]
assert amt["topic"] == "shop.orders" and "1.001" in amt["payload"], amt
PY
sleep 1.2
c=$(redis-cli -s "$WORK/r.sock" hget 'csm:{r}:deadletters' invalid_json)
[ "$c" = "2" ] && ok "dead letters counted in Redis (invalid_json 2)" || fail "dead-letter counter invalid_json: '$c'"
# the figures did not change
"$CSMETRICS" -c "$WORK/c.yaml" show --shop demo --agent x1 --period 2026-08 --json >"$WORK/x1b.jsonl"
head -1 "$EXAMPLE/expected-show.jsonl" >"$WORK/x1e.jsonl"
python3 "$ROOT/tests/integration/compare_json.py" "$WORK/x1e.jsonl" "$WORK/x1b.jsonl" && ok "figures unchanged by bad input" || fail "figures changed by bad input"
kill -0 "$DAEMON_PID" 2>/dev/null && ok "daemon still running" || fail "daemon died: $(tail -5 "$WORK/d.log")"
# SIGTERM: flush, commit, exit 0 within 10 s
kill -TERM "$DAEMON_PID"
i=0; while kill -0 "$DAEMON_PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 "$DAEMON_PID" 2>/dev/null; then fail "daemon still running 10 s after SIGTERM"; else
    wait "$DAEMON_PID"; rc=$?; [ $rc -eq 0 ] && ok "SIGTERM: exit 0 in $((i / 10)).$((i % 10)) s" || fail "SIGTERM: exit $rc"; fi
finish
