#!/usr/bin/env bash
# All-reduce bandwidth of rlvr's CPU backend (gloo via c10d) on loopback, beside torch.distributed's gloo
# in Python, same sizes (1 KB .. 64 MB float32), same rank count, same thread count.
#   bench/dist/run.sh [--nproc 2]          (RLVR_BUILD: build dir, default ./build)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$ROOT/scripts/env.sh"
NPROC=2
[ "${1:-}" = "--nproc" ] && NPROC="$2"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
BIN="$RLVR_BUILD/bench/dist/bench_dist"
if ! cmake --build "$RLVR_BUILD" --target bench_dist >/dev/null 2>&1; then
  [ -x "$BIN" ] || { echo "bench/dist: cannot build bench_dist in $RLVR_BUILD" >&2; exit 1; }
  echo "bench/dist: rebuild failed, using the existing $BIN" >&2
fi
echo "== rlvr (C++, trainer/dist Communicator, gloo) =="
"$BIN" --nproc "$NPROC" 2>&1 | grep -v '^\[.*\] \[info\]'
echo
echo "== peer: torch.distributed (Python, gloo) =="
"$RLVR_VENV/bin/python" "$ROOT/bench/dist/peer_allreduce.py" --nproc "$NPROC"
