#!/bin/sh
# Retention: with `retention: 1d`, a day's figures, live KPIs and rule outputs leave Redis
# once the close watermark is a day (plus lateness) past its end, while the periods still
# open and a rule's newest closed period stay; conversation and order records no event can
# use any more (`conversation_retention`, `order_retention`) are swept from the partition
# state, and a conversation resumed after its retention starts a new timeline. With
# `cache_max_records: 1000`, 3000 distinct conversations leave at most 1000 in memory.
. "$(dirname "$0")/lib.sh"
start_redis r
start_kafka --partitions 2
write_config "$WORK/c.yaml" retention "unix://$WORK/r.sock" <<EOF2
periods: [day]
idle_timeout: 0
retention: 1d
conversation_retention: 1d
order_retention: 1d
cache_max_records: 1000
EOF2
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -i "s|^http: .*|http: {listen: \"127.0.0.1:$PORT\"}|" "$WORK/c.yaml"
cat >"$WORK/rules/daily.yaml" <<'EOF2'
version: 1
name: daily
period: day
score:
  - {kpi: reply_rate, weight: 100}
EOF2
R() { redis-cli -s "$WORK/r.sock" "$@"; }
chat() { # chat ID CONV DIR ISO-TS
    printf '%s\t{"event_id": "%s", "type": "message", "ts": "%s", "shop_id": "demo", "conversation_id": "%s", "agent_id": "x1", "customer_id": "u-%s", "direction": "%s"}\n' \
        "$2" "$1" "$4" "$2" "$2" "$3"
}
order() { # order ID ORDER ISO-TS
    printf '%s\t{"event_id": "%s", "type": "created", "ts": "%s", "shop_id": "demo", "order_id": "%s", "customer_id": "u-%s", "agent_id": "x1", "amount": "10.00"}\n' \
        "$2" "$1" "$3" "$2" "$2"
}
{
    chat e1 c1 in 2026-08-01T10:00:00+08:00
    chat e2 c1 out 2026-08-01T10:01:00+08:00
    chat e3 c2 in 2026-08-02T10:00:00+08:00
    chat e4 c2 out 2026-08-02T10:02:00+08:00
    chat e5 c3 in 2026-08-05T10:00:00+08:00
    chat e6 c3 out 2026-08-05T10:03:00+08:00
} | kcat -P -b "$BROKERS" -t cs.chat -K "$(printf '\t')"
{
    order o1 o1 2026-08-01T11:00:00+08:00
    order o5 o5 2026-08-05T11:00:00+08:00
} | kcat -P -b "$BROKERS" -t shop.orders -K "$(printf '\t')"
start_daemon "$WORK/c.yaml" "$WORK/d.log"
wait_settled "$WORK/r.sock" 0 8 || fail "events not committed"
A='csm:{a:demo:x1}'
# close watermark 2026-08-05 11:00: cutoff one day and 10 min before it, so August 1 and
# 2 (ended 2026-08-03 00:00) go once the rule closed them (a sweep every 15 s), August 5 stays
i=0; while [ -n "$(R zscore "$A:periods" 2026-08-02)" ] && [ $i -lt 400 ]; do sleep 0.1; i=$((i + 1)); done
[ -z "$(R zscore "$A:periods" 2026-08-01)$(R zscore "$A:periods" 2026-08-02)" ] &&
    ok "expired days left the agent's period list" || fail "periods: $(R zrange "$A:periods" 0 -1 | tr '\n' ' ')"
[ "$(R zrange "$A:periods" 0 -1 | tr '\n' ' ')" = "2026-08-05 " ] &&
    ok "the open day stays listed" || fail "periods: $(R zrange "$A:periods" 0 -1 | tr '\n' ' ')"
left=$(R --scan --pattern 'csm:{[atu]:demo*}:2026-08-0[12]:*' | wc -l)
[ "$left" -eq 0 ] && ok "no key of an expired day is left (figures, kpi hashes)" ||
    fail "$left keys left: $(R --scan --pattern 'csm:{[atu]:demo*}:2026-08-0[12]:*' | head -5 | tr '\n' ' ')"
[ "$(R exists "$A:2026-08-05:c" "$A:2026-08-05:kpi" 'csm:{t:demo}:2026-08-05:c')" = 3 ] &&
    ok "the open day's figures stay" || fail "2026-08-05 figures missing"
"$CSMETRICS" -c "$WORK/c.yaml" show --shop demo --agent x1 --period 2026-08-05 --json >"$WORK/show.json" &&
    grep -q '"orders": *1' "$WORK/show.json" && ok "show reads the open day (1 order)" || fail "show: $(cat "$WORK/show.json")"
"$CSMETRICS" -c "$WORK/c.yaml" show --shop demo --agent x1 --period 2026-08-01 --json >/dev/null 2>&1 &&
    fail "show still finds 2026-08-01" || ok "show has no figures for the expired day"
# the rule closed the days it has figures for; the newest closed one stays for prev.*
X='csm:{x:daily:demo}'
[ "$(R zrange "$X:periods" 0 -1 | tr '\n' ' ')" = "2026-08-02 " ] && ok "rule: 2026-08-01 deleted, its newest closed day kept" ||
    fail "rule periods: $(R zrange "$X:periods" 0 -1 | tr '\n' ' ')"
[ "$(R exists "$X:2026-08-01:final" "$X:2026-08-01:board" "$X:2026-08-01:state")" = 0 ] &&
    ok "expired rule outputs deleted" || fail "rule outputs of 2026-08-01 left"
[ "$(R get "$X:2026-08-02:state")" = emitted ] && [ "$(R hlen "$X:2026-08-02:final")" = 1 ] &&
    ok "the newest closed day's outputs stay" || fail "2026-08-02 state: '$(R get "$X:2026-08-02:state")'"
# partition state: c1, c2 and o1 swept (a sweep every 10 s); c3 and o5 stay
has() { for k in $(R --scan --pattern "csm:{p:$1:*}:$2"); do R hexists "$k" "$3"; done | grep -c '^1$'; }
i=0; while [ "$(has cs.chat conv c1)$(has cs.chat conv c2)$(has shop.orders ord o1)" != 000 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
[ "$(has cs.chat conv c1)$(has cs.chat conv c2)$(has shop.orders ord o1)" = 000 ] &&
    ok "old conversation and order records swept" || fail "records left: c1=$(has cs.chat conv c1) c2=$(has cs.chat conv c2) o1=$(has shop.orders ord o1)"
[ "$(has cs.chat conv c3)$(has shop.orders ord o5)" = 11 ] && ok "recent records kept" || fail "recent records gone"
# c1 resumes on 2026-08-05: a new timeline, so its wait is a first wait again
{
    chat e7 c1 in 2026-08-05T12:00:00+08:00
    chat e8 c1 out 2026-08-05T12:01:00+08:00
} | kcat -P -b "$BROKERS" -t cs.chat -K "$(printf '\t')"
wait_committed "$WORK/r.sock" 0 10 || fail "resumed conversation not committed"
[ "$(R hget "$A:2026-08-05:c" first_n)" = 2 ] && ok "resumed conversation starts anew (2 first waits)" ||
    fail "first_n=$(R hget "$A:2026-08-05:c" first_n)"
grep -q 'deleted expired periods' "$WORK/d.log" && ok "deletion logged" || fail "no retention log line"
# hostile input: 3000 distinct conversation ids; the cache stays within cache_max_records
i=0; while [ $i -lt 3000 ]; do chat "f$i" "flood$i" in 2026-08-05T13:00:00+08:00; i=$((i + 1)); done |
    kcat -P -b "$BROKERS" -t cs.chat -K "$(printf '\t')"
wait_committed "$WORK/r.sock" 0 3010 || fail "flood not committed"
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
sleep 1.5
cached=$(metric csmetrics_cache_records); evicted=$(metric csmetrics_cache_evictions_total)
[ "${cached:-9999}" -le 1000 ] && [ "${evicted:-0}" -gt 0 ] &&
    ok "3000 conversations: $cached cached (<= 1000), $evicted evicted" || fail "cached=$cached evicted=$evicted"
[ "$(metric csmetrics_state_records_swept_total)" -ge 3 ] && [ "$(metric csmetrics_periods_deleted_total)" -ge 4 ] &&
    ok "sweeps and deletions counted on /metrics" ||
    fail "swept=$(metric csmetrics_state_records_swept_total) deleted=$(metric csmetrics_periods_deleted_total)"
finish
