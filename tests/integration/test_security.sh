#!/bin/sh
# shellcheck disable=SC2154 # PID_<name> and p are set through eval by daemon() and stop()
# Security (issue 4). 1: Redis AUTH and ACL users — one redis-server with requirepass and an
# ACL user `csm` limited to the key and channel prefix csm: and without FUNCTION LOAD (the
# README's ACL line). The limited daemon refuses to start until an admin loads the library
# (`csmetricsd --redis-functions | redis-cli -x FUNCTION LOAD REPLACE`), then four daemons
# run the worked example (../shared/spec/example) with password-only auth over TCP
# (redis://:pw@...), user:password in the URL, redis.password_file and systemd credentials
# ($CREDENTIALS_DIRECTORY/redis-password), each into its own database; show, top and
# snapshots work as the limited user, and Redis' ACL LOG records no denial at all. A wrong
# password fails with a clear error. 2: secrets — every output and log of the daemon and
# the CLI, through success and failure paths (wrong password, unreachable Redis, bad broker
# with SASL and librdkafka debug logs, -t with errors, SIGHUP reloads changing the URL,
# --dump-config), is searched for every secret string.
. "$(dirname "$0")/lib.sh"

# Distinctive secrets: none of them may appear in any output of ours.
ADMINPW=AdmPw-f81c2e     # requirepass: the default user (also the admin loading functions)
URLPW=UrlPw-5d03aa       # csm's password in a URL
FILEPW=FilePw-9b7e41     # csm's password in redis.password_file
CREDPW=CredPw-3c6f18     # csm's password as a systemd credential
WRONGPW=WrongPw-77e0d2   # nobody's password
SASLLIT=SaslLit-2a9c55   # kafka.properties sasl.password given literally
SASLFILE=SaslFile-e4b7c0 # sasl.password as @file:
SASLUSER=SaslUser-61d9f3 # sasl.username as @file: (values from files are secret too)
SECRETS="$ADMINPW $URLPW $FILEPW $CREDPW $WRONGPW $SASLLIT $SASLFILE $SASLUSER"
# redis-cli (ours and lib.sh's helpers) authenticates as the admin through the environment.
REDISCLI_AUTH=$ADMINPW
export REDISCLI_AUTH
OUT=$WORK/out # every output of csmetricsd and csmetrics goes here; searched at the end
mkdir -p "$OUT"

# The README's ACL line (the product's promise): keys and channels under the prefix only,
# nothing dangerous, no scripting but calling functions and checking the library.
ACL="on >$URLPW >$FILEPW >$CREDPW resetkeys ~csm:* resetchannels &csm:* +@all -@dangerous -@scripting +fcall +fcall_ro +function|list"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# shellcheck disable=SC2086
start_redis r --port "$PORT" --bind 127.0.0.1 --requirepass "$ADMINPW" --user csm $ACL \
    --user nolist on ">$URLPW" "~csm:*" "&csm:*" +@all -@dangerous -@scripting +fcall
R=$WORK/r.sock
rcli() { redis-cli -s "$R" "$@"; }
start_kafka

# ---------------------------------------------------------------- the configurations
cat >"$WORK/rules/day.yaml" <<'EOF'
version: 1
name: sec-day
period: day
lateness: 1m
shops: ["*"]
score:
  - {kpi: reply_rate, weight: 100, linear: {zero: 0.0, full: 1.0}}
undefined: skip
EOF
conf() { # conf FILE GROUP URL [extra yaml on stdin]
    write_config "$1" "$2" "$3" <<EOF
timezone: Asia/Shanghai
periods: [month]
idle_timeout: 0
log_level: debug
$(cat)
EOF
}
printf '%s\n' "$FILEPW" >"$WORK/redis-pw"
mkdir -p "$WORK/creds"
printf '%s' "$CREDPW" >"$WORK/creds/redis-password"
conf "$WORK/a.yaml" secA "unix://csm:$URLPW@$R?db=1" </dev/null
conf "$WORK/b.yaml" secB "redis://:$ADMINPW@127.0.0.1:$PORT/2" </dev/null
conf "$WORK/c.yaml" secC "unix://csm@$R?db=3" </dev/null
sed -i "s|^  url: .*|&\n  password_file: $WORK/redis-pw|" "$WORK/c.yaml"
conf "$WORK/d.yaml" secD "unix://csm@$R?db=4" </dev/null
conf "$WORK/w.yaml" secW "unix://csm:$WRONGPW@$R?db=5" </dev/null
conf "$WORK/n.yaml" secN "unix://nolist:$URLPW@$R?db=5" </dev/null

daemon() { # daemon NAME [env assignments...]: csmetricsd -c NAME.yaml, log $OUT/NAME.log
    n=$1; shift
    env "$@" "$CSMETRICSD" -c "$WORK/$n.yaml" >>"$OUT/$n.log" 2>&1 &
    eval "PID_$n=$!"
    PIDS="$PIDS $!"
}
stop() { # stop NAME: SIGTERM, wait up to 10 s
    eval "p=\$PID_$1"
    kill -TERM "$p" 2>/dev/null; i=0
    while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null
}
cli() { # cli NAME LOG ARGS...: csmetrics -c NAME.yaml ARGS, stdout+stderr appended to $OUT/LOG
    n=$1; log=$2; shift 2
    "$CSMETRICS" -c "$WORK/$n.yaml" "$@" >>"$OUT/$log" 2>&1
}

# ---------------------------------------------------------------- 1: the library needs an admin
daemon a
if wait_for grep -q "may not load it" "$OUT/a.log"; then
    ok "limited user, no library loaded: the daemon says an admin must load it"
else
    fail "limited user without library: $(tail -3 "$OUT/a.log")"
fi
grep "may not load it" "$OUT/a.log" | head -1 | grep -q "cannot load redis functions on 'unix:$R': NOPERM .*user 'csm'.*csmetricsd --redis-functions | redis-cli -x FUNCTION LOAD REPLACE" &&
    ok "  ... naming the user and the command to run" || fail "hint: $(grep -m1 'may not load' "$OUT/a.log")"
kill -0 "$PID_a" 2>/dev/null && ok "  ... and keeps retrying (no exit)" || fail "the daemon exited"
stop a
cli a cli-nolib.log show --shop demo --agent x1 && fail "csmetrics show without library exits 0" ||
    { grep -q "may not load it" "$OUT/cli-nolib.log" && ok "csmetrics show without library: exit 1, same hint" ||
        fail "csmetrics show without library: $(cat "$OUT/cli-nolib.log")"; }
cli n cli-nolist.log show --shop demo --agent x1
grep -q "library 'csmetrics' is not checked (FUNCTION LIST refused: allow +function|list) and user 'nolist' may not load it" "$OUT/cli-nolist.log" &&
    ok "a user without FUNCTION LIST is told to allow it" || fail "no FUNCTION LIST: $(cat "$OUT/cli-nolist.log")"
"$CSMETRICSD" --redis-functions | rcli -x FUNCTION LOAD REPLACE >"$WORK/load.out" 2>&1
[ "$(cat "$WORK/load.out")" = csmetrics ] && ok "admin: csmetricsd --redis-functions | redis-cli -x FUNCTION LOAD REPLACE" ||
    fail "admin load: $(cat "$WORK/load.out")"
rcli ACL LOG RESET >/dev/null

# ---------------------------------------------------------------- 1: four ways to authenticate
daemon a
daemon b
daemon c
daemon d CREDENTIALS_DIRECTORY="$WORK/creds"
daemon w
produce_example
TOTAL=$(cat "$EXAMPLE/chat.jsonl" "$EXAMPLE/orders.jsonl" "$EXAMPLE/reviews.jsonl" | grep -c .)
for x in a:1:"user:password in the URL" b:2:"password only, TCP redis://:pw@" \
    c:3:"redis.password_file" d:4:"systemd credential redis-password"; do
    n=${x%%:*}; rest=${x#*:}; db=${rest%%:*}; what=${rest#*:}
    if ! wait_committed "$R" "$db" "$TOTAL" 60; then
        fail "$what: $(committed_total "$R" "$db") of $TOTAL messages committed"; tail -3 "$OUT/$n.log"; continue
    fi
    sleep 2 # attribution runs on the next tick
    : >"$WORK/$n.show"
    env=""; [ "$n" = d ] && env="CREDENTIALS_DIRECTORY=$WORK/creds"
    for ag in x1 x2; do
        env $env "$CSMETRICS" -c "$WORK/$n.yaml" show --shop demo --agent $ag --period 2026-08 --json \
            >>"$WORK/$n.show" 2>>"$OUT/cli-$n.log"
    done
    cat "$WORK/$n.show" >>"$OUT/cli-$n.log"
    python3 "$ROOT/tests/integration/compare_json.py" "$EXAMPLE/expected-show.jsonl" "$WORK/$n.show" &&
        ok "$what: the example's KPIs, as expected-show.jsonl" || fail "$what: show differs"
done
if wait_for grep -q "redis auth failed for user 'csm': WRONGPASS" "$OUT/w.log"; then
    ok "wrong password: \"$(grep -m1 -o "redis auth failed.*" "$OUT/w.log")\""
else
    fail "wrong password: $(tail -3 "$OUT/w.log")"
fi
kill -0 "$PID_w" 2>/dev/null && ok "  ... not ready, retrying" || fail "wrong password: the daemon exited"
cli w cli-w.log show --shop demo --agent x1 && fail "csmetrics show with a wrong password exits 0" ||
    { grep -q "^csmetrics: redis auth failed for user 'csm': WRONGPASS" "$OUT/cli-w.log" &&
        ok "csmetrics show, wrong password: exit 1, redis auth failed for user 'csm'" || fail "show: $(cat "$OUT/cli-w.log")"; }

# the limited user's tools
cli a top-a.log top --once --period 2026-08 --shop demo &&
    grep -q x1 "$OUT/top-a.log" && grep -q x2 "$OUT/top-a.log" &&
    ok "limited user: csmetrics top --once" || fail "top as the limited user: $(cat "$OUT/top-a.log")"
wait_for sh -c "'$CSMETRICS' -c '$WORK/a.yaml' snapshots --rule sec-day --json 2>/dev/null | grep -q sec-day"
cli a snap-a.log snapshots --rule sec-day --json &&
    n=$(grep -c '"sec-day"' "$OUT/snap-a.log") && [ "$n" -ge 1 ] &&
    ok "limited user: the daemon closed days (sec-day), csmetrics snapshots lists $n" ||
    fail "snapshots as the limited user: $(head -3 "$OUT/snap-a.log")"
cli a snap-a.log snapshots >/dev/null && ok "limited user: csmetrics snapshots (table)" || fail "snapshots table"
bad=$(rcli --scan | grep -v '^csm:' | head -3)
[ -z "$bad" ] && ok "every key written is under the prefix csm:" || fail "keys outside csm:: $bad"
# (the wrong-password daemon's failed AUTHs are logged as reason "auth": left out here)
rcli --json ACL LOG 1000 >"$WORK/acl.json"
denied=$(python3 -c 'import json, sys
print(" ".join("%s %s %s" % (e["reason"], e["object"], e["username"])
               for e in json.load(open(sys.argv[1])) if e["reason"] != "auth"))' "$WORK/acl.json")
[ -z "$denied" ] && ok "ACL LOG: the limited user was never denied a command, key or channel" ||
    fail "ACL LOG denials: $denied"
# A wrong password is retried with back-off, not in a loop (each AUTH is an ACL LOG entry).
rcli ACL LOG RESET >/dev/null
sleep 2
tries=$(rcli --json ACL LOG 1 | python3 -c 'import json, sys; l = json.load(sys.stdin); print(l[0]["count"] if l else 0)')
[ "$tries" -le 20 ] && ok "wrong password: $tries AUTH attempts in 2 s (backed off)" ||
    fail "wrong password: $tries AUTH attempts in 2 s: reconnecting without back-off"

# ---------------------------------------------------------------- 2: secrets through reloads
# a URL with another password and an invalid file with secrets in it: neither is printed
sed -i "s|csm:$URLPW@|csm:$FILEPW@|" "$WORK/a.yaml"
kill -HUP "$PID_a"
wait_for grep -q "changes apply at the next restart" "$OUT/a.log" && ok "SIGHUP with a changed URL: logged, applied at restart" ||
    fail "SIGHUP with a changed URL: $(tail -2 "$OUT/a.log")"
sed -i "s|^  url: .*|  url: \"rediss://csm:$URLPW@127.0.0.1:$PORT\"|" "$WORK/a.yaml"
kill -HUP "$PID_a"
wait_for grep -q "reload failed" "$OUT/a.log" && ok "SIGHUP with an invalid URL: reload failed" || fail "no reload failure logged"
for n in a b c d w; do stop $n; done

# ---------------------------------------------------------------- 2: Kafka SASL secrets
conf "$WORK/k1.yaml" secK1 "unix://csm:$URLPW@$R?db=6" </dev/null
conf "$WORK/k2.yaml" secK2 "unix://csm@$R?db=7" </dev/null
printf '%s\n' "$SASLFILE" >"$WORK/sasl-pw"
printf '%s' "$SASLUSER" >"$WORK/sasl-user"
sed -i "s|^  properties: {|  properties: {security.protocol: SASL_PLAINTEXT, sasl.mechanisms: PLAIN, sasl.username: u1, sasl.password: \"$SASLLIT\", debug: \"security,broker,conf\", |" "$WORK/k1.yaml"
sed -i "s|^  properties: {|  properties: {security.protocol: SASL_PLAINTEXT, sasl.mechanisms: PLAIN, sasl.username: \"@file:$WORK/sasl-user\", sasl.password: \"@file:$WORK/sasl-pw\", |" "$WORK/k2.yaml"
sed -i "s|^  url: .*|&\n  password_file: $WORK/redis-pw|" "$WORK/k2.yaml"
for f in k1 k2; do sed -i 's|^  brokers: .*|  brokers: "127.0.0.1:1"|' "$WORK/$f.yaml"; done
for f in a b c d w k1 k2; do
    "$CSMETRICSD" -c "$WORK/$f.yaml" --dump-config >"$OUT/dump-$f.log" 2>&1 # a.yaml is invalid now
    "$CSMETRICSD" -c "$WORK/$f.yaml" -t >"$OUT/t-$f.log" 2>&1
    cli "$f" "check-$f.log" check
done
CREDENTIALS_DIRECTORY=$WORK/creds "$CSMETRICSD" -c "$WORK/d.yaml" --dump-config >"$OUT/dump-d2.log" 2>&1
grep -q "sasl.password: \"<redacted>\"" "$OUT/dump-k1.log" && grep -q "sasl.username: \"<redacted>\"" "$OUT/dump-k2.log" &&
    grep -q "url: \"unix://csm:<redacted>@" "$OUT/dump-k1.log" && grep -q "password_file: \"$WORK/redis-pw\"" "$OUT/dump-k2.log" &&
    grep -q "password_file: \"$WORK/creds/redis-password\"" "$OUT/dump-d2.log" &&
    ok "--dump-config: URL password, sasl.password, @file: values <redacted>; password files by path" ||
    fail "--dump-config: $(grep -E 'url|sasl|password' "$OUT/dump-k1.log" "$OUT/dump-k2.log" "$OUT/dump-d2.log")"
# -t and check with errors after the secrets are read
for f in k1 k2; do
    cp "$WORK/$f.yaml" "$WORK/${f}e.yaml"; echo "bogus: 1" >>"$WORK/${f}e.yaml"
    "$CSMETRICSD" -c "$WORK/${f}e.yaml" -t >"$OUT/te-$f.log" 2>&1 && fail "-t accepts an unknown key"
    cli "${f}e" "checke-$f.log" check && fail "check accepts an unknown key"
    "$CSMETRICSD" -c "$WORK/${f}e.yaml" >"$OUT/rune-$f.log" 2>&1 && fail "the daemon starts with an unknown key"
done
grep -q "unknown key 'bogus'" "$OUT/te-k1.log" && ok "-t, check, start with an unknown key: errors" || fail "-t: $(cat "$OUT/te-k1.log")"
# a URL the parser rejects, with a password in it
sed "s|^  url: .*|  url: \"redis://csm:$URLPW@127.0.0.1:notaport/0\"|" "$WORK/k1.yaml" >"$WORK/k1u.yaml"
"$CSMETRICSD" -c "$WORK/k1u.yaml" >"$OUT/run-k1u.log" 2>&1 && fail "a bad port starts"
grep -q "invalid redis url 'redis://csm:\*\*\*@127.0.0.1:notaport/0': bad port" "$OUT/run-k1u.log" &&
    ok "invalid URL: password masked as ***" || fail "bad URL: $(cat "$OUT/run-k1u.log")"
cli k1u cli-k1u.log show --shop demo --agent x1
# a password as a query parameter (not supported: refused, and masked)
sed "s|^  url: .*|  url: \"unix://$R?db=1\&password=$URLPW\"|" "$WORK/k1.yaml" >"$WORK/k1q.yaml"
"$CSMETRICSD" -c "$WORK/k1q.yaml" >"$OUT/run-k1q.log" 2>&1 && fail "?password= starts"
grep -q "unknown parameter 'password' (only db=N)" "$OUT/run-k1q.log" && ok "unix://...?password=: refused, masked" ||
    fail "?password=: $(cat "$OUT/run-k1q.log")"
cli k1q cli-k1q.log show --shop demo --agent x1
"$CSMETRICSD" -c "$WORK/k1q.yaml" --dump-config >"$OUT/dump-k1q.log" 2>&1
# librdkafka rejects a value read from a file, quoting it ('Invalid value "..." for ...')
sed "s|^  properties: {security.protocol: SASL_PLAINTEXT, |  properties: {security.protocol: \"@file:$WORK/sasl-user\", |" "$WORK/k1.yaml" >"$WORK/k5.yaml"
"$CSMETRICSD" -c "$WORK/k5.yaml" -t >"$OUT/t-k5.log" 2>&1 && fail "-t accepts a bad property"
cli k5 check-k5.log check
grep -q "'kafka.properties.security.protocol' rejected by librdkafka (its message is not shown: the value is secret)" "$OUT/t-k5.log" &&
    ok "-t: librdkafka's message quoting a value from @file: is not shown" || fail "-t rejected property: $(cat "$OUT/t-k5.log")"
# unreachable Redis with a password; a broker that is not there, SASL and debug logs
sed "s|$R|$WORK/nowhere.sock|" "$WORK/k1.yaml" >"$WORK/k4.yaml"
daemon k1
daemon k2
daemon k4
wait_for grep -q "cannot connect to redis 'unix:$WORK/nowhere.sock'" "$OUT/k4.log" &&
    ok "unreachable Redis: \"$(grep -m1 -o "cannot connect to redis.*" "$OUT/k4.log")\"" || fail "unreachable: $(tail -2 "$OUT/k4.log")"
cli k4 cli-k4.log show --shop demo --agent x1 && fail "show with unreachable Redis exits 0"
cli k4 cli-k4.log top --once
cli k4 cli-k4.log snapshots
sleep 3
grep -q "rdkafka" "$OUT/k1.log" && ok "bad broker with SASL: librdkafka logs ($(grep -c rdkafka "$OUT/k1.log") lines with debug security,broker,conf)" ||
    fail "no librdkafka log for a bad broker: $(tail -3 "$OUT/k1.log")"
kill -HUP "$PID_k1"
sleep 0.5
for n in k1 k2 k4; do stop $n; done

# ---------------------------------------------------------------- 2: the search
n=$(cat "$OUT"/* | wc -l)
leaks=""
for s in $SECRETS; do
    f=$(grep -l -F "$s" "$OUT"/* 2>/dev/null | tr '\n' ' ')
    [ -n "$f" ] && leaks="$leaks $s in: $f;"
done
[ -z "$leaks" ] && ok "no secret in any of $(ls "$OUT" | wc -l) outputs ($n lines)" || fail "secrets leaked:$leaks"
finish
