#!/bin/sh
# csmetrics review / target end to end: real redis-server, librdkafka's mock cluster,
# csmetricsd. Events written with the CLI (options, --file, stdin) must show in
# `csmetrics show --json` exactly (scores / max, target_completion, a later target
# replacing an earlier one, a repeated event_id counted once); bad input is refused
# with the daemon decoder's exact message, exit 1, and nothing reaches Kafka. Then
# `csmetrics top --once --json` and the plain, non-terminal output of `top`.
. "$(dirname "$0")/lib.sh"
start_redis r
start_kafka
write_config "$WORK/c.yaml" reviews "unix://$WORK/r.sock" <<EOF2
timezone: Asia/Shanghai
periods: [month]
idle_timeout: 0
EOF2
start_daemon "$WORK/c.yaml" "$WORK/d.log"
CSM="$CSMETRICS -c $WORK/c.yaml"
TS=2026-08-20T09:00:00+08:00
P="--shop demo --period 2026-08 --ts $TS"
reviews_count() { kcat -C -b "$BROKERS" -t cs.reviews -e -q 2>/dev/null | grep -c .; }

# sales for x1: one paid order of 129.90
printf '%s\n' \
  'o1	{"event_id": "o1c", "type": "created", "ts": "2026-08-03T10:00:00+08:00", "shop_id": "demo", "order_id": "o1", "customer_id": "u1", "amount": "129.90", "agent_id": "x1"}' \
  'o1	{"event_id": "o1p", "type": "paid", "ts": "2026-08-03T10:05:00+08:00", "order_id": "o1", "amount": "129.90"}' |
  kcat -P -b "$BROKERS" -t shop.orders -K "$(printf '\t')"

# ---- writes ----
if $CSM target $P --agent x1 --amount 1000 --event-id t1 >"$WORK/t1.out" 2>"$WORK/t1.err" &&
   grep -q '^target t1 written to cs.reviews partition [0-9]* offset [0-9]*: shop .demo., agent .x1., period 2026-08, amount 1000.00$' "$WORK/t1.out"; then
    ok "target: delivered, confirmation line"
else
    fail "target: $(cat "$WORK/t1.out" "$WORK/t1.err")"
fi
if $CSM review $P --agent x1 --role manager --reviewer s1 --max 10 --item execution=8 \
     --item follow_up=9 >"$WORK/r1.out" 2>"$WORK/r1.err" &&
   [ "$(grep -c '^review csm-[0-9]*-[0-9a-f]\{16\} written to cs.reviews partition' "$WORK/r1.out")" -eq 2 ] &&
   [ "$(awk '{print $2}' "$WORK/r1.out" | sort -u | wc -l)" -eq 2 ]; then
    ok "review with two --item: two events, each with a new event_id printed"
else
    fail "review: $(cat "$WORK/r1.out" "$WORK/r1.err")"
fi
# --json prints the event written; role self: the reviewer defaults to the agent
$CSM review $P --agent x1 --role self --item self_total=4.5 --max 5 --event-id r-self --json \
    >"$WORK/r2.out" 2>"$WORK/r2.err"
[ "$(cat "$WORK/r2.out")" = '{"event_id": "r-self", "type": "review", "ts": "2026-08-20T09:00:00+08:00", "shop_id": "demo", "agent_id": "x1", "period": "2026-08", "item": "self_total", "score": 4.5, "max": 5, "role": "self", "reviewer": "x1"}' ] &&
    ok "review --json prints the event written" || fail "review --json: $(cat "$WORK/r2.out" "$WORK/r2.err")"
# --file: JSON lines, blank lines skipped
cat >"$WORK/targets.jsonl" <<'EOF2'
{"event_id": "t-x2", "type": "target", "ts": "2026-08-01T09:00:00+08:00", "shop_id": "demo", "agent_id": "x2", "period": "2026-08", "amount": 200}

EOF2
$CSM target --file "$WORK/targets.jsonl" >"$WORK/f.out" 2>"$WORK/f.err" &&
    grep -q '^target t-x2 written to cs.reviews' "$WORK/f.out" &&
    ok "target --file" || fail "target --file: $(cat "$WORK/f.out" "$WORK/f.err")"
# a later target replaces the earlier; the same event_id again counts once; stdin
$CSM target $P --agent x1 --amount 500 --event-id t2 >/dev/null 2>"$WORK/t2.err" || fail "target t2: $(cat "$WORK/t2.err")"
$CSM target $P --agent x1 --amount 1000 --event-id t1 --json 2>/dev/null | $CSM target --file - >"$WORK/dup.out" 2>&1 &&
    ok "target --file - (stdin) from target --json" || fail "stdin: $(cat "$WORK/dup.out")"
# --dry-run writes nothing
$CSM target $P --agent x9 --amount 1 --event-id dry --dry-run >"$WORK/dry.out" 2>/dev/null &&
    grep -q '"event_id": "dry"' "$WORK/dry.out" && ok "--dry-run prints the event" || fail "--dry-run: $(cat "$WORK/dry.out")"

# 2 orders + 1 + 2 + 1 + 1 + 1 + 2 (t1 written twice: --json then stdin)
TOTAL=10
wait_committed "$WORK/r.sock" 0 "$TOTAL" 30 && ok "all $TOTAL messages committed" ||
    fail "messages not committed ($(committed_total "$WORK/r.sock" 0) of $TOTAL)"
N_REVIEWS=$(reviews_count)
[ "$N_REVIEWS" -eq 8 ] && ok "8 messages on cs.reviews" || fail "cs.reviews holds $N_REVIEWS messages"
sleep 1
$CSM show --shop demo --agent x1 --period 2026-08 --json >"$WORK/x1.json" 2>&1
$CSM show --shop demo --agent x2 --period 2026-08 --json >"$WORK/x2.json" 2>&1
python3 - "$WORK/x1.json" "$WORK/x2.json" <<'PY' && ok "show --json: reviews (score/max), target_completion with the later target, dedup" || fail "show: $(cat "$WORK/x1.json" "$WORK/x2.json")"
import json, sys
x1 = json.loads(open(sys.argv[1]).read())
x2 = json.loads(open(sys.argv[2]).read())
m = x1["metrics"]
want = {"sales": 129.9, "review.execution.manager": 0.8, "review.follow_up.manager": 0.9,
        "review.self_total.self": 0.9, "target_completion": 0.2598}
for k, v in want.items():
    assert m.get(k) == v, (k, m.get(k), v)
assert sorted(k for k in m if k.startswith("review.")) == sorted(k for k in want if k.startswith("review.")), m
assert x1["shop_id"] == "demo" and x1["agent_id"] == "x1" and x1["period"] == "2026-08"
assert x2["metrics"]["target_completion"] == 0.0, x2
PY
grep -q '"x9"' "$WORK/x1.json" "$WORK/x2.json" && fail "dry-run event reached the daemon" || true
$CSM show --shop demo --agent x9 --json >/dev/null 2>&1 && fail "dry-run agent x9 has figures" || ok "dry-run agent x9 has no figures"

# ---- refusals: exact message, exit 1, nothing produced ----
refuse() { # refuse 'expected stderr' CMD...
    want=$1; shift
    "$@" >"$WORK/bad.out" 2>"$WORK/bad.err"; rc=$?
    got=$(grep -v 'warning: period' "$WORK/bad.err")
    if [ $rc -eq 1 ] && [ "$got" = "$want" ] && [ ! -s "$WORK/bad.out" ]; then
        ok "refused: $want"
    else
        fail "expected exit 1 and '$want', got exit $rc: $got $(cat "$WORK/bad.out")"
    fi
}
refuse "csmetrics: refused: item 'q': field 'score': outside 0..max (csmetricsd would dead-letter it as bad_value)" \
    $CSM review $P --agent x1 --role self --max 10 --item q=11
refuse "csmetrics: refused: item 'q': field 'role': expected \"self\", \"manager\" or \"indirect_manager\" (csmetricsd would dead-letter it as bad_value)" \
    $CSM review $P --agent x1 --role boss --item q=1
refuse "csmetrics: refused: score 'high' of item 'q' is not a number" \
    $CSM review $P --agent x1 --role self --item q=high
refuse "csmetrics: refused: field 'amount': more than two decimals (csmetricsd would dead-letter it as bad_amount)" \
    $CSM target $P --agent x1 --amount 12.345
refuse "csmetrics: refused: field 'period': invalid period label (csmetricsd would dead-letter it as bad_value)" \
    $CSM target --shop demo --period 2026-13 --agent x1 --amount 1
refuse "csmetrics: refused: field 'ts': not an RFC 3339 date-time with offset (csmetricsd would dead-letter it as bad_ts)" \
    $CSM target --shop demo --period 2026-08 --ts '2026-08-20 09:00' --agent x1 --amount 1
refuse "csmetrics: refused: field 'agent_id': empty (csmetricsd would dead-letter it as bad_value)" \
    $CSM target $P --agent '' --amount 1
# the second item is bad: the first is not written either
refuse "csmetrics: refused: item 'b': field 'score': outside 0..max (csmetricsd would dead-letter it as bad_value)" \
    $CSM review $P --agent x1 --role self --item a=50 --item b=101
{
    echo '{"event_id": "f1", "type": "target", "ts": 1786000000000, "agent_id": "x1", "period": "2026-08", "amount": "1"}'
    echo '{"event_id": "f2", "type": "target", "ts": 1786000000000, "agent_id": "x1", "period": "2026-08", "amount": "-1"}'
    echo '{"event_id": "f3", "type": "review", "ts": 1786000000000, "agent_id": "x1", "period": "2026-08", "item": "i", "score": 1, "role": "self", "reviewer": "x1"}'
    echo '{"event_id": "f4", "type": "target"'
} >"$WORK/bad.jsonl"
$CSM target --file "$WORK/bad.jsonl" >"$WORK/bad.out" 2>"$WORK/bad.err"; rc=$?
F=$WORK/bad.jsonl
if [ $rc -eq 1 ] && [ ! -s "$WORK/bad.out" ] &&
   [ "$(sed -n 1p "$WORK/bad.err")" = "$F:2: field 'amount': negative (csmetricsd would dead-letter it as bad_amount)" ] &&
   [ "$(sed -n 2p "$WORK/bad.err")" = "$F:3: a review event where target events are expected" ] &&
   sed -n 3p "$WORK/bad.err" | grep -q "^$F:4: invalid JSON.*(csmetricsd would dead-letter it as invalid_json)$" &&
   [ "$(sed -n 4p "$WORK/bad.err")" = "csmetrics: 3 invalid lines in '$F': nothing written" ]; then
    ok "--file: every bad line as F:LINE: message, nothing written"
else
    fail "--file with bad lines: exit $rc: $(cat "$WORK/bad.err")"
fi
"$CSMETRICS" -c "$WORK/c.yaml" review --agent x1 --item a=1 >/dev/null 2>"$WORK/usage.err"; rc=$?
[ $rc -eq 2 ] && [ "$(cat "$WORK/usage.err")" = "csmetrics: review: --role is required (see 'csmetrics review --help')" ] &&
    ok "missing option: exit 2 with the option named" || fail "missing --role: exit $rc: $(cat "$WORK/usage.err")"
sleep 1
N=$(reviews_count)
[ "$N" -eq "$N_REVIEWS" ] && ok "nothing produced by refused commands" || fail "cs.reviews grew from $N_REVIEWS to $N"
# an unreachable Kafka: exit 1 with the reason
sed "s|brokers: \".*\"|brokers: \"127.0.0.1:1\"|" "$WORK/c.yaml" >"$WORK/dead.yaml"
"$CSMETRICS" -c "$WORK/dead.yaml" target $P --agent x1 --amount 1 --event-id nope --timeout 1 >"$WORK/dead.out" 2>"$WORK/dead.err"; rc=$?
[ $rc -eq 1 ] && grep -q "^csmetrics: target 'nope' not written to 'cs.reviews': Local: Message timed out" "$WORK/dead.err" &&
    ok "unreachable Kafka: exit 1, not written" || fail "unreachable Kafka: exit $rc: $(cat "$WORK/dead.err")"

# ---- top ----
$CSM top --once --json --period 2026-08 --shop demo >"$WORK/top.jsonl" 2>"$WORK/top.err"
python3 - "$WORK/top.jsonl" <<'PY' && ok "top --once --json: ranked agents and the team" || fail "top --json: $(cat "$WORK/top.jsonl" "$WORK/top.err")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [(r["agent_id"], r["rank"]) for r in rows] == [("x1", 1), ("x2", 2), (None, None)], rows
assert all(r["shop_id"] == "demo" and r["period"] == "2026-08" and r["sort"] == "sales" for r in rows)
assert rows[0]["metrics"]["sales"] == 129.9 and rows[0]["metrics"]["target_completion"] == 0.2598
assert rows[0]["period_start"] == "2026-08-01T00:00:00+08:00"
PY
$CSM top --once --period 2026-08 --shop demo --sort target --width 200 >"$WORK/top.txt" 2>&1
grep -q 'by target_completion (highest first)' "$WORK/top.txt" && grep -q ' TARGET$' "$WORK/top.txt" &&
    [ "$(awk '$1 == "1" {print $2}' "$WORK/top.txt")" = x1 ] &&
    ok "top --once: sort column in capitals, x1 first" || fail "top --once: $(cat "$WORK/top.txt")"
# not a terminal: each refresh printed after the previous one
timeout 2 $CSM top --period 2026-08 --shop demo --interval 0.3 </dev/null >"$WORK/top.stream" 2>&1
n=$(grep -c '^month 2026-08' "$WORK/top.stream")
[ "$n" -ge 3 ] && ! grep -q "$(printf '\033')" "$WORK/top.stream" &&
    ok "top to a pipe: $n plain frames, no escape codes" || fail "top to a pipe: $n frames"
kill -0 "$DAEMON_PID" 2>/dev/null && ok "daemon still running" || fail "daemon died: $(tail -5 "$WORK/d.log")"
finish
