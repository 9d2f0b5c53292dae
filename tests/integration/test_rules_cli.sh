#!/bin/sh
# The rules engine's operator commands on the shipped rule files: `csmetrics check`
# (every plan passes; a broken copy gives its exact file:line:column error and exit 1),
# `csmetrics test` (every shipped rule test passes; a wrong expectation fails with a diff
# line and exit 1), and `csmetrics snapshots` on the final snapshots the daemon records
# when it closes the worked example's month under plan 2 — the same scores the offline
# `csmetrics test` computes for those events.
. "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1
PLANS="rules/examples/plan1.yaml rules/examples/plan2.yaml rules/examples/plan3.yaml rules/examples/plan5.yaml"

# ---- check ----
start_redis r
printf 'redis:\n  url: "unix://%s/r.sock"\ntimezone: Asia/Shanghai\nrules_dir: %s/rules\n' \
    "$WORK" "$WORK" >"$WORK/check.yaml"
# shellcheck disable=SC2086
cp $PLANS "$WORK/rules/"
if "$CSMETRICS" -c "$WORK/check.yaml" check >"$WORK/check.out" 2>&1 &&
    [ "$(grep -c ': ok (rule ' "$WORK/check.out")" -eq 4 ] &&
    grep -qx "$WORK/check.yaml: ok" "$WORK/check.out"; then
    ok "check: the configuration and the four shipped plans in its rules_dir"
else
    fail "check of rules_dir: $(cat "$WORK/check.out")"
fi
# shellcheck disable=SC2086
if CSMETRICS_CONFIG=$WORK/none.yaml "$CSMETRICS" check $PLANS >"$WORK/check2.out" 2>&1 &&
    grep -q "^rules/examples/plan2.yaml: ok (rule plan2-weighted-kpi-levels, period month, 8 score lines" "$WORK/check2.out"; then
    ok "check FILE... without a configuration file: the rule files alone"
else
    fail "check FILE...: $(cat "$WORK/check2.out")"
fi
mkdir -p "$WORK/broken"
sed 's/{kpi: reply_rate, /{kpi: reply_rat, /' rules/examples/plan2.yaml >"$WORK/broken/plan2.yaml"
line=$(grep -n 'kpi: reply_rat,' "$WORK/broken/plan2.yaml" | cut -d: -f1)
col=$(($(sed -n "${line}p" "$WORK/broken/plan2.yaml" | awk '{ print index($0, "reply_rat") }')))
want="$WORK/broken/plan2.yaml:$line:$col: unknown KPI 'reply_rat' (did you mean 'reply_rate'?)"
"$CSMETRICS" -c "$WORK/check.yaml" check "$WORK/broken/plan2.yaml" >"$WORK/broken.out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -qxF "$want" "$WORK/broken.out"; then
    ok "check of a broken copy: exit 1, '$want'"
else
    fail "check of a broken copy: exit $rc, output: $(cat "$WORK/broken.out") (want: $want)"
fi
cp "$WORK/broken/plan2.yaml" "$WORK/rules/plan2.yaml"
"$CSMETRICS" -c "$WORK/check.yaml" check >"$WORK/broken2.out" 2>&1
rc=$?
want="$WORK/rules/plan2.yaml:$line:$col: unknown KPI 'reply_rat' (did you mean 'reply_rate'?)"
[ $rc -eq 1 ] && grep -qxF "$want" "$WORK/broken2.out" &&
    ok "check of a rules_dir holding the broken copy: exit 1 with its position" ||
    fail "check of rules_dir with a broken file: exit $rc, $(cat "$WORK/broken2.out")"
cp rules/examples/plan2.yaml "$WORK/rules/plan2.yaml"

# ---- test ----
"$CSMETRICS" test rules/examples/*.test.yaml >"$WORK/test.out" 2>&1
rc=$?
last=$(tail -1 "$WORK/test.out")
case "$last" in
"0 passed, "*) fail "test: no test ran: $last" ;;
*" passed, 0 failed")
    [ $rc -eq 0 ] && ok "test rules/examples/*.test.yaml: $last" || fail "test: exit $rc with $last" ;;
*) fail "test of the shipped rule tests: exit $rc: $(cat "$WORK/test.out")" ;;
esac
cp rules/examples/plan2.yaml "$WORK/plan2.yaml"
sed 's/p1: {score: 99.3, grade: senior, /p1: {score: 99.3, grade: junior, /' \
    rules/examples/plan2.test.yaml >"$WORK/plan2.test.yaml"
line=$(grep -n 'p1: {score: 99.3, grade: junior' "$WORK/plan2.test.yaml" | cut -d: -f1)
col=$(($(sed -n "${line}p" "$WORK/plan2.test.yaml" | awk '{ print index($0, "junior") }')))
want="$WORK/plan2.test.yaml:$line:$col: test 'august': agent p1 grade: expected 'junior', got 'senior'"
"$CSMETRICS" test "$WORK/plan2.test.yaml" >"$WORK/wrong.out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -qxF "$want" "$WORK/wrong.out" &&
    [ "$(tail -1 "$WORK/wrong.out")" = "2 passed, 1 failed" ]; then
    ok "a wrong expectation: exit 1, the diff line, '2 passed, 1 failed'"
else
    fail "a wrong expectation: exit $rc: $(cat "$WORK/wrong.out") (want: $want)"
fi

# ---- snapshots: the daemon closes August 2026 of the worked example under plan 2 ----
start_kafka
rm -f "$WORK/rules/"*.yaml
cp rules/examples/plan2.yaml "$WORK/rules/"
write_config "$WORK/c.yaml" rules "unix://$WORK/r.sock?db=1" <<EOF2
timezone: Asia/Shanghai
periods: [month]
attribution_window: 72h
idle_timeout: 0
EOF2
if "$CSMETRICS" -c "$WORK/c.yaml" snapshots 2>"$WORK/none.err"; then
    fail "snapshots with nothing recorded exits 0"
else
    grep -qx "csmetrics: no final snapshots" "$WORK/none.err" && ok "snapshots: none yet, exit 1 with a message" ||
        fail "snapshots with none: $(cat "$WORK/none.err")"
fi
start_daemon "$WORK/c.yaml" "$WORK/d.log"
produce_example
# a message in October moves the watermark past August's end + lateness: August closes
printf '%s\n' 'c9	{"event_id": "late1", "type": "message", "ts": "2026-10-02T10:00:00+08:00", "shop_id": "demo", "conversation_id": "c9", "agent_id": "x1", "customer_id": "u9", "direction": "in"}' |
    kcat -P -b "$BROKERS" -t cs.chat -K "$(printf '\t')"
i=0
until "$CSMETRICS" -c "$WORK/c.yaml" snapshots --json >"$WORK/snaps.jsonl" 2>/dev/null &&
    [ "$(wc -l <"$WORK/snaps.jsonl")" -eq 2 ]; do
    i=$((i + 1)); [ $i -gt 600 ] && break; sleep 0.1
done
if [ "$(wc -l <"$WORK/snaps.jsonl")" -eq 2 ]; then
    ok "snapshots --json: the two final snapshots of August"
else
    fail "no final snapshots after 60 s (daemon log: $(tail -5 "$WORK/d.log"))"
fi
python3 - "$WORK/snaps.jsonl" <<'PY' && ok "the daemon's snapshots equal the offline test's: x1 53.06, x2 65, ScoreBelow70" || fail "snapshot content: $(cat "$WORK/snaps.jsonl")"
import json, sys
s = [json.loads(l) for l in open(sys.argv[1])]
assert [x["agent_id"] for x in s] == ["x1", "x2"], s
x1, x2 = s
assert x1["rule"] == "plan2-weighted-kpi-levels" and x1["period"] == "2026-08" and x1["final"] is True
assert x1["score"] == 53.06 and x1["rank"] == 2 and x1["grade"] == "below_level", x1
assert x2["score"] == 65 and x2["rank"] == 1, x2
assert x1["alerts"] == ["ScoreBelow70"] and sorted(x2["alerts"]) == ["ScoreBelow70", "SlowReplies"]
PY
# Byte for byte: the offline runner (events → agg → memstore → eval) and the daemon
# (Kafka → agg → Redis → eval) write the same records for the same events.
"$CSMETRICS" test --json rules/examples/plan2.test.yaml | grep '"agent_id":"x[12]"' >"$WORK/offline.jsonl"
cmp -s "$WORK/offline.jsonl" "$WORK/snaps.jsonl" &&
    ok "csmetrics test --json writes the daemon's snapshot records byte for byte" ||
    fail "offline and daemon snapshots differ: $(diff "$WORK/offline.jsonl" "$WORK/snaps.jsonl" | head -5)"
"$CSMETRICS" -c "$WORK/c.yaml" snapshots >"$WORK/table.out" 2>&1
head -1 "$WORK/table.out" | grep -q '^RULE  *SHOP  *PERIOD  *AGENT  *SCORE  *GRADE  *RANK  *PAYOUTS  *ALERTS$' &&
    grep -q '^plan2-weighted-kpi-levels  *demo  *2026-08  *x1  *53.06  *below_level  *2  *-  *ScoreBelow70$' "$WORK/table.out" &&
    [ "$(wc -l <"$WORK/table.out")" -eq 3 ] &&
    ok "snapshots: the table" || fail "snapshots table: $(cat "$WORK/table.out")"
n=$("$CSMETRICS" -c "$WORK/c.yaml" snapshots --shop demo --period 2026-08 --agent x2 --json | wc -l)
[ "$n" -eq 1 ] && ok "snapshots --shop --period --agent selects one" || fail "snapshots filters: $n lines"
if "$CSMETRICS" -c "$WORK/c.yaml" snapshots --rule plan3-self-manager 2>"$WORK/nomatch.err"; then
    fail "snapshots of a rule without snapshots exits 0"
else
    grep -qx "csmetrics: no final snapshots of rule 'plan3-self-manager'" "$WORK/nomatch.err" &&
        ok "snapshots: no match, exit 1 with a message" || fail "no match: $(cat "$WORK/nomatch.err")"
fi
finish
