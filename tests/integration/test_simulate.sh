#!/bin/sh
# `csmetrics simulate` and `csmetrics kafka-mock`: the JSON-lines stream is deterministic
# per seed and follows the event contract (events.md) line by line; noise (--dup-rate,
# --bad-rate) only adds messages; every message produced into the mock cluster can be
# read back with kcat, keyed per the contract; the mock exits 0 on SIGTERM.
# $CSMETRICS names the binary (default build/csmetrics).
_csm=${CSMETRICS:-}
. "$(dirname "$0")/lib.sh"
[ -n "$_csm" ] && CSMETRICS=$_csm
[ -x "$CSMETRICS" ] || { echo "no csmetrics binary at '$CSMETRICS'"; exit 1; }

START=2026-08-30T00:00:00+08:00
sim() { "$CSMETRICS" simulate --start "$START" "$@"; }

# --- determinism ---
sim --jsonl --seed 7 --events 2000 >"$WORK/a.jsonl" 2>"$WORK/a.err"
sim --jsonl --seed 7 --events 2000 >"$WORK/b.jsonl" 2>/dev/null
sim --jsonl --seed 8 --events 2000 >"$WORK/c.jsonl" 2>/dev/null
cmp -s "$WORK/a.jsonl" "$WORK/b.jsonl" && ok "same seed: byte-identical output" || fail "same seed: outputs differ"
cmp -s "$WORK/a.jsonl" "$WORK/c.jsonl" && fail "seeds 7 and 8 give the same output" || ok "another seed: different output"
n=$(wc -l <"$WORK/a.jsonl")
[ "$n" -eq 2000 ] && ok "--events 2000 writes 2000 lines" || fail "--events 2000 wrote $n lines"
grep -q '^simulate: events=2000 messages=2000 ' "$WORK/a.err" && ok "summary line on stderr" || fail "summary: $(cat "$WORK/a.err")"

# --- every line follows the contract ---
cat >"$WORK/check.py" <<'PY'
import json, re, sys
TOPIC = {"message": "cs.chat", "transfer": "cs.chat", "complaint": "cs.chat",
         "created": "shop.orders", "paid": "shop.orders", "refunded": "shop.orders",
         "cancelled": "shop.orders", "flagged": "shop.orders",
         "review": "cs.reviews", "target": "cs.reviews", "absence": "cs.reviews"}
REQ = {"message": ["conversation_id", "agent_id", "customer_id", "direction"],
       "transfer": ["conversation_id", "agent_id", "to_agent_id", "customer_id"],
       "complaint": ["agent_id", "customer_id"],
       "created": ["order_id", "customer_id", "amount"],
       "paid": ["order_id", "amount"], "refunded": ["order_id", "amount"],
       "cancelled": ["order_id"], "flagged": ["order_id", "reason"],
       "review": ["agent_id", "period", "item", "score", "role", "reviewer"],
       "target": ["agent_id", "period", "amount"], "absence": ["agent_id", "from", "to"]}
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")
AMOUNT = re.compile(r"^[0-9]+(\.[0-9]{1,2})?$")
DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
import datetime
def ms(ts):
    if isinstance(ts, int):
        return ts
    m = TS.match(ts)
    assert m, ts
    frac = (m.group(1) or ".")[1:4].ljust(3, "0")
    base = ts[:19] + ts[m.end(1) if m.group(1) else 19:].replace("Z", "+00:00")
    return int(datetime.datetime.fromisoformat(base).timestamp()) * 1000 + int(frac)
seen, types, last = set(), {}, None
flags = {"created_with_agent": 0, "created_without_agent": 0, "complaint_without_conv": 0,
         "amount_number": 0, "amount_string": 0, "ts_int": 0, "ts_string": 0, "periods": set()}
for no, line in enumerate(open(sys.argv[1]), 1):
    where = "line %d" % no
    topic, key, js = line.rstrip("\n").split("\t")
    e = json.loads(js)
    t = e["type"]
    assert t in TOPIC and topic == TOPIC[t], (where, topic, t)
    assert isinstance(e["event_id"], str) and 1 <= len(e["event_id"]) <= 128, where
    assert e["event_id"] not in seen, (where, "duplicate event_id")
    seen.add(e["event_id"])
    assert isinstance(e.get("shop_id", ""), str), where
    now = ms(e["ts"])
    assert last is None or now >= last, (where, "ts goes back")
    last = now
    flags["ts_int" if isinstance(e["ts"], int) else "ts_string"] += 1
    for f in REQ[t]:
        assert f in e, (where, t, "missing", f)
    for f in ("conversation_id", "agent_id", "to_agent_id", "customer_id", "order_id"):
        assert f not in e or (isinstance(e[f], str) and e[f]), (where, f)
    if "amount" in e:
        a = e["amount"]
        if isinstance(a, str):
            flags["amount_string"] += 1
            assert AMOUNT.match(a), (where, a)
        else:
            flags["amount_number"] += 1
            raw = re.search(r'"amount":([^,}]*)', js).group(1)
            assert AMOUNT.match(raw), (where, raw)
    if t == "message":
        assert e["direction"] in ("in", "out"), where
    if t in ("message", "transfer") or (t == "complaint" and "conversation_id" in e):
        assert key == e["conversation_id"], (where, key)
    elif topic == "cs.chat":
        assert key == e["agent_id"], (where, key)
        flags["complaint_without_conv"] += 1
    elif topic == "shop.orders":
        assert key == e["order_id"], (where, key)
    else:
        assert key == e["agent_id"], (where, key)
    if t == "created":
        flags["created_with_agent" if "agent_id" in e else "created_without_agent"] += 1
    if t == "review":
        mx = e.get("max", 100)
        assert e["role"] in ("self", "manager", "indirect_manager"), where
        assert mx > 0 and 0 <= e["score"] <= mx, (where, e["score"], mx)
    if t in ("review", "target"):
        assert re.match(r"^\d{4}-\d\d$", e["period"]), where
        flags["periods"].add(e["period"])
    if t == "absence":
        assert DATE.match(e["from"]) and DATE.match(e["to"]) and e["from"] <= e["to"], where
    types[t] = types.get(t, 0) + 1
if len(sys.argv) > 2:  # a full window: everything the model makes must show up
    want = sys.argv[2].split(",")
    missing = [t for t in want if t not in types]
    assert not missing, ("types missing", missing, types)
    for k in ("created_with_agent", "created_without_agent", "complaint_without_conv",
              "amount_number", "amount_string", "ts_int", "ts_string"):
        assert flags[k] > 0, ("never seen", k)
    assert flags["periods"] == {"2026-08", "2026-09"}, flags["periods"]
print(" ".join("%s=%d" % kv for kv in sorted(types.items())))
PY
if out=$(python3 "$WORK/check.py" "$WORK/a.jsonl" 2>&1); then
    ok "2000 lines valid per the contract ($out)"
else
    fail "contract check: $out"
fi
sim --jsonl --seed 3 --agents 10 --shops 2 --customers 300 --duration 3d >"$WORK/full.jsonl" 2>/dev/null
ALL=message,transfer,complaint,created,paid,refunded,cancelled,flagged,review,target,absence
if out=$(python3 "$WORK/check.py" "$WORK/full.jsonl" "$ALL" 2>&1); then
    ok "3-day window over a month end: every type, both months ($out)"
else
    fail "full window: $out"
fi

# --- noise adds messages and changes nothing else ---
sim --jsonl --seed 7 --events 2000 --dup-rate 0.05 --bad-rate 0.05 >"$WORK/n.jsonl" 2>"$WORK/n.err"
if out=$(python3 - "$WORK/a.jsonl" "$WORK/n.jsonl" "$WORK/n.err" 2>&1 <<'PY'
import json, re, sys
clean = open(sys.argv[1]).read().splitlines()
noisy = open(sys.argv[2]).read().splitlines()
summary = dict(kv.split("=", 1) for kv in open(sys.argv[3]).read().split()[1:] if "=" in kv)
valid, seen, dups, bad = [], set(), 0, {"json": 0, "other": 0}
for line in noisy:
    topic, key, js = line.split("\t")
    try:
        e = json.loads(js)
    except ValueError:
        bad["json"] += 1
        continue
    if "-bad-" in e["event_id"]:
        bad["other"] += 1
        continue
    if line in seen:
        dups += 1
        continue
    seen.add(line)
    valid.append(line)
assert valid == clean, "valid events differ from the noise-free run"
assert dups == int(summary["duplicates"]) > 0, (dups, summary)
assert bad["json"] == int(summary["bad_json"]) > 0, (bad, summary)
assert bad["other"] == int(summary["bad_amount"]) + int(summary["unknown_type"]) > 0, (bad, summary)
assert len(noisy) == int(summary["messages"]), (len(noisy), summary)
print("%d duplicates, %d bad json, %d other bad" % (dups, bad["json"], bad["other"]))
PY
); then ok "noise only adds messages: $out"; else fail "noise: $out"; fi

# --- usage ---
"$CSMETRICS" simulate --help >/dev/null && ok "simulate --help exits 0" || fail "simulate --help"
"$CSMETRICS" kafka-mock --help | grep -q "100000 message batches" && ok "kafka-mock --help states the mock's retention" || fail "kafka-mock --help"
"$CSMETRICS" simulate --jsonl --tz Mars/Olympus 2>"$WORK/e.txt"; rc=$?
[ $rc -eq 2 ] && grep -qx "simulate: unknown time zone 'Mars/Olympus'" "$WORK/e.txt" && ok "unknown --tz: exit 2 with a message" || fail "unknown --tz: rc=$rc $(cat "$WORK/e.txt")"
"$CSMETRICS" simulate --jsonl --agents 0 2>"$WORK/e.txt"; rc=$?
[ $rc -eq 2 ] && grep -qx "simulate: invalid --agents '0': want an integer 1..999" "$WORK/e.txt" && ok "bad --agents: exit 2 with a message" || fail "bad --agents: rc=$rc $(cat "$WORK/e.txt")"

# --- into the mock cluster and back ---
start_kafka
KPID=${PIDS##* }
grep -q "^kafka-mock: bootstrap $BROKERS\$" "$WORK/kafka.log" && ok "kafka-mock prints its bootstrap address" || fail "kafka-mock output: $(cat "$WORK/kafka.log")"
if sim --seed 5 --events 5000 --dup-rate 0.01 --bad-rate 0.01 --bootstrap-file "$WORK/bootstrap" 2>"$WORK/k.err"; then
    ok "simulate into the mock exits 0"
else
    fail "simulate into the mock: $(cat "$WORK/k.err")"
fi
summary=$(grep '^simulate: ' "$WORK/k.err")
val() { echo "$summary" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
MESSAGES=$(val messages)
EXTRA=$(( $(val duplicates) + $(val bad_json) + $(val bad_amount) + $(val unknown_type) ))
[ "$(val events)" = 5000 ] && [ "$MESSAGES" -eq $((5000 + EXTRA)) ] && [ "$EXTRA" -gt 0 ] &&
    [ "$(val delivery_failures)" = 0 ] && [ "$(val delivered)" = "$MESSAGES" ] &&
    ok "summary: 5000 events + $EXTRA noise = $MESSAGES messages, all delivered" || fail "summary: $summary"
TOTAL=0
for t in cs.chat shop.orders cs.reviews; do
    kcat -C -b "$BROKERS" -t $t -e -q -f '%k\t%s\n' >"$WORK/read.$t" 2>/dev/null
    got=$(wc -l <"$WORK/read.$t")
    [ "$got" -eq "$(val $t)" ] && ok "$t: read back $got messages" || fail "$t: read $got, produced $(val $t)"
    TOTAL=$((TOTAL + got))
done
[ "$TOTAL" -eq "$MESSAGES" ] && ok "total read back equals messages produced ($TOTAL)" || fail "read back $TOTAL of $MESSAGES"
if out=$(python3 - "$WORK/read.cs.chat" "$WORK/read.shop.orders" "$WORK/read.cs.reviews" 2>&1 <<'PY'
import json, sys
n = 0
for path, field in zip(sys.argv[1:], ("conversation_id", "order_id", "agent_id")):
    for line in open(path):
        key, js = line.rstrip("\n").split("\t", 1)
        try:
            e = json.loads(js)
        except ValueError:
            continue  # the truncated ones
        want = e.get(field) or e.get("agent_id")  # a complaint without a conversation
        assert key == want, (path, key, js)
        n += 1
print(n)
PY
); then ok "every parsable message is keyed per the contract ($out)"; else fail "keys: $out"; fi

kill -TERM "$KPID"
wait "$KPID"; rc=$?
PIDS=${PIDS% *}
[ $rc -eq 0 ] && ok "kafka-mock exits 0 on SIGTERM" || fail "kafka-mock exit status $rc on SIGTERM"
[ ! -e "$WORK/bootstrap" ] && ok "kafka-mock removes its bootstrap file" || fail "bootstrap file left behind"

finish
