#!/bin/sh
# seeds.sh BUILD_DIR — rewrites fuzz/corpus/<harness>/ (run from the repository root by
# `make fuzz-seeds`, after it built BUILD_DIR/seedgen_<harness>). Seeds: the spec's
# example events (/work/shared/spec/example when present, else tests/fixtures/decode),
# every case of the unit tests' tables, config/csmetrics.yaml.example, the config and
# rule fixtures, the shipped rule files, and the expressions those rule files hold.
set -eu
b=$1
spec=${SPEC_EXAMPLE:-/work/shared/spec/example}
c=fuzz/corpus
for h in decode config rules expr; do
    rm -rf "$c/$h"
    mkdir -p "$c/$h"
    "$b/seedgen_$h" "$c/$h"
done

# decode: one selector byte (0 chat, 1 orders, 2 reviews), then one message.
[ -d "$spec" ] || spec=tests/fixtures/decode
n=0
for pair in 0:chat 1:orders 2:reviews; do
    byte=${pair%%:*} name=${pair#*:}
    while IFS= read -r line || [ -n "$line" ]; do
        [ -n "$line" ] || continue
        n=$((n + 1))
        { printf "\\00$byte"; printf '%s' "$line"; } >"$c/decode/example-$name-$n"
    done <"$spec/$name.jsonl"
done

# config
cp config/csmetrics.yaml.example "$c/config/csmetrics.yaml.example"
for f in tests/fixtures/config/*.yaml; do cp "$f" "$c/config/fixture-${f##*/}"; done

# rules (the rule tests *.test.yaml are not rule files, but they are YAML the loader must
# refuse cleanly)
for f in rules/examples/*.yaml; do cp "$f" "$c/rules/example-${f##*/}"; done
for f in tests/fixtures/rules/*.yaml; do cp "$f" "$c/rules/fixture-${f##*/}"; done

# expr: the expressions of the shipped rule files (eligible, when, amount, expr values)
n=0
sed -n 's/.*\(eligible\|when\|amount\|expr\): *\([^,}]*\).*/\2/p' rules/examples/*.yaml \
    tests/fixtures/rules/plan*.yaml | sed 's/^"\(.*\)"$/\1/; s/ *#.*//' | sort -u |
    while IFS= read -r e; do
        [ -n "$e" ] || continue
        n=$((n + 1))
        printf '%s' "$e" >"$c/expr/rule-$n"
    done
for h in decode config rules expr; do
    echo "fuzz/corpus/$h: $(ls "$c/$h" | wc -l) seeds"
done
