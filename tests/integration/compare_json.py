#!/usr/bin/env python3
"""Compares two files of JSON lines as numbers (ratios within 1e-9 relative).
Usage: compare_json.py EXPECTED ACTUAL — exit 0 when every line matches, else prints the diff."""
import json, math, sys


def same(a, b, path):
    if isinstance(a, dict) and isinstance(b, dict):
        errs = []
        for k in sorted(set(a) | set(b)):
            if k not in a:
                errs.append(f"{path}.{k}: unexpected (actual {b[k]!r})")
            elif k not in b:
                errs.append(f"{path}.{k}: missing (expected {a[k]!r})")
            else:
                errs += same(a[k], b[k], f"{path}.{k}")
        return errs
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None or isinstance(a, str):
        return [] if a == b else [f"{path}: expected {a!r}, actual {b!r}"]
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
            return []
        return [f"{path}: expected {a!r}, actual {b!r}"]
    return [] if a == b else [f"{path}: expected {a!r}, actual {b!r}"]


def load(p):
    with open(p) as f:
        return [json.loads(line) for line in f if line.strip()]


exp, act = load(sys.argv[1]), load(sys.argv[2])
errs = []
if len(exp) != len(act):
    errs.append(f"expected {len(exp)} lines, got {len(act)}")
for i, (e, a) in enumerate(zip(exp, act)):
    errs += same(e, a, f"line{i + 1}")
for e in errs:
    print("   ", e)
sys.exit(1 if errs else 0)
