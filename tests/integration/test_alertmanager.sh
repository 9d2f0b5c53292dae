#!/bin/sh
# Alertmanager delivery against the real prometheus-alertmanager (loopback, private config and
# storage, no clustering): a `live: true` alert shows up in GET /api/v2/alerts with its labels
# and annotations, is kept alive by re-sends, and disappears (resolved) as soon as the live
# condition stops, well before it could have expired; a final alert of the period close
# arrives with kind=final and its period; the password in alertmanager.url is never logged.
. "$(dirname "$0")/lib.sh"
AM=${ALERTMANAGER:-$(command -v prometheus-alertmanager || command -v alertmanager)}
[ -x "$AM" ] || { echo "prometheus-alertmanager not installed"; exit 1; }
start_redis r
start_kafka

AMPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$WORK/am.yml" <<'EOF2'
route: {receiver: "null", group_wait: 1s}
receivers: [{name: "null"}]
EOF2
"$AM" --config.file="$WORK/am.yml" --storage.path="$WORK/am-data" \
    --web.listen-address="127.0.0.1:$AMPORT" --cluster.listen-address= >"$WORK/am.log" 2>&1 &
PIDS="$PIDS $!"
AMURL="http://127.0.0.1:$AMPORT"
wait_for curl -sf "$AMURL/-/ready" || { echo "alertmanager did not start"; cat "$WORK/am.log"; exit 1; }

# the password must never reach the log; Alertmanager ignores the basic auth header
write_config "$WORK/c.yaml" am "unix://$WORK/r.sock" <<EOF2
periods: [month]
idle_timeout: 0
alertmanager: {url: "http://csm:hunter2-am@127.0.0.1:$AMPORT/", resend_interval: 3s, final_hold: 366d}
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
  - name: Closed
    expr: inquiries >= 1
    severity: info
EOF2
start_daemon "$WORK/c.yaml" "$WORK/d.log"
produce_example

# alerts ALERTNAME: the active alerts of that name, one JSON object per line
alerts() {
    curl -sf "$AMURL/api/v2/alerts?filter=alertname%3D%22$1%22" |
        python3 -c 'import json, sys; [print(json.dumps(a, sort_keys=True)) for a in json.load(sys.stdin)]'
}
x2() { alerts Unanswered | grep '"agent": "x2"'; }
i=0; while ! x2 >/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
x2 >"$WORK/x2.json"
python3 - "$WORK/x2.json" <<'EOF2' && ok "live alert active in Alertmanager with its labels and annotations" || fail "live alert: $(cat "$WORK/x2.json")"
import json, sys
a = json.loads(open(sys.argv[1]).read())
assert a["labels"] == {"alertname": "Unanswered", "rule": "live", "shop": "demo", "agent": "x2",
                       "severity": "warning", "kind": "live"}, a["labels"]
assert a["annotations"]["summary"] == "x2 leaves 1 customers waiting", a["annotations"]
assert a["annotations"]["period"] == "2026-08", a["annotations"]
assert "agent x2 in shop demo during period 2026-08" in a["annotations"]["description"]
assert a["status"]["state"] == "active"
assert a["startsAt"] < a["endsAt"]
EOF2
ends1=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["endsAt"])' "$WORK/x2.json")
# re-sent while firing: endsAt (4 resend intervals ahead of the last evaluation) moves on
i=0
while [ $i -lt 80 ]; do
    sleep 0.1; i=$((i + 1))
    ends2=$(x2 | python3 -c 'import json, sys; print(json.load(sys.stdin)["endsAt"])' 2>/dev/null)
    [ -n "$ends2" ] && [ "$ends2" \> "$ends1" ] && break
done
[ -n "$ends2" ] && [ "$ends2" \> "$ends1" ] && ok "firing alert re-sent (endsAt $ends1 -> $ends2)" ||
    fail "endsAt did not move: $ends1 $ends2"

# x2 answers c3: the live condition stops, the alert is resolved (endsAt = now) at once
t0=$(date +%s)
printf 'c3\t{"event_id": "e40", "type": "message", "ts": "2026-08-20T10:00:00+08:00", "shop_id": "demo", "conversation_id": "c3", "agent_id": "x2", "customer_id": "u3", "direction": "out"}\n' |
    kcat -P -b "$BROKERS" -t cs.chat -K "$(printf '\t')"
i=0; while x2 >/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
t1=$(date +%s)
# expiry alone would take at least 12 s (4 x resend_interval) after the last re-send
if ! x2 >/dev/null && [ $((t1 - t0)) -lt 12 ]; then
    ok "live alert resolved in Alertmanager $((t1 - t0))s after x2 answered"
else
    fail "live alert still active or only expired ($((t1 - t0))s): $(x2)"
fi

# close August with a September event: the final alert Closed (every agent) goes out once
printf 'c9\t{"event_id": "e99", "type": "message", "ts": "2026-09-03T10:00:00+08:00", "shop_id": "demo", "conversation_id": "c9", "agent_id": "x1", "customer_id": "u9", "direction": "in"}\n' |
    kcat -P -b "$BROKERS" -t cs.chat -K "$(printf '\t')"
i=0; while ! alerts Closed | grep -q '"agent": "x1"' && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
alerts Closed | grep '"agent": "x1"' >"$WORK/final.json"
python3 - "$WORK/final.json" <<'EOF2' && ok "final alert of the August close in Alertmanager" || fail "final alert: $(cat "$WORK/final.json")"
import json, sys
a = json.loads(open(sys.argv[1]).read())
assert a["labels"] == {"alertname": "Closed", "rule": "live", "shop": "demo", "agent": "x1",
                       "period": "2026-08", "severity": "info", "kind": "final"}, a["labels"]
assert a["startsAt"] == "2026-08-31T16:00:00.000Z", a["startsAt"]
assert a["endsAt"].startswith("2027-09-01T16:10:00"), a["endsAt"]  # end + 10m lateness + 366d
assert "at the close of period 2026-08" in a["annotations"]["description"]
EOF2

# x1 leaves September's c9 waiting: Unanswered fires for x1. SIGHUP onto a second
# Alertmanager: it gets every alert held at once, without waiting for a change.
am1x1() { alerts Unanswered | grep '"agent": "x1"'; }
i=0; while ! am1x1 >/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
am1x1 >/dev/null && ok "x1's September wait fires in Alertmanager" || fail "no Unanswered for x1"
AMPORT2=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$AM" --config.file="$WORK/am.yml" --storage.path="$WORK/am2-data" \
    --web.listen-address="127.0.0.1:$AMPORT2" --cluster.listen-address= >"$WORK/am2.log" 2>&1 &
PIDS="$PIDS $!"
wait_for curl -sf "http://127.0.0.1:$AMPORT2/-/ready" || { echo "second alertmanager did not start"; exit 1; }
sed -i "s|127.0.0.1:$AMPORT/|127.0.0.1:$AMPORT2|" "$WORK/c.yaml"
kill -HUP "$DAEMON_PID"
am2x1() {
    curl -sf "http://127.0.0.1:$AMPORT2/api/v2/alerts" | grep -q '"agent":"x1".*"alertname":"Unanswered"\|"alertname":"Unanswered".*"agent":"x1"'
}
i=0; while ! am2x1 && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
am2x1 && ok "after SIGHUP the new Alertmanager has the firing alert" || fail "new Alertmanager got nothing"

grep -q hunter2 "$WORK/d.log" && fail "the Alertmanager password is in the log" || ok "no password in the log"
grep -q 'cannot deliver' "$WORK/d.log" && fail "delivery failures: $(grep 'cannot deliver' "$WORK/d.log" | head -3)" ||
    ok "no delivery failure logged"
grep -q "delivering alerts to 'http://csm:<redacted>@127.0.0.1:$AMPORT/'" "$WORK/d.log" &&
    ok "start-up names the redacted URL" || fail "no start-up line: $(grep alertmanager "$WORK/d.log" | head -3)"
finish
