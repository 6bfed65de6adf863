#!/usr/bin/env bash
# Verifier throughput against Math-Verify on the same inputs, in one run: builds the inputs from shared
# data, times bench_verify (C++, one thread) and Math-Verify 0.8.0 (Python, one thread), prints
# checks/second, the ratio and the verdict agreement for GSM8K-style completions and MATH-500 LaTeX pairs.
#   bench/verify/run.sh [BUILD_DIR=build-rewards]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build-rewards}
VENV=${VENV:-/root/.cache/rlvr/venv-torch2.11.0}
DATA=${RLVR_SHARED_DATA:-$ROOT/../shared/data}
OUT=$BUILD/bench_verify_inputs
[[ -n "${SKIP_BUILD:-}" ]] || cmake --build "$BUILD" -j1 --target bench_verify >/dev/null
python3 "$ROOT/bench/verify/make_inputs.py" --data "$DATA" --out "$OUT" >/dev/null
for set in gsm8k latex; do
  cpp=$("$BUILD/bench/verify/bench_verify" "$OUT/$set.jsonl" --repeat 20 --verdicts "$OUT/$set.cpp.verdicts")
  mv=$("$VENV/bin/python" "$ROOT/bench/verify/mv_bench.py" "$OUT/$set.jsonl" --verdicts "$OUT/$set.mv.verdicts")
  python3 - "$set" "$cpp" "$mv" "$OUT/$set.cpp.verdicts" "$OUT/$set.mv.verdicts" <<'PY'
import json, sys
name, cpp, mv = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
a = open(sys.argv[4]).read().split(); b = open(sys.argv[5]).read().split()
agree = sum(x == y for x, y in zip(a, b)) / max(1, len(a))
print(f"{name:6s} rlvr {cpp['checks_per_sec']:12.0f} checks/s | Math-Verify {mv['checks_per_sec']:8.1f} checks/s | "
      f"ratio {cpp['checks_per_sec'] / mv['checks_per_sec']:7.1f}x | correct rlvr {a.count('true')}/{len(a)} "
      f"MV {b.count('true')}/{len(b)} | verdict agreement {100 * agree:.1f}%")
PY
done
