#!/usr/bin/env bash
# Builds rlvr and runs the whole test suite on this machine (CPU; GPU-labelled tests run only where CUDA
# is usable). Idempotent: installs what is missing (scripts/setup.sh), reuses the build and ccache.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$RLVR_ROOT"

bash scripts/setup.sh
echo "[test] building in $RLVR_BUILD"
rlvr_configure_and_build

echo "[test] reference fixtures (tests/reference/make_*.py)"
for f in tests/reference/make_*.py; do
  [ -e "$f" ] || continue
  "$RLVR_VENV/bin/python" "$f" --out "$RLVR_BUILD/fixtures"
done

echo "[test] binaries must not depend on the GPU driver (libcuda.so.1)"
bad=0
while IFS= read -r bin; do
  if readelf -d "$bin" 2>/dev/null | grep -q 'libcuda.so.1'; then echo "  $bin links libcuda.so.1"; bad=1; fi
done < <(find "$RLVR_BUILD" -type f -executable \( -name 'rlvr' -o -name 'test_*' -o -name 'bench_*' \) )
[ "$bad" -eq 0 ] || { echo "[test] FAILED: a binary links the driver stub"; exit 1; }

labels=()
if "$RLVR_BUILD/cli/rlvr" --version | grep -q 'cuda: available'; then
  echo "[test] CUDA available: running GPU-labelled tests too"
else
  echo "[test] no usable CUDA: tests labelled gpu are skipped"
  labels=(-LE gpu)
fi
ctest --test-dir "$RLVR_BUILD" --output-on-failure -j "$(nproc)" "${labels[@]}"
