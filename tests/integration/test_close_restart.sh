#!/bin/sh
# Period close across restarts (issue 3): two simulated months (July, August 2026, then a
# September tail) under two monthly rule files; csmetricsd is killed with SIGKILL while July
# is consumed, as July closes, while August is consumed, as August closes, and once more with
# August's closes rewound in Redis to the crash window (recorded, not yet emitted). Checks:
# Kafka holds one final snapshot per eligible agent, month and rule (copies byte-identical),
# Redis the same ones, equal to `csmetrics test --json` on the raw events; close alerts too.
. "$(dirname "$0")/lib.sh"
R=$WORK/r.sock
RULES="plan2-weighted-kpi-levels close-restart"
SHOPS="shop-1 shop-2"

# ---- the stream: three windows of `csmetrics simulate` (a day in July, one at the end of
# August, a night in September), their conversation and order ids prefixed per window.
# Column 1 is the stage it is produced in: 1 = July and August 31 until 09:00 (all there
# when the daemon starts), 2 = the rest of August, 3 = September ----
cat >"$WORK/gen.py" <<'PY'
import re, subprocess, sys
wins = [("a", 31, "2026-07-31T00:00:00+08:00", "1d"),
        ("b", 35, "2026-08-31T00:00:00+08:00", "1d"),
        ("c", 33, "2026-09-01T00:00:00+08:00", "10h")]
for pre, seed, start, dur in wins:
    r = subprocess.run([sys.argv[1], "simulate", "--seed", str(seed), "--agents", "4", "--shops", "2",
                        "--customers", "300", "--start", start, "--duration", dur, "--jsonl"],
                       capture_output=True, text=True, check=True)
    stage = {"a": 1, "b": 1, "c": 3}[pre]
    for line in r.stdout.splitlines():  # in event time order across topics
        topic, key, js = line.split("\t", 2)
        if pre == "b" and stage == 1 and re.search(r'"ts":"2026-08-31T(09|1\d|2\d):', js):
            stage = 2
        if topic != "cs.reviews" and (topic != "cs.chat" or '"conversation_id"' in js):
            key = pre + key
        js = re.sub(r'"(conversation_id|order_id)":"', lambda m: m.group(0) + pre, js)
        print(f"{stage}\t{topic}\t{key}\t{js}")
PY
python3 "$WORK/gen.py" "$CSMETRICS" >"$WORK/stream.tsv" || { fail "cannot generate the stream"; finish; exit 1; }
cut -f2- "$WORK/stream.tsv" >"$WORK/events.tsv"
TOTAL=$(wc -l <"$WORK/stream.tsv")
count() { awk -F'\t' -v s="$1" -v t="${2:-}" '$1 <= s && (t == "" || $2 == t || $1 < s)' "$WORK/stream.tsv" | wc -l; }
S1=$(count 1)
W1=$(grep -c '"event_id":"sim-31-' "$WORK/stream.tsv")
echo "  stream: $TOTAL events; stage 1 (July, August 31 until 09:00) $S1, stage 2 $(($(count 2) - S1)), stage 3 (September) $((TOTAL - $(count 2)))"

# ---- the rules: plan 2 as shipped, and one with eligibility, prev.*, payouts and `for` ----
cp "$ROOT/rules/examples/plan2.yaml" "$WORK/rules/"
cat >"$WORK/rules/restart.yaml" <<'EOF'
version: 1
name: close-restart
period: month
lateness: 30m
shops: ["*"]
eligible: inquiries >= 72
score:
  - {kpi: inquiry_conversion, weight: 40, linear: {zero: 0.0, full: 0.6}}
  - {kpi: order_success, weight: 20, linear: {zero: 0.5, full: 1.0}}
  - {kpi: reply_rate, weight: 20, linear: {zero: 0.8, full: 1.0}}
  - kpi: response_time_mean_s
    weight: 20
    bands: [{max: 30, share: 1.0}, {max: 60, share: 0.5}, {share: 0}]
undefined: skip
grades:
  - {name: top, min: 80}
  - {name: ok, min: 50}
  - {name: low}
payouts:
  - {name: rank1_bonus, when: rank == 1, amount: 100}
  - {name: commission, amount: sales * 0.0001}
  - {name: improved, when: score > prev.score, amount: 10}
alerts:
  - {name: Low, expr: score < 60, severity: warning, summary: "{{agent}} scored {{score}} in {{period}}"}
  - {name: BelowTopTwice, expr: score < 90, for: 2, severity: critical}
EOF

# ---- offline: `csmetrics test --json` over the same raw events, per shop and month ----
cat >"$WORK/mktest.py" <<'PY'
import sys
stream, out = sys.argv[1], sys.argv[2]
ev = ["      - '" + l.rstrip("\n").split("\t", 2)[2].replace("'", "''") + "'\n" for l in open(stream)]
with open(out, "w") as f:
    f.write("rule_files: [rules/plan2.yaml, rules/restart.yaml]\ntimezone: Asia/Shanghai\n"
            "lateness: 10m\nattribution_window: 72h\ntests:\n")
    for shop in ("shop-1", "shop-2"):
        for month, prev in (("2026-07", None), ("2026-08", "2026-07")):
            f.write(f"  - name: {shop}-{month}\n    period: {month}\n    shop: {shop}\n")
            if prev:
                f.write(f"    previous_test: {shop}-{prev}\n")
            f.write("    expect: {}\n    events:\n")
            f.writelines(ev)
PY
python3 "$WORK/mktest.py" "$WORK/events.tsv" "$WORK/offline.test.yaml"
if "$CSMETRICS" test --json "$WORK/offline.test.yaml" >"$WORK/offline.out" 2>&1; then
    grep '^{' "$WORK/offline.out" >"$WORK/offline.jsonl"
    ok "offline recomputation: $(wc -l <"$WORK/offline.jsonl") final snapshots from $TOTAL events"
else
    fail "csmetrics test --json: $(tail -5 "$WORK/offline.out")"
fi

# ---- the daemon: stage 1 is produced before it starts; stages 2 and 3 later, each chat
# first and its orders and reviews once the chat is committed. With idle_timeout 0 a
# partition at its end stops holding the watermark back, so an order must not be read before
# the messages that attribute it; each stage lies within one day, so nothing is late ----
start_redis r
start_kafka --partitions 4
produce() { # produce STAGE TOPIC...
    st=$1; shift
    for t in "$@"; do
        awk -F'\t' -v s="$st" -v t="$t" '$1 == s && $2 == t' "$WORK/stream.tsv" | cut -f3- |
            kcat -P -b "$BROKERS" -t "$t" -K "$(printf '\t')" || fail "kcat -P $t (stage $st)"
    done
}
produce 1 cs.chat shop.orders cs.reviews
write_config "$WORK/c0.yaml" closer "unix://$R" <<EOF2
timezone: Asia/Shanghai
periods: [day, month]
idle_timeout: 0
batch_max_events: 100
EOF2
# a shorter session: each SIGKILLed instance holds its partitions until it expires
sed 's/session.timeout.ms: "6000"/session.timeout.ms: "3000"/' "$WORK/c0.yaml" >"$WORK/c.yaml"

# states LABEL: the close state of every (rule, shop) of LABEL, '-' when none
states() {
    keys=""
    for rule in $RULES; do for shop in $SHOPS; do keys="$keys csm:{x:$rule:$shop}:$1:state"; done; done
    # shellcheck disable=SC2086
    redis-cli -s "$R" mget $keys | sed 's/^$/-/' | tr '\n' ' ' | sed 's/ $//'
}
all_emitted() { [ "$(states "$1")" = "emitted emitted emitted emitted" ]; }
none_recorded() { [ "$(states "$1")" = "- - - -" ]; }
some_recorded() { ! none_recorded "$1"; }
committed_at_least() { [ "$(committed_total "$R" 0)" -ge "$1" ]; }
# wait_until SECONDS STEP CMD...: polls CMD every STEP seconds
wait_until() {
    limit=$1 step=$2; shift 2
    end=$(($(date +%s) + limit))
    until "$@"; do [ "$(date +%s)" -ge "$end" ] && return 1; sleep "$step"; done
}
KILLS=0
kill_restart() { # kill_restart WHAT: SIGKILL the daemon, say when, start it again
    kill -9 "$DAEMON_PID" 2>/dev/null; wait "$DAEMON_PID" 2>/dev/null
    KILLS=$((KILLS + 1))
    echo "  kill -9 #$KILLS $1: $(committed_total "$R" 0)/$TOTAL committed, July [$(states 2026-07)], August [$(states 2026-08)]"
    start_daemon "$WORK/c.yaml" "$WORK/d.log"
}
T0=$(date +%s)
start_daemon "$WORK/c.yaml" "$WORK/d.log"

# 1: while July is being consumed
if wait_until 30 0.02 committed_at_least $((W1 / 3)) && none_recorded 2026-07; then
    kill_restart "while consuming July"
    ok "killed while consuming July, before its close"
else
    fail "no progress in July or July closed early: $(committed_total "$R" 0) committed, [$(states 2026-07)]"
fi
# 2: as soon as a July close is recorded (possibly before it is emitted)
if wait_until 40 0.02 some_recorded 2026-07; then
    kill_restart "as July closes"
    ok "killed as July closed"
else
    fail "July never closed (committed $(committed_total "$R" 0)/$TOTAL)"
fi
wait_settled "$R" 0 "$S1" && wait_until 30 0.1 all_emitted 2026-07 && none_recorded 2026-08 &&
    ok "stage 1 committed ($S1), July closed and emitted for both rules and shops, August open" ||
    fail "after stage 1: $(committed_total "$R" 0)/$S1 committed, July [$(states 2026-07)], August [$(states 2026-08)]"
# 3: after July closed, while the rest of August is consumed
produce 2 cs.chat
if wait_until 30 0.02 committed_at_least $((S1 + 1)); then
    kill_restart "consuming August after July closed"
    ok "killed after July closed, while consuming August"
else
    fail "stage 2 not consumed: $(committed_total "$R" 0) committed"
fi
wait_committed "$R" 0 "$(count 2 cs.chat)" 60 || fail "stage 2 chat not committed: $(committed_total "$R" 0)"
produce 2 shop.orders cs.reviews
wait_settled "$R" 0 "$(count 2)" && none_recorded 2026-08 &&
    ok "stage 2 committed, August still open" ||
    fail "after stage 2: $(committed_total "$R" 0)/$(count 2) committed, August [$(states 2026-08)]"
# 4: as soon as an August close is recorded: September's first messages move the watermark
produce 3 cs.chat
if wait_until 20 0.02 some_recorded 2026-08; then
    kill_restart "as August closes"
    ok "killed as August closed"
fi
wait_committed "$R" 0 "$(count 3 cs.chat)" 60 || fail "stage 3 chat not committed: $(committed_total "$R" 0)"
produce 3 shop.orders cs.reviews
if [ "$KILLS" -lt 4 ]; then
    if wait_until 40 0.02 some_recorded 2026-08; then
        kill_restart "as August closes"
        ok "killed as August closed"
    else
        fail "August never closed (committed $(committed_total "$R" 0)/$TOTAL)"
    fi
fi
wait_settled "$R" 0 "$TOTAL" && ok "all $TOTAL messages committed after $KILLS kills" ||
    fail "stuck at $(committed_total "$R" 0)/$TOTAL (pending $(pending_total "$R" 0))"
wait_until 30 0.1 all_emitted 2026-08 && all_emitted 2026-07 && none_recorded 2026-09 &&
    ok "July and August closed and emitted for both rules and shops; September open" ||
    fail "closes: July [$(states 2026-07)], August [$(states 2026-08)], September [$(states 2026-09)]"

# 5: the crash window: Redis holds August's close (state evaluated, cursor still at July's
# end) but Kafka may or may not have the records. A restart must re-produce exactly them.
kill -9 "$DAEMON_PID" 2>/dev/null; wait "$DAEMON_PID" 2>/dev/null
AUG1=1785513600000 # 2026-08-01T00:00:00+08:00, the end of July: the cursor after July's close
for rule in $RULES; do for shop in $SHOPS; do
    redis-cli -s "$R" set "csm:{x:$rule:$shop}:2026-08:state" evaluated >/dev/null
    redis-cli -s "$R" hset "csm:{x:$rule:$shop}:meta" closed "$AUG1" >/dev/null
done; done
KILLS=$((KILLS + 1))
echo "  kill -9 #$KILLS, August's closes rewound to 'evaluated' (a crash before 'emitted')"
start_daemon "$WORK/c.yaml" "$WORK/d.log"
wait_until 30 0.1 all_emitted 2026-08 && ok "the rewound August closes were emitted again" ||
    fail "rewound closes not emitted: [$(states 2026-08)]"
echo "  daemon phase took $(($(date +%s) - T0)) s"

# ---- what Kafka and Redis hold ----
kcat -C -b "$BROKERS" -t cs.snapshots -e -q -f '%k\t%s\n' >"$WORK/k_snaps.tsv" 2>/dev/null
kcat -C -b "$BROKERS" -t cs.alerts -e -q -f '%k\t%s\n' >"$WORK/k_alerts.tsv" 2>/dev/null
kcat -C -b "$BROKERS" -t cs.deadletter -e -q >"$WORK/k_dead.txt" 2>/dev/null
"$CSMETRICS" -c "$WORK/c.yaml" snapshots --json >"$WORK/r_snaps.jsonl" 2>"$WORK/r_snaps.err"
for rule in $RULES; do for shop in $SHOPS; do for m in 2026-07 2026-08; do
    redis-cli -s "$R" hvals "csm:{x:$rule:$shop}:$m:alerts"
done; done; done | grep '^{' >"$WORK/r_alerts.jsonl"
for rule in $RULES; do for shop in $SHOPS; do
    redis-cli -s "$R" xrange "csm:{x:$rule:$shop}:snapshots" - + | grep '^{'
done; done >"$WORK/r_stream.jsonl"
[ -s "$WORK/k_dead.txt" ] && fail "dead-letter topic holds $(wc -l <"$WORK/k_dead.txt") messages: $(head -2 "$WORK/k_dead.txt")" ||
    ok "nothing dead-lettered (no event was late)"

cat >"$WORK/check.py" <<'PY'
import json, math, sys
from collections import defaultdict
W = sys.argv[1]
closed = {"2026-07", "2026-08"}
res = []
def check(ok, msg):
    res.append(("ok  " if ok else "FAIL") + " " + msg)

def same(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        errs = []
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                errs.append(f"{path}.{k}: {a.get(k, '<missing>')!r} vs {b.get(k, '<missing>')!r}")
            else:
                errs += same(a[k], b[k], f"{path}.{k}")
        return errs
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {a!r} vs {b!r}"]
        return [e for i, (x, y) in enumerate(zip(a, b)) for e in same(x, y, f"{path}[{i}]")]
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        return [] if a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) else [f"{path}: {a!r} vs {b!r}"]
    return [] if a == b and type(a) == type(b) else [f"{path}: {a!r} vs {b!r}"]

def ident(s):
    return (s["rule"], s["shop_id"], s["agent_id"], s["period"])

offline = {}
for line in open(f"{W}/offline.jsonl"):
    s = json.loads(line)
    offline[ident(s)] = s
expected = set(offline)
check(len(expected) > 0 and {k[0] for k in expected} == {"plan2-weighted-kpi-levels", "close-restart"}
      and {k[3] for k in expected} == closed,
      f"offline: {len(expected)} eligible (rule, shop, agent, month) over both rules and months")
# plan 2 scores every agent with figures; close-restart only those with inquiries >= 72
elig = {("close-restart",) + k[1:] for k, s in offline.items()
        if k[0] == "plan2-weighted-kpi-levels" and s["metrics"]["inquiries"] >= 72}
check(elig == {k for k in expected if k[0] == "close-restart"} and
      len(elig) < sum(1 for k in expected if k[0] == "plan2-weighted-kpi-levels"),
      f"offline: close-restart scores exactly the {len(elig)} agent-months with inquiries >= 72 (others not eligible)")

# (1) the snapshots topic
kafka = defaultdict(set)
badkey, live = [], 0
for line in open(f"{W}/k_snaps.tsv"):
    key, _, val = line.rstrip("\n").partition("\t")
    s = json.loads(val)
    if not s["final"]:
        live += 1
        continue
    if key != s["snapshot_id"]:
        badkey.append((key, s["snapshot_id"]))
    kafka[ident(s)].add(val)
ncopies = defaultdict(int)
for line in open(f"{W}/k_snaps.tsv"):
    key, _, val = line.rstrip("\n").partition("\t")
    s = json.loads(val)
    if s["final"]:
        ncopies[ident(s)] += 1
differ = {k: v for k, v in kafka.items() if len(v) != 1}
check(not differ, f"Kafka: every final snapshot re-produced only as identical bytes "
      f"({sum(ncopies.values())} final records, {len(kafka)} distinct, {live} live)"
      + ("" if not differ else f"; DIFFERENT versions of {sorted(differ)[:3]}: "
         + " | ".join(sorted(next(iter(differ.values()))))[:1500]))
check(not badkey, "Kafka: each final snapshot keyed by its snapshot_id" + (f"; not: {badkey[:2]}" if badkey else ""))
check(set(kafka) == expected, "Kafka: exactly one final snapshot per eligible agent, month and rule"
      + ("" if set(kafka) == expected else
         f"; missing {sorted(expected - set(kafka))}, unexpected {sorted(set(kafka) - expected)}"))
ids = defaultdict(set)
for k, v in kafka.items():
    for val in v:
        ids[json.loads(val)["snapshot_id"]].add(k)
check(all(len(v) == 1 for v in ids.values()) and len(ids) == len(kafka),
      "Kafka: snapshot_ids distinct across (rule, shop, agent, month)")
aug = [k for k in expected if k[3] == "2026-08"]
check(all(ncopies[k] >= 2 for k in aug),
      f"Kafka: the rewound August close re-produced its {len(aug)} snapshots (copies: "
      f"{sorted(set(ncopies[k] for k in aug))}), identical")

# (2) Redis
redis = defaultdict(list)
for line in open(f"{W}/r_snaps.jsonl"):
    s = json.loads(line)
    redis[ident(s)].append(line.rstrip("\n"))
redis = dict(redis)
check(all(len(v) == 1 for v in redis.values()) and set(redis) == expected,
      f"Redis (csmetrics snapshots --json): exactly one per eligible agent, month and rule ({sum(map(len, redis.values()))})"
      + ("" if set(redis) == expected else
         f"; missing {sorted(expected - set(redis))}, unexpected {sorted(set(redis) - expected)}"))
stream = defaultdict(list)
for line in open(f"{W}/r_stream.jsonl"):
    stream[ident(json.loads(line))].append(line.rstrip("\n"))
check(set(stream) == expected and all(len(v) == 1 and v[0] == redis.get(k, [None])[0] for k, v in stream.items()),
      f"Redis snapshot streams: each final snapshot recorded once ({sum(map(len, stream.values()))})"
      + ("" if all(len(v) == 1 for v in stream.values()) else
         f"; more than once: {[k for k, v in stream.items() if len(v) > 1][:3]}"))
neq = [k for k in expected if k in redis and k in kafka and kafka[k] != set(redis[k])]
check(not neq, "Redis and Kafka hold byte-identical final snapshots" + (f"; not: {sorted(neq)[:3]}" if neq else ""))

# (3) equal to the offline recomputation
diffs = []
for k in sorted(expected):
    if k in redis:
        for e in same(offline[k], json.loads(redis[k][0])):
            diffs.append(f"{k}: {e}")
check(not diffs, f"every final snapshot (score, grade, rank, points, payouts, alerts, metrics, explain, "
      f"snapshot_id) equals the offline recomputation from the raw events"
      + ("" if not diffs else ":\n      " + "\n      ".join(diffs[:25])))
bytes_eq = sum(1 for k in expected if k in redis and redis[k][0] == json.dumps(offline[k], separators=(",", ":"), ensure_ascii=False))
raw = {}
for line in open(f"{W}/offline.jsonl"):
    raw[ident(json.loads(line))] = line.rstrip("\n")
beq = [k for k in expected if k in redis and redis[k][0] == raw[k]]
check(len(beq) == len(expected), f"byte for byte equal to the offline records: {len(beq)} of {len(expected)}")

# close alerts: key "agent alert" (live ones use \x1f): once each, identical if repeated,
# exactly the alerts the final snapshots list
ka = defaultdict(set)
for line in open(f"{W}/k_alerts.tsv"):
    key, _, val = line.rstrip("\n").partition("\t")
    if "\x1f" in key:
        continue
    a = json.loads(val)
    ka[(a["rule"], a["shop_id"], a["agent_id"], a["period"], a["alert"])].add(val)
want = {k + (name,) for k, s in offline.items() for name in s["alerts"]}
check(all(len(v) == 1 for v in ka.values()) and set(ka) == want,
      f"Kafka: one close alert event per alert in the final snapshots ({len(want)})"
      + ("" if set(ka) == want else f"; missing {sorted(want - set(ka))[:5]}, unexpected {sorted(set(ka) - want)[:5]}")
      + ("" if all(len(v) == 1 for v in ka.values()) else "; DIFFERENT versions of "
         + str([k for k, v in ka.items() if len(v) > 1][:3])))
ra = defaultdict(list)
for line in open(f"{W}/r_alerts.jsonl"):
    a = json.loads(line)
    ra[(a["rule"], a["shop_id"], a["agent_id"], a["period"], a["alert"])].append(line.rstrip("\n"))
check(set(ra) == want and all(len(v) == 1 and {v[0]} == ka.get(k) for k, v in ra.items()),
      "Redis close alerts equal the Kafka ones byte for byte")
print("\n".join(res))
PY
python3 "$WORK/check.py" "$WORK" >"$WORK/check.out" 2>&1 || echo "FAIL check.py crashed: $(tail -3 "$WORK/check.out")" >>"$WORK/check.out"
while IFS= read -r line; do
    case "$line" in
    "ok   "*) ok "${line#ok   }" ;;
    "FAIL "*) fail "${line#FAIL }" ;;
    *) echo "$line" ;;
    esac
done <"$WORK/check.out"
finish
