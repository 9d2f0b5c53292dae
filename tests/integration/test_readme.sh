#!/bin/sh
# The README's configuration table is the one the loader's table prints, line for line,
# and every key of config/csmetrics.yaml.example loads (csmetricsd -t).
. "$(dirname "$0")/lib.sh"
"$CSMETRICSD" --config-reference >"$WORK/ref.md"
awk 'NR==FNR { want[++n] = $0; next } i < n && $0 == want[i + 1] { i++ } END { exit i == n ? 0 : 1 }' \
    "$WORK/ref.md" "$ROOT/README.md" && ok "README configuration table is current" ||
    fail "README configuration table differs from 'csmetricsd --config-reference'"
sed "s|^rules_dir: .*|rules_dir: $WORK/rules|" "$ROOT/config/csmetrics.yaml.example" >"$WORK/example.yaml"
"$CSMETRICSD" -t -c "$WORK/example.yaml" 2>"$WORK/t.err" && ok "example configuration passes -t" ||
    fail "example configuration: $(cat "$WORK/t.err")"
printf 'kafka:\n  brokers: x\n  topic: y\n' >"$WORK/bad.yaml"
"$CSMETRICSD" -t -c "$WORK/bad.yaml" 2>"$WORK/bad.err"; rc=$?
[ $rc -eq 1 ] && grep -q "^$WORK/bad.yaml:3:3: unknown key 'kafka.topic'" "$WORK/bad.err" &&
    ok "-t reports file:line:column and exits 1" || fail "-t on a bad file: rc=$rc $(cat "$WORK/bad.err")"
"$CSMETRICSD" --dump-config -c "$ROOT/config/csmetrics.yaml.example" >"$WORK/dump.yaml" && grep -q "timezone: \"Asia/Shanghai\"" "$WORK/dump.yaml" &&
    ok "--dump-config prints the effective configuration" || fail "--dump-config"
finish
