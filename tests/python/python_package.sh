#!/usr/bin/env bash
# The pip package of the verifier (python/): its wheel built by pip from ./python (build dependencies from
# PyPI; cached in WORK_DIR per state of the sources) and installed into a fresh virtualenv, then
#  1. the 679 peer cases: verdicts and extracted answers identical to `rlvr verify --cases`;
#  2. the API and the TRL / verl adapters on hand-checked inputs (python_package_check.py);
#  3. one optimizer step of TRL's GRPOTrainer on a tiny random Qwen2 with our reward function (the package
#     installed into a target folder on PYTHONPATH of PYTHON, the interpreter that has trl).
#   python_package.sh RLVR_BIN PYTHON WORK_DIR
set -euo pipefail
rlvr=$1 py=$2 work=$3
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/tests/python
data=${RLVR_SHARED_DATA:-$root/../shared/data}
mkdir -p "$work"
rm -rf "$work/venv" "$work/target"
"$py" -m venv "$work/venv"
# The wheel is built once per state of its sources (python/, rewards/, data/, common/, the CMake files) and kept in
# WORK_DIR with the CMake build folder; the fresh virtualenv then installs it with pip.
key=$(cd "$root" && find python rewards data common cmake CMakeLists.txt -type f ! -name '*.pyc' -print0 | sort -z |
      xargs -0 sha1sum | sha1sum | cut -c1-12)
wheels=$work/wheel-$key
if ! ls "$wheels"/rlvr_verify-*.whl >/dev/null 2>&1; then
  rm -rf "$work"/wheel-*
  cmake_args="${CMAKE_ARGS:-}"
  command -v ccache >/dev/null && cmake_args="$cmake_args -DCMAKE_CXX_COMPILER_LAUNCHER=ccache"
  CMAKE_ARGS="$cmake_args" "$work/venv/bin/pip" wheel --quiet --disable-pip-version-check --no-deps -w "$wheels" \
    -C build-dir="$work/skbuild" "$root/python"
fi
whl=$(ls "$wheels"/rlvr_verify-*.whl)
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "$whl"
"$work/venv/bin/python" -c "import rlvr_verify, sys; print('installed', rlvr_verify.__file__)"
# The package must not load LibTorch.
if ldd "$(ls "$work"/venv/lib/python3*/site-packages/rlvr_verify/_core*.so)" | grep -qi torch; then
  echo "FAIL: rlvr_verify links LibTorch"; exit 1
fi

cases=$data/verifier_peer_cases.jsonl
if [[ -f "$cases" ]]; then
  "$rlvr" verify --cases "$cases" --threads 2 > "$work/rlvr_verdicts.jsonl" 2> "$work/rlvr_verdicts.err"
  "$work/venv/bin/python" "$here/python_package_check.py" --peer-cases "$cases" --rlvr-out "$work/rlvr_verdicts.jsonl"
else
  echo "SKIP peer cases: $cases is absent (set RLVR_SHARED_DATA to the shared data folder)"
fi
"$work/venv/bin/python" "$here/python_package_check.py" --api

# TRL: the same wheel into a target folder, imported by the interpreter that has trl and transformers.
if "$py" -c "import trl, transformers" 2>/dev/null; then
  "$work/venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --target "$work/target" "$whl"
  PYTHONPATH="$work/target" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=1 \
    "$py" "$here/trl_step.py" --out "$work/trl"
else
  echo "SKIP TRL step: trl/transformers not importable by $py"
fi
echo "python_package: ok"
