#!/usr/bin/env bash
# rlvr_verify (the pip package, from Python) against Math-Verify on the inputs of run.sh, in one process.
#   bench/verify/py_run.sh [WORK_DIR=build/py_bench] [py_bench.py options]
# Uses the wheel the python_package test left in build/tests/python/python_package (or builds one with pip),
# installs it into WORK_DIR/target and runs py_bench.py with the test venv's interpreter (which has
# math-verify) and that folder on PYTHONPATH.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${1:-$ROOT/build/py_bench}
shift || true
VENV=${VENV:-/root/.cache/rlvr/venv-torch2.11.0}
DATA=${RLVR_SHARED_DATA:-$ROOT/../shared/data}
mkdir -p "$WORK"
python3 "$ROOT/bench/verify/make_inputs.py" --data "$DATA" --out "$WORK/inputs" >/dev/null
whl=$(ls "$ROOT"/build/tests/python/python_package/wheel-*/rlvr_verify-*.whl 2>/dev/null | head -1 || true)
if [[ -z "$whl" ]]; then
  "$VENV/bin/pip" wheel --quiet --disable-pip-version-check --no-deps -w "$WORK/wheel" \
    -C build-dir="$WORK/skbuild" "$ROOT/python"
  whl=$(ls "$WORK"/wheel/rlvr_verify-*.whl)
fi
rm -rf "$WORK/target"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --target "$WORK/target" "$whl"
PYTHONPATH="$WORK/target" "$VENV/bin/python" "$ROOT/bench/verify/py_bench.py" \
  "$WORK/inputs/gsm8k.jsonl" "$WORK/inputs/latex.jsonl" "$@"
