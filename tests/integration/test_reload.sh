#!/bin/sh
# SIGHUP: the daemon re-reads its configuration and rule files; a broken file keeps the
# running set (logged with file:line:column), a valid change is taken at once.
. "$(dirname "$0")/lib.sh"
start_redis r
start_kafka
write_config "$WORK/c.yaml" reload "unix://$WORK/r.sock" <<EOF2
periods: [month]
idle_timeout: 0
EOF2
cp "$ROOT/rules/examples/plan2.yaml" "$WORK/rules/"
start_daemon "$WORK/c.yaml" "$WORK/d.log"
wait_for grep -q "ready redis and kafka reachable" "$WORK/d.log" && grep -q "rules=1" "$WORK/d.log" &&
    ok "started with 1 rule file" || fail "start: $(tail -3 "$WORK/d.log")"
printf 'version: 1\nname: broken\nperiod: month\nscore:\n  - {kpi: reply_rat, weight: 5}\n' >"$WORK/rules/broken.yaml"
kill -HUP "$DAEMON_PID"
if wait_for grep -q "reload failed, keeping the running configuration and rules: .*broken.yaml:5:11: unknown KPI 'reply_rat'" "$WORK/d.log"; then
    ok "a broken rule file: reload refused with file:line:column, previous rules kept"
else
    fail "broken reload not reported: $(tail -3 "$WORK/d.log")"
fi
kill -0 "$DAEMON_PID" 2>/dev/null && ok "daemon still running after the refused reload" || fail "daemon died"
cp "$ROOT/rules/examples/plan3.yaml" "$WORK/rules/"
rm "$WORK/rules/broken.yaml"
kill -HUP "$DAEMON_PID"
wait_for grep -q "reloaded configuration and rules rules=2" "$WORK/d.log" &&
    ok "a valid change: reloaded with 2 rule files" || fail "reload not taken: $(tail -3 "$WORK/d.log")"
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID"; rc=$?
[ $rc -eq 0 ] && ok "SIGTERM: exit 0" || fail "SIGTERM: exit $rc"
finish
