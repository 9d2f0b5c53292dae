#!/bin/sh
# run.sh BUILD_DIR SECONDS HARNESS... — runs each libFuzzer harness BUILD_DIR/fuzz_<h> for
# SECONDS on BUILD_DIR/corpus/<h> (the seeds of fuzz/corpus/<h> copied over what earlier
# runs found), with fuzz/<h>.dict, one after the other, after replaying the inputs of
# fuzz/regressions/<h>/ (past findings, kept whatever their size). Crash, leak and timeout files go
# to BUILD_DIR/findings/, each run's log to BUILD_DIR/logs/<h>.log. Prints executions per
# harness; exits 1 when any harness found something.
set -u
b=$1 secs=$2
shift 2
mkdir -p "$b/findings" "$b/logs"
status=0
summary=""
for h in "$@"; do
    bin=$b/fuzz_$h
    corpus=$b/corpus/$h
    log=$b/logs/$h.log
    mkdir -p "$corpus"
    [ -d "fuzz/corpus/$h" ] && cp -R "fuzz/corpus/$h/." "$corpus/"
    set -- -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$b/findings/$h-"
    [ -f "fuzz/$h.dict" ] && set -- "$@" -dict="fuzz/$h.dict"
    case $h in
    decode) set -- "$@" -max_len=8192 ;;
    expr) set -- "$@" -max_len=4608 ;;
    config | rules) set -- "$@" -max_len=16384 ;;
    esac
    # Inputs that once failed, whatever their size: each must now pass.
    if [ -n "$(ls "fuzz/regressions/$h" 2>/dev/null)" ] &&
        ! "$bin" -runs=1 "fuzz/regressions/$h"/* </dev/null >"$b/logs/$h.regressions.log" 2>&1; then
        status=1
        echo "fuzz: $h FAILED on fuzz/regressions/$h (log $b/logs/$h.regressions.log)"
    fi
    before=$(ls "$b/findings" | grep -c "^$h-")
    echo "fuzz: $h for ${secs}s (log $log)"
    "$bin" "$@" "$corpus" </dev/null >"$log" 2>&1
    rc=$?
    after=$(ls "$b/findings" | grep -c "^$h-")
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    files=$(ls "$corpus" | wc -l)
    found=$((after - before))
    if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
        status=1
        echo "fuzz: $h FAILED (exit $rc, $found new file(s) in $b/findings):"
        grep -E "ERROR|SUMMARY|check failed|runtime error|fuzz_$h:" "$log" | head -n 20
    fi
    summary="$summary$(printf '%-8s %12s execs %8s/s %6s corpus files  %s findings' \
        "$h" "${execs:-?}" "${rate:-?}" "$files" "$found")
"
done
echo "fuzz: ${secs}s per harness"
printf '%s' "$summary"
exit $status
