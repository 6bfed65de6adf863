#!/usr/bin/env bash
# The main job on the built-in default: a small model of ours on the built-in arithmetic task, on CPU.
# SFT warm start -> held-out accuracy -> GRPO -> held-out accuracy; prints the table and writes
# runs/quickstart/summary.json and runs/quickstart/grpo_curve.png. Idempotent set-up (scripts/setup.sh).
# Extra arguments go to `rlvr quickstart` (e.g. --grpo train.steps=100).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$RLVR_ROOT"
bash scripts/setup.sh
echo "[quickstart] building rlvr in $RLVR_BUILD"
rlvr_configure_and_build --target rlvr
exec "$RLVR_BUILD/cli/rlvr" quickstart --out runs/quickstart "$@"
